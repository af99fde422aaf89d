//! OCI 1.1 referrers: the artifacts whose `subject` is a manifest or index, listed and
//! attached through the registry's referrers API where it has one, and through the
//! referrers tag schema where it does not (opencontainers/distribution-spec spec.md,
//! "Listing Referrers", "Pushing Manifests with Subject", "Unavailable Referrers API",
//! "Referrers Tag Schema").
//!
//! Attaching pushes the artifact manifest by digest. A registry with the API answers
//! `OCI-Subject: <subject digest>` and lists it from then on; without that header the
//! client must keep the list itself: an image index under the tag `sha256-<hex>` (the
//! subject's digest with `:` made `-`), read, extended by one descriptor and written back.
//! The descriptor carries the artifact's `artifactType` (else its config's media type) and
//! its annotations, as the spec asks; entries already there, whoever wrote them, are kept
//! as they are, and an artifact already listed is not listed again, so attaching is
//! idempotent. Two clients updating one list at the same moment can lose an entry (the spec
//! leaves that race to clients; registry 2.8 has no conditional PUT to close it): the list
//! is read right before it is written.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::client::{Client, Fetched};
use super::plan::{Blob, BlobData, Document};
use super::{PushError, PushOptions};
use crate::digest::Digest;
use crate::http::RetryPolicy;
use crate::oci::{Content, Descriptor, INDEX_MEDIA_TYPE};
use crate::sign::Artifact;

/// One entry of a referrers list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    /// The referring manifest's media type.
    #[serde(default)]
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    #[serde(default)]
    pub size: u64,
    /// What it is (`application/vnd.in-toto+json`, `application/spdx+json`...).
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// Where a referrers list came from, or an attachment went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The registry's referrers API.
    Api,
    /// The image index under the `sha256-<hex>` tag.
    TagSchema,
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Api => "the referrers API",
            Via::TagSchema => "the referrers tag schema",
        })
    }
}

/// The referrers of one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// Where the list came from.
    pub via: Via,
    /// Its entries, in the registry's order.
    pub manifests: Vec<Referrer>,
}

/// The referrers tag of `subject`: `sha256-<hex>` (the spec's truncations never bite a
/// sha256 digest: 6 and 64 characters are within 32 and 64).
pub fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// The referrers of `subject`: the API's answer, else (404) the tag schema's index, else
/// none.
pub(super) fn list(
    client: &Client,
    retry: &RetryPolicy,
    subject: &Digest,
) -> Result<Referrers, PushError> {
    if let Some(pages) = retry.run(|| client.get_referrers(subject))? {
        let mut manifests = Vec::new();
        for page in pages {
            manifests.extend(entries(&page).map_err(|problem| PushError::Protocol {
                at: at(client, &format!("referrers of {subject}")),
                problem,
                hint: "the registry's referrers API is broken; report it to its operator",
            })?);
        }
        return Ok(Referrers {
            via: Via::Api,
            manifests,
        });
    }
    let tag = referrers_tag(subject);
    let manifests = match retry.run(|| client.get_manifest(&tag, &[INDEX_MEDIA_TYPE]))? {
        // "If ... the tag schema does not return a valid image index, the client SHOULD
        // assume there are no referrers."
        Some(f) if is_index(&f) => entries(&f.bytes).unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Referrers {
        via: Via::TagSchema,
        manifests,
    })
}

/// Push `artifact` (its new blobs, then its manifest by digest) and make it a listed
/// referrer of `subject`: by the registry, if it says so with `OCI-Subject`, else in the
/// tag schema's index. Returns how it is listed and whether the index changed.
pub(super) fn attach(
    client: &Client,
    retry: &RetryPolicy,
    opts: &PushOptions,
    artifact: &Artifact,
    subject: &Digest,
) -> Result<(Via, bool), PushError> {
    push_blobs(client, retry, opts, artifact)?;
    let doc = document(artifact);
    let stored = retry.run(|| client.put_manifest(&artifact.digest.to_string(), &doc))?;
    if stored.subject.as_deref() == Some(subject.to_string().as_str()) {
        return Ok((Via::Api, false));
    }

    let tag = referrers_tag(subject);
    let existing = retry.run(|| client.get_manifest(&tag, &[INDEX_MEDIA_TYPE]))?;
    let mut index = match &existing {
        None => {
            let mut m = Map::new();
            m.insert("schemaVersion".into(), Value::from(2));
            m.insert("mediaType".into(), Value::from(INDEX_MEDIA_TYPE));
            m.insert("manifests".into(), Value::Array(Vec::new()));
            m
        }
        Some(f) => match serde_json::from_slice::<Value>(&f.bytes) {
            Ok(Value::Object(m)) if is_index(f) => m,
            // "If that pull returns a manifest other than the expected image index, the
            // client SHOULD report a failure and skip the remaining steps."
            _ => {
                return Err(PushError::Protocol {
                    at: at(client, &format!("tag {tag}")),
                    problem: format!(
                        "the referrers tag holds {} ({}), not the image index that lists \
                         the referrers of {subject}",
                        f.digest,
                        if f.media_type.is_empty() {
                            "no media type"
                        } else {
                            f.media_type.as_str()
                        }
                    ),
                    hint: "another tool wrote something else under that tag; remove it or \
                           use a registry with the referrers API",
                });
            }
        },
    };
    let manifests = index
        .entry("manifests")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = manifests else {
        return Err(PushError::Protocol {
            at: at(client, &format!("tag {tag}")),
            problem: "the referrers index's `manifests` is not a list".into(),
            hint: "another tool wrote a broken index under that tag; remove it",
        });
    };
    let listed = list.iter().any(|e| {
        e.get("digest").and_then(Value::as_str) == Some(artifact.digest.to_string().as_str())
    });
    if listed {
        return Ok((Via::TagSchema, false));
    }
    list.push(descriptor_entry(artifact));
    let bytes = serde_json::to_vec(&Value::Object(index)).map_err(|e| PushError::Protocol {
        at: at(client, &format!("tag {tag}")),
        problem: format!("cannot encode the referrers index: {e}"),
        hint: "report this to the debless maintainers",
    })?;
    let referrers = entries(&bytes).unwrap_or_default();
    let doc = Document {
        digest: Digest::of(&bytes),
        media_type: INDEX_MEDIA_TYPE.to_owned(),
        bytes,
        content: Content::Index(
            referrers
                .into_iter()
                .map(|r| Descriptor {
                    media_type: r.media_type,
                    digest: r.digest,
                    size: r.size,
                    platform: None,
                    annotations: r.annotations,
                })
                .collect(),
        ),
    };
    retry.run(|| client.put_manifest(&tag, &doc))?;
    Ok((Via::TagSchema, true))
}

/// Push `artifact` under its tag (cosign's `.sig` and `.att`): its new blobs, then the
/// manifest.
pub(super) fn put_tagged(
    client: &Client,
    retry: &RetryPolicy,
    opts: &PushOptions,
    artifact: &Artifact,
    tag: &str,
) -> Result<(), PushError> {
    push_blobs(client, retry, opts, artifact)?;
    retry.run(|| client.put_manifest(tag, &document(artifact)))?;
    Ok(())
}

/// The blobs an artifact adds (layers taken over from an earlier manifest are there).
fn push_blobs(
    client: &Client,
    retry: &RetryPolicy,
    opts: &PushOptions,
    artifact: &Artifact,
) -> Result<(), PushError> {
    for (digest, bytes) in &artifact.blobs {
        let blob = Blob {
            digest: *digest,
            size: bytes.len() as u64,
            data: BlobData::Bytes(bytes.clone()),
        };
        retry.run(|| super::push::push_blob(client, &blob, opts))?;
    }
    Ok(())
}

/// The artifact's manifest as a document to PUT.
fn document(artifact: &Artifact) -> Document {
    let layers = artifact
        .layers
        .iter()
        .map(|l| Descriptor {
            media_type: l.media_type.clone(),
            digest: l.digest,
            size: l.size,
            platform: None,
            annotations: l.annotations.clone(),
        })
        .collect();
    let config = manifest_head(&artifact.manifest)
        .and_then(|h| h.config)
        .unwrap_or(Descriptor {
            media_type: String::new(),
            digest: artifact.digest,
            size: 0,
            platform: None,
            annotations: Default::default(),
        });
    Document {
        digest: artifact.digest,
        media_type: artifact.media_type.to_owned(),
        bytes: artifact.manifest.clone(),
        content: Content::Manifest { config, layers },
    }
}

/// What a referrers list says of an artifact manifest: media type, digest, size,
/// `artifactType` (else the config's media type) and its annotations.
fn descriptor_entry(artifact: &Artifact) -> Value {
    let head = manifest_head(&artifact.manifest);
    let mut m = Map::new();
    m.insert("mediaType".into(), Value::from(artifact.media_type));
    m.insert("digest".into(), Value::from(artifact.digest.to_string()));
    m.insert("size".into(), Value::from(artifact.manifest.len() as u64));
    let artifact_type = head.as_ref().and_then(|h| {
        h.artifact_type
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| h.config.as_ref().map(|c| c.media_type.clone()))
    });
    if let Some(t) = artifact_type {
        m.insert("artifactType".into(), Value::from(t));
    }
    if let Some(a) = head.map(|h| h.annotations).filter(|a| !a.is_empty()) {
        m.insert(
            "annotations".into(),
            Value::Object(a.into_iter().map(|(k, v)| (k, Value::from(v))).collect()),
        );
    }
    Value::Object(m)
}

/// The fields of a manifest a referrers list repeats.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestHead {
    #[serde(default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

fn manifest_head(bytes: &[u8]) -> Option<ManifestHead> {
    serde_json::from_slice(bytes).ok()
}

/// Is this fetched document an image index?
fn is_index(f: &Fetched) -> bool {
    if f.media_type == INDEX_MEDIA_TYPE {
        return true;
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Head {
        #[serde(default)]
        media_type: String,
    }
    f.media_type.is_empty()
        && serde_json::from_slice::<Head>(&f.bytes).is_ok_and(|h| h.media_type == INDEX_MEDIA_TYPE)
}

/// The entries of a referrers index (entries that are not descriptors are skipped: they
/// are someone else's and name nothing this reads).
fn entries(bytes: &[u8]) -> Result<Vec<Referrer>, String> {
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Value>,
    }
    let index: Index = serde_json::from_slice(bytes)
        .map_err(|e| format!("the referrers list is not an image index ({e})"))?;
    Ok(index
        .manifests
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

/// Where a referrers request went, for errors made here: `referrers of D` names the API's
/// URL, anything else the tag's manifest URL.
fn at(client: &Client, what: &str) -> Box<super::At> {
    let rest = match what.strip_prefix("referrers of ") {
        Some(d) => format!("{}/referrers/{d}", client.repository),
        None => format!(
            "{}/manifests/{}",
            client.repository,
            what.trim_start_matches("tag ")
        ),
    };
    client.at_path(what, &rest)
}
