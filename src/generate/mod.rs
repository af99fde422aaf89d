//! Files no package ships but an image needs: what Debian's maintainer scripts would have
//! made (CA bundle, Java keystore, ld.so.cache, passwd/group, os-release, busybox links,
//! dpkg status), generated from the image's own files, deterministically, for any target
//! architecture. Each generator is a named feature a rule opts into.

pub mod cacerts;
pub mod keystore;
pub mod ldcache;
pub mod system;

/// A generator failure, naming the generator and what to do.
#[derive(Debug, thiserror::Error)]
#[error("generator {generator}: {what}")]
pub struct GenError {
    /// The generator's name (`ca-bundle`, `ld-cache`...).
    pub generator: &'static str,
    /// What went wrong and what to do.
    pub what: String,
}
