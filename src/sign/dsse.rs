//! DSSE, the signature envelope in-toto attestations travel in
//! (secure-systems-lab/dsse protocol.md and envelope.md, v1.0.2).
//!
//! The signature is over `PAE(payloadType, body)` = `"DSSEv1" SP LEN(type) SP type SP
//! LEN(body) SP body`, lengths in ASCII decimal without leading zeros; the JSON envelope is
//! `{"payloadType":T,"payload":B64(body),"signatures":[{"keyid":K,"sig":B64(sig)}]}` in the
//! field order go-securesystemslib's `dsse.Envelope` marshals (what cosign writes). The
//! signature is ECDSA-SHA256 in ASN.1 DER, which sigstore's verifier expects. `keyid` is
//! written empty, as cosign's own key-based envelopes have it: go-securesystemslib skips a
//! signature whose non-empty keyid differs from the SSH-style fingerprint it computes for
//! the verifying key, so any other hint could make `cosign verify-attestation` ignore it.

use serde::{Deserialize, Serialize};

use super::keys::{PrivateKey, PublicKey};
use super::{SignError, b64, doc_err, json_err, unb64};

/// The payload type of an in-toto Statement (in-toto attestation spec/v1/envelope.md;
/// cosign pkg/types/payload.go).
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// Media type of a DSSE envelope stored as a blob (cosign specs/ATTESTATION_SPEC.md).
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A DSSE JSON envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// How to read the body (e.g. [`IN_TOTO_PAYLOAD_TYPE`]); signed.
    pub payload_type: String,
    /// The body, base64.
    pub payload: String,
    /// One entry per signer.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature in an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// Unauthenticated hint naming the key; debless writes it empty (see the module doc).
    #[serde(default)]
    pub keyid: String,
    /// The signature over the PAE, base64.
    pub sig: String,
}

/// The pre-authentication encoding of `payload_type` and `body` (protocol.md).
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload_type.len() + body.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(body);
    out
}

impl Envelope {
    /// Sign `body` of type `payload_type` with `key`.
    pub fn sign(payload_type: &str, body: &[u8], key: &PrivateKey) -> Envelope {
        Envelope {
            payload_type: payload_type.to_owned(),
            payload: b64(body),
            signatures: vec![EnvelopeSignature {
                keyid: String::new(),
                sig: b64(&key.sign(&pae(payload_type, body))),
            }],
        }
    }

    /// The envelope's JSON bytes (compact, fixed field order: the same envelope always
    /// gives the same bytes).
    pub fn to_json(&self) -> Result<Vec<u8>, SignError> {
        serde_json::to_vec(self).map_err(json_err("cannot encode the DSSE envelope"))
    }

    /// Read an envelope's JSON (unverified).
    pub fn from_json(bytes: &[u8]) -> Result<Envelope, SignError> {
        serde_json::from_slice(bytes).map_err(json_err("DSSE envelope"))
    }

    /// Check that a signature by `key` covers this envelope and that its type is
    /// `payload_type`; return the body, decoded once here and never re-read from the
    /// envelope afterwards (protocol.md: verify and use the same bytes).
    pub fn verify(&self, key: &PublicKey, payload_type: &str) -> Result<Vec<u8>, SignError> {
        let body =
            unb64(&self.payload).ok_or_else(|| doc_err("DSSE envelope: payload is not base64"))?;
        let message = pae(&self.payload_type, &body);
        let mut reasons = Vec::new();
        for (i, s) in self.signatures.iter().enumerate() {
            match unb64(&s.sig) {
                None => reasons.push(format!("signature {i}: not base64")),
                Some(sig) => match key.verify(&message, &sig) {
                    Ok(()) => {
                        // The type is checked after the signature, as protocol.md orders it,
                        // but before anything reads the body.
                        if self.payload_type != payload_type {
                            return Err(doc_err(format!(
                                "DSSE envelope: payload type is {:?}, expected {payload_type:?}",
                                self.payload_type
                            )));
                        }
                        return Ok(body);
                    }
                    Err(e) => reasons.push(format!("signature {i}: {e}")),
                },
            }
        }
        if reasons.is_empty() {
            reasons.push("the envelope has no signatures".to_owned());
        }
        Err(doc_err(format!(
            "DSSE envelope: no signature verifies with the key ({})",
            reasons.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// protocol.md "Test Vectors": P-256, RFC 6979 nonces, signature as raw r || s.
    /// Deterministic nonces make the signature a function of key and message, so debless's
    /// must equal the spec's byte for byte (here re-encoded from DER to r || s).
    #[test]
    fn matches_the_specs_test_vector() {
        let body = b"hello world";
        let payload_type = "http://example.com/HelloWorld";
        assert_eq!(
            pae(payload_type, body),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        // The spec's d = 97358161215184420915383655311931858321456579547487070936769975997791359926199,
        // in big-endian hex (Python: d.to_bytes(32, "big").hex()).
        let d = hex::decode("d73ec437fd6346e3619c5ebfdfff0f6916804955ad32ac9ac492b0ede1f6ffb7");
        let d: [u8; 32] = d.unwrap().try_into().unwrap();
        let key = crate::sign::keys::from_scalar(&d);
        let env = Envelope::sign(payload_type, body, &key);
        assert_eq!(env.payload, "aGVsbG8gd29ybGQ=");
        let der = unb64(&env.signatures[0].sig).unwrap();
        let raw = crate::sign::keys::raw_signature(&der);
        assert_eq!(
            b64(&raw),
            "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="
        );
        assert_eq!(
            env.verify(&key.public_key(), payload_type).unwrap(),
            body.to_vec()
        );
    }

    #[test]
    fn envelope_json_is_go_securesystemslibs() {
        let key = PrivateKey::generate();
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{}", &key);
        let json = String::from_utf8(env.to_json().unwrap()).unwrap();
        let prefix = r#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":""#;
        assert!(json.starts_with(prefix), "{json}");
        assert_eq!(Envelope::from_json(json.as_bytes()).unwrap(), env);
    }

    #[test]
    fn refuses_other_keys_types_and_bodies() {
        let key = PrivateKey::generate();
        let other = PrivateKey::generate();
        let env = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &key);
        assert!(
            env.verify(&other.public_key(), IN_TOTO_PAYLOAD_TYPE)
                .is_err()
        );
        assert!(env.verify(&key.public_key(), "application/json").is_err());
        // The type is signed: relabelling breaks the signature.
        let mut relabelled = env.clone();
        relabelled.payload_type = "application/json".into();
        assert!(
            relabelled
                .verify(&key.public_key(), "application/json")
                .is_err()
        );
        let mut altered = env.clone();
        altered.payload = b64(b"{\"a\":2}");
        assert!(
            altered
                .verify(&key.public_key(), IN_TOTO_PAYLOAD_TYPE)
                .is_err()
        );
        let mut unsigned = env.clone();
        unsigned.signatures.clear();
        let err = unsigned
            .verify(&key.public_key(), IN_TOTO_PAYLOAD_TYPE)
            .unwrap_err();
        assert!(err.to_string().contains("no signatures"), "{err}");
        // A second, bad signature does not spoil a good one; the keyid is only a hint.
        let mut two = env.clone();
        two.signatures.insert(
            0,
            EnvelopeSignature {
                keyid: "someone".into(),
                sig: b64(b"junk"),
            },
        );
        assert!(two.verify(&key.public_key(), IN_TOTO_PAYLOAD_TYPE).is_ok());
    }
}
