//! Image configs, manifests, indexes and descriptors, and their canonical JSON.
//!
//! Every JSON document is serialised from structs (fixed field order) and `BTreeMap`s
//! (sorted keys) in compact form, so its bytes, and therefore its digest, depend only on
//! the values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Platform;
use crate::digest::Digest;
use crate::layer::Layer;

/// Media type of an image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// Media type of an image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Media type of an image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Media type of an uncompressed layer.
pub const LAYER_TAR_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// Annotation that names a tag in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The runtime part of an image config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `KEY=value` environment entries, in order.
    pub env: Vec<String>,
    /// `user[:group]` the process runs as (names or numeric ids).
    pub user: Option<String>,
    /// Working directory of the process.
    pub working_dir: Option<String>,
    /// Entrypoint argv.
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments.
    pub cmd: Option<Vec<String>>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
}

/// One history entry (one per layer; created_by says which rule level made it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// What made the layer (e.g. `debless rule base`).
    pub created_by: String,
    /// Free-form note.
    pub comment: Option<String>,
    /// True if this step produced no layer.
    pub empty_layer: bool,
}

/// A layer as an image refers to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerRef {
    /// Digest of the blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Blob length.
    pub size: u64,
    /// Layer media type (says how the blob is compressed).
    pub media_type: String,
}

impl From<&Layer> for LayerRef {
    fn from(l: &Layer) -> LayerRef {
        LayerRef {
            digest: l.digest,
            diff_id: l.diff_id,
            size: l.size,
            media_type: l.compression.media_type().to_string(),
        }
    }
}

/// Everything needed to write one platform's config + manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The platform the image runs on.
    pub platform: Platform,
    /// Runtime config.
    pub config: Config,
    /// Creation time, RFC 3339 (`1970-01-01T00:00:00Z` for SOURCE_DATE_EPOCH=0).
    pub created: String,
    /// Layers, bottom first; their blobs must already be in the layout.
    pub layers: Vec<LayerRef>,
    /// One entry per layer (plus any `empty_layer` steps), or none at all.
    pub history: Vec<History>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

/// An OCI content descriptor. Read leniently (a missing media type is empty, for
/// [`super::LayoutReader::document`] to take the document's own), written exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// What the content is.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Content length.
    pub size: u64,
    /// The platform of an image manifest inside an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Descriptor annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The config blob's JSON, in the OCI spec's field order.
#[derive(Serialize)]
pub(crate) struct ConfigJson<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: RuntimeJson<'a>,
    rootfs: RootFsJson,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<HistoryJson<'a>>,
}

/// `config` inside the config blob; Docker's PascalCase names.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RuntimeJson<'a> {
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    env: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_dir: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entrypoint: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<&'a [String]>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFsJson {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<Digest>,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    created: &'a str,
    created_by: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
}

impl<'a> ConfigJson<'a> {
    /// The config document of `image`.
    pub(crate) fn new(image: &'a Image) -> ConfigJson<'a> {
        let c = &image.config;
        ConfigJson {
            created: &image.created,
            architecture: &image.platform.architecture,
            os: &image.platform.os,
            variant: image.platform.variant.as_deref(),
            config: RuntimeJson {
                env: &c.env,
                user: c.user.as_deref(),
                working_dir: c.working_dir.as_deref(),
                entrypoint: c.entrypoint.as_deref(),
                cmd: c.cmd.as_deref(),
                labels: &c.labels,
            },
            rootfs: RootFsJson {
                kind: "layers",
                diff_ids: image.layers.iter().map(|l| l.diff_id).collect(),
            },
            history: image
                .history
                .iter()
                .map(|h| HistoryJson {
                    created: &image.created,
                    created_by: &h.created_by,
                    comment: h.comment.as_deref(),
                    empty_layer: h.empty_layer,
                })
                .collect(),
        }
    }
}

/// An image manifest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ManifestJson<'a> {
    pub schema_version: u32,
    pub media_type: &'static str,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}

/// An image index (also the shape of `index.json`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexJson<'a> {
    pub schema_version: u32,
    pub media_type: &'static str,
    pub manifests: &'a [Descriptor],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
}
