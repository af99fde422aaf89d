//! The push protocol against an in-process fake registry: uploads (whole and chunked),
//! blobs already there, mounts, bearer tokens, refused credentials, retried failures and
//! a registry that lies about what it stored. `trust` (tests/trust.rs) reads back, attaches
//! referrers with and without the referrers API, signs and verifies against the same fake.

mod trust;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use super::push::push_with;
use super::*;
use crate::http::testserver::{Reply, Request, Server};
use crate::http::{Http, RetryPolicy};
use crate::oci::{Config, Image, LayerRef, Layout, platform_for};
use crate::text::error_line;

/// Retries that do not slow the tests down.
const FAST: RetryPolicy = RetryPolicy {
    retries: 3,
    first_delay: Duration::from_millis(5),
};

fn http() -> Http {
    Http::with_timeout(Duration::from_secs(10))
        .unwrap()
        .with_retry(FAST)
}

/// Who the fake lets in.
#[derive(Clone)]
enum Auth {
    Anonymous,
    Basic(&'static str, &'static str),
    /// A token service at `/token` that wants these basic credentials.
    Bearer(&'static str, &'static str),
}

const TOKEN: &str = "t0ken";

/// A registry in memory: blobs per repository, upload sessions, manifests (and their
/// media types), and, when `referrers_api` is set, the OCI 1.1 referrers API.
#[derive(Default)]
struct State {
    blobs: BTreeSet<(String, String)>,
    content: BTreeMap<String, Vec<u8>>,
    uploads: BTreeMap<String, Vec<u8>>,
    manifests: BTreeMap<(String, String), Vec<u8>>,
    types: BTreeMap<String, String>,
    referrers_api: bool,
    next: usize,
}

struct Fake {
    server: Server,
    state: Arc<Mutex<State>>,
}

/// What a test does to a request before the fake answers it: `Some` answers instead.
type Fault = dyn Fn(&Request) -> Option<Reply> + Send + Sync;

impl Fake {
    fn start(
        auth: Auth,
        fault: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
    ) -> Fake {
        Fake::start_with(auth, false, fault)
    }

    /// A fake that has the referrers API (`referrers_api`) or answers it 404 as registries
    /// without it do.
    fn start_with(
        auth: Auth,
        referrers_api: bool,
        fault: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
    ) -> Fake {
        let state = Arc::new(Mutex::new(State {
            referrers_api,
            ..State::default()
        }));
        let s = state.clone();
        let fault: Box<Fault> = Box::new(fault);
        let port = Arc::new(Mutex::new(String::new()));
        let p = port.clone();
        let server = Server::start(move |req| {
            if let Some(r) = fault(req) {
                return r;
            }
            let host = p.lock().unwrap().clone();
            answer(&mut s.lock().unwrap(), &auth, &host, req)
        });
        *port.lock().unwrap() = server.host();
        Fake { server, state }
    }

    fn target(&self, repository: &str) -> String {
        format!("{}/{repository}", self.server.host())
    }

    fn manifest(&self, repository: &str, reference: &str) -> Option<Vec<u8>> {
        let st = self.state.lock().unwrap();
        st.manifests
            .get(&(repository.to_owned(), reference.to_owned()))
            .cloned()
    }

    fn blob(&self, repository: &str, digest: &Digest) -> Option<Vec<u8>> {
        let st = self.state.lock().unwrap();
        let d = digest.to_string();
        st.blobs
            .contains(&(repository.to_owned(), d.clone()))
            .then(|| st.content[&d].clone())
    }

    fn count(&self, method: &str, part: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.method == method && r.target.contains(part))
            .count()
    }
}

fn basic(user: &str, pass: &str) -> String {
    let pair = format!("{user}:{pass}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

fn errors(code: &str, message: &str) -> String {
    format!(r#"{{"errors":[{{"code":"{code}","message":"{message}"}}]}}"#)
}

/// The distribution API, as much of it as a push uses.
fn answer(st: &mut State, auth: &Auth, host: &str, req: &Request) -> Reply {
    let authorized = match auth {
        Auth::Anonymous => true,
        Auth::Basic(u, p) => req.header("authorization") == Some(basic(u, p).as_str()),
        Auth::Bearer(..) => req.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()),
    };
    if let Auth::Bearer(u, p) = auth
        && req.path() == "/token"
    {
        return if req.header("authorization") == Some(basic(u, p).as_str()) {
            Reply::status(200).body(format!(r#"{{"token":"{TOKEN}"}}"#))
        } else {
            Reply::status(401).body(errors("UNAUTHORIZED", "bad credentials"))
        };
    }
    if !authorized {
        let challenge = match auth {
            Auth::Bearer(..) => {
                format!(r#"Bearer realm="http://{host}/token",service="fake""#)
            }
            _ => r#"Basic realm="fake""#.to_owned(),
        };
        return Reply::status(401)
            .header("WWW-Authenticate", challenge)
            .body(errors("UNAUTHORIZED", "authentication required"));
    }
    let path = req.path();
    if path == "/v2/" {
        return Reply::status(200);
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Reply::status(404);
    };
    if let Some((repo, digest)) = rest.split_once("/blobs/")
        && !digest.starts_with("uploads/")
    {
        let here = st.blobs.contains(&(repo.to_owned(), digest.to_owned()));
        return match (req.method.as_str(), here) {
            ("HEAD", true) => Reply::status(200)
                .header("Docker-Content-Digest", digest)
                .header("Content-Length", st.content[digest].len().to_string())
                .without_length(),
            ("GET", true) => Reply::status(200)
                .header("Docker-Content-Digest", digest)
                .body(st.content[digest].clone()),
            _ => Reply::status(404),
        };
    }
    if let Some((repo, subject)) = rest.split_once("/referrers/") {
        if !st.referrers_api {
            return Reply::status(404).body("404 page not found");
        }
        let mut listed = Vec::new();
        for ((r, reference), bytes) in &st.manifests {
            let Ok(m) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                continue;
            };
            if r != repo
                || !reference.starts_with("sha256:")
                || m["subject"]["digest"].as_str() != Some(subject)
            {
                continue;
            }
            listed.push(serde_json::json!({
                "mediaType": m["mediaType"],
                "digest": reference,
                "size": bytes.len(),
                "artifactType": m["artifactType"],
            }));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": listed,
        });
        return Reply::status(200)
            .header("Content-Type", "application/vnd.oci.image.index.v1+json")
            .body(serde_json::to_vec(&index).unwrap());
    }
    if let Some((repo, session)) = rest.split_once("/blobs/uploads/") {
        let repo = repo.to_owned();
        return match req.method.as_str() {
            "POST" => {
                if let (Some(d), Some(from)) = (req.query("mount"), req.query("from"))
                    && st.blobs.contains(&(from, d.clone()))
                {
                    st.blobs.insert((repo, d.clone()));
                    return Reply::status(201).header("Docker-Content-Digest", d);
                }
                st.next += 1;
                let id = format!("u{}", st.next);
                st.uploads.insert(id.clone(), Vec::new());
                Reply::status(202).header(
                    "Location",
                    format!("/v2/{repo}/blobs/uploads/{id}?_state=s{id}"),
                )
            }
            "PATCH" => {
                let Some(data) = st.uploads.get_mut(session) else {
                    return Reply::status(404)
                        .body(errors("BLOB_UPLOAD_UNKNOWN", "no such upload"));
                };
                data.extend_from_slice(&req.body);
                let end = data.len() - 1;
                Reply::status(202)
                    .header("Location", format!("/v2/{repo}/blobs/uploads/{session}"))
                    .header("Range", format!("0-{end}"))
            }
            "PUT" => {
                let Some(mut data) = st.uploads.remove(session) else {
                    return Reply::status(404)
                        .body(errors("BLOB_UPLOAD_UNKNOWN", "no such upload"));
                };
                data.extend_from_slice(&req.body);
                let digest = Digest::of(&data).to_string();
                if req.query("digest").as_deref() != Some(digest.as_str()) {
                    return Reply::status(400).body(errors("DIGEST_INVALID", "digest mismatch"));
                }
                st.content.insert(digest.clone(), data);
                st.blobs.insert((repo, digest.clone()));
                Reply::status(201).header("Docker-Content-Digest", digest)
            }
            _ => Reply::status(405),
        };
    }
    if let Some((repo, reference)) = rest.split_once("/manifests/")
        && req.method == "PUT"
    {
        let digest = Digest::of(&req.body).to_string();
        for r in [reference, digest.as_str()] {
            st.manifests
                .insert((repo.to_owned(), r.to_owned()), req.body.clone());
        }
        if let Some(t) = req.header("content-type") {
            st.types.insert(digest.clone(), t.to_owned());
        }
        let mut reply = Reply::status(201).header("Docker-Content-Digest", digest);
        if st.referrers_api
            && let Ok(m) = serde_json::from_slice::<serde_json::Value>(&req.body)
            && let Some(subject) = m["subject"]["digest"].as_str()
        {
            reply = reply.header("OCI-Subject", subject);
        }
        return reply;
    }
    if let Some((repo, reference)) = rest.split_once("/manifests/")
        && req.method == "GET"
    {
        let Some(bytes) = st.manifests.get(&(repo.to_owned(), reference.to_owned())) else {
            return Reply::status(404).body(errors("MANIFEST_UNKNOWN", "manifest unknown"));
        };
        let digest = Digest::of(bytes).to_string();
        let mut reply = Reply::status(200)
            .header("Docker-Content-Digest", digest.clone())
            .body(bytes.clone());
        if let Some(t) = st.types.get(&digest) {
            reply = reply.header("Content-Type", t.clone());
        }
        return reply;
    }
    Reply::status(404)
}

/// A layout with amd64 and arm64 images over one shared layer (plus one of `noise` bytes
/// per image, for the chunked path), an index tagged `latest` and per-arch tags.
fn layout(dir: &Path, noise: usize) -> Layout {
    let mut l = Layout::new();
    let shared = l.add_blob(Arc::new(b"shared layer".to_vec()));
    let mut per_arch = Vec::new();
    for arch in ["amd64", "arm64"] {
        let own: Vec<u8> = (0..noise)
            .map(|i| (i * 31) as u8 ^ arch.as_bytes()[1])
            .collect();
        let own_size = own.len() as u64;
        let own = l.add_blob(Arc::new(own));
        let layer = |digest, size| LayerRef {
            digest,
            diff_id: digest,
            size,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        };
        let d = l
            .add_image(&Image {
                platform: platform_for(arch.parse().unwrap()),
                config: Config::default(),
                created: "1970-01-01T00:00:00Z".to_string(),
                layers: vec![layer(shared, 12), layer(own, own_size)],
                history: Vec::new(),
                annotations: BTreeMap::new(),
            })
            .unwrap();
        l.tag(&d, &format!("latest-{arch}"));
        per_arch.push(d);
    }
    let i = l.add_index(&per_arch, BTreeMap::new());
    l.tag(&i, "latest");
    l.write_dir(dir).unwrap();
    l
}

fn anonymous() -> PushOptions {
    PushOptions {
        insecure: true,
        ..PushOptions::default()
    }
}

#[test]
fn a_push_sends_the_layouts_bytes_and_a_second_finds_them_there() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    let l = layout(&dir, 100);
    let fake = Fake::start(Auth::Anonymous, |_| None);
    let r = push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap();
    // A shared layer, two own layers, two configs; each blob in one PUT.
    assert_eq!((r.uploaded.blobs, r.skipped.blobs, r.chunked), (5, 0, 0));
    assert_eq!(fake.count("PATCH", ""), 0);
    let tags: Vec<&str> = r.tags.iter().map(|t| t.tag.as_str()).collect();
    assert_eq!(tags, ["latest", "latest-amd64", "latest-arm64"]);
    for t in &r.tags {
        let bytes = fake.manifest("base", &t.tag).unwrap();
        assert_eq!(&bytes[..], &l.blob(&t.digest).unwrap()[..], "{}", t.tag);
        assert_eq!(Digest::of(&bytes), t.digest);
    }
    let reader = crate::oci::LayoutReader::open(&dir).unwrap();
    for image in reader.resolve("latest").unwrap().images {
        for b in std::iter::once(&image.config).chain(&image.layers) {
            assert_eq!(
                fake.blob("base", &b.digest).unwrap(),
                reader.read_blob(b).unwrap()
            );
        }
    }

    // The registry has everything: blobs are found by HEAD, nothing is uploaded.
    let posts = fake.count("POST", "");
    let r = push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap();
    assert_eq!((r.uploaded.blobs, r.skipped.blobs), (0, 5));
    assert_eq!(fake.count("POST", ""), posts);
}

#[test]
fn large_blobs_go_in_ordered_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 1000);
    let fake = Fake::start(Auth::Anonymous, |_| None);
    let opts = PushOptions {
        chunk_size: 400,
        ..anonymous()
    };
    let r = push_with(&http(), &dir, &fake.target("base"), &opts).unwrap();
    // The two 1000-byte layers go in pieces, the small configs and the shared layer whole.
    assert_eq!((r.uploaded.blobs, r.chunked), (5, 2), "{r:?}");
    let ranges: Vec<String> = fake
        .server
        .requests()
        .iter()
        .filter(|q| q.method == "PATCH" && q.body.len() == 400)
        .filter_map(|q| q.header("content-range").map(str::to_owned))
        .collect();
    assert!(
        ranges.contains(&"0-399".to_owned()) && ranges.contains(&"400-799".to_owned()),
        "{ranges:?}"
    );
    // The fake checked each blob's digest as it closed the upload; they are all there.
    let reader = crate::oci::LayoutReader::open(&dir).unwrap();
    for image in reader.resolve("latest").unwrap().images {
        for b in &image.layers {
            assert_eq!(
                fake.blob("base", &b.digest).unwrap(),
                reader.read_blob(b).unwrap()
            );
        }
    }
}

#[test]
fn a_sibling_repository_mounts_what_the_first_push_uploaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 100);
    let fake = Fake::start(Auth::Anonymous, |_| None);
    let opts = anonymous();
    push_with(&http(), &dir, &fake.target("one"), &opts).unwrap();
    let r = push_with(&http(), &dir, &fake.target("two"), &opts.clone()).unwrap();
    assert_eq!((r.mounted.blobs, r.uploaded.blobs), (5, 0), "{r:?}");
    assert_eq!(fake.count("POST", "mount=sha256"), 5);
}

#[test]
fn a_bearer_registry_gets_one_token_for_the_whole_push() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 100);
    let fake = Fake::start(Auth::Bearer("u", "p"), |_| None);
    let opts = PushOptions {
        credentials: Some(Credentials {
            username: "u".into(),
            password: "p".into(),
            source: "test".into(),
        }),
        ..anonymous()
    };
    push_with(&http(), &dir, &fake.target("private/base"), &opts).unwrap();
    let tokens: Vec<Request> = fake
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path() == "/token")
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "fetched at the API check, before the parallel uploads"
    );
    assert_eq!(tokens[0].query("service").as_deref(), Some("fake"));
    assert_eq!(
        tokens[0].query("scope").as_deref(),
        Some("repository:private/base:pull,push")
    );
    assert_eq!(
        tokens[0].header("authorization"),
        Some(basic("u", "p").as_str())
    );
    assert!(fake.manifest("private/base", "latest").is_some());

    // Wrong credentials: the token service's 401 is the error, and says whose.
    let opts = PushOptions {
        credentials: Some(Credentials {
            password: "wrong".into(),
            ..opts.credentials.clone().unwrap()
        }),
        ..opts
    };
    let e = push_with(&http(), &dir, &fake.target("private/base"), &opts).unwrap_err();
    assert!(matches!(e, PushError::Unauthorized { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("/token") && e.contains("refused user u (from test)"),
        "{e}"
    );
}

#[test]
fn refused_or_missing_credentials_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 10);
    let fake = Fake::start(Auth::Basic("u", "p"), |_| None);

    // Found through the one lookup: the environment level.
    let login = Login {
        env_username: Some("u".into()),
        env_password: Some("p".into()),
        ..Login::default()
    };
    let opts = PushOptions {
        login: login.clone(),
        ..anonymous()
    };
    push_with(&http(), &dir, &fake.target("base"), &opts).unwrap();

    let opts = PushOptions {
        login: Login {
            env_password: Some("wrong".into()),
            ..login
        },
        ..anonymous()
    };
    let e = push_with(&http(), &dir, &fake.target("base"), &opts)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 401") && e.contains("refused user u (from $DEBLESS_REGISTRY_USER)"),
        "{e}"
    );

    let e = push_with(&http(), &dir, &fake.target("base"), &anonymous())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("API check")
            && e.contains("none were found")
            && e.contains(&format!("docker login {}", fake.server.host())),
        "{e}"
    );
}

#[test]
fn server_errors_are_retried_and_client_errors_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 100);
    // The first manifest PUT and the first blob PUT answer 503.
    let failed = Arc::new(Mutex::new(BTreeSet::new()));
    let f = failed.clone();
    let fake = Fake::start(Auth::Anonymous, move |r| {
        let kind = match (r.method.as_str(), r.target.contains("/manifests/")) {
            ("PUT", true) => "manifest",
            ("PUT", false) => "blob",
            _ => return None,
        };
        f.lock()
            .unwrap()
            .insert(kind)
            .then(|| Reply::status(503).body(errors("UNAVAILABLE", "busy")))
    });
    push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap();
    assert_eq!(failed.lock().unwrap().len(), 2);

    // A 400 is an answer, not a hiccup: one try.
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let fake = Fake::start(Auth::Anonymous, move |r| {
        (r.method == "PUT" && r.target.contains("/manifests/")).then(|| {
            c.fetch_add(1, Ordering::SeqCst);
            Reply::status(400).body(errors("MANIFEST_INVALID", "no"))
        })
    });
    let e = push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap_err();
    assert!(matches!(e, PushError::Status { status: 400, .. }), "{e}");
    assert!(
        e.to_string().contains("HTTP 400: MANIFEST_INVALID: no"),
        "{e}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    // A 503 that never ends: the retries are spent, then it is the error.
    let fake = Fake::start(Auth::Anonymous, |r| {
        (r.method == "PUT" && r.target.contains("/manifests/"))
            .then(|| Reply::status(503).body(errors("UNAVAILABLE", "storage is down")))
    });
    let e = push_with(&http(), &dir, &fake.target("down"), &anonymous())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HTTP 503: UNAVAILABLE: storage is down") && e.contains("try again later"),
        "{e}"
    );
    assert_eq!(fake.count("PUT", "/manifests/"), 1 + FAST.retries as usize);
}

#[test]
fn a_registry_that_stores_other_bytes_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 10);
    let liar = format!("sha256:{}", "0".repeat(64));
    let fake = Fake::start(Auth::Anonymous, move |r| {
        (r.method == "PUT" && r.target.contains("/manifests/"))
            .then(|| Reply::status(201).header("Docker-Content-Digest", liar.clone()))
    });
    let e = push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap_err();
    assert!(matches!(e, PushError::DigestMismatch { .. }), "{e}");
    // Never retried: the same bytes would come back altered again.
    assert_eq!(fake.count("PUT", "/manifests/"), 1);
    assert!(
        e.to_string().contains("Docker-Content-Digest sha256:0000"),
        "{e}"
    );
}

#[test]
fn the_registry_honours_the_stall_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 10);
    let fake = Fake::start(Auth::Anonymous, |r| {
        (r.path() == "/v2/").then(|| Reply::status(200).stall_headers(Duration::from_secs(5)))
    });
    let http = Http::with_timeout(Duration::from_secs(1))
        .unwrap()
        .with_retry(RetryPolicy::with_retries(0));
    let start = std::time::Instant::now();
    let opts = PushOptions {
        retries: 0,
        ..anonymous()
    };
    let e = push_with(&http, &dir, &fake.target("base"), &opts).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, PushError::Http { .. }), "{e}");
    let line = error_line(&e);
    assert!(
        line.contains("API check") && line.contains("timed out"),
        "{line}"
    );
}
