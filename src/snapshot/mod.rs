//! The source manifest and the lock: types, reading, writing, and `pin`.

pub mod diff;
pub mod lock;
pub mod manifest;
pub mod pin;
pub mod why;
