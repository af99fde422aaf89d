//! debless replaces only what it wrote, writes through no link, and leaves nothing behind:
//! output paths that hold a user's files or clash with each other are refused before any
//! work; links planted in the cache are replaced or refused, never written through; a
//! build or pin killed at any of its steps leaves the previous outputs, lock and cache
//! sound, and the next run removes every temporary it left. `SECURITY.md` lists these
//! cases with the others.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::hostile::{Fixture, State, assert_cache_sound, listing, plain, refused, rule};
use common::{sha256, stderr};

/// A fixture with one built image `img` in `out/`, and the state it left.
fn built() -> (Fixture, State) {
    let f = Fixture::new(vec![], &[]);
    let o = build(&f, &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = f.state("cache");
    (f, s)
}

/// `debless build img --out <project>/out EXTRA...`.
fn build(f: &Fixture, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let out = f.path("out");
    let mut args = vec![
        "build",
        "--distro",
        "test",
        "img",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    f.run(&args, "cache", env)
}

/// The build is refused in one line naming `needles`, before anything is fetched or
/// written: lock, `out/` and cache as they were, `user` (a path the user owns) untouched.
fn refused_before_work(f: &Fixture, extra: &[&str], needles: &[&str], user: &Path) {
    let before = f.state("cache");
    let user_before = contents(user);
    let requests = f.server.paths().len();
    let o = build(f, extra, &[]);
    refused(&o, needles);
    assert_eq!(
        f.state("cache"),
        before,
        "the build changed the lock, out or cache"
    );
    assert_eq!(contents(user), user_before, "the user's files changed");
    assert_eq!(
        f.server.paths().len(),
        requests,
        "the build fetched something"
    );
}

/// Every file under `p` (or `p` itself) with its bytes; links as their targets.
fn contents(p: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_owned()];
    while let Some(q) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&q) else {
            continue;
        };
        let rel = q.strip_prefix(p).unwrap().display().to_string();
        if meta.file_type().is_symlink() {
            let t = std::fs::read_link(&q).unwrap();
            out.push((rel, t.display().to_string().into_bytes()));
        } else if meta.is_dir() {
            out.push((format!("{rel}/"), vec![]));
            for e in std::fs::read_dir(&q).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else {
            out.push((rel, std::fs::read(&q).unwrap()));
        }
    }
    out.sort();
    out
}

// ---- Outputs: only debless's own -----------------------------------------------------

#[test]
fn an_sbom_dir_the_user_owns_is_left_alone() {
    let f = Fixture::new(vec![], &[]);
    // --sbom-dir D: D/img-test is the user's.
    let d = f.path("docs");
    std::fs::create_dir_all(d.join("img-test")).unwrap();
    std::fs::write(d.join("img-test/notes.txt"), "mine").unwrap();
    refused_before_work(
        &f,
        &["--sbom-dir", d.to_str().unwrap()],
        &[
            "img-test",
            "exists and is not an SPDX directory debless wrote, so it is left alone",
            "--sbom-dir",
        ],
        &d,
    );
    // The default place, out/img-test.spdx, a file of the user's.
    let out = f.path("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("img-test.spdx"), "mine").unwrap();
    refused_before_work(
        &f,
        &[],
        &[
            "out/img-test.spdx",
            "is not an SPDX directory debless wrote",
        ],
        &out,
    );
    // An SPDX directory debless wrote is replaced as before.
    std::fs::remove_file(out.join("img-test.spdx")).unwrap();
    let o = build(&f, &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = build(
        &f,
        &["--variant", "latest"],
        &[("SOURCE_DATE_EPOCH", "1000")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn out_and_sbom_dir_one_path_is_refused_before_any_work() {
    let f = Fixture::new(vec![], &[]);
    let out = f.path("out");
    refused_before_work(
        &f,
        &["--sbom-dir", out.to_str().unwrap()],
        &[
            "out/img-test",
            "the image layout of img-test is the same path as the SPDX directory of img-test",
        ],
        &out,
    );
    // A link to --out is --out.
    std::fs::create_dir_all(&out).unwrap();
    let link = f.path("alias");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    refused_before_work(
        &f,
        &["--sbom-dir", link.to_str().unwrap()],
        &["is the same path as the SPDX directory of img-test"],
        &out,
    );
    // One inside another: the SPDX directory in the layout the build replaces.
    refused_before_work(
        &f,
        &["--sbom-dir", out.join("img-test").to_str().unwrap()],
        &["the image layout of img-test contains the SPDX directory of img-test"],
        &out,
    );
    // The cache inside an output the build would replace.
    let o = f.run(
        &[
            "build",
            "--distro",
            "test",
            "img",
            "--out",
            out.to_str().unwrap(),
        ],
        "out/img-test/cache",
        &[],
    );
    refused(&o, &["would replace the cache directory"]);
}

#[test]
fn an_archive_path_holding_something_else_is_left_alone() {
    let f = Fixture::new(vec![], &[]);
    let out = f.path("out");
    std::fs::create_dir_all(&out).unwrap();
    // A layout directory where the archive would go, and then a user's file.
    std::fs::create_dir_all(out.join("img-test.tar/blobs")).unwrap();
    std::fs::write(out.join("img-test.tar/oci-layout"), "{}").unwrap();
    refused_before_work(
        &f,
        &["--format", "oci-archive"],
        &["out/img-test.tar", "is not an image archive debless wrote"],
        &out,
    );
    std::fs::remove_dir_all(out.join("img-test.tar")).unwrap();
    std::fs::write(out.join("img-test.docker.tar"), vec![0u8; 4096]).unwrap();
    refused_before_work(
        &f,
        &["--format", "docker-archive"],
        &[
            "out/img-test.docker.tar",
            "is not an image archive debless wrote",
        ],
        &out,
    );
    // Archives debless wrote are replaced.
    std::fs::remove_file(out.join("img-test.docker.tar")).unwrap();
    for format in ["oci-archive", "docker-archive"] {
        for epoch in ["1000", "2000"] {
            let o = build(&f, &["--format", format], &[("SOURCE_DATE_EPOCH", epoch)]);
            assert!(o.status.success(), "{format}: {}", stderr(&o));
        }
    }
}

#[test]
fn a_layout_debless_did_not_write_is_left_alone() {
    let f = Fixture::new(vec![], &[]);
    let out = f.path("out");
    let theirs = out.join("img-test");
    // Another tool's layout: nothing in its index says debless made it.
    std::fs::create_dir_all(theirs.join("blobs/sha256")).unwrap();
    std::fs::write(
        theirs.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    std::fs::write(
        theirs.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}]}"#,
    )
    .unwrap();
    refused_before_work(
        &f,
        &[],
        &["out/img-test", "is not an image layout debless wrote"],
        &out,
    );
    // A layout debless wrote, with a file of the user's added: not replaced either.
    std::fs::remove_dir_all(&theirs).unwrap();
    let o = build(&f, &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(theirs.join("README"), "mine").unwrap();
    refused_before_work(
        &f,
        &[],
        &["out/img-test", "is not an image layout debless wrote"],
        &out,
    );
}

// ---- The cache: no link followed ------------------------------------------------------

#[test]
fn links_planted_in_the_cache_are_replaced_never_written_through() {
    let pkg = plain("victim", &vec![9u8; 100_000]);
    let sha = sha256(&pkg.bytes());
    let f = Fixture::new(vec![pkg], &[("rules/victim.toml", rule(&["victim"]))]);
    let cache = f.path("cache");
    let outside = f.path("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("precious");
    std::fs::write(&victim, "the user's").unwrap();
    let build_victim = || {
        // Without the layer cache, so that the .deb is needed every time.
        let _ = std::fs::remove_dir_all(cache.join("layers"));
        let out = f.path("out");
        f.run(
            &[
                "build",
                "--distro",
                "test",
                "victim",
                "--out",
                out.to_str().unwrap(),
            ],
            "cache",
            &[],
        )
    };
    for dir in ["partial", "sha256", "locks"] {
        std::fs::create_dir_all(cache.join(dir)).unwrap();
    }
    // A symlink where the partial download goes, one where the lock file goes.
    std::os::unix::fs::symlink(&victim, cache.join("partial").join(&sha)).unwrap();
    std::os::unix::fs::symlink(outside.join("new-lock"), cache.join("locks").join(&sha)).unwrap();
    let o = build_victim();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "the user's");
    assert!(
        !outside.join("new-lock").exists(),
        "a lock file was made outside"
    );
    assert_cache_sound(&cache);

    // A symlink in place of a cached .deb: not read through, removed and fetched again.
    let entry = cache.join("sha256").join(&sha);
    std::fs::remove_file(&entry).unwrap();
    std::fs::copy(
        f.archive.root.join("debian").join(f.pool("victim")),
        outside.join("copy"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.join("copy"), &entry).unwrap();
    let o = build_victim();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !std::fs::symlink_metadata(&entry)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_cache_sound(&cache);

    // A hard link to the user's file where the partial download goes: not written into.
    std::fs::remove_file(&entry).unwrap();
    std::fs::hard_link(&victim, cache.join("partial").join(&sha)).unwrap();
    let o = build_victim();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "the user's");

    // A whole cache directory that is a link is refused, naming it.
    std::fs::remove_file(&entry).unwrap();
    std::fs::remove_dir_all(cache.join("partial")).unwrap();
    std::os::unix::fs::symlink(&outside, cache.join("partial")).unwrap();
    let before = contents(&outside);
    let o = build_victim();
    refused(
        &o,
        &["partial", "is a link or not a directory", "remove it"],
    );
    assert_eq!(contents(&outside), before);
}

// ---- Killed at any moment -------------------------------------------------------------

/// Every debless temporary under `dir`: names with `.debless-` (pid-named temporaries and
/// directories moved aside), and partial downloads.
fn temporaries(dir: &Path) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|l| l.contains(".debless-") || l.starts_with("partial/") && l != "partial/")
        .collect()
}

/// The output layout is a whole, readable one.
fn assert_layout_whole(dir: &Path) {
    let r = debless::oci::LayoutReader::open(dir).unwrap();
    for d in r.blob_digests().unwrap() {
        let size = std::fs::metadata(dir.join(d.blob_path())).unwrap().len();
        r.verify_blob(&d, size).unwrap();
    }
}

/// Run `args` with SIGKILL at `point`; it must die there.
fn killed_at(f: &Fixture, args: &[&str], cache: &str, point: &str, epoch: &str) {
    let o = f.run(
        args,
        cache,
        &[
            ("DEBLESS_TEST_KILL_AT", point),
            ("SOURCE_DATE_EPOCH", epoch),
        ],
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        o.status.signal(),
        Some(9),
        "{point}: not killed there: {}",
        stderr(&o)
    );
}

#[test]
fn a_build_killed_at_any_step_leaves_the_old_outputs_and_the_next_cleans_up() {
    let (f, _) = built();
    let out = f.path("out");
    let cache = f.path("cache");
    let layout = out.join("img-test");
    let args_for = |format: &'static str| -> Vec<String> {
        vec![
            "build".into(),
            "--distro".into(),
            "test".into(),
            "img".into(),
            "--out".into(),
            out.display().to_string(),
            "--format".into(),
            format.into(),
        ]
    };
    // Each point with the format that reaches it, and whether an output was already
    // replaced when it comes; each run makes new outputs (another SOURCE_DATE_EPOCH), so
    // every write step is taken.
    let points = [
        ("layer-written", "oci", false),
        ("layout-staged", "oci", false),
        ("dir-exchanged", "oci", true),
        ("spdx-staged", "oci", true),
        ("archive-staged", "oci-archive", false),
    ];
    for (i, (point, format, replaced)) in points.iter().enumerate() {
        let args = args_for(format);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let epoch = (1000 + i).to_string();
        let o = f.run(&args, "cache", &[("SOURCE_DATE_EPOCH", &epoch)]);
        assert!(o.status.success(), "{}", stderr(&o));
        let before = contents(&out);
        let lock = std::fs::read(f.lock_path()).unwrap();
        killed_at(&f, &args, "cache", point, &(2000 + i).to_string());
        assert_eq!(std::fs::read(f.lock_path()).unwrap(), lock);
        assert_cache_sound(&cache);
        if *replaced {
            // Killed after the one-step exchange: each output is whole, old or new.
            assert_layout_whole(&layout);
        } else {
            let after: Vec<_> = contents(&out)
                .into_iter()
                .filter(|(p, _)| !p.contains(".debless-"))
                .collect();
            assert_eq!(after, before, "{point}: the old outputs changed");
        }
        let o = f.run(&args, "cache", &[("SOURCE_DATE_EPOCH", "3000")]);
        assert!(o.status.success(), "{point}: {}", stderr(&o));
        assert_eq!(temporaries(&out), Vec::<String>::new(), "{point}: in out");
        assert_eq!(
            temporaries(&cache),
            Vec::<String>::new(),
            "{point}: in the cache"
        );
        assert_cache_sound(&cache);
    }
    assert_layout_whole(&layout);
}

#[test]
fn a_build_killed_mid_download_is_resumed_and_leaves_no_partial_behind() {
    let (f, _) = built();
    let out = f.path("out");
    let args = [
        "build",
        "--distro",
        "test",
        "img",
        "--out",
        out.to_str().unwrap(),
    ];
    // A fresh cache: `good` must be downloaded, and the kill comes after its first bytes.
    let before = contents(&out);
    killed_at(&f, &args, "cache2", "download-body", "1000");
    assert_eq!(contents(&out), before);
    let cache2 = f.path("cache2");
    assert_cache_sound(&cache2);
    assert!(
        !temporaries(&cache2).is_empty(),
        "a partial download is kept to resume"
    );
    let o = f.run(&args, "cache2", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(temporaries(&cache2), Vec::<String>::new());
    assert_eq!(temporaries(&out), Vec::<String>::new());
    assert_cache_sound(&cache2);
}

#[test]
fn a_pin_killed_while_caching_an_index_leaves_the_lock_and_the_next_cleans_up() {
    let (f, _) = built();
    let lock = std::fs::read(f.lock_path()).unwrap();
    killed_at(
        &f,
        &["pin", "--distro", "test"],
        "cache3",
        "cache-put",
        "1000",
    );
    assert_eq!(std::fs::read(f.lock_path()).unwrap(), lock);
    let cache3: PathBuf = f.path("cache3");
    assert!(
        !temporaries(&cache3).is_empty(),
        "the kill left a temporary"
    );
    let o = f.run(&["pin", "--distro", "test"], "cache3", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(temporaries(&cache3), Vec::<String>::new());
    assert_cache_sound(&cache3);
}
