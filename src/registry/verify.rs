//! `debless verify` against a registry: read an image back and check what was signed.
//!
//! In order, each step failing with its own error: the image (by tag or digest, its bytes
//! hashed); its cosign signature (`sha256-<hex>.sig`) with the public key; its provenance
//! (referrers, then the `sha256-<hex>.att` tag), whose envelope must verify with the same
//! key and whose subject must be this digest; the provenance's inputs (the lock it carries,
//! and every .deb it lists must be that lock's; a lock the verifier holds must be that
//! lock); and last every manifest, config and layer the image reaches, downloaded and
//! hashed, because a signature vouches for digests and only the bytes show that the
//! registry still serves them.

use std::collections::BTreeMap;
use std::path::Path;

use super::client::Fetched;
use super::referrers::Via;
use super::remote::Repository;
use super::{Access, ImageReference, PushError, PushOptions};
use crate::digest::Digest;
use crate::oci::{Content, Descriptor, Document};
use crate::sign::dsse::IN_TOTO_PAYLOAD_TYPE;
use crate::sign::provenance::{Provenance, Statement, WrittenInputs};
use crate::sign::verify::{
    Blobs, VerifiedAttestation, VerifiedSignature, check_inputs, provenance_of,
    verify_attestations, verify_signatures,
};
use crate::sign::{PublicKey, SignError, artifact, attest, cosign};

/// The most layers a signature or attestation manifest may have for them to be read.
const MAX_ARTIFACT_LAYERS: usize = 64;
/// The largest signature payload read (cosign's are a few hundred bytes).
const MAX_PAYLOAD: u64 = 1 << 20;
/// The largest envelope read: a statement embeds at most 4 MiB of input files, base64
/// twice over (once in `content`, once as the envelope's payload).
const MAX_ENVELOPE: u64 = 16 << 20;
/// Referrer manifests of one subject read at most.
const MAX_REFERRERS: usize = 64;

/// Why an image did not verify.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Talking to the registry failed, or it served altered bytes.
    #[error(transparent)]
    Registry(#[from] PushError),
    /// A signature, envelope, statement or input did not check.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The image is not in the repository.
    #[error("{reference}: no such manifest in {repository}; check the tag or digest")]
    NotFound {
        /// What was asked for.
        reference: String,
        /// `host/repository`.
        repository: String,
    },
    /// The image has no signature.
    #[error(
        "{image}: not signed: {repository} has no {tag}; sign it with `debless push --sign-key` \
         or `debless sign`"
    )]
    Unsigned {
        /// The image digest.
        image: Digest,
        /// `host/repository`.
        repository: String,
        /// The signature tag looked for.
        tag: String,
    },
    /// The image has no provenance attestation.
    #[error(
        "{image}: no provenance: no in-toto referrer ({via}) and no {tag} in {repository}; \
         push it with `debless push --sign-key`"
    )]
    NoProvenance {
        /// The image digest.
        image: Digest,
        /// `host/repository`.
        repository: String,
        /// The attestation tag looked for.
        tag: String,
        /// Where referrers were looked for.
        via: Via,
    },
    /// A signature or attestation manifest is not one debless can read.
    #[error("{what} {digest} in {repository}: {problem}")]
    Artifact {
        /// `signature` or `attestation`.
        what: &'static str,
        /// The manifest.
        digest: Digest,
        /// `host/repository`.
        repository: String,
        /// What is wrong.
        problem: String,
    },
    /// A blob an image or artifact names is not in the repository.
    #[error("{what} {digest} is missing from {repository}; the image is incomplete there")]
    MissingBlob {
        /// What it is (`layer`, `config`, `manifest`, `signature payload`...).
        what: &'static str,
        /// Its digest.
        digest: Digest,
        /// `host/repository`.
        repository: String,
    },
    /// A manifest the image reaches is not an image manifest or index.
    #[error("{digest} in {repository}: {problem}")]
    BadManifest {
        /// The manifest.
        digest: Digest,
        /// `host/repository`.
        repository: String,
        /// What is wrong.
        problem: String,
    },
}

/// What verified.
#[derive(Debug, Clone)]
pub struct Verified {
    /// `host/repository`.
    pub repository: String,
    /// The manifest or index verified.
    pub subject: Fetched,
    /// The signatures that verified (one is enough).
    pub signatures: Vec<VerifiedSignature>,
    /// The provenance statement, verified and about this digest.
    pub provenance: Statement<Provenance>,
    /// Where the provenance was found: a referrer (and how it is listed) or the `.att` tag.
    pub provenance_from: String,
    /// The input files written out (lock, manifest, rules), under the directory given.
    pub inputs: WrittenInputs,
    /// Image manifests the subject reaches (one for a manifest).
    pub images: Vec<RemoteImage>,
    /// Blobs (configs and layers) downloaded and hashed.
    pub blobs: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// One image manifest of what was verified.
#[derive(Debug, Clone)]
pub struct RemoteImage {
    /// The manifest's descriptor (with its platform, when an index gave one).
    pub descriptor: Descriptor,
    /// Its config.
    pub config: Descriptor,
    /// Its layers, bottom first.
    pub layers: Vec<Descriptor>,
}

/// Verify `reference` with `key`: see the module doc. The provenance's input files are
/// written into `inputs_dir` (an empty directory), for a rebuild. `lock`, a lock file the
/// caller trusts, must then be the one the image was built from.
pub fn verify_image(
    reference: &ImageReference,
    key: &PublicKey,
    opts: &PushOptions,
    inputs_dir: &Path,
    lock: Option<&Path>,
) -> Result<Verified, VerifyError> {
    let local_lock = match lock {
        Some(path) => Some((
            path,
            std::fs::read(path).map_err(|source| PushError::File {
                path: path.to_path_buf(),
                what: "cannot read the lock",
                source,
            })?,
        )),
        None => None,
    };
    let repo = Repository::open(&reference.target, Access::Pull, opts)?;
    let repository = repo.name();
    let wanted = reference.reference();
    let subject = repo
        .manifest(&wanted)?
        .ok_or_else(|| VerifyError::NotFound {
            reference: reference.to_string(),
            repository: repository.clone(),
        })?;
    let image = subject.digest;

    // The signature.
    let sig_tag = cosign::signature_tag(&image);
    let sig = repo
        .manifest(&sig_tag)?
        .ok_or_else(|| VerifyError::Unsigned {
            image,
            repository: repository.clone(),
            tag: sig_tag.clone(),
        })?;
    let blobs = artifact_blobs(&repo, &sig, "signature", MAX_PAYLOAD)?;
    let signatures = verify_signatures(&sig.bytes, &blobs, key, &image)?;

    // The provenance: referrers first, then cosign's tag.
    let referrers = repo.referrers(&image)?;
    let mut candidates: Vec<(String, Fetched)> = Vec::new();
    for r in referrers
        .manifests
        .iter()
        .filter(|r| r.artifact_type.as_deref() == Some(IN_TOTO_PAYLOAD_TYPE))
        .take(MAX_REFERRERS)
    {
        if let Some(m) = repo.manifest(&r.digest.to_string())? {
            candidates.push((format!("a referrer listed by {}", referrers.via), m));
        }
    }
    let att_tag = attest::attestation_tag(&image);
    if let Some(m) = repo.manifest(&att_tag)? {
        candidates.push((format!("the {att_tag} tag"), m));
    }
    if candidates.is_empty() {
        return Err(VerifyError::NoProvenance {
            image,
            repository,
            tag: att_tag,
            via: referrers.via,
        });
    }
    let mut failure: Option<SignError> = None;
    let mut found: Option<(String, Vec<VerifiedAttestation>)> = None;
    for (from, manifest) in &candidates {
        let blobs = artifact_blobs(&repo, manifest, "attestation", MAX_ENVELOPE)?;
        match verify_attestations(&manifest.bytes, &blobs, key, &image) {
            Ok(v) => {
                found = Some((from.clone(), v));
                break;
            }
            // A statement about another image says more than a bad signature.
            Err(e @ SignError::SubjectMismatch { .. }) => failure = Some(e),
            Err(e) => {
                if failure.is_none() {
                    failure = Some(e);
                }
            }
        }
    }
    let (provenance_from, verified) = match (found, failure) {
        (Some(f), _) => f,
        (None, Some(e)) => return Err(e.into()),
        (None, None) => unreachable!("every candidate either verified or failed"),
    };
    let provenance = provenance_of(&verified, &image)?;
    let local = local_lock.as_ref().map(|(p, b)| (*p, b.as_slice()));
    let (inputs, _lock) = check_inputs(&provenance.predicate, inputs_dir, local)?;

    // Every byte the image reaches.
    let mut verified_image = Verified {
        repository,
        subject: subject.clone(),
        signatures,
        provenance,
        provenance_from,
        inputs,
        images: Vec::new(),
        blobs: 0,
        bytes: 0,
    };
    walk(&repo, &subject, None, &mut verified_image)?;
    Ok(verified_image)
}

/// The blobs of a signature or attestation manifest's layers, each checked.
fn artifact_blobs(
    repo: &Repository,
    manifest: &Fetched,
    what: &'static str,
    limit: u64,
) -> Result<Blobs, VerifyError> {
    let problem = |problem: String| VerifyError::Artifact {
        what,
        digest: manifest.digest,
        repository: repo.name(),
        problem,
    };
    let layers =
        artifact::existing_layers(&manifest.bytes, what).map_err(|e| problem(e.to_string()))?;
    if layers.len() > MAX_ARTIFACT_LAYERS {
        return Err(problem(format!(
            "it has {} layers, more than the {MAX_ARTIFACT_LAYERS} debless reads",
            layers.len()
        )));
    }
    let mut blobs = BTreeMap::new();
    for layer in layers {
        if layer.size > limit {
            return Err(problem(format!(
                "layer {} is {} bytes, more than the {limit} debless reads",
                layer.digest, layer.size
            )));
        }
        let bytes = repo
            .blob(&layer.digest, limit)?
            .ok_or_else(|| VerifyError::MissingBlob {
                what: if what == "signature" {
                    "signature payload"
                } else {
                    "attestation envelope"
                },
                digest: layer.digest,
                repository: repo.name(),
            })?;
        blobs.insert(layer.digest, bytes);
    }
    Ok(blobs)
}

/// Read `doc` down to its blobs: child manifests by digest, then every config and layer,
/// downloaded and hashed.
fn walk(
    repo: &Repository,
    doc: &Fetched,
    platform_of: Option<&Descriptor>,
    out: &mut Verified,
) -> Result<(), VerifyError> {
    let bad = |problem: String| VerifyError::BadManifest {
        digest: doc.digest,
        repository: repo.name(),
        problem,
    };
    let parsed = Document::parse(&doc.descriptor(), doc.bytes.clone())
        .map_err(|e| bad(crate::text::error_line(&e)))?;
    match parsed.content {
        Content::Index(children) => {
            if platform_of.is_some() {
                return Err(bad(
                    "an index inside an index; debless images have none".into()
                ));
            }
            for child in &children {
                let fetched = repo.manifest(&child.digest.to_string())?.ok_or_else(|| {
                    VerifyError::MissingBlob {
                        what: "manifest",
                        digest: child.digest,
                        repository: repo.name(),
                    }
                })?;
                walk(repo, &fetched, Some(child), out)?;
            }
        }
        Content::Manifest { config, layers } => {
            for (what, d) in
                std::iter::once(("config", &config)).chain(layers.iter().map(|l| ("layer", l)))
            {
                if !repo.verify_blob(d)? {
                    return Err(VerifyError::MissingBlob {
                        what,
                        digest: d.digest,
                        repository: repo.name(),
                    });
                }
                out.blobs += 1;
                out.bytes += d.size;
            }
            out.images.push(RemoteImage {
                descriptor: platform_of.cloned().unwrap_or_else(|| doc.descriptor()),
                config,
                layers,
            });
        }
    }
    Ok(())
}
