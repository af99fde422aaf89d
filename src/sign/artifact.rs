//! The OCI documents signatures and attestations are stored as: cosign's tag-addressed
//! manifests (`sha256-<hex>.sig`, `.att`) and an OCI 1.1 referrer artifact.
//!
//! cosign builds its manifests with go-containerregistry (`empty.Image` turned OCI, then
//! `mutate.Append` of one layer per signature; cosign pkg/oci/empty/empty.go and
//! pkg/oci/mutate/signatures.go), so the bytes here follow go-containerregistry's structs
//! (pkg/v1/manifest.go, pkg/v1/config.go) field for field: a descriptor is `mediaType`,
//! `size`, `digest`, `annotations` (debless's own [`crate::oci::Descriptor`] orders them
//! differently), and the config is the empty image's with one zero-time history entry and
//! one diff_id per layer. Same inputs, same bytes as cosign writes, so a `.sig` manifest
//! debless writes for a signature cosign would make is the one cosign would push.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{SignError, doc_err, go_json, json_err};
use crate::digest::Digest;
use crate::oci::{CONFIG_MEDIA_TYPE, Descriptor, MANIFEST_MEDIA_TYPE};

/// OCI's empty config media type, for artifacts (image-spec v1.1 manifest.md).
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
const EMPTY_CONFIG: &[u8] = b"{}";
/// Go's zero `time.Time`, as go-containerregistry writes an unset `created`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A layer of a cosign signature or attestation manifest: one signature or attestation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    /// What the blob is (simple-signing payload, DSSE envelope).
    pub media_type: String,
    /// Blob length.
    pub size: u64,
    /// Digest of the blob.
    pub digest: Digest,
    /// Signature, predicate type...
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Layer {
    /// The layer for `blob`.
    pub fn of(media_type: &str, blob: &[u8], annotations: BTreeMap<String, String>) -> Layer {
        Layer {
            media_type: media_type.to_owned(),
            size: blob.len() as u64,
            digest: Digest::of(blob),
            annotations,
        }
    }
}

/// An OCI manifest made here, with the blobs it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The manifest's bytes, exactly as they are to be pushed.
    pub manifest: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// The manifest's media type (always an OCI image manifest).
    pub media_type: &'static str,
    /// The tag it goes under (`sha256-<hex>.sig`...), or none for a referrer, which is
    /// pushed by digest and found through its `subject`.
    pub tag: Option<String>,
    /// The layers it lists, in order (earlier signatures first).
    pub layers: Vec<Layer>,
    /// Blobs it refers to that this call made (the config and the new layer); layers taken
    /// over from an existing manifest are already where that manifest is.
    pub blobs: BTreeMap<Digest, Vec<u8>>,
}

/// The tag cosign derives from a digest: `sha256-<hex>.<suffix>` (SIGNATURE_SPEC.md,
/// "Tag-based Discovery").
pub fn tag_for(digest: &Digest, suffix: &str) -> String {
    format!("sha256-{}.{suffix}", digest.hex())
}

/// The layers of an existing `.sig` or `.att` manifest (as fetched from its tag), to add to.
pub fn existing_layers(manifest: &[u8], what: &str) -> Result<Vec<Layer>, SignError> {
    #[derive(Deserialize)]
    struct Existing {
        #[serde(default)]
        layers: Vec<Layer>,
    }
    let parsed: Existing =
        serde_json::from_slice(manifest).map_err(json_err(format!("existing {what} manifest")))?;
    Ok(parsed.layers)
}

/// The cosign manifest listing `layers`, under `tag`, with `blobs` (the new layers' bytes).
pub(crate) fn cosign_manifest(
    layers: Vec<Layer>,
    tag: String,
    mut blobs: BTreeMap<Digest, Vec<u8>>,
) -> Result<Artifact, SignError> {
    let config = go_json(&Config::new(&layers), "the signature config")?;
    let config_layer = Layer::of(CONFIG_MEDIA_TYPE, &config, BTreeMap::new());
    let manifest = go_json(
        &Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE,
            config: &config_layer,
            layers: &layers,
        },
        "the signature manifest",
    )?;
    blobs.insert(config_layer.digest, config);
    Ok(Artifact {
        digest: Digest::of(&manifest),
        manifest,
        media_type: MANIFEST_MEDIA_TYPE,
        tag: Some(tag),
        layers,
        blobs,
    })
}

/// An OCI 1.1 artifact manifest that refers to `subject` (so a registry's referrers API
/// lists it): empty config, `artifactType`, `layers` with their bytes. Attestations use it
/// (see [`super::attest::referrer_manifest`]), and so do the SBOMs `debless push` attaches.
pub fn referrer_manifest(
    artifact_type: &str,
    layers: Vec<(Layer, Vec<u8>)>,
    subject: &Descriptor,
) -> Result<Artifact, SignError> {
    if subject.media_type.is_empty() {
        return Err(doc_err(format!(
            "the referrer's subject {} has no media type; pass the manifest's or index's own",
            subject.digest
        )));
    }
    let to_descriptor = |l: &Layer| Descriptor {
        media_type: l.media_type.clone(),
        digest: l.digest,
        size: l.size,
        platform: None,
        annotations: l.annotations.clone(),
    };
    let empty = Descriptor {
        media_type: EMPTY_MEDIA_TYPE.to_owned(),
        digest: Digest::of(EMPTY_CONFIG),
        size: EMPTY_CONFIG.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    };
    let subject = Descriptor {
        media_type: subject.media_type.clone(),
        digest: subject.digest,
        size: subject.size,
        platform: None,
        annotations: BTreeMap::new(),
    };
    let manifest = serde_json::to_vec(&Referrer {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        artifact_type,
        config: &empty,
        layers: layers.iter().map(|(l, _)| to_descriptor(l)).collect(),
        subject: &subject,
    })
    .map_err(json_err("cannot encode the referrer manifest"))?;
    let mut blobs: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    blobs.insert(empty.digest, EMPTY_CONFIG.to_vec());
    let mut listed = Vec::new();
    for (layer, bytes) in layers {
        blobs.insert(layer.digest, bytes);
        listed.push(layer);
    }
    Ok(Artifact {
        digest: Digest::of(&manifest),
        manifest,
        media_type: MANIFEST_MEDIA_TYPE,
        tag: None,
        layers: listed,
        blobs,
    })
}

/// go-containerregistry's `v1.Manifest` (schemaVersion, mediaType, config, layers).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: &'a Layer,
    layers: &'a [Layer],
}

/// go-containerregistry's `v1.ConfigFile` of `empty.Image` after `mutate.Append`, in its
/// field order; the `omitempty` fields that are empty do not appear, `created` does (a
/// struct is never empty to Go).
#[derive(Serialize)]
struct Config {
    architecture: &'static str,
    created: &'static str,
    history: Vec<History>,
    os: &'static str,
    rootfs: RootFs,
    config: Empty,
}

#[derive(Serialize)]
struct History {
    created: &'static str,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: Vec<Digest>,
}

#[derive(Serialize)]
struct Empty {}

impl Config {
    /// A signature layer's blob is not compressed, so its diff_id is its digest.
    fn new(layers: &[Layer]) -> Config {
        Config {
            architecture: "",
            created: ZERO_TIME,
            history: layers
                .iter()
                .map(|_| History { created: ZERO_TIME })
                .collect(),
            os: "",
            rootfs: RootFs {
                kind: "layers",
                diff_ids: layers.iter().map(|l| l.digest).collect(),
            },
            config: Empty {},
        }
    }
}

/// An OCI image manifest used as an artifact (image-spec v1.1 manifest.md property order).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Referrer<'a> {
    schema_version: u32,
    media_type: &'static str,
    artifact_type: &'a str,
    config: &'a Descriptor,
    layers: Vec<Descriptor>,
    subject: &'a Descriptor,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_go_containerregistrys_empty_image_plus_layers() {
        let a = Layer::of("m", b"a", BTreeMap::new());
        let b = Layer::of("m", b"b", BTreeMap::new());
        let json = String::from_utf8(go_json(&Config::new(&[a.clone(), b.clone()]), "t").unwrap())
            .unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}},{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{}","{}"]}},"config":{{}}}}"#,
                a.digest, b.digest
            )
        );
    }

    #[test]
    fn tags_follow_the_digest() {
        let d = Digest::of(b"x");
        assert_eq!(tag_for(&d, "sig"), format!("sha256-{}.sig", d.hex()));
    }

    #[test]
    fn existing_manifests_must_parse() {
        assert!(matches!(
            existing_layers(b"not json", "signature"),
            Err(SignError::Json { .. })
        ));
        // A manifest without layers adds to nothing.
        assert_eq!(existing_layers(b"{}", "signature").unwrap(), vec![]);
    }
}
