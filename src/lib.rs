//! debless: distroless OCI images from pinned, signature-verified Debian snapshots.
//!
//! The pipeline: `rules/*.toml` + `snapshots/<distro>.toml` —pin→ `snapshots/<distro>.lock`.

pub mod arch;
pub mod archive;
pub mod build;
pub mod deb;
pub mod deb822;
pub mod digest;
pub mod fetch;
pub mod generate;
pub mod http;
pub mod inspect;
pub mod layer;
pub mod oci;
pub mod pin;
pub mod progress;
pub mod registry;
pub mod resolve;
pub mod rules;
pub mod sbom;
pub mod sign;
pub mod snapshot;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod text;
pub mod tmp;
pub mod unpack;
