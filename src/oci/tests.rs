//! Layout tests: JSON shape, determinism, validation, and the three output forms.
//!
//! Over 600 lines: a test per document shape and output form; each reads alone.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::digest::Digest;
use crate::layer::{Compression, Entry, EntryKind, Layer, write_layer};

const CREATED: &str = "2024-01-02T03:04:05Z";

fn file(path: &str, body: &str) -> Entry {
    Entry {
        path: path.to_string(),
        kind: EntryKind::File {
            data: Arc::new(body.as_bytes().to_vec()),
            link_group: None,
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        origin: "test".to_string(),
    }
}

fn layers(c: Compression) -> (Layer, Layer) {
    let base = write_layer(
        &[
            Entry::dir("etc", 0, "t"),
            file("etc/os-release", "ID=debian\n"),
        ],
        c,
        0,
    )
    .unwrap();
    let app = write_layer(&[Entry::dir("app", 0, "t"), file("app/run", "hi\n")], c, 0).unwrap();
    (base, app)
}

fn image(arch: &str, layers: &[&Layer]) -> Image {
    Image {
        platform: platform_for(arch.parse().unwrap()),
        config: Config {
            env: vec!["PATH=/usr/bin:/bin".to_string()],
            user: Some("65532:65532".to_string()),
            working_dir: None,
            entrypoint: Some(vec!["/app/run".to_string()]),
            cmd: None,
            labels: BTreeMap::from([
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]),
        },
        created: CREATED.to_string(),
        layers: layers.iter().map(|l| LayerRef::from(*l)).collect(),
        history: layers
            .iter()
            .enumerate()
            .map(|(i, _)| History {
                created_by: format!("debless layer {i}"),
                comment: (i == 0).then(|| "base".to_string()),
                empty_layer: false,
            })
            .collect(),
        annotations: BTreeMap::from([(
            "org.opencontainers.image.title".to_string(),
            "test".to_string(),
        )]),
    }
}

/// A layout with two layers per image, two platforms, an index and three tags.
fn sample(c: Compression) -> (Layout, Descriptor, Descriptor, Descriptor) {
    let (base, app) = layers(c);
    let mut layout = Layout::new();
    layout.add_blob(base.blob.clone());
    layout.add_blob(app.blob.clone());
    let amd = layout.add_image(&image("amd64", &[&base, &app])).unwrap();
    let arm = layout.add_image(&image("arm64", &[&base, &app])).unwrap();
    let index = layout.add_index(&[amd.clone(), arm.clone()], BTreeMap::new());
    layout.tag(&index, "latest");
    layout.tag(&amd, "latest-amd64");
    layout.tag(&arm, "latest-arm64");
    (layout, index, amd, arm)
}

fn blob_json(layout: &Layout, digest: &Digest) -> Value {
    serde_json::from_slice(layout.blob(digest).unwrap()).unwrap()
}

fn sha256_digest(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

#[test]
fn config_json_has_the_oci_shape_and_omits_absent_fields() {
    let (layout, _, amd, arm) = sample(Compression::Gzip);
    let manifest = blob_json(&layout, &amd.digest);
    let config_digest: Digest = manifest["config"]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let config_bytes = layout.blob(&config_digest).unwrap();
    let (base, app) = layers(Compression::Gzip);
    let expected = format!(
        concat!(
            r#"{{"created":"{c}","architecture":"amd64","os":"linux","#,
            r#""config":{{"Env":["PATH=/usr/bin:/bin"],"User":"65532:65532","#,
            r#""Entrypoint":["/app/run"],"Labels":{{"a":"1","b":"2"}}}},"#,
            r#""rootfs":{{"type":"layers","diff_ids":["{d0}","{d1}"]}},"#,
            r#""history":[{{"created":"{c}","created_by":"debless layer 0","comment":"base"}},"#,
            r#"{{"created":"{c}","created_by":"debless layer 1"}}]}}"#
        ),
        c = CREATED,
        d0 = base.diff_id,
        d1 = app.diff_id
    );
    assert_eq!(String::from_utf8_lossy(config_bytes), expected);

    let arm_manifest = blob_json(&layout, &arm.digest);
    let arm_config = blob_json(
        &layout,
        &arm_manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    assert_eq!(arm_config["architecture"], "arm64");
    assert_eq!(arm_config["variant"], "v8");
}

#[test]
fn manifest_and_index_json_have_the_oci_shape() {
    let (layout, index, amd, _) = sample(Compression::Zstd);
    let (base, app) = layers(Compression::Zstd);
    let manifest = blob_json(&layout, &amd.digest);
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["mediaType"], CONFIG_MEDIA_TYPE);
    assert_eq!(
        manifest["layers"],
        json!([
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": base.digest, "size": base.size},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": app.digest, "size": app.size},
        ])
    );
    assert_eq!(
        manifest["annotations"],
        json!({"org.opencontainers.image.title": "test"})
    );
    let keys: Vec<&String> = manifest.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 5);

    assert_eq!(amd.media_type, MANIFEST_MEDIA_TYPE);
    assert_eq!(amd.size, layout.blob(&amd.digest).unwrap().len() as u64);
    assert_eq!(amd.platform, Some(platform_for(crate::arch::Arch::Amd64)));
    assert_eq!(amd.annotations, image("amd64", &[]).annotations);

    let idx = blob_json(&layout, &index.digest);
    assert_eq!(index.media_type, INDEX_MEDIA_TYPE);
    assert_eq!(idx["mediaType"], INDEX_MEDIA_TYPE);
    assert_eq!(idx["schemaVersion"], 2);
    assert_eq!(
        idx["manifests"][0]["platform"],
        json!({"os": "linux", "architecture": "amd64"})
    );
    assert_eq!(
        idx["manifests"][1]["platform"],
        json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
    );
    assert!(idx.get("annotations").is_none(), "empty maps are omitted");
}

#[test]
fn identical_inputs_give_identical_digests() {
    let (a, ai, ..) = sample(Compression::Gzip);
    let (b, bi, ..) = sample(Compression::Gzip);
    assert_eq!(ai, bi);
    assert_eq!(a.files(), b.files());
    // Label insertion order cannot matter: they are a BTreeMap.
    let (base, app) = layers(Compression::Gzip);
    let mut img = image("amd64", &[&base, &app]);
    let mut c = Layout::new();
    c.add_blob(base.blob.clone());
    c.add_blob(app.blob.clone());
    let first = c.add_image(&img).unwrap();
    img.config.labels = img.config.labels.into_iter().rev().collect();
    assert_eq!(c.add_image(&img).unwrap(), first);
}

#[test]
fn blobs_are_stored_once_by_digest() {
    let mut layout = Layout::new();
    let d1 = layout.add_blob(Arc::new(b"abc".to_vec()));
    let d2 = layout.add_blob(Arc::new(b"abc".to_vec()));
    assert_eq!(d1, d2);
    assert_eq!(
        d1.to_string(),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        layout.files().len(),
        3,
        "one blob + index.json + oci-layout"
    );
}

#[test]
fn images_are_checked_before_anything_is_stored() {
    let (base, app) = layers(Compression::Gzip);
    let mut layout = Layout::new();
    layout.add_blob(base.blob.clone());
    let err = layout
        .add_image(&image("amd64", &[&base, &app]))
        .unwrap_err();
    assert!(
        matches!(err, OciError::MissingBlob { ref digest, .. } if *digest == app.digest),
        "{err}"
    );
    assert!(err.to_string().contains("Layout::add_blob"));

    let mut img = image("amd64", &[&base]);
    img.layers[0].size += 1;
    assert!(matches!(
        layout.add_image(&img),
        Err(OciError::BlobSizeMismatch { .. })
    ));

    let mut img = image("amd64", &[&base]);
    img.history.push(History::default());
    assert!(matches!(
        layout.add_image(&img),
        Err(OciError::HistoryMismatch {
            history: 2,
            layers: 1,
            ..
        })
    ));
    img.history[1].empty_layer = true;
    assert!(layout.add_image(&img).is_ok());

    let mut img = image("amd64", &[&base]);
    img.created = "yesterday".to_string();
    assert!(matches!(
        layout.add_image(&img),
        Err(OciError::InvalidCreated { .. })
    ));
    // Only the valid image above added its config and manifest.
    assert_eq!(layout.blobs.len(), 3);
}

#[test]
fn index_json_lists_tags_in_name_order() {
    let (mut layout, index, amd, _) = sample(Compression::Gzip);
    layout.tag(&amd, "0-first");
    layout.tag(&amd, "latest"); // moves the tag
    let files = layout.files();
    let (_, blob) = files.iter().find(|(p, _)| p == "index.json").unwrap();
    let Blob::Bytes(bytes) = blob else {
        panic!("index.json is made in memory")
    };
    let v: Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(v["schemaVersion"], 2);
    assert_eq!(v["mediaType"], INDEX_MEDIA_TYPE);
    let names: Vec<&str> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["annotations"][REF_NAME_ANNOTATION].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0-first", "latest", "latest-amd64", "latest-arm64"]);
    assert_eq!(v["manifests"][1]["digest"], amd.digest.to_string());
    assert_ne!(v["manifests"][1]["digest"], index.digest.to_string());
    assert_eq!(v["manifests"][1]["platform"]["architecture"], "amd64");
}

fn read_dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn write_dir_writes_a_verifiable_layout_and_replaces_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut old = Layout::new();
    let stale = old.add_blob(Arc::new(b"stale".to_vec()));
    old.write_dir(&out).unwrap();
    assert!(out.join(stale.blob_path()).is_file());

    let (layout, ..) = sample(Compression::Gzip);
    layout.write_dir(&out).unwrap();
    assert_eq!(
        read_dir_names(tmp.path()),
        ["out"],
        "no temporary directory left"
    );
    assert_eq!(read_dir_names(&out), ["blobs", "index.json", "oci-layout"]);
    assert_eq!(
        std::fs::read_to_string(out.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let blobs = read_dir_names(&out.join("blobs/sha256"));
    assert_eq!(blobs.len(), layout.blobs.len());
    for hex in blobs {
        let bytes = std::fs::read(out.join("blobs/sha256").join(&hex)).unwrap();
        assert_eq!(sha256_digest(&bytes), format!("sha256:{hex}"));
    }
    assert!(!out.join(stale.blob_path()).exists());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[test]
fn write_dir_refuses_to_replace_a_directory_that_is_not_a_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("home");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();
    let (layout, ..) = sample(Compression::Gzip);
    let err = layout.write_dir(&out).unwrap_err();
    assert!(matches!(err, OciError::NotALayout { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(read_dir_names(tmp.path()), ["home"]);

    // An empty directory is fine to fill.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    layout.write_dir(&empty).unwrap();
    assert!(empty.join("oci-layout").is_file());
}

#[test]
fn write_dir_failure_leaves_the_old_layout_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let (layout, ..) = sample(Compression::Gzip);
    layout.write_dir(&out).unwrap();
    let before = std::fs::read(out.join("index.json")).unwrap();
    // A file where the output's parent directory should be: nothing can be staged there.
    let blocked = tmp.path().join("blocked");
    std::fs::write(&blocked, "").unwrap();
    assert!(layout.write_dir(&blocked.join("out")).is_err());
    // Replacing a non-directory is refused, and the file stays.
    let not_dir = tmp.path().join("file");
    std::fs::write(&not_dir, "x").unwrap();
    assert!(matches!(
        layout.write_dir(&not_dir),
        Err(OciError::NotALayout { .. })
    ));
    // The swap itself failing (here: the new tree vanished) puts the old layout back.
    let err = super::layout::replace_dir(&tmp.path().join("gone"), &out, true).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot move the new layout into place"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("index.json")).unwrap(), before);
    assert_eq!(read_dir_names(tmp.path()), ["blocked", "file", "out"]);
}

#[test]
fn oci_archive_is_deterministic_and_holds_the_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, ..) = sample(Compression::Zstd);
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    layout.write_oci_archive(&a).unwrap();
    sample(Compression::Zstd).0.write_oci_archive(&b).unwrap();
    let bytes = std::fs::read(&a).unwrap();
    assert_eq!(bytes, std::fs::read(&b).unwrap());
    let mut archive = ::tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    for m in archive.entries().unwrap() {
        let mut m = m.unwrap();
        let name = m.path().unwrap().to_string_lossy().into_owned();
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let mut body = Vec::new();
            m.read_to_end(&mut body).unwrap();
            assert_eq!(sha256_digest(&body), format!("sha256:{hex}"));
        }
        names.push(name);
    }
    assert_eq!(names[..2], ["blobs/", "blobs/sha256/"]);
    assert_eq!(names[names.len() - 2..], ["index.json", "oci-layout"]);
    assert_eq!(names.len(), 4 + layout.blobs.len());
    assert_eq!(read_dir_names(tmp.path()), ["a.tar", "b.tar"]);
}

#[test]
fn docker_archive_stores_uncompressed_layers_named_by_diff_id() {
    for c in [Compression::Gzip, Compression::Zstd] {
        let tmp = tempfile::tempdir().unwrap();
        let (layout, index, amd, arm) = sample(c);
        let path = tmp.path().join("docker.tar");
        let tags = vec!["example/app:latest".to_string()];
        layout
            .write_docker_archive(&path, &[(tags.clone(), amd.clone()), (vec![], arm.clone())])
            .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut archive = ::tar::Archive::new(&bytes[..]);
        let mut members = BTreeMap::new();
        for m in archive.entries().unwrap() {
            let mut m = m.unwrap();
            let name = m.path().unwrap().to_string_lossy().into_owned();
            let mut body = Vec::new();
            m.read_to_end(&mut body).unwrap();
            members.insert(name, body);
        }
        let manifest: Value = serde_json::from_slice(&members["manifest.json"]).unwrap();
        let (base, app) = layers(c);
        let hex = |d: &Digest| d.hex();
        let amd_config = blob_json(&layout, &amd.digest)["config"]["digest"]
            .as_str()
            .unwrap()
            .parse::<Digest>()
            .unwrap();
        assert_eq!(
            manifest[0],
            json!({
                "Config": format!("{}.json", hex(&amd_config)),
                "RepoTags": tags,
                "Layers": [format!("{}.tar", hex(&base.diff_id)), format!("{}.tar", hex(&app.diff_id))],
            })
        );
        assert_eq!(manifest[1]["RepoTags"], json!([]));
        // Two configs, two shared layers, manifest.json.
        assert_eq!(members.len(), 5, "{:?}", members.keys());
        for l in [&base, &app] {
            let body = &members[&format!("{}.tar", hex(&l.diff_id))];
            assert_eq!(Digest::of(body), l.diff_id);
        }

        let err = layout
            .write_docker_archive(&tmp.path().join("x.tar"), &[(vec![], index.clone())])
            .unwrap_err();
        assert!(matches!(err, OciError::NotAnImage { .. }), "{err}");
        assert!(!tmp.path().join("x.tar").exists());
    }
}

#[test]
fn docker_archive_checks_layers_against_their_diff_ids() {
    let (base, _) = layers(Compression::Gzip);
    let mut layout = Layout::new();
    layout.add_blob(base.blob.clone());
    let mut img = image("amd64", &[&base]);
    img.layers[0].diff_id = Digest::from_hex(&"0".repeat(64)).unwrap();
    let desc = layout.add_image(&img).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let err = layout
        .write_docker_archive(&tmp.path().join("d.tar"), &[(vec![], desc)])
        .unwrap_err();
    assert!(matches!(err, OciError::DiffIdMismatch { .. }), "{err}");
    assert_eq!(
        read_dir_names(tmp.path()),
        Vec::<String>::new(),
        "no temp file left"
    );
}

/// `sample` written to `dir`.
fn written(dir: &Path) -> (Layout, Descriptor, Descriptor, Descriptor) {
    let s = sample(Compression::Gzip);
    s.0.write_dir(dir).unwrap();
    s
}

#[test]
fn the_reader_resolves_a_tag_to_its_images_config_and_layers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let (layout, index, amd, arm) = written(&dir);
    let reader = LayoutReader::open(&dir).unwrap();
    let tags: Vec<&str> = reader.tags().keys().map(String::as_str).collect();
    assert_eq!(tags, ["latest", "latest-amd64", "latest-arm64"]);

    let r = reader.resolve("latest").unwrap();
    assert_eq!(r.descriptor.digest, index.digest);
    let platforms: Vec<String> = r
        .images
        .iter()
        .map(|i| i.descriptor.platform.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    assert_eq!(
        [r.images[0].descriptor.digest, r.images[1].descriptor.digest],
        [amd.digest, arm.digest]
    );
    let (base, app) = layers(Compression::Gzip);
    for image in &r.images {
        let layer_digests: Vec<Digest> = image.layers.iter().map(|l| l.digest).collect();
        assert_eq!(layer_digests, [base.digest, app.digest]);
        let config: Value = reader.read_json(&image.config, "config").unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][1], app.diff_id.to_string());
        assert_eq!(
            reader.read_blob(&image.config).unwrap(),
            **layout.blob(&image.config.digest).unwrap()
        );
    }
    // A tag on a manifest resolves to that one image; the index's bytes are the layout's.
    let one = reader.resolve("latest-arm64").unwrap();
    assert_eq!(one.images.len(), 1);
    assert_eq!(one.images[0].descriptor.digest, arm.digest);
    let doc = reader.document(&index).unwrap();
    assert_eq!(doc.bytes, **layout.blob(&index.digest).unwrap());
    assert!(matches!(doc.content, Content::Index(ref m) if m.len() == 2));

    let e = reader.resolve("nope").unwrap_err();
    assert!(
        e.to_string()
            .ends_with("no tag \"nope\"; tags: latest, latest-amd64, latest-arm64"),
        "{e}"
    );
}

#[test]
fn the_reader_checks_every_blob_against_its_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    written(&dir);
    let reader = LayoutReader::open(&dir).unwrap();
    let image = reader.resolve("latest-amd64").unwrap().images.remove(0);
    let layer = &image.layers[1];
    let path = reader.check_blob(layer).unwrap();
    // The same length with other bytes: only the hash tells.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(reader.check_blob(layer).is_ok(), "size only");
    let e = reader.read_blob(layer).unwrap_err();
    assert!(
        matches!(e, ReadError::Corrupt { digest, .. } if digest == layer.digest),
        "{e}"
    );
    let e = reader.verify_blob(&layer.digest, layer.size).unwrap_err();
    assert!(matches!(e, ReadError::Corrupt { .. }), "{e}");
    // Longer than declared.
    bytes.push(0);
    std::fs::write(&path, &bytes).unwrap();
    let e = reader.read_blob(layer).unwrap_err();
    assert!(
        matches!(e, ReadError::WrongSize { actual, .. } if actual == layer.size + 1),
        "{e}"
    );
    assert!(matches!(
        reader.check_blob(layer),
        Err(ReadError::WrongSize { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    let e = reader.read_blob(layer).unwrap_err();
    assert!(
        e.to_string().contains("missing") && e.to_string().contains("rebuild"),
        "{e}"
    );
}

#[test]
fn the_reader_refuses_what_is_not_a_layout_and_hostile_descriptors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = LayoutReader::open(tmp.path()).unwrap_err();
    assert!(matches!(e, ReadError::NotALayout { .. }), "{e}");

    let dir = tmp.path().join("l");
    let (_, index, amd, _) = written(&dir);
    let text = std::fs::read_to_string(dir.join("index.json")).unwrap();
    // A digest that would climb out of blobs/sha256 never becomes a path.
    let climbing = text.replace(&amd.digest.hex(), "../../../../../etc/passwd");
    std::fs::write(dir.join("index.json"), &climbing).unwrap();
    let e = LayoutReader::open(&dir).unwrap_err();
    assert!(matches!(e, ReadError::BadIndex { .. }), "{e}");
    std::fs::write(dir.join("index.json"), &text).unwrap();

    let reader = LayoutReader::open(&dir).unwrap();
    // A document declared huge is refused before it is read.
    let huge = Descriptor {
        size: MAX_DOCUMENT + 1,
        ..index.clone()
    };
    assert!(matches!(
        reader.document(&huge),
        Err(ReadError::TooLarge { .. })
    ));
    // A blob that is neither a manifest nor an index.
    let odd = Descriptor {
        media_type: "application/vnd.oci.image.config.v1+json".into(),
        ..index
    };
    assert!(matches!(
        reader.document(&odd),
        Err(ReadError::UnknownMediaType { .. })
    ));
}

#[test]
fn write_dir_leaves_a_layout_alone_only_when_every_file_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let (layout, ..) = written(&dir);
    assert!(!layout.write_dir(&dir).unwrap(), "already there");
    // A stray file in blobs/sha256 (not even a digest) is doubt: rewritten, and gone.
    let stray = dir.join("blobs/sha256/stray");
    std::fs::write(&stray, b"x").unwrap();
    assert!(layout.write_dir(&dir).unwrap());
    assert!(!stray.exists());
    assert!(!layout.write_dir(&dir).unwrap());
    // A damaged blob of the same length is rewritten.
    let (base, _) = layers(Compression::Gzip);
    let path = dir.join(base.digest.blob_path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[3] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(layout.write_dir(&dir).unwrap());
    assert_eq!(Digest::of_file(&path).unwrap(), base.digest);
}
