//! What commands print: `--json` documents checked against the artifacts they describe
//! (docs/json.md), errors as JSON objects, `diff --exit-code`, summaries for people (sizes,
//! real refs), the offline list, and what `-q` and `-v` leave on stderr.

mod common;

use std::path::Path;
use std::process::Output;

use common::fixture::*;
use common::registry::Registry;
use common::{stderr, stdout};
use debless::snapshot::lock::Lock;
use serde_json::Value;

/// stdout as the one JSON document; the command must have succeeded.
fn doc(o: &Output) -> Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(o)))
}

/// A failure under --json: non-zero, and stdout one line holding the error object.
fn error_doc(o: &Output) -> Value {
    assert!(!o.status.success(), "should have failed: {}", stdout(o));
    let text = stdout(o);
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        stderr(o).contains(message),
        "the text error is printed too: {}",
        stderr(o)
    );
    assert!(v["error"]["kind"].is_string(), "{v}");
    v
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

#[test]
fn build_json_names_each_tags_index_manifests_layout_and_sboms() {
    let f = Fixture::new();
    let d = f.build_json("o", &["--format", "oci,oci-archive"]);
    let tags_doc = d["tags"].as_array().unwrap();
    // 3 images × 4 tags.
    assert_eq!(tags_doc.len(), 12, "{d:#}");
    for t in tags_doc {
        let repo = s(&t["repository"]);
        let tag = s(&t["tag"]);
        assert_eq!(repo, format!("{}-test", s(&t["image"])));
        assert_eq!(s(&t["ref"]), format!("{repo}:{tag}"));
        let layout = Path::new(s(&t["layout"]));
        assert_eq!(layout, f.out("o").join(repo));
        assert_eq!(
            Path::new(s(&t["oci_archive"])),
            f.out("o").join(format!("{repo}.tar"))
        );
        assert!(t["docker_archive"].is_null());
        let in_layout = tags(layout);
        // What FROM …@sha256: pins is the layout's index for the tag.
        assert_eq!(s(&t["index_digest"]), in_layout[tag], "{repo}:{tag}");
        let index = blob(layout, s(&t["index_digest"]));
        let members: Vec<&str> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| s(&m["digest"]))
            .collect();
        let manifests = t["manifests"].as_array().unwrap();
        let listed: Vec<&str> = manifests.iter().map(|m| s(&m["digest"])).collect();
        assert_eq!(listed, members);
        for m in manifests {
            let arch = s(&m["arch"]);
            assert_eq!(s(&m["digest"]), in_layout[&format!("{tag}-{arch}")]);
            // As the index lists it (arm64 is linux/arm64/v8).
            let member = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["digest"] == m["digest"])
                .unwrap();
            let p = &member["platform"];
            let platform = [&p["os"], &p["architecture"], &p["variant"]]
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("/");
            assert_eq!(s(&m["platform"]), platform);
            let spdx = json(Path::new(s(&m["spdx"])));
            assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
        }
        let spdx = Path::new(s(&t["spdx"]));
        assert_eq!(
            spdx,
            f.out("o")
                .join(format!("{repo}.spdx"))
                .join(format!("{tag}.spdx.json"))
        );
        assert_eq!(json(spdx)["spdxVersion"], "SPDX-2.3");
    }
    for i in d["images"].as_array().unwrap() {
        let (repo, tag, arch) = (s(&i["repository"]), s(&i["tag"]), s(&i["arch"]));
        assert_eq!(s(&i["ref"]), format!("{repo}:{tag}-{arch}"));
        let layout = f.out("o").join(repo);
        assert_eq!(s(&i["digest"]), tags(&layout)[&format!("{tag}-{arch}")]);
        assert!(
            i["uncompressed_bytes"].as_u64().unwrap() > i["compressed_bytes"].as_u64().unwrap()
        );
    }
    assert_eq!(d["pushed"], Value::Array(Vec::new()));
}

#[test]
fn build_summary_shows_real_refs_human_sizes_and_index_digests() {
    let f = Fixture::new();
    let o = f.build("o", &["base", "--variant", "latest"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    let layout = f.out("o").join("base-test");
    let t = tags(&layout);
    let row = e
        .lines()
        .find(|l| l.starts_with("base-test:latest ") && l.contains(" amd64 "))
        .unwrap_or_else(|| panic!("no base-test:latest amd64 row: {e}"));
    assert!(row.ends_with(&t["latest-amd64"]), "{row}");
    // Sizes for people: a unit after each number, never a bare byte count.
    let sizes: Vec<&str> = row.split_whitespace().collect();
    assert!(
        ["B", "KiB", "MiB"].contains(&sizes[3]) && ["B", "KiB", "MiB"].contains(&sizes[5]),
        "{row}"
    );
    let index = e
        .lines()
        .find(|l| l.starts_with("base-test:latest ") && l.contains(" index "))
        .unwrap_or_else(|| panic!("no index row: {e}"));
    assert!(index.ends_with(&t["latest"]), "{index}");
    assert!(
        !e.contains("base:latest"),
        "no ref that does not exist: {e}"
    );
    assert!(stdout(&o).is_empty(), "the summary is on stderr");
}

#[test]
fn fetch_and_pin_json_report_what_they_did() {
    let f = Fixture::new();
    let first = doc(&f.run(&["fetch", "--distro", "test", "--json"]));
    let needed = first["needed"].as_u64().unwrap();
    assert!(needed > 0);
    assert_eq!(first["downloaded"], needed);
    assert_eq!(first["cached"], 0);
    let lock = Lock::read(&f.project.path().join("snapshots/test.lock")).unwrap();
    let sizes: u64 = lock
        .packages
        .iter()
        .map(|p| (p.sha256, p.size))
        .collect::<std::collections::BTreeMap<_, _>>()
        .values()
        .sum();
    assert_eq!(first["downloaded_bytes"], sizes);
    let again = doc(&f.run(&["fetch", "--distro", "test", "--json"]));
    assert_eq!(again["cached"], needed);
    assert_eq!(again["downloaded"], 0);

    let out = f.project.path().join("again.lock");
    let p = doc(&f.run(&[
        "pin",
        "--distro",
        "test",
        "--json",
        "-o",
        out.to_str().unwrap(),
    ]));
    assert_eq!(Path::new(s(&p["lock"])), out);
    let written = Lock::read(&out).unwrap();
    for arch in &written.architectures {
        assert_eq!(
            p["packages"][arch.name()],
            written.packages_for(*arch).count()
        );
    }
    // A lock written where none was: every package added.
    assert_eq!(p["changes"]["kept"], 0);
    assert_eq!(
        p["changes"]["added"].as_array().unwrap().len(),
        written.packages.len()
    );
    // The same archive over the existing lock: every package kept, nothing moved.
    let p = doc(&f.run(&["pin", "--distro", "test", "--json"]));
    assert_eq!(
        Path::new(s(&p["lock"])),
        f.project.path().join("snapshots/test.lock")
    );
    assert_eq!(p["changes"]["kept"], written.packages.len());
    assert_eq!(p["changes"]["added"], Value::Array(Vec::new()));
    assert_eq!(p["changes"]["changed"], Value::Array(Vec::new()));
}

#[test]
fn why_json_and_unknown_packages() {
    let f = Fixture::new();
    let why = |image: &str, args: &[&str]| {
        let mut a = vec!["why", "--image", image, "--distro", "test"];
        a.extend(args);
        f.project.run(&a)
    };
    let d = doc(&why("base", &["libc6", "--json"]));
    assert_eq!(d["in_image"], true);
    assert_eq!(d["arch"], "amd64");
    let paths = d["paths"].as_array().unwrap();
    assert!(!paths.is_empty());
    for p in paths {
        assert_eq!(p.as_array().unwrap().last().unwrap(), "libc6");
    }
    // In the lock, not in this image: an explanation, not an error.
    let d = doc(&why("static", &["tools", "--json"]));
    assert_eq!(d["in_image"], false);
    assert!(s(&d["reason"]).contains("tools is not in static"), "{d}");
    // Not in the lock at all: an error naming the package and the lock.
    let o = why("tools", &["nosuchpkg"]);
    assert!(!o.status.success());
    assert!(stdout(&o).is_empty());
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("nosuchpkg") && e.contains("test lock") && e.contains("check the name"),
        "{e}"
    );
    let v = error_doc(&why("tools", &["nosuchpkg", "--json"]));
    assert_eq!(v["error"]["kind"], "why");
    assert!(s(&v["error"]["message"]).contains("nosuchpkg"));
}

#[test]
fn diff_exit_code_says_whether_locks_differ() {
    let f = Fixture::new();
    let lock = f.project.path().join("snapshots/test.lock");
    let lock = lock.to_str().unwrap();
    let same = f.project.run(&["diff", lock, lock, "--exit-code"]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    assert!(stdout(&same).contains("no package changes"));
    // Without --exit-code a difference is still success.
    let mut moved = Lock::read(Path::new(lock)).unwrap();
    let libc = moved
        .packages
        .iter_mut()
        .find(|p| p.name == "libc6")
        .unwrap();
    libc.version = "2.41-13".to_owned();
    let new = f.project.path().join("new.lock");
    moved.write(&new).unwrap();
    let new = new.to_str().unwrap();
    let plain = f.project.run(&["diff", lock, new]);
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    let changed = f.project.run(&["diff", lock, new, "--exit-code", "--json"]);
    assert_eq!(changed.status.code(), Some(1), "{}", stderr(&changed));
    let d: Value = serde_json::from_slice(&changed.stdout).unwrap();
    assert_eq!(d["changes"][0]["name"], "libc6");
    assert_eq!(d["changes"][0]["change"], "upgraded");
    // An error is above 1, and a JSON object under --json.
    let broken = f
        .project
        .run(&["diff", lock, "/nonexistent.lock", "--exit-code", "--json"]);
    assert_eq!(broken.status.code(), Some(2), "{}", stderr(&broken));
    let v = error_doc(&broken);
    assert_eq!(v["error"]["kind"], "lock");
    let broken = f.project.run(&["diff", lock, "/nonexistent.lock"]);
    assert_eq!(broken.status.code(), Some(1));
}

#[test]
fn offline_build_lists_missing_debs_sorted_one_a_line_and_as_json() {
    let f = Fixture::new();
    let o = f.build("o", &["--offline"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    let listed: Vec<&str> = e
        .lines()
        .skip(1)
        .map(|l| {
            l.strip_prefix("  ")
                .unwrap_or_else(|| panic!("{l:?} in {e}"))
        })
        .collect();
    assert!(
        e.lines().next().unwrap().contains("run `debless fetch`"),
        "{e}"
    );
    assert!(listed.contains(&"libc6 2.41-12 (amd64)"), "{e}");
    assert!(listed.contains(&"busybox-static 1.37 (arm64)"), "{e}");
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted);
    let v = error_doc(&f.build("o", &["--offline", "--json"]));
    assert_eq!(v["error"]["kind"], "build");
    assert!(s(&v["error"]["message"]).contains("\n  libc6 2.41-12 (amd64)"));
}

#[test]
fn inspect_unpack_and_list_json_describe_the_layout() {
    let f = Fixture::new();
    let d = f.build_json("o", &["static", "--variant", "latest"]);
    let t = &d["tags"][0];
    let target = format!("{}:latest", s(&t["layout"]));
    let i = doc(&f.project.run(&["inspect", &target, "--json"]));
    assert_eq!(i["digest"], t["index_digest"]);
    let dir = f.project.path().join("rootfs");
    let u = doc(&f.project.run(&[
        "unpack",
        &target,
        dir.to_str().unwrap(),
        "--platform",
        "linux/arm64",
        "--json",
    ]));
    let arm = t["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["arch"] == "arm64")
        .unwrap();
    assert_eq!(u["manifest"], arm["digest"]);
    assert_eq!(Path::new(s(&u["rootfs"])), dir);
    let l = doc(&f.project.run(&["list", "--json"]));
    let names: Vec<&str> = l["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| s(&i["name"]))
        .collect();
    assert_eq!(names, ["base", "static", "tools"]);
    // An error under --json.
    let v = error_doc(&f.project.run(&["inspect", "/nonexistent:latest", "--json"]));
    assert!(s(&v["error"]["message"]).contains("/nonexistent"));
}

#[test]
fn push_keygen_and_sign_json_match_the_registry() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let f = Fixture::new();
    let prefix = format!("{}/json", registry.host());
    let d = f.build_json(
        "o",
        &[
            "base",
            "--variant",
            "latest",
            "--push",
            &prefix,
            "--insecure",
        ],
    );
    let t = &d["tags"][0];
    let pushed = d["pushed"].as_array().unwrap();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["repository"], format!("{prefix}/base-test"));
    let latest = pushed[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tag"] == "latest")
        .unwrap();
    assert_eq!(latest["digest"], t["index_digest"]);
    assert_eq!(latest["ref"], format!("{prefix}/base-test:latest"));

    // `push` again, under another name: the same index, every blob already there or
    // mounted.
    let target = format!("{}/again/base-test:latest", registry.host());
    let p = doc(&f
        .project
        .run(&["push", s(&t["layout"]), &target, "--insecure", "--json"]));
    assert_eq!(
        p["repository"],
        format!("{}/again/base-test", registry.host())
    );
    let latest = p["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["tag"] == "latest")
        .unwrap();
    assert_eq!(latest["digest"], t["index_digest"]);
    // Every blob of the two manifests (configs and layers), each counted once.
    let layout = Path::new(s(&t["layout"]));
    let mut blobs = std::collections::BTreeSet::new();
    for m in t["manifests"].as_array().unwrap() {
        let manifest = blob(layout, s(&m["digest"]));
        blobs.insert(s(&manifest["config"]["digest"]).to_owned());
        for l in manifest["layers"].as_array().unwrap() {
            blobs.insert(s(&l["digest"]).to_owned());
        }
    }
    let b = &p["blobs"];
    let counted = ["uploaded", "mounted", "already_there"]
        .iter()
        .map(|k| b[k]["blobs"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(counted, blobs.len() as u64, "{p:#}");

    let keys = f.project.path().join("k");
    let k = doc(&f.project.run(&[
        "keygen",
        "--output-key-prefix",
        keys.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(k["encrypted"], false);
    assert!(Path::new(s(&k["private_key"])).is_file());
    assert!(Path::new(s(&k["public_key"])).is_file());
    let sg = doc(&f.project.run(&[
        "sign",
        &target,
        "--key",
        s(&k["private_key"]),
        "--insecure",
        "--json",
    ]));
    assert_eq!(sg["signed"][0]["digest"], t["index_digest"]);
    assert_eq!(sg["signed"][0]["new"], true);
    assert!(sg["attested"].is_null());
    // A registry that is not there: an error object.
    let v = error_doc(&f.project.run(&[
        "push",
        s(&t["layout"]),
        "127.0.0.1:1/nothing/here:latest",
        "--insecure",
        "--json",
    ]));
    assert_eq!(v["error"]["kind"], "registry");
}

#[test]
fn verbose_shows_each_phase_quiet_only_errors_and_json_stays_the_same() {
    let f = Fixture::new();
    let args = ["base", "--variant", "latest", "--json"];
    // -q: an error and nothing else.
    let o = f.build("q", &["-q", "--offline"]);
    assert!(!o.status.success());
    assert!(stderr(&o).starts_with("error: offline: "), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // -v on a pipe (no terminal, CI or not): a line as each phase starts and ends, and
    // one per item.
    let mut verbose: Vec<&str> = vec!["-v"];
    verbose.extend(args);
    let v = f.build("v", &verbose);
    assert!(v.status.success(), "{}", stderr(&v));
    let e = stderr(&v);
    for needle in [
        ".debs: started (",
        ".debs: libc6 2.41-12 (amd64) (",
        "layers: started (",
        "layers: layer of rule base (amd64): made sha256:",
        "layers: done in ",
        "write: started (1)",
        "write: wrote ",
        "write: done in ",
    ] {
        assert!(e.contains(needle), "{needle:?} missing from:\n{e}");
    }
    // -q: nothing at all on success; the same document on stdout.
    let mut quiet: Vec<&str> = vec!["-q"];
    quiet.extend(args);
    let q = f.build("q", &quiet);
    assert!(q.status.success(), "{}", stderr(&q));
    assert_eq!(stderr(&q), "");
    let plain = f.build("p", &args);
    let (v, q, p) = (doc(&v), doc(&q), doc(&plain));
    assert_eq!(v["images"], q["images"]);
    assert_eq!(v["images"], p["images"]);
    let index = |d: &Value| d["tags"][0]["index_digest"].clone();
    assert_eq!(index(&v), index(&q));
    assert_eq!(index(&v), index(&p));
    // The layer detail lines come with -v only.
    assert!(
        !stderr(&plain).contains("made sha256:"),
        "{}",
        stderr(&plain)
    );
}

#[test]
fn index_and_verify_json_match_the_registry() {
    let Some(registry) = Registry::start(None) else {
        return;
    };
    let f = Fixture::new();
    let single = f.build_json("single", &["base"]);
    // Two shards push their per-architecture manifests; `index` writes each tag's index,
    // which is the single build's.
    let prefix = format!("{}/shards", registry.host());
    for (i, shard) in ["1/2", "2/2"].iter().enumerate() {
        f.build_json(
            &format!("shard{i}"),
            &["base", "--shard", shard, "--push", &prefix, "--insecure"],
        );
    }
    let x = doc(&f.project.run(&[
        "index",
        &prefix,
        "base",
        "--distro",
        "test",
        "--insecure",
        "--json",
    ]));
    let written = x.as_array().unwrap();
    assert_eq!(written.len(), 4, "{x:#}");
    for w in written {
        let t = single["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tag"] == w["tag"])
            .unwrap();
        assert_eq!(w["digest"], t["index_digest"], "{w}");
        assert_eq!(w["repository"], format!("{prefix}/base-test"));
        assert_eq!(w["architectures"], 2);
    }

    // A signed push, verified: the document names the index and both manifests.
    let keys = f.project.path().join("k");
    doc(&f.project.run(&[
        "keygen",
        "--output-key-prefix",
        keys.to_str().unwrap(),
        "--json",
    ]));
    let t = &single["tags"][0];
    let target = format!("{}/signed/base-test:{}", registry.host(), s(&t["tag"]));
    let key = format!("{}.key", keys.display());
    let p = doc(&f.project.run(&[
        "push",
        s(&t["layout"]),
        &target,
        "--sign-key",
        &key,
        "--insecure",
        "--json",
    ]));
    assert!(p["signing"]["signed"].as_u64().unwrap() >= 3, "{p:#}");
    let public = format!("{}.pub", keys.display());
    let v = doc(&f
        .project
        .run(&["verify", &target, "--key", &public, "--insecure", "--json"]));
    assert_eq!(v["digest"], t["index_digest"], "{v:#}");
    assert!(!v["signatures"].as_array().unwrap().is_empty());
    let manifests: std::collections::BTreeSet<&str> = t["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| s(&m["digest"]))
        .collect();
    let verified: std::collections::BTreeSet<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| s(&i["digest"]))
        .collect();
    assert_eq!(verified, manifests);
    assert!(v["rebuild"].is_null());
    // The wrong key: an error object.
    let other = f.project.path().join("other");
    doc(&f.project.run(&[
        "keygen",
        "--output-key-prefix",
        other.to_str().unwrap(),
        "--json",
    ]));
    let e = error_doc(&f.project.run(&[
        "verify",
        &target,
        "--key",
        &format!("{}.pub", other.display()),
        "--insecure",
        "--json",
    ]));
    assert_eq!(e["error"]["kind"], "verify", "{e}");
}
