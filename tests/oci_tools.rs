//! The layouts and archives debless writes, read by the tools people will point at them:
//! skopeo (inspect, copy) and umoci (unpack). A missing tool fails the test on CI and is a
//! loud SKIPPED elsewhere (`make deps` installs them).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use debless::layer::{Compression, Entry, EntryKind, Layer, write_layer};
use debless::oci::{Config, Descriptor, History, Image, LayerRef, Layout, platform_for};
use serde_json::Value;

const CREATED: &str = "2024-01-02T03:04:05Z";

fn file(path: &str, body: &[u8], mode: u32) -> Entry {
    Entry {
        path: path.to_string(),
        kind: EntryKind::File {
            data: Arc::new(body.to_vec()),
            link_group: None,
        },
        mode,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        origin: "test".to_string(),
    }
}

fn symlink(path: &str, target: &str) -> Entry {
    Entry {
        path: path.to_string(),
        kind: EntryKind::Symlink {
            target: target.to_string(),
        },
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        origin: "test".to_string(),
    }
}

fn long_name() -> String {
    format!("usr/share/doc/{}/{}", "p".repeat(120), "copyright")
}

fn long_target() -> String {
    format!("../share/{}", "t".repeat(120))
}

/// Base layer: a tiny root filesystem with a setuid binary, a hard link, a usr-merge symlink
/// and a name that needs PAX.
fn base_layer(c: Compression) -> Layer {
    let perl = Arc::new(b"#!perl\n".to_vec());
    let link = |path: &str| Entry {
        kind: EntryKind::File {
            data: perl.clone(),
            link_group: Some("perl".to_string()),
        },
        ..file(path, b"", 0o755)
    };
    let dirs = ["etc", "usr", "usr/bin", "usr/share", "usr/share/doc"];
    let mut entries: Vec<Entry> = dirs.iter().map(|d| Entry::dir(*d, 0, "test")).collect();
    entries.push(Entry::dir(
        format!("usr/share/doc/{}", "p".repeat(120)),
        0,
        "test",
    ));
    entries.extend([
        file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/sbin/nologin\n",
            0o644,
        ),
        file("usr/bin/su", b"\x7fELF", 0o4755),
        link("usr/bin/perl"),
        link("usr/bin/perl5.36.0"),
        symlink("bin", "usr/bin"),
        file(&long_name(), b"GPL\n", 0o644),
    ]);
    write_layer(&entries, c, CREATED_EPOCH).unwrap()
}

/// 2024-01-02T03:04:05Z, the clamp for every layer.
const CREATED_EPOCH: u64 = 1_704_164_645;

/// App layer: a file owned by nonroot and a symlink with a long target.
fn app_layer(c: Compression) -> Layer {
    let mut run = file("app/run", b"#!/bin/sh\necho hi\n", 0o755);
    run.uid = 65532;
    run.gid = 65532;
    let entries = vec![
        Entry::dir("app", 0, "test"),
        run,
        symlink("usr/bin/app", &long_target()),
    ];
    write_layer(&entries, c, CREATED_EPOCH).unwrap()
}

fn image(arch: &str, layers: &[&Layer]) -> Image {
    Image {
        platform: platform_for(arch.parse().unwrap()),
        config: Config {
            env: vec!["PATH=/usr/bin:/bin".to_string()],
            user: Some("65532".to_string()),
            working_dir: Some("/app".to_string()),
            entrypoint: Some(vec!["/app/run".to_string()]),
            cmd: Some(vec!["--help".to_string()]),
            labels: BTreeMap::from([("org.example.rule".to_string(), "app".to_string())]),
        },
        created: CREATED.to_string(),
        layers: layers.iter().map(|l| LayerRef::from(*l)).collect(),
        history: vec![
            History {
                created_by: "debless base".to_string(),
                comment: None,
                empty_layer: false,
            },
            History {
                created_by: "debless app".to_string(),
                comment: Some("rule app".to_string()),
                empty_layer: false,
            },
        ],
        annotations: BTreeMap::new(),
    }
}

/// A layout with two layers per image, an amd64 and an arm64 image (sharing the layers,
/// as a test need not cross-build), an index tagged `latest`, and per-platform tags.
struct Fixture {
    layout: Layout,
    index: Descriptor,
    amd: Descriptor,
    arm: Descriptor,
    base: Layer,
    app: Layer,
}

fn fixture(c: Compression) -> Fixture {
    let base = base_layer(c);
    let app = app_layer(c);
    let mut layout = Layout::new();
    layout.add_blob(base.blob.clone());
    layout.add_blob(app.blob.clone());
    let amd = layout.add_image(&image("amd64", &[&base, &app])).unwrap();
    let arm = layout.add_image(&image("arm64", &[&base, &app])).unwrap();
    let index = layout.add_index(&[amd.clone(), arm.clone()], BTreeMap::new());
    layout.tag(&index, "latest");
    layout.tag(&amd, "latest-amd64");
    layout.tag(&arm, "latest-arm64");
    Fixture {
        layout,
        index,
        amd,
        arm,
        base,
        app,
    }
}

fn have(tool: &str) -> bool {
    common::require_tool(tool, &format!("make deps (apt-get install {tool})"))
}

/// Run a tool, fail the test with its stderr if it fails, return its stdout.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An accept-anything signature policy, so `skopeo copy` does not depend on the host's.
fn policy(dir: &Path) -> PathBuf {
    let p = dir.join("policy.json");
    std::fs::write(&p, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    p
}

fn inspect(reference: &str) -> Value {
    serde_json::from_str(&run("skopeo", &["inspect", reference])).unwrap()
}

fn check_inspect(v: &Value, layer_digests: [&str; 2]) {
    assert_eq!(v["Architecture"], "amd64", "{v}");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Created"], CREATED);
    assert_eq!(v["Layers"], serde_json::json!(layer_digests));
    assert_eq!(v["Env"], serde_json::json!(["PATH=/usr/bin:/bin"]));
    assert_eq!(v["Labels"]["org.example.rule"], "app");
}

#[test]
fn skopeo_reads_and_copies_the_layout() {
    if !have("skopeo") {
        return;
    }
    for c in [Compression::Gzip, Compression::Zstd] {
        let tmp = tempfile::tempdir().unwrap();
        let f = fixture(c);
        let dir = tmp.path().join("layout");
        f.layout.write_dir(&dir).unwrap();

        let v = inspect(&format!("oci:{}:latest-amd64", s(&dir)));
        check_inspect(&v, [&f.base.digest.to_string(), &f.app.digest.to_string()]);
        assert_eq!(v["Digest"], f.amd.digest.to_string());

        // --raw returns the stored bytes: our index and manifests, untouched.
        let raw = run(
            "skopeo",
            &["inspect", "--raw", &format!("oci:{}:latest", s(&dir))],
        );
        assert_eq!(raw.as_bytes(), &f.layout.blob(&f.index.digest).unwrap()[..]);
        let raw = run(
            "skopeo",
            &["inspect", "--raw", &format!("oci:{}:latest-arm64", s(&dir))],
        );
        assert_eq!(raw.as_bytes(), &f.layout.blob(&f.arm.digest).unwrap()[..]);
        let config = run(
            "skopeo",
            &[
                "inspect",
                "--config",
                "--raw",
                &format!("oci:{}:latest-arm64", s(&dir)),
            ],
        );
        let config: Value = serde_json::from_str(&config).unwrap();
        assert_eq!(config["variant"], "v8");

        // Copying every platform must verify every blob and keep the index digest.
        let other = tmp.path().join("other");
        run(
            "skopeo",
            &[
                "--policy",
                s(&policy(tmp.path())),
                "copy",
                "--all",
                &format!("oci:{}:latest", s(&dir)),
                &format!("oci:{}:x", s(&other)),
            ],
        );
        let index: Value =
            serde_json::from_slice(&std::fs::read(other.join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["digest"],
            f.index.digest.to_string(),
            "{c}"
        );
        for blob in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
            let blob = blob.unwrap();
            let copied = other.join("blobs/sha256").join(blob.file_name());
            assert_eq!(
                std::fs::read(blob.path()).unwrap(),
                std::fs::read(copied).unwrap()
            );
        }
        // On an index, skopeo picks the host's platform but reports the index digest.
        let v = run(
            "skopeo",
            &[
                "--override-arch",
                "amd64",
                "inspect",
                &format!("oci:{}:x", s(&other)),
            ],
        );
        let v: Value = serde_json::from_str(&v).unwrap();
        assert_eq!(v["Digest"], f.index.digest.to_string());
        assert_eq!(v["Architecture"], "amd64");
    }
}

#[test]
fn umoci_unpacks_the_root_filesystem() {
    if !have("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // umoci 0.4.7 cannot read zstd layers.
    let f = fixture(Compression::Gzip);
    let dir = tmp.path().join("layout");
    f.layout.write_dir(&dir).unwrap();
    let bundle = tmp.path().join("bundle");
    let root = std::fs::metadata(tmp.path()).unwrap().uid() == 0;
    let image = format!("{}:latest-amd64", s(&dir));
    let mut args = vec!["unpack", "--image", &image, s(&bundle)];
    if !root {
        args.insert(1, "--rootless");
    }
    run("umoci", &args);

    let rootfs = bundle.join("rootfs");
    let meta = |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap();
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap(),
        "root:x:0:0:root:/root:/sbin/nologin\n"
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("bin")).unwrap(),
        Path::new("usr/bin")
    );
    assert_eq!(
        std::fs::read_link(rootfs.join("usr/bin/app")).unwrap(),
        Path::new(&long_target())
    );
    assert_eq!(
        std::fs::read_to_string(rootfs.join(long_name())).unwrap(),
        "GPL\n"
    );
    assert_eq!(meta("usr/bin/perl").ino(), meta("usr/bin/perl5.36.0").ino());
    assert_eq!(meta("app/run").mode() & 0o7777, 0o755);
    assert_eq!(meta("etc/passwd").mtime(), 1_600_000_000);
    if root {
        assert_eq!(meta("usr/bin/su").mode() & 0o7777, 0o4755);
        assert_eq!(
            (meta("app/run").uid(), meta("app/run").gid()),
            (65532, 65532)
        );
    }

    // The runtime config umoci derives comes from our image config.
    let config: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/app/run", "--help"])
    );
    assert_eq!(config["process"]["cwd"], "/app");
    assert_eq!(config["process"]["user"]["uid"], 65532);
}

#[test]
fn skopeo_reads_the_archives() {
    if !have("skopeo") {
        return;
    }
    for c in [Compression::Gzip, Compression::Zstd] {
        let tmp = tempfile::tempdir().unwrap();
        let f = fixture(c);

        let oci = tmp.path().join("image.oci.tar");
        f.layout.write_oci_archive(&oci).unwrap();
        let v = inspect(&format!("oci-archive:{}:latest-amd64", s(&oci)));
        check_inspect(&v, [&f.base.digest.to_string(), &f.app.digest.to_string()]);
        assert_eq!(v["Digest"], f.amd.digest.to_string());

        let docker = tmp.path().join("image.docker.tar");
        f.layout
            .write_docker_archive(
                &docker,
                &[
                    (vec!["example.com/app:amd64".to_string()], f.amd.clone()),
                    (vec!["example.com/app:arm64".to_string()], f.arm.clone()),
                ],
            )
            .unwrap();
        // Docker archives carry uncompressed layers, so skopeo reports the diff_ids.
        let v = inspect(&format!(
            "docker-archive:{}:example.com/app:amd64",
            s(&docker)
        ));
        check_inspect(
            &v,
            [&f.base.diff_id.to_string(), &f.app.diff_id.to_string()],
        );
        assert_eq!(v["RepoTags"], serde_json::json!([]), "{v}");
        let v = inspect(&format!("docker-archive:{}:@1", s(&docker)));
        assert_eq!(v["Architecture"], "arm64");

        // A full copy reads every layer and checks it against the config's diff_ids.
        let out = tmp.path().join("from-docker");
        run(
            "skopeo",
            &[
                "--policy",
                s(&policy(tmp.path())),
                "copy",
                &format!("docker-archive:{}:example.com/app:amd64", s(&docker)),
                &format!("oci:{}:y", s(&out)),
            ],
        );
        let v = inspect(&format!("oci:{}:y", s(&out)));
        assert_eq!(v["Architecture"], "amd64");
    }
}
