//! A repository opened for what comes after a push: reading manifests, blobs and referrers
//! back, each checked against the digest that names it, and storing signatures,
//! attestations and other artifacts next to an image. Every request is retried as
//! [`crate::http::RetryPolicy`] allows.

use std::path::Path;

use super::client::{Client, Fetched};
use super::referrers::{self, Referrers, Via};
use super::{Access, PushError, PushOptions, Target};
use crate::digest::Digest;
use crate::http::{Http, RetryPolicy};
use crate::oci::{
    DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
};
use crate::sign::Artifact;

/// Every manifest media type a read accepts: OCI's and Docker's image manifests and
/// indexes (cosign's `.sig` manifests from older versions are Docker's).
pub const MANIFEST_MEDIA_TYPES: &[&str] = &[
    MANIFEST_MEDIA_TYPE,
    INDEX_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    DOCKER_LIST_MEDIA_TYPE,
];

/// One repository of a registry, connected and authenticated.
pub struct Repository {
    pub(super) client: Client,
    pub(super) retry: RetryPolicy,
    pub(super) opts: PushOptions,
}

impl Repository {
    /// Connect to `target`'s repository to `access` it, with the credentials, transport and
    /// retries `opts` says (its tags and chunking are not used here).
    pub fn open(
        target: &Target,
        access: Access,
        opts: &PushOptions,
    ) -> Result<Repository, PushError> {
        let http = Http::new().map_err(PushError::HttpClient)?;
        Repository::connect(&http, target, access, opts)
    }

    /// [`Repository::open`] over `http` (whose retry delays it keeps).
    pub(super) fn connect(
        http: &Http,
        target: &Target,
        access: Access,
        opts: &PushOptions,
    ) -> Result<Repository, PushError> {
        let credentials = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => opts.login.credentials(&target.host)?,
        };
        let retry = RetryPolicy {
            retries: opts.retries,
            ..http.retry_policy()
        };
        let client = Client::new(
            http.clone(),
            target,
            opts.insecure,
            access,
            credentials,
            opts.login.searched(),
        )?;
        retry.run(|| client.ping())?;
        Ok(Repository {
            client,
            retry,
            opts: opts.clone(),
        })
    }

    /// `host/repository`, what a signature payload calls it.
    pub fn name(&self) -> String {
        format!("{}/{}", self.client.host, self.client.repository)
    }

    /// The manifest or index `reference` (a tag or a digest) names, if there is one.
    pub fn manifest(&self, reference: &str) -> Result<Option<Fetched>, PushError> {
        self.retry
            .run(|| self.client.get_manifest(reference, MANIFEST_MEDIA_TYPES))
    }

    /// The blob `digest`, at most `limit` bytes, checked against its digest; `None` if
    /// the repository does not have it.
    pub fn blob(&self, digest: &Digest, limit: u64) -> Result<Option<Vec<u8>>, PushError> {
        self.retry.run(|| self.client.get_blob(digest, limit))
    }

    /// Download the blob `d` names and check it is `d.size` bytes with `d.digest`, keeping
    /// nothing; false if the repository does not have it.
    pub fn verify_blob(&self, d: &Descriptor) -> Result<bool, PushError> {
        self.retry
            .run(|| self.client.stream_blob(d, &mut std::io::sink()))
    }

    /// Download the blob `d` names into `path` (replaced), checked against `d`; false if
    /// the repository does not have it (nothing is written then).
    pub fn download_blob(&self, d: &Descriptor, path: &Path) -> Result<bool, PushError> {
        let file_err = |source| PushError::File {
            path: path.to_path_buf(),
            what: "cannot write a downloaded blob",
            source,
        };
        self.retry.run(|| {
            let mut file = std::fs::File::create(path).map_err(file_err)?;
            let found = self.client.stream_blob(d, &mut file);
            if !matches!(found, Ok(true)) {
                let _ = std::fs::remove_file(path);
            }
            found
        })
    }

    /// The artifacts whose `subject` is `subject`, from the referrers API or, where the
    /// registry has none, the referrers tag schema.
    pub fn referrers(&self, subject: &Digest) -> Result<Referrers, PushError> {
        referrers::list(&self.client, &self.retry, subject)
    }

    /// Push `artifact` (a manifest whose `subject` is `subject`) and list it as a
    /// referrer; says how it is listed, and whether a tag-schema index was written.
    pub fn attach(&self, artifact: &Artifact, subject: &Digest) -> Result<(Via, bool), PushError> {
        referrers::attach(&self.client, &self.retry, &self.opts, artifact, subject)
    }

    /// Push `artifact` under `tag` (cosign's `.sig` and `.att` manifests).
    pub fn put_tagged(&self, artifact: &Artifact, tag: &str) -> Result<(), PushError> {
        referrers::put_tagged(&self.client, &self.retry, &self.opts, artifact, tag)
    }
}
