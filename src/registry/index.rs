//! One repository read and written by `debless index`: the per-architecture manifests
//! shards pushed (`<tag>-<arch>`), and the multi-architecture index put over them.

use std::collections::BTreeMap;

use super::client::{Client, Fetched};
use super::plan::Document;
use super::{At, PushError, PushOptions, Target};
use crate::digest::Digest;
use crate::http::RetryPolicy;
use crate::oci::{Content, Descriptor, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};

/// A repository whose tags are assembled into indexes.
pub struct IndexRepo {
    client: Client,
    retry: RetryPolicy,
    /// `host/repository`, for messages.
    pub name: String,
}

/// The part of a manifest an index member repeats.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestHead {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl IndexRepo {
    /// `target` (`REGISTRY/REPOSITORY`), credentials and `insecure` as for a push.
    pub fn open(target: &str, opts: &PushOptions) -> Result<IndexRepo, PushError> {
        let parsed = Target::parse(target)?;
        let (client, retry) = super::push::connect(&parsed, super::Access::Push, opts)?;
        Ok(IndexRepo {
            client,
            retry,
            name: format!("{}/{}", parsed.host, parsed.repository),
        })
    }

    /// The image manifest tagged `tag` as an index lists it (media type, digest, size,
    /// the manifest's annotations; no platform), or `None` when the tag is not there.
    pub fn member(&self, tag: &str) -> Result<Option<Descriptor>, PushError> {
        let Some(Fetched { bytes, .. }) = self
            .retry
            .run(|| self.client.get_manifest(tag, &[MANIFEST_MEDIA_TYPE]))?
        else {
            return Ok(None);
        };
        let at = || {
            Box::new(At {
                what: format!("tag {tag}"),
                repository: self.client.repository.clone(),
                url: self.name.clone(),
            })
        };
        let head: ManifestHead = serde_json::from_slice(&bytes)
            .map_err(|source| PushError::PulledJson { at: at(), source })?;
        if head.media_type != MANIFEST_MEDIA_TYPE {
            return Err(PushError::Pulled {
                at: at(),
                problem: format!(
                    "the tag names a {:?}, not an OCI image manifest (a per-architecture tag \
                     debless pushed)",
                    head.media_type
                ),
            });
        }
        Ok(Some(Descriptor {
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: head.annotations,
        }))
    }

    /// Put the index `bytes` (over `members`) as `tag`.
    pub fn put_index(
        &self,
        tag: &str,
        bytes: Vec<u8>,
        members: Vec<Descriptor>,
    ) -> Result<Digest, PushError> {
        let doc = Document {
            digest: Digest::of(&bytes),
            media_type: INDEX_MEDIA_TYPE.to_owned(),
            bytes,
            content: Content::Index(members),
        };
        self.retry.run(|| self.client.put_manifest(tag, &doc))?;
        Ok(doc.digest)
    }
}
