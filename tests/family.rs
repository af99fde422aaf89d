//! Live end to end for the whole image family: pin debian13 fresh from the host's apt
//! mirror (the archive moves weekly; a committed lock may no longer be downloadable) for
//! amd64, arm64, armhf and riscv64, build every image, tag and architecture, then run real
//! programs in the amd64 images with runc and, under qemu-user, in the others.
//!
//! The programs are compiled here from `tests/family/`: a static OpenSSL client (TLS to a
//! local `openssl s_server` whose certificate a test CA signed, and time zones), a dynamic
//! dlopen probe, a libc probe (C.UTF-8, iconv), a C++ hello, a jar, a Python and a Node.js
//! probe. Test-only rules: `tlsprobe` (static plus that CA in
//! /usr/local/share/ca-certificates) proves the CA bundle generator, and plain `static`
//! must refuse the same server; `restored-nossl` and `restored-python3` add back, with the
//! lines README's "Behaviour differences" gives, what the rules leave out, and each such
//! behaviour must fail in the plain image and work in the restored one.
//!
//! Besides running programs it reads the images: passwd, group, os-release, dpkg status
//! entries against the config's history, /etc/ld.so.cache parsed (entries, flags per
//! architecture), no shell outside debug tags, no dangling symlink, each image's indexes
//! listing exactly Google distroless's architectures for it, and every ELF file of every
//! architecture's images built for that machine. Google's own test files for static,
//! base, java, nodejs and python3 (those checks that need no network) are encoded too.
//! debian12 is pinned and its base-nossl built for amd64, for the C.UTF-8 check.
//!
//! Foreign architectures run without binfmt_misc: the bundle gets qemu-<arch>-static as
//! /qemu, and runc starts `/qemu PROGRAM...`; a child process of the emulated
//! architecture cannot start that way, so find_library and the shell are checked natively.
//!
//! Needs gcc, g++ and libssl-dev (static libs), a JDK (javac, jar), openssl, umoci, runc,
//! dpkg-deb and qemu-user-static (`make deps`), network access to the host's Debian
//! mirror, and root for runc. Ignored by plain `cargo test` for that reason; `make
//! test-live` (part of `make test`) runs it.
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
/// How long a program under /qemu may run: emulated, Python's first start compiles every
/// module it imports (75 CPU-seconds for the whole standard library on arm64).
const QEMU_RUN_TIMEOUT: Duration = Duration::from_secs(600);
const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
                      nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n";
const EM_X86_64: u16 = 62;
/// The architectures the test pins: the manifest's defaults (this machine's mirror has no
/// ppc64el or s390x .debs; tests/arches.rs builds those hermetically).
const ARCHES: [&str; 4] = ["amd64", "arm64", "armhf", "riscv64"];
const ALL_SIX: &[&str] = &["amd64", "arm64", "armhf", "ppc64el", "riscv64", "s390x"];
const JAVA_ARCHES: &[&str] = &["amd64", "arm64", "ppc64el", "riscv64", "s390x"];
/// Google distroless's architectures per image (its */config.bzl), in Debian's names: each
/// image's indexes must list exactly these of the pinned ones.
const GOOGLE_ARCHES: &[(&str, &[&str])] = &[
    ("static", ALL_SIX),
    ("base-nossl", ALL_SIX),
    ("base", ALL_SIX),
    ("cc", ALL_SIX),
    ("python3", &["amd64", "arm64", "riscv64"]),
    ("java-base", JAVA_ARCHES),
    ("java21", JAVA_ARCHES),
    ("java25", JAVA_ARCHES),
    ("nodejs", &["amd64", "arm64", "armhf", "ppc64el", "s390x"]),
];

/// What the test knows about each pinned architecture, independently of debless.
struct ArchInfo {
    name: &'static str,
    /// OCI platform architecture and variant.
    platform: (&'static str, &'static str),
    /// ELF e_machine (elf.h EM_*).
    e_machine: u16,
    /// ld.so.cache entry flags: FLAG_ELF_LIBC6 | the ABI's flag (glibc's dl-cache.h).
    ld_flags: i32,
    /// How the target's `ldconfig -p` names that ABI.
    ldconfig_abi: &'static str,
    triplet: &'static str,
    /// The dynamic loader, in the multiarch directory.
    loader: &'static str,
    /// qemu-user's name for it (`qemu-<name>-static`); None: runs natively.
    qemu: Option<&'static str>,
}

const ARCH_INFO: [ArchInfo; 4] = [
    ArchInfo {
        name: "amd64",
        platform: ("amd64", ""),
        e_machine: EM_X86_64,
        ld_flags: 0x0303,
        ldconfig_abi: "libc6,x86-64",
        triplet: "x86_64-linux-gnu",
        loader: "ld-linux-x86-64.so.2",
        qemu: None,
    },
    ArchInfo {
        name: "arm64",
        platform: ("arm64", "v8"),
        e_machine: 183,
        ld_flags: 0x0a03,
        ldconfig_abi: "libc6,AArch64",
        triplet: "aarch64-linux-gnu",
        loader: "ld-linux-aarch64.so.1",
        qemu: Some("aarch64"),
    },
    ArchInfo {
        name: "armhf",
        platform: ("arm", "v7"),
        e_machine: 40,
        ld_flags: 0x0903,
        ldconfig_abi: "libc6,hard-float",
        triplet: "arm-linux-gnueabihf",
        loader: "ld-linux-armhf.so.3",
        qemu: Some("arm"),
    },
    ArchInfo {
        name: "riscv64",
        platform: ("riscv64", ""),
        e_machine: 243,
        ld_flags: 0x1003,
        ldconfig_abi: "libc6,double-float",
        triplet: "riscv64-linux-gnu",
        loader: "ld-linux-riscv64-lp64d.so.1",
        qemu: Some("riscv64"),
    },
];

fn arch_info(arch: &str) -> &'static ArchInfo {
    ARCH_INFO
        .iter()
        .find(|a| a.name == arch)
        .unwrap_or_else(|| panic!("no ArchInfo for {arch}"))
}

/// Is `image` built for `arch` (per Google's matrix)?
fn google_builds(image: &str, arch: &str) -> bool {
    GOOGLE_ARCHES
        .iter()
        .find(|(i, _)| *i == image)
        .is_some_and(|(_, a)| a.contains(&arch))
}

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
    /// Dynamic: `locale` and `iconv CHARSET`.
    libc: PathBuf,
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
    let libc = dir.join("libc_probe");
    run_ok(
        Command::new("gcc")
            .args(["-O2", "-Wall", "-o"])
            .arg(&libc)
            .arg(src.join("libc_probe.c")),
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
        libc,
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
    /// The scratch project (its fresh lock) and the .deb cache the build used.
    project: PathBuf,
    cache: PathBuf,
    /// The standard-library modules Debian ships (see [`debian_stdlib_modules`]).
    stdlib_modules: std::sync::OnceLock<Vec<String>>,
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
        self.bundle_in(DISTRO, image, tag)
    }

    /// [`Ctx::bundle`] of another distro's layout (named `image@distro`).
    fn bundle_in(&self, distro: &str, image: &str, tag: &str) -> std::sync::Arc<Bundle> {
        let name = if distro == DISTRO {
            image.to_owned()
        } else {
            format!("{image}@{distro}")
        };
        let key = format!("{name}:{tag}");
        if let Some(b) = self.bundles.lock().unwrap().get(&key) {
            return b.clone();
        }
        let lay = self.out.join(format!("{image}-{distro}"));
        let dir = self.work.join(format!("{image}-{distro}_{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--image"])
                .arg(format!("{}:{tag}", lay.display()))
                .arg(&dir),
        );
        std::fs::copy(dir.join("config.json"), dir.join("config.orig.json")).unwrap();
        let b = std::sync::Arc::new(Bundle {
            image: name,
            tag: tag.to_owned(),
            rootfs: dir.join("rootfs"),
            config: image_config(&lay, tag),
            dir,
        });
        self.bundles.lock().unwrap().insert(key, b.clone());
        b
    }

    /// Run `args` in the bundle with runc, as the image's user, with the image's Env plus
    /// `opts.env`; killed after RUN_TIMEOUT (QEMU_RUN_TIMEOUT under /qemu).
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
        let timeout = if args.first() == Some(&"/qemu") {
            QEMU_RUN_TIMEOUT
        } else {
            RUN_TIMEOUT
        };
        let deadline = Instant::now() + timeout;
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
            stderr.push_str(&format!("\n[killed after {timeout:?}]"));
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
    let flags = arch_info(arch).ld_flags;
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

/// Every module of the standard library that the Debian packages of python3's closure
/// ship (amd64; the names are the same on every architecture), from their .debs in the
/// cache: what the probe must import or skip for a stated reason.
fn debian_stdlib_modules(ctx: &Ctx) -> &[String] {
    ctx.stdlib_modules.get_or_init(|| {
        let lock = debless::snapshot::lock::Lock::read(
            &ctx.project.join(format!("snapshots/{DISTRO}.lock")),
        )
        .unwrap();
        let mut files = BTreeSet::new();
        for p in lock
            .packages
            .iter()
            .filter(|p| p.arch == "amd64" && p.rules.iter().any(|r| r == "python3"))
        {
            let deb = ctx.cache.join("sha256").join(p.sha256.hex());
            for line in run_ok(Command::new("dpkg-deb").arg("-c").arg(&deb)).lines() {
                if let Some(rel) = line
                    .split_whitespace()
                    .nth(5)
                    .and_then(|p| p.strip_prefix("./usr/lib/python3.13/"))
                {
                    files.insert(rel.to_owned());
                }
            }
        }
        stdlib_modules_of(&files)
    })
}

/// Module names of the files under the standard-library directory: `.py` files in
/// packages (directories with `__init__.py`, as pkgutil walks them) and lib-dynload's
/// extension modules.
fn stdlib_modules_of(files: &BTreeSet<String>) -> Vec<String> {
    let is_package = |dir: &[&str]| files.contains(&format!("{}/__init__.py", dir.join("/")));
    let mut out = BTreeSet::new();
    for f in files {
        if let Some(so) = f.strip_prefix("lib-dynload/") {
            if so.ends_with(".so") {
                out.insert(so.split('.').next().unwrap().to_owned());
            }
            continue;
        }
        let Some(stem) = f.strip_suffix(".py") else {
            continue;
        };
        let mut parts: Vec<&str> = stem.split('/').collect();
        if parts.last() == Some(&"__init__") {
            parts.pop();
        }
        let names_ok = !parts.is_empty()
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if names_ok && (1..parts.len()).all(|i| is_package(&parts[..i])) {
            out.insert(parts.join("."));
        }
    }
    out.into_iter().collect()
}

/// The python3 probe: imports the whole standard library (what the image has and every
/// module Debian ships) and exercises ssl, the compressors, sqlite3, ctypes, readline,
/// curses, dbm.ndbm, the locale and subprocess; returns its JSON report. `qemu`: run under
/// /qemu (a foreign architecture), where no child process of the image's architecture can
/// start, so find_library and the shell are checked natively only.
fn python_probe(ctx: &Ctx, b: &Bundle, qemu: bool) -> Value {
    let entry = string_list(&b.config["config"]["Entrypoint"]);
    assert_eq!(
        entry,
        ["/usr/bin/python3"],
        "{}:{} Entrypoint",
        b.image,
        b.tag
    );
    let modules = debian_stdlib_modules(ctx);
    std::fs::write(
        b.rootfs.join("stdlib-modules.txt"),
        modules.join("\n") + "\n",
    )
    .unwrap();
    std::fs::copy(src_dir().join("probe.py"), b.rootfs.join("probe.py")).unwrap();
    let mut args: Vec<&str> = if qemu { vec!["/qemu"] } else { vec![] };
    args.extend(entry.iter().map(String::as_str));
    args.push("/probe.py");
    let env: &[(&str, &str)] = if qemu {
        &[("DEBLESS_PROBE_QEMU", "1")]
    } else {
        &[]
    };
    let r = ctx.run(
        b,
        &args,
        RunOpts {
            env,
            ..Default::default()
        },
    );
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
    let imported: BTreeSet<&str> = v["imported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    if v["listed"].as_u64() != Some(modules.len() as u64) || modules.len() < 500 {
        problems.push(format!(
            "the probe read {} of the {} modules Debian ships",
            v["listed"],
            modules.len()
        ));
    }
    // What used to be left out: their libraries, ensurepip, the pure-Python fallbacks.
    for m in [
        "curses",
        "_curses",
        "_curses_panel",
        "readline",
        "dbm.ndbm",
        "_dbm",
        "_pyrepl.curses",
        "ensurepip",
        "_pyio",
        "_pydecimal",
        "_pydatetime",
        "pydoc_data.topics",
    ] {
        if !imported.contains(m) {
            problems.push(format!("{m} was not imported"));
        }
    }
    let bundle = count_certs(&read_in(&b.rootfs, "/etc/ssl/certs/ca-certificates.crt"));
    let cas = v["x509_ca"].as_u64().unwrap();
    if cas <= 100 || cas != bundle as u64 {
        problems.push(format!(
            "ssl default context has {cas} CAs; the image's bundle has {bundle}"
        ));
    }
    for k in [
        "zlib",
        "lzma",
        "bz2",
        "sqlite3",
        "libc_loads",
        "readline",
        "ndbm",
    ] {
        if v[k] != true {
            problems.push(format!("{k}: {}", v[k]));
        }
    }
    if v["curses_colors"] != 256 {
        problems.push(format!(
            "curses.setupterm('xterm-256color'): {} colours",
            v["curses_colors"]
        ));
    }
    if v["preferred_encoding"] != "UTF-8" || v["lc_ctype"] != "C.UTF-8" {
        problems.push(format!(
            "LANG=C.UTF-8 gives locale {} with preferred encoding {}",
            v["lc_ctype"], v["preferred_encoding"]
        ));
    }
    let shell = v["shell"].as_str().unwrap().to_owned();
    if !qemu {
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
        if !shell.starts_with("FileNotFoundError") {
            problems.push(format!("subprocess.run('true', shell=True): {shell}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{name}:\n{}\n{v:#}",
        problems.join("\n")
    );
    let skipped = v["skipped"].as_object().unwrap();
    eprintln!(
        "{name}: Python {} imported {} modules ({} that Debian ships), skipped {}: {}; \
         {} CAs, {}, sqlite {}, find_library('c')={}, shell: {shell}",
        v["version"].as_str().unwrap().split(' ').next().unwrap(),
        imported.len(),
        modules.len(),
        skipped.len(),
        skipped.keys().cloned().collect::<Vec<_>>().join(" "),
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
    let v = python_probe(ctx, &b, false);
    assert_eq!(v["uid"], 0, "python3:latest runs as root");
    // Google's python3.yaml and debian13.yaml, bar import_everything (the probe above).
    google_python3(ctx, &b, None);
}

fn check_python3_nonroot(ctx: &Ctx) {
    let b = ctx.bundle("python3", "nonroot-amd64");
    assert_eq!(b.config["config"]["User"], "65532");
    let v = python_probe(ctx, &b, false);
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

/// Every image's indexes list exactly the platforms Google distroless builds it for (of
/// the pinned architectures), and its per-architecture tags match.
fn check_matrix(ctx: &Ctx) {
    let mut problems = Vec::new();
    for (image, google) in GOOGLE_ARCHES {
        let lay = layout(&ctx.out, image);
        let arches: Vec<&str> = ARCHES
            .iter()
            .copied()
            .filter(|a| google.contains(a))
            .collect();
        let want: BTreeSet<(String, String, String)> = arches
            .iter()
            .map(|a| {
                let (arch, variant) = arch_info(a).platform;
                ("linux".to_owned(), arch.to_owned(), variant.to_owned())
            })
            .collect();
        for tag in ["latest", "nonroot", "debug", "debug-nonroot"] {
            let index = tag_descriptor(&lay, tag);
            if index["mediaType"] != "application/vnd.oci.image.index.v1+json" {
                problems.push(format!("{image}:{tag} is not an index"));
                continue;
            }
            let index = blob_json(&lay, index["digest"].as_str().unwrap());
            let have: BTreeSet<(String, String, String)> = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    let p = &m["platform"];
                    let s = |k: &str| p[k].as_str().unwrap_or("").to_owned();
                    (s("os"), s("architecture"), s("variant"))
                })
                .collect();
            if have != want {
                problems.push(format!("{image}:{tag} platforms {have:?}, want {want:?}"));
            }
            for a in ARCHES {
                let per_arch = has_tag(&lay, &format!("{tag}-{a}"));
                if per_arch != arches.contains(&a) {
                    problems.push(format!("{image}: tag {tag}-{a} present: {per_arch}"));
                }
            }
        }
        eprintln!("matrix: {image}: {}", arches.join(" "));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn has_tag(layout: &Path, tag: &str) -> bool {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
}

/// A failed check's message onto `problems`.
fn note(problems: &mut Vec<String>, r: std::thread::Result<()>) {
    if let Err(e) = r {
        problems.push(panic_message(&e));
    }
}

/// One foreign architecture: every ELF file of every image built for it is of its
/// machine, every ld.so.cache carries its flags, Google's base.yaml file checks hold, and
/// under qemu-user (no binfmt_misc here: /qemu is the process runc starts) its loader
/// resolves libraries through the generated cache, the target's own ldconfig reads that
/// cache, and Python, Node.js, Java and busybox start.
fn check_foreign(ctx: &Ctx, arch: &str) {
    let info = arch_info(arch);
    let qemu_name = info.qemu.unwrap();
    let qemu = PathBuf::from(format!("/usr/bin/qemu-{qemu_name}-static"));
    let tag = format!("latest-{arch}");
    let mut problems = Vec::new();
    let mut bundles = vec![ctx.bundle("static", &format!("debug-{arch}"))];
    for image in [
        "base-nossl",
        "base",
        "cc",
        "python3",
        "nodejs",
        "java21",
        "java25",
    ] {
        if google_builds(image, arch) {
            bundles.push(ctx.bundle(image, &tag));
        }
    }
    // Structure, before /qemu (an x86-64 program) goes in.
    let mut elf = 0;
    for b in &bundles {
        let mut files = Vec::new();
        walk_files(&b.rootfs, &mut files);
        for f in &files {
            match elf_machine(f) {
                Some(m) if m == info.e_machine => elf += 1,
                Some(m) => problems.push(format!(
                    "{}:{} {} is ELF machine {m}, not {}",
                    b.image,
                    b.tag,
                    f.strip_prefix(&b.rootfs).unwrap().display(),
                    info.e_machine
                )),
                None => {}
            }
        }
        if b.config["architecture"] != info.platform.0 || b.config["os"] != "linux" {
            problems.push(format!(
                "{}:{} config: {} {}",
                b.image, b.tag, b.config["os"], b.config["architecture"]
            ));
        }
        if b.image != "static" {
            note(
                &mut problems,
                catch_unwind(AssertUnwindSafe(|| {
                    ld_cache(b, arch, &["libc.so.6"]);
                })),
            );
            let ctype = b.rootfs.join("usr/lib/locale/C.utf8/LC_CTYPE");
            if !ctype.is_file() {
                problems.push(format!("{}:{} has no C.UTF-8 locale", b.image, b.tag));
            }
        }
        if b.image == "base" || b.image == "base-nossl" {
            note(
                &mut problems,
                catch_unwind(AssertUnwindSafe(|| google_base_files(b))),
            );
        }
        ctx.install(b, &qemu, "/qemu");
    }

    // The loader runs, and finds libssl's libraries through /etc/ld.so.cache.
    let cc = ctx.bundle("cc", &tag);
    let loader = format!("/usr/lib/{}/{}", info.triplet, info.loader);
    let r = ctx.run(&cc, &["/qemu", &loader, "--version"], RunOpts::default());
    if !(r.ok() && r.stdout.contains("ld.so (Debian GLIBC")) {
        problems.push(format!("{arch}: loader --version: {r}"));
    }
    let libssl = format!("/usr/lib/{}/libssl.so.3", info.triplet);
    let r = ctx.run(
        &cc,
        &["/qemu", &loader, "--list", &libssl],
        RunOpts {
            env: &[("LD_DEBUG", "libs")],
            ..Default::default()
        },
    );
    let debug: Vec<&str> = r
        .stderr
        .lines()
        .map(|l| l.split_once(':').map_or(l, |(_, rest)| rest.trim()))
        .collect();
    let via_cache = debug.windows(3).any(|w| {
        w[0].starts_with("find library=libcrypto.so.3")
            && w[1] == "search cache=/etc/ld.so.cache"
            && w[2].starts_with("trying file=")
            && w[2].ends_with("/libcrypto.so.3")
    });
    if !(r.ok() && via_cache && r.stdout.contains("libcrypto.so.3 =>")) {
        problems.push(format!(
            "{arch}: the loader did not find libcrypto through /etc/ld.so.cache: {r}"
        ));
    }

    // Google's debug.yaml: busybox reports its version; and its shell runs.
    let debug = ctx.bundle("static", &format!("debug-{arch}"));
    let r = ctx.run(&debug, &["/qemu", "/busybox/busybox"], RunOpts::default());
    if !r.stdout.contains("BusyBox v1.37.0") {
        problems.push(format!("{arch}: /busybox/busybox: {r}"));
    }
    let r = ctx.run(
        &debug,
        &["/qemu", "/busybox/sh", "-c", "echo ok"],
        RunOpts::default(),
    );
    if r.stdout != "ok\n" {
        problems.push(format!("{arch}: /busybox/sh: {r}"));
    }

    let mut ran = vec!["loader", "busybox"];
    if google_builds("python3", arch) {
        let b = ctx.bundle("python3", &tag);
        note(
            &mut problems,
            catch_unwind(AssertUnwindSafe(|| {
                python_probe(ctx, &b, true);
            })),
        );
        // The target's own ldconfig reads the generated cache (ctypes.util.find_library
        // runs it, natively; under qemu the probe cannot start it as a child).
        let r = ctx.run(
            &b,
            &["/qemu", "/usr/sbin/ldconfig", "-p"],
            RunOpts::default(),
        );
        let entries = parse_ld_cache(&std::fs::read(b.rootfs.join("etc/ld.so.cache")).unwrap())
            .unwrap_or_default();
        let header = format!("{} libs found in cache `/etc/ld.so.cache'", entries.len());
        let ssl = format!("libssl.so.3 ({}) => ", info.ldconfig_abi);
        if !(r.ok() && r.stdout.starts_with(&header) && r.stdout.contains(&ssl)) {
            problems.push(format!(
                "{arch}: ldconfig -p (want {header:?}, {ssl:?}): {r}"
            ));
        }
        note(
            &mut problems,
            catch_unwind(AssertUnwindSafe(|| google_python3(ctx, &b, Some("/qemu")))),
        );
        ran.push("python3");
    }
    if google_builds("nodejs", arch) {
        let b = ctx.bundle("nodejs", &tag);
        let script = std::fs::read_to_string(src_dir().join("probe.js")).unwrap();
        let r = ctx.run(
            &b,
            &["/qemu", "/nodejs/bin/node", "-e", &script],
            RunOpts::default(),
        );
        match serde_json::from_str::<Value>(r.stdout.trim()) {
            Ok(v)
                if v["sha256"]
                    == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                    && v["gzip"] == true
                    && v["rootCertificates"].as_u64() > Some(100) => {}
            _ => problems.push(format!("{arch}: node probe: {r}")),
        }
        ran.push("nodejs");
    }
    for (image, major) in [("java21", "21"), ("java25", "25")] {
        if google_builds(image, arch) {
            // One short command: the JVM starts, under emulation.
            let b = ctx.bundle(image, &tag);
            let r = ctx.run(
                &b,
                &["/qemu", "/usr/bin/java", "-version"],
                RunOpts::default(),
            );
            if !(r.ok() && r.stderr.contains(&format!("openjdk version \"{major}"))) {
                problems.push(format!("{arch}: {image}: java -version: {r}"));
            }
            ran.push(image);
        }
    }
    assert!(problems.is_empty(), "{arch}:\n{}", problems.join("\n"));
    eprintln!(
        "{arch}: {} images, {elf} ELF files of machine {}; ran under qemu-{qemu_name}: {}",
        bundles.len(),
        info.e_machine,
        ran.join(" ")
    );
}

/// Google's base/testdata/base.yaml (for base and base-nossl on every architecture and
/// distro): the files it names exist, passwd and group are exactly these, and both
/// os-release paths say PRETTY_NAME="Distroless".
fn google_base_files(b: &Bundle) {
    let name = format!("{}:{}", b.image, b.tag);
    for p in [
        "/",
        "/tmp",
        "/etc/passwd",
        "/etc/group",
        "/etc/os-release",
        "/etc/ssl/certs/ca-certificates.crt",
        "/usr/share/doc/ca-certificates/copyright",
        "/etc/services",
        "/usr/share/doc/tzdata/copyright",
        "/usr/share/zoneinfo",
        "/root",
        "/home/nonroot",
        "/var/lib/dpkg/status.d/libc6",
    ] {
        assert!(
            std::fs::metadata(resolve_in(&b.rootfs, p, true)).is_ok(),
            "{name}: base.yaml: {p} is missing"
        );
    }
    assert_eq!(
        read_in(&b.rootfs, "/etc/passwd"),
        PASSWD,
        "{name} /etc/passwd"
    );
    assert_eq!(read_in(&b.rootfs, "/etc/group"), GROUP, "{name} /etc/group");
    for p in ["/usr/lib/os-release", "/etc/os-release"] {
        assert!(
            read_in(&b.rootfs, p).contains("PRETTY_NAME=\"Distroless\""),
            "{name}: {p} lacks PRETTY_NAME=\"Distroless\""
        );
    }
}

/// Google's static.yaml, debian13.yaml and debug.yaml for static, base.yaml and debug.yaml
/// for base and base-nossl (amd64; foreign architectures in check_foreign). static.yaml's
/// /check_certs is a Go program that reaches a public server: the tls check is its
/// offline equivalent.
fn check_google_static_base(ctx: &Ctx) {
    let s = ctx.bundle("static", "latest-amd64");
    assert!(
        lexists(&s.rootfs, "/etc/mime.types"),
        "static.yaml: /etc/mime.types"
    );
    let os = read_in(&s.rootfs, "/etc/os-release");
    assert!(
        os.contains("\nVERSION=\"Debian GNU/Linux 13 (trixie)\"\n"),
        "debian13.yaml: /etc/os-release:\n{os}"
    );
    for image in ["static", "base-nossl", "base"] {
        if image != "static" {
            google_base_files(&ctx.bundle(image, "latest-amd64"));
        }
        let b = ctx.bundle(image, "debug-amd64");
        assert!(
            lexists(&b.rootfs, "/busybox"),
            "{image}:debug has no /busybox"
        );
        let r = ctx.run(&b, &["/busybox/busybox"], RunOpts::default());
        assert!(r.stdout.contains("BusyBox v1.37.0"), "debug.yaml: {r}");
    }
    eprintln!("google: static.yaml, debian13.yaml, base.yaml and debug.yaml checks hold");
}

/// Google's java_base.yaml, and java21_debian13.yaml (for java21 and java25) with
/// Debian's JRE directory and version for Adoptium's: java runs by its full path and as
/// /usr/bin/java, the trust store is there and the JRE's cacerts a link to it, no shell,
/// no busybox, no javac, jexec and jspawnhelper executable by anyone, JAVA_VERSION set.
/// Adoptium's own /etc/ssl/certs/adoptium/cacerts link comes with its packages.
fn check_google_java(ctx: &Ctx) {
    let b = ctx.bundle("java-base", "latest-amd64");
    assert!(lexists(&b.rootfs, "/etc/ssl/certs/java/cacerts"));
    for p in ["/busybox/sh", "/bin/sh", "/usr/lib/jvm"] {
        assert!(!lexists(&b.rootfs, p), "java_base.yaml: java-base has {p}");
    }
    for (image, major) in [("java21", "21"), ("java25", "25")] {
        let b = ctx.bundle(image, "latest-amd64");
        let jre = format!("/usr/lib/jvm/java-{major}-openjdk-amd64");
        for java in [format!("{jre}/bin/java"), "/usr/bin/java".to_owned()] {
            let r = ctx.run(&b, &[&java, "-version"], RunOpts::default());
            assert!(
                r.ok() && r.stderr.contains(&format!("openjdk version \"{major}.")),
                "{image}: {java} -version: {r}"
            );
        }
        assert!(lexists(&b.rootfs, "/etc/ssl/certs/java/cacerts"));
        let cacerts = b
            .rootfs
            .join(format!("{jre}/lib/security/cacerts").trim_start_matches('/'));
        assert!(
            std::fs::symlink_metadata(&cacerts).is_ok_and(|m| m.file_type().is_symlink()),
            "{image}: {} is not a symlink",
            cacerts.display()
        );
        for p in ["/busybox/sh", "/bin/sh", &format!("{jre}/bin/javac")] {
            assert!(!lexists(&b.rootfs, p), "{image} has {p}");
        }
        for p in ["lib/jexec", "lib/jspawnhelper"] {
            let m = std::fs::metadata(resolve_in(&b.rootfs, &format!("{jre}/{p}"), true))
                .unwrap_or_else(|e| panic!("{image}: {jre}/{p}: {e}"));
            assert_eq!(
                m.mode() & 0o111,
                0o111,
                "{image}: {jre}/{p} mode {:o}",
                m.mode()
            );
        }
        let v = config_env(&b.config)
            .remove("JAVA_VERSION")
            .unwrap_or_default();
        assert!(
            v.starts_with(&format!("{major}.")),
            "{image}: JAVA_VERSION={v}"
        );
    }
    eprintln!("google: java_base.yaml and java2x_debian13.yaml checks hold (Debian's JRE paths)");
}

/// Google's nodejs24.yaml (`node --version`; the version is Debian's), check_npm.yaml
/// and check_headers.yaml.
fn check_google_nodejs(ctx: &Ctx) {
    let b = ctx.bundle("nodejs", "latest-amd64");
    let r = ctx.run(&b, &["/nodejs/bin/node", "--version"], RunOpts::default());
    let v = r.expect_ok().trim().to_owned();
    assert!(v.starts_with('v') && v[1..].split('.').count() == 3, "{r}");
    for p in [
        "/nodejs/lib/node_modules/npm",
        "/nodejs/lib/node_modules/corepack",
        "/nodejs/bin/npm",
        "/nodejs/bin/corepack",
        "/nodejs/bin/npx",
        "/nodejs/include/node/node.h",
    ] {
        assert!(!lexists(&b.rootfs, p), "nodejs has {p}");
    }
    eprintln!("google: nodejs {v}; check_npm.yaml and check_headers.yaml hold");
}

/// Google's python3.yaml and debian13.yaml command tests but import_everything, which
/// the probe does: hello, no shell, UTF-8 file names and output, the version by both
/// names. `qemu`: the emulator to run them under.
fn google_python3(ctx: &Ctx, b: &Bundle, qemu: Option<&str>) {
    let py = |args: &[&str]| {
        let mut all: Vec<&str> = qemu.into_iter().collect();
        all.extend(args);
        ctx.run(b, &all, RunOpts::default())
    };
    let r = py(&["/usr/bin/python3", "-c", "print('Hello World')"]);
    assert_eq!(r.expect_ok(), "Hello World\n", "hello");
    let r = py(&[
        "/usr/bin/python3",
        "-c",
        "import subprocess, sys; subprocess.check_call(sys.executable + ' -h', shell=True)",
    ]);
    if qemu.is_none() {
        assert_eq!(r.code, Some(1), "no_shell: {r}");
    }
    let r = py(&[
        "/usr/bin/python3",
        "-c",
        "import os, sys, tempfile; os.chdir(tempfile.mkdtemp()); open(u'h\\xe9llo', 'w'); \
         print(sys.getfilesystemencoding())",
    ]);
    assert_eq!(r.expect_ok(), "utf-8\n", "filesystem_utf8");
    let r = py(&["/usr/bin/python3", "-c", "print(u'h\\xe9llo.txt')"]);
    assert_eq!(r.expect_ok(), "h\u{e9}llo.txt\n", "print_utf8");
    for exe in ["/usr/bin/python3", "/usr/bin/python"] {
        let r = py(&[exe, "--version"]);
        assert!(
            r.expect_ok().starts_with("Python 3.13."),
            "{exe} --version: {r}"
        );
    }
}

/// C.UTF-8 wherever glibc is: setlocale(LC_ALL, "") under LANG=C.UTF-8 succeeds and
/// mbstowcs decodes UTF-8 in every image above static (and debian12's base-nossl), and
/// Python's preferred encoding is UTF-8 with UTF-8 mode off.
fn check_locale(ctx: &Ctx) {
    let mut problems = Vec::new();
    let mut bundles: Vec<_> = ["base-nossl", "base", "cc", "python3", "nodejs", "java21"]
        .into_iter()
        .map(|i| ctx.bundle(i, "latest-amd64"))
        .collect();
    bundles.push(ctx.bundle_in("debian12", "base-nossl", "latest-amd64"));
    for b in &bundles {
        ctx.install(b, &ctx.probes.libc, "/libc_probe");
        let r = ctx.run(
            b,
            &["/libc_probe", "locale"],
            RunOpts {
                env: &[("LANG", "C.UTF-8")],
                ..Default::default()
            },
        );
        if !(r.ok() && r.stdout == "locale=C.UTF-8 codeset=UTF-8 wide=00e9,20ac\n") {
            problems.push(format!("{}:{}: {r}", b.image, b.tag));
        }
    }
    let py = ctx.bundle("python3", "latest-amd64");
    let r = ctx.run(
        &py,
        &[
            "/usr/bin/python3",
            "-X",
            "utf8=0",
            "-c",
            "import locale, sys; print(locale.getpreferredencoding(), sys.flags.utf8_mode, \
             locale.setlocale(locale.LC_CTYPE))",
        ],
        RunOpts {
            env: &[("PYTHONUTF8", "0")],
            ..Default::default()
        },
    );
    if r.stdout != "UTF-8 0 C.UTF-8\n" {
        problems.push(format!("python3 with UTF-8 mode off: {r}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "locale: C.UTF-8 loads and decodes UTF-8 in {} images; Python's preferred encoding \
         is UTF-8 with UTF-8 mode off",
        bundles.len()
    );
}

/// README's "Behaviour differences": each thing debless's rules leave out fails here and
/// works in the test-only rules that add it back with the line the README gives.
fn check_restored(ctx: &Ctx) {
    let mut problems = Vec::new();
    let plain = ctx.bundle("base-nossl", "latest-amd64");
    let full = ctx.bundle("restored-nossl", "latest-amd64");
    for b in [&plain, &full] {
        ctx.install(b, &ctx.probes.libc, "/libc_probe");
        ctx.install(b, &ctx.probes.tls_static, "/tz_probe");
    }
    let run = |b: &Bundle, args: &[&str], env: &[(&str, &str)]| {
        ctx.run(
            b,
            args,
            RunOpts {
                env,
                ..Default::default()
            },
        )
    };
    // iconv to a charset glibc does not build in (gconv modules).
    let iconv = ["/libc_probe", "iconv", "CP1252"];
    let (a, b) = (run(&plain, &iconv, &[]), run(&full, &iconv, &[]));
    if a.code != Some(4) || !(b.ok() && b.stdout == "iconv CP1252: e2 82 ac\n") {
        problems.push(format!("iconv CP1252: base-nossl {a}\nrestored-nossl {b}"));
    }
    // glibc's LD_PRELOAD memory profiler.
    let memusage = [("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/libmemusage.so")];
    let locale = ["/libc_probe", "locale"];
    let (a, b) = (
        run(&plain, &locale, &memusage),
        run(&full, &locale, &memusage),
    );
    if !a.stderr.contains("cannot be preloaded") || !b.stderr.contains("Memory usage summary") {
        problems.push(format!(
            "LD_PRELOAD=libmemusage.so: base-nossl {a}\nrestored-nossl {b}"
        ));
    }
    // tzdata's leap-second zones.
    let tz = [("TZ", "right/Europe/Kyiv")];
    let (a, b) = (
        run(&plain, &["/tz_probe", "tz"], &tz),
        run(&full, &["/tz_probe", "tz"], &tz),
    );
    if !a.stdout.contains("jan=right +0000")
        || b.stdout.trim() != "TZ=right/Europe/Kyiv jan=EET +0200 jul=EEST +0300"
    {
        problems.push(format!("TZ=right/...: base-nossl {a}\nrestored-nossl {b}"));
    }
    // python3: libc-bin's programs, CPython's test suite, the ncurses, readline and expat
    // libraries no module links.
    let script = std::fs::read_to_string(src_dir().join("restore_probe.py")).unwrap();
    let probe = |image: &str| {
        let b = ctx.bundle(image, "latest-amd64");
        let r = ctx.run(&b, &["/usr/bin/python3", "-c", &script], RunOpts::default());
        let v: Value = serde_json::from_str(r.stdout.trim())
            .unwrap_or_else(|e| panic!("{image}: restore probe printed no JSON ({e}): {r}"));
        v
    };
    let (a, b) = (probe("python3"), probe("restored-python3"));
    for (k, want) in b.as_object().unwrap() {
        let works = |v: &Value| {
            v == &Value::Bool(true)
                || v.as_str()
                    .is_some_and(|s| s.starts_with("nonroot:x:65532:"))
        };
        if works(&a[k]) || !works(want) {
            problems.push(format!("{k}: python3 {}, restored-python3 {want}", a[k]));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "restored: iconv CP1252, LD_PRELOAD=libmemusage.so and TZ=right/ fail in base-nossl and \
         work in restored-nossl; {} fail in python3 and work in restored-python3",
        b.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
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

/// Test only: base-nossl with what its rules leave out of glibc and tzdata, added back
/// with the lines README's "Behaviour differences" gives.
const RESTORED_NOSSL: &str = r#"
description = "base-nossl + gconv, glibc's LD_PRELOAD profilers, tzdata's right/ zones"
parent = "base-nossl"
distros = ["debian13"]
architectures = ["amd64"]
[packages.libc6]
paths = ["/usr/lib/*/gconv/**", "/usr/lib/*/libmemusage.so", "/usr/lib/*/libpcprofile.so"]
[packages.tzdata-legacy]
paths = ["/usr/share/zoneinfo/right/**"]
"#;

/// Test only: python3 with what its rules leave out, added back likewise.
const RESTORED_PYTHON3: &str = r#"
description = "python3 + all of libc-bin, CPython's test suite and unlinked libraries"
parent = "python3"
distros = ["debian13"]
architectures = ["amd64"]
[packages.libc-bin]
paths = ["/**"]
[packages."libpython3.13-stdlib"]
paths = [
    "/usr/lib/python3.13/test/**",
    "/usr/lib/python3.13/lib-dynload/{_test,_xxtestfuzz,_ctypes_test,xx}*",
    "/usr/lib/python3.13/turtle.py",
]
[packages.libexpat1]
paths = ["/usr/lib/*/libexpatw.so.*"]
[packages.libncursesw6]
paths = ["/usr/lib/*/lib{formw,menuw}.so.*"]
[packages.libtinfo6]
paths = ["/usr/lib/*/libtic.so.*"]
[packages.libreadline8t64]
paths = ["/usr/lib/*/libhistory.so.*"]
"#;

/// One named check; a panic fails it.
type Check = Box<dyn Fn(&Ctx)>;

#[test]
#[ignore = "live: needs the Debian archive (make test-live)"]
fn family_images_work_end_to_end() {
    let started = Instant::now();
    for tool in [
        "gcc",
        "g++",
        "javac",
        "jar",
        "openssl",
        "umoci",
        "runc",
        "file",
        "dpkg-deb",
        "qemu-aarch64-static",
        "qemu-arm-static",
        "qemu-riscv64-static",
    ] {
        assert!(
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is needed (make deps; a JDK; gcc, g++ and libssl-dev; qemu-user-static)"
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
        std::fs::write(project.join("rules/restored-nossl.toml"), RESTORED_NOSSL).unwrap();
        std::fs::write(
            project.join("rules/restored-python3.toml"),
            RESTORED_PYTHON3,
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
        let mut pin = vec!["pin", "--distro", DISTRO];
        for a in ARCHES {
            pin.extend(["--arch", a]);
        }
        debless(&pin);
        debless(&["build", "--distro", DISTRO, "--out", out.to_str().unwrap()]);
        // debian12: C.UTF-8 in its base-nossl too (amd64 is enough: the same rule).
        debless(&["pin", "--distro", "debian12", "--arch", "amd64"]);
        debless(&[
            "build",
            "base-nossl",
            "--distro",
            "debian12",
            "--variant",
            "latest",
            "--out",
            out.to_str().unwrap(),
        ]);
    }

    let work = root.join("bundles");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let server = TlsServer::start(&ca, &work.join("s_server.log"));
    let ctx = Ctx {
        probes: compile_probes(&root.join("bin")),
        out,
        work,
        project: project.clone(),
        cache: cache.clone(),
        stdlib_modules: std::sync::OnceLock::new(),
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
        ("locale", Box::new(check_locale)),
        ("restored", Box::new(check_restored)),
        ("google-static-base", Box::new(check_google_static_base)),
        ("google-java", Box::new(check_google_java)),
        ("google-nodejs", Box::new(check_google_nodejs)),
        ("matrix", Box::new(check_matrix)),
        ("arm64", Box::new(|c| check_foreign(c, "arm64"))),
        ("armhf", Box::new(|c| check_foreign(c, "armhf"))),
        ("riscv64", Box::new(|c| check_foreign(c, "riscv64"))),
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
