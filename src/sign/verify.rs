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
/// envelope layer that verifies and whose statement names `subject`. When none does but
/// one verified for another subject, the error is [`SignError::SubjectMismatch`]: the key
/// is right and the statement is genuine, it just describes another image.
pub fn verify_attestations(
    manifest: &[u8],
    blobs: &Blobs,
    key: &PublicKey,
    subject: &Digest,
) -> Result<Vec<VerifiedAttestation>, SignError> {
    let layers = artifact::existing_layers(manifest, "attestation")?;
    let mut verified = Vec::new();
    let mut reasons = Vec::new();
    let mut elsewhere = Vec::new();
    for layer in &layers {
        match check_attestation(layer, blobs, key, subject) {
            Ok(a) => verified.push(a),
            Err(Rejected::Subject(found)) => elsewhere.extend(found),
            Err(Rejected::Other(why)) => reasons.push(why),
        }
    }
    if verified.is_empty() {
        if !elsewhere.is_empty() {
            return Err(SignError::SubjectMismatch {
                expected: *subject,
                found: elsewhere,
            });
        }
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

/// Why an attestation layer does not count.
enum Rejected {
    /// It verified, but its statement names these subjects, not the one asked for.
    Subject(Vec<String>),
    /// Anything else.
    Other(String),
}

impl From<String> for Rejected {
    fn from(why: String) -> Rejected {
        Rejected::Other(why)
    }
}

fn check_attestation(
    layer: &artifact::Layer,
    blobs: &Blobs,
    key: &PublicKey,
    subject: &Digest,
) -> Result<VerifiedAttestation, Rejected> {
    let at = &layer.digest;
    if layer.media_type != ENVELOPE_MEDIA_TYPE {
        return Err(format!("layer {at}: media type {:?}", layer.media_type).into());
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
        return Err(Rejected::Subject(
            head.subject
                .iter()
                .map(|s| {
                    s.digest
                        .get("sha256")
                        .map_or_else(|| "(no sha256)".to_owned(), |h| format!("sha256:{h}"))
                })
                .collect(),
        ));
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

/// Is `given` (the lock file at `name`, as a verifier has it) the lock the provenance
/// records? Compared by digest: a manifest carries its lock's digest in an annotation, so a
/// lock that differs anywhere builds other digests.
pub fn check_lock(provenance: &Provenance, given: &[u8], name: &str) -> Result<(), SignError> {
    let recorded = &provenance.build_definition.external_parameters.lock;
    let actual = Digest::of(given);
    if recorded.sha256() == Some(actual) {
        return Ok(());
    }
    Err(SignError::LockMismatch {
        recorded: recorded
            .digest
            .get("sha256")
            .map_or_else(|| "no sha256".to_owned(), |h| format!("sha256:{h}")),
        recorded_name: recorded.name.clone().unwrap_or_default(),
        given: name.to_owned(),
        actual,
    })
}

/// Write the provenance's input files into `dir` (an empty directory) and read its lock:
/// `local_lock` (a path and its bytes), when given, must be that lock and stands in for it
/// when the provenance recorded it by digest only. Every .deb the provenance lists must
/// then be the lock's ([`check_dependencies`]). Returns the files written and the lock.
pub fn check_inputs(
    provenance: &Provenance,
    dir: &std::path::Path,
    local_lock: Option<(&std::path::Path, &[u8])>,
) -> Result<(super::provenance::WrittenInputs, Lock), SignError> {
    let external = &provenance.build_definition.external_parameters;
    let lock_name = external.lock.name.clone().unwrap_or_default();
    if let Some((path, bytes)) = local_lock {
        let lock = read_lock(path)?;
        // Dependencies first: naming the first .deb that differs says more than a digest.
        check_dependencies(provenance, &lock)?;
        check_lock(provenance, bytes, &path.display().to_string())?;
    }
    let mut written = external.write_inputs(dir)?;
    if let Some(missing) = written.missing.iter().position(|m| *m == lock_name) {
        let Some((_, bytes)) = local_lock else {
            return Err(super::doc_err(format!(
                "the provenance records its lock {lock_name} by digest only; pass the lock \
                 (--lock FILE) to check the image against it"
            )));
        };
        let path = dir.join(&lock_name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(super::io_err(parent, "cannot create a directory"))?;
        }
        std::fs::write(&path, bytes).map_err(super::io_err(&path, "cannot write the lock"))?;
        written.missing.remove(missing);
        written.written.push(path);
    }
    let lock = read_lock(&dir.join(&lock_name))?;
    check_dependencies(provenance, &lock)?;
    Ok((written, lock))
}

fn read_lock(path: &std::path::Path) -> Result<Lock, SignError> {
    Lock::read(path).map_err(|source| SignError::InputLock { source })
}

/// Read a statement's JSON generically (any predicate).
pub fn statement_json(bytes: &[u8]) -> Result<Statement<serde_json::Value>, SignError> {
    serde_json::from_slice(bytes).map_err(json_err("in-toto statement"))
}

#[cfg(test)]
mod tests;
