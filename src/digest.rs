//! SHA-256 digests: of .debs and indices (which Debian and the lock write as bare hex) and
//! of OCI blobs (written `sha256:<hex>`). One type, parsed and checked in one place, so a
//! digest that got into a value is well-formed wherever it is used.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::Digest as _;

/// A SHA-256 digest.
///
/// `Display` and serde write the OCI form `sha256:<64 lower-case hex>`; [`Digest::hex`] and
/// the [`bare_hex`] serde adapter the bare form Debian's indices and the lock use. Ordered
/// as its hex text is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// Text that is not a SHA-256 digest in the form expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not `sha256:` followed by 64 lower-case hex digits.
    #[error("{0:?} is not a digest (sha256: and 64 lower-case hex digits)")]
    Oci(String),
    /// Not 64 lower-case hex digits.
    #[error("{0:?} is not a SHA256 (64 lower-case hex digits)")]
    Hex(String),
}

/// The OCI algorithm prefix.
const PREFIX: &str = "sha256:";

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(sha2::Sha256::digest(bytes).into())
    }

    /// The digest of everything `r` yields, and how many bytes that was.
    pub fn of_reader(mut r: impl Read) -> std::io::Result<(Digest, u64)> {
        let mut h = Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                let len = h.len();
                return Ok((h.finish(), len));
            }
            h.update(&buf[..n]);
        }
    }

    /// The digest of a file's contents, streamed.
    pub fn of_file(path: &Path) -> std::io::Result<Digest> {
        Ok(Digest::of_reader(std::fs::File::open(path)?)?.0)
    }

    /// Parse the OCI form, `sha256:` and 64 lower-case hex digits (nothing else is canonical,
    /// and a digest is compared as text by registries).
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        s.strip_prefix(PREFIX)
            .and_then(|h| decode(h, false))
            .map(Digest)
            .ok_or_else(|| DigestError::Oci(s.to_owned()))
    }

    /// Parse the bare form, exactly 64 lower-case hex digits (as the lock writes it).
    pub fn from_hex(s: &str) -> Result<Digest, DigestError> {
        decode(s, false)
            .map(Digest)
            .ok_or_else(|| DigestError::Hex(s.to_owned()))
    }

    /// Parse 64 hex digits in either case (as an archive's indices may write them).
    pub fn from_hex_any_case(s: &str) -> Result<Digest, DigestError> {
        decode(s, true)
            .map(Digest)
            .ok_or_else(|| DigestError::Hex(s.to_owned()))
    }

    /// The 64 lower-case hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Where the blob sits inside an OCI image layout: `blobs/sha256/<hex>`.
    pub fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex())
    }
}

fn decode(h: &str, any_case: bool) -> Option<[u8; 32]> {
    let ok = h.len() == 64
        && h.bytes().all(|b| {
            b.is_ascii_digit()
                || (b'a'..=b'f').contains(&b)
                || (any_case && (b'A'..=b'F').contains(&b))
        });
    if !ok {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out).ok()?;
    Some(out)
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Digest, DigestError> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde for a [`Digest`] written as bare lower-case hex (`#[serde(with = "bare_hex")]`).
pub mod bare_hex {
    use super::Digest;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write the 64 hex digits.
    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&d.hex())
    }

    /// Read exactly 64 lower-case hex digits.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        Digest::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental SHA-256, for data that arrives in pieces.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: sha2::Sha256,
    len: u64,
}

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Hasher {
        Hasher::default()
    }

    /// Feed more bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// How many bytes have been fed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Has nothing been fed yet?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest(self.inner.finalize().into())
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn both_forms_round_trip() {
        let d = Digest::of(b"hello");
        assert_eq!(d.hex(), HELLO);
        assert_eq!(d.to_string(), format!("sha256:{HELLO}"));
        assert_eq!(Digest::parse(&d.to_string()), Ok(d));
        assert_eq!(Digest::from_hex(HELLO), Ok(d));
        assert_eq!(d.blob_path(), format!("blobs/sha256/{HELLO}"));
    }

    #[test]
    fn only_canonical_text_parses() {
        let upper = HELLO.to_uppercase();
        for bad in [
            HELLO.to_owned(),
            format!("sha256:{upper}"),
            format!("sha512:{HELLO}"),
            format!("sha256:{}", &HELLO[1..]),
            format!("sha256:{HELLO}0"),
            format!("sha256:{}g", &HELLO[1..]),
            format!(" sha256:{HELLO}"),
            String::new(),
        ] {
            assert_eq!(
                Digest::parse(&bad),
                Err(DigestError::Oci(bad.clone())),
                "{bad}"
            );
        }
        assert!(Digest::from_hex(&upper).is_err());
        assert!(Digest::from_hex(&format!("sha256:{HELLO}")).is_err());
        assert_eq!(Digest::from_hex_any_case(&upper), Ok(Digest::of(b"hello")));
        assert_eq!(
            Digest::from_hex(&upper).unwrap_err().to_string(),
            format!("\"{upper}\" is not a SHA256 (64 lower-case hex digits)")
        );
    }

    #[test]
    fn streaming_agrees_with_one_shot() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7) as u8).collect();
        let (d, n) = Digest::of_reader(&data[..]).unwrap();
        assert_eq!((d, n), (Digest::of(&data), data.len() as u64));
        let mut h = Hasher::new();
        for piece in data.chunks(12345) {
            h.update(piece);
        }
        assert_eq!(h.len(), data.len() as u64);
        assert_eq!(h.finish(), d);
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), &data).unwrap();
        assert_eq!(Digest::of_file(tmp.path()).unwrap(), d);
    }

    #[test]
    fn orders_like_its_text() {
        let mut ds: Vec<Digest> = (0..50u8).map(|i| Digest::of(&[i])).collect();
        ds.sort();
        let hexes: Vec<String> = ds.iter().map(Digest::hex).collect();
        let mut sorted = hexes.clone();
        sorted.sort();
        assert_eq!(hexes, sorted);
    }

    #[test]
    fn serde_forms() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct T {
            oci: Digest,
            #[serde(with = "bare_hex")]
            bare: Digest,
        }
        let d = Digest::of(b"hello");
        let t = T { oci: d, bare: d };
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            format!("{{\"oci\":\"sha256:{HELLO}\",\"bare\":\"{HELLO}\"}}")
        );
        assert_eq!(serde_json::from_str::<T>(&json).unwrap(), t);
        let upper = json.replace(&HELLO[..4], "2CF2");
        assert!(serde_json::from_str::<T>(&upper).is_err());
    }
}
