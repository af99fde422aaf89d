//! Signing what a repository holds as `cosign sign --key` and `cosign attest --key` do:
//! the `sha256-<hex>.sig` manifest for a manifest or index, and a signed provenance
//! statement both as the `sha256-<hex>.att` manifest and as an OCI 1.1 referrer (the
//! formats are [`crate::sign`]'s; docs/signing.md cites their sources). Everything is
//! read-modify-write on what is already there, and signing is deterministic (RFC 6979), so
//! signing an unchanged image again writes nothing.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::PushError;
use super::plan::Document;
use super::referrers::Via;
use super::remote::Repository;
use crate::digest::Digest;
use crate::oci::Descriptor;
use crate::sign::provenance::{self, Provenance, Statement};
use crate::sign::{PrivateKey, attest, cosign};

/// What signing after a push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignReport {
    /// Manifests and indexes signed (each digest once).
    pub signed: usize,
    /// Of those, how many got a new signature (the others already had this key's).
    pub new_signatures: usize,
    /// Provenance statements attached.
    pub attested: usize,
    /// How the provenance referrers are listed, if any were attached.
    pub referrers: Option<Via>,
    /// Signed envelopes written next to the layout.
    pub envelopes: Vec<PathBuf>,
}

/// Sign `subject` (a manifest or index in `repo`) with `key`, adding the signature to the
/// `.sig` manifest already there; false if that manifest already held it.
pub fn sign_digest(
    repo: &Repository,
    key: &PrivateKey,
    subject: &Digest,
) -> Result<bool, PushError> {
    let tag = cosign::signature_tag(subject);
    let existing = repo.manifest(&tag)?;
    let artifact = cosign::sign(
        key,
        &repo.name(),
        subject,
        &BTreeMap::new(),
        existing.as_ref().map(|f| f.bytes.as_slice()),
    )?;
    if existing.is_some_and(|f| f.digest == artifact.digest) {
        return Ok(false);
    }
    repo.put_tagged(&artifact, &tag)?;
    Ok(true)
}

/// Sign `statement` with `key` and attach it to `subject` (the manifest's or index's own
/// descriptor) as the `.att` manifest and as a referrer. Returns the signed envelope and
/// how the referrer is listed.
pub fn attest_provenance(
    repo: &Repository,
    key: &PrivateKey,
    statement: &Statement<Provenance>,
    subject: &Descriptor,
) -> Result<(Vec<u8>, Via), PushError> {
    let tag = attest::attestation_tag(&subject.digest);
    let existing = repo.manifest(&tag)?;
    let signed = attest::sign_provenance(
        statement,
        key,
        subject,
        existing.as_ref().map(|f| f.bytes.as_slice()),
    )?;
    if existing.is_none_or(|f| f.digest != signed.attestation.digest) {
        repo.put_tagged(&signed.attestation, &tag)?;
    }
    let (via, _) = repo.attach(&signed.referrer, &subject.digest)?;
    Ok((signed.envelope, via))
}

/// After a push of `layout`: sign every pushed tag's manifest or index, and attach each
/// tag's provenance (`<layout>.provenance/<tag>.intoto.json`, which `debless build`
/// writes), writing the signed envelope beside it as `<tag>.intoto.jsonl`. A tag without
/// a statement is an error: a signed image without provenance would not pass
/// `debless verify`.
pub(super) fn sign_pushed(
    repo: &Repository,
    key: &PrivateKey,
    layout: &Path,
    tags: &[(String, Document)],
) -> Result<SignReport, PushError> {
    let dir = provenance::provenance_dir(layout);
    // Read every statement first: a missing one fails the push before anything is signed.
    let mut statements = Vec::new();
    for (tag, doc) in tags {
        let path = dir.join(provenance::statement_file(tag));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PushError::NoProvenance {
                    path,
                    tag: tag.clone(),
                });
            }
            Err(source) => {
                return Err(PushError::File {
                    path,
                    what: "cannot read the provenance statement",
                    source,
                });
            }
        };
        let statement = Statement::<Provenance>::from_json(&bytes)?;
        statements.push((tag, doc, statement));
    }

    let mut report = SignReport::default();
    let mut signed = std::collections::BTreeSet::new();
    for (tag, doc, statement) in statements {
        if signed.insert(doc.digest) {
            report.signed += 1;
            if sign_digest(repo, key, &doc.digest)? {
                report.new_signatures += 1;
            }
        }
        let subject = Descriptor {
            media_type: doc.media_type.clone(),
            digest: doc.digest,
            size: doc.bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        };
        let (envelope, via) = attest_provenance(repo, key, &statement, &subject)?;
        report.attested += 1;
        report.referrers = Some(via);
        let path = dir.join(provenance::envelope_file(tag));
        write_envelope(&path, &envelope)?;
        report.envelopes.push(path);
    }
    Ok(report)
}

/// Write `envelope` and a newline to `path`, atomically.
fn write_envelope(path: &Path, envelope: &[u8]) -> Result<(), PushError> {
    let err = |what: &'static str| {
        let path = path.to_path_buf();
        move |source| PushError::File { path, what, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::tmp::sweep(dir, Some(&name));
    let tmp = crate::tmp::TempFile::new_in(dir, &name, 0o644)
        .map_err(err("cannot create the signed provenance"))?;
    let mut file = tmp.file();
    file.write_all(envelope)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(err("cannot write the signed provenance"))?;
    tmp.persist(path)
        .map_err(err("cannot move the signed provenance into place"))
}
