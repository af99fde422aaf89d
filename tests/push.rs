//! `debless push` against a real registry: Debian's `docker-registry` (the CNCF distribution
//! server) started per test on 127.0.0.1, read back with skopeo. A missing tool fails the
//! test on CI and is a loud SKIPPED elsewhere (`make deps` installs them all).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use debless::layer::{Compression, Entry, EntryKind, Layer, write_layer};
use debless::oci::{Config, Descriptor, Image, LayerRef, Layout, platform_for};
use debless::registry::{Credentials, PushOptions, PushReport, push_layout};
use serde_json::Value;

use common::registry::Registry;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Run a tool, fail the test with its stderr if it fails, return its stdout.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{}",
        stderr(&out)
    );
    stdout(&out)
}

/// `debless push ARGS` with no credentials in the environment and `HOME` at `home` (so
/// the host's ~/.docker/config.json stays out of it); `stdin` is piped in.
fn debless_push(home: &Path, args: &[&str], envs: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_debless"));
    cmd.arg("push")
        .args(args)
        .env("HOME", home)
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DEBLESS_REGISTRY_USER")
        .env_remove("DEBLESS_REGISTRY_PASSWORD")
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

// ---- the layout pushed ----

const CREATED: &str = "2024-01-02T03:04:05Z";
const EPOCH: u64 = 1_704_164_645;

fn file(path: &str, body: Vec<u8>) -> Entry {
    Entry {
        path: path.to_string(),
        kind: EntryKind::File {
            data: Arc::new(body),
            link_group: None,
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: EPOCH,
        origin: "test".to_string(),
    }
}

/// Bytes gzip cannot shrink, so the layer is about `n` bytes (for the chunked path).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The layer every image of every test shares: ~300 KB of noise.
fn base_layer() -> Layer {
    let entries = vec![
        Entry::dir("etc", EPOCH, "test"),
        file("etc/os-release", b"PRETTY_NAME=\"Distroless\"\n".to_vec()),
        file("etc/noise", noise(300_000, 7)),
    ];
    write_layer(&entries, Compression::Gzip, EPOCH).unwrap()
}

/// A small per-image, per-architecture layer.
fn app_layer(image: &str, arch: &str) -> Layer {
    let entries = vec![
        Entry::dir("app", EPOCH, "test"),
        file("app/id", format!("{image} {arch}\n").into_bytes()),
    ];
    write_layer(&entries, Compression::Gzip, EPOCH).unwrap()
}

/// An image layout as `debless build` writes it: amd64 and arm64, two layers each (base
/// shared), tags `latest` and `nonroot` on indexes and `<tag>-<arch>` on manifests.
struct Fixture {
    dir: PathBuf,
    base: Layer,
    /// Descriptor of every tag.
    tags: BTreeMap<String, Descriptor>,
    /// Distinct blobs (layers and configs).
    blobs: usize,
}

fn fixture(root: &Path, image: &str) -> Fixture {
    let base = base_layer();
    let mut layout = Layout::new();
    layout.add_blob(base.blob.clone());
    let mut tags = BTreeMap::new();
    let mut blobs = 1;
    let apps: Vec<(&str, Layer)> = ["amd64", "arm64"]
        .into_iter()
        .map(|a| (a, app_layer(image, a)))
        .collect();
    for (_, l) in &apps {
        layout.add_blob(l.blob.clone());
        blobs += 1;
    }
    for (variant, user) in [("latest", "0"), ("nonroot", "65532")] {
        let mut per_arch = Vec::new();
        for (arch, app) in &apps {
            let img = Image {
                platform: platform_for(arch.parse().unwrap()),
                config: Config {
                    user: Some(user.to_string()),
                    labels: BTreeMap::from([("image".to_string(), image.to_string())]),
                    ..Config::default()
                },
                created: CREATED.to_string(),
                layers: vec![LayerRef::from(&base), LayerRef::from(app)],
                history: Vec::new(),
                annotations: BTreeMap::new(),
            };
            let d = layout.add_image(&img).unwrap();
            blobs += 1;
            layout.tag(&d, &format!("{variant}-{arch}"));
            tags.insert(format!("{variant}-{arch}"), d.clone());
            per_arch.push(d);
        }
        let index = layout.add_index(&per_arch, BTreeMap::new());
        layout.tag(&index, variant);
        tags.insert(variant.to_string(), index);
    }
    let dir = root.join(format!("{image}-debian13"));
    layout.write_dir(&dir).unwrap();
    Fixture {
        dir,
        base,
        tags,
        blobs,
    }
}

fn insecure() -> PushOptions {
    PushOptions {
        insecure: true,
        ..PushOptions::default()
    }
}

fn inspect(reg: &Registry, reference: &str, extra: &[&str]) -> Value {
    let target = format!("docker://{}/{reference}", reg.host());
    let mut args = vec!["inspect", "--tls-verify=false"];
    args.extend(extra);
    args.push(&target);
    serde_json::from_str(&run("skopeo", &args)).unwrap()
}

/// `skopeo copy --all` from the registry into a fresh layout; returns its index.json.
fn copy_back(reg: &Registry, reference: &str, tmp: &Path, extra: &[&str]) -> (PathBuf, Value) {
    let policy = tmp.join("policy.json");
    std::fs::write(
        &policy,
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let out = tmp.join(format!("copy-{}", reference.replace([':', '/'], "-")));
    let src = format!("docker://{}/{reference}", reg.host());
    let dst = format!("oci:{}:x", out.display());
    let mut args = vec!["--policy", policy.to_str().unwrap(), "copy", "--all"];
    args.extend(extra);
    args.extend(["--src-tls-verify=false", &src, &dst]);
    run("skopeo", &args);
    let index = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    (out, index)
}

fn counts(r: &PushReport) -> (usize, usize, usize) {
    (r.uploaded.blobs, r.mounted.blobs, r.skipped.blobs)
}

#[test]
fn push_then_skopeo_reads_the_same_digests_and_a_second_push_uploads_nothing() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path(), "base");
    assert_eq!(f.blobs, 7, "3 layers and 4 configs");
    let target = format!("{}/distroless/base", reg.host());

    let o = debless_push(
        tmp.path(),
        &[
            f.dir.to_str().unwrap(),
            &target,
            "--insecure",
            "--jobs",
            "3",
        ],
        &[],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // One line per tag with the layout's digest, in tag order.
    let expected: Vec<String> = f
        .tags
        .iter()
        .map(|(t, d)| format!("pushed {target}:{t} {}", d.digest))
        .collect();
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), expected);
    assert!(
        stderr(&o).contains("blobs: 7 uploaded") && stderr(&o).contains("10 manifests"),
        "{}",
        stderr(&o)
    );

    // The per-arch tag is the layout's manifest; skopeo verifies what it reads.
    let v = inspect(&reg, "distroless/base:latest-amd64", &[]);
    assert_eq!(v["Digest"], f.tags["latest-amd64"].digest.to_string());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Layers"][0], f.base.digest.to_string());
    let v = inspect(&reg, "distroless/base:nonroot-arm64", &["--config"]);
    assert_eq!(v["config"]["User"], "65532");

    // A full copy of the index: every blob is fetched and checked, digests unchanged.
    let (out, index) = copy_back(&reg, "distroless/base:latest", tmp.path(), &[]);
    assert_eq!(
        index["manifests"][0]["digest"],
        f.tags["latest"].digest.to_string()
    );
    for arch in ["amd64", "arm64"] {
        let d = &f.tags[&format!("latest-{arch}")].digest;
        let name = d.hex();
        assert_eq!(
            std::fs::read(out.join("blobs/sha256").join(&name)).unwrap(),
            std::fs::read(f.dir.join("blobs/sha256").join(&name)).unwrap()
        );
    }

    // Everything is there now: the second push skips every blob.
    let r = push_layout(&f.dir, &target, &insecure()).unwrap();
    assert_eq!(counts(&r), (0, 0, 7), "{r:?}");
    assert_eq!(r.uploaded.bytes, 0);
    assert_eq!(r.tags.len(), 6);

    // `:TAG` pushes that tag with its per-arch tags; --tag adds one; an unknown tag names
    // the ones there are.
    let r = push_layout(
        &f.dir,
        &format!("{target}:nonroot"),
        &PushOptions {
            tags: vec!["latest-arm64".to_string()],
            ..insecure()
        },
    )
    .unwrap();
    let tags: Vec<&str> = r.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(
        tags,
        ["latest-arm64", "nonroot", "nonroot-amd64", "nonroot-arm64"]
    );
    let o = debless_push(
        tmp.path(),
        &[
            f.dir.to_str().unwrap(),
            &format!("{target}:debug"),
            "--insecure",
        ],
        &[],
        "",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no tag \"debug\"") && stderr(&o).contains("latest-amd64"),
        "{}",
        stderr(&o)
    );
    // HTTPS is the default; a plain-HTTP registry gets a hint.
    let o = debless_push(tmp.path(), &[f.dir.to_str().unwrap(), &target], &[], "");
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains(&format!("https://{}/v2/", reg.host()))
            && stderr(&o).contains("pass --insecure"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_sibling_repository_mounts_shared_layers_and_a_failed_mount_uploads() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path(), "base");
    let cc = fixture(tmp.path(), "cc");
    let host = reg.host();

    // One session (the options cloned) pushing two images, as `build --push` will.
    let opts = PushOptions {
        jobs: 2,
        ..insecure()
    };
    let r = push_layout(&base.dir, &format!("{host}/distroless/base"), &opts).unwrap();
    assert_eq!(counts(&r), (7, 0, 0));
    let r = push_layout(&cc.dir, &format!("{host}/distroless/cc"), &opts.clone()).unwrap();
    // The shared base layer is mounted; cc's own layers and configs are uploaded.
    assert_eq!(counts(&r), (6, 1, 0), "{r:?}");
    assert_eq!(r.mounted.bytes, base.base.size);
    let v = inspect(&reg, "distroless/cc:latest-arm64", &[]);
    assert_eq!(v["Layers"][0], base.base.digest.to_string());
    copy_back(&reg, "distroless/cc:nonroot", tmp.path(), &[]);

    // Without the first push's knowledge, nothing is mounted.
    let r = push_layout(&cc.dir, &format!("{host}/other/cc"), &insecure()).unwrap();
    assert_eq!(counts(&r), (7, 0, 0));

    // A source that does not have the blob: the registry answers 202 and the blob is
    // uploaded into the session that answer opened.
    let opts = insecure();
    opts.sources.record(&host, &base.base.digest, "nowhere");
    let r = push_layout(&base.dir, &format!("{host}/third/base"), &opts).unwrap();
    assert_eq!(counts(&r), (7, 0, 0));
    copy_back(&reg, "third/base:latest", tmp.path(), &[]);
}

#[test]
fn large_blobs_go_in_chunks_and_arrive_intact() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path(), "base");
    assert!(
        f.base.size > 4 * 65_000,
        "the base layer must span several chunks"
    );
    let opts = PushOptions {
        // Not a divisor of the layer size: the last chunk is short.
        chunk_size: 65_000,
        ..insecure()
    };
    let r = push_layout(&f.dir, &format!("{}/chunked", reg.host()), &opts).unwrap();
    // Only the base layer exceeds the chunk size.
    assert_eq!(r.chunked, 1, "{r:?}");
    assert_eq!(counts(&r), (7, 0, 0));
    let (out, _) = copy_back(&reg, "chunked:latest", tmp.path(), &[]);
    let name = f.base.digest.hex();
    assert_eq!(
        std::fs::read(out.join("blobs/sha256").join(name)).unwrap(),
        &f.base.blob[..]
    );
    // The CLI takes the same knob.
    let o = debless_push(
        tmp.path(),
        &[
            f.dir.to_str().unwrap(),
            &format!("{}/chunked2:latest", reg.host()),
            "--insecure",
            "--chunk-size",
            "100000",
        ],
        &[],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 in chunks"), "{}", stderr(&o));
}

#[test]
fn basic_auth_registry_wants_credentials_from_flags_env_or_docker_config() {
    let (user, pass) = ("pusher", "s3cret-pw");
    let Some(reg) = Registry::start(Some((user, pass))) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path(), "base");
    let host = reg.host();
    let layout = f.dir.to_str().unwrap();
    let no_secret = |o: &Output| {
        assert!(!stdout(o).contains(pass) && !stderr(o).contains(pass));
    };

    // No credentials: a one-line 401 naming the URL, the repository and what to do.
    let o = debless_push(
        tmp.path(),
        &[layout, &format!("{host}/private"), "--insecure"],
        &[],
        "",
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    for want in [
        "401",
        &format!("http://{host}/v2/"),
        "private",
        "--username",
        &format!("docker login {host}"),
    ] {
        assert!(e.contains(want), "{want:?} not in: {e}");
    }

    // A wrong password is refused, and the message says whose.
    let o = debless_push(
        tmp.path(),
        &[
            layout,
            &format!("{host}/private"),
            "--insecure",
            "--username",
            user,
            "--password-stdin",
        ],
        &[],
        "wrong\n",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("401") && stderr(&o).contains(&format!("refused user {user}")),
        "{}",
        stderr(&o)
    );

    // --username and --password-stdin.
    let o = debless_push(
        tmp.path(),
        &[
            layout,
            &format!("{host}/private"),
            "--insecure",
            "--username",
            user,
            "--password-stdin",
        ],
        &[],
        &format!("{pass}\n"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("blobs: 7 uploaded"), "{}", stderr(&o));
    no_secret(&o);

    // $DOCKER_CONFIG/config.json as `docker login` writes it.
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    let o = debless_push(
        tmp.path(),
        &[layout, &format!("{host}/via-config"), "--insecure"],
        &[("DOCKER_CONFIG", docker.to_str().unwrap())],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("blobs: 7 uploaded"), "{}", stderr(&o));
    no_secret(&o);

    // The environment variables.
    let o = debless_push(
        tmp.path(),
        &[layout, &format!("{host}/via-env:latest"), "--insecure"],
        &[
            ("DEBLESS_REGISTRY_USER", user),
            ("DEBLESS_REGISTRY_PASSWORD", pass),
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    no_secret(&o);

    // What arrived is readable with the same credentials, with the layout's digests.
    let creds = format!("{user}:{pass}");
    let v = inspect(&reg, "via-config:latest-amd64", &["--creds", &creds]);
    assert_eq!(v["Digest"], f.tags["latest-amd64"].digest.to_string());
    let (_, index) = copy_back(
        &reg,
        "private:nonroot",
        tmp.path(),
        &["--src-creds", &creds],
    );
    assert_eq!(
        index["manifests"][0]["digest"],
        f.tags["nonroot"].digest.to_string()
    );

    // The library with explicit credentials.
    let r = push_layout(
        &f.dir,
        &format!("{host}/private"),
        &PushOptions {
            credentials: Some(Credentials {
                username: user.to_string(),
                password: pass.to_string(),
                source: "test".to_string(),
            }),
            ..insecure()
        },
    )
    .unwrap();
    assert_eq!(counts(&r), (0, 0, 7));
}

// ---- a proxy in front of the registry, to inject faults and a token service ----

/// One request as the proxy saw it.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    /// Path and query.
    target: String,
    /// Header lines, names lower-cased.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the proxy does with a request: `forward` sends it to the registry and returns
/// the raw response.
type Handler = dyn Fn(&Req, &dyn Fn(&Req) -> Vec<u8>) -> Vec<u8> + Send + Sync;

/// An HTTP/1.1 proxy on 127.0.0.1, one request per connection, that hands every request
/// to a handler; stopped on drop.
struct Proxy {
    port: u16,
    seen: Arc<std::sync::Mutex<Vec<Req>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16, handler: Arc<Handler>) -> Proxy {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (seen, handler) = (seen2.clone(), handler.clone());
                std::thread::spawn(move || proxy_one(conn, upstream, &seen, &*handler));
            }
        });
        Proxy { port, seen, stop }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Req> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn proxy_one(
    mut conn: std::net::TcpStream,
    upstream: u16,
    seen: &std::sync::Mutex<Vec<Req>>,
    handler: &Handler,
) {
    use std::io::{BufRead, BufReader, Read};
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    let req = Req {
        method,
        target,
        headers,
        body,
    };
    seen.lock().unwrap().push(req.clone());
    let forward = |req: &Req| {
        let mut up = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
        for (n, v) in &req.headers {
            if n != "connection" {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
        }
        head.push_str("connection: close\r\n\r\n");
        up.write_all(head.as_bytes()).unwrap();
        up.write_all(&req.body).unwrap();
        let mut resp = Vec::new();
        up.read_to_end(&mut resp).unwrap();
        resp
    };
    let resp = handler(&req, &forward);
    let _ = conn.write_all(&resp);
}

/// A raw response with a JSON body.
fn respond(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {status}\r\nconnection: close\r\n");
    for (n, v) in headers {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.into_bytes()
}

#[test]
fn server_errors_are_retried_and_a_changed_digest_is_caught() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path(), "base");
    // The first PATCH, the first closing blob PUT and the first manifest PUT fail with 503.
    let failed = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let failed2 = failed.clone();
    let proxy = Proxy::start(
        reg.port,
        Arc::new(move |req: &Req, forward: &dyn Fn(&Req) -> Vec<u8>| {
            let kind = match req.method.as_str() {
                "PATCH" => "patch",
                "PUT" if req.target.contains("/blobs/uploads/") => "blob put",
                "PUT" if req.target.contains("/manifests/") => "manifest put",
                _ => return forward(req),
            };
            let mut failed = failed2.lock().unwrap();
            if failed.iter().any(|k| k == kind) {
                return forward(req);
            }
            failed.push(kind.to_string());
            respond("503 Service Unavailable", &[], r#"{"errors":[]}"#)
        }),
    );
    let opts = PushOptions {
        chunk_size: 100_000,
        ..insecure()
    };
    let r = push_layout(&f.dir, &format!("{}/flaky", proxy.host()), &opts).unwrap();
    assert_eq!(
        failed.lock().unwrap().len(),
        3,
        "{:?}",
        failed.lock().unwrap()
    );
    assert_eq!(counts(&r), (7, 0, 0));
    assert_eq!(r.chunked, 1);
    // A failed PATCH starts the blob over in a new upload session.
    let posts = proxy.seen().iter().filter(|q| q.method == "POST").count();
    assert!(posts >= 9, "7 sessions + 2 retried: {posts}");
    copy_back(&reg, "flaky:latest", tmp.path(), &[]);

    // With no retries left, the 503 is the error, naming what and where.
    let proxy = Proxy::start(
        reg.port,
        Arc::new(|req: &Req, forward: &dyn Fn(&Req) -> Vec<u8>| {
            if req.method == "PUT" && req.target.contains("/manifests/") {
                respond(
                    "503 Service Unavailable",
                    &[],
                    r#"{"errors":[{"code":"UNAVAILABLE","message":"storage is down"}]}"#,
                )
            } else {
                forward(req)
            }
        }),
    );
    let e = push_layout(
        &f.dir,
        &format!("{}/down", proxy.host()),
        &PushOptions {
            retries: 1,
            ..insecure()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("HTTP 503: UNAVAILABLE: storage is down")
            && e.contains("-> down at http://")
            && e.contains("try again later"),
        "{e}"
    );
    assert_eq!(
        proxy
            .seen()
            .iter()
            .filter(|q| q.method == "PUT" && q.target.contains("/manifests/"))
            .count(),
        2,
        "one try and one retry"
    );

    // A registry (or proxy) that stores other bytes than we sent is caught by the digest
    // it answers.
    let proxy = Proxy::start(
        reg.port,
        Arc::new(|req: &Req, forward: &dyn Fn(&Req) -> Vec<u8>| {
            let resp = forward(req);
            if req.method == "PUT" && req.target.contains("/manifests/") {
                let text = String::from_utf8_lossy(&resp).into_owned();
                let fake = format!("sha256:{}", "0".repeat(64));
                let mut out = String::new();
                for l in text.split_inclusive("\r\n") {
                    if l.to_ascii_lowercase().starts_with("docker-content-digest:") {
                        out.push_str(&format!("Docker-Content-Digest: {fake}\r\n"));
                    } else {
                        out.push_str(l);
                    }
                }
                return out.into_bytes();
            }
            resp
        }),
    );
    let e = push_layout(&f.dir, &format!("{}/altered", proxy.host()), &insecure())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Docker-Content-Digest sha256:0000") && e.contains("altered"),
        "{e}"
    );
}

#[test]
fn bearer_token_flow_asks_the_realm_once_with_basic_credentials_and_scope() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path(), "base");
    // The proxy is both the token service (/token, wanting basic u:p) and a registry
    // that wants `Bearer tok` on every /v2/ request.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("u:p")
    );
    let port = Arc::new(std::sync::Mutex::new(0u16));
    let port2 = port.clone();
    let proxy = Proxy::start(
        reg.port,
        Arc::new(move |req: &Req, forward: &dyn Fn(&Req) -> Vec<u8>| {
            if req.target.starts_with("/token") {
                return if req.header("authorization") == Some(basic.as_str()) {
                    respond("200 OK", &[], r#"{"access_token":"tok","expires_in":300}"#)
                } else {
                    respond("401 Unauthorized", &[], r#"{"details":"bad credentials"}"#)
                };
            }
            if req.header("authorization") == Some("Bearer tok") {
                return forward(req);
            }
            let challenge = format!(
                r#"Bearer realm="http://127.0.0.1:{}/token",service="test-registry""#,
                port2.lock().unwrap()
            );
            respond(
                "401 Unauthorized",
                &[("www-authenticate", &challenge)],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            )
        }),
    );
    *port.lock().unwrap() = proxy.port;
    let target = format!("{}/bearer/base", proxy.host());

    let opts = PushOptions {
        credentials: Some(Credentials {
            username: "u".to_string(),
            password: "p".to_string(),
            source: "test".to_string(),
        }),
        jobs: 4,
        ..insecure()
    };
    let r = push_layout(&f.dir, &target, &opts).unwrap();
    assert_eq!(counts(&r), (7, 0, 0));
    let tokens: Vec<Req> = proxy
        .seen()
        .into_iter()
        .filter(|q| q.target.starts_with("/token"))
        .collect();
    // One token for the whole push: fetched at the API check, before the parallel uploads.
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(
        tokens[0].target.contains("service=test-registry")
            && tokens[0]
                .target
                .contains("scope=repository%3Abearer%2Fbase%3Apull%2Cpush"),
        "{}",
        tokens[0].target
    );

    // Wrong credentials: the token service's 401 names the realm and what to do.
    let e = push_layout(
        &f.dir,
        &target,
        &PushOptions {
            credentials: Some(Credentials {
                username: "u".to_string(),
                password: "wrong".to_string(),
                source: "test".to_string(),
            }),
            ..insecure()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("401") && e.contains("/token") && e.contains("refused user u"),
        "{e}"
    );
}

#[test]
fn sboms_next_to_the_layout_are_attached_to_their_tags() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path(), "base");
    // What `debless build` writes next to a layout (content is opaque to push).
    let sbom_dir = tmp.path().join("base-debian13.spdx");
    std::fs::create_dir_all(&sbom_dir).unwrap();
    let doc = br#"{"spdxVersion":"SPDX-2.3","name":"base:latest-amd64"}"#;
    std::fs::write(sbom_dir.join("latest-amd64.spdx.json"), doc).unwrap();
    let target = format!("{}/distroless/base", reg.host());
    let r = push_layout(&f.dir, &target, &insecure()).unwrap();
    assert_eq!(r.sboms, 1, "one tag has a document");
    let subject = &f.tags["latest-amd64"].digest;
    let tag = format!(
        "distroless/base:{}.sbom",
        subject.to_string().replace(':', "-")
    );
    let raw = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{tag}", reg.host()),
        ],
    );
    let m: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(m["artifactType"], "application/spdx+json");
    assert_eq!(m["subject"]["digest"], subject.to_string());
    let want = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(doc))
    );
    assert_eq!(m["layers"][0]["digest"], want.as_str());
    assert_eq!(m["layers"][0]["mediaType"], "application/spdx+json");
    // The document itself comes back byte for byte.
    let (copied, index) = copy_back(&reg, &tag, tmp.path(), &[]);
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(
            copied
                .join("blobs/sha256")
                .join(manifest_digest.trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let bytes = std::fs::read(
        copied
            .join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(bytes, doc);
}

#[test]
fn a_layout_tag_pushes_under_another_name_and_an_oci_archive_pushes_like_its_layout() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let f = fixture(tmp.path(), "python3");
    // Its SPDX document follows the tag under its new name.
    let sbom_dir = tmp.path().join("python3-debian13.spdx");
    std::fs::create_dir_all(&sbom_dir).unwrap();
    std::fs::write(
        sbom_dir.join("latest-amd64.spdx.json"),
        br#"{"spdxVersion":"SPDX-2.3"}"#,
    )
    .unwrap();
    let repo = format!("{}/distroless/python3", reg.host());

    // LAYOUT:TAG REGISTRY/REPO:NEWTAG pushes that tag (and its per-arch tags) renamed.
    let source = format!("{}:latest", f.dir.display());
    let o = debless_push(
        tmp.path(),
        &[&source, &format!("{repo}:v1.2.3"), "--insecure"],
        &[],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            format!("pushed {repo}:v1.2.3 {}", f.tags["latest"].digest),
            format!(
                "pushed {repo}:v1.2.3-amd64 {}",
                f.tags["latest-amd64"].digest
            ),
            format!(
                "pushed {repo}:v1.2.3-arm64 {}",
                f.tags["latest-arm64"].digest
            ),
        ]
    );
    assert!(stderr(&o).contains("1 SBOMs attached"), "{}", stderr(&o));
    let v = inspect(&reg, "distroless/python3:v1.2.3-arm64", &[]);
    assert_eq!(v["Digest"], f.tags["latest-arm64"].digest.to_string());
    let index = run(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{repo}:v1.2.3"),
        ],
    );
    let blob = std::fs::read_to_string(
        f.dir
            .join("blobs/sha256")
            .join(f.tags["latest"].digest.hex()),
    )
    .unwrap();
    assert_eq!(
        index.trim_end(),
        blob.trim_end(),
        "the index is pushed as the layout's bytes"
    );
    // Only the renamed tags exist: `latest` itself was not pushed.
    let listed: Value = serde_json::from_str(&run(
        "skopeo",
        &[
            "list-tags",
            "--tls-verify=false",
            &format!("docker://{repo}"),
        ],
    ))
    .unwrap();
    let mut names: Vec<&str> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    names.sort();
    assert_eq!(names, ["v1.2.3", "v1.2.3-amd64", "v1.2.3-arm64"]);
    // A source tag with --tag is ambiguous and refused before anything is sent.
    let o = debless_push(
        tmp.path(),
        &[
            &source,
            &format!("{repo}:v2"),
            "--tag",
            "nonroot",
            "--insecure",
        ],
        &[],
        "",
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("drop --tag \"nonroot\""),
        "{}",
        stderr(&o)
    );

    // An oci-archive of the layout (made by another tool: tar) pushes the same digests,
    // every tag or one renamed.
    let archive = tmp.path().join("python3-debian13.tar");
    run(
        "tar",
        &[
            "-C",
            f.dir.to_str().unwrap(),
            "-cf",
            archive.to_str().unwrap(),
            ".",
        ],
    );
    let from_archive = format!("{}/distroless/python3-archive", reg.host());
    let r = push_layout(&archive, &from_archive, &insecure()).unwrap();
    let pushed: BTreeMap<String, String> = r
        .tags
        .iter()
        .map(|t| (t.tag.clone(), t.digest.to_string()))
        .collect();
    let layout: BTreeMap<String, String> = f
        .tags
        .iter()
        .map(|(t, d)| (t.clone(), d.digest.to_string()))
        .collect();
    assert_eq!(pushed, layout);
    assert_eq!(
        r.sboms, 1,
        "the archive's SPDX directory is found next to it"
    );
    let r = push_layout(
        &archive,
        &format!("{from_archive}:stable"),
        &PushOptions {
            source_tag: Some("nonroot".into()),
            ..insecure()
        },
    )
    .unwrap();
    assert_eq!(r.tags[0].tag, "stable");
    assert_eq!(r.tags[0].digest, f.tags["nonroot"].digest);
    assert_eq!(counts(&r).0, 0, "every blob is there already");

    // A docker archive has no manifests of the build's to push.
    let docker = tmp.path().join("python3-debian13.docker.tar");
    let manifest = br#"[{"Config":"c.json","RepoTags":["python3-debian13:latest"],"Layers":[]}]"#;
    let dir = tmp.path().join("docker");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), manifest).unwrap();
    std::fs::write(
        dir.join("c.json"),
        br#"{"architecture":"amd64","os":"linux"}"#,
    )
    .unwrap();
    run(
        "tar",
        &[
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            docker.to_str().unwrap(),
            "manifest.json",
            "c.json",
        ],
    );
    let e = push_layout(&docker, &from_archive, &insecure()).unwrap_err();
    assert!(
        e.to_string()
            .contains("push the layout (or an oci-archive)"),
        "{e}"
    );
}
