//! Mirrors and the content-addressed cache: where .debs come from and where they are kept
//! (the HTTP itself is [`crate::http`]'s).

pub mod cache;
pub mod debs;
pub mod mirror;
