//! ECDSA P-256 key pairs, as cosign uses them: generate, read and write PEM, sign and
//! verify bytes.
//!
//! Private keys are read from PKCS#8 (`PRIVATE KEY`, what `openssl genpkey` writes), SEC1
//! (`EC PRIVATE KEY`, what `openssl ecparam -genkey` writes) and cosign's own encrypted
//! form (`ENCRYPTED SIGSTORE PRIVATE KEY`, and the older `ENCRYPTED COSIGN PRIVATE KEY`;
//! see [`super::encrypted`]); public keys are PKIX `PUBLIC KEY`, what `cosign verify --key`
//! takes. Signatures are ECDSA over SHA-256 of the message, ASN.1 DER encoded: what
//! sigstore's ECDSA verifier checks (`ecdsa.VerifyASN1`). Signing uses RFC 6979
//! deterministic nonces, so signing the same bytes twice gives the same signature and a
//! re-signed image's `.sig` manifest does not change.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::EncodePublicKey as _;
use p256::pkcs8::der::pem::LineEnding;
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};

use super::{SignError, encrypted, io_err};

/// The environment variable cosign reads a private key's password from.
pub const PASSWORD_ENV: &str = "COSIGN_PASSWORD";

/// PEM label of a PKCS#8 private key.
const PKCS8_LABEL: &str = "PRIVATE KEY";
/// PEM label of a SEC1 EC private key.
const SEC1_LABEL: &str = "EC PRIVATE KEY";
/// PEM label `openssl ecparam -genkey` writes before the key; carries nothing we need.
const EC_PARAMETERS_LABEL: &str = "EC PARAMETERS";
/// PEM label of a PKIX public key.
const PUBLIC_LABEL: &str = "PUBLIC KEY";

/// An ECDSA P-256 private key.
#[derive(Clone)]
pub struct PrivateKey {
    inner: SigningKey,
}

/// An ECDSA P-256 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    inner: VerifyingKey,
}

impl std::fmt::Debug for PrivateKey {
    /// The public half only: a private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("public", &self.public_key())
            .finish()
    }
}

/// The password in `$COSIGN_PASSWORD`, if set (set but empty is the empty password, as
/// cosign takes it).
pub fn password_from_env() -> Option<Zeroizing<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt as _;
    std::env::var_os(PASSWORD_ENV).map(|v| Zeroizing::new(v.as_bytes().to_vec()))
}

impl PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> PrivateKey {
        PrivateKey {
            inner: SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// Its public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: *self.inner.verifying_key(),
        }
    }

    /// ECDSA-SHA256 signature of `message`, ASN.1 DER encoded.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.inner.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, SignError> {
        p256::SecretKey::from(&self.inner)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| key_err("the new key", format!("cannot encode it as PKCS#8: {e}")))
    }

    /// The key as cosign's encrypted PEM (`-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----`),
    /// sealed with `password`: what `cosign generate-key-pair` writes.
    pub fn to_encrypted_pem(&self, password: &[u8]) -> Result<Zeroizing<String>, SignError> {
        let der = p256::SecretKey::from(&self.inner)
            .to_pkcs8_der()
            .map_err(|e| key_err("the new key", format!("cannot encode it as PKCS#8: {e}")))?;
        encrypted::seal(der.as_bytes(), password)
    }

    /// Read a private key from PEM text. `password` opens cosign's encrypted form; `key`
    /// names the text in errors (a path, or `PEM text`).
    pub fn from_pem(
        text: &str,
        password: Option<&[u8]>,
        key: &str,
    ) -> Result<PrivateKey, SignError> {
        let blocks = pem_blocks(text, key)?;
        let Some((label, block)) = blocks
            .into_iter()
            .find(|(label, _)| label != EC_PARAMETERS_LABEL)
        else {
            return Err(key_err(key, "holds no PEM block; expected a private key"));
        };
        let secret = match label.as_str() {
            PKCS8_LABEL => p256::SecretKey::from_pkcs8_pem(block).map_err(|e| {
                key_err(
                    key,
                    format!("is not a PKCS#8 ECDSA P-256 private key ({e}); only P-256 keys are supported"),
                )
            })?,
            SEC1_LABEL => p256::SecretKey::from_sec1_pem(block).map_err(|e| {
                key_err(
                    key,
                    format!("is not a SEC1 ECDSA P-256 private key ({e}); only P-256 keys are supported"),
                )
            })?,
            encrypted::SIGSTORE_LABEL | encrypted::COSIGN_LABEL => {
                let Some(password) = password else {
                    return Err(SignError::PasswordNeeded { key: key.to_owned() });
                };
                let der = encrypted::open(block, password, key)?;
                p256::SecretKey::from_pkcs8_der(&der).map_err(|e| {
                    key_err(
                        key,
                        format!(
                            "decrypts, but not to a PKCS#8 ECDSA P-256 private key ({e}); \
                             only P-256 keys are supported"
                        ),
                    )
                })?
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(key_err(
                    key,
                    "is a PKCS#8 key encrypted by OpenSSL, which debless does not read; decrypt it \
                     (openssl pkey -in KEY -out PLAIN) or make a cosign key with `debless keygen`",
                ));
            }
            other => {
                return Err(key_err(
                    key,
                    format!(
                        "holds a {other:?} PEM block; expected PRIVATE KEY, EC PRIVATE KEY or \
                         ENCRYPTED SIGSTORE PRIVATE KEY"
                    ),
                ));
            }
        };
        Ok(PrivateKey {
            inner: SigningKey::from(secret),
        })
    }

    /// Read the private key file `path` (see [`PrivateKey::from_pem`]).
    pub fn read(path: &Path, password: Option<&[u8]>) -> Result<PrivateKey, SignError> {
        let text = Zeroizing::new(
            fs::read_to_string(path).map_err(io_err(path, "cannot read the private key"))?,
        );
        PrivateKey::from_pem(&text, password, &path.display().to_string())
    }
}

impl PublicKey {
    /// Read a PKIX public key (`-----BEGIN PUBLIC KEY-----`) from PEM text; `key` names the
    /// text in errors.
    pub fn from_pem(text: &str, key: &str) -> Result<PublicKey, SignError> {
        let blocks = pem_blocks(text, key)?;
        let Some((_, block)) = blocks.into_iter().find(|(label, _)| label == PUBLIC_LABEL) else {
            return Err(key_err(
                key,
                "holds no PUBLIC KEY PEM block; pass the public key (cosign.pub), not the private one",
            ));
        };
        let public = p256::PublicKey::from_public_key_pem(block).map_err(|e| {
            key_err(
                key,
                format!("is not an ECDSA P-256 public key ({e}); only P-256 keys are supported"),
            )
        })?;
        Ok(PublicKey {
            inner: VerifyingKey::from(public),
        })
    }

    /// Read the public key file `path`.
    pub fn read(path: &Path) -> Result<PublicKey, SignError> {
        let text = fs::read_to_string(path).map_err(io_err(path, "cannot read the public key"))?;
        PublicKey::from_pem(&text, &path.display().to_string())
    }

    /// The key as PKIX PEM (`-----BEGIN PUBLIC KEY-----`), what `cosign verify --key` reads.
    pub fn to_pem(&self) -> Result<String, SignError> {
        p256::PublicKey::from(&self.inner)
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| key_err("the public key", format!("cannot encode it as PKIX: {e}")))
    }

    /// Does `signature` (ASN.1 DER) sign `message` with this key?
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), String> {
        let signature = Signature::from_der(signature)
            .map_err(|e| format!("the signature is not an ASN.1 DER ECDSA signature ({e})"))?;
        self.inner
            .verify(message, &signature)
            .map_err(|_| "the signature does not match the signed bytes and key".to_string())
    }
}

/// Write a new key pair: `private` (mode 0600) and `public` (0644), refusing to overwrite
/// either. With a `password` the private key is cosign's encrypted PEM (what
/// `cosign sign --key` loads), otherwise unencrypted PKCS#8.
pub fn write_key_pair(
    key: &PrivateKey,
    private: &Path,
    public: &Path,
    password: Option<&[u8]>,
) -> Result<(), SignError> {
    // Both checked before either is written, so a refusal leaves nothing half made.
    for path in [private, public] {
        if path.symlink_metadata().is_ok() {
            return Err(SignError::KeyExists {
                path: path.to_path_buf(),
            });
        }
    }
    let private_pem = match password {
        Some(p) => key.to_encrypted_pem(p)?,
        None => key.to_pkcs8_pem()?,
    };
    let public_pem = key.public_key().to_pem()?;
    write_new(private, private_pem.as_bytes(), 0o600)?;
    write_new(public, public_pem.as_bytes(), 0o644)
}

/// Create `path` with `mode` and write `bytes`; an existing file (or link) is an error, and
/// `create_new` makes that check and the creation one step.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SignError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                SignError::KeyExists {
                    path: path.to_path_buf(),
                }
            } else {
                io_err(path, "cannot create the key file")(e)
            }
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(path, "cannot write the key file"))
}

/// A [`SignError::Key`].
fn key_err(key: &str, what: impl Into<String>) -> SignError {
    SignError::Key {
        key: key.to_owned(),
        what: what.into(),
    }
}

/// Every `-----BEGIN L-----` ... `-----END L-----` block of `text`, with its label, in
/// order. Text around the blocks is ignored, as RFC 7468 parsers are told to.
fn pem_blocks<'t>(text: &'t str, key: &str) -> Result<Vec<(String, &'t str)>, SignError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let from = &rest[start..];
        let after = &from["-----BEGIN ".len()..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| key_err(key, "has a PEM BEGIN line that does not end in -----"))?;
        let label = &after[..label_end];
        let end_line = format!("-----END {label}-----");
        let end = from.find(&end_line).ok_or_else(|| {
            key_err(
                key,
                format!("has no {end_line} line; the file is cut short"),
            )
        })?;
        blocks.push((label.to_owned(), &from[..end + end_line.len()]));
        rest = &from[end + end_line.len()..];
    }
    Ok(blocks)
}

/// The fixed-size `r || s` form of a DER signature (the form the DSSE test vector uses).
#[cfg(test)]
pub(crate) fn raw_signature(der: &[u8]) -> [u8; 64] {
    let sig = Signature::from_der(der).expect("DER signature");
    sig.to_bytes().into()
}

/// A key from its secret scalar (big-endian), for test vectors.
#[cfg(test)]
pub(crate) fn from_scalar(bytes: &[u8; 32]) -> PrivateKey {
    PrivateKey {
        inner: SigningKey::from_bytes(bytes.into()).expect("valid scalar"),
    }
}

#[cfg(test)]
mod tests;
