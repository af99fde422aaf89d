//! Signed images end to end: a hermetic build (real .debs from a signed fake archive on
//! 127.0.0.1) writes provenance next to its layout; `debless push --sign-key` pushes it to
//! a real `docker-registry` on 127.0.0.1 with a cosign signature and the signed provenance;
//! openssl (not debless) checks the signature; `debless verify` accepts the image, also by
//! rebuilding it, and refuses a tampered layer, a swapped provenance, a wrong key, an edited
//! lock and an image its provenance does not make, each with one `error:` line.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

use common::registry::Registry;
use common::{Archive, DebFile, Gpg, Pkg, Project, Server, SuiteOpts, build_deb, pkg, stderr};

const MANIFEST: &str = r#"
distro = "test"
codename = "test"
architectures = ["amd64"]
merged_usr = true

[[suites]]
archive = "debian"
suite = "test"

[[keys]]
file = "keys/main.asc"
fingerprint = "MAIN_FPR"
"#;

const STATIC: &str = r#"
distros = ["test"]
[packages.base-files]
"#;

/// The app image; `EXCLUDE` is replaced by an exclusion (or nothing).
const APP: &str = r#"
parent = "static"
distros = ["test"]
[config]
entrypoint = ["/usr/bin/app"]
[packages.app]
EXCLUDE
"#;

fn packages(arch: &str) -> Vec<Pkg> {
    let file = |s: &str, mode| DebFile::File(s.as_bytes().to_vec(), mode);
    let deb = |name: &str, files: &[(&str, DebFile)]| {
        let mut p = pkg(name, "1.0", arch, &[]);
        p.deb = Some(build_deb(name, "1.0", arch, files, "xz"));
        p
    };
    vec![
        deb(
            "base-files",
            &[
                ("etc/debian_version", file("13\n", 0o644)),
                ("tmp", DebFile::Dir(0o1777)),
            ],
        ),
        deb(
            "app",
            &[
                ("usr/bin/app", file("#!/bin/sh\necho app\n", 0o755)),
                ("usr/share/app/a.txt", file("a\n", 0o644)),
                ("usr/share/app/b.txt", file("b\n", 0o644)),
            ],
        ),
    ]
}

struct Fixture {
    _gpg: Gpg,
    _root: tempfile::TempDir,
    project: Project,
    server: Server,
    reg: Registry,
}

impl Fixture {
    /// A pinned project and a registry; `None` (SKIPPED) without docker-registry.
    fn new() -> Option<Fixture> {
        let reg = Registry::start(None)?;
        if !common::require_tool("openssl", "apt-get install openssl") {
            return None;
        }
        let gpg = Gpg::new();
        let key = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let root = tempfile::tempdir().unwrap();
        let archive = Archive {
            root: root.path().to_owned(),
        };
        archive.write_suite(
            "debian",
            "test",
            &[("amd64", packages("amd64"))],
            &gpg,
            &key,
            &SuiteOpts::default(),
        );
        let project = Project::new();
        project.write("snapshots/keys/main.asc", &gpg.export(&key));
        project.write("snapshots/test.toml", &MANIFEST.replace("MAIN_FPR", &key));
        project.write("rules/static.toml", STATIC);
        project.write("rules/app.toml", &APP.replace("EXCLUDE", ""));
        let server = Server::serve(root.path());
        let f = Fixture {
            _gpg: gpg,
            _root: root,
            project,
            server,
            reg,
        };
        let o = f.debless(&["pin", "--distro", "test"], true);
        assert!(o.status.success(), "pin: {}", stderr(&o));
        Some(f)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.project.path().join(rel)
    }

    /// `debless -C PROJECT ARGS` (with the fake archive as mirror when `mirror`), no
    /// credentials or mirrors from the environment.
    fn debless(&self, args: &[&str], mirror: bool) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_debless"));
        cmd.arg("-C").arg(self.project.path()).args(args);
        if mirror {
            cmd.arg("--mirror").arg(self.server.url() + "debian");
        }
        cmd.env("HOME", self.project.path())
            .env_remove("DEBLESS_MIRRORS")
            .env_remove("DEBLESS_SNAPSHOT_SERVICE")
            .env_remove("COSIGN_PASSWORD")
            .env_remove("DOCKER_CONFIG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DEBLESS_REGISTRY_USER")
            .env_remove("DEBLESS_REGISTRY_PASSWORD")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str], mirror: bool) -> String {
        let o = self.debless(args, mirror);
        assert!(
            o.status.success(),
            "debless {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The one `error:` line of a failed run.
    fn fails(&self, args: &[&str]) -> String {
        let o = self.debless(args, false);
        assert!(!o.status.success(), "debless {args:?} succeeded");
        let e = stderr(&o);
        let lines: Vec<&str> = e.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line: {e}");
        assert!(lines[0].starts_with("error: "), "{e}");
        eprintln!("debless {}: {}", args[0], lines[0]);
        lines[0].to_owned()
    }

    /// Build into `out/`; the app's layout.
    fn build(&self, out: &str) -> PathBuf {
        let o = self.path(out);
        let cache = self.path("cache");
        self.ok(
            &[
                "build",
                "--distro",
                "test",
                "--out",
                o.to_str().unwrap(),
                "--cache-dir",
                cache.to_str().unwrap(),
            ],
            true,
        );
        o.join("app-test")
    }

    fn keygen(&self, prefix: &str) -> (PathBuf, PathBuf) {
        let p = self.path(prefix);
        self.ok(
            &["keygen", "--output-key-prefix", p.to_str().unwrap()],
            false,
        );
        (p.with_extension("key"), p.with_extension("pub"))
    }

    fn push(&self, layout: &Path, key: &Path, repo: &str) {
        let target = format!("{}/{repo}", self.reg.host());
        self.ok(
            &[
                "push",
                layout.to_str().unwrap(),
                &target,
                "--insecure",
                "--sign-key",
                key.to_str().unwrap(),
            ],
            false,
        );
    }

    /// A manifest of the registry, as bytes.
    fn manifest(&self, repo: &str, reference: &str) -> Option<Vec<u8>> {
        let r = reqwest::blocking::Client::new()
            .get(format!(
                "http://{}/v2/{repo}/manifests/{reference}",
                self.reg.host()
            ))
            .header(
                "Accept",
                "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
            )
            .send()
            .unwrap();
        r.status().is_success().then(|| r.bytes().unwrap().to_vec())
    }

    fn put_manifest(&self, repo: &str, reference: &str, bytes: &[u8]) {
        let media_type = json(bytes)["mediaType"].as_str().unwrap().to_owned();
        let r = reqwest::blocking::Client::new()
            .put(format!(
                "http://{}/v2/{repo}/manifests/{reference}",
                self.reg.host()
            ))
            .header("Content-Type", media_type)
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert!(r.status().is_success(), "PUT {reference}: {}", r.status());
    }

    fn blob(&self, repo: &str, digest: &str) -> Vec<u8> {
        reqwest::blocking::get(format!(
            "http://{}/v2/{repo}/blobs/{digest}",
            self.reg.host()
        ))
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec()
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The layout's tag -> digest.
fn tag_digest(layout: &Path, tag: &str) -> String {
    let index = json(&std::fs::read(layout.join("index.json")).unwrap());
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .unwrap()
}

/// `sha256:<hex>` -> `sha256-<hex>`.
fn tag_of(digest: &str) -> String {
    digest.replace(':', "-")
}

#[test]
fn a_signed_push_verifies_with_openssl_and_debless_and_rebuilds_identically() {
    let Some(f) = Fixture::new() else { return };
    let layout = f.build("out");
    let index = tag_digest(&layout, "latest");
    let amd64 = tag_digest(&layout, "latest-amd64");

    // The provenance is next to the layout, one statement per tag, and no image refers to
    // it: the layout holds nothing but the image (the digests are what a build without
    // provenance made).
    let prov = f.path("out/app-test.provenance");
    for tag in ["latest", "latest-amd64"] {
        let s = json(&std::fs::read(prov.join(format!("{tag}.intoto.json"))).unwrap());
        assert_eq!(s["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(s["predicateType"], "https://slsa.dev/provenance/v1");
        let want = if tag == "latest" { &index } else { &amd64 };
        assert_eq!(
            format!(
                "sha256:{}",
                s["subject"][0]["digest"]["sha256"].as_str().unwrap()
            ),
            *want
        );
        let ext = &s["predicate"]["buildDefinition"]["externalParameters"];
        assert_eq!(ext["distro"], "test");
        assert_eq!(ext["images"][0], "app");
        assert_eq!(ext["architectures"][0], "amd64");
        let deps = s["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        // base-files, app, and debless itself.
        assert_eq!(deps.len(), 3, "{deps:?}");
        assert!(
            deps.iter()
                .any(|d| d["uri"].as_str().unwrap().starts_with(&f.server.url())),
            "{deps:?}"
        );
    }
    let blobs = std::fs::read_dir(layout.join("blobs/sha256")).unwrap();
    for b in blobs {
        let bytes = std::fs::read(b.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("in-toto"),
            "the layout holds no provenance"
        );
    }

    let (key, public) = f.keygen("cosign");
    f.push(&layout, &key, "app-test");
    // The signed envelope is written beside the statement.
    assert!(prov.join("latest.intoto.jsonl").is_file());

    // openssl, not debless, checks the cosign signature of the index: the payload names
    // the pushed digest, and the signature annotation verifies over the payload's bytes.
    let sig = json(
        &f.manifest("app-test", &format!("{}.sig", tag_of(&index)))
            .unwrap(),
    );
    let layer = &sig["layers"][0];
    let payload = f.blob("app-test", layer["digest"].as_str().unwrap());
    let p = json(&payload);
    assert_eq!(p["critical"]["image"]["docker-manifest-digest"], *index);
    assert_eq!(p["critical"]["type"], "cosign container image signature");
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("payload"), &payload).unwrap();
    std::fs::write(scratch.path().join("sig"), &der).unwrap();
    let openssl = |payload: &str| {
        Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(scratch.path().join("sig"))
            .arg(scratch.path().join(payload))
            .output()
            .unwrap()
    };
    let o = openssl("payload");
    assert!(o.status.success(), "openssl: {}", stderr(&o));
    let mut other = payload.clone();
    other[10] ^= 1;
    std::fs::write(scratch.path().join("other"), &other).unwrap();
    assert!(
        !openssl("other").status.success(),
        "openssl refuses other bytes"
    );

    // debless verify: by tag and by digest, with the lock the image was built from.
    let image = format!("{}/app-test:latest", f.reg.host());
    let lock = f.path("snapshots/test.lock");
    let out = f.ok(
        &[
            "verify",
            &image,
            "--key",
            public.to_str().unwrap(),
            "--insecure",
            "--lock",
            lock.to_str().unwrap(),
        ],
        false,
    );
    assert!(
        out.contains(&format!("verified {}/app-test@{index}", f.reg.host())),
        "{out}"
    );
    let by_digest = format!("{}/app-test@{amd64}", f.reg.host());
    f.ok(
        &[
            "verify",
            &by_digest,
            "--key",
            public.to_str().unwrap(),
            "--insecure",
        ],
        false,
    );

    // --rebuild with an empty cache and no --mirror: the .debs come from the mirror the
    // provenance names, and the rebuilt index is the pushed one.
    let cache = f.path("rebuild-cache");
    let out = f.ok(
        &[
            "verify",
            &image,
            "--key",
            public.to_str().unwrap(),
            "--insecure",
            "--rebuild",
            "--cache-dir",
            cache.to_str().unwrap(),
        ],
        false,
    );
    assert!(
        out.contains(&format!(
            "rebuild: identical: app-test:latest is {index} again"
        )),
        "{out}"
    );
    assert!(out.contains("2 downloaded"), "{out}");
}

#[test]
fn tampering_a_wrong_key_and_an_edited_lock_each_fail_with_one_line() {
    let Some(f) = Fixture::new() else { return };
    let layout = f.build("out");
    let index = tag_digest(&layout, "latest");
    let amd64 = tag_digest(&layout, "latest-amd64");
    let (key, public) = f.keygen("cosign");
    let (_, stranger) = f.keygen("other");
    f.push(&layout, &key, "app-test");
    let image = format!("{}/app-test:latest", f.reg.host());
    let verify = |image: &str, public: &Path, extra: &[&str]| {
        let mut args = vec![
            "verify",
            image,
            "--key",
            public.to_str().unwrap(),
            "--insecure",
        ];
        args.extend(extra);
        f.fails(&args)
    };

    // A wrong key.
    let e = verify(&image, &stranger, &[]);
    assert!(e.contains("signature"), "{e}");

    // An edited lock: the same packages, one more comment line.
    let edited = f.path("edited.lock");
    let mut text = f.project.read("snapshots/test.lock");
    text.push_str("# edited\n");
    std::fs::write(&edited, text).unwrap();
    let e = verify(&image, &public, &["--lock", edited.to_str().unwrap()]);
    assert!(e.contains("lock"), "{e}");

    // A swapped provenance: the index's genuine, signed statement attached to the amd64
    // manifest (its `.att` tag and its referrers). The signature of amd64 still holds.
    let by_digest = format!("{}/app-test@{amd64}", f.reg.host());
    for suffix in [".att", ""] {
        let from = f
            .manifest("app-test", &format!("{}{suffix}", tag_of(&index)))
            .unwrap_or_else(|| panic!("{suffix} of the index"));
        f.put_manifest("app-test", &format!("{}{suffix}", tag_of(&amd64)), &from);
    }
    let e = verify(&by_digest, &public, &[]);
    assert!(e.contains("describes another image"), "{e}");

    // A layer altered in the registry's storage (same length, one bit).
    let m = json(&f.manifest("app-test", &amd64).unwrap());
    let layer = m["layers"][1]["digest"].as_str().unwrap().to_owned();
    let file = f.reg.blob_file(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&file).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let e = verify(&image, &public, &[]);
    assert!(e.contains(&layer), "{e}");
}

#[test]
fn a_rebuild_that_differs_names_the_first_differing_layer_and_file() {
    let Some(f) = Fixture::new() else { return };
    // What the rules say now (the app with a.txt and b.txt)...
    let honest = f.build("honest");
    // ...and an image made from other rules (without a.txt), pushed with a provenance that
    // claims the first rules: signed, and verified up to the rebuild.
    f.project.write(
        "rules/app.toml",
        &APP.replace(
            "EXCLUDE",
            "paths = [\"/usr/bin/app\", \"/usr/share/app/b.txt\"]",
        ),
    );
    let layout = f.build("out");
    let index = tag_digest(&layout, "latest");
    assert_ne!(index, tag_digest(&honest, "latest"));
    let claims = |dir: &Path, tag: &str| {
        let file = dir
            .with_file_name("app-test.provenance")
            .join(format!("{tag}.intoto.json"));
        (file.clone(), json(&std::fs::read(file).unwrap()))
    };
    for tag in ["latest", "latest-amd64"] {
        let (file, mut lie) = claims(&layout, tag);
        let (_, truth) = claims(&honest, tag);
        let ext = "/predicate/buildDefinition/externalParameters/rules";
        *lie.pointer_mut(ext).unwrap() = truth.pointer(ext).unwrap().clone();
        std::fs::write(file, serde_json::to_vec(&lie).unwrap()).unwrap();
    }
    let (key, public) = f.keygen("cosign");
    f.push(&layout, &key, "app-test");
    let image = format!("{}/app-test:latest", f.reg.host());
    let key_arg = public.to_str().unwrap();
    f.ok(&["verify", &image, "--key", key_arg, "--insecure"], false);
    let cache = f.path("cache");
    let e = f.fails(&[
        "verify",
        &image,
        "--key",
        key_arg,
        "--insecure",
        "--rebuild",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(
        e.contains("rebuilt app-test:latest is sha256:") && e.contains(&format!("not {index}")),
        "{e}"
    );
    assert!(e.contains("layer 2 of the linux/amd64 image"), "{e}");
    assert!(
        e.contains("first differing file: /usr/share/app/b.txt")
            && e.contains("/usr/share/app/a.txt"),
        "{e}"
    );
}
