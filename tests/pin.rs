//! Hermetic tests of `debless pin` and `debless why` against a signed fake archive
//! served on 127.0.0.1.

mod common;

use common::{Archive, Gpg, Pkg, Project, Server, SuiteOpts, pkg, stderr, stdout};
use debless::snapshot::lock::Lock;

/// Keys, archive and project for one test.
struct Fixture {
    gpg: Gpg,
    main_key: String,
    security_key: String,
    archive: Archive,
    _root: tempfile::TempDir,
    project: Project,
}

fn main_packages(arch: &str) -> Vec<Pkg> {
    vec![
        pkg("base-files", "13.8", arch, &[("Pre-Depends", "awk")]),
        pkg("mawk", "1.3.4-1", arch, &[("Provides", "awk")]),
        pkg("gawk", "5.2-1", arch, &[("Provides", "awk")]),
        pkg(
            "libc6",
            "2.41-1",
            arch,
            &[("Depends", "libgcc-s1"), ("Multi-Arch", "same")],
        ),
        pkg(
            "libgcc-s1",
            "14.2.0-19",
            arch,
            &[("Source", "gcc-14 (14.2.0-19)")],
        ),
        pkg(
            "app",
            "1.0-1",
            arch,
            &[
                ("Pre-Depends", "libc6 (>= 2.36)"),
                (
                    "Depends",
                    "debconf (>= 0.5) | debconf-2.0, mail-transport-agent, libfoo-virtual (>= 2), tzdata, x-tool | y-tool, helper:any",
                ),
            ],
        ),
        pkg("debconf", "1.5.91", "all", &[("Provides", "debconf-2.0")]),
        pkg(
            "exim4",
            "4.98-1",
            arch,
            &[("Provides", "mail-transport-agent")],
        ),
        pkg(
            "postfix",
            "3.9-1",
            arch,
            &[("Provides", "mail-transport-agent")],
        ),
        pkg(
            "libfoo0",
            "0.9-1",
            arch,
            &[("Provides", "libfoo-virtual (= 1)")],
        ),
        pkg(
            "libfoo-old",
            "0.1-1",
            arch,
            &[("Provides", "libfoo-virtual")],
        ),
        pkg(
            "libfoo1",
            "1.0-1",
            arch,
            &[("Provides", "libfoo-virtual (= 2)")],
        ),
        pkg("tzdata", "2024a-1", "all", &[]),
        pkg("x-tool", "1", arch, &[]),
        pkg("y-tool", "1", arch, &[]),
        pkg("helper", "1", "all", &[("Multi-Arch", "allowed")]),
        pkg("yuser", "1", arch, &[("Depends", "y-tool")]),
        pkg("needs-new-libc", "1", arch, &[("Depends", "middle")]),
        pkg("middle", "1", arch, &[("Depends", "libc6 (>= 9.0)")]),
        pkg("enemy", "1", arch, &[("Conflicts", "libgcc-s1 (<< 15)")]),
    ]
}

const MANIFEST: &str = r#"
distro = "test"
codename = "test"
architectures = ["amd64", "arm64"]
exclude = ["debconf", "awk"]

[[suites]]
archive = "debian"
suite = "test"

[[suites]]
archive = "debian"
suite = "test-updates"

[[suites]]
archive = "debian-security"
suite = "test-security"
signed_by = ["SECURITY_FPR"]

[[keys]]
file = "keys/main.asc"
fingerprint = "MAIN_FPR"

[[keys]]
file = "keys/security.asc"
fingerprint = "SECURITY_FPR"
"#;

impl Fixture {
    /// The archive laid out under `<root>/<prefix>` (e.g. "" or "archive/{archive}/<stamp>").
    fn new(layout: &dyn Fn(&str) -> String, opts: &SuiteOpts) -> Fixture {
        let gpg = Gpg::new();
        let main_key = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let security_key = gpg.generate("Test Security <security@invalid>", "0", None);
        let root = tempfile::tempdir().unwrap();
        let archive = Archive {
            root: root.path().to_owned(),
        };
        let project = Project::new();
        let f = Fixture {
            gpg,
            main_key,
            security_key,
            archive,
            _root: root,
            project,
        };
        f.write_archive(layout, opts, &f.main_key, &f.security_key);
        f.project
            .write("snapshots/keys/main.asc", &f.gpg.export(&f.main_key));
        f.project.write(
            "snapshots/keys/security.asc",
            &f.gpg.export(&f.security_key),
        );
        f.project.write(
            "snapshots/test.toml",
            &MANIFEST
                .replace("MAIN_FPR", &f.main_key)
                .replace("SECURITY_FPR", &f.security_key),
        );
        f.project.write(
            "rules/img.toml",
            "distros = ['test']\nexclude = ['exim4']\n[packages.base-files]\n[packages.app]\n",
        );
        f.project.write(
            "rules/other.toml",
            "distros = ['test']\n[packages.y-tool]\n[packages.app]\n",
        );
        f
    }

    fn write_archive(
        &self,
        layout: &dyn Fn(&str) -> String,
        opts: &SuiteOpts,
        main_key: &str,
        security_key: &str,
    ) {
        let per_arch = |f: &dyn Fn(&str) -> Vec<Pkg>| -> Vec<(&str, Vec<Pkg>)> {
            ["amd64", "arm64"].iter().map(|a| (*a, f(a))).collect()
        };
        self.archive.write_suite(
            &layout("debian"),
            "test",
            &per_arch(&main_packages),
            &self.gpg,
            main_key,
            opts,
        );
        self.archive.write_suite(
            &layout("debian"),
            "test-updates",
            &per_arch(&|a| vec![pkg("libc6", "2.41-2", a, &[("Depends", "libgcc-s1")])]),
            &self.gpg,
            main_key,
            opts,
        );
        self.archive.write_suite(
            &layout("debian-security"),
            "test-security",
            &per_arch(&|_| vec![pkg("tzdata", "2024b-0+deb13u1", "all", &[])]),
            &self.gpg,
            security_key,
            opts,
        );
    }

    fn live() -> Fixture {
        Fixture::new(&|a| a.to_owned(), &SuiteOpts::default())
    }

    fn pin(&self, server: &Server, extra: &[&str]) -> std::process::Output {
        let cache = self.project.path().join("cache");
        let mut args = vec![
            "pin",
            "--distro",
            "test",
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        let url = server.url();
        if !extra.contains(&"--date") {
            args.extend(["--mirror", url.as_str()]);
        }
        args.extend(extra);
        self.project.run(&args)
    }

    fn lock(&self) -> Lock {
        Lock::read(&self.project.path().join("snapshots/test.lock")).unwrap()
    }

    fn dists(&self, rel: &str) -> std::path::PathBuf {
        self.archive.root.join(rel)
    }
}

fn assert_failed_with(out: &std::process::Output, needle: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "pin should have failed; stderr: {err}"
    );
    let last = err.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: "),
        "last line is not an error: {err}"
    );
    assert!(last.contains(needle), "expected {needle:?} in {last:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn good_pin_resolves_and_records_everything() {
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    let out = f.pin(&server, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lock = f.lock();
    assert_eq!(lock.architectures, ["amd64", "arm64"]);
    assert_eq!(lock.timestamp, "2026-11-21T09:15:44Z");
    assert_eq!(lock.snapshot, None);
    let get = |arch: &str, name: &str| {
        lock.packages
            .iter()
            .find(|p| p.arch == arch && p.name == name)
    };
    let names = |arch: &str| -> Vec<String> {
        lock.packages
            .iter()
            .filter(|p| p.arch == arch)
            .map(|p| p.name.clone())
            .collect()
    };
    assert_eq!(
        names("amd64"),
        [
            "app",
            "base-files",
            "exim4",
            "helper",
            "libc6",
            "libfoo1",
            "libgcc-s1",
            "postfix",
            "tzdata",
            "x-tool",
            "y-tool"
        ]
    );
    // Highest version across suites, from the suite that has it.
    let libc = get("amd64", "libc6").unwrap();
    assert_eq!(
        (libc.version.as_str(), libc.suite.as_str()),
        ("2.41-2", "test-updates")
    );
    let tz = get("arm64", "tzdata").unwrap();
    assert_eq!(
        (
            tz.version.as_str(),
            tz.suite.as_str(),
            tz.architecture.as_str()
        ),
        ("2024b-0+deb13u1", "test-security", "all")
    );
    // Hash and size of the real pool file.
    let bytes = std::fs::read(f.dists(&format!("debian/{}", libc.filename))).unwrap();
    assert_eq!(libc.sha256.hex(), common::sha256(&bytes));
    assert_eq!(libc.size, bytes.len() as u64);
    let gcc = get("amd64", "libgcc-s1").unwrap();
    assert_eq!(
        (gcc.source.as_str(), gcc.source_version.as_str()),
        ("gcc-14", "14.2.0-19")
    );
    // Alternatives: img alone picks x-tool (first); 'other' has y-tool selected as a root.
    let app = get("amd64", "app").unwrap();
    assert_eq!(app.rules, ["img", "other"]);
    assert_eq!(get("amd64", "x-tool").unwrap().rules, ["img"]);
    assert_eq!(get("amd64", "y-tool").unwrap().rules, ["other"]);
    // Versioned Provides: only libfoo1 provides libfoo-virtual (= 2).
    assert!(app.depends.contains(&"libfoo1".to_owned()) && get("amd64", "libfoo0").is_none());
    // Virtual with two providers: the first by name, unless the rule excludes it.
    assert_eq!(get("amd64", "exim4").unwrap().rules, ["other"]);
    assert_eq!(get("amd64", "postfix").unwrap().rules, ["img"]);
    // Global excludes, of a real and of a virtual name.
    let ex: Vec<String> = lock
        .excluded
        .iter()
        .filter(|e| e.arch == "amd64")
        .map(|e| {
            format!(
                "{} by {} for {}",
                e.name,
                e.excluded_by,
                e.required_by.join(",")
            )
        })
        .collect();
    assert_eq!(
        ex,
        [
            "awk by snapshots/test.toml for base-files",
            "debconf by snapshots/test.toml for app"
        ]
    );
    assert!(get("amd64", "gawk").is_none() && get("amd64", "mawk").is_none());
    // Suites record their signer and index hashes; by-hash was used.
    let sec = &lock.suites[2];
    assert_eq!(sec.signed_by, f.security_key);
    assert_eq!(sec.indices.len(), 2);
    assert!(
        server
            .paths()
            .iter()
            .any(|p| p.contains("/by-hash/SHA256/"))
    );

    let why = f
        .project
        .run(&["why", "libgcc-s1", "--image", "img", "--distro", "test"]);
    assert_eq!(stdout(&why), "app -> libc6 -> libgcc-s1\n");
    let why = f.project.run(&[
        "why", "debconf", "--image", "img", "--distro", "test", "--arch", "arm64",
    ]);
    assert_eq!(
        stdout(&why),
        "debconf is not in img for arm64: excluded by snapshots/test.toml (a dependency of app)\n"
    );
    let why = f
        .project
        .run(&["why", "nosuchpkg", "--image", "img", "--distro", "test"]);
    assert!(!why.status.success());
    assert_eq!(
        stderr(&why),
        "error: nosuchpkg is not in the test lock for any image or architecture, nor excluded anywhere; check the name (`debless inspect` lists an image's packages)\n"
    );
}

#[test]
fn two_pins_of_one_archive_write_identical_locks() {
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    let a = f.project.path().join("a.lock");
    let b = f.project.path().join("b.lock");
    assert!(
        f.pin(&server, &["-o", a.to_str().unwrap()])
            .status
            .success()
    );
    let requests = server.paths().len();
    assert!(
        f.pin(&server, &["-o", b.to_str().unwrap()])
            .status
            .success()
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // The second pin took the verified indices from the cache: only InRelease was fetched.
    let second: Vec<String> = server.paths()[requests..].to_vec();
    assert!(
        second.iter().all(|p| p.ends_with("/InRelease")),
        "{second:?}"
    );
}

#[test]
fn tampered_inrelease_is_rejected_and_the_old_lock_kept() {
    let f = Fixture::live();
    f.project.write("snapshots/test.lock", "old lock\n");
    let p = f.dists("debian/dists/test/InRelease");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("Label: Test", "Label: Evil");
    std::fs::write(&p, text).unwrap();
    let server = Server::serve(&f.archive.root);
    // --upgrade: the old "lock" is not one to keep versions from.
    let out = f.pin(&server, &["--upgrade"]);
    assert_failed_with(
        &out,
        "dists/test/InRelease: no valid signature by a trusted key: bad signature by",
    );
    assert_eq!(f.project.read("snapshots/test.lock"), "old lock\n");
}

#[test]
fn signature_by_an_untrusted_key_is_rejected() {
    let f = Fixture::live();
    let stranger = f.gpg.generate("Stranger <s@invalid>", "0", None);
    let release = std::fs::read_to_string(f.dists("debian/dists/test/Release")).unwrap();
    let signed = f.gpg.clearsign(&stranger, &release, None);
    std::fs::write(f.dists("debian/dists/test/InRelease"), signed).unwrap();
    let server = Server::serve(&f.archive.root);
    let out = f.pin(&server, &[]);
    assert_failed_with(
        &out,
        &format!("signature by {stranger} is not from a trusted key"),
    );
    assert!(!f.project.path().join("snapshots/test.lock").exists());
}

#[test]
fn security_suite_signed_by_the_main_key_is_rejected() {
    // signed_by restricts the security suite to the security key.
    let f = Fixture::live();
    let release =
        std::fs::read_to_string(f.dists("debian-security/dists/test-security/Release")).unwrap();
    std::fs::write(
        f.dists("debian-security/dists/test-security/InRelease"),
        f.gpg.clearsign(&f.main_key, &release, None),
    )
    .unwrap();
    let server = Server::serve(&f.archive.root);
    assert_failed_with(&f.pin(&server, &[]), "is not from a trusted key");
}

#[test]
fn packages_changed_after_signing_is_rejected() {
    let f = Fixture::live();
    let dir = f.dists("debian/dists/test/main/binary-amd64");
    let evil = common::xz(b"Package: evil\n");
    std::fs::write(dir.join("Packages.xz"), &evil).unwrap();
    for e in std::fs::read_dir(dir.join("by-hash/SHA256")).unwrap() {
        std::fs::write(e.unwrap().path(), &evil).unwrap();
    }
    let server = Server::serve(&f.archive.root);
    assert_failed_with(&f.pin(&server, &[]), "does not match the signed Release");
    assert!(!f.project.path().join("snapshots/test.lock").exists());
}

#[test]
fn release_without_the_index_is_an_error() {
    let f = Fixture::live();
    // Re-sign test-updates with only amd64 indices while still claiming arm64.
    f.archive.write_suite(
        "debian",
        "test-updates",
        &[("amd64", vec![pkg("libc6", "2.41-2", "amd64", &[])])],
        &f.gpg,
        &f.main_key,
        &SuiteOpts::default(),
    );
    std::fs::remove_dir_all(f.dists("debian/dists/test-updates/main/binary-arm64")).unwrap();
    let release = std::fs::read_to_string(f.dists("debian/dists/test-updates/Release")).unwrap();
    assert!(!release.contains("binary-arm64"));
    let server = Server::serve(&f.archive.root);
    assert_failed_with(
        &f.pin(&server, &[]),
        "the signed Release lists no main/binary-arm64/Packages index",
    );
}

#[test]
fn unknown_root_package_is_an_error() {
    let f = Fixture::live();
    f.project
        .write("rules/ghost.toml", "distros = ['test']\n[packages.ghost]\n");
    let server = Server::serve(&f.archive.root);
    assert_failed_with(
        &f.pin(&server, &[]),
        "rules/ghost.toml names ghost: no candidate for amd64",
    );
}

#[test]
fn unmet_versioned_dependency_prints_the_chain() {
    let f = Fixture::live();
    f.project.write(
        "rules/new.toml",
        "distros = ['test']\n[packages.needs-new-libc]\n",
    );
    let server = Server::serve(&f.archive.root);
    assert_failed_with(
        &f.pin(&server, &["--arch", "amd64"]),
        "rule new: needs-new-libc -> middle -> libc6 (>= 9.0): no candidate for amd64 (available: 2.41-2, 2.41-1)",
    );
}

#[test]
fn conflicting_packages_are_an_error() {
    let f = Fixture::live();
    f.project.write(
        "rules/war.toml",
        "distros = ['test']\n[packages.enemy]\n[packages.app]\n",
    );
    let server = Server::serve(&f.archive.root);
    assert_failed_with(
        &f.pin(&server, &[]),
        "enemy 1 Conflicts libgcc-s1 (<< 15), but libgcc-s1 14.2.0-19 is selected too",
    );
}

#[test]
fn expired_valid_until_fails_a_live_pin() {
    let opts = SuiteOpts {
        valid_until: Some("Sun, 22 Nov 2026 09:15:44 UTC".into()),
        ..SuiteOpts::default()
    };
    let f = Fixture::new(&|a| a.to_owned(), &opts);
    let server = Server::serve(&f.archive.root);
    assert_failed_with(
        &f.pin(&server, &[]),
        "Release expired at 2026-11-22T09:15:44Z (Valid-Until)",
    );
}

#[test]
fn dated_pin_uses_the_snapshot_service_layout() {
    // Laid out like snapshot.debian.org: /archive/<archive>/<YYYYMMDDTHHMMSSZ>/dists/...
    let opts = SuiteOpts {
        // Long expired: a dated pin of an old snapshot must not care.
        valid_until: Some("Sun, 22 Nov 2026 09:15:44 UTC".into()),
        ..SuiteOpts::default()
    };
    let f = Fixture::new(&|a| format!("archive/{a}/20261122T000000Z"), &opts);
    let server = Server::serve(&f.archive.root);
    let service = format!("{}archive/{{archive}}/{{timestamp}}/", server.url());
    let out = f.pin(
        &server,
        &[
            "--date",
            "2026-11-22T00:00:00Z",
            "--snapshot-service",
            &service,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lock = f.lock();
    assert_eq!(lock.snapshot.as_deref(), Some("20261122T000000Z"));
    assert_eq!(lock.timestamp, "2026-11-22T00:00:00Z");
    assert!(server.paths().iter().any(|p| p == "/archive/debian-security/20261122T000000Z/dists/test-security/InRelease"));
    // A date before the snapshot's Release is refused: the server is not that snapshot.
    let out = f.pin(
        &server,
        &[
            "--date",
            "2026-11-21T00:00:00Z",
            "--snapshot-service",
            &service,
        ],
    );
    assert!(!out.status.success());
}

#[test]
fn expired_key_fails_live_but_passes_a_dated_pin_of_its_time() {
    let gpg_time = "20200101T000000!";
    let opts = SuiteOpts {
        date: "Wed, 01 Jan 2020 00:00:00 UTC".into(),
        faked_time: Some(gpg_time.into()),
        ..SuiteOpts::default()
    };
    let layout = |a: &str| format!("archive/{a}/20200101T120000Z");
    let f = Fixture::new(
        &layout,
        &SuiteOpts {
            faked_time: None,
            ..opts.clone()
        },
    );
    // Keys created in 2020 that expired a day later, signing the archive back then.
    let old = f
        .gpg
        .generate("Old Archive <old@invalid>", "1d", Some(gpg_time));
    let old_sec = f
        .gpg
        .generate("Old Security <olds@invalid>", "1d", Some(gpg_time));
    f.write_archive(&layout, &opts, &old, &old_sec);
    f.project
        .write("snapshots/keys/main.asc", &f.gpg.export(&old));
    f.project
        .write("snapshots/keys/security.asc", &f.gpg.export(&old_sec));
    let manifest = f
        .project
        .read("snapshots/test.toml")
        .replace(&f.main_key, &old)
        .replace(&f.security_key, &old_sec);
    f.project.write("snapshots/test.toml", &manifest);
    let server = Server::serve(&f.archive.root);
    let out = f.project.run(&[
        "pin",
        "--distro",
        "test",
        "--mirror",
        &format!("{}archive/{{archive}}/20200101T120000Z/", server.url()),
    ]);
    assert_failed_with(&out, "expired at 2020-01-02");
    let service = format!("{}archive/{{archive}}/{{timestamp}}/", server.url());
    let out = f.pin(
        &server,
        &[
            "--date",
            "2020-01-01T12:00:00Z",
            "--snapshot-service",
            &service,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn key_file_with_the_wrong_fingerprint_is_refused() {
    let f = Fixture::live();
    f.project
        .write("snapshots/keys/main.asc", &f.gpg.export(&f.security_key));
    let server = Server::serve(&f.archive.root);
    assert_failed_with(&f.pin(&server, &[]), "but the manifest pins");
}

impl Fixture {
    /// Publish a new test-updates suite (the archive moved on), signed like the first.
    fn publish_updates(&self, pkgs: &dyn Fn(&str) -> Vec<Pkg>) {
        let per_arch: Vec<(&str, Vec<Pkg>)> =
            ["amd64", "arm64"].iter().map(|a| (*a, pkgs(a))).collect();
        self.archive.write_suite(
            "debian",
            "test-updates",
            &per_arch,
            &self.gpg,
            &self.main_key,
            &SuiteOpts::default(),
        );
    }

    fn version(&self, arch: &str, name: &str) -> Option<String> {
        self.lock()
            .packages
            .iter()
            .find(|p| p.arch == arch && p.name == name)
            .map(|p| p.version.clone())
    }
}

fn libc(version: &str) -> impl Fn(&str) -> Pkg + '_ {
    move |a| pkg("libc6", version, a, &[("Depends", "libgcc-s1")])
}

#[test]
fn a_repin_keeps_locked_versions_and_adds_only_the_new_rule() {
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    assert!(f.pin(&server, &[]).status.success());
    assert_eq!(f.version("amd64", "libc6").as_deref(), Some("2.41-2"));
    let before = f.lock();

    // The archive moves on: a newer libc6 and a new package only a new rule uses.
    f.publish_updates(&|a| {
        vec![
            libc("2.41-2")(a),
            libc("2.41-3")(a),
            pkg("newtool", "1", a, &[("Depends", "libc6")]),
        ]
    });
    f.project
        .write("rules/new.toml", "distros = ['test']\n[packages.newtool]\n");
    let out = f.pin(&server, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = f.lock();
    assert_eq!(f.version("amd64", "libc6").as_deref(), Some("2.41-2"));
    // Every package locked before keeps its entry byte for byte, but for the new rule
    // joining the rules lists of what it shares.
    for p in &before.packages {
        let q = after
            .packages
            .iter()
            .find(|q| q.arch == p.arch && q.name == p.name)
            .unwrap();
        assert_eq!(
            (&q.version, &q.sha256),
            (&p.version, &p.sha256),
            "{}",
            p.name
        );
    }
    let added: Vec<String> = after
        .packages
        .iter()
        .filter(|q| {
            !before
                .packages
                .iter()
                .any(|p| p.arch == q.arch && p.name == q.name)
        })
        .map(|q| format!("{} {}", q.arch, q.name))
        .collect();
    assert_eq!(added, ["amd64 newtool", "arm64 newtool"]);
    let err = stderr(&out);
    assert!(err.contains(", 2 added, 0 changed, 0 removed"), "{err}");

    // --upgrade PKG moves just that package; --upgrade moves everything.
    let out = f.pin(&server, &["--upgrade", "libc6"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(f.version("arm64", "libc6").as_deref(), Some("2.41-3"));
    assert!(
        stderr(&out).contains("libc6 (arm64): 2.41-2 -> 2.41-3"),
        "{}",
        stderr(&out)
    );
    let out = f.pin(&server, &["--upgrade"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(", 0 changed,"), "{}", stderr(&out));
}

#[test]
fn a_new_rule_needing_a_newer_version_moves_only_that_package() {
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    assert!(f.pin(&server, &[]).status.success());
    let before = f.lock();
    f.publish_updates(&|a| {
        vec![
            libc("2.41-2")(a),
            libc("2.41-3")(a),
            pkg("newer", "1", a, &[("Depends", "libc6 (>= 2.41-3)")]),
        ]
    });
    f.project
        .write("rules/new.toml", "distros = ['test']\n[packages.newer]\n");
    let out = f.pin(&server, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // One image holds one libc6: every rule that has it moves with the new one.
    let after = f.lock();
    for p in after.packages.iter().filter(|p| p.name == "libc6") {
        assert_eq!(p.version, "2.41-3", "{}", p.arch);
    }
    for p in before.packages.iter().filter(|p| p.name != "libc6") {
        assert_eq!(f.version(p.arch.name(), &p.name), Some(p.version.clone()));
    }
    let err = stderr(&out);
    assert!(err.contains("1 added") || err.contains("2 added"), "{err}");
    assert!(err.contains("2 changed"), "{err}");
    assert!(err.contains("libc6 (amd64): 2.41-2 -> 2.41-3"), "{err}");
}

#[test]
fn a_locked_version_the_archive_dropped_moves_with_a_note() {
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    assert!(f.pin(&server, &[]).status.success());
    f.publish_updates(&|a| vec![libc("2.41-4")(a)]);
    let out = f.pin(&server, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(f.version("amd64", "libc6").as_deref(), Some("2.41-4"));
    let err = stderr(&out);
    assert!(
        err.contains("note: libc6 2.41-2 (amd64) is no longer offered by the archive"),
        "{err}"
    );
}

#[test]
fn pinning_one_architecture_keeps_the_others_until_dropped() {
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    assert!(f.pin(&server, &[]).status.success());
    let before = f.lock();
    let out = f.pin(&server, &["--arch", "amd64"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(f.lock().architectures, ["amd64", "arm64"]);
    assert_eq!(f.lock().packages, before.packages);
    assert!(
        stderr(&out).contains(
            "note: kept arm64 from the existing lock; `debless pin --drop-arch arm64` removes it"
        ),
        "{}",
        stderr(&out)
    );
    let out = f.pin(&server, &["--drop-arch", "arm64"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lock = f.lock();
    assert_eq!(lock.architectures, ["amd64"]);
    assert!(lock.packages.iter().all(|p| p.arch == "amd64"));
    assert!(stderr(&out).contains("removed"), "{}", stderr(&out));
}

#[test]
fn a_repin_keeps_the_lock_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    assert!(f.pin(&server, &[]).status.success());
    let path = f.project.path().join("snapshots/test.lock");
    let mode = || std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(), 0o644);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
    assert!(f.pin(&server, &["--upgrade"]).status.success());
    assert_eq!(mode(), 0o664);
}

#[test]
fn drop_for_a_package_a_parent_layer_holds_is_refused_at_pin() {
    let f = Fixture::live();
    f.project.write(
        "rules/child.toml",
        "distros = ['test']\nparent = 'img'\n[packages.y-tool]\n[packages.libc6]\ndrop = ['/usr/lib/**']\n",
    );
    let server = Server::serve(&f.archive.root);
    let out = f.pin(&server, &[]);
    assert_failed_with(
        &out,
        "rules/child.toml: [packages.libc6] has drop or allow_setuid but no paths, and libc6 is already in the layer of parent rule img on amd64; declare them in ",
    );
    assert!(!f.project.path().join("snapshots/test.lock").exists());
    // Naming it as a root alone is fine: it is simply there already; so is adding paths
    // of it (the child's layer carries those files, tests/arches.rs builds one).
    for decl in ["", "paths = ['/usr/lib/**']\n"] {
        f.project.write(
            "rules/child.toml",
            &format!(
                "distros = ['test']\nparent = 'img'\n[packages.y-tool]\n[packages.libc6]\n{decl}"
            ),
        );
        let out = f.pin(&server, &[]);
        assert!(out.status.success(), "{decl}: {}", stderr(&out));
    }
}

#[test]
fn a_pin_sweeps_the_temporary_a_killed_pin_left() {
    let f = Fixture::live();
    let server = Server::serve(&f.archive.root);
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let snapshots = f.project.path().join("snapshots");
    let left = snapshots.join(format!(".test.lock.debless-{dead}-3.tmp"));
    std::fs::write(&left, "half a lock").unwrap();
    let other = snapshots.join("notes.tmp");
    std::fs::write(&other, "the user's").unwrap();
    let out = f.pin(&server, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!left.exists(), "the killed pin's temporary is still there");
    assert!(other.exists(), "a file debless did not write was removed");
    let names: Vec<String> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert_eq!(names, ["notes.tmp"]);
}

#[test]
fn a_package_declared_for_some_architectures_is_pinned_only_there() {
    let f = Fixture::live();
    // `jit` exists for amd64 only, as a JIT runtime Debian builds for a few machines.
    let libc = |a| pkg("libc6", "2.41-2", a, &[("Depends", "libgcc-s1")]);
    f.archive.write_suite(
        "debian",
        "test-updates",
        &[
            (
                "amd64",
                vec![libc("amd64"), pkg("jit", "1.0-1", "amd64", &[])],
            ),
            ("arm64", vec![libc("arm64")]),
        ],
        &f.gpg,
        &f.main_key,
        &SuiteOpts::default(),
    );
    let server = Server::serve(&f.archive.root);
    f.project.write(
        "rules/jitimg.toml",
        "distros = ['test']\n[packages.base-files]\n[packages.jit]\n",
    );
    assert_failed_with(
        &f.pin(&server, &[]),
        "rules/jitimg.toml names jit: no candidate for arm64",
    );
    f.project.write(
        "rules/jitimg.toml",
        "distros = ['test']\n[packages.base-files]\n[packages.jit]\narchitectures = ['amd64']\n",
    );
    let out = f.pin(&server, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lock = f.lock();
    let jit: Vec<_> = lock.packages.iter().filter(|p| p.name == "jit").collect();
    assert_eq!(jit.len(), 1);
    assert_eq!(
        (jit[0].arch.to_string(), jit[0].rules.clone()),
        ("amd64".into(), vec!["jitimg".to_owned()])
    );
    // The rest of the rule is pinned on both.
    for arch in ["amd64", "arm64"] {
        assert!(
            lock.packages.iter().any(|p| p.name == "base-files"
                && p.arch.to_string().as_str() == arch
                && p.rules.contains(&"jitimg".to_owned())),
            "{arch}"
        );
    }
    // An empty list is a rule error naming the file.
    f.project.write(
        "rules/jitimg.toml",
        "distros = ['test']\n[packages.jit]\narchitectures = []\n",
    );
    assert_failed_with(&f.pin(&server, &[]), "package jit: architectures is empty");
}
