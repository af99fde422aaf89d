//! A repository used as a layer cache shared by many machines (`--cache-registry`): each
//! entry is an ordinary OCI artifact, so any registry stores it and its garbage collection
//! is the registry's. The manifest (`artifactType` [`ARTIFACT_TYPE`]) is tagged with the
//! entry's key; its config is the entry (a small JSON document the caller defines, media
//! type [`ENTRY_MEDIA_TYPE`]); its one layer is the layer blob. The key is repeated in an
//! annotation, so a tag moved onto another key's entry is refused.
//!
//! This module checks what the protocol can: the manifest's shape, the key, and that every
//! byte fetched hashes to the digest that names it. Whether an entry fits the layer it
//! claims to be is the caller's to check (`build::registry_cache`).

use std::collections::BTreeMap;
use std::path::Path;

use super::client::{Client, Fetched};
use super::plan::{Blob, BlobData, Document};
use super::push::push_blob;
use super::{At, PushError, PushOptions, Target};
use crate::digest::Digest;
use crate::http::RetryPolicy;
use crate::oci::{Content, Descriptor, MAX_DOCUMENT};

/// The `artifactType` of a layer-cache entry's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.debless.layer-cache.v1";
/// The media type of the entry (the manifest's config).
pub const ENTRY_MEDIA_TYPE: &str = "application/vnd.debless.layer-cache.entry.v1+json";
/// The annotation carrying the entry's key.
pub const KEY_ANNOTATION: &str = "dev.debless.layer-cache.key";

const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// One repository used as a layer cache.
pub struct CacheRepo {
    client: Client,
    retry: RetryPolicy,
    /// `host/repository`, for messages.
    pub name: String,
}

/// An entry found under a key: its bytes (verified against the manifest's config
/// digest) and the descriptor of its layer blob (not yet fetched).
#[derive(Debug, Clone)]
pub struct CachedEntry {
    /// The entry document.
    pub entry: Vec<u8>,
    /// The layer blob.
    pub layer: Descriptor,
}

/// The manifest of an entry, as far as it is read.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntryManifest {
    #[serde(default)]
    artifact_type: String,
    config: Descriptor,
    layers: Vec<Descriptor>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

impl CacheRepo {
    /// The cache at `target` (`REGISTRY/REPOSITORY`), credentials and `insecure` as for a
    /// push; the registry is asked once that it answers.
    pub fn open(target: &str, opts: &PushOptions) -> Result<CacheRepo, PushError> {
        let parsed = Target::parse(target)?;
        if parsed.tag.is_some() {
            return Err(PushError::Target {
                target: target.to_owned(),
                why: "a layer cache is a repository; its tags are the entries' keys: drop the \
                      :TAG part",
            });
        }
        let (client, retry) = super::push::connect(&parsed, super::Access::Push, opts)?;
        Ok(CacheRepo {
            client,
            retry,
            name: format!("{}/{}", parsed.host, parsed.repository),
        })
    }

    /// The entry tagged `key`, or `None` when there is none. An entry that is not a
    /// layer-cache artifact for `key`, or whose entry document does not hash to its
    /// digest, is an error (the caller refuses it).
    pub fn get(&self, key: &str) -> Result<Option<CachedEntry>, PushError> {
        let Some((config, layer)) = self.manifest(key)? else {
            return Ok(None);
        };
        let mut entry = Vec::new();
        self.retry.run(|| {
            entry.clear();
            self.whole_blob(&config, &mut entry)
        })?;
        Ok(Some(CachedEntry { entry, layer }))
    }

    /// The entry manifest tagged `key`, checked as [`CacheRepo::get`] checks it: the
    /// descriptors of its config (the entry document) and of its one layer, or `None`
    /// when there is none. Telling whether the registry holds an entry takes this one
    /// request: both are content-addressed.
    pub fn manifest(&self, key: &str) -> Result<Option<(Descriptor, Descriptor)>, PushError> {
        let Some(Fetched { bytes, .. }) = self
            .retry
            .run(|| self.client.get_manifest(key, &[MANIFEST_MEDIA_TYPE]))?
        else {
            return Ok(None);
        };
        let at = || {
            Box::new(At {
                what: format!("layer-cache entry {key}"),
                repository: self.client.repository.clone(),
                url: self.name.clone(),
            })
        };
        let bad = |problem: String| PushError::Pulled { at: at(), problem };
        let m: EntryManifest = serde_json::from_slice(&bytes)
            .map_err(|source| PushError::PulledJson { at: at(), source })?;
        if m.artifact_type != ARTIFACT_TYPE || m.config.media_type != ENTRY_MEDIA_TYPE {
            return Err(bad(format!(
                "the tag names a {:?} artifact, not a {ARTIFACT_TYPE} entry",
                m.artifact_type
            )));
        }
        if m.annotations.get(KEY_ANNOTATION).map(String::as_str) != Some(key) {
            return Err(bad(format!(
                "the entry is for key {}, not for the one it is tagged with",
                m.annotations
                    .get(KEY_ANNOTATION)
                    .map_or("(none)", String::as_str)
            )));
        }
        let [layer] = <[Descriptor; 1]>::try_from(m.layers)
            .map_err(|l| bad(format!("the entry has {} layers, not one", l.len())))?;
        if m.config.size > MAX_DOCUMENT {
            return Err(bad(format!("the entry is over {MAX_DOCUMENT} bytes")));
        }
        Ok(Some((m.config, layer)))
    }

    /// Download `layer` into `out`, verified against its digest and size.
    pub fn get_blob(&self, layer: &Descriptor, out: &std::fs::File) -> Result<(), PushError> {
        use std::io::Seek;
        self.retry.run(|| {
            let mut out = out;
            // A retry starts the file again.
            out.set_len(0)
                .and_then(|()| out.rewind())
                .map_err(|source| PushError::Store {
                    what: format!("blob {}", layer.digest),
                    source,
                })?;
            self.whole_blob(layer, &mut out)
        })
    }

    /// Stream the blob `d` names into `sink`, verified against its digest and size; a
    /// blob the registry does not have is an error (the manifest naming it is broken).
    fn whole_blob(&self, d: &Descriptor, sink: &mut dyn std::io::Write) -> Result<(), PushError> {
        if self.client.stream_blob(d, sink)? {
            return Ok(());
        }
        Err(PushError::Pulled {
            at: Box::new(At {
                what: format!("blob {}", d.digest),
                repository: self.client.repository.clone(),
                url: self.name.clone(),
            }),
            problem: "the registry does not have the blob the entry names".to_owned(),
        })
    }

    /// Store an entry under `key`: the layer blob `layer` (its bytes at `blob`), the
    /// `entry` document as config, then the manifest tagged `key`.
    pub fn put(
        &self,
        key: &str,
        entry: &[u8],
        layer: &Descriptor,
        blob: &Path,
        opts: &PushOptions,
    ) -> Result<(), PushError> {
        let media_type = layer.media_type.as_str();
        let layer = Blob {
            digest: layer.digest,
            size: layer.size,
            data: BlobData::File(blob.to_path_buf()),
        };
        let config = Blob {
            digest: Digest::of(entry),
            size: entry.len() as u64,
            data: BlobData::Bytes(entry.to_vec()),
        };
        for b in [&layer, &config] {
            self.retry.run(|| push_blob(&self.client, b, opts))?;
        }
        let descriptor = |media_type: &str, b: &Blob| Descriptor {
            media_type: media_type.to_owned(),
            digest: b.digest,
            size: b.size,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": descriptor(ENTRY_MEDIA_TYPE, &config),
            "layers": [descriptor(media_type, &layer)],
            "annotations": BTreeMap::from([(KEY_ANNOTATION, key)]),
        });
        // A Value of strings and numbers: serde_json has no failure path for it.
        let bytes = serde_json::to_vec(&manifest).expect("a JSON value always serialises");
        let doc = Document {
            digest: Digest::of(&bytes),
            media_type: MANIFEST_MEDIA_TYPE.to_owned(),
            bytes,
            content: Content::Manifest {
                config: descriptor(ENTRY_MEDIA_TYPE, &config),
                layers: vec![descriptor(media_type, &layer)],
            },
        };
        self.retry
            .run(|| self.client.put_manifest(key, &doc))
            .map(|_| ())
    }
}
