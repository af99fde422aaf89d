//! Hermetic tests of `debless build` and `debless fetch`: real .debs made by dpkg-deb in
//! every compression, a signed fake archive on 127.0.0.1 (which fails on purpose where a
//! test says so), and the images checked with skopeo and umoci.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::fixture::*;
use common::{DebFile, Fault, Pkg, Server, build_deb, pkg, run_ok, stderr};
use debless::deb::testdeb::{Raw, hostile};

#[test]
fn builds_every_image_tag_and_arch_as_real_tools_read_them() {
    let f = Fixture::new();
    let out = f.build_ok("out", &[]);
    for image in ["static", "base", "tools"] {
        let layout = out.join(format!("{image}-test"));
        let t = tags(&layout);
        let names: Vec<&str> = t.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "debug",
                "debug-amd64",
                "debug-arm64",
                "debug-nonroot",
                "debug-nonroot-amd64",
                "debug-nonroot-arm64",
                "latest",
                "latest-amd64",
                "latest-arm64",
                "nonroot",
                "nonroot-amd64",
                "nonroot-arm64"
            ],
            "{image}"
        );
        for tag in ["latest-amd64", "latest-arm64", "nonroot-arm64"] {
            let o = run_ok(
                Command::new("skopeo")
                    .arg("inspect")
                    .arg(format!("oci:{}:{tag}", layout.display())),
            );
            let v: serde_json::Value = serde_json::from_str(&o).unwrap();
            assert_eq!(v["Architecture"], tag.rsplit('-').next().unwrap());
            assert_eq!(v["Os"], "linux");
        }
        // The multi-arch index names both platforms (arm64 with its v8 variant).
        let idx = blob(&layout, &t["latest"]);
        let platforms: Vec<String> = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}/{}{}",
                    m["platform"]["os"].as_str().unwrap(),
                    m["platform"]["architecture"].as_str().unwrap(),
                    m["platform"]["variant"]
                        .as_str()
                        .map(|v| format!("/{v}"))
                        .unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
    }
    // One layer per rule level, shared by construction.
    let st = layer_digests(&out.join("static-test"), "latest-amd64");
    let base = layer_digests(&out.join("base-test"), "latest-amd64");
    let tools = layer_digests(&out.join("tools-test"), "latest-amd64");
    assert_eq!(st.len(), 1);
    assert_eq!(base.len(), 2);
    assert_eq!(tools.len(), 3);
    assert_eq!(base[0], st[0]);
    assert_eq!(tools[..2], base[..]);
    let debug = layer_digests(&out.join("tools-test"), "debug-nonroot-amd64");
    assert_eq!(debug.len(), 4);
    assert_eq!(debug[..3], tools[..]);
    // skopeo copies the whole multi-arch image.
    let copy = f.out("copy");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--all"])
            .arg(format!("oci:{}:latest", out.join("tools-test").display()))
            .arg(format!("oci:{}:x", copy.display())),
    );
}

#[test]
fn config_carries_rules_settings_and_variants() {
    let f = Fixture::new();
    let out = f.build_ok("out", &["tools", "--arch", "amd64"]);
    let layout = out.join("tools-test");
    let config = |tag: &str| {
        let m = blob(&layout, &tags(&layout)[tag]);
        blob(&layout, m["config"]["digest"].as_str().unwrap())
    };
    let latest = config("latest-amd64");
    assert_eq!(latest["config"]["Env"][0], "PATH=/usr/sbin:/usr/bin");
    assert_eq!(latest["config"]["Entrypoint"][0], "/usr/bin/tool");
    assert_eq!(latest["architecture"], "amd64");
    assert_eq!(latest["history"].as_array().unwrap().len(), 3);
    assert_eq!(latest["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    // `created` is the newest mtime of the files in the image's packages (the test .debs
    // are all made at DEB_EPOCH), not the lock's timestamp.
    assert_eq!(latest["created"], "2025-11-20T00:00:00Z");
    let dn = config("debug-nonroot-amd64");
    assert_eq!(dn["config"]["User"], "65532");
    assert_eq!(dn["config"]["WorkingDir"], "/home/nonroot");
    assert_eq!(dn["config"]["Env"][0], "PATH=/usr/sbin:/usr/bin:/busybox");
    assert_eq!(dn["config"]["Entrypoint"][1], "sh");
    let nonroot = config("nonroot-amd64");
    assert_eq!(nonroot["config"]["User"], "65532");
    assert_eq!(nonroot["config"]["Entrypoint"][0], "/usr/bin/tool");
    // Annotations name the distro and the image's own package set, never the lock as a
    // whole (whose digest moves with every re-pin).
    let m = blob(&layout, &tags(&layout)["latest-amd64"]);
    let a = m["annotations"].as_object().unwrap();
    let keys: Vec<&str> = a.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "dev.debless.distro",
            "dev.debless.packages",
            "org.opencontainers.image.created",
            "org.opencontainers.image.title"
        ]
    );
    assert!(
        a["dev.debless.packages"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_ne!(
        a["dev.debless.packages"],
        blob(&layout, &tags(&layout)["debug-amd64"])["annotations"]["dev.debless.packages"],
        "debug adds busybox: another package set"
    );
    assert_eq!(m["annotations"]["dev.debless.distro"], "test");
}

#[test]
fn extracts_only_declared_files_merged_usr_links_and_modes() {
    let f = Fixture::new();
    let out = f.build_ok("out", &["tools", "--arch", "amd64", "--variant", "latest"]);
    let bundle = f.out("bundle");
    let root = unpack(&out.join("tools-test"), "latest-amd64", &bundle);
    let t = triplet("amd64");
    // merged-/usr: files shipped under /lib land under /usr/lib, the links exist once.
    for (link, target) in [
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ] {
        assert_eq!(
            std::fs::read_link(root.join(link))
                .unwrap()
                .to_str()
                .unwrap(),
            target,
            "{link}"
        );
    }
    assert_eq!(
        std::fs::read(root.join(format!("usr/lib/{t}/libc.so.6"))).unwrap(),
        b"libc amd64"
    );
    assert!(root.join(format!("usr/lib/{t}/{}", long_name())).is_file());
    assert_eq!(
        std::fs::read_link(root.join("usr/lib64/ld-linux-x86-64.so.2"))
            .unwrap()
            .to_str()
            .unwrap(),
        format!("/lib/{t}/ld-linux-x86-64.so.2")
    );
    // Declared paths only: libc6's i18n data is not in the rule's paths.
    assert!(!root.join("usr/share/i18n").exists());
    // Global policy: docs, man pages and translations go, licences stay.
    assert!(root.join("usr/share/doc/base-files/copyright").is_file());
    assert!(root.join("usr/share/doc/libc6/copyright").is_file());
    assert!(!root.join("usr/share/doc/base-files/changelog.gz").exists());
    assert!(!root.join("usr/share/man").exists());
    assert!(!root.join("usr/share/locale").exists());
    // Modes, empty directories, symlinks and hard links survive.
    let mode = |p: &str| {
        std::fs::symlink_metadata(root.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("root"), 0o700);
    assert_eq!(mode("usr/sbin/suidtool"), 0o4755);
    assert_eq!(mode(&format!("usr/lib/{t}/libc.so.6")), 0o755);
    assert!(root.join("var/cache").is_dir());
    assert_eq!(
        std::fs::read_link(root.join("etc/os-release"))
            .unwrap()
            .to_str()
            .unwrap(),
        "../usr/lib/os-release"
    );
    let ino = |p: &str| std::fs::metadata(root.join(p)).unwrap().ino();
    assert_eq!(ino("usr/bin/tool"), ino("usr/bin/tool-link"));
    // No shell or anything else that was not declared.
    assert!(!root.join("usr/bin/busybox").exists());
}

#[test]
fn builds_are_bit_identical_across_runs_and_thread_counts() {
    let f = Fixture::new();
    let a = f.build_ok("a", &["-j", "1"]);
    // Without the layer cache, so that the second build compresses every layer itself.
    f.forget_layers();
    let b = f.build_ok("b", &["-j", "2"]);
    let (ta, tb) = (tree_bytes(&a), tree_bytes(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    assert!(ta == tb, "two builds differ");
    let o = f.build("c", &["--check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("--check"), "{}", stderr(&o));
    // SOURCE_DATE_EPOCH moves `created` and the mtimes, so the digests change.
    let out = f.out("epoch");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_debless"));
    cmd.arg("-C")
        .arg(f.project.path())
        .args([
            "build",
            "static",
            "--distro",
            "test",
            "--arch",
            "amd64",
            "--variant",
            "latest",
        ])
        .arg("--out")
        .arg(&out)
        .arg("--mirror")
        .arg(f.server.url() + "debian")
        .arg("--cache-dir")
        .arg(f.cache())
        .env("SOURCE_DATE_EPOCH", "86400");
    run_ok(&mut cmd);
    let layout = out.join("static-test");
    let m = blob(&layout, &tags(&layout)["latest-amd64"]);
    let c = blob(&layout, m["config"]["digest"].as_str().unwrap());
    assert_eq!(c["created"], "1970-01-02T00:00:00Z");
    assert_ne!(
        layer_digests(&layout, "latest-amd64"),
        layer_digests(&a.join("static-test"), "latest-amd64")
    );
}

#[test]
fn unchanged_layers_come_from_the_layer_cache_and_up_to_date_outputs_are_left_alone() {
    let f = Fixture::new();
    let first = f.build_json("o", &[]);
    let total = first["layers"]["total"].as_u64().unwrap();
    assert!(total > 4, "{first}");
    assert_eq!(first["layers"]["made"], total);
    // static's layer sits under every image: made once, shared.
    assert!(first["layers"]["shared"].as_u64().unwrap() >= 1, "{first}");
    let layout = f.out("o").join("base-test");
    let index_mtime = std::fs::metadata(layout.join("index.json"))
        .unwrap()
        .modified()
        .unwrap();

    // Again into the same --out: nothing made, nothing written.
    let again = f.build_json("o", &[]);
    assert_eq!(again["layers"]["made"], 0, "{again}");
    assert_eq!(again["layers"]["cached"], total);
    assert_eq!(
        again["up_to_date"].as_array().unwrap().len(),
        again["outputs"].as_array().unwrap().len()
    );
    assert_eq!(
        std::fs::metadata(layout.join("index.json"))
            .unwrap()
            .modified()
            .unwrap(),
        index_mtime
    );

    // Into an empty --out: the same bytes, from the cache alone (not one .deb needed).
    for entry in std::fs::read_dir(f.cache().join("sha256")).unwrap() {
        let p = entry.unwrap().path();
        if std::fs::read(&p).unwrap().starts_with(b"!<arch>\n") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let fresh = f.build_json("fresh", &["--offline"]);
    assert_eq!(fresh["layers"]["made"], 0, "{fresh}");
    assert_eq!(fresh["debs"]["needed"], 0, "{fresh}");
    assert!(tree_bytes(&f.out("o")) == tree_bytes(&f.out("fresh")));

    // A damaged output is noticed (every blob is re-hashed) and rewritten.
    let m = tags(&layout)["latest-amd64"].clone();
    let manifest = blob(&layout, &m);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let path = layout.join("blobs/sha256").join(&layer["sha256:".len()..]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let repaired = f.build_json("o", &["base", "--offline"]);
    assert!(
        repaired["up_to_date"].as_array().unwrap().is_empty(),
        "{repaired}"
    );
    assert!(tree_bytes(&f.out("o")) == tree_bytes(&f.out("fresh")));
}

#[test]
fn a_changed_rule_remakes_only_its_layers_and_those_above_them() {
    let f = Fixture::new();
    let first = f.build_json("o", &["base", "--variant", "latest"]);
    assert_eq!(first["layers"]["made"], 4, "{first}"); // static + base, two arches
    let before = layer_digests(&f.out("o").join("base-test"), "latest-amd64");
    // Any edit of base's rule file is a new input for base's layers, not static's.
    f.project
        .write("rules/base.toml", &format!("{BASE}\n# reviewed\n"));
    let second = f.build_json("o", &["base", "--variant", "latest"]);
    assert_eq!(second["layers"]["made"], 2, "{second}");
    assert_eq!(second["layers"]["cached"], 2, "{second}");
    // The content did not change, so neither did the digests.
    assert_eq!(
        layer_digests(&f.out("o").join("base-test"), "latest-amd64"),
        before
    );
    // Editing the lower rule remakes everything above it.
    f.project
        .write("rules/static.toml", &format!("{STATIC}\n# reviewed\n"));
    let third = f.build_json("o", &["base", "--variant", "latest"]);
    assert_eq!(third["layers"]["made"], 4, "{third}");
    // --check never trusts the cache: it makes every layer, twice.
    let checked = f.build_json("o", &["base", "--variant", "latest", "--check"]);
    assert_eq!(checked["layers"]["made"], 4, "{checked}");
}

#[test]
fn a_damaged_cached_layer_is_refused_removed_and_remade() {
    let f = Fixture::new();
    f.build_ok("o", &["static", "--arch", "amd64", "--variant", "latest"]);
    let digest = layer_digests(&f.out("o").join("static-test"), "latest-amd64")[0].clone();
    let cached = f.cache().join("sha256").join(&digest["sha256:".len()..]);
    let mut bytes = std::fs::read(&cached).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&cached, &bytes).unwrap();
    // Same size, so only the hash can tell; a new --out must copy the blob.
    let o = f.build("o2", &["static", "--arch", "amd64", "--variant", "latest"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!("cached blob {digest} hashes to sha256:"))
            && e.contains("run the build again"),
        "{e}"
    );
    assert!(!cached.exists(), "the damaged blob must be removed");
    assert!(!f.out("o2").join("static-test").exists());
    let again = f.build_json("o2", &["static", "--arch", "amd64", "--variant", "latest"]);
    assert_eq!(again["layers"]["made"], 1, "{again}");
    assert!(tree_bytes(&f.out("o")) == tree_bytes(&f.out("o2")));
}

#[test]
fn zstd_layers_and_archives_are_accepted_by_skopeo() {
    let f = Fixture::new();
    let out = f.build_ok(
        "z",
        &["base", "--compression", "zstd", "--variant", "latest"],
    );
    let layout = out.join("base-test");
    let m = blob(&layout, &tags(&layout)["latest-arm64"]);
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:latest-arm64", layout.display())),
    );
    let out = f.build_ok(
        "oa",
        &["base", "--format", "oci-archive", "--variant", "latest"],
    );
    let tar = out.join("base-test.tar");
    let o = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:latest-amd64", tar.display())),
    );
    assert!(o.contains("\"Architecture\": \"amd64\""), "{o}");
    let out = f.build_ok(
        "da",
        &[
            "base",
            "--format",
            "docker-archive",
            "--variant",
            "latest",
            "--arch",
            "amd64",
        ],
    );
    let tar = out.join("base-test.docker.tar");
    let o = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", tar.display())),
    );
    assert!(o.contains("\"Architecture\": \"amd64\""), "{o}");
    // Two archive builds are byte-identical too.
    let again = f.build_ok(
        "oa2",
        &["base", "--format", "oci-archive", "--variant", "latest"],
    );
    assert!(
        std::fs::read(again.join("base-test.tar")).unwrap()
            == std::fs::read(f.out("oa").join("base-test.tar")).unwrap()
    );
}

#[test]
fn falls_back_to_the_next_mirror_and_resumes_interrupted_downloads() {
    let f = Fixture::new();
    // The first mirror has nothing; the second cuts libc6 off half way once, then
    // answers the resume with a Range.
    let dead = Server::serve(&f.project.path().join("nonexistent"));
    f.server
        .fail_once("libc6_2.41-12_amd64.deb", Fault::Truncate(300));
    f.server
        .fail_once("tools_1.0_amd64.deb", Fault::Status(503));
    let out = f.out("o");
    let o = f.project.run(&[
        "build",
        "--distro",
        "test",
        "--arch",
        "amd64",
        "--out",
        out.to_str().unwrap(),
        "--cache-dir",
        f.cache().to_str().unwrap(),
        "--mirror",
        &(dead.url() + "debian"),
        "--mirror",
        &(f.server.url() + "debian"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dead.paths().iter().any(|p| p.ends_with(".deb")));
    let paths = f.server.paths();
    let libc: Vec<&String> = paths
        .iter()
        .filter(|p| p.contains("libc6_2.41-12_amd64"))
        .collect();
    assert_eq!(libc.len(), 2, "{paths:?}");
    assert!(
        libc[1].ends_with("@300"),
        "the retry must resume at byte 300: {libc:?}"
    );
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.contains("tools_1.0_amd64"))
            .count(),
        2,
        "a 503 is retried"
    );
    // Everything landed in the cache under its hash; no partial files remain.
    let partial = f.cache().join("partial");
    let left: Vec<_> = std::fs::read_dir(&partial)
        .map(|d| d.count())
        .into_iter()
        .collect();
    assert!(
        left.iter().all(|n| *n == 0),
        "partial downloads left: {left:?}"
    );
}

#[test]
fn offline_builds_use_the_cache_only() {
    let f = Fixture::new();
    let out = f.out("o");
    let offline = |f: &Fixture| {
        f.project.run(&[
            "build",
            "--distro",
            "test",
            "--offline",
            "--out",
            out.to_str().unwrap(),
            "--cache-dir",
            f.cache().to_str().unwrap(),
        ])
    };
    let o = offline(&f);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("offline")
            && e.contains("libc6 2.41-12 (amd64)")
            && e.contains("busybox-static 1.37 (arm64)"),
        "{e}"
    );
    assert!(!out.exists(), "a failed build must not create the output");
    let o = f.run(&["fetch", "--distro", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = f.server.paths().len();
    let o = offline(&f);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        f.server.paths().len(),
        before,
        "offline must not touch the network"
    );
}

/// A .deb no mirror delivers: only when every mirror answered 404 may the lock be too old;
/// a mirror that cannot be reached says so, and nothing points at the lock.
#[test]
fn a_missing_deb_is_an_old_lock_only_when_mirrors_say_not_found() {
    let f = Fixture::new();
    let pool = "debian/pool/main/l/libc6/libc6_2.41-12_amd64.deb";
    let out = f.out("o");
    let cache = f.cache();
    let build = |mirror: &str| {
        f.project.run(&[
            "build",
            "--distro",
            "test",
            "--out",
            out.to_str().unwrap(),
            "base",
            "--arch",
            "amd64",
            "--mirror",
            mirror,
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
    };
    // Nothing listens on the mirror's port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let o = build(&format!("http://127.0.0.1:{port}/debian"));
    let e = stderr(&o);
    let last = e.lines().last().unwrap();
    assert!(!o.status.success());
    assert!(
        last.contains("connection refused: nothing listens there")
            && last.contains("could not be reached")
            && !last.contains("older than"),
        "{e}"
    );
    // The mirror answers, without the file.
    std::fs::remove_file(f.archive.root.join(pool)).unwrap();
    let o = build(&(f.server.url() + "debian"));
    let e = stderr(&o);
    let last = e.lines().last().unwrap();
    assert!(
        last.contains("not found (HTTP 404)")
            && last.contains("the lock may be older than the mirrors keep"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn a_mirror_serving_other_bytes_is_refused_and_nothing_is_cached() {
    let f = Fixture::new();
    let t = f
        .archive
        .root
        .join("debian/pool/main/l/libc6/libc6_2.41-12_amd64.deb");
    let mut bytes = std::fs::read(&t).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&t, &bytes).unwrap();
    let o = f.build("o", &["base", "--arch", "amd64"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    let last = e.lines().last().unwrap();
    assert!(
        last.starts_with(
            "error: libc6 2.41-12 (amd64): no mirror delivered pool/main/l/libc6/libc6_2.41-12_amd64.deb"
        ) && last.contains("served sha256")
            && last.contains("inconsistent or tampered")
            && !last.contains("older"),
        "{e}"
    );
    assert!(!f.out("o").exists());
    let cached: Vec<_> = std::fs::read_dir(f.cache().join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let lock = f.project.read("snapshots/test.lock");
    for c in cached {
        assert!(
            lock.contains(c.to_str().unwrap()),
            "unexpected cache entry {c:?}"
        );
    }
}

#[test]
fn unsafe_packages_fail_naming_the_package_and_path() {
    let cases: Vec<(Raw, &str)> = vec![
        (Raw::file("./../../etc/evil", b"abc"), "/../../etc/evil"),
        (
            Raw {
                kind: tar::EntryType::Block,
                ..Raw::file("./dev/sda", b"")
            },
            "dev/sda",
        ),
        (
            Raw::link(
                tar::EntryType::Symlink,
                "./usr/lib/esc",
                "../../../etc/shadow",
            ),
            "usr/lib/esc",
        ),
        (
            Raw {
                mode: 0o4755,
                ..Raw::file("./usr/bin/sudo", b"abc")
            },
            "usr/bin/sudo",
        ),
    ];
    for (entry, needle) in cases {
        let deb = hostile(&[entry]);
        let f = Fixture::with_packages(&|a| {
            let mut v = debs(a);
            let mut p = pkg("evil", "1", a, &[]);
            p.deb = Some(deb.clone());
            v.push(p);
            v
        });
        f.project
            .write("rules/evil.toml", "distros = ['test']\n[packages.evil]\n");
        let o = f.run(&["pin", "--distro", "test"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = f.build("o", &["evil", "--arch", "amd64"]);
        assert!(!o.status.success(), "{needle} was accepted");
        let e = stderr(&o);
        let last = e.lines().last().unwrap();
        assert!(
            last.starts_with("error: evil 1 (amd64)") && last.contains(needle),
            "{needle}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
        assert!(!f.out("o").join("evil-test").exists());
    }
}

#[test]
fn rule_mistakes_are_reported_against_the_rule_file() {
    let f = Fixture::new();
    // A typo in a declared path.
    f.project.write(
        "rules/base.toml",
        &BASE.replace("?/usr/lib64/*", "/usr/lib65/*"),
    );
    let o = f.build("o", &["base"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("rules/base.toml: package libc6: path /usr/lib65/* matches nothing"),
        "{e}"
    );
    // A typo in a drop glob drops nothing, silently, unless it is an error; `?` marks one
    // that may match nothing, and one that matches builds.
    for (drop, fails) in [
        ("/usr/lib/*/gconv/typo/**", true),
        ("?/usr/lib/*/gconv/typo/**", false),
        ("/usr/lib/*/gconv/**", false),
    ] {
        f.project
            .write("rules/base.toml", &format!("{BASE}drop = [{drop:?}]\n"));
        let o = f.build("drops", &["base"]);
        let e = stderr(&o);
        assert_eq!(!o.status.success(), fails, "{drop}: {e}");
        if fails {
            assert!(
                e.lines().last().unwrap().contains(
                    "rules/base.toml: package libc6: drop /usr/lib/*/gconv/typo/** matches nothing in libc6"
                ),
                "{e}"
            );
        }
    }
    // A root the lock does not have: the lock predates the rule.
    f.project
        .write("rules/base.toml", &format!("{BASE}[packages.tools]\n"));
    let o = f.build("o", &["base"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("names tools") && e.contains("debless pin"),
        "{e}"
    );
    // Setuid without allow_setuid.
    f.project.write("rules/base.toml", BASE);
    f.project.write(
        "rules/tools.toml",
        &TOOLS.replace("allow_setuid = [\"/usr/sbin/suidtool\"]", ""),
    );
    let o = f.build("o", &["tools"]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("usr/sbin/suidtool") && e.contains("allow_setuid"),
        "{e}"
    );
    assert!(!f.out("o").exists());
}

#[test]
fn a_rebuild_replaces_the_layout_atomically() {
    let f = Fixture::new();
    let out = f.build_ok("o", &["static", "--variant", "latest"]);
    let layout = out.join("static-test");
    let before = tags(&layout);
    // A failing build (a typo in another rule) leaves the previous layout untouched.
    f.project
        .write("rules/base.toml", &BASE.replace("?/usr/lib64/*", "/nope/*"));
    let o = f.build("o", &[]);
    assert!(!o.status.success());
    assert_eq!(tags(&layout), before);
    let mut leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    leftovers.sort();
    assert_eq!(
        leftovers,
        ["static-test", "static-test.spdx"],
        "temporary files left in --out"
    );
}

#[test]
fn a_corrupted_cache_entry_is_caught_removed_and_refetched() {
    let f = Fixture::new();
    f.build_ok("o", &["base", "--arch", "amd64", "--variant", "latest"]);
    let lock =
        debless::snapshot::lock::Lock::read(&f.project.path().join("snapshots/test.lock")).unwrap();
    let libc = lock
        .packages
        .iter()
        .find(|p| p.name == "libc6" && p.arch == "amd64")
        .unwrap();
    let cached = f.cache().join("sha256").join(libc.sha256.hex());
    let mut bytes = std::fs::read(&cached).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x01;
    std::fs::write(&cached, &bytes).unwrap();
    // Without the layer cache the build must read the .deb again.
    std::fs::remove_dir_all(f.cache().join("layers")).unwrap();
    // Same size, so only the hash can tell.
    let o = f.build(
        "o2",
        &[
            "base",
            "--arch",
            "amd64",
            "--variant",
            "latest",
            "--offline",
        ],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("libc6 2.41-12 (amd64): the cached .deb does not match"),
        "{e}"
    );
    assert!(!cached.exists(), "the corrupt entry must be removed");
    assert!(!f.out("o2").exists());
    // The next online build downloads it again and succeeds.
    f.build_ok("o2", &["base", "--arch", "amd64", "--variant", "latest"]);
    assert!(cached.exists());
}

#[test]
fn two_builds_sharing_one_cache_at_once_both_succeed() {
    let f = Fixture::new();
    let spawn = |out: &str| {
        let o = f.out(out);
        Command::new(env!("CARGO_BIN_EXE_debless"))
            .arg("-C")
            .arg(f.project.path())
            .args(["-q", "build", "--distro", "test", "--out"])
            .arg(&o)
            .arg("--mirror")
            .arg(f.server.url() + "debian")
            .arg("--cache-dir")
            .arg(f.cache())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("a"), spawn("b"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    assert!(tree_bytes(&f.out("a")) == tree_bytes(&f.out("b")));
    // Each .deb entered the cache once, whole.
    let lock =
        debless::snapshot::lock::Lock::read(&f.project.path().join("snapshots/test.lock")).unwrap();
    for p in &lock.packages {
        let bytes = std::fs::read(f.cache().join("sha256").join(p.sha256.hex())).unwrap();
        assert_eq!(common::sha256(&bytes), p.sha256.hex(), "{}", p.name);
    }
}

#[test]
fn a_truncated_pinned_deb_fails_naming_the_package() {
    let whole = build_deb(
        "broken",
        "1",
        "amd64",
        &[("usr/lib/big", DebFile::File(vec![7u8; 200_000], 0o644))],
        "xz",
    );
    let cut = whole[..whole.len() / 2].to_vec();
    let f = Fixture::with_packages(&|a| {
        let mut v = debs(a);
        let mut p = pkg("broken", "1", a, &[]);
        p.deb = Some(cut.clone());
        v.push(p);
        v
    });
    f.project.write(
        "rules/broken.toml",
        "distros = ['test']\n[packages.broken]\n",
    );
    let o = f.run(&["pin", "--distro", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.build("o", &["broken", "--arch", "amd64"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one clear line: {e}");
    assert!(
        errors[0].starts_with("error: broken 1 (amd64): package broken: "),
        "{e}"
    );
    assert!(errors[0].contains("truncated"), "{e}");
    assert!(!e.contains("panicked"));
    assert!(!f.out("o").exists());
}

#[test]
fn a_full_disk_fails_cleanly_and_leaves_no_temporary_files() {
    // A real ENOSPC needs a small filesystem: a 64 KiB tmpfs (root only, as in CI).
    if !common::require(
        euid() == 0,
        "root (to mount a 64 KiB tmpfs)",
        "sudo -E make test (CI runs as root)",
    ) {
        return;
    }
    let f = Fixture::new();
    let out = f.out("full");
    std::fs::create_dir_all(&out).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        mounted,
        "root could not mount a tmpfs for the full-disk test"
    );
    let o = f.build("full", &[]);
    let _ = Command::new("umount").arg(&out).status();
    assert!(!o.status.success(), "the build cannot fit in 64 KiB");
    let e = stderr(&o);
    assert_eq!(
        e.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{e}"
    );
    assert!(
        e.contains("No space left on device") || e.contains("os error 28"),
        "{e}"
    );
    assert!(!e.contains("panicked"), "{e}");
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
}

/// A self-signed CA certificate in PEM, made by the real openssl.
fn test_ca(dir: &Path, cn: &str) -> String {
    let key = dir.join(format!("{cn}.key"));
    let crt = dir.join(format!("{cn}.crt"));
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "3650",
            ])
            .arg("-subj")
            .arg(format!("/CN={cn}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt),
    );
    std::fs::read_to_string(crt).unwrap()
}

#[test]
fn generators_write_what_maintainer_scripts_would() {
    let tmp = tempfile::tempdir().unwrap();
    let pem = test_ca(tmp.path(), "Debless Test Root");
    // busybox's applet name table, as the real binary carries it.
    let mut busybox = b"\x7fELF...code...\0".to_vec();
    for a in [
        "[", "[[", "cat", "echo", "ls", "mkdir", "rm", "sh", "sleep", "test", "true",
    ] {
        busybox.extend_from_slice(a.as_bytes());
        busybox.push(0);
    }
    busybox.extend_from_slice(b"\0\x05more code");
    // Architecture: all, so one .deb for both index files (built once: two dpkg-deb runs
    // a second apart would differ in their mtimes).
    let ca_deb = build_deb(
        "ca-certificates",
        "20250419",
        "all",
        &[(
            "usr/share/ca-certificates/mozilla/Debless_Test_Root.crt",
            DebFile::File(pem.clone().into_bytes(), 0o644),
        )],
        "xz",
    );
    let f = Fixture::with_packages(&|a| {
        let mut v: Vec<Pkg> = debs(a)
            .into_iter()
            .filter(|p| p.name != "busybox-static")
            .collect();
        let mut bb = pkg("busybox-static", "1.37", a, &[]);
        bb.deb = Some(build_deb(
            "busybox-static",
            "1.37",
            a,
            &[("bin/busybox", DebFile::File(busybox.clone(), 0o755))],
            "xz",
        ));
        let mut ca = pkg("ca-certificates", "20250419", "all", &[]);
        ca.deb = Some(ca_deb.clone());
        v.extend([bb, ca]);
        v
    });
    f.project.write(
        "rules/static.toml",
        &format!(
            "{STATIC}[packages.ca-certificates]\n{}",
            r#"
[generate.users]
users = [{ name = "root", uid = 0, gid = 0, home = "/root" }, { name = "nonroot", uid = 65532, gid = 65532, home = "/home/nonroot" }]
groups = [{ name = "root", gid = 0 }, { name = "nonroot", gid = 65532 }]
[generate.os-release]
fields = [["PRETTY_NAME", "Distroless"], ["NAME", "{NAME}"]]
[generate.ca-bundle]
[generate.dpkg-status]
[generate.files."/etc/nsswitch.conf"]
content = "hosts: files dns\n"
[generate.symlinks]
"/usr/bin/arch-link" = "/usr/lib/{arch}/tool"
"#
        ),
    );
    f.project.write(
        "rules/variants/debug.toml",
        "distros = ['test']\n[config]\ndefault_entrypoint = ['/busybox/sh']\n[packages.busybox-static]\n[generate.busybox]\ndir = '/busybox'\n",
    );
    let o = f.run(&["pin", "--distro", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = f.build_ok("o", &["base", "--arch", "amd64"]);
    let root = unpack(&out.join("base-test"), "debug-amd64", &f.out("bundle"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(
        read("etc/passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    assert_eq!(read("etc/group"), "root:x:0:\nnonroot:x:65532:\n");
    let home = std::fs::metadata(root.join("home/nonroot")).unwrap();
    assert_eq!(
        (home.uid(), home.permissions().mode() & 0o7777),
        (65532, 0o700)
    );
    // base-files' os-release is replaced, not shipped twice.
    assert_eq!(
        read("usr/lib/os-release"),
        "PRETTY_NAME=\"Distroless\"\nNAME=\"Debian\"\n"
    );
    assert_eq!(read("etc/ssl/certs/ca-certificates.crt"), pem);
    assert_eq!(read("etc/nsswitch.conf"), "hosts: files dns\n");
    assert_eq!(
        std::fs::read_link(root.join("usr/bin/arch-link"))
            .unwrap()
            .to_str()
            .unwrap(),
        "/usr/lib/amd64/tool"
    );
    // dpkg status for every package of every layer, md5sums only for shipped files.
    let status = read("var/lib/dpkg/status.d/base-files");
    assert!(
        status.starts_with("Package: base-files\nStatus: install ok installed\n"),
        "{status}"
    );
    let sums = read("var/lib/dpkg/status.d/base-files.md5sums");
    assert!(
        sums.contains("  usr/share/doc/base-files/copyright\n"),
        "{sums}"
    );
    assert!(
        !sums.contains("changelog.gz"),
        "md5sums lists a file the image does not ship: {sums}"
    );
    for p in ["libc6", "busybox-static", "ca-certificates"] {
        assert!(root.join("var/lib/dpkg/status.d").join(p).is_file(), "{p}");
    }
    // busybox moved under /busybox with its applets; no shell anywhere else.
    assert_eq!(
        std::fs::read(root.join("busybox/busybox")).unwrap(),
        busybox
    );
    assert_eq!(
        std::fs::read_link(root.join("busybox/sh"))
            .unwrap()
            .to_str()
            .unwrap(),
        "busybox"
    );
    assert!(!root.join("usr/bin/busybox").exists());
    let layout = out.join("base-test");
    let m = blob(&layout, &tags(&layout)["debug-amd64"]);
    let c = blob(&layout, m["config"]["digest"].as_str().unwrap());
    assert_eq!(c["config"]["Entrypoint"][0], "/busybox/sh");
    let latest = unpack(&layout, "latest-amd64", &f.out("bundle2"));
    assert!(!latest.join("busybox").exists());
}

#[test]
fn json_summary_lists_every_tag_with_sizes_matching_the_layout() {
    let f = Fixture::new();
    let o = f.build("o", &["base", "--arch", "arm64", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 4, "latest, nonroot, debug, debug-nonroot");
    let layout = f.out("o").join("base-test");
    for i in images {
        let tag = format!("{}-arm64", i["tag"].as_str().unwrap());
        assert_eq!(i["digest"], tags(&layout)[&tag].as_str());
        let m = blob(&layout, &tags(&layout)[&tag]);
        let sum: u64 = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["size"].as_u64().unwrap())
            .sum();
        assert_eq!(i["compressed_bytes"].as_u64().unwrap(), sum);
        assert!(i["uncompressed_bytes"].as_u64().unwrap() > sum);
    }
}

#[test]
fn inspect_reports_packages_layers_and_largest_files() {
    let f = Fixture::new();
    let rules = f.project.read("rules/static.toml");
    f.project.write(
        "rules/static.toml",
        &format!("{rules}[generate.dpkg-status]\n"),
    );
    f.build_ok("o", &["base", "--variant", "latest"]);
    let target = format!("{}:latest", f.out("o").join("base-test").display());
    let o = f.run(&["inspect", &target, "--json", "--largest", "3"]);
    let o = if o.status.success() {
        o
    } else {
        // `run` appends --mirror/--cache-dir, which inspect does not take.
        f.project
            .run(&["inspect", &target, "--json", "--largest", "3"])
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let images = v["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "both platforms of the index");
    let amd = images
        .iter()
        .find(|i| i["platform"] == "linux/amd64")
        .unwrap();
    let pkgs: Vec<&str> = amd["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(pkgs, ["base-files", "libc6"]);
    assert_eq!(amd["packages"][1]["version"], "2.41-12");
    let layers = amd["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[1]["packages"][0], "libc6");
    assert!(layers[1]["created_by"].as_str().unwrap().contains("libc6"));
    assert_eq!(amd["largest_files"].as_array().unwrap().len(), 3);
    let manifest = blob(
        &f.out("o").join("base-test"),
        &tags(&f.out("o").join("base-test"))["latest-amd64"],
    );
    assert_eq!(layers[0]["size"], manifest["layers"][0]["size"]);
    // A missing tag names the ones that exist.
    let o = f.project.run(&[
        "inspect",
        &format!("{}:nope", f.out("o").join("base-test").display()),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no tag \"nope\"; tags: "),
        "{}",
        stderr(&o)
    );
}

#[test]
fn every_image_tag_and_index_gets_an_spdx_document_of_what_it_ships() {
    let f = Fixture::new();
    let rules = f.project.read("rules/static.toml");
    f.project.write(
        "rules/static.toml",
        &format!("{rules}[generate.dpkg-status]\n"),
    );
    let out = f.build_ok("o", &["base"]);
    let dir = out.join("base-test.spdx");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        12,
        "4 tags x (2 platforms + 1 index): {names:?}"
    );
    let doc = json(&dir.join("latest-amd64.spdx.json"));
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    let layout = out.join("base-test");
    let digest = tags(&layout)["latest-amd64"].clone();
    assert!(
        doc.to_string()
            .contains(digest.trim_start_matches("sha256:"))
    );
    let pkgs = doc["packages"].as_array().unwrap();
    let libc = pkgs.iter().find(|p| p["name"] == "libc6").unwrap();
    assert_eq!(libc["versionInfo"], "2.41-12");
    let purl = libc["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap();
    assert!(
        purl.starts_with("pkg:deb/test/libc6@2.41-12?arch=amd64"),
        "{purl}"
    );
    let lock =
        debless::snapshot::lock::Lock::read(&f.project.path().join("snapshots/test.lock")).unwrap();
    let locked = lock
        .packages
        .iter()
        .find(|p| p.name == "libc6" && p.arch == "amd64")
        .unwrap();
    assert!(libc["checksums"].to_string().contains(&locked.sha256.hex()));
    // Only the files the image ships: libc's i18n data is not in its rule's paths.
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("/libc.so.6")), "{files:?}");
    assert!(!files.iter().any(|f| f.contains("i18n")), "{files:?}");
    // The debug tag's document also lists busybox; latest's does not.
    let debug = json(&dir.join("debug-amd64.spdx.json"));
    assert!(
        debug["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "busybox-static")
    );
    assert!(!pkgs.iter().any(|p| p["name"] == "busybox-static"));
    let index = json(&dir.join("latest.spdx.json"));
    assert_eq!(index["externalDocumentRefs"].as_array().unwrap().len(), 2);
    // Deterministic: a second build writes the same documents.
    let again = f.build_ok("o2", &["base"]);
    assert!(tree_bytes(&dir) == tree_bytes(&again.join("base-test.spdx")));
}

#[test]
fn a_dated_lock_builds_from_the_snapshot_service_the_manifest_names() {
    let f = Fixture::new();
    // The snapshot service's layout: /archive/<archive>/<timestamp>/ (a link to the archive).
    let stamp_dir = f.archive.root.join("archive/debian");
    std::fs::create_dir_all(&stamp_dir).unwrap();
    std::os::unix::fs::symlink("../../debian", stamp_dir.join("20261122T000000Z")).unwrap();
    let manifest = f.project.read("snapshots/test.toml");
    f.project.write(
        "snapshots/test.toml",
        &format!(
            "snapshot_service = \"{}archive/{{archive}}/{{timestamp}}/\"\n{manifest}",
            f.server.url()
        ),
    );
    let cache = f.cache();
    let o = f.project.run(&[
        "pin",
        "--distro",
        "test",
        "--date",
        "2026-11-22T00:00:00Z",
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        f.project
            .read("snapshots/test.lock")
            .contains("snapshot = \"20261122T000000Z\"")
    );
    let out = f.out("o");
    let o = f.project.run(&[
        "build",
        "base",
        "--distro",
        "test",
        "--arch",
        "amd64",
        "--variant",
        "latest",
        "--out",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let debs: Vec<String> = f
        .server
        .paths()
        .into_iter()
        .filter(|p| p.ends_with(".deb"))
        .collect();
    assert!(!debs.is_empty());
    assert!(
        debs.iter()
            .all(|p| p.starts_with("/archive/debian/20261122T000000Z/pool/")),
        "{debs:?}"
    );
    // Without a service anywhere, a dated pin says how to name one.
    f.project.write("snapshots/test.toml", &manifest);
    let o = f
        .project
        .run(&["pin", "--distro", "test", "--date", "2026-11-22T00:00:00Z"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("add snapshot_service to the manifest"),
        "{}",
        stderr(&o)
    );
}
