//! Live: pin the real debian13 from the host's apt mirror and check facts against the
//! archive itself. The archive moves weekly, so this pins fresh every run.
//!
//! Every test here is `#[ignore]`d with a `live:` reason, so plain `cargo test` stays
//! hermetic; `make test-live` (part of `make test`) runs them.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use common::{run_ok, scratch_project};
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
#[ignore = "live: needs the Debian archive (make test-live)"]
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
            libc.sha256.hex(),
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

/// Unpack `layout:tag` with umoci and run `args` in it with runc; returns stdout.
fn run_in_runc(layout: &Path, tag: &str, work: &Path, name: &str, args: &[&str]) -> String {
    let bundle = work.join(name);
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(&bundle),
    );
    // As DEVELOPERS.md says: no rlimits, resources or cgroup path in this sandbox.
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"].as_object_mut().unwrap().remove("rlimits");
    cfg["process"]["args"] = serde_json::json!(args);
    cfg["process"]["terminal"] = serde_json::json!(false);
    let linux = cfg["linux"].as_object_mut().unwrap();
    linux.remove("resources");
    linux.remove("cgroupsPath");
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    run_ok(
        Command::new("runc")
            .arg("run")
            .arg("--bundle")
            .arg(&bundle)
            .arg(format!("debless-live-{name}-{}", std::process::id())),
    )
}

/// Live end to end: pin fresh, build static and base for amd64 and arm64, inspect all
/// four with skopeo, and run the dynamic loader (and a busybox probe) in runc.
#[test]
#[ignore = "live: needs the Debian archive (make test-live)"]
fn live_build_of_static_and_base_runs_in_runc() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    scratch_project(&project);
    // A test-only image: base plus Debian's busybox-static, to look around inside.
    std::fs::write(
        project.join("rules/probe.toml"),
        "parent = 'base'\ndistros = ['debian13']\n[packages.busybox-static]\n",
    )
    .unwrap();
    let debless = |args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_debless"));
        c.arg("-C")
            .arg(&project)
            .args(args)
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .env_remove("DEBLESS_MIRRORS")
            .env_remove("SOURCE_DATE_EPOCH");
        run_ok(&mut c);
    };
    debless(&[
        "pin", "--distro", "debian13", "--arch", "amd64", "--arch", "arm64",
    ]);
    let out = tmp.path().join("out");
    let out_s = out.to_str().unwrap();
    debless(&[
        "build",
        "static",
        "base",
        "probe",
        "--distro",
        "debian13",
        "--variant",
        "latest",
        "--out",
        out_s,
    ]);
    for image in ["static", "base"] {
        for arch in ["amd64", "arm64"] {
            let o = run_ok(
                Command::new("skopeo")
                    .arg("inspect")
                    .arg(format!("oci:{out_s}/{image}-debian13:latest-{arch}")),
            );
            let v: serde_json::Value = serde_json::from_str(&o).unwrap();
            assert_eq!(v["Architecture"], arch, "{image}");
            assert_eq!(v["Os"], "linux");
        }
    }
    let work = tmp.path().join("bundles");
    std::fs::create_dir_all(&work).unwrap();
    let ld = run_in_runc(
        &out.join("base-debian13"),
        "latest-amd64",
        &work,
        "ld",
        &["/lib64/ld-linux-x86-64.so.2", "--version"],
    );
    assert!(ld.contains("ld.so (Debian GLIBC"), "{ld}");
    // The static image has no libc and no shell: nothing but data files.
    let static_root = work.join("static");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{out_s}/static-debian13:latest-amd64"))
            .arg(&static_root),
    );
    let rootfs = static_root.join("rootfs");
    assert!(rootfs.join("usr/share/zoneinfo/America/New_York").is_file());
    assert!(rootfs.join("etc/services").is_file());
    assert!(
        !rootfs.join("usr/bin/sh").exists()
            && !rootfs.join("usr/lib/x86_64-linux-gnu/libc.so.6").exists()
    );
    assert!(!rootfs.join("usr/share/man").exists());
    assert!(rootfs.join("usr/share/doc/base-files/copyright").is_file());
    let os = run_in_runc(
        &out.join("probe-debian13"),
        "latest-amd64",
        &work,
        "probe",
        &["/usr/bin/busybox", "cat", "/etc/os-release"],
    );
    assert!(
        os.contains("PRETTY_NAME=\"Distroless\"")
            && os.contains("ID=\"debian\"")
            && os.contains("VERSION_ID=\"13\""),
        "{os}"
    );
}
