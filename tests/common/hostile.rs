//! The hostile-input fixture: a signed fake archive on 127.0.0.1 holding `good` and the
//! packages a case adds, a project whose `rules/img.toml` names `good`, pinned; and the
//! checks every hostile case makes (one `error:` line; lock, `--out` and cache as they
//! were). `tests/hostile.rs`, `tests/bounds.rs` and `tests/ownership.rs` share it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::{
    Archive, DebFile, Gpg, Pkg, Project, Server, SuiteOpts, build_deb, pkg, sha256, stderr,
};
use debless::deb::testdeb::{Raw, compress, raw_ar, raw_tar};

pub const MANIFEST: &str = r#"
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

pub const HTML: &[u8] = b"<!DOCTYPE html><html><body><h1>Service Unavailable</h1>Please try again later.</body></html>\n";

/// A package with a real .deb.
pub fn with_deb(name: &str, deb: Vec<u8>) -> Pkg {
    let mut p = pkg(name, "1", "amd64", &[]);
    p.deb = Some(deb);
    p
}

/// A harmless package shipping one file.
pub fn plain(name: &str, content: &[u8]) -> Pkg {
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
pub fn rule(packages: &[&str]) -> String {
    let mut s = "distros = ['test']\n".to_owned();
    for p in packages {
        s.push_str(&format!("[packages.{p}]\n"));
    }
    s
}

/// What a failed command must leave as it was.
#[derive(Debug, PartialEq)]
pub struct State {
    pub lock: Option<(Vec<u8>, SystemTime)>,
    pub out: Vec<String>,
    pub cache: Vec<String>,
}

/// Relative paths and sizes under `dir` (nothing when it does not exist).
pub fn listing(dir: &Path) -> Vec<String> {
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
pub fn assert_cache_sound(cache: &Path) {
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

pub struct Fixture {
    pub gpg: Gpg,
    pub key: String,
    _root: tempfile::TempDir,
    pub archive: Archive,
    pub project: Project,
    pub server: Server,
}

impl Fixture {
    /// `good` plus `extra` in one signed suite; `rules/img.toml` names `good`; pinned.
    pub fn new(extra: Vec<Pkg>, rules: &[(&str, String)]) -> Fixture {
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

    pub fn path(&self, rel: &str) -> PathBuf {
        self.project.path().join(rel)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.path("snapshots/test.lock")
    }

    pub fn dists(&self, rel: &str) -> PathBuf {
        self.archive.root.join("debian/dists/test").join(rel)
    }

    /// Run debless with this mirror and a cache dir (relative to the project), killing it
    /// if it runs for more than a minute: a hang is a failure too.
    pub fn run(&self, args: &[&str], cache: &str, env: &[(&str, &str)]) -> Output {
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

    pub fn command(&self, args: &[&str], cache: &str, env: &[(&str, &str)]) -> Command {
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

    pub fn state(&self, cache: &str) -> State {
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
    pub fn pin_refused(&self, needles: &[&str]) {
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
    pub fn build_refused(
        &self,
        image: &str,
        prefetch: bool,
        env: &[(&str, &str)],
        needles: &[&str],
    ) {
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
    pub fn resign(&self, packages: &str) {
        let xz = super::xz(packages.as_bytes());
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

    pub fn sign(&self, release: &str) {
        std::fs::write(self.dists("Release"), release).unwrap();
        std::fs::write(
            self.dists("InRelease"),
            self.gpg.clearsign(&self.key, release, None),
        )
        .unwrap();
    }

    pub fn packages(&self) -> String {
        std::fs::read_to_string(self.dists("main/binary-amd64/Packages")).unwrap()
    }

    pub fn inrelease(&self) -> String {
        std::fs::read_to_string(self.dists("InRelease")).unwrap()
    }

    pub fn pool(&self, name: &str) -> String {
        format!("pool/main/{}/{name}/{name}_1_amd64.deb", &name[..1])
    }
}

/// Failed, with exactly one `error:` line, which contains every needle; no panic.
pub fn refused(o: &Output, needles: &[&str]) {
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

/// A hand-laid-out .deb for package `name` (version 1, amd64, as the fixture pins it)
/// whose data member `data_name` holds `data_tar` compressed to match its suffix.
pub fn deb_for(name: &str, data_name: &str, data_tar: &[u8]) -> Vec<u8> {
    let control = format!("Package: {name}\nVersion: 1\nArchitecture: amd64\n");
    let control_tar = compress(
        "gz",
        &raw_tar(&[Raw::file("./control", control.as_bytes())]),
    );
    let data = match data_name.rsplit_once('.') {
        Some((_, ext @ ("gz" | "xz" | "zst"))) => compress(ext, data_tar),
        _ => data_tar.to_vec(),
    };
    raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &control_tar),
        (data_name, &data),
    ])
}

/// A fixture whose `rules/<name>.toml` names one more package, `name`, with this .deb
/// and Installed-Size (KiB).
pub fn one_package(name: &str, deb: Vec<u8>, installed_kib: u64) -> Fixture {
    let size = installed_kib.to_string();
    let mut p = pkg(name, "1", "amd64", &[("Installed-Size", &size)]);
    p.deb = Some(deb);
    Fixture::new(vec![p], &[(&format!("rules/{name}.toml"), rule(&[name]))])
}
