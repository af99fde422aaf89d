//! Pushing image layouts to a registry over the OCI distribution API.
//!
//! [`push_layout`] reads a layout directory written by `debless build`, then sends, for the
//! tags chosen: every layer and config blob (skipped when the registry has it, mounted from a
//! sibling repository this process pushed it to, else uploaded in one request or in chunks,
//! in parallel), then the per-architecture manifests by digest, then each tag. Manifests go
//! as the layout's exact bytes, so every digest stays what the build made.

mod auth;
pub mod cli;
mod client;
mod plan;
mod push;
mod reference;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use auth::{
    Challenge, Credentials, PASSWORD_ENV, USER_ENV, default_auth_files, parse_auth_file,
    parse_www_authenticate, read_password,
};
pub use push::push_layout;
pub use reference::Target;

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
    /// Talk plain HTTP instead of HTTPS (a local test registry).
    pub insecure: bool,
    /// Parallel blob uploads (at least 1).
    pub jobs: usize,
    /// Credentials to use; `None` searches `auth_files` for the registry host.
    pub credentials: Option<Credentials>,
    /// Auth files to search when `credentials` is `None`, in order.
    pub auth_files: Vec<PathBuf>,
    /// Blobs larger than this go in chunks of this size (PATCH), smaller ones in one PUT.
    pub chunk_size: u64,
    /// Retries of a blob or manifest after a 5xx, 408, 429 or a network error.
    pub retries: u32,
    /// Where blobs already are; share it (clone the options) between pushes so that a later
    /// push to a sibling repository mounts instead of uploading.
    pub sources: BlobSources,
    /// No progress bar.
    pub quiet: bool,
}

impl Default for PushOptions {
    /// Every tag, HTTPS, anonymous, [`DEFAULT_JOBS`], [`DEFAULT_CHUNK_SIZE`], 3 retries.
    fn default() -> PushOptions {
        PushOptions {
            tags: Vec::new(),
            insecure: false,
            jobs: DEFAULT_JOBS,
            credentials: None,
            auth_files: Vec::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            retries: 3,
            sources: BlobSources::default(),
            quiet: false,
        }
    }
}

impl PushOptions {
    /// The defaults, with credentials from `$DEBLESS_REGISTRY_USER`/`$DEBLESS_REGISTRY_PASSWORD`
    /// and the auth files the environment names (`$REGISTRY_AUTH_FILE`,
    /// `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`).
    pub fn from_env() -> Result<PushOptions, PushError> {
        Ok(PushOptions {
            credentials: Credentials::from_env()?,
            auth_files: default_auth_files(),
            ..PushOptions::default()
        })
    }
}

/// Which repository of a registry holds a blob, as learnt by the pushes sharing it.
#[derive(Debug, Clone, Default)]
pub struct BlobSources(Arc<Mutex<BTreeMap<(String, String), String>>>);

impl BlobSources {
    /// A repository on `host` known to hold `digest`.
    pub fn get(&self, host: &str, digest: &str) -> Option<String> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(host.to_string(), digest.to_string())).cloned()
    }

    /// Remember that `repository` on `host` holds `digest` (the first repository stays).
    pub fn record(&self, host: &str, digest: &str, repository: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry((host.to_string(), digest.to_string()))
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
    /// `sha256:<hex>` of the manifest or index it names.
    pub digest: String,
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
        why: String,
    },
    /// The layout cannot be read or is inconsistent.
    #[error("{}: {what}", path.display())]
    Layout {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong and what to do.
        what: String,
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
    /// A flag or environment variable is missing or wrong (credentials, --jobs...).
    #[error("{0}")]
    Usage(String),
    /// An auth file exists but cannot be used.
    #[error("{}: {what}", path.display())]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The registry (or its token service) refused our credentials, or wanted some.
    #[error("{what} -> {repository} at {url}: HTTP 401 unauthorized{detail}; {hint}")]
    Unauthorized {
        /// The URL (without its query).
        url: String,
        /// The repository pushed to.
        repository: String,
        /// The blob or manifest being sent.
        what: String,
        /// The registry's own message, if any.
        detail: String,
        /// What to do.
        hint: String,
    },
    /// The registry accepted who we are but not what we do.
    #[error(
        "{what} -> {repository} at {url}: HTTP 403 denied{detail}; {who} may not push to \
         {repository}: ask for push rights or push to another repository"
    )]
    Denied {
        /// The URL (without its query).
        url: String,
        /// The repository pushed to.
        repository: String,
        /// The blob or manifest being sent.
        what: String,
        /// The registry's own message, if any.
        detail: String,
        /// Who we are (`user U`, `anonymous`).
        who: String,
    },
    /// Any other unexpected status.
    #[error("{what} -> {repository} at {url}: HTTP {status}{detail}; {hint}")]
    Status {
        /// The URL (without its query).
        url: String,
        /// The repository pushed to.
        repository: String,
        /// The blob or manifest being sent.
        what: String,
        /// The status code.
        status: u16,
        /// The registry's own message, if any.
        detail: String,
        /// What to do.
        hint: String,
    },
    /// Connection, timeout or protocol trouble.
    #[error("{what} -> {repository} at {url}: {problem}; {hint}")]
    Network {
        /// The URL (without its query).
        url: String,
        /// The repository pushed to.
        repository: String,
        /// The blob or manifest being sent.
        what: String,
        /// What went wrong.
        problem: String,
        /// What to do.
        hint: String,
    },
    /// The registry stored something else than what we sent.
    #[error(
        "{what} -> {repository} at {url}: the registry answered Docker-Content-Digest {got}, \
         but the layout's bytes are {expected}; something between altered them (a proxy?), \
         or the registry is broken: push again, or push to another registry"
    )]
    DigestMismatch {
        /// The URL (without its query).
        url: String,
        /// The repository pushed to.
        repository: String,
        /// The blob or manifest being sent.
        what: String,
        /// The layout's digest.
        expected: String,
        /// The registry's.
        got: String,
    },
    /// Something local failed (thread pool, HTTP client, reading a blob).
    #[error("{0}")]
    Local(String),
}

impl PushError {
    /// Worth another try: a 5xx, 408, 429 or a network error.
    pub fn is_retryable(&self) -> bool {
        match self {
            PushError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            PushError::Network { .. } => true,
            _ => false,
        }
    }
}
