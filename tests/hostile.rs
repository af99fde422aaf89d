//! Hostile inputs against `debless pin` and `debless build`: a signed fake archive on
//! 127.0.0.1 that lies in its framing, its indices, its .debs or its HTTP answers, and a
//! build killed half-way. Every case asserts one `error:` line naming what and where, and
//! that no lock, output layout or cache entry was written or altered. `SECURITY.md` lists
//! these cases together with the ones in `tests/pin.rs` and `tests/build.rs`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::{
    Archive, DebFile, Fault, Gpg, Pkg, Project, Server, SuiteOpts, build_deb, pkg, sha256, stderr,
};
use debless::deb::testdeb::{Raw, compress, hostile, raw_ar, raw_tar};

const MANIFEST: &str = r#"
distro = "test"
codename = "test"
architectures = ["amd64"]

[[suites]]
archive = "debian"
suite = "test"

[[keys]]
file = "keys/main.asc"
fingerprint = "MAIN_FPR"
"#;

const HTML: &[u8] = b"<!DOCTYPE html><html><body><h1>Service Unavailable</h1>Please try again later.</body></html>\n";

/// A package with a real .deb.
fn with_deb(name: &str, deb: Vec<u8>) -> Pkg {
    let mut p = pkg(name, "1", "amd64", &[]);
    p.deb = Some(deb);
    p
}

/// A harmless package shipping one file.
fn plain(name: &str, content: &[u8]) -> Pkg {
    with_deb(
        name,
        build_deb(
            name,
            "1",
            "amd64",
            &[(
                &format!("usr/share/{name}/file"),
                DebFile::File(content.to_vec(), 0o644),
            )],
            "gzip",
        ),
    )
}

/// A rule file naming these packages.
fn rule(packages: &[&str]) -> String {
    let mut s = "distros = ['test']\n".to_owned();
    for p in packages {
        s.push_str(&format!("[packages.{p}]\n"));
    }
    s
}

/// What a failed command must leave as it was.
#[derive(Debug, PartialEq)]
struct State {
    lock: Option<(Vec<u8>, SystemTime)>,
    out: Vec<String>,
    cache: Vec<String>,
}

/// Relative paths and sizes under `dir` (nothing when it does not exist).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(format!("{rel} {}", meta.len()));
            }
        }
    }
    out.sort();
    out
}

/// Every file under `<cache>/sha256/` hashes to its name.
fn assert_cache_sound(cache: &Path) {
    let Ok(rd) = std::fs::read_dir(cache.join("sha256")) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256(&std::fs::read(&p).unwrap()),
            name,
            "cache entry {} does not match its name",
            p.display()
        );
    }
}

struct Fixture {
    gpg: Gpg,
    key: String,
    _root: tempfile::TempDir,
    archive: Archive,
    project: Project,
    server: Server,
}

impl Fixture {
    /// `good` plus `extra` in one signed suite; `rules/img.toml` names `good`; pinned.
    fn new(extra: Vec<Pkg>, rules: &[(&str, String)]) -> Fixture {
        let gpg = Gpg::new();
        let key = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let root = tempfile::tempdir().unwrap();
        let archive = Archive {
            root: root.path().to_owned(),
        };
        let mut pkgs = vec![plain("good", b"good\n")];
        pkgs.extend(extra);
        archive.write_suite(
            "debian",
            "test",
            &[("amd64", pkgs)],
            &gpg,
            &key,
            &SuiteOpts::default(),
        );
        let project = Project::new();
        project.write("snapshots/keys/main.asc", &gpg.export(&key));
        project.write("snapshots/test.toml", &MANIFEST.replace("MAIN_FPR", &key));
        project.write("rules/img.toml", &rule(&["good"]));
        for (file, text) in rules {
            project.write(file, text);
        }
        let server = Server::serve(root.path());
        let f = Fixture {
            gpg,
            key,
            _root: root,
            archive,
            project,
            server,
        };
        let o = f.run(&["pin", "--distro", "test"], "cache", &[]);
        assert!(o.status.success(), "pin failed: {}", stderr(&o));
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.project.path().join(rel)
    }

    fn lock_path(&self) -> PathBuf {
        self.path("snapshots/test.lock")
    }

    fn dists(&self, rel: &str) -> PathBuf {
        self.archive.root.join("debian/dists/test").join(rel)
    }

    /// Run debless with this mirror and a cache dir (relative to the project), killing it
    /// if it runs for more than a minute: a hang is a failure too.
    fn run(&self, args: &[&str], cache: &str, env: &[(&str, &str)]) -> Output {
        let mut c = self.command(args, cache, env);
        let start = Instant::now();
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Drain stderr on a thread so a chatty child cannot block on a full pipe.
        let mut err = child.stderr.take().unwrap();
        let errs = std::thread::spawn(move || {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut err, &mut v).unwrap();
            v
        });
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "debless {args:?} hung for a minute: {}",
                    String::from_utf8_lossy(&errs.join().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut o = child.wait_with_output().unwrap();
        o.stderr = errs.join().unwrap();
        o
    }

    fn command(&self, args: &[&str], cache: &str, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_debless"));
        c.arg("-C")
            .arg(self.project.path())
            .args(args)
            .arg("--mirror")
            .arg(self.server.url() + "debian")
            .arg("--cache-dir")
            .arg(self.path(cache))
            .env_remove("DEBLESS_MIRRORS")
            .env_remove("DEBLESS_SNAPSHOT_SERVICE")
            .env_remove("DEBLESS_HTTP_TIMEOUT_SECS");
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn state(&self, cache: &str) -> State {
        let lock = std::fs::read(self.lock_path()).ok().map(|b| {
            let m = std::fs::metadata(self.lock_path())
                .unwrap()
                .modified()
                .unwrap();
            (b, m)
        });
        State {
            lock,
            out: listing(&self.path("out")),
            cache: listing(&self.path(cache).join("sha256")),
        }
    }

    /// A pin with an empty cache, so every index is downloaded afresh.
    fn pin_refused(&self, needles: &[&str]) {
        let before = self.state("cache2");
        let o = self.run(&["pin", "--distro", "test"], "cache2", &[]);
        refused(&o, needles);
        assert_eq!(
            self.state("cache2"),
            before,
            "pin changed the lock or cache"
        );
        assert_cache_sound(&self.path("cache2"));
    }

    /// A build of `image` (after `debless fetch` when `prefetch`) that must fail.
    fn build_refused(&self, image: &str, prefetch: bool, env: &[(&str, &str)], needles: &[&str]) {
        if prefetch {
            let o = self.run(&["fetch", "--distro", "test", image], "cache", &[]);
            assert!(o.status.success(), "fetch failed: {}", stderr(&o));
        }
        let before = self.state("cache");
        let out = self.path("out");
        let o = self.run(
            &[
                "build",
                "--distro",
                "test",
                image,
                "--out",
                out.to_str().unwrap(),
            ],
            "cache",
            env,
        );
        refused(&o, needles);
        assert_eq!(
            self.state("cache"),
            before,
            "build changed the lock, out or cache"
        );
        assert_cache_sound(&self.path("cache"));
    }

    /// Replace the suite's indices with this Packages text, signed.
    fn resign(&self, packages: &str) {
        let xz = common::xz(packages.as_bytes());
        let dir = self.dists("main/binary-amd64");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Packages.xz"), &xz).unwrap();
        let release = format!(
            "Origin: Test\nLabel: Test\nSuite: test\nCodename: test\nDate: Sat, 21 Nov 2026 09:15:44 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages.xz\n",
            sha256(&xz),
            xz.len()
        );
        self.sign(&release);
    }

    fn sign(&self, release: &str) {
        std::fs::write(self.dists("Release"), release).unwrap();
        std::fs::write(
            self.dists("InRelease"),
            self.gpg.clearsign(&self.key, release, None),
        )
        .unwrap();
    }

    fn packages(&self) -> String {
        std::fs::read_to_string(self.dists("main/binary-amd64/Packages")).unwrap()
    }

    fn inrelease(&self) -> String {
        std::fs::read_to_string(self.dists("InRelease")).unwrap()
    }

    fn pool(&self, name: &str) -> String {
        format!("pool/main/{}/{name}/{name}_1_amd64.deb", &name[..1])
    }
}

/// Failed, with exactly one `error:` line, which contains every needle; no panic.
fn refused(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert!(!o.status.success(), "should have failed: {e}");
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {e}");
    eprintln!("refused as expected: {}", errors[0]);
    for n in needles {
        assert!(errors[0].contains(n), "expected {n:?} in {:?}", errors[0]);
    }
    assert!(!e.contains("panicked"), "{e}");
}

// ---- InRelease framing and signatures -------------------------------------------------

#[test]
fn inrelease_without_a_signature_is_refused() {
    let f = Fixture::new(vec![], &[]);
    let release = std::fs::read_to_string(f.dists("Release")).unwrap();
    std::fs::write(f.dists("InRelease"), release).unwrap();
    f.pin_refused(&[
        "dists/test/InRelease",
        "not a valid OpenPGP cleartext-signed message",
    ]);
}

#[test]
fn text_appended_after_the_signature_is_refused() {
    let f = Fixture::new(vec![], &[]);
    // A second SHA256 list after the signature: a lax parser would read it as Release.
    let evil = format!(
        "{}SHA256:\n {} 10 main/binary-amd64/Packages.xz\n",
        f.inrelease(),
        "0".repeat(64)
    );
    std::fs::write(f.dists("InRelease"), evil).unwrap();
    f.pin_refused(&[
        "dists/test/InRelease",
        "text after -----END PGP SIGNATURE-----",
    ]);
}

#[test]
fn text_prepended_before_the_signed_message_is_refused() {
    let f = Fixture::new(vec![], &[]);
    let evil = format!("Origin: Evil\nLabel: Evil\n\n{}", f.inrelease());
    std::fs::write(f.dists("InRelease"), evil).unwrap();
    f.pin_refused(&[
        "dists/test/InRelease",
        "text before -----BEGIN PGP SIGNED MESSAGE-----",
    ]);
}

#[test]
fn a_second_signed_block_is_refused() {
    let f = Fixture::new(vec![], &[]);
    // Both blocks carry a valid signature by the pinned key: which one is "the" Release?
    let other = f.gpg.clearsign(
        &f.key,
        "Origin: Evil\nDate: Sat, 21 Nov 2026 09:15:44 UTC\n",
        None,
    );
    std::fs::write(f.dists("InRelease"), format!("{}{other}", f.inrelease())).unwrap();
    f.pin_refused(&[
        "dists/test/InRelease",
        "the document must be exactly one signed message",
    ]);
}

#[test]
fn a_dash_escaped_line_added_to_the_signed_text_is_refused() {
    let f = Fixture::new(vec![], &[]);
    // `- X` unescapes to `X`: the added line becomes part of the signed text, which then
    // no longer matches its signature.
    let evil = f
        .inrelease()
        .replacen("Label: Test\n", "Label: Test\n- Acquire-By-Hash: no\n", 1);
    std::fs::write(f.dists("InRelease"), evil).unwrap();
    f.pin_refused(&["dists/test/InRelease", "bad signature by"]);
}

// ---- Packages indices -----------------------------------------------------------------

#[test]
fn a_truncated_packages_index_is_refused() {
    let f = Fixture::new(vec![], &[]);
    for name in ["Packages.xz", "Packages.gz", "Packages"] {
        let p = f.dists(&format!("main/binary-amd64/{name}"));
        let b = std::fs::read(&p).unwrap();
        std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    }
    std::fs::remove_dir_all(f.dists("main/binary-amd64/by-hash")).unwrap();
    f.pin_refused(&[
        "dists/test/main/binary-amd64/Packages.xz",
        "does not match the signed Release",
    ]);
}

#[test]
fn a_signed_packages_field_over_one_mib_is_refused() {
    let f = Fixture::new(vec![], &[]);
    let huge = f.packages().replacen(
        "Description: test package good",
        &format!("Description: {}", "x".repeat((1 << 20) + 1)),
        1,
    );
    f.resign(&huge);
    f.pin_refused(&[
        "dists/test/main/binary-amd64/Packages.xz",
        "field Description is 1048577 bytes long",
    ]);
}

#[test]
fn a_signed_packages_stanza_with_a_malformed_field_is_refused() {
    let f = Fixture::new(vec![], &[]);
    let text = f.packages();
    let size_line = text.lines().find(|l| l.starts_with("Size: ")).unwrap();
    f.resign(&text.replacen(size_line, "Size: lots", 1));
    f.pin_refused(&[
        "dists/test/main/binary-amd64/Packages.xz",
        "good 1: malformed Size",
    ]);
}

#[test]
fn duplicate_stanzas_with_different_hashes_are_refused() {
    let f = Fixture::new(vec![], &[]);
    let text = f.packages();
    let sha_line = text.lines().find(|l| l.starts_with("SHA256: ")).unwrap();
    let twin = text.replacen(sha_line, &format!("SHA256: {}", "e".repeat(64)), 1);
    f.resign(&format!("{text}\n{twin}"));
    f.pin_refused(&[
        "dists/test/main/binary-amd64/Packages.xz",
        "duplicate stanza for good 1 (amd64)",
    ]);
}

#[test]
fn a_filename_with_dot_dot_is_refused() {
    let f = Fixture::new(vec![], &[]);
    let text = f.packages();
    let line = text.lines().find(|l| l.starts_with("Filename: ")).unwrap();
    f.resign(&text.replacen(line, "Filename: pool/../../../etc/passwd", 1));
    f.pin_refused(&[
        "dists/test/main/binary-amd64/Packages.xz",
        "unsafe Filename \"pool/../../../etc/passwd\"",
    ]);
}

// ---- A hand-edited lock -----------------------------------------------------------------

#[test]
fn a_lock_with_an_edited_sha256_makes_the_build_refuse_the_deb() {
    let f = Fixture::new(vec![], &[]);
    let lock = std::fs::read_to_string(f.lock_path()).unwrap();
    let parsed = debless::snapshot::lock::Lock::read(&f.lock_path()).unwrap();
    let real = parsed.packages[0].sha256.hex();
    assert_eq!(parsed.packages[0].name, "good");
    assert_eq!(lock.matches(&real).count(), 1);
    std::fs::write(f.lock_path(), lock.replace(&real, &"a".repeat(64))).unwrap();
    f.build_refused(
        "img",
        false,
        &[],
        &["good 1 (amd64)", &f.pool("good"), "served sha256", &real],
    );
}

#[test]
fn a_lock_with_an_edited_version_makes_the_build_refuse_the_deb() {
    // The sha256 still names the real .deb, so it downloads and verifies; its control
    // file then says another version than the lock, which the SBOM would have named.
    let f = Fixture::new(vec![], &[]);
    let lock = std::fs::read_to_string(f.lock_path()).unwrap();
    assert_eq!(lock.matches("\nversion = \"1\"").count(), 1, "{lock}");
    std::fs::write(
        f.lock_path(),
        lock.replace("\nversion = \"1\"", "\nversion = \"9\""),
    )
    .unwrap();
    // Fetched first: the .deb is the real one, so it may sit in the cache.
    f.build_refused(
        "img",
        true,
        &[],
        &[
            "good 9 (amd64)",
            "its control file says Version \"1\" where the lock says \"9\"",
            "run `debless pin`",
        ],
    );
}

#[test]
fn a_lock_with_an_unknown_field_is_a_clear_error() {
    let f = Fixture::new(vec![], &[]);
    let lock = std::fs::read_to_string(f.lock_path()).unwrap();
    std::fs::write(f.lock_path(), format!("trusted = true\n{lock}")).unwrap();
    f.build_refused(
        "img",
        false,
        &[],
        &["snapshots/test.lock", "unknown field `trusted`"],
    );
}

// ---- .deb layout and contents -------------------------------------------------------------

/// A gzipped control.tar for the hand-laid-out .debs below.
fn control_tar_gz() -> Vec<u8> {
    compress(
        "gz",
        &raw_tar(&[Raw::file("./control", b"Package: evil\nVersion: 1\n")]),
    )
}

fn evil_fixture(deb: Vec<u8>) -> Fixture {
    Fixture::new(
        vec![with_deb("evil", deb)],
        &[("rules/evil.toml", rule(&["evil"]))],
    )
}

#[test]
fn ar_members_in_the_wrong_order_are_refused() {
    let data = compress("gz", &raw_tar(&[Raw::file("./usr/share/x", b"abc")]));
    let f = evil_fixture(raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("data.tar.gz", &data),
        ("control.tar.gz", &control_tar_gz()),
    ]));
    f.build_refused(
        "evil",
        true,
        &[],
        &[
            "evil 1 (amd64): package evil",
            "unexpected ar member \"data.tar.gz\"",
        ],
    );
}

#[test]
fn a_deb_without_data_tar_is_refused() {
    let f = evil_fixture(raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar_gz()),
    ]));
    f.build_refused(
        "evil",
        true,
        &[],
        &["evil 1 (amd64): package evil", "no data.tar member"],
    );
}

#[test]
fn a_data_tar_in_an_unknown_compression_is_refused() {
    let f = evil_fixture(raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar_gz()),
        ("data.tar.bz2", b"BZh91AY&SY"),
    ]));
    f.build_refused(
        "evil",
        true,
        &[],
        &[
            "evil 1 (amd64): package evil",
            "member data.tar.bz2 uses a compression",
        ],
    );
}

#[test]
fn a_fifo_is_refused() {
    let f = evil_fixture(hostile(&[Raw {
        kind: tar::EntryType::Fifo,
        ..Raw::file("./usr/lib/pipe", b"")
    }]));
    f.build_refused(
        "evil",
        true,
        &[],
        &["evil 1 (amd64): package evil: /usr/lib/pipe: is a FIFO"],
    );
}

#[test]
fn a_hard_link_outside_the_root_is_refused() {
    let f = evil_fixture(hostile(&[Raw::link(
        tar::EntryType::Link,
        "./usr/bin/shadow",
        "../../../etc/shadow",
    )]));
    f.build_refused(
        "evil",
        true,
        &[],
        &["evil 1 (amd64): package evil: /usr/bin/shadow: is a hard link to ../../../etc/shadow, which is outside the package"],
    );
}

#[test]
fn a_file_written_through_another_packages_symlink_is_refused() {
    // One package makes /usr/lib/x point at /etc; the next writes /usr/lib/x/evil, which
    // an unpacker following the link would put at /etc/evil.
    let linker = with_deb(
        "linker",
        build_deb(
            "linker",
            "1",
            "amd64",
            &[("usr/lib/x", DebFile::Symlink("/etc".into()))],
            "gzip",
        ),
    );
    // Hand-made: dpkg-deb would also ship the directory /usr/lib/x, a plain conflict.
    let writer = with_deb("writer", hostile(&[Raw::file("./usr/lib/x/evil", b"abc")]));
    let f = Fixture::new(
        vec![linker, writer],
        &[("rules/evil.toml", rule(&["linker", "writer"]))],
    );
    f.build_refused(
        "evil",
        true,
        &[],
        &[
            "writer",
            "/usr/lib/x/evil",
            "through the symlink /usr/lib/x",
            "linker",
        ],
    );
}

#[test]
fn two_packages_shipping_one_path_differently_are_refused() {
    let deb = |name: &str, content: &[u8]| {
        with_deb(
            name,
            build_deb(
                name,
                "1",
                "amd64",
                &[("usr/share/same", DebFile::File(content.to_vec(), 0o644))],
                "gzip",
            ),
        )
    };
    let f = Fixture::new(
        vec![deb("one", b"one\n"), deb("two", b"two\n")],
        &[("rules/evil.toml", rule(&["one", "two"]))],
    );
    f.build_refused(
        "evil",
        true,
        &[],
        &["/usr/share/same is shipped differently by", "one", "two"],
    );
}

#[test]
fn a_decompression_bomb_is_stopped_at_its_installed_size_bound() {
    // 64 MiB of zeros, a few KiB as xz, in a package whose index says Installed-Size: 4.
    let bomb = build_deb(
        "bomb",
        "1",
        "amd64",
        &[("usr/share/zeros", DebFile::File(vec![0u8; 64 << 20], 0o644))],
        "xz",
    );
    assert!(bomb.len() < 1 << 20);
    let f = Fixture::new(
        vec![with_deb("bomb", bomb)],
        &[("rules/bomb.toml", rule(&["bomb"]))],
    );
    let limit = debless::deb::max_data_bytes(4).to_string();
    f.build_refused(
        "bomb",
        true,
        &[],
        &[
            "bomb 1 (amd64): package bomb: data.tar.xz decompresses to more than",
            &limit,
        ],
    );
}

// ---- The network ----------------------------------------------------------------------------

fn victim() -> Fixture {
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    Fixture::new(
        vec![with_deb(
            "victim",
            build_deb(
                "victim",
                "1",
                "amd64",
                &[("usr/share/victim/data", DebFile::File(big, 0o644))],
                "none",
            ),
        )],
        &[("rules/victim.toml", rule(&["victim"]))],
    )
}

#[test]
fn a_mirror_answering_500_every_time_fails_after_retries() {
    let f = victim();
    f.server
        .fail_always("victim_1_amd64.deb", Fault::Status(500));
    f.build_refused(
        "victim",
        false,
        &[],
        &["victim 1 (amd64)", &f.pool("victim"), "HTTP 500"],
    );
    let tries = f
        .server
        .paths()
        .iter()
        .filter(|p| p.contains("victim_1_amd64"))
        .count();
    assert_eq!(tries, 4, "one attempt and three retries");
}

#[test]
fn a_stalled_mirror_times_out() {
    let f = victim();
    f.server
        .fail_always("victim_1_amd64.deb", Fault::Stall(0, 30_000));
    let start = Instant::now();
    f.build_refused(
        "victim",
        false,
        &[("DEBLESS_HTTP_TIMEOUT_SECS", "2")],
        &["victim 1 (amd64)", &f.pool("victim"), "timed out"],
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the 2 s timeout was not used"
    );
}

#[test]
fn a_content_length_beyond_the_pinned_size_is_refused() {
    let f = victim();
    f.server
        .fail_always("victim_1_amd64.deb", Fault::Length(10 << 20));
    f.build_refused(
        "victim",
        false,
        &[],
        &["victim 1 (amd64)", &f.pool("victim"), "larger than"],
    );
}

#[test]
fn a_redirect_loop_is_refused() {
    let f = victim();
    let path = format!("/debian/{}", f.pool("victim"));
    f.server
        .fail_always("victim_1_amd64.deb", Fault::Redirect(path));
    f.build_refused(
        "victim",
        false,
        &[],
        &["victim 1 (amd64)", &f.pool("victim"), "redirect"],
    );
}

#[test]
fn an_html_page_served_as_a_deb_is_refused() {
    let f = victim();
    f.server
        .fail_always("victim_1_amd64.deb", Fault::Body(HTML.to_vec()));
    f.build_refused(
        "victim",
        false,
        &[],
        &["victim 1 (amd64)", &f.pool("victim")],
    );
}

#[test]
fn an_html_page_served_as_inrelease_is_refused() {
    let f = Fixture::new(vec![], &[]);
    f.server
        .fail_always("dists/test/InRelease", Fault::Body(HTML.to_vec()));
    f.pin_refused(&[
        "dists/test/InRelease",
        "not a valid OpenPGP cleartext-signed message",
    ]);
}

#[test]
fn an_html_page_served_as_packages_xz_is_refused() {
    let f = Fixture::new(vec![], &[]);
    let xz = std::fs::read(f.dists("main/binary-amd64/Packages.xz")).unwrap();
    f.server
        .fail_always(&sha256(&xz), Fault::Body(HTML.to_vec()));
    f.server
        .fail_always("Packages.xz", Fault::Body(HTML.to_vec()));
    f.pin_refused(&["main/binary-amd64/", "does not match the signed Release"]);
}

// ---- The process ----------------------------------------------------------------------------

#[test]
fn kill_9_mid_download_then_a_rebuild_reuses_what_finished() {
    let slow_data: Vec<u8> = (0..400_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let slow = with_deb(
        "slow",
        build_deb(
            "slow",
            "1",
            "amd64",
            &[("usr/share/slow/data", DebFile::File(slow_data, 0o644))],
            "none",
        ),
    );
    let slow_sha = sha256(&slow.bytes());
    let good_sha = sha256(&plain("good", b"good\n").bytes());
    let f = Fixture::new(vec![slow], &[("rules/both.toml", rule(&["good", "slow"]))]);
    f.server
        .fail_once("slow_1_amd64.deb", Fault::Stall(100_000, 30_000));
    let out = f.path("out");
    let mut child = f
        .command(
            &[
                "-q",
                "build",
                "--distro",
                "test",
                "both",
                "--out",
                out.to_str().unwrap(),
            ],
            "cache",
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cache = f.path("cache");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial = std::fs::metadata(cache.join("partial").join(&slow_sha)).map(|m| m.len());
        if cache.join("sha256").join(&good_sha).exists() && partial.is_ok_and(|n| n >= 100_000) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the build never reached the stalled download"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the build ended before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_cache_sound(&cache);
    assert!(
        !cache.join("sha256").join(&slow_sha).exists(),
        "a half download entered the cache"
    );
    assert!(
        !out.join("both-test").exists(),
        "a layout was written before the packages were read"
    );

    f.server.clear_faults();
    let before = f.server.paths().len();
    let o = f.run(
        &[
            "build",
            "--distro",
            "test",
            "both",
            "--out",
            out.to_str().unwrap(),
        ],
        "cache",
        &[],
    );
    assert!(o.status.success(), "rebuild failed: {}", stderr(&o));
    assert_cache_sound(&cache);
    let after: Vec<String> = f.server.paths()[before..].to_vec();
    assert!(
        !after.iter().any(|p| p.contains("good_1_amd64")),
        "the finished download was fetched again: {after:?}"
    );
    assert!(
        after
            .iter()
            .any(|p| p.contains("slow_1_amd64") && p.ends_with("@100000")),
        "the interrupted download was not resumed: {after:?}"
    );
    assert!(out.join("both-test/index.json").is_file());
}
