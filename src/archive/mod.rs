//! Talking to a Debian archive: InRelease and OpenPGP, Release, Packages, versions.

pub mod packages;
pub mod release;
pub mod trust;
pub mod version;
