//! `debless inspect` of a layout, an oci-archive and a docker-archive, and its file →
//! package and package → files answers, on images built from the fixture archive.

mod common;

use common::fixture::*;
use common::{stderr, stdout};
use serde_json::Value;

/// A fixture whose images carry dpkg status.d entries (what an archive's answers come
/// from), built as a layout, an oci-archive and a docker-archive.
fn built() -> Fixture {
    let f = Fixture::new();
    let rules = f.project.read("rules/static.toml");
    f.project.write(
        "rules/static.toml",
        &format!("{rules}[generate.dpkg-status]\n"),
    );
    f.build_ok("o", &["base", "--format", "oci,oci-archive,docker-archive"]);
    f
}

/// `debless inspect ARGS` (inspect takes no --mirror or --cache-dir).
fn inspect(f: &Fixture, args: &[&str]) -> std::process::Output {
    f.project.run(&[&["inspect"], args].concat())
}

fn inspect_json(f: &Fixture, args: &[&str]) -> Value {
    let o = inspect(f, &[args, &["--json"]].concat());
    assert!(o.status.success(), "inspect {args:?}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The three outputs of one build, with the tag to ask for.
fn targets(f: &Fixture) -> [(String, &'static str); 3] {
    let out = f.out("o");
    [
        (format!("{}:latest", out.join("base-test").display()), "oci"),
        (
            format!("{}:latest", out.join("base-test.tar").display()),
            "oci-archive",
        ),
        (
            format!("{}:latest", out.join("base-test.docker.tar").display()),
            "docker-archive",
        ),
    ]
}

#[test]
fn inspect_reads_layouts_and_both_archive_formats() {
    let f = built();
    let mut packages = Vec::new();
    for (target, format) in targets(&f) {
        let v = inspect_json(&f, &[&target]);
        assert_eq!(v["format"], format, "{target}");
        let images = v["images"].as_array().unwrap();
        // A docker archive names `latest` for one architecture (the host's, or the first).
        let want = if format == "docker-archive" { 1 } else { 2 };
        assert_eq!(images.len(), want, "{target}: {v}");
        let amd = images
            .iter()
            .find(|i| i["platform"] == "linux/amd64")
            .unwrap_or(&images[0]);
        let names: Vec<String> = amd["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| format!("{} {}", p["name"], p["version"]))
            .collect();
        packages.push(names);
    }
    assert_eq!(packages[0], packages[1]);
    assert!(
        packages[0].iter().any(|p| p.contains("libc6")),
        "{packages:?}"
    );
    // The layout's and the oci-archive's manifests are the same bytes.
    let d = |t: &str| inspect_json(&f, &[t])["digest"].clone();
    let [(layout, _), (archive, _), _] = targets(&f);
    assert_eq!(d(&layout), d(&archive));
    // Not an image at all: a clear error naming the path.
    let junk = f.out("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let o = inspect(&f, &[junk.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("junk.tar"), "{}", stderr(&o));
}

#[test]
fn inspect_names_the_package_and_layer_of_a_file_and_the_files_of_a_package() {
    let f = built();
    let libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
    let mut answers = Vec::new();
    for (target, format) in targets(&f) {
        let host_amd64 = debless::arch::Arch::host() == Some(debless::arch::Arch::Amd64);
        if format == "docker-archive" && !host_amd64 {
            // `latest` is the host's architecture there; ask amd64's own tag.
            continue;
        }
        let v = inspect_json(&f, &[&target, "--file", libc]);
        // amd64 has it; arm64's libc is elsewhere.
        let images = v["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{target}: {v}");
        let i = &images[0];
        assert_eq!(i["platform"], "linux/amd64");
        assert_eq!(i["package"]["name"], "libc6", "{target}: {v}");
        assert_eq!(i["package"]["version"], "2.41-12");
        assert_eq!(i["package"]["architecture"], "amd64");
        assert_eq!(i["kind"], "file");
        // static is layer 0, base (libc6) layer 1.
        assert_eq!(i["layer"]["index"], 1, "{v}");
        let source = if format == "docker-archive" {
            "dpkg-status"
        } else {
            "spdx"
        };
        assert_eq!(i["source"], source, "{target}");
        answers.push((i["package"].clone(), i["layer"]["index"].clone()));
        // Asked through the merged-/usr link /lib, the same file.
        let v = inspect_json(&f, &[&target, "--file", "/lib/x86_64-linux-gnu/libc.so.6"]);
        assert_eq!(v["images"][0]["resolved"], libc, "{v}");
        assert_eq!(v["images"][0]["package"]["name"], "libc6");
        if format == "oci" {
            assert!(
                v["missing_on"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p == "linux/arm64/v8"),
                "{v}"
            );
        }
    }
    answers.dedup();
    assert_eq!(answers.len(), 1, "the formats disagree: {answers:?}");

    // A link: its own entry, then the file it names and that file's package.
    let [(layout, _), ..] = targets(&f);
    let v = inspect_json(&f, &[&layout, "--file", "/etc/os-release"]);
    let i = &v["images"][0];
    assert_eq!(i["kind"], "symlink", "{v}");
    assert_eq!(i["link_target"], "../usr/lib/os-release");
    assert_eq!(i["target"]["path"], "/usr/lib/os-release");
    assert_eq!(i["target"]["package"]["name"], "base-files");
    assert_eq!(i["target"]["layer"]["index"], 0);
    // The text form says the same on one line per platform.
    let o = inspect(&f, &[&layout, "--file", libc]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("linux/amd64")
            && text.contains("libc6 2.41-12 (amd64)")
            && text.contains("layer 1"),
        "{text}"
    );

    // The files of a package, each with its layer.
    let v = inspect_json(&f, &[&layout, "--package", "libc6"]);
    let amd = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["platform"] == "linux/amd64")
        .unwrap();
    let files: Vec<&str> = amd["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["resolved"].as_str().unwrap())
        .collect();
    assert!(files.contains(&libc), "{files:?}");
    assert!(
        files.contains(&"/usr/share/doc/libc6/copyright"),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|p| p.starts_with("/usr/share/i18n")),
        "a file the rule does not select is not shipped: {files:?}"
    );
    assert!(
        amd["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["layer"] == 1),
        "{amd}"
    );
    // The docker archive's status.d says the same files.
    let docker = format!(
        "{}:latest-amd64",
        f.out("o").join("base-test.docker.tar").display()
    );
    let d = inspect_json(&f, &[&docker, "--package", "libc6"]);
    assert_eq!(d["images"][0]["source"], "dpkg-status");
    let dfiles: Vec<&str> = d["images"][0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["resolved"].as_str().unwrap())
        .collect();
    let mut sorted = files.clone();
    sorted.sort();
    let mut dsorted = dfiles.clone();
    dsorted.sort();
    assert_eq!(sorted, dsorted);

    // Unknown file or package: non-zero, naming what was asked and where.
    let o = inspect(&f, &[&layout, "--file", "/usr/bin/nope"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no /usr/bin/nope in linux/amd64, linux/arm64/v8"),
        "{}",
        stderr(&o)
    );
    let o = inspect(&f, &[&layout, "--package", "nosuchpkg"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("package nosuchpkg is not in"),
        "{}",
        stderr(&o)
    );
}
