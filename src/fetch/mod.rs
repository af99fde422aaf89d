//! HTTP (mirrors, retries) and the content-addressed cache.

pub mod cache;
pub mod debs;
pub mod http;
pub mod mirror;
