//! Pushing image layouts to a registry over the OCI distribution API.
//!
//! [`push_layout`] reads a layout directory written by `debless build`, then sends, for the
//! tags chosen: every layer and config blob (skipped when the registry has it, mounted from a
//! sibling repository this process pushed it to, else uploaded in one request or in chunks,
//! in parallel), then the per-architecture manifests by digest, then each tag. Manifests go
//! as the layout's exact bytes, so every digest stays what the build made.
//!
//! [`cache`] uses a repository as a layer cache shared by machines; [`index`] writes a
//! tag's multi-architecture index from per-architecture manifests already pushed.

mod auth;
pub mod cache;
mod client;
pub mod index;
mod plan;
mod push;
mod reference;
pub mod referrers;
mod remote;
mod signatures;
#[cfg(test)]
mod tests;
mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::digest::Digest;
use crate::http::{HttpError, Retryable, retryable_status};
use crate::oci::ReadError;

pub use auth::{
    AUTH_FILE_ENV, AuthFileError, Challenge, CredentialError, Credentials, Login, PASSWORD_ENV,
    USER_ENV, default_auth_files, parse_auth_file, parse_www_authenticate, read_password,
};
pub use client::Fetched;
pub use push::{push_all, push_layout};
pub use reference::{ImageReference, Target};
pub use remote::{MANIFEST_MEDIA_TYPES, Repository};
pub use signatures::{SignReport, attest_provenance, sign_digest};
pub use verify::{RemoteImage, Verified, VerifyError, verify_image};

/// What a session with a registry may do, which is what it asks a token service for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only (`debless verify`): a user who may pull but not push can verify.
    Pull,
    /// Read and write (`debless push`, `debless sign`).
    Push,
}

/// Blobs at or below this size go in one request; larger ones in chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;

/// Parallel blob uploads: network-bound, so independent of the CPU count.
pub const DEFAULT_JOBS: usize = 4;

/// How to push.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Layout tags to push, besides a `:TAG` in the target; none (and no `:TAG`) means every
    /// tag. A tag brings its per-architecture tags (`latest` → `latest-amd64`...).
    pub tags: Vec<String>,
    /// Push this one layout tag (with its per-architecture tags) under the target's `:TAG`
    /// (`latest` as `v1.2.3`, `latest-amd64` as `v1.2.3-amd64`), or under its own name when
    /// the target has none. `tags` must then be empty.
    pub source_tag: Option<String>,
    /// Talk plain HTTP instead of HTTPS (a local test registry).
    pub insecure: bool,
    /// Parallel blob uploads (at least 1).
    pub jobs: usize,
    /// Credentials a library caller already has, used as they are; `None` has
    /// [`Login::credentials`] find them in `login`.
    pub credentials: Option<Credentials>,
    /// Where to look for credentials when `credentials` is `None`.
    pub login: Login,
    /// Blobs larger than this go in chunks of this size (PATCH), smaller ones in one PUT.
    pub chunk_size: u64,
    /// Retries of a blob or manifest that failed as [`crate::http::RetryPolicy`] allows
    /// (a 5xx, 408, 429 or a network error), with its delays.
    pub retries: u32,
    /// Where blobs already are; share it (clone the options) between pushes so that a later
    /// push to a sibling repository mounts instead of uploading.
    pub sources: BlobSources,
    /// No progress bar.
    pub quiet: bool,
    /// Sign every pushed manifest and index with this key and attach each tag's
    /// provenance from `<layout>.provenance/` (see [`sign_digest`], [`attest_provenance`]).
    pub sign_key: Option<crate::sign::PrivateKey>,
}

impl Default for PushOptions {
    /// Every tag, HTTPS, anonymous, [`DEFAULT_JOBS`], [`DEFAULT_CHUNK_SIZE`], the default
    /// retries.
    fn default() -> PushOptions {
        PushOptions {
            tags: Vec::new(),
            source_tag: None,
            insecure: false,
            jobs: DEFAULT_JOBS,
            credentials: None,
            login: Login::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            retries: crate::http::RetryPolicy::default().retries,
            sources: BlobSources::default(),
            quiet: false,
            sign_key: None,
        }
    }
}

impl PushOptions {
    /// The defaults, with credentials looked up as the environment says
    /// ([`Login::from_env`]).
    pub fn from_env() -> PushOptions {
        PushOptions {
            login: Login::from_env(),
            ..PushOptions::default()
        }
    }
}

/// Which repository of a registry holds a blob, as learnt by the pushes sharing it.
#[derive(Debug, Clone, Default)]
pub struct BlobSources(Arc<Mutex<BTreeMap<(String, Digest), String>>>);

impl BlobSources {
    /// A repository on `host` known to hold `digest`.
    pub fn get(&self, host: &str, digest: &Digest) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(host.to_string(), *digest)).cloned()
    }

    /// Remember that `repository` on `host` holds `digest` (the first repository stays).
    pub fn record(&self, host: &str, digest: &Digest, repository: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((host.to_string(), *digest))
            .or_insert_with(|| repository.to_string());
    }
}

/// What a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// `host/repository`.
    pub repository: String,
    /// The tags put, in name order.
    pub tags: Vec<PushedTag>,
    /// Blobs sent in full.
    pub uploaded: BlobCount,
    /// Blobs mounted from a sibling repository.
    pub mounted: BlobCount,
    /// Blobs the registry already had.
    pub skipped: BlobCount,
    /// How many of the uploaded blobs went in chunks.
    pub chunked: usize,
    /// Manifest and index PUTs (by digest and by tag).
    pub manifests: usize,
    /// SPDX documents attached (one per pushed tag that has one).
    pub sboms: usize,
    /// What signing did, when a key was given.
    pub signing: Option<SignReport>,
}

/// A number of blobs and their bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobCount {
    /// Blobs.
    pub blobs: usize,
    /// Their total size.
    pub bytes: u64,
}

/// One tag put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedTag {
    /// The tag.
    pub tag: String,
    /// The manifest or index it names.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
}

/// Why a push failed. Registry errors name the URL, the repository, the blob or manifest,
/// and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The target is not `REGISTRY/REPOSITORY[:TAG]`.
    #[error("{target:?} is not REGISTRY/REPOSITORY[:TAG]: {why}")]
    Target {
        /// What was given.
        target: String,
        /// What is wrong.
        why: &'static str,
    },
    /// The registry host does not make a URL.
    #[error("{host:?} is not a registry host name")]
    Host {
        /// The host (and port).
        host: String,
        /// Why not.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The layout cannot be read or is inconsistent.
    #[error(transparent)]
    Layout(#[from] ReadError),
    /// The archive cannot be opened as an image.
    #[error(transparent)]
    Open(#[from] crate::oci::OpenError),
    /// A docker archive holds no manifests: pushing one would make other digests than the
    /// build's.
    #[error(
        "{}: a docker-archive holds no manifests, so a push from it would make other \
         digests than the build's; push the layout (or an oci-archive) instead",
        path.display()
    )]
    DockerArchive {
        /// The archive.
        path: PathBuf,
    },
    /// A renamed push names more than the one tag it renames.
    #[error(
        "pushing layout tag {source_tag:?} as {target:?} pushes that tag only; drop --tag \
         {extra:?} (push it separately)"
    )]
    RetagWithTags {
        /// The layout tag pushed under another name.
        source_tag: String,
        /// The name it gets.
        target: String,
        /// A `--tag` also given.
        extra: String,
    },
    /// The layout has no tags.
    #[error(
        "{}: names no tags (no org.opencontainers.image.ref.name annotations); rebuild the \
         layout",
        path.display()
    )]
    NoTags {
        /// `index.json`.
        path: PathBuf,
    },
    /// A tag of the layout is not one a registry takes.
    #[error(
        "{}: tag {tag:?} is not a valid registry tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most \
         128); push the other tags with --tag",
        path.display()
    )]
    InvalidTag {
        /// `index.json`.
        path: PathBuf,
        /// The tag.
        tag: String,
    },
    /// A tag asked for is not in the layout.
    #[error(
        "{}: no tag {tag:?} in this layout (it has {available}); pick one of those, or name \
         no tag to push them all",
        path.display()
    )]
    NoSuchTag {
        /// The layout.
        path: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The layout's tags.
        available: String,
    },
    /// No usable credentials.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// A chunk size of 0 would never finish a chunked upload.
    #[error("the chunk size must be at least 1 byte")]
    ZeroChunkSize,
    /// The registry (or its token service) refused our credentials, or wanted some.
    #[error("{at}: HTTP 401 unauthorized{detail}; {hint}")]
    Unauthorized {
        /// The request.
        at: Box<At>,
        /// The registry's own message, if any.
        detail: String,
        /// What to do.
        hint: String,
    },
    /// The registry accepted who we are but not what we do.
    #[error(
        "{at}: HTTP 403 denied{detail}; {who} may not {} {}: ask for {} rights{}",
        match access { Access::Push => "push to", Access::Pull => "read" },
        at.repository,
        match access { Access::Push => "push", Access::Pull => "pull" },
        match access { Access::Push => " or push to another repository", Access::Pull => "" },
    )]
    Denied {
        /// The request.
        at: Box<At>,
        /// The registry's own message, if any.
        detail: String,
        /// Who we are (`user U`, `anonymous`).
        who: String,
        /// What the session was for.
        access: Access,
    },
    /// Any other unexpected status.
    #[error("{at}: HTTP {status}{detail}; {hint}")]
    Status {
        /// The request.
        at: Box<At>,
        /// The status code.
        status: u16,
        /// The registry's own message, if any.
        detail: String,
        /// What to do.
        hint: &'static str,
    },
    /// The registry could not be reached, or the connection failed.
    #[error("{what} -> {repository} failed ({hint})")]
    Http {
        /// The repository pushed to.
        repository: String,
        /// The blob or manifest being sent.
        what: String,
        /// What to do.
        hint: &'static str,
        /// What failed, with the URL.
        #[source]
        source: HttpError,
    },
    /// The registry answered something the distribution API does not allow.
    #[error("{at}: {problem}; {hint}")]
    Protocol {
        /// The request.
        at: Box<At>,
        /// What is wrong.
        problem: String,
        /// What to do.
        hint: &'static str,
    },
    /// The registry named an upload session Location that is not a URL.
    #[error(
        "{at}: the Location {location:?} is not a URL; the \
         registry does not follow the distribution API: report it to its operator"
    )]
    BadLocation {
        /// The request.
        at: Box<At>,
        /// What the registry said.
        location: String,
        /// The parse error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The registry's bearer challenge names a token realm that is not a URL.
    #[error(
        "{at}: the token realm {realm:?} is not a URL; the \
         registry's auth configuration is broken: report it to its operator"
    )]
    BadRealm {
        /// The request.
        at: Box<At>,
        /// What the challenge said.
        realm: String,
        /// The parse error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The token service answered something that is not a token.
    #[error(
        "{at}: the token answer is not JSON with a token; the \
         registry's auth service is broken: report it to its operator"
    )]
    TokenAnswer {
        /// The request.
        at: Box<At>,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The registry stored something else than what we sent.
    #[error(
        "{at}: the registry answered Docker-Content-Digest {got}, \
         but the layout's bytes are {expected}; something between altered them (a proxy?), \
         or the registry is broken: push again, or push to another registry"
    )]
    DigestMismatch {
        /// The request.
        at: Box<At>,
        /// The layout's digest.
        expected: Digest,
        /// The registry's (as it wrote it: it need not be a digest at all).
        got: String,
    },
    /// A blob of the layout cannot be read while it is sent.
    #[error("{}: cannot read blob {digest}; rebuild the layout", path.display())]
    Blob {
        /// The file.
        path: PathBuf,
        /// Its digest.
        digest: Digest,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Content read back does not hash to the digest that names it.
    #[error(
        "{at}: the registry served content hashing to {actual}, not {expected}; it was \
         altered in the registry or on the way: do not use it, and tell the registry's \
         operator"
    )]
    Altered {
        /// The request.
        at: Box<At>,
        /// The digest asked for (or the one the registry said it served).
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// A manifest, index or small blob read back is larger than debless reads.
    #[error(
        "{at}: the answer is larger than {limit} bytes, more than such a document can be; \
         the registry (or what is between) is not serving what was asked"
    )]
    TooLarge {
        /// The request.
        at: Box<At>,
        /// The bound.
        limit: u64,
    },
    /// A blob being read back could not be handed on (a local file failed).
    #[error("{what}: cannot write it where it was wanted")]
    Sink {
        /// The blob.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// What the registry sent is not what was asked for (the registry layer cache).
    #[error("{at}: {problem}; the entry is refused (delete the tag, or let a build push it again)")]
    Pulled {
        /// The request.
        at: Box<At>,
        /// What is wrong.
        problem: String,
    },
    /// A layer-cache tag names something that is not an OCI manifest.
    #[error("{at}: the tag's manifest is not OCI JSON; the entry is refused")]
    PulledJson {
        /// The request.
        at: Box<At>,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A blob being downloaded could not be written locally.
    #[error("{what}: cannot write the download; check the cache directory has room")]
    Store {
        /// The blob.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `--sign-key` was given but a pushed tag has no provenance statement.
    #[error(
        "{}: no provenance for tag {tag}; rebuild the layout with this debless (it writes \
         <layout>.provenance/), or push without --sign-key and sign the image alone with \
         `debless sign`",
        path.display()
    )]
    NoProvenance {
        /// The statement that is missing.
        path: PathBuf,
        /// The tag.
        tag: String,
    },
    /// A file pushed along with a layout (an SPDX document, a provenance statement)
    /// cannot be read or written.
    #[error("{}: {what}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A signature, attestation or SBOM artifact could not be made.
    #[error(transparent)]
    Sign(#[from] crate::sign::SignError),
    /// The HTTP client could not be built.
    #[error(transparent)]
    HttpClient(HttpError),
    /// The upload threads could not be started.
    #[error("cannot start the upload threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
}

/// Which request of a push failed: what was being sent, to which repository, at which URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    /// The blob, manifest or tag being sent (`blob sha256:...`, `API check`).
    pub what: String,
    /// The repository pushed to.
    pub repository: String,
    /// The URL (without its query).
    pub url: String,
}

impl std::fmt::Display for At {
    /// `blob sha256:... -> distroless/base at https://host/v2/...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {} at {}", self.what, self.repository, self.url)
    }
}

impl Retryable for PushError {
    /// Worth another try: a status [`retryable_status`] names, a connection failure the
    /// HTTP policy retries, or a registry that lost track of an upload session.
    fn is_retryable(&self) -> bool {
        match self {
            PushError::Status { status, .. } => retryable_status(*status),
            PushError::Http { source, .. } => source.is_retryable(),
            PushError::Protocol { .. } | PushError::TokenAnswer { .. } => true,
            _ => false,
        }
    }
}
