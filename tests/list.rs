//! `debless list`: what the project defines, read from this repository's own rules/ and
//! snapshots/ (so a new rule file shows up here without a test change) and from a
//! scratch project.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Project, stderr, stdout};

fn list(project: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_debless"))
        .arg("-C")
        .arg(project)
        .arg("list")
        .args(args)
        .output()
        .unwrap()
}

/// The architectures `snapshots/<distro>.toml` of this repository pins.
fn manifest_arches(distro: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(format!("snapshots/{distro}.toml"))).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["architectures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// File stems under a directory with the given suffix, sorted.
fn stems(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().into_string().unwrap();
            n.strip_suffix(suffix).map(str::to_owned)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn lists_every_rule_and_distro_of_the_project_one_per_line() {
    let o = list(repo(), &["images"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The default family and the images under rules/extra/ (pinned with --extra).
    let mut images = stems(&repo().join("rules"), ".toml");
    images.retain(|i| i != "defaults");
    images.extend(stems(&repo().join("rules/extra"), ".toml"));
    images.sort();
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), images);

    let o = list(repo(), &["variants"]);
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        stems(&repo().join("rules/variants"), ".toml")
    );
    let o = list(repo(), &["distros"]);
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        stems(&repo().join("snapshots"), ".toml")
    );
    let o = list(repo(), &["arches", "--distro", "debian13"]);
    let mut want = manifest_arches("debian13");
    want.sort();
    assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), want);

    // Everything: one line per item, its kind first.
    let o = list(repo(), &[]);
    let text = stdout(&o);
    let line = |kind: &str, name: &str| {
        text.lines()
            .find(|l| {
                let mut w = l.split_whitespace();
                w.next() == Some(kind) && w.next() == Some(name)
            })
            .unwrap_or_else(|| panic!("no {kind} {name} line in:\n{text}"))
            .to_owned()
    };
    assert!(line("distro", "debian13").contains("trixie"));
    assert!(line("image", "python3").contains("[on cc]"));
    // Google distroless's architectures for python3, from its rule.
    assert!(
        line("image", "python3").contains("(amd64, arm64, riscv64)"),
        "{text}"
    );
    assert!(line("image", "static").contains("debian12,debian13"));
    assert!(line("variant", "nonroot").contains("65532"));
    assert!(line("arch", "arm64").ends_with("linux/arm64/v8"));
    // java21 is defined for debian13 only: not listed for debian12.
    let o = list(repo(), &["images", "--distro", "debian12"]);
    assert!(!stdout(&o).lines().any(|l| l == "java21"), "{}", stdout(&o));
    assert!(stdout(&o).lines().any(|l| l == "base"));
}

#[test]
fn json_lists_distros_images_variants_and_architectures() {
    let o = list(repo(), &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let d13 = doc["distros"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "debian13")
        .unwrap();
    assert_eq!(d13["codename"], "trixie");
    assert_eq!(
        d13["architectures"],
        serde_json::json!(manifest_arches("debian13"))
    );
    let python3 = doc["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "python3")
        .unwrap();
    assert_eq!(python3["parent"], "cc");
    assert_eq!(
        python3["architectures"],
        serde_json::json!(["amd64", "arm64", "riscv64"])
    );
    assert_eq!(python3["distros"], serde_json::json!(["debian13"]));
    let dn = doc["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "debug-nonroot")
        .unwrap();
    assert_eq!(dn["combines"], serde_json::json!(["debug", "nonroot"]));
    assert!(
        doc["architectures"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"name": "amd64", "platform": "linux/amd64"}))
    );
}

#[test]
fn an_unknown_distro_or_a_broken_rule_is_one_error_line() {
    let o = list(repo(), &["--distro", "nosuch"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.starts_with("error: no distro \"nosuch\""), "{e}");
    assert!(e.contains("debian13"), "the error lists the distros: {e}");

    let p = Project::new();
    p.write("rules/broken.toml", "distros = 3\n");
    let o = list(p.path(), &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("broken.toml"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}
