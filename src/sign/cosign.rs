//! Key-based image signatures stored as cosign stores them (sigstore/cosign
//! specs/SIGNATURE_SPEC.md): a simple-signing payload naming the manifest digest, an
//! ECDSA-SHA256 signature over the payload's bytes, and a manifest tagged
//! `sha256-<hex>.sig` whose layers are the payloads, each carrying its base64 signature in
//! the `dev.cosignproject.cosign/signature` annotation.
//!
//! The payload's bytes are those of sigstore/sigstore pkg/signature/payload/payload.go
//! marshalled by Go: `{"critical":{"identity":{"docker-reference":R},"image":
//! {"docker-manifest-digest":D},"type":"cosign container image signature"},"optional":O}`,
//! where O is `null` without annotations (cosign's `-a` flags; a nil Go map) or an object
//! with sorted keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::artifact::{self, Artifact, Layer};
use super::keys::PrivateKey;
use super::{SignError, b64, go_json, json_err, unb64};
use crate::digest::Digest;

/// Media type of the payload layer (SIGNATURE_SPEC.md "Simple Signing"; cosign
/// pkg/types/media.go).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Layer annotation holding the base64 signature (cosign pkg/oci/static/signature.go).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of a cosign signature (sigstore pkg/signature/payload/payload.go).
pub const SIGNATURE_TYPE: &str = "cosign container image signature";
/// Tag suffix of the signature manifest.
pub const SIGNATURE_SUFFIX: &str = "sig";

/// The tag a signature of `digest` is stored under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &Digest) -> String {
    artifact::tag_for(digest, SIGNATURE_SUFFIX)
}

/// The simple-signing payload (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SimpleSigning {
    critical: Critical,
    optional: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Image {
    // The spec's own example capitalises it; Go's decoder matches either.
    #[serde(rename = "docker-manifest-digest", alias = "Docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// What a verified payload says.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    /// `critical.identity.docker-reference`: the repository the signer pushed to (cosign
    /// ignores it when verifying; so does debless, but it is reported).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`: what was signed.
    pub digest: Digest,
    /// `optional`: the annotations signed along, if any.
    pub optional: Option<BTreeMap<String, serde_json::Value>>,
}

/// The payload bytes cosign signs for `digest` pushed to `docker_reference`
/// (`REGISTRY/REPOSITORY`, what cosign writes when no `--sign-container-identity` is given),
/// with `annotations` as `optional` (`null` when empty, as cosign without `-a`).
pub fn payload(
    docker_reference: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, SignError> {
    if docker_reference.is_empty() || !docker_reference.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(SignError::Reference {
            reference: docker_reference.to_owned(),
        });
    }
    let optional = (!annotations.is_empty()).then(|| {
        annotations
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect()
    });
    go_json(
        &SimpleSigning {
            critical: Critical {
                identity: Identity {
                    docker_reference: docker_reference.to_owned(),
                },
                image: Image {
                    docker_manifest_digest: digest.to_string(),
                },
                kind: SIGNATURE_TYPE.to_owned(),
            },
            optional,
        },
        "the signature payload",
    )
}

/// Read a simple-signing payload (unverified: call this on bytes whose signature checked).
pub fn parse_payload(bytes: &[u8]) -> Result<Payload, SignError> {
    let parsed: SimpleSigning =
        serde_json::from_slice(bytes).map_err(json_err("signature payload"))?;
    if parsed.critical.kind != SIGNATURE_TYPE {
        return Err(super::doc_err(format!(
            "signature payload: critical.type is {:?}, not {SIGNATURE_TYPE:?}",
            parsed.critical.kind
        )));
    }
    let digest = Digest::parse(&parsed.critical.image.docker_manifest_digest).map_err(|e| {
        super::doc_err(format!(
            "signature payload: critical.image.docker-manifest-digest: {e}"
        ))
    })?;
    Ok(Payload {
        docker_reference: parsed.critical.identity.docker_reference,
        digest,
        optional: parsed.optional,
    })
}

/// Sign `digest` (an image manifest or index pushed to `docker_reference`) with `key`: the
/// `sha256-<hex>.sig` manifest with the new signature appended to `existing` (the manifest
/// already under that tag, if any), as cosign appends. A signature by the same key over the
/// same payload already there is not added twice (cosign's duplicate detector,
/// pkg/cosign/remote/remote.go), so signing again changes nothing.
pub fn sign(
    key: &PrivateKey,
    docker_reference: &str,
    digest: &Digest,
    annotations: &BTreeMap<String, String>,
    existing: Option<&[u8]>,
) -> Result<Artifact, SignError> {
    let payload = payload(docker_reference, digest, annotations)?;
    let signature = b64(&key.sign(&payload));
    let layer = Layer::of(
        SIMPLE_SIGNING_MEDIA_TYPE,
        &payload,
        BTreeMap::from([(SIGNATURE_ANNOTATION.to_owned(), signature)]),
    );
    let mut layers = match existing {
        Some(bytes) => artifact::existing_layers(bytes, "signature")?,
        None => Vec::new(),
    };
    let public = key.public_key();
    let duplicate = layers.iter().any(|old| {
        old.digest == layer.digest
            && old.media_type == layer.media_type
            && old
                .annotations
                .get(SIGNATURE_ANNOTATION)
                .and_then(|s| unb64(s))
                .is_some_and(|sig| public.verify(&payload, &sig).is_ok())
    });
    let mut blobs = BTreeMap::new();
    if !duplicate {
        blobs.insert(layer.digest, payload);
        layers.push(layer);
    }
    artifact::cosign_manifest(layers, signature_tag(digest), blobs)
}

#[cfg(test)]
mod tests;
