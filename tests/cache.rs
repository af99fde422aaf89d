//! `debless cache size` and `debless cache prune` on a cache a hermetic build filled.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::fixture::*;
use common::stderr;
use serde_json::Value;

/// Every regular file under `dir`, with its size.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                out.push((e.path(), m.len()));
            }
        }
    }
    out.sort();
    out
}

/// The .debs in the cache, by SHA256 (their file names).
fn cached_debs(cache: &Path) -> BTreeSet<String> {
    std::fs::read_dir(cache.join("sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read(p).unwrap().starts_with(b"!<arch>\n"))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Make a file look last used `days` ago.
fn age(path: &Path, days: u64) {
    let t = SystemTime::now() - Duration::from_secs(days * 86_400);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
        .unwrap();
}

fn cache_cmd(f: &Fixture, args: &[&str]) -> std::process::Output {
    let cache = f.cache();
    let mut a = vec!["cache"];
    a.extend(args);
    a.extend(["--cache-dir", cache.to_str().unwrap()]);
    f.project.run(&a)
}

fn cache_json(f: &Fixture, args: &[&str]) -> Value {
    let o = cache_cmd(f, &[args, &["--json"]].concat());
    assert!(o.status.success(), "cache {args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn size_by_kind_adds_up_to_the_files_on_disk() {
    let f = Fixture::new();
    f.build_ok("o", &["base", "--variant", "latest"]);
    let r = cache_json(&f, &["size"]);
    let on_disk = files(&f.cache());
    let bytes: u64 = on_disk.iter().map(|(_, n)| n).sum();
    assert_eq!(r["total"]["bytes"], bytes, "{r}");
    assert_eq!(r["total"]["files"], on_disk.len(), "{r}");
    let kinds = &r["kinds"];
    let sum: u64 = kinds
        .as_object()
        .unwrap()
        .values()
        .map(|k| k["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, bytes);
    // base for two architectures: base-files and libc6 each twice; two layers each.
    assert_eq!(kinds["debs"]["files"], 4, "{r}");
    let deb_bytes: u64 = cached_debs(&f.cache())
        .iter()
        .map(|d| {
            std::fs::metadata(f.cache().join("sha256").join(d))
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(kinds["debs"]["bytes"], deb_bytes);
    // Four layer entries (static and base per architecture) and the blobs they name
    // (static's is the same bytes for both).
    let entries: Vec<Value> = std::fs::read_dir(f.cache().join("layers"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(entries.len(), 4);
    let blobs: BTreeSet<String> = entries
        .iter()
        .map(|e| e["info"]["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds["layers"]["files"], 4 + blobs.len(), "{r}");
    assert!(kinds["indices"]["files"].as_u64().unwrap() >= 1, "{r}");
    // The text form names each kind.
    let o = cache_cmd(&f, &["size"]);
    let text = String::from_utf8_lossy(&o.stdout);
    for k in ["debs", "layers", "sboms", "indices", "total"] {
        assert!(text.contains(k), "{text}");
    }
}

#[test]
fn prune_by_lock_keeps_exactly_its_debs_and_an_offline_build_of_it_still_works() {
    let f = Fixture::new();
    // A second lock: the same snapshot, amd64 only.
    let small = f.project.path().join("amd64.lock");
    let o = f.run(&[
        "pin",
        "--distro",
        "test",
        "--drop-arch",
        "arm64",
        "-o",
        small.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lock = debless::snapshot::lock::Lock::read(&small).unwrap();
    let wanted: BTreeSet<String> = lock.packages.iter().map(|p| p.sha256.hex()).collect();
    f.build_ok("o", &[]);
    let all = cached_debs(&f.cache());
    assert!(all.len() > wanted.len() && wanted.is_subset(&all));

    // Everything was just used: within the default grace period nothing goes.
    let r = cache_json(&f, &["prune", "--keep-lock", small.to_str().unwrap()]);
    assert_eq!(r["removed"].as_array().unwrap().len(), 0, "{r}");

    // A dry run lists what would go and removes nothing.
    let before = files(&f.cache());
    let r = cache_json(
        &f,
        &[
            "prune",
            "--keep-lock",
            small.to_str().unwrap(),
            "--grace",
            "0s",
            "--dry-run",
        ],
    );
    assert_eq!(files(&f.cache()), before, "a dry run changed the cache");
    let listed: BTreeSet<String> = r["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "debs")
        .map(|f| {
            Path::new(f["path"].as_str().unwrap())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(listed, &all - &wanted);

    let r = cache_json(
        &f,
        &[
            "prune",
            "--keep-lock",
            small.to_str().unwrap(),
            "--grace",
            "0s",
        ],
    );
    assert_eq!(cached_debs(&f.cache()), wanted, "{r}");
    // The after-size is what is left on disk.
    let left: u64 = files(&f.cache()).iter().map(|(_, n)| n).sum();
    assert_eq!(r["after"]["total"]["bytes"], left);
    // arm64's layers went with its .debs; amd64's stayed and are used again.
    assert!(
        r["removed_by_kind"]["layers"]["files"].as_u64().unwrap() > 0,
        "{r}"
    );
    let out = f.out("again");
    let o = f.run(&[
        "build",
        "--lock",
        small.to_str().unwrap(),
        "--offline",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["layers"]["made"], 0, "amd64's layers were kept: {v}");
    // And from the .debs alone.
    f.forget_layers();
    let o = f.run(&[
        "build",
        "--lock",
        small.to_str().unwrap(),
        "--offline",
        "--out",
        f.out("again2").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The full lock's arm64 .debs are gone, and an offline build of it says so.
    let o = f.build("full", &["--offline"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("arm64"), "{}", stderr(&o));
}

#[test]
fn prune_by_age_reads_last_use_which_a_build_records() {
    let f = Fixture::new();
    f.build_ok("o", &["base", "--variant", "latest", "--arch", "amd64"]);
    let cache = f.cache();
    // Nothing is 30 days unused yet.
    let r = cache_json(&f, &["prune", "--older-than", "30d", "--grace", "0s"]);
    assert_eq!(r["removed"].as_array().unwrap().len(), 0, "{r}");
    // Everything looks 40 days old; a rebuild takes its layers from the cache and so
    // uses (touches) the layer entries and blobs, not the .debs.
    for (p, _) in files(&cache) {
        age(&p, 40);
    }
    f.build_ok("o2", &["base", "--variant", "latest", "--arch", "amd64"]);
    let r = cache_json(&f, &["prune", "--older-than", "30d", "--grace", "0s"]);
    let kinds: BTreeSet<&str> = r["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains("debs"), "{r}");
    assert!(!kinds.contains("layers"), "used layers were pruned: {r}");
    assert!(cached_debs(&cache).is_empty());
    // The kept layers still build the image without a .deb.
    let o = f.build(
        "o3",
        &[
            "base",
            "--variant",
            "latest",
            "--arch",
            "amd64",
            "--offline",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Without a rule nothing is chosen.
    let o = cache_cmd(&f, &["prune"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--older-than"), "{}", stderr(&o));
}
