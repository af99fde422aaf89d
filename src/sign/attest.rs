//! Attestations (signed in-toto statements) stored two ways: as cosign stores them, in a
//! manifest tagged `sha256-<hex>.att` whose layers are DSSE envelopes
//! (sigstore/cosign specs/ATTESTATION_SPEC.md), and as an OCI 1.1 referrer, a manifest
//! whose `subject` is the image and whose `artifactType` is the in-toto media type, which
//! a registry's referrers API lists.
//!
//! Each layer is what `cosign attest` (key-based, without the new bundle format) attaches:
//! media type `application/vnd.dsse.envelope.v1+json`, annotations `predicateType` and an
//! empty `dev.cosignproject.cosign/signature` (the signature is inside the envelope;
//! cosign cmd/cosign/cli/attest/attest.go and pkg/oci/static `NewAttestation`). The
//! referrer lists the same layer, as cosign's `WriteAttestationsReferrer` does
//! (pkg/oci/remote/write.go).

use std::collections::BTreeMap;

use super::SignError;
use super::artifact::{self, Artifact, Layer};
use super::cosign::SIGNATURE_ANNOTATION;
use super::dsse::{ENVELOPE_MEDIA_TYPE, Envelope, IN_TOTO_PAYLOAD_TYPE};
use super::keys::PrivateKey;
use super::provenance::{Provenance, Statement};
use crate::digest::Digest;
use crate::oci::Descriptor;

/// Layer annotation naming the statement's predicate type (cosign attest.go).
pub const PREDICATE_TYPE_ANNOTATION: &str = "predicateType";
/// Tag suffix of the attestation manifest.
pub const ATTESTATION_SUFFIX: &str = "att";

/// The tag attestations of `digest` are stored under: `sha256-<hex>.att`.
pub fn attestation_tag(digest: &Digest) -> String {
    artifact::tag_for(digest, ATTESTATION_SUFFIX)
}

/// The layer an envelope is stored as.
pub fn envelope_layer(envelope: &[u8], predicate_type: &str) -> Layer {
    Layer::of(
        ENVELOPE_MEDIA_TYPE,
        envelope,
        BTreeMap::from([
            (SIGNATURE_ANNOTATION.to_owned(), String::new()),
            (
                PREDICATE_TYPE_ANNOTATION.to_owned(),
                predicate_type.to_owned(),
            ),
        ]),
    )
}

/// The `sha256-<hex>.att` manifest for `subject` with `envelope` appended to `existing`
/// (the manifest already under that tag, if any). cosign would append a second copy of an
/// envelope already there; debless leaves an identical layer alone, so pushing the same
/// (reproducible) provenance again changes nothing.
pub fn attestation_manifest(
    envelope: &[u8],
    predicate_type: &str,
    subject: &Digest,
    existing: Option<&[u8]>,
) -> Result<Artifact, SignError> {
    let layer = envelope_layer(envelope, predicate_type);
    let mut layers = match existing {
        Some(bytes) => artifact::existing_layers(bytes, "attestation")?,
        None => Vec::new(),
    };
    let mut blobs = BTreeMap::new();
    if !layers.contains(&layer) {
        blobs.insert(layer.digest, envelope.to_vec());
        layers.push(layer);
    }
    artifact::cosign_manifest(layers, attestation_tag(subject), blobs)
}

/// The referrer manifest carrying `envelope` for `subject` (the image manifest's or
/// index's own descriptor: media type, digest, size).
pub fn referrer_manifest(
    envelope: &[u8],
    predicate_type: &str,
    subject: &Descriptor,
) -> Result<Artifact, SignError> {
    let layer = envelope_layer(envelope, predicate_type);
    artifact::referrer_manifest(
        IN_TOTO_PAYLOAD_TYPE,
        vec![(layer, envelope.to_vec())],
        subject,
    )
}

/// A signed provenance statement in every form debless stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedProvenance {
    /// The DSSE envelope's bytes (also what is written next to the layout).
    pub envelope: Vec<u8>,
    /// The `sha256-<hex>.att` manifest.
    pub attestation: Artifact,
    /// The referrer manifest.
    pub referrer: Artifact,
}

/// Sign `statement` with `key` and wrap it for `subject` (its first subject's manifest or
/// index), adding to `existing_att` (the `.att` manifest already pushed, if any).
pub fn sign_provenance(
    statement: &Statement<Provenance>,
    key: &PrivateKey,
    subject: &Descriptor,
    existing_att: Option<&[u8]>,
) -> Result<SignedProvenance, SignError> {
    if !statement
        .subject
        .iter()
        .any(|s| s.sha256() == Some(subject.digest))
    {
        return Err(SignError::SubjectMismatch {
            expected: subject.digest,
            found: statement
                .subject
                .iter()
                .filter_map(|s| s.sha256().map(|d| d.to_string()))
                .collect(),
        });
    }
    let body = statement.to_json()?;
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, &body, key).to_json()?;
    let predicate_type = &statement.predicate_type;
    Ok(SignedProvenance {
        attestation: attestation_manifest(
            &envelope,
            predicate_type,
            &subject.digest,
            existing_att,
        )?,
        referrer: referrer_manifest(&envelope, predicate_type, subject)?,
        envelope,
    })
}
