//! The JKS writer against keytool and hand-checked bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use super::super::cacerts::tests::{TEST_CERT_A, TEST_CERT_B, TEST_CERT_C, TEST_CERT_D, crt_files};
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
    assert!(text.contains("debian:debless_unit.pem") && text.contains("debian:debless_unit_2.pem"));
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
    println!("keytool: {n} trustedCertEntry entries; a wrong password fails the integrity check");
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
