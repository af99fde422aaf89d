//! Test fixtures: a throwaway OpenPGP key (real GnuPG), a fake Debian archive with a
//! signed InRelease, and a small HTTP server on 127.0.0.1.

#![allow(dead_code)]

/// The build tests' fixture (static -> base -> tools, two architectures).
pub mod fixture;
/// The hostile-input fixture shared by hostile, bounds and ownership.
pub mod hostile;
/// A real docker-registry on 127.0.0.1 (push and trust tests).
pub mod registry;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

/// Gate a test on a real tool: a missing one fails the test when `$CI` is set, and
/// otherwise prints `SKIPPED: <test>: <tool> missing; install with ...` so it can return.
#[allow(unused_imports)] // each test binary uses what it needs
pub use debless::testing::{require, require_tool};

/// Lower-case hex SHA256.
pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A GnuPG home with throwaway keys.
pub struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    /// A fresh, empty GnuPG home.
    pub fn new() -> Gpg {
        let home = tempfile::tempdir().unwrap();
        Gpg { home }
    }

    fn cmd(&self, faked_time: Option<&str>) -> Command {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(self.home.path()).args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        if let Some(t) = faked_time {
            c.arg("--faked-system-time").arg(t);
        }
        c
    }

    /// Generate an ed25519 signing key; `expire` like `0` (never) or `1d`, optionally at a
    /// faked creation time (`20200101T000000!`). Returns its fingerprint.
    pub fn generate(&self, uid: &str, expire: &str, faked_time: Option<&str>) -> String {
        let out = self
            .cmd(faked_time)
            .args(["--quick-gen-key", uid, "ed25519", "sign", expire])
            .output()
            .expect("gpg must be installed (apt-get install gnupg)");
        assert!(
            out.status.success(),
            "gpg key generation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list = self
            .cmd(None)
            .args(["--with-colons", "--list-keys", uid])
            .output()
            .unwrap();
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint")
            .to_owned()
    }

    /// The ASCII-armoured public key.
    pub fn export(&self, fpr: &str) -> String {
        let out = self
            .cmd(None)
            .args(["--armor", "--export", fpr])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    /// Clear-sign `text` with `fpr`, optionally at a faked time.
    pub fn clearsign(&self, fpr: &str, text: &str, faked_time: Option<&str>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in");
        let output = dir.path().join("out");
        std::fs::write(&input, text).unwrap();
        let out = self
            .cmd(faked_time)
            .args([
                "--yes",
                "--digest-algo",
                "SHA256",
                "--local-user",
                fpr,
                "--clearsign",
                "-o",
            ])
            .arg(&output)
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "gpg clearsign failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::read_to_string(output).unwrap()
    }
}

/// One binary package stanza for a fake index. The pool file is a real file whose
/// content is derived from the name and version, so its size and hash are real.
#[derive(Clone, Debug)]
pub struct Pkg {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub fields: Vec<(String, String)>,
    pub deb: Option<Vec<u8>>,
}

/// A package with extra control fields, e.g. `pkg("a", "1", "amd64", &[("Depends", "b")])`.
pub fn pkg(name: &str, version: &str, arch: &str, fields: &[(&str, &str)]) -> Pkg {
    Pkg {
        name: name.into(),
        version: version.into(),
        arch: arch.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        deb: None,
    }
}

impl Pkg {
    /// The pool path.
    pub fn filename(&self) -> String {
        let first = &self.name[..1];
        let ver = self.version.replace(':', "%3a");
        format!(
            "pool/main/{first}/{}/{}_{ver}_{}.deb",
            self.name, self.name, self.arch
        )
    }

    /// The .deb bytes (a placeholder unless a real .deb was attached).
    pub fn bytes(&self) -> Vec<u8> {
        self.deb.clone().unwrap_or_else(|| {
            format!("placeholder {} {} {}\n", self.name, self.version, self.arch).into_bytes()
        })
    }

    /// The stanza.
    pub fn stanza(&self) -> String {
        let bytes = self.bytes();
        let mut s = format!(
            "Package: {}\nVersion: {}\nArchitecture: {}\nMaintainer: Test <t@invalid>\n",
            self.name, self.version, self.arch
        );
        // 4 KiB unless the package says otherwise.
        if !self.fields.iter().any(|(k, _)| k == "Installed-Size") {
            s.push_str("Installed-Size: 4\n");
        }
        for (k, v) in &self.fields {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s.push_str(&format!(
            "Filename: {}\nSize: {}\nSHA256: {}\nDescription: test package {}\n",
            self.filename(),
            bytes.len(),
            sha256(&bytes),
            self.name
        ));
        s
    }
}

/// How a suite's Release is written.
#[derive(Clone)]
pub struct SuiteOpts {
    pub date: String,
    pub valid_until: Option<String>,
    pub by_hash: bool,
    pub codename: Option<String>,
    pub architectures: String,
    /// Sign at a faked time (`20200101T000000!`).
    pub faked_time: Option<String>,
}

impl Default for SuiteOpts {
    fn default() -> Self {
        SuiteOpts {
            date: "Sat, 21 Nov 2026 09:15:44 UTC".into(),
            valid_until: None,
            by_hash: true,
            codename: None,
            architectures: "all amd64 arm64".into(),
            faked_time: None,
        }
    }
}

/// A fake archive rooted at a directory: `<root>/<archive path>/dists/...` and pool.
pub struct Archive {
    pub root: PathBuf,
}

impl Archive {
    /// Write a suite: Packages(.xz, .gz) per arch, Release, InRelease signed by `fpr`.
    pub fn write_suite(
        &self,
        archive_path: &str,
        suite: &str,
        per_arch: &[(&str, Vec<Pkg>)],
        gpg: &Gpg,
        fpr: &str,
        opts: &SuiteOpts,
    ) {
        let base = self.root.join(archive_path);
        let dists = base.join("dists").join(suite);
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for (arch, pkgs) in per_arch {
            let text: String = pkgs.iter().map(|p| p.stanza() + "\n").collect();
            for p in pkgs {
                let path = base.join(p.filename());
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, p.bytes()).unwrap();
            }
            let dir = format!("main/binary-{arch}");
            files.push((format!("{dir}/Packages"), text.clone().into_bytes()));
            files.push((format!("{dir}/Packages.xz"), xz(text.as_bytes())));
            files.push((format!("{dir}/Packages.gz"), gz(text.as_bytes())));
        }
        let mut release = format!(
            "Origin: Test\nLabel: Test\nSuite: {suite}\nCodename: {}\nDate: {}\n",
            opts.codename.as_deref().unwrap_or(suite),
            opts.date
        );
        if let Some(v) = &opts.valid_until {
            release.push_str(&format!("Valid-Until: {v}\n"));
        }
        if opts.by_hash {
            release.push_str("Acquire-By-Hash: yes\n");
        }
        release.push_str(&format!(
            "No-Support-for-Architecture-all: Packages\nArchitectures: {}\nComponents: main\nSHA256:\n",
            opts.architectures
        ));
        for (path, bytes) in &files {
            release.push_str(&format!(" {} {:>8} {path}\n", sha256(bytes), bytes.len()));
            let full = dists.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, bytes).unwrap();
            if opts.by_hash {
                let bh = full.parent().unwrap().join("by-hash/SHA256");
                std::fs::create_dir_all(&bh).unwrap();
                std::fs::write(bh.join(sha256(bytes)), bytes).unwrap();
            }
        }
        std::fs::write(dists.join("Release"), &release).unwrap();
        let signed = gpg.clearsign(fpr, &release, opts.faked_time.as_deref());
        std::fs::write(dists.join("InRelease"), signed).unwrap();
    }
}

/// xz-compress.
pub fn xz(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = liblzma::write::XzEncoder::new(&mut out, 6);
    enc.write_all(data).unwrap();
    enc.finish().unwrap();
    out
}

/// gzip-compress.
pub fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A static-file HTTP server on 127.0.0.1 serving a directory; records request paths.
pub struct Server {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Faults to inject, by URL path suffix; each fires once per listed count.
    pub faults: Arc<Mutex<Vec<(String, Fault)>>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

/// A failure the server injects once for a matching path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Send the headers for the whole body but only this many bytes, then close.
    Truncate(usize),
    /// Answer with this status.
    Status(u16),
    /// Answer 200 with this body in place of the file (an HTML error page, say).
    Body(Vec<u8>),
    /// Answer 302 with this Location.
    Redirect(String),
    /// Claim this Content-Length but send the file as it is, then close.
    Length(usize),
    /// Send the headers and this many bytes, wait this many milliseconds, then the rest.
    Stall(usize, u64),
    /// Send the headers, then the body this many bytes at a time, this many milliseconds
    /// apart: never a stall, always slow.
    Drip(usize, u64),
}

impl Server {
    /// Serve `root` until dropped.
    pub fn serve(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let faults: Arc<Mutex<Vec<(String, Fault)>>> = Arc::new(Mutex::new(Vec::new()));
        let (root, stop2, req2, f2) = (
            root.to_owned(),
            stop.clone(),
            requests.clone(),
            faults.clone(),
        );
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, req, f) = (root.clone(), req2.clone(), f2.clone());
                std::thread::spawn(move || handle(conn, &root, &req, &f));
            }
        });
        Server {
            port,
            requests,
            faults,
            stop,
            handle: Some(handle),
        }
    }

    /// Inject `fault` on the next request whose path ends with `suffix`.
    pub fn fail_once(&self, suffix: &str, fault: Fault) {
        self.faults.lock().unwrap().push((suffix.to_owned(), fault));
    }

    /// Inject `fault` on every request whose path ends with `suffix` (well, the next 1000).
    pub fn fail_always(&self, suffix: &str, fault: Fault) {
        let mut f = self.faults.lock().unwrap();
        for _ in 0..1000 {
            f.push((suffix.to_owned(), fault.clone()));
        }
    }

    /// Forget every injected fault not yet fired.
    pub fn clear_faults(&self) {
        self.faults.lock().unwrap().clear();
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Paths requested so far.
    pub fn paths(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn handle(
    mut conn: TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
    faults: &Mutex<Vec<(String, Fault)>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range: Option<usize> = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        let lower = h.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse().ok();
        }
    }
    // The log records resumed requests as `PATH@OFFSET`.
    log.lock().unwrap().push(match range {
        Some(r) => format!("{path}@{r}"),
        None => path.clone(),
    });
    let fault = {
        let mut f = faults.lock().unwrap();
        f.iter()
            .position(|(suffix, _)| path.ends_with(suffix.as_str()))
            .map(|i| f.remove(i).1)
    };
    if let Some(Fault::Status(code)) = fault {
        let _ = write!(
            conn,
            "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        return;
    }
    match &fault {
        Some(Fault::Body(body)) => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(body);
            let _ = conn.flush();
            return;
        }
        Some(Fault::Redirect(to)) => {
            let _ = write!(
                conn,
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = conn.flush();
            return;
        }
        _ => {}
    }
    let file = root.join(path.trim_start_matches('/'));
    let safe = !path.contains("..");
    match std::fs::read(&file) {
        Ok(body) if safe && file.is_file() => {
            let start = range.unwrap_or(0).min(body.len());
            let part = &body[start..];
            if let Some(Fault::Length(n)) = fault {
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.write_all(part);
                let _ = conn.flush();
                let _ = conn.shutdown(std::net::Shutdown::Both);
                return;
            }
            if range.is_some() {
                let _ = write!(
                    conn,
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len().saturating_sub(1),
                    body.len(),
                    part.len()
                );
            } else {
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
            }
            match fault {
                Some(Fault::Truncate(n)) => {
                    let _ = conn.write_all(&part[..n.min(part.len())]);
                    let _ = conn.flush();
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return;
                }
                Some(Fault::Stall(n, ms)) => {
                    let n = n.min(part.len());
                    let _ = conn.write_all(&part[..n]);
                    let _ = conn.flush();
                    std::thread::sleep(std::time::Duration::from_millis(ms));
                    let _ = conn.write_all(&part[n..]);
                }
                Some(Fault::Drip(n, ms)) => {
                    for piece in part.chunks(n.max(1)) {
                        if conn.write_all(piece).and_then(|()| conn.flush()).is_err() {
                            // The client gave up.
                            return;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(ms));
                    }
                }
                _ => {
                    let _ = conn.write_all(part);
                }
            }
        }
        _ => {
            let _ = conn.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    }
    let _ = conn.flush();
    let mut sink = [0u8; 1];
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(10)));
    let _ = conn.read(&mut sink);
}

/// A project directory with snapshots/ and rules/.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// An empty project.
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("snapshots/keys")).unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        Project { dir }
    }

    /// The project root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write a file relative to the project.
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Read a file relative to the project.
    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap()
    }

    /// Run `debless -C <project> ARGS` with a clean mirror environment.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_debless"))
            .arg("-C")
            .arg(self.path())
            .args(args)
            .env_remove("DEBLESS_MIRRORS")
            .env_remove("DEBLESS_SNAPSHOT_SERVICE")
            .env_remove("DEBLESS_CACHE_REGISTRY")
            .output()
            .unwrap()
    }
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// One file in a test .deb.
#[derive(Clone, Debug)]
pub enum DebFile {
    /// A regular file with content and mode.
    File(Vec<u8>, u32),
    /// A directory with a mode.
    Dir(u32),
    /// A symlink to a target.
    Symlink(String),
    /// A hard link to another path of the same package (listed earlier).
    Hardlink(String),
}

/// The time test .debs are made at: `dpkg-deb` stamps the ar members with it and clamps
/// every file's mtime to it, so a test .deb's bytes depend only on what it holds
/// (2025-11-20T00:00:00Z).
pub const DEB_EPOCH: i64 = 1_763_596_800;

/// Build a real .deb with `dpkg-deb` (`compression`: xz, zstd, gzip or none).
pub fn build_deb(
    name: &str,
    version: &str,
    arch: &str,
    files: &[(&str, DebFile)],
    compression: &str,
) -> Vec<u8> {
    build_deb_with_fields(name, version, arch, &[], files, compression)
}

/// [`build_deb`] whose control file also has `fields` (Source, Depends, Installed-Size...)
/// as a Debian package's does.
pub fn build_deb_with_fields(
    name: &str,
    version: &str,
    arch: &str,
    fields: &[(&str, &str)],
    files: &[(&str, DebFile)],
    compression: &str,
) -> Vec<u8> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    let mut control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <t@invalid>\n"
    );
    for (k, v) in fields {
        control.push_str(&format!("{k}: {v}\n"));
    }
    // A continuation line, as real descriptions have, so stanza readers meet one.
    control.push_str(&format!("Description: test package {name}\n Extended.\n"));
    std::fs::write(root.join("DEBIAN/control"), control).unwrap();
    for (path, f) in files {
        let p = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        match f {
            DebFile::File(data, mode) => {
                std::fs::write(&p, data).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
            DebFile::Dir(mode) => {
                std::fs::create_dir_all(&p).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
            }
            DebFile::Symlink(t) => std::os::unix::fs::symlink(t, &p).unwrap(),
            DebFile::Hardlink(t) => {
                std::fs::hard_link(root.join(t.trim_start_matches('/')), &p).unwrap()
            }
        }
    }
    // md5sums as dh_md5sums writes them: every regular file, relative path, sorted.
    let sums = Command::new("sh")
        .arg("-c")
        .arg("find . -type f ! -path './DEBIAN/*' -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 -r md5sum")
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(sums.status.success());
    if !sums.stdout.is_empty() {
        std::fs::write(root.join("DEBIAN/md5sums"), &sums.stdout).unwrap();
    }
    let out = tmp.path().join("out.deb");
    let o = Command::new("dpkg-deb")
        .env("SOURCE_DATE_EPOCH", DEB_EPOCH.to_string())
        .args(["--root-owner-group", &format!("-Z{compression}"), "--build"])
        .arg(&root)
        .arg(&out)
        .output()
        .expect("dpkg-deb must be installed (apt-get install dpkg)");
    assert!(
        o.status.success(),
        "dpkg-deb failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(out).unwrap()
}

/// Whether this machine can build a static C program and run it in a runc bundle: gcc
/// and runc (a test fails in CI without them) on amd64, the only architecture the runc
/// tests build their programs for.
pub fn static_programs_run_here() -> bool {
    if !require_tool("gcc", "make deps (apt-get install gcc libc6-dev)")
        || !require_tool("runc", "make deps (apt-get install runc)")
    {
        return false;
    }
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIPPED: the test program is built for amd64 only");
        return false;
    }
    true
}

/// Compile the C program `source` statically into `bin`.
pub fn gcc_static(source: &Path, bin: &Path) {
    run_ok(
        Command::new("gcc")
            .args(["-static", "-O2", "-o"])
            .arg(bin)
            .arg(source),
    );
}

/// `runc run` the bundle at `bundle` as container `name`-<this process>; its stdout.
pub fn runc_run(bundle: &Path, name: &str) -> String {
    run_ok(
        Command::new("runc")
            .arg("run")
            .arg("--bundle")
            .arg(bundle)
            .arg(format!("{name}-{}", std::process::id())),
    )
}

/// Run a command, panicking with its output unless it succeeds; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Copy the project's manifests, keys and rules (not locks) into a scratch project, for
/// live tests that pin fresh (a committed lock may no longer be downloadable).
pub fn scratch_project(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    for sub in ["snapshots/keys", "rules/variants"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for sub in ["snapshots", "snapshots/keys", "rules", "rules/variants"] {
        for e in std::fs::read_dir(src.join(sub)).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            if p.is_file() && !name.ends_with(".lock") {
                std::fs::copy(&p, dir.join(sub).join(name)).unwrap();
            }
        }
    }
}
