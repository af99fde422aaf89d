//! Digests are a contract with whoever pins an image: they move when the image's content
//! does, and only then. A signed fake archive on 127.0.0.1 is re-published the ways a
//! real one moves (a new package for a new image, a newer Release date with nothing else
//! changed, one package bumped), the project is re-pinned and rebuilt, and every layout's
//! index.json (which names every tag's manifest or index digest) is compared.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Archive, DebFile, Gpg, Pkg, Project, Server, SuiteOpts, build_deb, pkg, stderr};

const MANIFEST: &str = r#"
distro = "test"
codename = "test"
architectures = ["amd64", "arm64"]
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
[generate.users]
"#;

const BASE: &str = r#"
parent = "static"
distros = ["test"]
[packages.libc6]
"#;

const APP: &str = r#"
parent = "base"
distros = ["test"]
[config]
entrypoint = ["/usr/bin/app"]
[packages.app]
"#;

/// The archive's packages for one architecture: `app` at `app_version`, and `extra` (for
/// a new image) when asked.
fn packages(arch: &str, app_version: &str, extra: bool) -> Vec<Pkg> {
    let file = |s: &str| DebFile::File(s.as_bytes().to_vec(), 0o644);
    let deb = |name: &str, version: &str, files: &[(&str, DebFile)]| {
        let mut p = pkg(name, version, arch, &[]);
        p.deb = Some(build_deb(name, version, arch, files, "xz"));
        p
    };
    let mut out = vec![
        deb(
            "base-files",
            "13.8",
            &[
                ("etc/debian_version", file("13.8\n")),
                ("usr/lib/os-release", file("ID=debian\n")),
            ],
        ),
        deb(
            "libc6",
            "2.41-12",
            &[("usr/lib/libc.so.6", file(&format!("libc {arch}")))],
        ),
        deb(
            "app",
            app_version,
            &[("usr/bin/app", file(&format!("app {app_version}")))],
        ),
    ];
    if let Some(p) = out.iter_mut().find(|p| p.name == "app") {
        p.fields = vec![("Depends".into(), "libc6".into())];
    }
    if extra {
        out.push(deb("extra", "1", &[("usr/bin/extra", file("extra"))]));
    }
    out
}

struct Fixture {
    gpg: Gpg,
    key: String,
    archive: Archive,
    _root: tempfile::TempDir,
    project: Project,
    server: Server,
}

impl Fixture {
    fn new() -> Fixture {
        let gpg = Gpg::new();
        let key = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let root = tempfile::tempdir().unwrap();
        let archive = Archive {
            root: root.path().to_owned(),
        };
        let project = Project::new();
        project.write("snapshots/keys/main.asc", &gpg.export(&key));
        project.write("snapshots/test.toml", &MANIFEST.replace("MAIN_FPR", &key));
        project.write("rules/static.toml", STATIC);
        project.write("rules/base.toml", BASE);
        project.write("rules/app.toml", APP);
        project.write(
            "rules/variants/nonroot.toml",
            "distros = ['test']\n[config]\nuser = '65532'\n",
        );
        let server = Server::serve(root.path());
        let f = Fixture {
            gpg,
            key,
            archive,
            _root: root,
            project,
            server,
        };
        f.publish("1.0", false, &SuiteOpts::default());
        f
    }

    /// (Re-)publish the archive: every package, signed, with the Release `opts` give.
    fn publish(&self, app_version: &str, extra: bool, opts: &SuiteOpts) {
        let per_arch: Vec<(&str, Vec<Pkg>)> = ["amd64", "arm64"]
            .iter()
            .map(|a| (*a, packages(a, app_version, extra)))
            .collect();
        self.archive
            .write_suite("debian", "test", &per_arch, &self.gpg, &self.key, opts);
    }

    /// Run debless with this fixture's mirror and cache; panic unless it succeeds.
    fn run(&self, args: &[&str]) -> std::process::Output {
        let cache = self.project.path().join("cache");
        let mirror = self.server.url() + "debian";
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--mirror", &mirror, "--cache-dir", cache.to_str().unwrap()]);
        let o = self.project.run(&a);
        assert!(o.status.success(), "{args:?} failed: {}", stderr(&o));
        o
    }

    fn pin(&self, extra: &[&str]) {
        let mut args = vec!["pin", "--distro", "test"];
        args.extend(extra);
        self.run(&args);
    }

    /// Build every image into `out` and return the `--json` summary.
    fn build(&self, out: &str) -> serde_json::Value {
        let dir = self.out(out);
        let o = self.run(&[
            "build",
            "--distro",
            "test",
            "--json",
            "--out",
            dir.to_str().unwrap(),
        ]);
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn out(&self, name: &str) -> PathBuf {
        self.project.path().join(name)
    }

    fn lock(&self) -> String {
        self.project.read("snapshots/test.lock")
    }
}

/// Layout name -> its index.json bytes.
fn indexes(out: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("index.json").is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(p.join("index.json")).unwrap(),
            )
        })
        .collect()
}

/// ref.name -> digest in an index.json.
fn tags(bytes: &[u8]) -> BTreeMap<String, String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn adding_an_unrelated_image_moves_no_other_digest() {
    let f = Fixture::new();
    f.pin(&[]);
    let out = f.build("out");
    assert_eq!(out["layers"]["made"], 6, "{out}");
    let before = indexes(&f.out("out"));
    let lock_before = f.lock();
    assert_eq!(before.len(), 3, "{:?}", before.keys());

    // A new image with a package only it uses, pinned against the same archive (now
    // carrying that package: its Release and the lock's digest change).
    f.publish("1.0", true, &SuiteOpts::default());
    f.project.write(
        "rules/extra.toml",
        "parent = 'base'\ndistros = ['test']\n[packages.extra]\n",
    );
    f.pin(&[]);
    assert_ne!(f.lock(), lock_before, "the lock moved");
    f.build("out");
    let after = indexes(&f.out("out"));
    assert!(after.contains_key("extra-test"));
    for (name, bytes) in &before {
        assert_eq!(
            &after[name], bytes,
            "{name}: index.json moved although its images did not change"
        );
    }
}

#[test]
fn a_newer_release_date_moves_nothing_and_every_layer_is_cached() {
    let f = Fixture::new();
    f.pin(&[]);
    f.build("out");
    let before = indexes(&f.out("out"));
    let lock_before = f.lock();

    // The archive publishes a new Release a day later with every package unchanged (the
    // security suite does this almost daily).
    f.publish(
        "1.0",
        false,
        &SuiteOpts {
            date: "Sun, 22 Nov 2026 09:15:44 UTC".into(),
            ..SuiteOpts::default()
        },
    );
    f.pin(&[]);
    let lock_after = f.lock();
    assert!(
        lock_after.contains("timestamp = \"2026-11-22T09:15:44Z\""),
        "{lock_after}"
    );
    assert_ne!(lock_after, lock_before);
    let summary = f.build("out2");
    assert_eq!(indexes(&f.out("out2")), before, "a digest moved");
    assert_eq!(
        summary["layers"]["made"], 0,
        "every layer should come from the layer cache: {summary}"
    );
}

#[test]
fn a_package_bump_moves_exactly_the_images_holding_it() {
    let f = Fixture::new();
    f.pin(&[]);
    f.build("out");
    let before = indexes(&f.out("out"));
    f.publish("1.1", false, &SuiteOpts::default());
    f.pin(&["--upgrade", "app"]);
    f.build("out");
    let after = indexes(&f.out("out"));
    assert_eq!(after["static-test"], before["static-test"]);
    assert_eq!(after["base-test"], before["base-test"]);
    assert_ne!(after["app-test"], before["app-test"]);
    // Every tag of app moved: each holds the new app.
    let (old, new) = (tags(&before["app-test"]), tags(&after["app-test"]));
    assert_eq!(old.len(), 6, "{old:?}");
    for (tag, digest) in &old {
        assert_ne!(&new[tag], digest, "app-test:{tag} did not move");
    }
}

#[test]
fn created_and_generated_files_take_the_time_of_the_layers_content() {
    let f = Fixture::new();
    f.pin(&[]);
    f.build("out");
    let layout = f.out("out").join("static-test");
    let index = std::fs::read(layout.join("index.json")).unwrap();
    let blob = |d: &str| -> Vec<u8> {
        std::fs::read(
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let json = |d: &str| -> serde_json::Value { serde_json::from_slice(&blob(d)).unwrap() };
    let manifest = json(&tags(&index)["latest-amd64"]);
    let config = json(manifest["config"]["digest"].as_str().unwrap());
    // The test .debs are made at common::DEB_EPOCH; the lock's timestamp (the Release
    // date, 2026-11-21) appears nowhere.
    assert_eq!(config["created"], "2025-11-20T00:00:00Z");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2025-11-20T00:00:00Z"
    );
    // The generated /etc/passwd in the static layer carries the same time.
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
    let mtime = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("etc/passwd"))
        .map(|e| e.header().mtime().unwrap())
        .expect("static has a generated /etc/passwd");
    assert_eq!(mtime as i64, common::DEB_EPOCH);
}

impl Fixture {
    /// Build `extra` (images, --arch, --variant...) into `out`; the `--json` summary.
    fn build_some(&self, out: &str, extra: &[&str]) -> serde_json::Value {
        let dir = self.out(out);
        let mut args = vec![
            "build",
            "--distro",
            "test",
            "--json",
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend(extra);
        let o = self.run(&args);
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// File name -> bytes of every file in a directory.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_partial_build_keeps_every_tag_and_document_it_did_not_rebuild() {
    let f = Fixture::new();
    f.pin(&[]);
    f.build("out");
    let layout = f.out("out").join("app-test");
    let spdx = f.out("out").join("app-test.spdx");
    let full_index = std::fs::read(layout.join("index.json")).unwrap();
    let full_spdx = files(&spdx);
    assert_eq!(full_spdx.len(), 6, "{:?}", full_spdx.keys());

    // One tag on one architecture, nothing changed: the layout is exactly as before,
    // the other tags, the arm64 member of `latest` and their documents included.
    let s = f.build_some("out", &["app", "--arch", "amd64", "--variant", "latest"]);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        full_index
    );
    assert_eq!(files(&spdx), full_spdx);
    let kept: Vec<&str> = s["tag_changes"]["app-test"]["kept"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        kept,
        ["latest-arm64", "nonroot", "nonroot-amd64", "nonroot-arm64"]
    );
    assert_eq!(
        s["tag_changes"]["app-test"]["removed"],
        serde_json::json!([])
    );

    // A bump rebuilt on amd64 only: latest-amd64 and latest move, latest's index keeps the
    // old arm64 member; nonroot is untouched.
    f.publish("1.1", false, &SuiteOpts::default());
    f.pin(&["--upgrade", "app"]);
    let s = f.build_some("out", &["app", "--arch", "amd64", "--variant", "latest"]);
    let (old, new) = (
        tags(&full_index),
        tags(&std::fs::read(layout.join("index.json")).unwrap()),
    );
    assert_eq!(new.len(), 6, "{new:?}");
    for t in ["latest-arm64", "nonroot", "nonroot-amd64", "nonroot-arm64"] {
        assert_eq!(new[t], old[t], "{t} moved");
    }
    for t in ["latest", "latest-amd64"] {
        assert_ne!(new[t], old[t], "{t} did not move");
    }
    let replaced = &s["tag_changes"]["app-test"]["replaced"];
    assert_eq!(replaced, &serde_json::json!(["latest", "latest-amd64"]));
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(new["latest"].trim_start_matches("sha256:")),
        )
        .unwrap(),
    )
    .unwrap();
    let members: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["platform"]["architecture"].as_str().unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("amd64", new["latest-amd64"].as_str()),
            ("arm64", old["latest-arm64"].as_str())
        ]
    );
    // Every document is there: the kept ones as they were, the rebuilt ones new.
    let docs = files(&spdx);
    assert_eq!(docs.len(), 6);
    assert_eq!(docs["nonroot.spdx.json"], full_spdx["nonroot.spdx.json"]);
    assert_ne!(
        docs["latest-amd64.spdx.json"],
        full_spdx["latest-amd64.spdx.json"]
    );
}

#[test]
fn only_a_whole_image_build_removes_tags_the_rules_no_longer_define() {
    let f = Fixture::new();
    f.pin(&[]);
    f.build("out");
    let layout = f.out("out").join("app-test");
    std::fs::remove_file(f.project.path().join("rules/variants/nonroot.toml")).unwrap();
    let s = f.build_some("out", &["app", "--arch", "amd64"]);
    let after = tags(&std::fs::read(layout.join("index.json")).unwrap());
    assert!(
        after.contains_key("nonroot-amd64"),
        "a partial build dropped a tag"
    );
    assert_eq!(
        s["tag_changes"]["app-test"]["removed"],
        serde_json::json!([])
    );
    let s = f.build_some("out", &["app"]);
    let after = tags(&std::fs::read(layout.join("index.json")).unwrap());
    let names: Vec<&str> = after.keys().map(String::as_str).collect();
    assert_eq!(names, ["latest", "latest-amd64", "latest-arm64"]);
    assert_eq!(
        s["tag_changes"]["app-test"]["removed"],
        serde_json::json!(["nonroot", "nonroot-amd64", "nonroot-arm64"])
    );
    let docs: Vec<String> = files(&f.out("out").join("app-test.spdx"))
        .into_keys()
        .collect();
    assert_eq!(
        docs,
        [
            "latest-amd64.spdx.json",
            "latest-arm64.spdx.json",
            "latest.spdx.json"
        ]
    );
}

#[test]
fn a_partial_build_never_replaces_an_archive_holding_more() {
    let f = Fixture::new();
    f.pin(&[]);
    f.build_some("out", &["--format", "oci-archive"]);
    let archive = f.out("out").join("app-test.tar");
    let before = std::fs::read(&archive).unwrap();
    let cache = f.project.path().join("cache");
    let mirror = f.server.url() + "debian";
    let out = f.out("out");
    let o = f.project.run(&[
        "build",
        "--distro",
        "test",
        "--format",
        "oci-archive",
        "--arch",
        "amd64",
        "--out",
        out.to_str().unwrap(),
        "--mirror",
        &mirror,
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("app-test.tar: a build of some tags or architectures (--arch/--variant) would replace this archive with fewer"),
        "{err}"
    );
    assert_eq!(std::fs::read(&archive).unwrap(), before);
}
