//! The Java trust store `/etc/ssl/certs/java/cacerts`, as ca-certificates-java's postinst
//! leaves it: a JKS keystore with one trusted-certificate entry per CA certificate.
//!
//! Debian's ca-certificates-java imports every `/etc/ssl/certs/*.pem` link that
//! update-ca-certificates made, under the alias `debian:<link name>`, which JKS lower-cases;
//! the link name is the `.crt` file's name with ` `→`_`, `(`/`)`→`=`, `,`→`_` and `.pem`
//! for `.crt`. A bundle does not carry file names, so the aliases here are rebuilt from what
//! the file names were made from: Mozilla names each file after the certificate's label,
//! which is nearly always the subject's common name. So an alias is `debian:` + the
//! subject's CN (else its OU, else its O, else `certificate`) with Mozilla's and
//! update-ca-certificates' substitutions (`/` → `_` too), lower-cased, + `.pem`. Certificates
//! that would share an alias are numbered `_2`, `_3`... oldest (notBefore) first, then in DER
//! order, as Mozilla gives a newer root that reuses a label `_2`. For bookworm's 142
//! certificates this gives Debian's alias for all but ten: six whose label is not the name
//! read here, and the four "GlobalSign" roots, which differ only in OU.

use std::collections::{BTreeMap, BTreeSet};

use sha1::{Digest, Sha1};

use super::GenError;
use super::cacerts::{der_tlv, parse_pem};

/// This generator's name in errors.
const GENERATOR: &str = "java-cacerts";

/// JKS's magic number, version and entry tag, from the JDK's `JavaKeyStore`.
const MAGIC: u32 = 0xFEED_FEED;
const VERSION: u32 = 2;
const TRUSTED_CERT_ENTRY: u32 = 2;
/// The JDK's fixed text between the password and the keystore in the integrity hash.
const INTEGRITY_SALT: &[u8] = b"Mighty Aphrodite";

/// Attribute OIDs (contents only) of the subject names an alias may come from.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATIONAL_UNIT: &[u8] = &[0x55, 0x04, 0x0b];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

/// A Java KeyStore (JKS) trust store holding every certificate of a PEM bundle as a
/// trusted-certificate entry, as /etc/ssl/certs/java/cacerts, readable by the JRE with its
/// default password "changeit". Deterministic: `created_ms` is used for every entry date.
pub fn java_cacerts(bundle: &[u8], password: &str, created_ms: u64) -> Result<Vec<u8>, GenError> {
    let certs = parse_pem(bundle, GENERATOR, "the CA bundle")?;
    if certs.is_empty() {
        return Err(err(
            "the CA bundle holds no certificates; generate it from ca-certificates first".into(),
        ));
    }
    // Java reads the date as a signed long.
    let date = i64::try_from(created_ms).map_err(|_| {
        err(format!(
            "creation time {created_ms} ms is past what Java can store; pass a time in ms since 1970"
        ))
    })?;
    let mut named = Vec::with_capacity(certs.len());
    for (index, der) in certs.iter().enumerate() {
        let (stem, not_before) = naming(der).ok_or_else(|| {
            err(format!(
                "certificate {} of the CA bundle cannot be read as X.509 (validity or subject); it is damaged, so fix or drop the file it came from",
                index + 1
            ))
        })?;
        named.push((stem, not_before, der.as_slice()));
    }
    let entries = unique_aliases(named);

    let count = u32::try_from(entries.len())
        .map_err(|_| err("more certificates than JKS can count; split the bundle".into()))?;
    let mut out = Vec::with_capacity(certs.iter().map(|c| c.len() + 80).sum::<usize>() + 32);
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for (alias, der) in &entries {
        out.extend_from_slice(&TRUSTED_CERT_ENTRY.to_be_bytes());
        write_utf(&mut out, alias)?;
        out.extend_from_slice(&date.to_be_bytes());
        write_utf(&mut out, "X.509")?;
        let len = u32::try_from(der.len())
            .map_err(|_| err(format!("certificate {alias} is too large for JKS; drop it")))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(der);
    }

    // The JDK hashes the password as Java chars, i.e. UTF-16 code units, high byte first.
    let mut hash = Sha1::new();
    for unit in password.encode_utf16() {
        hash.update(unit.to_be_bytes());
    }
    hash.update(INTEGRITY_SALT);
    hash.update(&out);
    out.extend_from_slice(&hash.finalize());
    Ok(out)
}

/// Gives each (stem, notBefore, DER) a distinct alias `debian:<stem>[_N].pem`, sorted by
/// alias.
fn unique_aliases(mut named: Vec<(String, String, &[u8])>) -> BTreeMap<String, &[u8]> {
    // Sorting, rather than taking bundle order, makes the keystore a function of the set of
    // certificates; the DER breaks ties between roots issued in the same second.
    named.sort();
    // A plain stem belongs to its certificate, so numbering another never takes it.
    let stems: BTreeSet<String> = named.iter().map(|(stem, ..)| stem.clone()).collect();
    let alias = |name: &str| format!("debian:{name}.pem");
    let mut entries = BTreeMap::new();
    for (stem, _, der) in named {
        let mut name = stem.clone();
        let mut n = 1;
        while entries.contains_key(&alias(&name)) || (n > 1 && stems.contains(&name)) {
            n += 1;
            name = format!("{stem}_{n}");
        }
        entries.insert(alias(&name), der);
    }
    entries
}

/// A DER certificate's alias stem and notBefore (`YYYYMMDDHHMMSSZ`). The stem is its
/// subject's CN, else OU, else O (the last of each kind, the most specific), munged like a
/// Debian `/etc/ssl/certs` link name and lower-cased as JKS stores aliases. `None` when the
/// certificate cannot be read that far.
fn naming(der: &[u8]) -> Option<(String, String)> {
    let (not_before, subject) = read_tbs(der)?;
    let name = [OID_COMMON_NAME, OID_ORGANIZATIONAL_UNIT, OID_ORGANIZATION]
        .iter()
        .filter_map(|oid| subject.get(oid))
        .find(|value| !value.trim().is_empty())
        .map_or("certificate", String::as_str);
    let munged: String = name
        .chars()
        .map(|c| match c {
            ' ' | ',' | '/' => '_',
            '(' | ')' => '=',
            c => c,
        })
        .collect();
    // JKS lower-cases with Java's Locale.ENGLISH rules, which Rust's Unicode mapping matches
    // outside locale-specific cases (Turkish dotless i) that English does not apply anyway.
    Some((munged.to_lowercase(), not_before))
}

/// A DER certificate's notBefore and its subject's attributes by OID (the last value of each).
fn read_tbs(der: &[u8]) -> Option<(String, BTreeMap<&[u8], String>)> {
    let (0x30, cert, _) = der_tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = der_tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // [0] version is absent from v1 certificates.
    if let (0xa0, _, after) = der_tlv(rest)? {
        rest = after;
    }
    // serialNumber, signature and issuer come before the validity.
    for expected in [0x02, 0x30, 0x30] {
        let (tag, _, after) = der_tlv(rest)?;
        if tag != expected {
            return None;
        }
        rest = after;
    }
    let (0x30, validity, after) = der_tlv(rest)? else {
        return None;
    };
    rest = after;
    let not_before = time(validity)?;
    let (0x30, mut rdns, _) = der_tlv(rest)? else {
        return None;
    };
    let mut found = BTreeMap::new();
    while !rdns.is_empty() {
        let (0x31, mut set, after) = der_tlv(rdns)? else {
            return None;
        };
        rdns = after;
        while !set.is_empty() {
            let (0x30, pair, after) = der_tlv(set)? else {
                return None;
            };
            set = after;
            let (0x06, oid, value) = der_tlv(pair)? else {
                return None;
            };
            let (tag, bytes, _) = der_tlv(value)?;
            if let Some(text) = directory_string(tag, bytes) {
                found.insert(oid, text);
            }
        }
    }
    Some((not_before, found))
}

/// The first X.509 time in `der` as `YYYYMMDDHHMMSSZ`, so that times compare as text.
fn time(der: &[u8]) -> Option<String> {
    let (tag, bytes, _) = der_tlv(der)?;
    let text = std::str::from_utf8(bytes).ok()?;
    match tag {
        // UTCTime: RFC 5280 puts YY >= 50 in the 1900s.
        0x17 => {
            let yy: u8 = text.get(..2)?.parse().ok()?;
            Some(format!("{}{text}", if yy >= 50 { "19" } else { "20" }))
        }
        // GeneralizedTime
        0x18 => Some(text.to_string()),
        _ => None,
    }
}

/// The text of an X.520 string; `None` for types that are not text.
fn directory_string(tag: u8, bytes: &[u8]) -> Option<String> {
    match tag {
        // UTF8String
        0x0c => Some(String::from_utf8_lossy(bytes).into_owned()),
        // NumericString, PrintableString, TeletexString (read as Latin-1, as OpenSSL and
        // the JDK do), IA5String, VisibleString
        0x12 | 0x13 | 0x14 | 0x16 | 0x1a => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        // UniversalString: UTF-32BE
        0x1c => Some(
            bytes
                .chunks_exact(4)
                .map(|c| {
                    char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                        .unwrap_or(char::REPLACEMENT_CHARACTER)
                })
                .collect(),
        ),
        // BMPString: UTF-16BE
        0x1e => Some(
            char::decode_utf16(
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]])),
            )
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        ),
        _ => None,
    }
}

/// Appends `s` as Java's `DataOutputStream.writeUTF` does: a u16 byte count, then modified
/// UTF-8 (UTF-16 units encoded one by one, NUL as two bytes).
fn write_utf(out: &mut Vec<u8>, s: &str) -> Result<(), GenError> {
    let mut bytes = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            0x0001..=0x007f => bytes.push(unit as u8),
            0x0000 | 0x0080..=0x07ff => {
                bytes.push(0xc0 | (unit >> 6) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
            _ => {
                bytes.push(0xe0 | (unit >> 12) as u8);
                bytes.push(0x80 | ((unit >> 6) & 0x3f) as u8);
                bytes.push(0x80 | (unit & 0x3f) as u8);
            }
        }
    }
    let len = u16::try_from(bytes.len()).map_err(|_| {
        err(format!(
            "alias {}... is longer than JKS's 65535 bytes; shorten the certificate's subject",
            s.chars().take(60).collect::<String>()
        ))
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes);
    Ok(())
}

fn err(what: String) -> GenError {
    GenError {
        generator: GENERATOR,
        what,
    }
}

#[cfg(test)]
mod tests;
