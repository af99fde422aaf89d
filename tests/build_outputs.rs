//! Where a build reads its lock from and what it writes: `--lock PATH` and several
//! `--format`s in one run, each output the same bytes as a build of that format alone.

mod common;

use common::fixture::*;
use common::stderr;

#[test]
fn a_lock_from_another_path_builds_the_same_images() {
    let f = Fixture::new();
    let from_project = f.build_ok("a", &["base", "--variant", "latest"]);
    // `pin -o` writes a lock elsewhere; the project's own lock goes away, so a build
    // reading it would fail.
    let elsewhere = f.project.path().join("elsewhere.lock");
    let o = f.run(&["pin", "--distro", "test", "-o", elsewhere.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(f.project.path().join("snapshots/test.lock")).unwrap();
    let o = f.build("b", &["base", "--variant", "latest"]);
    assert!(!o.status.success(), "built without a lock");
    // Without --distro, the distro is the lock's.
    let o = f.run(&[
        "build",
        "base",
        "--variant",
        "latest",
        "--lock",
        elsewhere.to_str().unwrap(),
        "--out",
        f.out("b").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        tags(&from_project.join("base-test")),
        tags(&f.out("b").join("base-test"))
    );
    // A lock of another distro than --distro says is refused, naming both.
    let o = f.run(&[
        "build",
        "--distro",
        "debian13",
        "--lock",
        elsewhere.to_str().unwrap(),
        "--out",
        f.out("c").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.starts_with("error: ")
            && e.contains("elsewhere.lock")
            && e.contains("lock of distro test, not debian13"),
        "{e}"
    );
    assert!(!f.out("c").exists(), "a refused build wrote output");
    // A missing --lock names the path.
    let o = f.run(&["build", "--lock", "/nonexistent/x.lock"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/x.lock"), "{}", stderr(&o));
}

#[test]
fn several_formats_in_one_run_equal_one_format_per_run() {
    let f = Fixture::new();
    // Every tag: a partial build may not replace an archive.
    let sel = ["base"];
    let all = f.build_json(
        "all",
        &[
            &sel[..],
            &["--format", "oci,oci-archive", "--format", "docker-archive"],
        ]
        .concat(),
    );
    let outputs: Vec<&str> = all["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    for suffix in ["base-test", "base-test.tar", "base-test.docker.tar"] {
        assert!(
            outputs.iter().any(|o| o.ends_with(&format!("/{suffix}"))),
            "{suffix} not among {outputs:?}"
        );
    }
    // Each output is byte for byte what a build of that format alone writes, so adding
    // a format moves no digest.
    let oci = f.build_ok("oci", &sel);
    assert_eq!(
        tree_bytes(&oci.join("base-test")),
        tree_bytes(&f.out("all").join("base-test"))
    );
    for (format, file) in [
        ("oci-archive", "base-test.tar"),
        ("docker-archive", "base-test.docker.tar"),
    ] {
        let one = f.build_ok(format, &[&sel[..], &["--format", format]].concat());
        assert!(
            std::fs::read(one.join(file)).unwrap()
                == std::fs::read(f.out("all").join(file)).unwrap(),
            "{file} differs from a --format {format} build"
        );
    }
    // A second run leaves the layout alone (archives are rewritten, to the same bytes).
    let again = f.build_json(
        "all",
        &[&sel[..], &["--format", "oci,oci-archive,docker-archive"]].concat(),
    );
    let up_to_date = again["up_to_date"].as_array().unwrap();
    assert!(
        up_to_date.len() == 1 && up_to_date[0].as_str().unwrap().ends_with("/base-test"),
        "{again}"
    );
    // An unknown format is refused before anything is built.
    let o = f.build("bad", &[&sel[..], &["--format", "oci,zip"]].concat());
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown format \"zip\""),
        "{}",
        stderr(&o)
    );
}

/// `manifest.json` of a docker archive: per image its RepoTags, by architecture.
fn docker_repo_tags(tar: &std::path::Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    let mut manifest = None;
    let mut configs = std::collections::BTreeMap::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
        if name == "manifest.json" {
            manifest = Some(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap());
        } else if name.ends_with(".json") {
            configs.insert(
                name,
                serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
            );
        }
    }
    let mut by_arch = std::collections::BTreeMap::new();
    for m in manifest.unwrap().as_array().unwrap() {
        let arch = configs[m["Config"].as_str().unwrap()]["architecture"]
            .as_str()
            .unwrap()
            .to_owned();
        let tags = m["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        assert!(by_arch.insert(arch, tags).is_none(), "one image per arch");
    }
    by_arch
}

#[test]
fn docker_archive_names_each_tag_for_one_architecture() {
    let f = Fixture::new();
    let sel = ["base", "--variant", "latest", "--format", "docker-archive"];
    let out = f.build_ok("d", &sel);
    let tar = out.join("base-test.docker.tar");
    // The host's architecture is the one a registry would give this machine for `latest`;
    // the fixture builds amd64 and arm64, and where the host is neither, the first.
    let host = debless::arch::Arch::host().map(|a| a.name());
    let chosen = host.filter(|h| *h == "arm64").unwrap_or("amd64");
    let other = if chosen == "amd64" { "arm64" } else { "amd64" };
    let by_arch = docker_repo_tags(&tar);
    assert_eq!(
        by_arch[chosen],
        [
            format!("base-test:latest-{chosen}"),
            "base-test:latest".to_owned()
        ]
    );
    assert_eq!(by_arch[other], [format!("base-test:latest-{other}")]);
    // `--archive-arch` chooses the other one.
    let out = f.build_ok("d2", &[&sel[..], &["--archive-arch", other]].concat());
    let by_arch = docker_repo_tags(&out.join("base-test.docker.tar"));
    assert_eq!(by_arch[other].last().unwrap(), "base-test:latest");
    assert_eq!(by_arch[chosen], [format!("base-test:latest-{chosen}")]);
    // skopeo (as `docker load`) resolves the bare tag to that image.
    if common::require_tool("skopeo", "apt-get install skopeo") {
        let o = common::run_ok(std::process::Command::new("skopeo").args([
            "inspect",
            &format!("docker-archive:{}:base-test:latest", tar.display()),
        ]));
        let v: serde_json::Value = serde_json::from_str(&o).unwrap();
        assert_eq!(v["Architecture"], chosen, "{o}");
    }
    // The flag means nothing without a docker archive, and must name a built arch.
    let o = f.build("d3", &["base", "--archive-arch", "arm64"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--format docker-archive"),
        "{}",
        stderr(&o)
    );
    let o = f.build(
        "d4",
        &[&sel[..], &["--arch", "amd64", "--archive-arch", "arm64"]].concat(),
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("add --arch arm64"), "{}", stderr(&o));
}
