//! Deterministic tar layers: entries in, a compressed blob with its diff_id and digest out.

pub mod entry;

pub use entry::{Entry, EntryKind};
