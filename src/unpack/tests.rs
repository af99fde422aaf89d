use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::json;

use super::*;

/// One tar entry, written with raw headers so hostile names survive.
enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

fn header(name: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    let bytes = name.as_bytes();
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(1000);
    h.set_gid(1001);
    h.set_mtime(1_700_000_000);
    h
}

fn tar(entries: &[E]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let (mut h, data): (tar::Header, &[u8]) = match e {
            E::Dir(n, m) => (header(n, tar::EntryType::Directory, *m, 0), b""),
            E::File(n, d, m) => (header(n, tar::EntryType::Regular, *m, d.len() as u64), d),
            E::Sym(n, t) | E::Hard(n, t) => {
                let kind = if matches!(e, E::Sym(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(n, kind, 0o777, 0);
                let tb = t.as_bytes();
                h.as_old_mut().linkname[..tb.len()].copy_from_slice(tb);
                (h, b"")
            }
        };
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn put(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let d = Digest::of(bytes);
    std::fs::write(layout.join(d.blob_path()), bytes).unwrap();
    (d.to_string(), bytes.len())
}

/// A manifest for `arch` with gzip `layers` (tar bytes) and config `config`; returns its
/// descriptor JSON.
fn image(
    layout: &Path,
    arch: &str,
    layers: &[Vec<u8>],
    config: serde_json::Value,
) -> serde_json::Value {
    let cfg = json!({"architecture": arch, "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": []}});
    let (cd, cs) = put(layout, &serde_json::to_vec(&cfg).unwrap());
    let ls: Vec<_> = layers
        .iter()
        .map(|l| {
            let (d, s) = put(layout, &gzip(l));
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
        })
        .collect();
    let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": ls});
    let (md, ms) = put(layout, &serde_json::to_vec(&m).unwrap());
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "platform": {"os": "linux", "architecture": arch}})
}

/// An empty layout under `dir`.
fn new_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

fn write_index(layout: &Path, tag: &str, mut top: serde_json::Value) {
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let idx = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
}

/// A layout whose `latest` tag is one host-platform image of `layers`.
fn single(dir: &Path, layers: &[Vec<u8>]) -> PathBuf {
    let layout = new_layout(dir);
    let host = host_platform();
    let arch = host.split('/').nth(1).unwrap().to_owned();
    let m = image(&layout, &arch, layers, json!({"Entrypoint": ["/bin/app"]}));
    write_index(&layout, "latest", m);
    layout
}

fn opts(layout: &Path, dest: &Path) -> UnpackOptions {
    UnpackOptions {
        layout: layout.to_owned(),
        tag: "latest".into(),
        dest: dest.to_owned(),
        platform: None,
        bundle: false,
        command: Vec::new(),
    }
}

#[test]
fn hostile_paths_never_reach_outside_the_root() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret"), "keep").unwrap();
    let o = outside.display().to_string();

    // `..` in a name, or in a hard link's target, is refused; nothing is written.
    for (n, layer) in [
        tar(&[E::File("../escape", b"x", 0o644)]),
        tar(&[E::File("a/../../escape", b"x", 0o644)]),
        tar(&[E::Hard("h", "../outside/secret")]),
    ]
    .into_iter()
    .enumerate()
    {
        let layout = single(&t.path().join(format!("l{n}")), &[layer]);
        let dest = t.path().join(format!("d{n}"));
        let e = unpack(&opts(&layout, &dest)).unwrap_err();
        assert!(matches!(e, UnpackError::Unsafe { .. }), "{e}");
        assert!(!dest.exists(), "a refused unpack left {}", dest.display());
    }
    assert!(!t.path().join("escape").exists());

    // Symlinks lower entries made are followed as if the root were `/`: writes through
    // them land inside the root, never in `outside`.
    let layer = tar(&[
        E::Sym("up", "../../../.."),
        E::File("up/x", b"1", 0o644),
        E::Sym("abs", &o),
        E::File("abs/secret", b"overwritten", 0o644),
        E::Sym("f", &format!("{o}/secret")),
        E::Hard("h", "abs/secret"),
    ]);
    let over = tar(&[E::File("f", b"replaced", 0o644)]);
    let layout = single(&t.path().join("links"), &[layer, over]);
    let dest = t.path().join("links-root");
    unpack(&opts(&layout, &dest)).unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    assert_eq!(std::fs::read_to_string(dest.join("x")).unwrap(), "1");
    let inside = dest.join(o.trim_start_matches('/')).join("secret");
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "overwritten");
    // The hard link is to the file inside the root.
    assert_eq!(
        std::fs::metadata(dest.join("h")).unwrap().ino(),
        std::fs::metadata(&inside).unwrap().ino()
    );
    // A file over a symlink replaces the symlink rather than writing through it.
    let f = std::fs::symlink_metadata(dest.join("f")).unwrap();
    assert!(f.is_file());
    assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "replaced");
}

#[test]
fn whiteouts_modes_owners_and_times_are_applied() {
    let t = tempfile::tempdir().unwrap();
    let l1 = tar(&[
        E::Dir("a", 0o755),
        E::File("a/x", b"x", 0o644),
        E::File("a/y", b"y", 0o644),
        E::File("b", b"b", 0o644),
        E::Dir("c", 0o755),
        E::File("c/old", b"old", 0o644),
        E::File("suid", b"s", 0o4755),
        E::Dir("ro", 0o555),
        E::File("ro/inside", b"i", 0o444),
    ]);
    let l2 = tar(&[E::File("a/.wh.x", b"", 0o644), E::File(".wh.b", b"", 0o644)]);
    let l3 = tar(&[
        E::File("c/new", b"new", 0o600),
        E::File("c/.wh..wh..opq", b"", 0o644),
    ]);
    let layout = single(&t.path().join("l"), &[l1, l2, l3]);
    let dest = t.path().join("root");
    let r = unpack(&opts(&layout, &dest)).unwrap();
    assert_eq!(r.layers, 3);
    let names = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dest.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("a"), ["y"]);
    assert!(!dest.join("b").exists());
    // The opaque whiteout removed only what lower layers put in c.
    assert_eq!(names("c"), ["new"]);
    let m = |p: &str| std::fs::symlink_metadata(dest.join(p)).unwrap();
    assert_eq!(m("suid").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(m("ro").permissions().mode() & 0o7777, 0o555);
    assert_eq!(m("c/new").permissions().mode() & 0o7777, 0o600);
    assert_eq!(m("a/y").mtime(), 1_700_000_000);
    assert_eq!(m("ro").mtime(), 1_700_000_000);
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!((m("a/y").uid(), m("a/y").gid()), (1000, 1001));
    }
}

#[test]
fn a_multi_arch_tag_unpacks_the_platform_asked_for() {
    let t = tempfile::tempdir().unwrap();
    let layout = new_layout(t.path());
    let amd = image(
        &layout,
        "amd64",
        &[tar(&[E::File("arch", b"amd64", 0o644)])],
        json!({"Cmd": ["/x"]}),
    );
    let mut arm = image(
        &layout,
        "arm64",
        &[tar(&[E::File("arch", b"arm64", 0o644)])],
        json!({"Cmd": ["/x"]}),
    );
    arm["platform"]["variant"] = json!("v8");
    let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [amd, arm]});
    let (d, s) = put(&layout, &serde_json::to_vec(&idx).unwrap());
    write_index(
        &layout,
        "latest",
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s}),
    );
    for (platform, want) in [
        ("linux/arm64", "arm64"),
        ("linux/arm64/v8", "arm64"),
        ("linux/amd64", "amd64"),
    ] {
        let dest = t.path().join(platform.replace('/', "-"));
        let r = unpack(&UnpackOptions {
            platform: Some(platform.into()),
            ..opts(&layout, &dest)
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("arch")).unwrap(), want);
        assert!(r.platform.starts_with(&format!("linux/{want}")));
    }
    let e = unpack(&UnpackOptions {
        platform: Some("linux/s390x".into()),
        ..opts(&layout, &t.path().join("no"))
    })
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("linux/amd64, linux/arm64/v8"), "{msg}");
    assert!(!t.path().join("no").exists());
}

#[test]
fn a_non_empty_destination_is_refused_and_left_alone() {
    let t = tempfile::tempdir().unwrap();
    let layout = single(&t.path().join("l"), &[tar(&[E::File("f", b"f", 0o644)])]);
    let dest = t.path().join("mine");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("keep"), "mine").unwrap();
    let e = unpack(&opts(&layout, &dest)).unwrap_err();
    assert!(matches!(e, UnpackError::DestExists { .. }), "{e}");
    assert_eq!(std::fs::read_to_string(dest.join("keep")).unwrap(), "mine");
    // An empty directory is fine.
    let empty = t.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    unpack(&opts(&layout, &empty)).unwrap();
    assert_eq!(std::fs::read_to_string(empty.join("f")).unwrap(), "f");
    // No temporaries are left beside it.
    let left: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn the_runtime_config_follows_the_image_config() {
    let t = tempfile::tempdir().unwrap();
    let rootfs = t.path();
    std::fs::create_dir(rootfs.join("etc")).unwrap();
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0::/root:/sbin/nologin\nnonroot:x:65532:65533::/home/nonroot:/sbin/nologin\n",
    )
    .unwrap();
    std::fs::write(
        rootfs.join("etc/group"),
        "root:x:0:\nnonroot:x:65533:\nstaff:x:50:\n",
    )
    .unwrap();
    let config = |user: &str| {
        json!({"config": {"Entrypoint": ["/usr/bin/python3"], "Cmd": ["-V"], "User": user,
            "Env": ["PATH=/usr/bin", "LANG=C.UTF-8"], "WorkingDir": "/home/nonroot",
            "Labels": {"a": "b"}}})
    };
    let c = runtime_config(&config("nonroot"), rootfs, &[]).unwrap();
    assert_eq!(c["process"]["args"], json!(["/usr/bin/python3", "-V"]));
    assert_eq!(
        c["process"]["env"],
        json!(["PATH=/usr/bin", "LANG=C.UTF-8"])
    );
    assert_eq!(c["process"]["cwd"], "/home/nonroot");
    assert_eq!(c["process"]["user"], json!({"uid": 65532, "gid": 65533}));
    assert_eq!(c["annotations"], json!({"a": "b"}));
    assert!(c["process"].get("rlimits").is_none());
    assert!(c["linux"].get("resources").is_none() && c["linux"].get("cgroupsPath").is_none());
    for (user, ids) in [
        ("65532", (65532, 65533)),
        ("nonroot:staff", (65532, 50)),
        ("7:8", (7, 8)),
        ("", (0, 0)),
    ] {
        let c = runtime_config(&config(user), rootfs, &[]).unwrap();
        assert_eq!(
            c["process"]["user"],
            json!({"uid": ids.0, "gid": ids.1}),
            "{user}"
        );
    }
    let e = runtime_config(&config("nobody"), rootfs, &[]).unwrap_err();
    assert!(
        e.to_string()
            .contains("\"nobody\" is not in the image's /etc/passwd"),
        "{e}"
    );
    let e = runtime_config(&json!({"config": {}}), rootfs, &[]).unwrap_err();
    assert!(e.to_string().contains("neither Entrypoint nor Cmd"), "{e}");
    // A command given replaces Entrypoint and Cmd (a base image has neither).
    let sh = ["/busybox/sh".to_owned(), "-c".to_owned(), "true".to_owned()];
    for image in [json!({"config": {}}), config("")] {
        let c = runtime_config(&image, rootfs, &sh).unwrap();
        assert_eq!(c["process"]["args"], json!(sh));
    }
}

#[test]
fn the_host_architecture_is_the_platform_unpack_picks() {
    // Both name the machine debless runs on: one for docker-archive tags, one for
    // unpack; they must not disagree.
    let host = crate::arch::Arch::host().expect("debless is tested on a Debian architecture");
    let platform = match host.oci_variant() {
        Some(v) => format!("linux/{}/{v}", host.oci_architecture()),
        None => format!("linux/{}", host.oci_architecture()),
    };
    assert_eq!(platform, host_platform());
}
