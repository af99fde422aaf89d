//! The hand-written source manifest and the machine-written lock: types, reading,
//! writing, and lock-to-lock diffs. Pinning (making a lock) is [`crate::pin`].

pub mod diff;
pub mod lock;
pub mod manifest;
