//! Live end to end for the whole image family: pin debian13 fresh from the host's apt
//! mirror (the archive moves weekly; a committed lock may no longer be downloadable),
//! build every image, tag and architecture, then run real programs in the amd64 images
//! with runc and check the arm64 images' structure.
//!
//! The programs are compiled here from `tests/family/`: a static OpenSSL client (TLS to a
//! local `openssl s_server` whose certificate a test CA signed, and time zones), a dynamic
//! dlopen probe, a C++ hello, a jar, a Python and a Node.js probe. A test-only rule,
//! `tlsprobe` (static plus that CA in /usr/local/share/ca-certificates), proves the CA
//! bundle generator; plain `static` must refuse the same server.
//!
//! Besides running programs it reads the images: passwd, group, os-release, dpkg status
//! entries against the config's history, /etc/ld.so.cache parsed (entries, flags per
//! architecture), no shell outside debug tags, no dangling symlink, and every ELF file of
//! the arm64 images built for AArch64.
//!
//! Needs gcc, g++ and libssl-dev (static libs), a JDK (javac, jar), openssl, umoci and runc
//! (`make deps`), network access to the host's Debian mirror, and root for runc. Ignored
//! by plain `cargo test` for that reason; `make test-live` (part of `make test`) runs it.
//!
//! Every check runs even when an earlier one fails; the test fails at the end listing all
//! of them. For development only: `DEBLESS_FAMILY_CACHE=DIR` keeps the .deb cache between
//! runs (default: in the temporary directory), `DEBLESS_FAMILY_KEEP=1` keeps the
//! temporary directory, and `DEBLESS_FAMILY_REUSE=DIR` reruns the checks against a kept
//! directory's build instead of pinning and building again.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::scratch_project;

const DISTRO: &str = "debian13";
/// How long any one program may run in a container.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);
const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                      nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

// ---------------------------------------------------------------------------------------
// Host commands

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/family")
}

fn run_ok(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A test CA and a server certificate for IP 127.0.0.1 signed by it, made with openssl.
struct TestCa {
    ca_pem: String,
    server_cert: PathBuf,
    server_key: PathBuf,
}

fn make_test_ca(dir: &Path) -> TestCa {
    let ca_key = dir.join("ca.key");
    let ca_pem = dir.join("ca.pem");
    let server_cert = dir.join("server.pem");
    let server_key = dir.join("server.key");
    if !ca_pem.exists() || !server_cert.exists() {
        std::fs::create_dir_all(dir).unwrap();
        run_ok(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
                ])
                .args(["-subj", "/CN=debless family test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_pem),
        );
        let csr = dir.join("server.csr");
        run_ok(
            Command::new("openssl")
                .args([
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-subj",
                    "/CN=127.0.0.1",
                ])
                .arg("-keyout")
                .arg(&server_key)
                .arg("-out")
                .arg(&csr),
        );
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run_ok(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "7", "-set_serial", "1"])
                .arg("-in")
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_pem)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&server_cert),
        );
    }
    TestCa {
        ca_pem: std::fs::read_to_string(&ca_pem).unwrap(),
        server_cert,
        server_key,
    }
}

/// `openssl s_server` on a free 127.0.0.1 port; killed (by its pid) on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(ca: &TestCa, log: &Path) -> TlsServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new("openssl")
            .args(["s_server", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&ca.server_cert)
            .arg("-key")
            .arg(&ca.server_key)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("openssl s_server");
        let server = TlsServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "openssl s_server did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The probes, compiled on the host.
struct Probes {
    /// Static: `tls PORT` and `tz`.
    tls_static: PathBuf,
    /// Dynamic: `LIBRARY SYMBOL`.
    dl: PathBuf,
    /// Dynamic, libstdc++.
    hello_cc: PathBuf,
    jar: PathBuf,
}

fn compile_probes(dir: &Path) -> Probes {
    std::fs::create_dir_all(dir).unwrap();
    let src = src_dir();
    let tls_static = dir.join("tls_probe");
    // The static glibc warns that dlopen/getaddrinfo need its own shared libraries at run
    // time: the probe connects by address and OpenSSL loads no modules, so neither runs.
    run_ok(
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&tls_static)
            .arg(src.join("tls_probe.c"))
            .args(["-lssl", "-lcrypto", "-lpthread"]),
    );
    let dl = dir.join("dl_probe");
    run_ok(
        Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&dl)
            .arg(src.join("dl_probe.c")),
    );
    let hello_cc = dir.join("hello_cc");
    run_ok(
        Command::new("g++")
            .args(["-O2", "-Wall", "-o"])
            .arg(&hello_cc)
            .arg(src.join("hello.cc")),
    );
    let classes = dir.join("classes");
    run_ok(
        Command::new("javac")
            .args(["--release", "17", "-d"])
            .arg(&classes)
            .arg(src.join("Probe.java")),
    );
    let jar = dir.join("probe.jar");
    let _ = std::fs::remove_file(&jar);
    run_ok(
        Command::new("jar")
            .args(["--create", "--main-class", "Probe", "--file"])
            .arg(&jar)
            .arg("-C")
            .arg(&classes)
            .arg("."),
    );
    let file = run_ok(Command::new("file").arg(&tls_static));
    assert!(file.contains("statically linked"), "{file}");
    Probes {
        tls_static,
        dl,
        hello_cc,
        jar,
    }
}

// ---------------------------------------------------------------------------------------
// OCI layouts

fn layout(out: &Path, image: &str) -> PathBuf {
    out.join(format!("{image}-{DISTRO}"))
}

fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect(digest);
    std::fs::read(layout.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("{}: blob {digest}: {e}", layout.display()))
}

fn blob_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).unwrap()
}

/// The descriptor `tag` names in the layout's index.json.
fn tag_descriptor(layout: &Path, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{}: no tag {tag}", layout.display()))
        .clone()
}

/// The image config of a per-architecture tag (`latest-amd64`).
fn image_config(layout: &Path, tag: &str) -> Value {
    let desc = tag_descriptor(layout, tag);
    assert_eq!(
        desc["mediaType"], "application/vnd.oci.image.manifest.v1+json",
        "{tag}"
    );
    let manifest = blob_json(layout, desc["digest"].as_str().unwrap());
    blob_json(layout, manifest["config"]["digest"].as_str().unwrap())
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

/// Package names per the config's history (`debless <rule>: pkg pkg...`), all layers.
fn history_packages(config: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for h in config["history"].as_array().unwrap() {
        let by = h["created_by"].as_str().unwrap();
        let (_, pkgs) = by
            .split_once(": ")
            .or_else(|| by.strip_suffix(':').map(|r| (r, "")))
            .unwrap_or_else(|| panic!("unexpected created_by {by:?}"));
        names.extend(pkgs.split_whitespace().map(str::to_owned));
    }
    names
}

fn config_env(config: &Value) -> BTreeMap<String, String> {
    string_list(&config["config"]["Env"])
        .into_iter()
        .map(|e| {
            let (k, v) = e.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Paths inside an unpacked root filesystem (its symlinks resolve inside it, never on the
// host: /bin is a link to usr/bin, and an absolute link must not reach the host's /usr).

/// `path` with every symlink resolved inside `root`; the last component too if `follow`.
fn resolve_in(root: &Path, path: &str, follow: bool) -> PathBuf {
    let mut todo: VecDeque<String> = path.split('/').map(str::to_owned).collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        cur.push(c);
        if todo.iter().all(|c| c.is_empty() || c == ".") && !follow {
            break;
        }
        let host = root.join(cur.join("/"));
        if std::fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
            hops += 1;
            assert!(hops < 40, "symlink loop at {path} in {}", root.display());
            let target = std::fs::read_link(&host).unwrap();
            let target = target.to_str().unwrap();
            cur.pop();
            if target.starts_with('/') {
                cur.clear();
            }
            let mut next: VecDeque<String> = target.split('/').map(str::to_owned).collect();
            next.extend(todo);
            todo = next;
        }
    }
    root.join(cur.join("/"))
}

/// Whether `path` exists in `root` (a dangling symlink counts).
fn lexists(root: &Path, path: &str) -> bool {
    std::fs::symlink_metadata(resolve_in(root, path, false)).is_ok()
}

fn read_in(root: &Path, path: &str) -> String {
    let p = resolve_in(root, path, true);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{path} ({}): {e}", p.display()))
}

/// Regular files under `dir`, recursively (symlinks are not followed).
fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    walk(dir, &mut |p, ft| {
        if ft.is_file() {
            out.push(p.to_owned());
        }
    });
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, std::fs::FileType)) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        f(&e.path(), ft);
        if ft.is_dir() {
            walk(&e.path(), f);
        }
    }
}

/// e_machine of an ELF file, or None for anything else.
fn elf_machine(path: &Path) -> Option<u16> {
    let mut head = [0u8; 20];
    let mut f = std::fs::File::open(path).ok()?;
    f.read_exact(&mut head).ok()?;
    if &head[..4] != b"\x7fELF" {
        return None;
    }
    let m = [head[18], head[19]];
    Some(match head[5] {
        2 => u16::from_be_bytes(m),
        _ => u16::from_le_bytes(m),
    })
}

/// The entries of a glibc `ld.so.cache` (new format): (soname, flags, path).
fn parse_ld_cache(data: &[u8]) -> Result<Vec<(String, i32, String)>, String> {
    const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
    let base = data
        .windows(MAGIC.len())
        .position(|w| w == MAGIC)
        .ok_or("no glibc-ld.so.cache1.1 header")?;
    let h = &data[base..];
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
    let nlibs = u32_at(h, 20) as usize;
    let string = |o: u32| -> Result<String, String> {
        let s = h.get(o as usize..).ok_or("string offset out of range")?;
        let end = s
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&s[..end]).into_owned())
    };
    let mut entries = Vec::new();
    for i in 0..nlibs {
        let o = 48 + 24 * i;
        if h.len() < o + 24 {
            return Err(format!("truncated at entry {i} of {nlibs}"));
        }
        let flags = i32::from_le_bytes(h[o..o + 4].try_into().unwrap());
        entries.push((string(u32_at(h, o + 4))?, flags, string(u32_at(h, o + 8))?));
    }
    Ok(entries)
}

// ---------------------------------------------------------------------------------------
// Unpacking and running

struct Bundle {
    image: String,
    tag: String,
    dir: PathBuf,
    rootfs: PathBuf,
    /// The image config (from the layout).
    config: Value,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Panic unless the program exited 0; returns stdout.
    fn expect_ok(&self) -> &str {
        assert!(self.ok(), "{}", self);
        &self.stdout
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

#[derive(Default)]
struct RunOpts<'a> {
    env: &'a [(&'a str, &'a str)],
    /// Share the host's network namespace (to reach a server on its 127.0.0.1).
    host_network: bool,
}

struct Ctx {
    out: PathBuf,
    work: PathBuf,
    probes: Probes,
    ca: TestCa,
    /// The test CA's server (`openssl s_server` on the host's 127.0.0.1).
    tls_port: u16,
    bundles: Mutex<HashMap<String, std::sync::Arc<Bundle>>>,
    runs: AtomicUsize,
}

impl Ctx {
    /// `image:tag` unpacked with umoci (once; later calls share it).
    fn bundle(&self, image: &str, tag: &str) -> std::sync::Arc<Bundle> {
        let key = format!("{image}:{tag}");
        if let Some(b) = self.bundles.lock().unwrap().get(&key) {
            return b.clone();
        }
        let lay = layout(&self.out, image);
        let dir = self.work.join(format!("{image}_{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--image"])
                .arg(format!("{}:{tag}", lay.display()))
                .arg(&dir),
        );
        std::fs::copy(dir.join("config.json"), dir.join("config.orig.json")).unwrap();
        let b = std::sync::Arc::new(Bundle {
            image: image.to_owned(),
            tag: tag.to_owned(),
            rootfs: dir.join("rootfs"),
            config: image_config(&lay, tag),
            dir,
        });
        self.bundles.lock().unwrap().insert(key, b.clone());
        b
    }

    /// Run `args` in the bundle with runc, as the image's user, with the image's Env plus
    /// `opts.env`; killed after RUN_TIMEOUT.
    fn run(&self, b: &Bundle, args: &[&str], opts: RunOpts<'_>) -> Run {
        // As DEVELOPERS.md says: no rlimits, resources or cgroup path in this sandbox.
        let mut cfg: Value =
            serde_json::from_slice(&std::fs::read(b.dir.join("config.orig.json")).unwrap())
                .unwrap();
        let process = cfg["process"].as_object_mut().unwrap();
        process.remove("rlimits");
        process.insert("terminal".into(), Value::Bool(false));
        process.insert("args".into(), serde_json::json!(args));
        let mut env: Vec<String> = string_list(&process["env"]);
        for (k, v) in opts.env {
            env.retain(|e| !e.starts_with(&format!("{k}=")));
            env.push(format!("{k}={v}"));
        }
        process.insert("env".into(), serde_json::json!(env));
        let linux = cfg["linux"].as_object_mut().unwrap();
        linux.remove("resources");
        linux.remove("cgroupsPath");
        if opts.host_network {
            let ns = linux["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network");
        }
        std::fs::write(
            b.dir.join("config.json"),
            serde_json::to_vec_pretty(&cfg).unwrap(),
        )
        .unwrap();

        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let id = format!("debless-family-{}-{n}", std::process::id());
        let what = format!("{}:{} {args:?} (runc {id})", b.image, b.tag);
        let mut child = Command::new("runc")
            .arg("run")
            .arg("--bundle")
            .arg(&b.dir)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runc");
        let pipe = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut s = Vec::new();
                let _ = r.read_to_end(&mut s);
                String::from_utf8_lossy(&s).into_owned()
            })
        };
        let out_t = pipe(Box::new(child.stdout.take().unwrap()));
        let err_t = pipe(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + RUN_TIMEOUT;
        let mut timed_out = false;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                timed_out = true;
                let _ = Command::new("runc").args(["kill", &id, "KILL"]).output();
                std::thread::sleep(Duration::from_secs(2));
                let _ = child.kill();
                let st = child.wait().unwrap();
                let _ = Command::new("runc")
                    .args(["delete", "--force", &id])
                    .output();
                break st;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = err_t.join().unwrap();
        if timed_out {
            stderr.push_str(&format!("\n[killed after {RUN_TIMEOUT:?}]"));
        }
        Run {
            code: if timed_out { None } else { status.code() },
            stdout: out_t.join().unwrap(),
            stderr,
            what,
        }
    }

    /// Copy a host file into the bundle's root filesystem, executable by anyone.
    fn install(&self, b: &Bundle, host: &Path, path: &str) {
        let dest = b.rootfs.join(path.trim_start_matches('/'));
        std::fs::copy(host, &dest).unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Shared checks

fn count_certs(pem: &str) -> usize {
    pem.matches("-----BEGIN CERTIFICATE-----").count()
}

fn no_shell(b: &Bundle) {
    for p in [
        "/bin/sh",
        "/usr/bin/sh",
        "/bin/bash",
        "/usr/bin/dash",
        "/usr/bin/busybox",
    ] {
        assert!(
            !lexists(&b.rootfs, p),
            "{}:{} has {p}: non-debug images have no shell",
            b.image,
            b.tag
        );
    }
}

/// passwd, group, os-release and the nonroot home, as Google distroless has them.
fn system_files(b: &Bundle) {
    let name = format!("{}:{}", b.image, b.tag);
    assert_eq!(
        read_in(&b.rootfs, "/etc/passwd"),
        PASSWD,
        "{name} /etc/passwd"
    );
    assert_eq!(read_in(&b.rootfs, "/etc/group"), GROUP, "{name} /etc/group");
    let os = read_in(&b.rootfs, "/usr/lib/os-release");
    for line in [
        "PRETTY_NAME=\"Distroless\"",
        "ID=\"debian\"",
        "VERSION_ID=\"13\"",
    ] {
        assert!(
            os.lines().any(|l| l == line),
            "{name}: /usr/lib/os-release lacks {line}:\n{os}"
        );
    }
    let etc = b.rootfs.join("etc/os-release");
    assert!(
        std::fs::symlink_metadata(&etc).is_ok_and(|m| m.file_type().is_symlink()),
        "{name}: /etc/os-release is not a symlink"
    );
    assert_eq!(
        resolve_in(&b.rootfs, "/etc/os-release", true),
        resolve_in(&b.rootfs, "/usr/lib/os-release", true),
        "{name}: /etc/os-release -> {:?}",
        std::fs::read_link(&etc)
    );
    let home = b.rootfs.join("home/nonroot");
    let m = std::fs::metadata(&home).unwrap_or_else(|e| panic!("{name}: /home/nonroot: {e}"));
    assert!(
        m.is_dir() && m.uid() == 65532 && m.gid() == 65532,
        "{name}: /home/nonroot owned {}:{}",
        m.uid(),
        m.gid()
    );
}

/// /var/lib/dpkg/status.d/ has exactly one entry per package of the image.
fn dpkg_status(b: &Bundle) {
    let name = format!("{}:{}", b.image, b.tag);
    let want = history_packages(&b.config);
    assert!(!want.is_empty(), "{name}: no packages in the history");
    let dir = b.rootfs.join("var/lib/dpkg/status.d");
    let mut have = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{name}: {}: {e}", dir.display())) {
        let f = e.unwrap().file_name().into_string().unwrap();
        if f.ends_with(".md5sums") {
            continue;
        }
        let stanza = std::fs::read_to_string(dir.join(&f)).unwrap();
        assert!(
            stanza.starts_with(&format!("Package: {f}\n"))
                && stanza.contains("\nStatus: install ok installed\n")
                && stanza.contains("\nVersion: "),
            "{name}: status.d/{f}:\n{stanza}"
        );
        have.insert(f);
    }
    let missing: Vec<_> = want.difference(&have).collect();
    let extra: Vec<_> = have.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: status.d lacks {missing:?}, has extra {extra:?}"
    );
}

/// /etc/ld.so.cache parses, its entries carry the architecture's flags, point at files
/// of the image, and include `sonames`.
fn ld_cache(b: &Bundle, arch: &str, sonames: &[&str]) -> usize {
    let name = format!("{}:{}", b.image, b.tag);
    let p = b.rootfs.join("etc/ld.so.cache");
    let data =
        std::fs::read(&p).unwrap_or_else(|e| panic!("{name}: /etc/ld.so.cache: {e} (ld-cache)"));
    let entries = parse_ld_cache(&data).unwrap_or_else(|e| panic!("{name}: ld.so.cache: {e}"));
    // FLAG_ELF_LIBC6 | FLAG_X8664_LIB64 / FLAG_AARCH64_LIB64 (glibc's dl-cache.h).
    let flags = match arch {
        "amd64" => 0x0303,
        "arm64" => 0x0a03,
        _ => unreachable!(),
    };
    for (soname, f, path) in &entries {
        assert_eq!(
            *f, flags,
            "{name}: ld.so.cache {soname} -> {path} flags {f:#x}"
        );
        assert!(
            resolve_in(&b.rootfs, path, true).is_file(),
            "{name}: ld.so.cache {soname} -> {path}, which the image does not have"
        );
    }
    for s in sonames {
        assert!(
            entries.iter().any(|(so, _, _)| so == s),
            "{name}: ld.so.cache has no {s}: {:?}",
            entries.iter().map(|e| &e.0).collect::<Vec<_>>()
        );
    }
    entries.len()
}

// ---------------------------------------------------------------------------------------
// The checks

fn check_static(ctx: &Ctx) {
    let b = ctx.bundle("static", "latest-amd64");
    let bundle = read_in(&b.rootfs, "/etc/ssl/certs/ca-certificates.crt");
    let n = count_certs(&bundle);
    assert!(n > 100, "static: ca-certificates.crt has {n} certificates");
    eprintln!("static: /etc/ssl/certs/ca-certificates.crt has {n} certificates");
    let mode = std::fs::metadata(resolve_in(
        &b.rootfs,
        "/etc/ssl/certs/ca-certificates.crt",
        true,
    ))
    .unwrap()
    .mode();
    assert_eq!(
        mode & 0o444,
        0o444,
        "bundle mode {mode:o}: nonroot must read it"
    );
    assert_eq!(
        config_env(&b.config)
            .get("SSL_CERT_FILE")
            .map(String::as_str),
        Some("/etc/ssl/certs/ca-certificates.crt")
    );
    for p in ["/sbin/nologin", "/usr/sbin/nologin"] {
        assert!(!lexists(&b.rootfs, p), "static has {p}");
    }
    assert!(!lexists(&b.rootfs, "/usr/lib/x86_64-linux-gnu/libc.so.6"));
    system_files(&b);

    ctx.install(&b, &ctx.probes.tls_static, "/probe");
    for (tz, jan, jul) in [
        ("Europe/Kiev", "EET +0200", "EEST +0300"),
        ("Europe/Kyiv", "EET +0200", "EEST +0300"),
        ("America/New_York", "EST -0500", "EDT -0400"),
    ] {
        let r = ctx.run(
            &b,
            &["/probe", "tz"],
            RunOpts {
                env: &[("TZ", tz)],
                ..Default::default()
            },
        );
        let out = r.expect_ok();
        let want = format!("TZ={tz} jan={jan} jul={jul}");
        assert_eq!(out.trim(), want, "{r}");
        eprintln!("static: {}", out.trim());
    }
}

fn check_tls(ctx: &Ctx) {
    let port = ctx.tls_port.to_string();
    let squash = |s: &str| -> String { s.chars().filter(|c| !c.is_whitespace()).collect() };
    let ca_body = squash(
        ctx.ca
            .ca_pem
            .split("-----")
            .nth(2)
            .expect("PEM body of the test CA"),
    );

    let probe = ctx.bundle("tlsprobe", "latest-amd64");
    let bundle = read_in(&probe.rootfs, "/etc/ssl/certs/ca-certificates.crt");
    assert!(
        squash(&bundle).contains(&ca_body),
        "tlsprobe: the test CA from /usr/local/share/ca-certificates is not in the bundle \
         ({} certificates)",
        count_certs(&bundle)
    );
    ctx.install(&probe, &ctx.probes.tls_static, "/probe");
    let r = ctx.run(
        &probe,
        &["/probe", "tls", &port],
        RunOpts {
            host_network: true,
            ..Default::default()
        },
    );
    assert!(
        r.ok() && r.stdout.contains("verify ok"),
        "tlsprobe: the static client must verify the test server: {r}"
    );
    eprintln!("tlsprobe: {}", r.stdout.trim().replace('\n', "; "));

    // Without the test CA the same client must refuse the same server.
    let plain = ctx.bundle("static", "latest-amd64");
    assert!(
        !squash(&read_in(
            &plain.rootfs,
            "/etc/ssl/certs/ca-certificates.crt"
        ))
        .contains(&ca_body)
    );
    ctx.install(&plain, &ctx.probes.tls_static, "/probe");
    let r = ctx.run(
        &plain,
        &["/probe", "tls", &port],
        RunOpts {
            host_network: true,
            ..Default::default()
        },
    );
    assert!(
        r.code == Some(2) && r.stdout.contains("verify failed"),
        "static (no test CA): the client must fail verification, not connect or succeed: {r}"
    );
    assert!(
        r.stdout.contains("store_objects=") && !r.stdout.contains("store_objects=0\n"),
        "static: the client loaded no certificates from SSL_CERT_FILE: {r}"
    );
    eprintln!("static: {}", r.stdout.trim().replace('\n', "; "));
}

fn check_base_nossl(ctx: &Ctx) {
    let b = ctx.bundle("base-nossl", "latest-amd64");
    system_files(&b);
    assert!(
        !lexists(&b.rootfs, "/sbin/nologin"),
        "base-nossl has /sbin/nologin"
    );
    ctx.install(&b, &ctx.probes.dl, "/dlprobe");
    let r = ctx.run(
        &b,
        &["/dlprobe", "libssl.so.3", "OpenSSL_version"],
        RunOpts::default(),
    );
    assert!(
        r.code == Some(3) && r.stderr.contains("libssl.so.3"),
        "base-nossl must not load libssl: {r}"
    );
    let n = ld_cache(&b, "amd64", &["libc.so.6"]);
    eprintln!(
        "base-nossl: no libssl ({}); ld.so.cache has {n} entries",
        r.stderr.trim()
    );
}

fn check_base(ctx: &Ctx) {
    let b = ctx.bundle("base", "latest-amd64");
    system_files(&b);
    ctx.install(&b, &ctx.probes.dl, "/dlprobe");
    let r = ctx.run(
        &b,
        &["/dlprobe", "libssl.so.3", "OpenSSL_version"],
        RunOpts::default(),
    );
    let out = r.expect_ok();
    assert!(out.starts_with("OpenSSL_version: OpenSSL 3."), "{r}");
    eprintln!("base: {}", out.trim());
    let n = ld_cache(
        &b,
        "amd64",
        &["libc.so.6", "libssl.so.3", "libcrypto.so.3", "libz.so.1"],
    );
    // The loader finds libssl through /etc/ld.so.cache, not its built-in directories.
    let r = ctx.run(
        &b,
        &["/dlprobe", "libssl.so.3", "OpenSSL_version"],
        RunOpts {
            env: &[("LD_DEBUG", "libs")],
            ..Default::default()
        },
    );
    r.expect_ok();
    let lines: Vec<&str> = r.stderr.lines().map(str::trim).collect();
    let start = lines
        .iter()
        .position(|l| l.contains("find library=libssl.so.3"))
        .unwrap_or_else(|| panic!("no LD_DEBUG lines for libssl: {r}"));
    // `  1234:\t search cache=/etc/ld.so.cache`, without the pid.
    let block: Vec<&str> = lines[start + 1..]
        .iter()
        .map(|l| l.split_once(':').map_or(*l, |(_, rest)| rest.trim()))
        .filter(|l| !l.is_empty())
        .take(2)
        .collect();
    assert!(
        block.len() == 2
            && block[0] == "search cache=/etc/ld.so.cache"
            && block[1].starts_with("trying file=")
            && block[1].ends_with("/libssl.so.3"),
        "base: libssl.so.3 was not found through /etc/ld.so.cache: {block:?}\n{r}"
    );
    eprintln!(
        "base: ld.so.cache has {n} entries; loader: {}",
        block.join(" -> ")
    );
}

fn check_cc(ctx: &Ctx) {
    let b = ctx.bundle("cc", "latest-amd64");
    ctx.install(&b, &ctx.probes.hello_cc, "/hello");
    let r = ctx.run(&b, &["/hello"], RunOpts::default());
    assert_eq!(r.expect_ok(), "hello from C++, exception caught\n", "{r}");
    ld_cache(
        &b,
        "amd64",
        &["libstdc++.so.6", "libgcc_s.so.1", "libgomp.so.1"],
    );
    eprintln!("cc: {}", r.stdout.trim());
}

/// The python3 probe: imports the whole standard library and exercises ssl, the
/// compressors, sqlite3, ctypes and subprocess; returns its JSON report.
fn python_probe(ctx: &Ctx, b: &Bundle) -> Value {
    let entry = string_list(&b.config["config"]["Entrypoint"]);
    assert_eq!(
        entry,
        ["/usr/bin/python3"],
        "{}:{} Entrypoint",
        b.image,
        b.tag
    );
    let script = std::fs::read_to_string(src_dir().join("probe.py")).unwrap();
    let mut args: Vec<&str> = entry.iter().map(String::as_str).collect();
    args.extend(["-c", &script]);
    let r = ctx.run(b, &args, RunOpts::default());
    let out = r.expect_ok();
    let v: Value = serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("python3 probe printed no JSON ({e}): {r}"));
    let name = format!("{}:{}", b.image, b.tag);
    let mut problems = Vec::new();
    let failures = v["import_failures"].as_object().unwrap();
    if !failures.is_empty() {
        problems.push(format!(
            "standard-library modules that do not import: {}",
            serde_json::to_string_pretty(failures).unwrap()
        ));
    }
    if v["imported"].as_u64().unwrap() < 200 {
        problems.push(format!("only {} modules imported", v["imported"]));
    }
    let bundle = count_certs(&read_in(&b.rootfs, "/etc/ssl/certs/ca-certificates.crt"));
    let cas = v["x509_ca"].as_u64().unwrap();
    if cas <= 100 || cas != bundle as u64 {
        problems.push(format!(
            "ssl default context has {cas} CAs; the image's bundle has {bundle}"
        ));
    }
    for k in ["zlib", "lzma", "bz2", "sqlite3", "libc_loads"] {
        if v[k] != true {
            problems.push(format!("{k} round trip: {}", v[k]));
        }
    }
    if v["find_library_c"] != "libc.so.6" {
        let ldconfig = ["/sbin/ldconfig", "/usr/sbin/ldconfig"]
            .iter()
            .any(|p| lexists(&b.rootfs, p));
        problems.push(format!(
            "ctypes.util.find_library('c') = {} (ld.so.cache: {}, ldconfig in the image: {ldconfig})",
            v["find_library_c"],
            b.rootfs.join("etc/ld.so.cache").exists()
        ));
    }
    let shell = v["shell"].as_str().unwrap();
    if !shell.starts_with("FileNotFoundError") {
        problems.push(format!("subprocess.run('true', shell=True): {shell}"));
    }
    assert!(
        problems.is_empty(),
        "{name}:\n{}\n{v:#}",
        problems.join("\n")
    );
    eprintln!(
        "{name}: Python {} imported {} stdlib modules (skipped {}), {} CAs, {}, sqlite {}, \
         find_library('c')={}, shell: {shell}",
        v["version"].as_str().unwrap().split(' ').next().unwrap(),
        v["imported"],
        v["skipped"],
        v["x509_ca"],
        v["openssl"].as_str().unwrap(),
        v["sqlite_version"].as_str().unwrap(),
        v["find_library_c"],
    );
    v
}

fn check_python3(ctx: &Ctx) {
    let b = ctx.bundle("python3", "latest-amd64");
    assert_eq!(
        std::fs::read_link(b.rootfs.join("usr/bin/python")).ok(),
        Some(PathBuf::from("python3"))
    );
    let v = python_probe(ctx, &b);
    assert_eq!(v["uid"], 0, "python3:latest runs as root");
}

fn check_python3_nonroot(ctx: &Ctx) {
    let b = ctx.bundle("python3", "nonroot-amd64");
    assert_eq!(b.config["config"]["User"], "65532");
    let v = python_probe(ctx, &b);
    assert_eq!(v["uid"], 65532, "python3:nonroot must run as 65532: {v}");
    assert_eq!(v["cwd"], "/home/nonroot", "{v}");
    assert_eq!(
        v["home_writable"], true,
        "nonroot's home must be writable: {v}"
    );
}

fn check_java(ctx: &Ctx, image: &str, major: &str) {
    let b = ctx.bundle(image, "latest-amd64");
    let cacerts = format!("/usr/lib/jvm/java-{major}-openjdk-amd64/lib/security/cacerts");
    let target = resolve_in(&b.rootfs, &cacerts, true);
    let size = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 0,
        "{image}: {cacerts} -> {:?} -> {} is missing or empty (java-cacerts)",
        std::fs::read_link(b.rootfs.join(cacerts.trim_start_matches('/'))),
        target.display()
    );
    let mode = std::fs::metadata(&target).unwrap().mode();
    assert_eq!(
        mode & 0o444,
        0o444,
        "{image}: cacerts mode {mode:o}: nonroot must read it"
    );

    let r = ctx.run(&b, &["/usr/bin/java", "-version"], RunOpts::default());
    r.expect_ok();
    assert!(
        r.stderr.contains(&format!("version \"{major}")),
        "{image}: java -version: {r}"
    );
    let entry = string_list(&b.config["config"]["Entrypoint"]);
    assert_eq!(entry, ["/usr/bin/java", "-jar"], "{image} Entrypoint");
    ctx.install(&b, &ctx.probes.jar, "/probe.jar");
    let mut args: Vec<&str> = entry.iter().map(String::as_str).collect();
    args.push("/probe.jar");
    let r = ctx.run(&b, &args, RunOpts::default());
    let out = r.expect_ok();
    let kv: BTreeMap<&str, &str> = out.lines().filter_map(|l| l.split_once('=')).collect();
    let mut problems = Vec::new();
    for k in ["defaultCharset", "native.encoding", "sun.jnu.encoding"] {
        if kv.get(k) != Some(&"UTF-8") {
            problems.push(format!("{k} = {:?}", kv.get(k)));
        }
    }
    let issuers: i64 = kv
        .get("acceptedIssuers")
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1);
    if issuers <= 100 {
        problems.push(format!("default TrustManager accepts {issuers} issuers"));
    }
    if !kv
        .get("JAVA_VERSION")
        .is_some_and(|v| v.starts_with(&format!("{major}.")) || *v == major)
    {
        problems.push(format!("JAVA_VERSION = {:?}", kv.get("JAVA_VERSION")));
    }
    if !kv.get("java.version").is_some_and(|v| v.starts_with(major)) {
        problems.push(format!("java.version = {:?}", kv.get("java.version")));
    }
    assert!(problems.is_empty(), "{image}: {}\n{r}", problems.join("; "));
    eprintln!("{image}: {}", out.trim().replace('\n', ", "));
}

/// java-base ships fonts and font libraries: headless text layout works (libfontmanager
/// and what it links, fontconfig and the DejaVu fonts).
fn check_java_fonts(ctx: &Ctx) {
    let mut problems = Vec::new();
    for image in ["java21", "java25"] {
        let b = ctx.bundle(image, "latest-amd64");
        ctx.install(&b, &ctx.probes.jar, "/probe.jar");
        let r = ctx.run(
            &b,
            &["/usr/bin/java", "-jar", "/probe.jar", "fonts"],
            RunOpts::default(),
        );
        let kv: BTreeMap<&str, &str> = r.stdout.lines().filter_map(|l| l.split_once('=')).collect();
        let advance: f64 = kv
            .get("advance")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0);
        let fonts: u32 = kv.get("fonts").and_then(|s| s.parse().ok()).unwrap_or(0);
        if !r.ok() || advance <= 0.0 || fonts == 0 {
            let why = r
                .stderr
                .lines()
                .filter(|l| l.contains("Error") || l.contains("Exception"))
                .take(3)
                .collect::<Vec<_>>()
                .join(" | ");
            problems.push(format!("{image}: headless text layout fails: {why}\n{r}"));
        } else {
            eprintln!("{image}: fonts: {}", r.stdout.trim().replace('\n', ", "));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn check_nodejs(ctx: &Ctx) {
    let b = ctx.bundle("nodejs", "latest-amd64");
    let entry = string_list(&b.config["config"]["Entrypoint"]);
    assert_eq!(entry, ["/nodejs/bin/node"], "nodejs Entrypoint");
    let script = std::fs::read_to_string(src_dir().join("probe.js")).unwrap();
    let r = ctx.run(&b, &["/nodejs/bin/node", "-e", &script], RunOpts::default());
    let v: Value = serde_json::from_str(r.expect_ok().trim())
        .unwrap_or_else(|e| panic!("node printed no JSON ({e}): {r}"));
    assert_eq!(
        v["sha256"], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "{r}"
    );
    assert_eq!(v["gzip"], true, "{r}");
    assert!(v["rootCertificates"].as_u64().unwrap() > 100, "{r}");
    eprintln!("nodejs: {v}");

    // Node's tls.rootCertificates is its compiled-in list; what it trusts by default is
    // OpenSSL's default store, $SSL_CERT_FILE, the image's bundle. Without the test CA it
    // refuses the test server; pointed at the test CA it accepts it.
    let script = std::fs::read_to_string(src_dir().join("tls_probe.js")).unwrap();
    std::fs::write(b.rootfs.join("test-ca.pem"), &ctx.ca.ca_pem).unwrap();
    let port = ctx.tls_port.to_string();
    let args = ["/nodejs/bin/node", "-e", &script, &port];
    let tls = |env: &[(&str, &str)]| {
        let r = ctx.run(
            &b,
            &args,
            RunOpts {
                env,
                host_network: true,
            },
        );
        let v: Value = serde_json::from_str(r.stdout.trim())
            .unwrap_or_else(|e| panic!("node TLS probe printed no JSON ({e}): {r}"));
        (v, r)
    };
    let (v, r) = tls(&[]);
    assert_eq!(
        v["error"], "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
        "nodejs must refuse a server its bundle does not vouch for: {r}"
    );
    let (v, r) = tls(&[("SSL_CERT_FILE", "/test-ca.pem")]);
    assert_eq!(
        v["authorized"], true,
        "nodejs does not take its trust from SSL_CERT_FILE: {r}"
    );
    eprintln!("nodejs: TLS trust follows SSL_CERT_FILE (the image's bundle)");
}

fn check_debug(ctx: &Ctx) {
    for (image, entry) in [("static", "/busybox/sh"), ("python3", "/usr/bin/python3")] {
        let b = ctx.bundle(image, "debug-amd64");
        assert_eq!(
            string_list(&b.config["config"]["Entrypoint"]),
            [entry],
            "{image}:debug Entrypoint"
        );
        let path = config_env(&b.config).remove("PATH").unwrap_or_default();
        assert!(path.ends_with(":/busybox"), "{image}:debug PATH={path}");
        let r = ctx.run(&b, &["/busybox/sh", "-c", "echo ok"], RunOpts::default());
        assert_eq!(r.expect_ok(), "ok\n", "{r}");
        // The shell finds the applets on PATH.
        let r = ctx.run(
            &b,
            &["/busybox/sh", "-c", "ls / >/dev/null && id -u"],
            RunOpts::default(),
        );
        assert_eq!(r.expect_ok(), "0\n", "{r}");
    }
    eprintln!("debug: /busybox/sh runs in static:debug and python3:debug");
}

fn check_arm64(ctx: &Ctx) {
    let mut problems = Vec::new();
    for image in ["base", "cc", "python3", "nodejs", "java21"] {
        let lay = layout(&ctx.out, image);
        let index = tag_descriptor(&lay, "latest");
        assert_eq!(
            index["mediaType"], "application/vnd.oci.image.index.v1+json",
            "{image}:latest"
        );
        let index = blob_json(&lay, index["digest"].as_str().unwrap());
        let platforms: BTreeSet<(String, String, String)> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let p = &m["platform"];
                let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
                (s("os"), s("architecture"), s("variant"))
            })
            .collect();
        let want: BTreeSet<(String, String, String)> =
            [("linux", "amd64", ""), ("linux", "arm64", "v8")]
                .iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect();
        if platforms != want {
            problems.push(format!("{image}:latest index platforms {platforms:?}"));
        }
        let b = ctx.bundle(image, "latest-arm64");
        if b.config["architecture"] != "arm64" || b.config["os"] != "linux" {
            problems.push(format!(
                "{image}:latest-arm64 config: {} {}",
                b.config["os"], b.config["architecture"]
            ));
        }
        let mut files = Vec::new();
        walk_files(&b.rootfs, &mut files);
        let mut elf = 0;
        for f in &files {
            match elf_machine(f) {
                Some(EM_AARCH64) => elf += 1,
                Some(m) => problems.push(format!(
                    "{image}:latest-arm64 {} is ELF machine {m}",
                    f.strip_prefix(&b.rootfs).unwrap().display()
                )),
                None => {}
            }
        }
        if elf == 0 {
            problems.push(format!("{image}:latest-arm64 has no ELF files"));
        }
        let ld = catch_unwind(AssertUnwindSafe(|| ld_cache(&b, "arm64", &["libc.so.6"])));
        if let Err(e) = ld {
            problems.push(panic_message(&e));
        }
        eprintln!(
            "arm64: {image}: {} files, {elf} AArch64 ELF files, platforms {platforms:?}",
            files.len()
        );
    }
    assert!(problems.is_empty(), "arm64:\n{}", problems.join("\n"));
}

/// Every image unpacked along the way: no shell unless it is a debug tag, and a dpkg
/// status entry for each of its packages.
fn check_every_image(ctx: &Ctx) {
    let mut bundles: Vec<_> = ctx.bundles.lock().unwrap().values().cloned().collect();
    bundles.sort_by(|a, b| (&a.image, &a.tag).cmp(&(&b.image, &b.tag)));
    let mut problems = Vec::new();
    for b in &bundles {
        let r = catch_unwind(AssertUnwindSafe(|| {
            if !b.tag.starts_with("debug") {
                no_shell(b);
            }
            dpkg_status(b);
        }));
        if let Err(e) = r {
            problems.push(panic_message(&e));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "every image: no shell, dpkg status complete in {}",
        bundles
            .iter()
            .map(|b| format!("{}:{}", b.image, b.tag))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Every amd64 image unpacked along the way is x86-64 through and through (bar the
/// probes copied in, which are x86-64 too).
fn check_amd64_elf(ctx: &Ctx) {
    let bundles: Vec<_> = ctx.bundles.lock().unwrap().values().cloned().collect();
    let mut problems = Vec::new();
    for b in bundles.iter().filter(|b| b.tag.ends_with("-amd64")) {
        let mut files = Vec::new();
        walk_files(&b.rootfs, &mut files);
        for f in files {
            if let Some(m) = elf_machine(&f).filter(|&m| m != EM_X86_64) {
                problems.push(format!(
                    "{}:{} {} is ELF machine {m}",
                    b.image,
                    b.tag,
                    f.display()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// No symlink in any unpacked image points at nothing: a dangling link is a file some
/// rule's `paths` or exclude dropped.
fn check_symlinks(ctx: &Ctx) {
    // tzdata ships /usr/share/zoneinfo/localtime -> /etc/localtime and its postinst makes
    // /etc/localtime; without it the C library and the runtimes use UTC, as intended.
    const ALLOWED: &[&str] = &["/usr/share/zoneinfo/localtime"];
    let bundles: Vec<_> = ctx.bundles.lock().unwrap().values().cloned().collect();
    let mut problems = BTreeSet::new();
    let mut links = 0;
    for b in &bundles {
        walk(&b.rootfs, &mut |p, ft| {
            if !ft.is_symlink() {
                return;
            }
            links += 1;
            let rel = format!("/{}", p.strip_prefix(&b.rootfs).unwrap().display());
            if ALLOWED.contains(&rel.as_str()) {
                return;
            }
            let resolved = resolve_in(&b.rootfs, &rel, true);
            if std::fs::symlink_metadata(&resolved).is_err() {
                problems.insert(format!(
                    "{}:{} {rel} -> {} dangles",
                    b.image,
                    b.tag,
                    std::fs::read_link(p).unwrap().display()
                ));
            }
        });
    }
    assert!(
        problems.is_empty(),
        "{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
    eprintln!(
        "symlinks: {links} links in {} unpacked images, none dangling",
        bundles.len()
    );
}

// ---------------------------------------------------------------------------------------

fn panic_message(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(non-string panic)".into())
}

fn tlsprobe_rule(ca_pem: &str) -> String {
    format!(
        "# Test only: static plus a local CA, as an image that trusts a private CA would be.\n\
         description = \"static + the family test's CA\"\n\
         parent = \"static\"\n\
         distros = [\"{DISTRO}\"]\n\n\
         [generate.files.\"/usr/local/share/ca-certificates/debless-test.crt\"]\n\
         content = '''\n{ca_pem}'''\n\n\
         # Regenerated with /usr/local/share/ca-certificates, as update-ca-certificates does.\n\
         [generate.ca-bundle]\n"
    )
}

/// One named check; a panic fails it.
type Check = Box<dyn Fn(&Ctx)>;

#[test]
#[ignore = "live: needs the Debian archive (make test-live)"]
fn family_images_work_end_to_end() {
    let started = Instant::now();
    for tool in [
        "gcc", "g++", "javac", "jar", "openssl", "umoci", "runc", "file",
    ] {
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is needed (make deps; a JDK; gcc, g++ and libssl-dev)"
        );
    }
    let reuse = std::env::var_os("DEBLESS_FAMILY_REUSE").map(PathBuf::from);
    let tmp = tempfile::Builder::new()
        .prefix("debless-family-")
        .tempdir()
        .unwrap();
    let root = match &reuse {
        Some(dir) => dir.clone(),
        None => tmp.path().to_owned(),
    };
    let project = root.join("project");
    let out = root.join("out");
    let cache = std::env::var_os("DEBLESS_FAMILY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("cache"));
    let ca = make_test_ca(&root.join("ca"));

    if reuse.is_none() || !out.exists() {
        scratch_project(&project);
        std::fs::write(
            project.join("rules/tlsprobe.toml"),
            tlsprobe_rule(&ca.ca_pem),
        )
        .unwrap();
        let debless = |args: &[&str]| {
            let t = Instant::now();
            let mut c = Command::new(env!("CARGO_BIN_EXE_debless"));
            c.arg("-C")
                .arg(&project)
                .args(args)
                .arg("--cache-dir")
                .arg(&cache)
                .env_remove("DEBLESS_MIRRORS")
                .env_remove("SOURCE_DATE_EPOCH");
            let o = c.output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                o.status.success(),
                "debless {args:?} failed ({}):\n{}{err}",
                o.status,
                String::from_utf8_lossy(&o.stdout)
            );
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            eprintln!(
                "debless {} took {:.0?}: {}",
                args[0],
                t.elapsed(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            );
        };
        debless(&[
            "pin", "--distro", DISTRO, "--arch", "amd64", "--arch", "arm64",
        ]);
        debless(&["build", "--distro", DISTRO, "--out", out.to_str().unwrap()]);
    }

    let work = root.join("bundles");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let server = TlsServer::start(&ca, &work.join("s_server.log"));
    let ctx = Ctx {
        probes: compile_probes(&root.join("bin")),
        out,
        work,
        ca,
        tls_port: server.port,
        bundles: Mutex::new(HashMap::new()),
        runs: AtomicUsize::new(0),
    };

    let checks: Vec<(&str, Check)> = vec![
        ("static", Box::new(check_static)),
        ("tls", Box::new(check_tls)),
        ("base-nossl", Box::new(check_base_nossl)),
        ("base", Box::new(check_base)),
        ("cc", Box::new(check_cc)),
        ("python3", Box::new(check_python3)),
        ("python3:nonroot", Box::new(check_python3_nonroot)),
        ("java21", Box::new(|c| check_java(c, "java21", "21"))),
        ("java25", Box::new(|c| check_java(c, "java25", "25"))),
        ("java-fonts", Box::new(check_java_fonts)),
        ("nodejs", Box::new(check_nodejs)),
        ("debug", Box::new(check_debug)),
        ("arm64", Box::new(check_arm64)),
        ("every-image", Box::new(check_every_image)),
        ("amd64-elf", Box::new(check_amd64_elf)),
        ("symlinks", Box::new(check_symlinks)),
    ];
    // A failed check says where; its message comes once, below, and in the final list.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if let Some(l) = info.location() {
            eprintln!("   failed at {l}");
        }
    }));
    let mut failed = Vec::new();
    for (name, check) in &checks {
        let t = Instant::now();
        match catch_unwind(AssertUnwindSafe(|| check(&ctx))) {
            Ok(()) => eprintln!("== {name}: ok ({:.1?})", t.elapsed()),
            Err(e) => {
                let msg = format!("[{name}] {}", panic_message(&e));
                eprintln!("== {name}: FAILED ({:.1?})\n{msg}", t.elapsed());
                failed.push(msg);
            }
        }
    }
    std::panic::set_hook(hook);
    drop(server);
    eprintln!(
        "family: {} of {} checks passed in {:.0?}",
        checks.len() - failed.len(),
        checks.len(),
        started.elapsed()
    );
    if std::env::var_os("DEBLESS_FAMILY_KEEP").is_some() && reuse.is_none() {
        eprintln!("family: kept {}", tmp.keep().display());
    }
    assert!(failed.is_empty(), "\n{}", failed.join("\n\n"));
}
