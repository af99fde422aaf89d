//! cosign's password-protected private key: the PKCS#8 DER of the key, sealed with NaCl
//! secretbox (XSalsa20-Poly1305) under a key derived from the password by scrypt, written
//! as JSON inside a PEM block labelled `ENCRYPTED SIGSTORE PRIVATE KEY`.
//!
//! The JSON is go-securesystemslib's `encrypted` package's (encrypted/encrypted.go):
//! `{"kdf":{"name":"scrypt","params":{"N":..,"r":8,"p":1},"salt":B64},
//!   "cipher":{"name":"nacl/secretbox","nonce":B64},"ciphertext":B64}`, base64 as Go
//! writes `[]byte`, the ciphertext as `secretbox.Seal` writes it (16-byte tag, then the
//! encrypted bytes). Only the three scrypt parameter sets that package knows are accepted,
//! as it does, so a tampered file cannot make a reader spend gigabytes.

use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::der::pem::{self, LineEnding};
use rand_core::RngCore as _;
use serde::{Deserialize, Serialize};

use super::{SignError, b64, unb64};

/// The PEM label `cosign generate-key-pair` writes.
pub const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label older cosign releases wrote; still read.
pub const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// scrypt (N, r, p) sets the reader accepts: legacy (2^15), standard (2^16, what is
/// written) and OWASP (2^17), as go-securesystemslib's `CheckParams`.
const ACCEPTED: [(u32, u32, u32); 3] = [(1 << 15, 8, 1), (1 << 16, 8, 1), (1 << 17, 8, 1)];
/// The set new keys are written with (go-securesystemslib's default, "Standard").
const WRITTEN: (u32, u32, u32) = (1 << 16, 8, 1);

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: Params,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Params {
    #[serde(rename = "N")]
    n: u32,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Seal `plaintext` (a PKCS#8 DER private key) with `password`, as PEM.
pub fn seal(plaintext: &[u8], password: &[u8]) -> Result<Zeroizing<String>, SignError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rand_core::OsRng.fill_bytes(&mut salt);
    rand_core::OsRng.fill_bytes(&mut nonce);
    seal_with(plaintext, password, &salt, &nonce)
}

/// [`seal`] with a given salt and nonce (tests pin them).
fn seal_with(
    plaintext: &[u8],
    password: &[u8],
    salt: &[u8],
    nonce: &[u8; NONCE_LEN],
) -> Result<Zeroizing<String>, SignError> {
    let (n, r, p) = WRITTEN;
    let key = derive(password, salt, n, r, p, "the new key")?;
    let ciphertext = XSalsa20Poly1305::new(key.as_slice().into())
        .encrypt(Nonce::from_slice(nonce), plaintext)
        .map_err(|_| seal_err("the new key", "cannot seal it"))?;
    let sealed = Sealed {
        kdf: Kdf {
            name: KDF_NAME.to_owned(),
            params: Params { n, r, p },
            salt: b64(salt),
        },
        cipher: Cipher {
            name: CIPHER_NAME.to_owned(),
            nonce: b64(nonce),
        },
        ciphertext: b64(&ciphertext),
    };
    let json = serde_json::to_vec(&sealed)
        .map_err(|e| seal_err("the new key", format!("cannot encode it: {e}")))?;
    pem::encode_string(SIGSTORE_LABEL, LineEnding::LF, &json)
        .map(Zeroizing::new)
        .map_err(|e| seal_err("the new key", format!("cannot write PEM: {e}")))
}

/// Open the PEM block `block` (one of the two labels) with `password`: the PKCS#8 DER
/// inside. `key` names the file in errors.
pub fn open(block: &str, password: &[u8], key: &str) -> Result<Zeroizing<Vec<u8>>, SignError> {
    // Decoded by hand, not with a strict RFC 7468 parser: Go's `pem.Decode`, which cosign
    // reads these with, takes any line width and CRLF, and so must we.
    let body: String = block
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars().filter(|c| !c.is_ascii_whitespace()))
        .collect();
    let json = unb64(&body).ok_or_else(|| seal_err(key, "is not well-formed PEM (bad base64)"))?;
    let sealed: Sealed = serde_json::from_slice(&json).map_err(|e| {
        seal_err(
            key,
            format!("does not hold cosign's encrypted-key JSON ({e}); the file is damaged"),
        )
    })?;
    if sealed.kdf.name != KDF_NAME || sealed.cipher.name != CIPHER_NAME {
        return Err(seal_err(
            key,
            format!(
                "uses kdf {:?} and cipher {:?}; only scrypt and nacl/secretbox are known",
                sealed.kdf.name, sealed.cipher.name
            ),
        ));
    }
    let Params { n, r, p } = sealed.kdf.params;
    if !ACCEPTED.contains(&(n, r, p)) {
        return Err(seal_err(
            key,
            format!(
                "asks for scrypt N={n} r={r} p={p}, which cosign never writes; refused so a \
                 tampered file cannot exhaust memory"
            ),
        ));
    }
    let field = |name: &str, text: &str| {
        unb64(text).ok_or_else(|| seal_err(key, format!("has a {name} that is not base64")))
    };
    let salt = field("salt", &sealed.kdf.salt)?;
    let nonce = field("nonce", &sealed.cipher.nonce)?;
    let ciphertext = field("ciphertext", &sealed.ciphertext)?;
    if nonce.len() != NONCE_LEN {
        return Err(seal_err(
            key,
            format!(
                "has a {}-byte nonce; secretbox needs {NONCE_LEN}",
                nonce.len()
            ),
        ));
    }
    let derived = derive(password, &salt, n, r, p, key)?;
    XSalsa20Poly1305::new(derived.as_slice().into())
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| SignError::WrongPassword {
            key: key.to_owned(),
        })
}

/// scrypt(password, salt, N, r, p) → 32 bytes.
fn derive(
    password: &[u8],
    salt: &[u8],
    n: u32,
    r: u32,
    p: u32,
    key: &str,
) -> Result<Zeroizing<[u8; KEY_LEN]>, SignError> {
    let log_n = n.trailing_zeros() as u8;
    let params = scrypt::Params::new(log_n, r, p, KEY_LEN)
        .map_err(|e| seal_err(key, format!("has unusable scrypt parameters ({e})")))?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(password, salt, &params, out.as_mut_slice())
        .map_err(|e| seal_err(key, format!("cannot derive its key ({e})")))?;
    Ok(out)
}

/// A [`SignError::Key`] about an encrypted key.
fn seal_err(key: &str, what: impl Into<String>) -> SignError {
    SignError::Key {
        key: key.to_owned(),
        what: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_the_wrong_password() {
        let secret = b"pkcs8 bytes stand-in";
        let pem = seal(secret, b"hunter2").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert_eq!(&*open(&pem, b"hunter2", "k").unwrap(), secret);
        assert!(matches!(
            open(&pem, b"hunter3", "k"),
            Err(SignError::WrongPassword { .. })
        ));
        // Go's pem.Decode takes CRLF and any line width; so does this.
        let crlf = pem.replace('\n', "\r\n");
        assert_eq!(&*open(&crlf, b"hunter2", "k").unwrap(), secret);
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let one_line =
            format!("-----BEGIN {SIGSTORE_LABEL}-----\n{body}\n-----END {SIGSTORE_LABEL}-----\n");
        assert_eq!(&*open(&one_line, b"hunter2", "k").unwrap(), secret);
        // The empty password is a password like any other (cosign allows it).
        let pem = seal(secret, b"").unwrap();
        assert_eq!(&*open(&pem, b"", "k").unwrap(), secret);
    }

    #[test]
    fn writes_go_securesystemslib_json() {
        let pem = seal_with(b"x", b"pw", &[1u8; 32], &[2u8; 24]).unwrap();
        let (label, json) = pem::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, SIGSTORE_LABEL);
        let json = String::from_utf8(json).unwrap();
        let salt = b64(&[1u8; 32]);
        let nonce = b64(&[2u8; 24]);
        let prefix = format!(
            r#"{{"kdf":{{"name":"scrypt","params":{{"N":65536,"r":8,"p":1}},"salt":"{salt}"}},"cipher":{{"name":"nacl/secretbox","nonce":"{nonce}"}},"ciphertext":""#
        );
        assert!(json.starts_with(&prefix), "{json}");
        // One byte of plaintext: the 16-byte Poly1305 tag plus one byte, in base64.
        let sealed: Sealed = serde_json::from_str(&json).unwrap();
        assert_eq!(unb64(&sealed.ciphertext).unwrap().len(), 17);
        // Go's pem.EncodeToMemory: 64-column lines.
        assert!(pem.lines().all(|l| l.len() <= 64));
    }

    #[test]
    fn refuses_costly_or_foreign_parameters() {
        let pem = seal(b"x", b"pw").unwrap();
        let (_, json) = pem::decode_vec(pem.as_bytes()).unwrap();
        let json = String::from_utf8(json).unwrap();
        for (from, to) in [
            (r#""N":65536"#, r#""N":1048576"#),
            (r#""r":8"#, r#""r":64"#),
            (r#""name":"scrypt""#, r#""name":"pbkdf2""#),
            (r#""name":"nacl/secretbox""#, r#""name":"aes-gcm""#),
        ] {
            let tampered = json.replace(from, to);
            let block =
                pem::encode_string(SIGSTORE_LABEL, LineEnding::LF, tampered.as_bytes()).unwrap();
            let err = open(&block, b"pw", "k.key").unwrap_err();
            assert!(
                matches!(err, SignError::Key { ref key, .. } if key == "k.key"),
                "{err}"
            );
        }
        // A flipped ciphertext byte fails authentication, reported as a password problem
        // (the two cannot be told apart).
        let sealed: Sealed = serde_json::from_str(&json).unwrap();
        let mut ct = unb64(&sealed.ciphertext).unwrap();
        ct[16] ^= 1;
        let tampered = json.replace(&sealed.ciphertext, &b64(&ct));
        let block =
            pem::encode_string(SIGSTORE_LABEL, LineEnding::LF, tampered.as_bytes()).unwrap();
        assert!(matches!(
            open(&block, b"pw", "k"),
            Err(SignError::WrongPassword { .. })
        ));
    }
}
