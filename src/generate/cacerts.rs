//! The CA bundle `/etc/ssl/certs/ca-certificates.crt`, as ca-certificates' postinst leaves it
//! on a fresh install, and the PEM/DER reading the Java keystore shares.
//!
//! What Debian does, and so what `ca_bundle` reproduces: the package's debconf script offers
//! every `*.crt` regular file under `/usr/share/ca-certificates` and, with the default
//! `trust_new_crts=yes`, enables them all; the postinst writes `/etc/ca-certificates.conf`
//! listing their paths relative to that directory through `sort`, then runs
//! `update-ca-certificates`, which appends each listed file to the bundle in conf order with
//! `sed -e '$a\'` (bytes as they are, CRLF included, plus a `\n` when the last line lacks one).
//! Debian's images are built with no locale set, so `sort` is the C locale's byte order.
//! `/usr/local/share/ca-certificates` is empty in a fresh image, so it adds nothing here.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use super::GenError;

/// This generator's name in errors.
const GENERATOR: &str = "ca-bundle";

/// The directory ca-certificates ships certificates in, relative to the image root.
const CERTS_DIR: &str = "usr/share/ca-certificates/";

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// Base64 as OpenSSL and Java's MIME decoder read PEM: padding and canonical trailing bits
/// are not required, so a certificate they accept is not refused here.
const PEM_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What update-ca-certificates would write to /etc/ssl/certs/ca-certificates.crt, from the
/// certificates ca-certificates ships under /usr/share/ca-certificates (all enabled, as on
/// a fresh install), in the same order and format.
pub fn ca_bundle(certs: &[(String, Vec<u8>)]) -> Result<Vec<u8>, GenError> {
    // Keyed by the name /etc/ca-certificates.conf would list; `str`'s order is byte order,
    // which is `LC_ALL=C sort`.
    let mut listed: BTreeMap<&str, (&str, &[u8])> = BTreeMap::new();
    for (path, pem) in certs {
        let name = conf_name(path)?;
        if let Some((first, _)) = listed.insert(name, (path, pem)) {
            return Err(err(format!(
                "{first} is given twice; pass each file under /{CERTS_DIR} once"
            )));
        }
    }
    if listed.is_empty() {
        return Err(err(format!(
            "no .crt files under /{CERTS_DIR}; add ca-certificates to the rule's packages and paths"
        )));
    }

    let mut bundle = Vec::with_capacity(certs.iter().map(|(_, pem)| pem.len() + 1).sum());
    for (path, pem) in listed.values() {
        if parse_pem(pem, GENERATOR, path)?.is_empty() {
            return Err(err(format!(
                "{path} holds no PEM CERTIFICATE block; only certificates belong under /{CERTS_DIR}, so leave the file out of the rule"
            )));
        }
        bundle.extend_from_slice(pem);
        // `sed -e '$a\'` ends an unterminated last line (Debian #635570); nothing else changes.
        if pem.last() != Some(&b'\n') {
            bundle.push(b'\n');
        }
    }
    Ok(bundle)
}

/// The DER of each PEM CERTIFICATE block in a bundle, in bundle order.
pub fn pem_certificates(bundle: &[u8]) -> Result<Vec<Vec<u8>>, GenError> {
    parse_pem(bundle, GENERATOR, "the CA bundle")
}

/// The path relative to /usr/share/ca-certificates that /etc/ca-certificates.conf would list.
fn conf_name(path: &str) -> Result<&str, GenError> {
    let rel = path
        .strip_prefix('/')
        .unwrap_or(path)
        .strip_prefix(CERTS_DIR)
        .ok_or_else(|| {
            err(format!(
                "{path} is not under /{CERTS_DIR}; pass only the files ca-certificates ships there"
            ))
        })?;
    if !rel.ends_with(".crt") {
        return Err(err(format!(
            "{path} does not end in .crt, so update-ca-certificates would not list it; pass only *.crt files"
        )));
    }
    // Debian's config script word-splits the file list and update-ca-certificates reads the
    // conf with `read`, so such a name never reaches the bundle intact; refuse it rather than
    // guess which mangling to reproduce.
    if rel
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(err(format!(
            "{path} has whitespace, a control character or a backslash in its name, which update-ca-certificates cannot list; rename the file"
        )));
    }
    Ok(rel)
}

/// The DER of each `CERTIFICATE` block in `text`; `name` says where the text came from.
///
/// Text outside blocks is ignored, as OpenSSL and Java ignore it; other PEM types (keys,
/// CRLs, OpenSSL's `TRUSTED CERTIFICATE`) are not certificates Java can load, so they are
/// skipped too.
pub(super) fn parse_pem(
    text: &[u8],
    generator: &'static str,
    name: &str,
) -> Result<Vec<Vec<u8>>, GenError> {
    let fail = |what: String| GenError {
        generator,
        what: format!("{name}: {what}"),
    };
    let mut certs = Vec::new();
    // (line the open block began on, its base64 so far)
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let line = raw.trim_ascii_end();
        match &mut open {
            None => {
                if line == BEGIN {
                    open = Some((line_no, Vec::new()));
                }
            }
            Some((begun, b64)) => {
                if line == END {
                    let begun = *begun;
                    let der = PEM_BASE64
                        .decode(&*b64)
                        .map_err(|e| {
                            fail(format!(
                                "line {begun}: the CERTIFICATE block is not valid base64 ({e}); the file is damaged, so fetch it again or leave it out"
                            ))
                        })?;
                    if !is_one_sequence(&der) {
                        return Err(fail(format!(
                            "line {begun}: the CERTIFICATE block does not hold one DER certificate; the file is damaged, so fetch it again or leave it out"
                        )));
                    }
                    certs.push(der);
                    open = None;
                } else if line.starts_with(b"-----") {
                    return Err(fail(format!(
                        "line {line_no}: `{}` inside the CERTIFICATE block begun on line {begun}; the file is damaged, so fetch it again or leave it out",
                        String::from_utf8_lossy(line)
                    )));
                } else {
                    b64.extend(line.iter().filter(|b| !b.is_ascii_whitespace()));
                }
            }
        }
    }
    if let Some((begun, _)) = open {
        return Err(fail(format!(
            "the CERTIFICATE block begun on line {begun} has no END line; the file is truncated, so fetch it again or leave it out"
        )));
    }
    Ok(certs)
}

/// One DER TLV at the start of `input`: (tag, contents, what follows). Single-byte tags and
/// definite lengths only, which is all DER certificates use.
pub(super) fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        // 0x80 is BER's indefinite length; more than four length bytes is no certificate.
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, after) = rest.split_at(count);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
    };
    if rest.len() < len {
        return None;
    }
    let (contents, after) = rest.split_at(len);
    Some((tag, contents, after))
}

/// Is `der` exactly one SEQUENCE, as every X.509 certificate is?
fn is_one_sequence(der: &[u8]) -> bool {
    matches!(der_tlv(der), Some((0x30, _, rest)) if rest.is_empty())
}

fn err(what: String) -> GenError {
    GenError {
        generator: GENERATOR,
        what,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;

    /// Self-signed EC certificates made with `openssl ca -selfsign` for these tests, valid
    /// from 2020 (C: 2010) to 2124. A: CN "debless test (root), CA/1".
    pub(in crate::generate) const TEST_CERT_A: &str = "-----BEGIN CERTIFICATE-----
MIIBejCCASGgAwIBAgIRAO9+5NEwkZwdwOOmqCv1W+wwCgYIKoZIzj0EAwIwJDEi
MCAGA1UEAwwZZGVibGVzcyB0ZXN0IChyb290KSwgQ0EvMTAgFw0yMDAxMDEwMDAw
MDBaGA8yMTI0MDEwMTAwMDAwMFowJDEiMCAGA1UEAwwZZGVibGVzcyB0ZXN0IChy
b290KSwgQ0EvMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOF7hXwgPeHnAeEV
8Q59AWWPeKKIxQl2c+WVvGBOM6fKr+EaSIgv5ROMgIy3dyh6c9d8x5d1J47JPtZG
CqoWcJCjMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFJ3YZv3pow5EIw4B
txsF2AUMltbYMAoGCCqGSM49BAMCA0cAMEQCIDaZA5OGD8HXeCeg47yWSAmKNfHG
Wmz/RvXJThNdOc9xAiBs9KX6l2Afv2j3c/gh4RbzMCaMzUj29kGTTSaRLtabqQ==
-----END CERTIFICATE-----
";

    /// B: no CN; O "Debless Org", OU "Debless Unit".
    pub(in crate::generate) const TEST_CERT_B: &str = "-----BEGIN CERTIFICATE-----
MIIBjjCCATOgAwIBAgIRAPMhoE+e6fJqvIFbLYWxnoowCgYIKoZIzj0EAwIwLTEU
MBIGA1UECgwLRGVibGVzcyBPcmcxFTATBgNVBAsMDERlYmxlc3MgVW5pdDAgFw0y
MDAxMDEwMDAwMDBaGA8yMTI0MDEwMTAwMDAwMFowLTEUMBIGA1UECgwLRGVibGVz
cyBPcmcxFTATBgNVBAsMDERlYmxlc3MgVW5pdDBZMBMGByqGSM49AgEGCCqGSM49
AwEHA0IABOxDrZwGSlN7KdbbmwKLnOTEpOQ0vQWgMZZ08ZHAsCvss6wjUnwN+YWD
YwFeF4TW07OhD4Bt4Po9KQl90alkxdujMjAwMA8GA1UdEwEB/wQFMAMBAf8wHQYD
VR0OBBYEFPEeDL8q49H4GwNHAA1fYZeEvQ7TMAoGCCqGSM49BAMCA0kAMEYCIQDZ
FlwB3Osw5oPzrL7Nc+dV0u6pFiIuTa5AziOhIgI0SQIhAI6Ev1oaCV5wcHOV69MQ
C9M8AYUzovdX2c6wNEDs+AAJ
-----END CERTIFICATE-----
";

    /// C: the same CN as A, older, under another key and O "Other".
    pub(in crate::generate) const TEST_CERT_C: &str = "-----BEGIN CERTIFICATE-----
MIIBmjCCAUCgAwIBAgIQPfsLdiFcC5TRgrgJOxWM9DAKBggqhkjOPQQDAjA0MQ4w
DAYDVQQKDAVPdGhlcjEiMCAGA1UEAwwZZGVibGVzcyB0ZXN0IChyb290KSwgQ0Ev
MTAgFw0xMDAxMDEwMDAwMDBaGA8yMTI0MDEwMTAwMDAwMFowNDEOMAwGA1UECgwF
T3RoZXIxIjAgBgNVBAMMGWRlYmxlc3MgdGVzdCAocm9vdCksIENBLzEwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAT5pWQtVdBW0cRWIbCdgD3NEj5ZLOk4asw3ziB0
SJ/np6swvk/ss+nitFfVUW+kS2lGMmGhDZHvYjDv+3kpCvktozIwMDAPBgNVHRMB
Af8EBTADAQH/MB0GA1UdDgQWBBQ0Tax0eVl+VPsFr1qEUO+sp74HkjAKBggqhkjO
PQQDAgNIADBFAiA/oPNXv67qvhUt+eegQpguPeC94Lq1asCvDGe5uyjSkgIhAJl2
DU6tJ3HN4wH0QkaaobsayZhqcCFzu/qdJ+jQF6YD
-----END CERTIFICATE-----
";

    /// D: C "HU", CN "Főtanúsítvány Teszt" as a UTF8String.
    pub(in crate::generate) const TEST_CERT_D: &str = "-----BEGIN CERTIFICATE-----
MIIBkDCCATegAwIBAgIRAJoPhpf63hT67UaLUbrPTAowCgYIKoZIzj0EAwIwLzEL
MAkGA1UEBhMCSFUxIDAeBgNVBAMMF0bFkXRhbsO6c8OtdHbDoW55IFRlc3p0MCAX
DTIwMDEwMTAwMDAwMFoYDzIxMjQwMTAxMDAwMDAwWjAvMQswCQYDVQQGEwJIVTEg
MB4GA1UEAwwXRsWRdGFuw7pzw610dsOhbnkgVGVzenQwWTATBgcqhkjOPQIBBggq
hkjOPQMBBwNCAAR1gtn55IDo1f5Xy8tWMjE6vK8yUfqxVpDSRtdf9ptvbVCjdkX+
ty/COyT0icnVfSp9bySNPdDO0EYyq6jmzFJlozIwMDAPBgNVHRMBAf8EBTADAQH/
MB0GA1UdDgQWBBTKuLiC1ZByyAl3s3qjC1teIvU97jAKBggqhkjOPQQDAgNHADBE
AiBQ+MTzUqaPjE0A4VMRj8JZBAJFY91sywmmABs/j7MaPAIgOGnYmkcnvSzEiE6h
ITZmi5GucDoK8DxGK012Q53SMVw=
-----END CERTIFICATE-----
";

    fn pem(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn entry(rel: &str, body: &[u8]) -> (String, Vec<u8>) {
        (format!("/usr/share/ca-certificates/{rel}"), body.to_vec())
    }

    /// The oracle and the certificates it reads come with Debian's ca-certificates.
    fn have_ca_certificates(shipped: Option<&Path>) -> bool {
        const INSTALL: &str = "make deps (apt-get install ca-certificates)";
        crate::testing::require_tool("/usr/sbin/update-ca-certificates", INSTALL)
            && shipped.is_none_or(|dir| {
                crate::testing::require(dir.is_dir(), &dir.display().to_string(), INSTALL)
            })
    }

    /// Every regular `*.crt` under `root`, as (image path under /usr/share/ca-certificates,
    /// bytes), the way Debian's `find . -type f -name '*.crt'` sees them.
    pub(in crate::generate) fn crt_files(root: &Path) -> Vec<(String, Vec<u8>)> {
        fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, Vec<u8>)>) {
            for e in fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let meta = fs::symlink_metadata(&p).unwrap();
                if meta.is_dir() {
                    walk(&p, root, out);
                } else if meta.is_file() && p.to_string_lossy().ends_with(".crt") {
                    let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
                    out.push((
                        format!("/usr/share/ca-certificates/{rel}"),
                        fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        let mut out = Vec::new();
        walk(root, root, &mut out);
        out
    }

    /// Runs the host's real update-ca-certificates over `certs_dir` in a scratch /etc, with
    /// the conf a fresh install's postinst writes (every cert enabled, `LC_ALL=C sort`ed),
    /// and returns the bundle it wrote.
    fn real_update_ca_certificates(certs_dir: &Path) -> Vec<u8> {
        let scratch = tempfile::tempdir().unwrap();
        let etc = scratch.path().join("etc/ssl/certs");
        let local = scratch.path().join("usr/local/share/ca-certificates");
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(&local).unwrap();
        let conf = scratch.path().join("ca-certificates.conf");
        let listing = Command::new("sh")
            .arg("-c")
            .arg(r#"cd "$1" && find . -type f -name '*.crt' -print | sed -e 's/^\.\///' | LC_ALL=C sort"#)
            .arg("sh")
            .arg(certs_dir)
            .output()
            .unwrap();
        assert!(listing.status.success());
        let mut text = b"# written like a fresh install's postinst\n".to_vec();
        text.extend_from_slice(&listing.stdout);
        fs::write(&conf, text).unwrap();
        let run = Command::new("/usr/sbin/update-ca-certificates")
            .args(["--certsconf".as_ref(), conf.as_os_str()])
            .args(["--certsdir".as_ref(), certs_dir.as_os_str()])
            .args(["--localcertsdir".as_ref(), local.as_os_str()])
            .args(["--etccertsdir".as_ref(), etc.as_os_str()])
            .args(["--hooksdir", ""])
            .env("TMPDIR", scratch.path())
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "update-ca-certificates failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        fs::read(etc.join("ca-certificates.crt")).unwrap()
    }

    #[test]
    fn bundle_matches_update_ca_certificates_on_the_shipped_certs() {
        let shipped = Path::new("/usr/share/ca-certificates");
        if !have_ca_certificates(Some(shipped)) {
            return;
        }
        let mut certs = crt_files(shipped);
        // The input order must not matter: Debian sorts.
        certs.sort();
        certs.reverse();
        let ours = ca_bundle(&certs).unwrap();
        let oracle = real_update_ca_certificates(shipped);
        assert!(
            ours == oracle,
            "bundle differs from update-ca-certificates'"
        );
        let ders = pem_certificates(&ours).unwrap();
        assert!(ders.len() > 100, "only {} certificates", ders.len());
        println!(
            "bundle matches update-ca-certificates byte for byte: {} files, {} certs",
            certs.len(),
            ders.len()
        );

        // The host's own bundle came from a real postinst; when its conf is a fresh install's
        // (nothing deselected), ours must be its start (local certificates come after).
        let host_conf = fs::read_to_string("/etc/ca-certificates.conf").unwrap_or_default();
        let enabled: Vec<&str> = host_conf
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let host_bundle = fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        if enabled.len() == certs.len() && enabled.iter().all(|l| !l.starts_with('!')) {
            assert!(host_bundle.starts_with(&ours), "host bundle differs");
        }
    }

    #[test]
    fn bundle_matches_update_ca_certificates_on_awkward_files() {
        if !have_ca_certificates(None) {
            return;
        }
        let a = pem(TEST_CERT_A);
        let b = pem(TEST_CERT_B);
        let crlf: Vec<u8> = TEST_CERT_A.replace('\n', "\r\n").into_bytes();
        let mut two = a.clone();
        two.extend_from_slice(b"some text between blocks\n");
        two.extend_from_slice(&b);
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("mozilla/A_b.crt", a[..a.len() - 1].to_vec()), // no final newline
            ("mozilla/A.crt", crlf.clone()),
            ("mozilla/a.crt", two),
            ("mozilla/Z.crt", crlf[..crlf.len() - 1].to_vec()), // ends in a bare CR
            ("local/x.crt", b.clone()),
            (
                "mozilla/sub/deeper.crt",
                [b"# header\n".as_slice(), &b].concat(),
            ),
            (
                "mozilla/NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt",
                a.clone(),
            ),
            ("Top-level.crt", b.clone()),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (rel, body) in &files {
            let p: PathBuf = dir.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, body).unwrap();
        }
        let certs: Vec<_> = files.iter().map(|(rel, body)| entry(rel, body)).collect();
        let ours = ca_bundle(&certs).unwrap();
        assert!(
            ours == real_update_ca_certificates(dir.path()),
            "bundle differs from update-ca-certificates':\n{}",
            String::from_utf8_lossy(&ours)
        );
        assert_eq!(pem_certificates(&ours).unwrap().len(), 9);
    }

    #[test]
    fn files_go_in_byte_order_of_their_conf_names_with_newlines_added() {
        let certs = vec![
            entry("mozilla/b.crt", TEST_CERT_B.trim_end().as_bytes()),
            entry("mozilla/B.crt", TEST_CERT_A.as_bytes()),
            (
                "usr/share/ca-certificates/mozilla/B_.crt".into(),
                pem(TEST_CERT_B),
            ),
            entry("mozilla/B.x.crt", TEST_CERT_A.trim_end().as_bytes()),
        ];
        let bundle = ca_bundle(&certs).unwrap();
        let expected = [TEST_CERT_A, TEST_CERT_A, TEST_CERT_B, TEST_CERT_B].concat();
        assert_eq!(String::from_utf8(bundle).unwrap(), expected);
    }

    #[test]
    fn crlf_is_kept_and_parsed() {
        let crlf = TEST_CERT_A.replace('\n', "\r\n");
        let bundle = ca_bundle(&[entry("x/crlf.crt", crlf.as_bytes())]).unwrap();
        assert_eq!(bundle, crlf.as_bytes());
        assert_eq!(
            pem_certificates(&bundle).unwrap(),
            pem_certificates(TEST_CERT_A.as_bytes()).unwrap()
        );
    }

    #[test]
    fn base64_is_read_as_leniently_as_openssl() {
        // Test DER 30 03 02 01 05 ("MAMCAQU="), without padding and with non-zero spare bits.
        for body in ["MAMCAQU=", "MAMCAQU", "MAMCAQV="] {
            let pem = format!("-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n");
            assert_eq!(
                pem_certificates(pem.as_bytes()).unwrap(),
                vec![vec![0x30, 0x03, 0x02, 0x01, 0x05]],
                "{body}"
            );
        }
    }

    #[test]
    fn pem_certificates_decodes_each_block() {
        let bundle = [TEST_CERT_A, "junk\n", TEST_CERT_B, TEST_CERT_A].concat();
        let ders = pem_certificates(bundle.as_bytes()).unwrap();
        assert_eq!(ders.len(), 3);
        assert_eq!(ders[0], ders[2]);
        assert_ne!(ders[0], ders[1]);
        assert!(ders.iter().all(|d| d[0] == 0x30 && is_one_sequence(d)));
        assert!(pem_certificates(b"").unwrap().is_empty());
    }

    #[test]
    fn a_file_without_a_certificate_is_named() {
        let e = ca_bundle(&[
            entry("mozilla/good.crt", TEST_CERT_A.as_bytes()),
            entry(
                "mozilla/empty.crt",
                b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            ),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("generator ca-bundle: /usr/share/ca-certificates/mozilla/empty.crt holds no PEM CERTIFICATE block"),
            "{e}"
        );
        let e = ca_bundle(&[entry("mozilla/nil.crt", b"")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mozilla/nil.crt holds no PEM CERTIFICATE"),
            "{e}"
        );
    }

    #[test]
    fn damaged_blocks_are_reported_with_their_line() {
        let truncated = &TEST_CERT_A[..TEST_CERT_A.len() - 30];
        let e = ca_bundle(&[entry("m/t.crt", truncated.as_bytes())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/usr/share/ca-certificates/m/t.crt: the CERTIFICATE block begun on line 1 has no END line"),
            "{e}"
        );

        let bad64 = TEST_CERT_A.replacen("MIIB", "M!IB", 1);
        let e = pem_certificates(bad64.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("the CA bundle: line 1: the CERTIFICATE block is not valid base64"),
            "{e}"
        );

        // Valid base64, but a line short: the DER SEQUENCE is cut.
        let mut lines: Vec<&str> = TEST_CERT_A.lines().collect();
        lines.remove(3);
        let e = pem_certificates(lines.join("\n").as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not hold one DER certificate"), "{e}");

        let nested = [&TEST_CERT_A[..100], "\n", TEST_CERT_A].concat();
        let e = pem_certificates(nested.as_bytes()).unwrap_err().to_string();
        assert!(
            e.contains("inside the CERTIFICATE block begun on line 1"),
            "{e}"
        );
    }

    #[test]
    fn paths_debian_would_not_list_are_refused() {
        for (path, says) in [
            (
                "/etc/ssl/certs/x.crt",
                "is not under /usr/share/ca-certificates/",
            ),
            ("/usr/share/ca-certificates/x.pem", "does not end in .crt"),
            ("/usr/share/ca-certificates/a b.crt", "rename the file"),
            ("/usr/share/ca-certificates/a\\b.crt", "rename the file"),
        ] {
            let e = ca_bundle(&[(path.to_string(), pem(TEST_CERT_A))])
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{path}: {e}");
            assert!(e.contains(path), "{e}");
        }
        let e = ca_bundle(&[entry("a.crt", TEST_CERT_A.as_bytes()), entry("a.crt", b"")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is given twice"), "{e}");
        let e = ca_bundle(&[]).unwrap_err().to_string();
        assert!(e.contains("add ca-certificates"), "{e}");
    }

    #[test]
    fn der_lengths() {
        assert_eq!(der_tlv(&[0x30, 0x00]), Some((0x30, &[][..], &[][..])));
        assert_eq!(
            der_tlv(&[0x04, 0x81, 0x01, 0xaa, 0xbb]),
            Some((0x04, &[0xaa][..], &[0xbb][..]))
        );
        let long = [&[0x04, 0x82, 0x01, 0x00][..], &[7u8; 256]].concat();
        assert_eq!(der_tlv(&long).map(|(_, c, _)| c.len()), Some(256));
        assert_eq!(
            der_tlv(&[0x30, 0x80, 0x00, 0x00]),
            None,
            "indefinite length"
        );
        assert_eq!(der_tlv(&[0x30, 0x05, 0x00]), None, "short");
        assert_eq!(der_tlv(&[0x1f, 0x01, 0x00]), None, "multi-byte tag");
        assert_eq!(der_tlv(&[]), None);
    }
}
