//! OpenPGP verification of InRelease files against pinned archive keys.
//!
//! rPGP checks signatures cryptographically only; key and subkey expiry, revocation,
//! signing capability and signature expiry are checked here.

use std::path::{Path, PathBuf};

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::packet::Signature;
use pgp::types::KeyDetails;

/// A key the manifest trusts, loaded from an ASCII-armoured file.
pub struct TrustedKey {
    /// Upper-case hex fingerprint of the primary key.
    pub fingerprint: String,
    /// The file it came from (for messages).
    pub file: PathBuf,
    key: SignedPublicKey,
}

/// The set of keys an InRelease may be signed by.
pub struct Keyring {
    keys: Vec<TrustedKey>,
}

/// What a successful verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The signed text, with LF line endings, dash-escaping removed.
    pub text: String,
    /// Primary fingerprint of the key that made the first valid signature.
    pub fingerprint: String,
    /// Creation time of that signature (seconds since the epoch).
    pub signed_at: i64,
}

/// When keys must have been valid.
#[derive(Debug, Clone, Copy)]
pub enum ValidAt {
    /// At this moment (a live pin: keys must not have expired by now).
    Time(i64),
    /// At the time each signature was made (a dated pin of an old snapshot).
    SignatureTime,
}

/// Why keys could not be loaded or no signature was accepted.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A key file is unreadable or not an OpenPGP public key.
    #[error("{file}: {what}")]
    Key {
        /// The key file.
        file: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The InRelease is not a well-formed cleartext-signed message.
    #[error("not a valid OpenPGP cleartext-signed message ({0})")]
    Framing(String),
    /// No signature was valid, unexpired and made by a trusted key.
    #[error("no valid signature by a trusted key: {0}")]
    NoValidSignature(String),
}

impl Keyring {
    /// Load keys, checking each file's primary fingerprint against the expected one.
    pub fn load(keys: &[(PathBuf, String)]) -> Result<Keyring, TrustError> {
        let mut out = Vec::new();
        for (file, expected) in keys {
            let key = load_key(file)?;
            let fingerprint = hex::encode_upper(key.fingerprint().as_bytes());
            let expected_norm: String = expected
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase();
            if fingerprint != expected_norm {
                return Err(TrustError::Key {
                    file: file.clone(),
                    what: format!(
                        "fingerprint is {fingerprint}, but the manifest pins {expected_norm}; \
                         replace the file with the pinned key or fix the manifest"
                    ),
                });
            }
            out.push(TrustedKey {
                fingerprint,
                file: file.clone(),
                key,
            });
        }
        Ok(Keyring { keys: out })
    }

    /// Fingerprints of all loaded keys.
    pub fn fingerprints(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.fingerprint.as_str())
    }

    /// Verify an InRelease document and return its signed text. Only keys whose
    /// fingerprint is in `allowed` count (all keys when `allowed` is empty).
    pub fn verify_inrelease(
        &self,
        document: &str,
        at: ValidAt,
        allowed: &[String],
    ) -> Result<Verified, TrustError> {
        check_framing(document)?;
        let (msg, _headers) = CleartextSignedMessage::from_string(document)
            .map_err(|e| TrustError::Framing(e.to_string()))?;
        // Exactly what was hashed: dash-unescaped, CRLF-normalised text.
        let signed = msg.signed_text();
        let mut reasons = Vec::new();
        for sig in msg.signatures() {
            match self.check_signature(sig, signed.as_bytes(), at, allowed) {
                Ok(fingerprint) => {
                    return Ok(Verified {
                        text: signed.replace("\r\n", "\n"),
                        fingerprint,
                        signed_at: created(sig),
                    });
                }
                Err(reason) => reasons.push(reason),
            }
        }
        if reasons.is_empty() {
            reasons.push("the message has no signatures".into());
        }
        Err(TrustError::NoValidSignature(reasons.join("; ")))
    }

    fn check_signature(
        &self,
        sig: &Signature,
        data: &[u8],
        at: ValidAt,
        allowed: &[String],
    ) -> Result<String, String> {
        let issuer = issuer_name(sig);
        let sig_time = created(sig);
        let now = match at {
            ValidAt::Time(t) => t,
            ValidAt::SignatureTime => sig_time,
        };
        if let Some(exp) = sig.signature_expiration_time()
            && exp.as_secs() != 0
            && sig_time + i64::from(exp.as_secs()) < now
        {
            return Err(format!("signature by {issuer} has expired"));
        }
        let trusted = self.keys.iter().filter(|k| {
            allowed.is_empty() || allowed.iter().any(|a| same_fingerprint(a, &k.fingerprint))
        });
        for tk in trusted {
            let key = &tk.key;
            let primary_fp = key.fingerprint();
            if matches_issuer(sig, &primary_fp, key.legacy_key_id()) {
                if sig.verify(&key.primary_key, data).is_err() {
                    return Err(format!("bad signature by {}", tk.fingerprint));
                }
                primary_usable(tk, now)?;
                return Ok(tk.fingerprint.clone());
            }
            for sub in &key.public_subkeys {
                if !matches_issuer(sig, &sub.key.fingerprint(), sub.key.legacy_key_id()) {
                    continue;
                }
                if sig.verify(&sub.key, data).is_err() {
                    return Err(format!(
                        "bad signature by subkey {} of {}",
                        hex::encode_upper(sub.key.fingerprint().as_bytes()),
                        tk.fingerprint
                    ));
                }
                primary_usable(tk, now)?;
                subkey_usable(tk, sub, now)?;
                return Ok(tk.fingerprint.clone());
            }
        }
        Err(format!("signature by {issuer} is not from a trusted key"))
    }
}

/// The whole document must be one cleartext-signed message: nothing but blank lines before
/// `BEGIN PGP SIGNED MESSAGE` or after `END PGP SIGNATURE`, and one of each armour line.
/// A parser that skips text around the signed part, or reads only the first of two signed
/// blocks, lets a mirror show apt and debless different Releases under one valid
/// signature; refusing any such document keeps "what was parsed" == "what was signed".
fn check_framing(document: &str) -> Result<(), TrustError> {
    const BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
    const SIG: &str = "-----BEGIN PGP SIGNATURE-----";
    const END: &str = "-----END PGP SIGNATURE-----";
    // Armour lines may carry trailing whitespace (RFC 9580, 7.1); signed lines that start
    // with '-' are dash-escaped, so they never equal an armour line.
    let lines: Vec<&str> = document.lines().map(str::trim_end).collect();
    let count = |what: &str| lines.iter().filter(|l| **l == what).count();
    let first = lines.iter().find(|l| !l.is_empty()).copied();
    let last = lines.iter().rev().find(|l| !l.is_empty()).copied();
    let problem = if first != Some(BEGIN) {
        Some("text before -----BEGIN PGP SIGNED MESSAGE----- (or no such line)")
    } else if last != Some(END) {
        Some("text after -----END PGP SIGNATURE----- (or no such line)")
    } else if count(BEGIN) != 1 || count(SIG) != 1 || count(END) != 1 {
        Some("more than one signed message or signature block")
    } else {
        None
    };
    match problem {
        Some(p) => Err(TrustError::Framing(format!(
            "{p}; the document must be exactly one signed message"
        ))),
        None => Ok(()),
    }
}

fn load_key(file: &Path) -> Result<SignedPublicKey, TrustError> {
    let err = |what: String| TrustError::Key {
        file: file.to_owned(),
        what,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read: {e}")))?;
    let (key, _) = SignedPublicKey::from_string(&text)
        .map_err(|e| err(format!("not an ASCII-armoured OpenPGP public key: {e}")))?;
    Ok(key)
}

fn created(sig: &Signature) -> i64 {
    sig.created().map(|t| i64::from(t.as_secs())).unwrap_or(0)
}

fn matches_issuer(sig: &Signature, fp: &pgp::types::Fingerprint, id: pgp::types::KeyId) -> bool {
    let fps = sig.issuer_fingerprint();
    if !fps.is_empty() {
        return fps.contains(&fp);
    }
    sig.issuer_key_id().iter().any(|k| **k == id)
}

fn issuer_name(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return hex::encode_upper(fp.as_bytes());
    }
    match sig.issuer_key_id().first() {
        Some(id) => format!("key id {}", hex::encode_upper(id.as_ref())),
        None => "an unnamed key".into(),
    }
}

fn fmt_time(t: i64) -> String {
    jiff::Timestamp::from_second(t)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The primary key must not be revoked and must not have expired at `now`.
fn primary_usable(tk: &TrustedKey, now: i64) -> Result<(), String> {
    let key = &tk.key;
    let primary = &key.primary_key;
    for rev in &key.details.revocation_signatures {
        if rev.verify_key(primary).is_ok() {
            return Err(format!("key {} is revoked", tk.fingerprint));
        }
    }
    // The newest valid self-certification carries the key's current expiry.
    let mut newest: Option<&Signature> = None;
    for user in &key.details.users {
        for sig in &user.signatures {
            if sig
                .verify_certification(primary, pgp::types::Tag::UserId, &user.id)
                .is_ok()
                && newest.is_none_or(|n| created(sig) > created(n))
            {
                newest = Some(sig);
            }
        }
    }
    for sig in &key.details.direct_signatures {
        if sig.verify_key(primary).is_ok() && newest.is_none_or(|n| created(sig) > created(n)) {
            newest = Some(sig);
        }
    }
    let Some(selfsig) = newest else {
        return Err(format!(
            "key {} has no valid self-signature",
            tk.fingerprint
        ));
    };
    check_expiry(
        i64::from(primary.created_at().as_secs()),
        selfsig,
        now,
        &tk.fingerprint,
    )
}

/// A subkey must be bound to the primary, allowed to sign, unrevoked and unexpired.
fn subkey_usable(
    tk: &TrustedKey,
    sub: &pgp::composed::SignedPublicSubKey,
    now: i64,
) -> Result<(), String> {
    let name = format!(
        "subkey {} of {}",
        hex::encode_upper(sub.key.fingerprint().as_bytes()),
        tk.fingerprint
    );
    let mut binding: Option<&Signature> = None;
    for sig in &sub.signatures {
        let valid = sig
            .verify_subkey_binding(&tk.key.primary_key, &sub.key)
            .is_ok();
        if !valid {
            continue;
        }
        if sig.typ() == Some(pgp::packet::SignatureType::SubkeyRevocation) {
            return Err(format!("{name} is revoked"));
        }
        if binding.is_none_or(|b| created(sig) > created(b)) {
            binding = Some(sig);
        }
    }
    let Some(binding) = binding else {
        return Err(format!("{name} has no valid binding signature"));
    };
    if !binding.key_flags().sign() {
        return Err(format!("{name} is not a signing subkey"));
    }
    check_expiry(
        i64::from(sub.key.created_at().as_secs()),
        binding,
        now,
        &name,
    )
}

fn check_expiry(created_at: i64, sig: &Signature, now: i64, name: &str) -> Result<(), String> {
    if let Some(d) = sig.key_expiration_time()
        && d.as_secs() != 0
    {
        let expires = created_at + i64::from(d.as_secs());
        if expires < now {
            return Err(format!(
                "{name} expired at {} (checked at {})",
                fmt_time(expires),
                fmt_time(now)
            ));
        }
    }
    Ok(())
}

/// Compare fingerprints ignoring case and spaces.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase()
    };
    norm(a) == norm(b)
}

#[cfg(test)]
mod tests {
    use super::check_framing;

    const SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Test\n- -----BEGIN PGP SIGNATURE-----\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn only_one_signed_message_and_nothing_around_it_is_accepted() {
        // Blank lines around it, CRLF and a dash-escaped armour line inside are fine.
        check_framing(SIGNED).unwrap();
        check_framing(&format!("\n\n{}\n", SIGNED.replace('\n', "\r\n"))).unwrap();
        for (doc, why) in [
            (format!("Origin: Evil\n{SIGNED}"), "text before"),
            (format!("{SIGNED}SHA256:\n x 1 y\n"), "text after"),
            (format!("{SIGNED}{SIGNED}"), "more than one"),
            ("Origin: Test\n".to_owned(), "text before"),
        ] {
            let e = check_framing(&doc).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
