//! Live: pin the real debian13 from the host's apt mirror and check facts against the
//! archive itself. The archive moves weekly, so this pins fresh every run.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use debless::fetch::mirror::{Mirror, apt_source_uris};
use debless::snapshot::lock::Lock;

/// The host's Debian mirror for `archive`, from its apt sources.
fn host_mirror(archive: &str) -> String {
    let uris = apt_source_uris(Path::new("/etc/apt"));
    uris.iter()
        .filter_map(|(u, _)| Mirror::parse(u, &["debian", "debian-security"], "apt").ok())
        .find_map(|m| m.root(archive, None))
        .expect("the host's apt sources must list a Debian mirror (/etc/apt/sources.list.d)")
}

#[test]
fn live_pin_of_debian13_matches_the_archive() {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let lock_path = tmp.path().join("debian13.lock");
    let out = Command::new(env!("CARGO_BIN_EXE_debless"))
        .arg("-C")
        .arg(project)
        .args([
            "pin", "--distro", "debian13", "--arch", "amd64", "--arch", "arm64", "-o",
        ])
        .arg(&lock_path)
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .env_remove("DEBLESS_MIRRORS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "live pin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = Lock::read(&lock_path).unwrap();
    assert_eq!(lock.architectures, ["amd64", "arm64"]);
    assert_eq!(lock.suites.len(), 3);

    // Independently read the archive's own index and compare libc6.
    let mirror = host_mirror("debian");
    for arch in ["amd64", "arm64"] {
        let libc = lock
            .packages
            .iter()
            .find(|p| p.arch == arch && p.name == "libc6")
            .unwrap_or_else(|| panic!("libc6 missing for {arch}"));
        let suite = &libc.suite;
        assert!(suite.starts_with("trixie"), "{suite}");
        let root = if suite.ends_with("-security") {
            host_mirror("debian-security")
        } else {
            mirror.clone()
        };
        let url = format!("{root}dists/{suite}/main/binary-{arch}/Packages.xz");
        let body = reqwest::blocking::get(&url).unwrap().bytes().unwrap();
        let mut text = String::new();
        liblzma::read::XzDecoder::new_multi_decoder(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        let stanza = text
            .split("\n\n")
            .find(|s| {
                s.starts_with("Package: libc6\n")
                    && s.contains(&format!("\nVersion: {}\n", libc.version))
            })
            .unwrap_or_else(|| panic!("libc6 {} not in {url}", libc.version));
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            field("SHA256"),
            libc.sha256,
            "libc6 sha256 differs from {url}"
        );
        assert_eq!(field("Filename"), libc.filename);
        assert_eq!(field("Size"), libc.size.to_string());
        // debconf is excluded, never pulled in, and recorded.
        assert!(
            !lock
                .packages
                .iter()
                .any(|p| p.arch == arch && p.name == "debconf")
        );
        let ex = lock
            .excluded
            .iter()
            .find(|e| e.arch == arch && e.name == "debconf")
            .expect("debconf exclusion recorded");
        assert_eq!(ex.excluded_by, "snapshots/debian13.toml");
        assert!(ex.required_by.iter().any(|r| r == "ca-certificates"));
    }
}
