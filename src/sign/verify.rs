//! The reverse of signing: given the documents fetched back (a `.sig` or `.att` manifest,
//! a referrer, their blobs) and a public key, say what verified, and check a provenance
//! statement against the image and the lock.
//!
//! The checks are cosign's: a signature layer counts when its payload blob hashes to the
//! layer's digest, its annotation's signature verifies over those bytes, and the payload
//! names the image's digest (cosign `SimpleClaimVerifier`); an attestation layer counts
//! when its DSSE envelope verifies with type `application/vnd.in-toto+json` and a subject
//! carries the image's sha256 (cosign `IntotoSubjectClaimVerifier`). One layer that counts
//! is enough; the others are reported only when none does.

use std::collections::BTreeMap;

use super::cosign::{self, Payload, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE};
use super::dsse::{ENVELOPE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE};
use super::keys::PublicKey;
use super::provenance::{DEBLESS_DEPENDENCY, Provenance, Statement};
use super::{SignError, artifact, json_err, unb64};
use crate::digest::Digest;
use crate::snapshot::lock::Lock;

/// A signature that verified.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedSignature {
    /// What the signed payload says.
    pub payload: Payload,
    /// The layer (payload blob) it came from.
    pub layer: Digest,
}

/// An attestation that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAttestation {
    /// The statement's predicate type.
    pub predicate_type: String,
    /// The statement's bytes, exactly as signed.
    pub statement: Vec<u8>,
    /// The layer (envelope blob) it came from.
    pub layer: Digest,
}

/// Blob bytes by digest: the layers of the manifest being verified, as fetched.
pub type Blobs = BTreeMap<Digest, Vec<u8>>;

/// The layer's blob, present and hashing to its digest.
fn blob<'b>(blobs: &'b Blobs, layer: &artifact::Layer) -> Result<&'b [u8], String> {
    let bytes = blobs
        .get(&layer.digest)
        .ok_or_else(|| format!("layer {}: blob not given", layer.digest))?;
    let actual = Digest::of(bytes);
    if actual != layer.digest || bytes.len() as u64 != layer.size {
        return Err(format!(
            "layer {}: blob hashes to {actual} ({} bytes, {} declared)",
            layer.digest,
            bytes.len(),
            layer.size
        ));
    }
    Ok(bytes)
}

/// Check the `.sig` manifest `manifest` of `image` with `key`: every signature layer that
/// verifies and names `image`.
pub fn verify_signatures(
    manifest: &[u8],
    blobs: &Blobs,
    key: &PublicKey,
    image: &Digest,
) -> Result<Vec<VerifiedSignature>, SignError> {
    let layers = artifact::existing_layers(manifest, "signature")?;
    let mut verified = Vec::new();
    let mut reasons = Vec::new();
    for layer in &layers {
        match check_signature(layer, blobs, key, image) {
            Ok(payload) => verified.push(VerifiedSignature {
                payload,
                layer: layer.digest,
            }),
            Err(why) => reasons.push(why),
        }
    }
    if verified.is_empty() {
        if reasons.is_empty() {
            reasons.push("the manifest has no layers".to_owned());
        }
        return Err(SignError::NotVerified {
            what: "signatures",
            digest: *image,
            reasons,
        });
    }
    Ok(verified)
}

fn check_signature(
    layer: &artifact::Layer,
    blobs: &Blobs,
    key: &PublicKey,
    image: &Digest,
) -> Result<Payload, String> {
    let at = &layer.digest;
    if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE {
        return Err(format!("layer {at}: media type {:?}", layer.media_type));
    }
    let payload = blob(blobs, layer)?;
    let signature = layer
        .annotations
        .get(SIGNATURE_ANNOTATION)
        .ok_or_else(|| format!("layer {at}: no {SIGNATURE_ANNOTATION} annotation"))?;
    let signature =
        unb64(signature).ok_or_else(|| format!("layer {at}: the signature is not base64"))?;
    key.verify(payload, &signature)
        .map_err(|e| format!("layer {at}: {e}"))?;
    let parsed = cosign::parse_payload(payload).map_err(|e| format!("layer {at}: {e}"))?;
    if parsed.digest != *image {
        return Err(format!(
            "layer {at}: signs {}, not this image",
            parsed.digest
        ));
    }
    Ok(parsed)
}

/// Check an attestation manifest (`.att` or referrer) of `subject` with `key`: every
/// envelope layer that verifies and whose statement names `subject`.
pub fn verify_attestations(
    manifest: &[u8],
    blobs: &Blobs,
    key: &PublicKey,
    subject: &Digest,
) -> Result<Vec<VerifiedAttestation>, SignError> {
    let layers = artifact::existing_layers(manifest, "attestation")?;
    let mut verified = Vec::new();
    let mut reasons = Vec::new();
    for layer in &layers {
        match check_attestation(layer, blobs, key, subject) {
            Ok(a) => verified.push(a),
            Err(why) => reasons.push(why),
        }
    }
    if verified.is_empty() {
        if reasons.is_empty() {
            reasons.push("the manifest has no layers".to_owned());
        }
        return Err(SignError::NotVerified {
            what: "attestations",
            digest: *subject,
            reasons,
        });
    }
    Ok(verified)
}

fn check_attestation(
    layer: &artifact::Layer,
    blobs: &Blobs,
    key: &PublicKey,
    subject: &Digest,
) -> Result<VerifiedAttestation, String> {
    let at = &layer.digest;
    if layer.media_type != ENVELOPE_MEDIA_TYPE {
        return Err(format!("layer {at}: media type {:?}", layer.media_type));
    }
    let envelope =
        Envelope::from_json(blob(blobs, layer)?).map_err(|e| format!("layer {at}: {e}"))?;
    let statement = envelope
        .verify(key, IN_TOTO_PAYLOAD_TYPE)
        .map_err(|e| format!("layer {at}: {e}"))?;
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "predicateType")]
        predicate_type: String,
        subject: Vec<super::provenance::ResourceDescriptor>,
    }
    let head: Head = serde_json::from_slice(&statement)
        .map_err(|e| format!("layer {at}: the statement is not in-toto JSON ({e})"))?;
    if !head.subject.iter().any(|s| s.sha256() == Some(*subject)) {
        return Err(format!("layer {at}: no subject has this digest"));
    }
    Ok(VerifiedAttestation {
        predicate_type: head.predicate_type,
        statement,
        layer: *at,
    })
}

/// The debless provenance among `verified`, for `subject`.
pub fn provenance_of(
    verified: &[VerifiedAttestation],
    subject: &Digest,
) -> Result<Statement<Provenance>, SignError> {
    let Some(found) = verified
        .iter()
        .find(|a| a.predicate_type == super::provenance::PROVENANCE_PREDICATE_TYPE)
    else {
        return Err(SignError::Document {
            what: format!(
                "no SLSA provenance among the attestations of {subject}; was it pushed with \
                 debless push --sign-key?"
            ),
        });
    };
    let statement = Statement::<Provenance>::from_json(&found.statement)?;
    check_subject(&statement, subject)?;
    Ok(statement)
}

/// Is `digest` among the statement's subjects?
pub fn check_subject<P>(statement: &Statement<P>, digest: &Digest) -> Result<(), SignError> {
    if statement
        .subject
        .iter()
        .any(|s| s.sha256() == Some(*digest))
    {
        return Ok(());
    }
    Err(SignError::SubjectMismatch {
        expected: *digest,
        found: statement
            .subject
            .iter()
            .map(|s| {
                s.digest
                    .get("sha256")
                    .map_or_else(|| "(no sha256)".to_owned(), |h| format!("sha256:{h}"))
            })
            .collect(),
    })
}

/// Is every .deb the provenance names the lock's, by pool path and SHA-256? (The debless
/// binary is the one dependency not in a lock.)
pub fn check_dependencies(provenance: &Provenance, lock: &Lock) -> Result<(), SignError> {
    let mut locked: BTreeMap<&str, Vec<Digest>> = BTreeMap::new();
    for p in &lock.packages {
        locked
            .entry(p.filename.as_str())
            .or_default()
            .push(p.sha256);
    }
    for dep in &provenance.build_definition.resolved_dependencies {
        let name = dep.name.as_deref().unwrap_or("(unnamed)");
        if name == DEBLESS_DEPENDENCY {
            continue;
        }
        let recorded = dep
            .digest
            .get("sha256")
            .map_or_else(|| "no sha256".to_owned(), |h| format!("sha256:{h}"));
        let Some(digest) = dep.sha256() else {
            return Err(SignError::DependencyNotLocked {
                name: name.to_owned(),
                digest: recorded,
                problem: "has no well-formed sha256".to_owned(),
            });
        };
        match locked.get(name) {
            None => {
                return Err(SignError::DependencyNotLocked {
                    name: name.to_owned(),
                    digest: recorded,
                    problem: "is not in the lock".to_owned(),
                });
            }
            Some(digests) if !digests.contains(&digest) => {
                return Err(SignError::DependencyNotLocked {
                    name: name.to_owned(),
                    digest: recorded,
                    problem: format!(
                        "differs from the lock's {}",
                        digests
                            .iter()
                            .map(|d| d.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Read a statement's JSON generically (any predicate).
pub fn statement_json(bytes: &[u8]) -> Result<Statement<serde_json::Value>, SignError> {
    serde_json::from_slice(bytes).map_err(json_err("in-toto statement"))
}

#[cfg(test)]
mod tests;
