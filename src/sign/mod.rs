//! Trust at deploy time: signatures and provenance that `cosign verify --key` and
//! `cosign verify-attestation --key` accept, made from a local ECDSA P-256 key.
//!
//! Pure library code: every function here turns bytes into bytes (keys, payloads,
//! envelopes, OCI documents); pushing them and fetching them back is the registry's job.
//! docs/signing.md names the specification behind every format decision.
//!
//! | module | owns |
//! |---|---|
//! | [`keys`] | key pairs: generate, PEM in and out (PKCS#8, SEC1, PKIX), sign and verify bytes |
//! | [`encrypted`] | cosign's password-protected private key (scrypt + NaCl secretbox) |
//! | [`cosign`] | the simple-signing payload and the `sha256-<hex>.sig` manifest |
//! | [`dsse`] | DSSE envelopes and their pre-authentication encoding |
//! | [`provenance`] | in-toto Statement v1 with a SLSA Provenance v1 predicate |
//! | [`attest`] | the `sha256-<hex>.att` manifest and the referrers-API artifact |
//! | [`artifact`] | the OCI documents both of those are written as |
//! | [`verify`] | the reverse: check signatures, attestations, subjects and dependencies |

pub mod artifact;
pub mod attest;
pub mod cosign;
pub mod dsse;
pub mod encrypted;
pub mod keys;
#[cfg(test)]
mod oracle;
pub mod provenance;
pub mod verify;

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

pub use artifact::{Artifact, Layer};
pub use keys::{PrivateKey, PublicKey};

/// Why a key, signature, envelope or provenance document could not be made or checked.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// Reading or writing a file failed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A key file is already there; keys are never overwritten.
    #[error(
        "{}: already exists; a key is never overwritten: move it away or choose another path",
        path.display()
    )]
    KeyExists {
        /// The file that exists.
        path: PathBuf,
    },
    /// Text that should hold a key does not hold one debless can use.
    #[error("{key}: {what}")]
    Key {
        /// The key file (or `PEM text` for bytes that came from memory).
        key: String,
        /// What is wrong and what to do.
        what: String,
    },
    /// An encrypted key needs a password and none was given.
    #[error(
        "{key}: is an encrypted cosign key; set COSIGN_PASSWORD to its password (empty for none)"
    )]
    PasswordNeeded {
        /// The key file.
        key: String,
    },
    /// An encrypted key did not decrypt.
    #[error(
        "{key}: does not decrypt with the password given (COSIGN_PASSWORD); check the password, \
         or that the file is whole"
    )]
    WrongPassword {
        /// The key file.
        key: String,
    },
    /// A docker reference that cannot go into a signature payload.
    #[error(
        "{reference:?} is not a docker reference (REGISTRY/REPOSITORY, printable ASCII without \
         spaces); pass the repository the image is pushed to"
    )]
    Reference {
        /// The value given.
        reference: String,
    },
    /// A JSON document could not be read or written.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A document has the wrong shape (a field missing, a media type unexpected...).
    #[error("{what}")]
    Document {
        /// What is wrong, naming the document and field.
        what: String,
    },
    /// Content does not hash to the digest that names it.
    #[error(
        "{what}: content hashes to {actual}, but {expected} names it; it was altered or is another file"
    )]
    DigestMismatch {
        /// Which content.
        what: String,
        /// The digest it is named by.
        expected: Digest,
        /// What it hashes to.
        actual: Digest,
    },
    /// No signature or attestation verified with the key.
    #[error(
        "{what} for {digest}: none verifies with the public key given ({}); check that the key is \
         the one the image was signed with",
        reasons.join("; ")
    )]
    NotVerified {
        /// Signatures or attestations.
        what: &'static str,
        /// The image, index or subject they were for.
        digest: Digest,
        /// Why each candidate failed.
        reasons: Vec<String>,
    },
    /// A verified statement is about something else.
    #[error(
        "the provenance's subject is {}, not {expected}: it describes another image",
        if found.is_empty() { "empty".to_string() } else { found.join(", ") }
    )]
    SubjectMismatch {
        /// The image or index digest.
        expected: Digest,
        /// The subject digests the statement names.
        found: Vec<String>,
    },
    /// The lock a verifier holds is not the one the image was built from.
    #[error(
        "the image was built from lock {recorded} ({recorded_name}), but {given} is {actual}; \
         it was not built from this lock"
    )]
    LockMismatch {
        /// The lock's digest the provenance records.
        recorded: String,
        /// Its name there (`snapshots/debian13.lock`).
        recorded_name: String,
        /// The lock given.
        given: String,
        /// Its digest.
        actual: Digest,
    },
    /// A lock a provenance check reads does not read.
    #[error(transparent)]
    InputLock {
        /// Why.
        source: crate::snapshot::lock::LockError,
    },
    /// A resolved dependency of the provenance is not the lock's.
    #[error(
        "provenance dependency {name} ({digest}) {problem}; the image was not built from this lock"
    )]
    DependencyNotLocked {
        /// The dependency's name (the .deb's pool path).
        name: String,
        /// The digest the provenance records.
        digest: String,
        /// How it differs from the lock.
        problem: String,
    },
}

/// Map an I/O error to [`SignError::Io`] for `path`.
fn io_err(path: &std::path::Path, what: &'static str) -> impl FnOnce(io::Error) -> SignError {
    let path = path.to_path_buf();
    move |source| SignError::Io { path, what, source }
}

/// Map a serde_json error to [`SignError::Json`] for the document `what`.
fn json_err(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> SignError {
    let what = what.into();
    move |source| SignError::Json { what, source }
}

/// A [`SignError::Document`] saying `what`.
fn doc_err(what: impl Into<String>) -> SignError {
    SignError::Document { what: what.into() }
}

/// Base64 as Go's `encoding/base64.StdEncoding` writes it (padded, `+/`), the alphabet of
/// every base64 field cosign and DSSE write.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode standard or URL-safe base64, padded or not: DSSE verifiers "MUST accept either"
/// alphabet (secure-systems-lab/dsse protocol.md), and accepting both paddings costs nothing.
fn unb64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let standard = GeneralPurpose::new(&base64::alphabet::STANDARD, config);
    let url = GeneralPurpose::new(&base64::alphabet::URL_SAFE, config);
    standard.decode(text).or_else(|_| url.decode(text)).ok()
}

/// `value` as Go's `encoding/json.Marshal` writes it, for the documents whose exact bytes
/// cosign defines (payload, config, manifest): serde_json's compact output with the five
/// characters Go additionally escapes inside strings (`<`, `>`, `&`, U+2028, U+2029). They
/// only ever appear inside strings, so a byte replace is exact; UTF-8 is self-synchronising,
/// so the three-byte sequences cannot match across characters.
fn go_json<T: serde::Serialize>(value: &T, what: &str) -> Result<Vec<u8>, SignError> {
    let plain = serde_json::to_vec(value).map_err(json_err(format!("cannot encode {what}")))?;
    let mut out = Vec::with_capacity(plain.len());
    let mut i = 0;
    while i < plain.len() {
        match plain[i] {
            b'<' => out.extend_from_slice(b"\\u003c"),
            b'>' => out.extend_from_slice(b"\\u003e"),
            b'&' => out.extend_from_slice(b"\\u0026"),
            0xE2 if plain.get(i + 1) == Some(&0x80)
                && matches!(plain.get(i + 2), Some(0xA8 | 0xA9)) =>
            {
                let last = if plain[i + 2] == 0xA8 { b'8' } else { b'9' };
                out.extend_from_slice(b"\\u202");
                out.push(last);
                i += 3;
                continue;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_escapes_what_go_escapes() {
        let v = serde_json::json!({"k": "a<b>&c\u{2028}\u{2029}é"});
        let out = go_json(&v, "test").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"k":"a\u003cb\u003e\u0026c\u2028\u2029é"}"#
        );
    }

    #[test]
    fn base64_reads_both_alphabets_and_paddings() {
        let bytes = [0xfbu8, 0xff, 0xbf, 0x01];
        let std = b64(&bytes);
        assert_eq!(std, "+/+/AQ==");
        for text in ["+/+/AQ==", "+/+/AQ", "-_-_AQ==", "-_-_AQ"] {
            assert_eq!(unb64(text).as_deref(), Some(&bytes[..]), "{text}");
        }
        assert_eq!(unb64("not base64!"), None);
    }
}
