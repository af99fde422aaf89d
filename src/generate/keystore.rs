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
mod tests {
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::Path;
    use std::process::{Command, Output};

    use super::super::cacerts::tests::{
        TEST_CERT_A, TEST_CERT_B, TEST_CERT_C, TEST_CERT_D, crt_files,
    };
    use super::super::cacerts::{ca_bundle, pem_certificates};
    use super::*;

    const WHEN: u64 = 1_700_000_000_000;

    fn fixtures() -> Vec<u8> {
        [TEST_CERT_A, TEST_CERT_B, TEST_CERT_C, TEST_CERT_D]
            .concat()
            .into_bytes()
    }

    fn der(pem: &str) -> Vec<u8> {
        pem_certificates(pem.as_bytes()).unwrap().remove(0)
    }

    fn tool_present(tool: &str) -> bool {
        crate::testing::require_tool(tool, "make deps (apt-get install default-jdk-headless)")
    }

    /// The bundle ca-certificates would give this host's image, or the fixtures without it.
    fn shipped_bundle() -> Vec<u8> {
        let shipped = Path::new("/usr/share/ca-certificates");
        if shipped.is_dir() {
            ca_bundle(&crt_files(shipped)).unwrap()
        } else {
            fixtures()
        }
    }

    fn keytool_list(store: &Path, password: &str) -> Output {
        Command::new("keytool")
            .arg("-list")
            .arg("-keystore")
            .arg(store)
            .args(["-storepass", password])
            // As ca-certificates-java runs it; keytool prints non-ASCII aliases as `?` in C.
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap()
    }

    /// keytool's listing as alias → SHA-256 fingerprint.
    fn listed(stdout: &[u8]) -> BTreeMap<String, String> {
        let text = String::from_utf8_lossy(stdout);
        let mut out = BTreeMap::new();
        let mut alias = None;
        for line in text.lines() {
            if let Some(fp) = line.strip_prefix("Certificate fingerprint (SHA-256): ") {
                out.insert(alias.take().unwrap(), fp.to_string());
            } else if line.contains(", trustedCertEntry,") {
                alias = Some(line.split(", ").next().unwrap().to_string());
            }
        }
        out
    }

    #[test]
    fn layout_is_jks_version_2() {
        let store = java_cacerts(TEST_CERT_A.as_bytes(), "changeit", WHEN).unwrap();
        let cert = der(TEST_CERT_A);
        let alias = b"debian:debless_test_=root=__ca_1.pem";
        let mut expected = Vec::new();
        for word in [0xfeed_feed_u32, 2, 1, 2] {
            // magic, version 2, one entry, a trusted certificate
            expected.extend_from_slice(&word.to_be_bytes());
        }
        expected.extend_from_slice(&(alias.len() as u16).to_be_bytes());
        expected.extend_from_slice(alias);
        expected.extend_from_slice(&WHEN.to_be_bytes());
        expected.extend_from_slice(b"\x00\x05X.509");
        expected.extend_from_slice(&(cert.len() as u32).to_be_bytes());
        expected.extend_from_slice(&cert);
        assert_eq!(&store[..store.len() - 20], &expected[..]);

        let mut hash = Sha1::new();
        hash.update(b"\0c\0h\0a\0n\0g\0e\0i\0t");
        hash.update(b"Mighty Aphrodite");
        hash.update(&expected);
        assert_eq!(&store[store.len() - 20..], &hash.finalize()[..]);
    }

    #[test]
    fn aliases_follow_debians_pem_names() {
        let store = java_cacerts(&fixtures(), "changeit", WHEN).unwrap();
        // A and C share a CN; C is older, so A is numbered though its DER sorts first.
        assert!(der(TEST_CERT_A) < der(TEST_CERT_C));
        // In alias order; the non-ASCII one is in modified UTF-8, which is UTF-8 here.
        let expected = [
            ("debian:debless_test_=root=__ca_1.pem", TEST_CERT_C),
            ("debian:debless_test_=root=__ca_1_2.pem", TEST_CERT_A),
            ("debian:debless_unit.pem", TEST_CERT_B),
            ("debian:főtanúsítvány_teszt.pem", TEST_CERT_D),
        ];
        let mut at = 0;
        for (alias, pem) in expected {
            let Some(i) = store[at..]
                .windows(alias.len())
                .position(|w| w == alias.as_bytes())
            else {
                panic!("{alias} missing or out of order")
            };
            // The certificate follows its alias, date, type and length.
            let cert = der(pem);
            let start = at + i + alias.len() + 8 + 7 + 4;
            assert_eq!(&store[start..start + cert.len()], &cert[..], "{alias}");
            at = start;
        }
    }

    #[test]
    fn numbering_never_takes_another_certificates_name() {
        let named = |stem: &str, when: &str, der: &'static [u8]| -> (String, String, &[u8]) {
            (stem.to_string(), when.to_string(), der)
        };
        let named = vec![
            named("x", "2010", b"1"),
            named("x_2", "2000", b"2"),
            named("x", "2000", b"4"),
            named("x", "2000", b"3"),
            named("x", "2000", b"3"),
        ];
        let got: Vec<(String, &[u8])> = unique_aliases(named).into_iter().collect();
        let want: Vec<(String, &[u8])> = vec![
            ("debian:x.pem".into(), b"3"),
            ("debian:x_2.pem".into(), b"2"),
            ("debian:x_3.pem".into(), b"3"),
            ("debian:x_4.pem".into(), b"4"),
            ("debian:x_5.pem".into(), b"1"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn deterministic_whatever_the_bundle_order() {
        let one = java_cacerts(&fixtures(), "changeit", WHEN).unwrap();
        assert_eq!(one, java_cacerts(&fixtures(), "changeit", WHEN).unwrap());
        let shuffled = [
            TEST_CERT_D,
            TEST_CERT_C,
            "# between\n",
            TEST_CERT_B,
            TEST_CERT_A,
        ]
        .concat();
        assert_eq!(
            one,
            java_cacerts(shuffled.as_bytes(), "changeit", WHEN).unwrap()
        );
        assert_ne!(
            one,
            java_cacerts(&fixtures(), "changeit", WHEN + 1).unwrap()
        );
        assert_ne!(one, java_cacerts(&fixtures(), "changeme", WHEN).unwrap());
    }

    #[test]
    fn a_repeated_certificate_keeps_both_entries() {
        let twice = [TEST_CERT_B, TEST_CERT_B].concat();
        let store = java_cacerts(twice.as_bytes(), "changeit", WHEN).unwrap();
        assert_eq!(&store[8..12], &[0, 0, 0, 2]);
        let text = String::from_utf8_lossy(&store);
        assert!(
            text.contains("debian:debless_unit.pem") && text.contains("debian:debless_unit_2.pem")
        );
    }

    #[test]
    fn modified_utf8_as_java_writes_it() {
        let mut out = Vec::new();
        write_utf(&mut out, "a\0é€𝄞").unwrap();
        assert_eq!(
            out,
            [
                &[0, 14][..],
                b"a",
                &[0xc0, 0x80],
                &[0xc3, 0xa9],
                &[0xe2, 0x82, 0xac],
                &[0xed, 0xa0, 0xb4, 0xed, 0xb4, 0x9e], // surrogates one by one
            ]
            .concat()
        );
        let e = write_utf(&mut out, &"x".repeat(65536))
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than JKS's 65535 bytes"), "{e}");
    }

    #[test]
    fn times_compare_across_utctime_and_generalizedtime() {
        assert_eq!(time(b"\x17\x0d491231235959Z").unwrap(), "20491231235959Z");
        assert_eq!(time(b"\x17\x0d500101000000Z").unwrap(), "19500101000000Z");
        assert_eq!(time(b"\x18\x0f20500101000000Z").unwrap(), "20500101000000Z");
        assert_eq!(time(b"\x02\x01\x00"), None);
        assert_eq!(naming(&der(TEST_CERT_C)).unwrap().1, "20100101000000Z");
    }

    #[test]
    fn directory_strings_of_every_text_type() {
        assert_eq!(directory_string(0x0c, "Főt".as_bytes()).unwrap(), "Főt");
        assert_eq!(directory_string(0x13, b"Root CA").unwrap(), "Root CA");
        assert_eq!(directory_string(0x14, b"T\xe9l\xe9").unwrap(), "Télé");
        assert_eq!(directory_string(0x1e, b"\x00F\x01\x51").unwrap(), "Fő");
        assert_eq!(
            directory_string(0x1c, b"\x00\x00\x00F\x00\x01\xd1\x1e").unwrap(),
            "F𝄞"
        );
        assert_eq!(directory_string(0x04, b"bytes"), None);
    }

    #[test]
    fn bad_input_is_refused_with_what_to_do() {
        let e = java_cacerts(b"no certificates here\n", "changeit", WHEN)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "generator java-cacerts: the CA bundle holds no certificates; generate it from ca-certificates first"
        );
        // A DER SEQUENCE that is no certificate: 30 03 02 01 00.
        let e = java_cacerts(
            b"-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
            "changeit",
            WHEN,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("certificate 1 of the CA bundle cannot be read as X.509"),
            "{e}"
        );
        let e = java_cacerts(&fixtures(), "changeit", u64::MAX)
            .unwrap_err()
            .to_string();
        assert!(e.contains("past what Java can store"), "{e}");
    }

    #[test]
    fn keytool_lists_every_certificate_and_checks_the_password() {
        if !tool_present("keytool") {
            return;
        }
        let bundle = shipped_bundle();
        let n = pem_certificates(&bundle).unwrap().len();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cacerts");
        let store = java_cacerts(&bundle, "changeit", WHEN).unwrap();
        fs::write(&path, &store).unwrap();

        let out = keytool_list(&path, "changeit");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("Keystore type: JKS"), "{stdout}");
        assert!(
            stdout.contains(&format!("Your keystore contains {n} entries")),
            "{stdout}"
        );
        assert_eq!(stdout.matches("trustedCertEntry").count(), n);
        let aliases: Vec<String> = listed(&out.stdout).into_keys().collect();
        let ours: Vec<String> = unique_aliases(
            pem_certificates(&bundle)
                .unwrap()
                .iter()
                .map(|d| {
                    let (stem, when) = naming(d).unwrap();
                    (stem, when, &[][..])
                })
                .collect(),
        )
        .into_keys()
        .collect();
        assert_eq!(aliases, ours);

        let out = keytool_list(&path, "wrongpass");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{said}");
        assert!(said.contains("password was incorrect"), "{said}");
        println!(
            "keytool: {n} trustedCertEntry entries; a wrong password fails the integrity check"
        );
    }

    #[test]
    fn holds_the_certificates_debian_put_in_the_hosts_keystore() {
        let debian = Path::new("/etc/ssl/certs/java/cacerts");
        let host_bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
        let install = "make deps (apt-get install default-jdk-headless ca-certificates-java)";
        if !tool_present("keytool")
            || !crate::testing::require(debian.exists(), "/etc/ssl/certs/java/cacerts", install)
            || !crate::testing::require(
                host_bundle.exists(),
                "/etc/ssl/certs/ca-certificates.crt",
                install,
            )
        {
            return;
        }
        // The host's keystore and bundle both come from its /etc/ssl/certs, local CAs included.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cacerts");
        let bundle = fs::read(host_bundle).unwrap();
        fs::write(&path, java_cacerts(&bundle, "changeit", WHEN).unwrap()).unwrap();
        let theirs = listed(&keytool_list(debian, "changeit").stdout);
        let ours = listed(&keytool_list(&path, "changeit").stdout);
        let by_fp = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            m.iter().map(|(a, fp)| (fp.clone(), a.clone())).collect()
        };
        let (theirs, ours) = (by_fp(&theirs), by_fp(&ours));
        assert!(theirs.len() > 100);
        assert_eq!(
            theirs.keys().collect::<Vec<_>>(),
            ours.keys().collect::<Vec<_>>(),
            "certificates differ from Debian's keystore"
        );
        let same: Vec<_> = theirs.iter().filter(|(fp, a)| ours[*fp] == **a).collect();
        for (fp, a) in &theirs {
            if ours[fp] != *a {
                println!("alias differs: debian {a}, ours {}", ours[fp]);
            }
        }
        println!(
            "same {} certificates as Debian's keystore; same alias for {}",
            theirs.len(),
            same.len()
        );
        assert!(
            same.len() * 4 >= theirs.len() * 3,
            "aliases drifted from Debian's"
        );
    }

    #[test]
    fn the_jre_loads_it_as_its_default_type_and_trusts_its_certificates() {
        if !tool_present("javac") || !tool_present("java") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cacerts");
        fs::write(
            &store,
            java_cacerts(&shipped_bundle(), "changeit", WHEN).unwrap(),
        )
        .unwrap();
        let n = pem_certificates(&shipped_bundle()).unwrap().len();
        let trusted = dir.path().join("trusted.pem");
        let stranger = dir.path().join("stranger.pem");
        // A certificate from the store, and one that is not in it.
        let first = String::from_utf8(shipped_bundle()).unwrap();
        let first = &first[first.find("-----BEGIN").unwrap()..];
        let first = &first[..first.find("-----END CERTIFICATE-----").unwrap() + 25];
        fs::write(&trusted, first).unwrap();
        fs::write(&stranger, TEST_CERT_D).unwrap();
        let source = dir.path().join("Check.java");
        fs::write(
            &source,
            r#"
import java.io.FileInputStream;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

public class Check {
    static boolean trusts(X509TrustManager tm, String pem) throws Exception {
        X509Certificate c;
        try (FileInputStream in = new FileInputStream(pem)) {
            c = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        String auth = c.getPublicKey().getAlgorithm().equals("EC") ? "ECDHE_ECDSA" : "ECDHE_RSA";
        try {
            tm.checkServerTrusted(new X509Certificate[] {c}, auth);
            return true;
        } catch (java.security.cert.CertificateException e) {
            return false;
        }
    }

    public static void main(String[] a) throws Exception {
        KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
        try (FileInputStream in = new FileInputStream(a[0])) {
            ks.load(in, "changeit".toCharArray());
        }
        TrustManagerFactory tmf =
            TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ks);
        X509TrustManager tm = (X509TrustManager) tmf.getTrustManagers()[0];
        System.out.println(KeyStore.getDefaultType() + " " + ks.size() + " "
            + tm.getAcceptedIssuers().length + " " + trusts(tm, a[1]) + " " + trusts(tm, a[2]));
    }
}
"#,
        )
        .unwrap();
        let javac = Command::new("javac")
            .arg("-d")
            .arg(dir.path())
            .arg(&source)
            .output()
            .unwrap();
        assert!(
            javac.status.success(),
            "{}",
            String::from_utf8_lossy(&javac.stderr)
        );
        let run = Command::new("java")
            .arg("-cp")
            .arg(dir.path())
            .arg("Check")
            .arg(&store)
            .arg(&trusted)
            .arg(&stranger)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&run.stdout);
        assert!(
            run.status.success(),
            "{said}{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(said.trim(), format!("pkcs12 {n} {n} true false"));
        println!("JRE: {said}");
    }
}
