//! The library's modules depend on each other in pipeline order, and only where a stage
//! needs another: the table below is the whole list of allowed edges (DEVELOPERS.md draws
//! it). It keeps the source tree a map of the pipeline and stops "reaching up" or
//! sideways (oci reading the fetch cache, rules knowing generators, the registry client
//! borrowing the archive downloader) from creeping back. The check reads `src/` and fails
//! naming the file, line and edge.

use std::path::{Path, PathBuf};

/// Basics with no knowledge of the pipeline: any module may use them (`progress`: what a
/// long phase shows on stderr, for fetch, build and registry alike).
const BASICS: &[&str] = &["text", "tmp", "arch", "digest", "deb822", "progress"];

/// Every other top-level module of `src/lib.rs`, in pipeline order, with the modules it
/// may use besides the basics. Each may only name modules listed above it.
const ALLOWED: &[(&str, &[&str])] = &[
    // Transport, shared by the archive downloader and the registry client.
    ("http", &[]),
    // A Debian archive: InRelease, Release, Packages, versions.
    ("archive", &[]),
    // The hand-written manifest and the machine-written lock (and lock-to-lock diffs).
    ("snapshot", &["archive"]),
    // Rule files.
    ("rules", &[]),
    // The dependency solver.
    ("resolve", &["archive"]),
    // Mirrors, the content-addressed cache, .deb downloads.
    ("fetch", &["http", "archive"]),
    // `debless pin` and `why`: archive + rules -> lock.
    (
        "pin",
        &["http", "archive", "snapshot", "rules", "resolve", "fetch"],
    ),
    // Deterministic tar layers.
    ("layer", &[]),
    // Reading .debs into layer entries.
    ("deb", &["layer"]),
    // Files no package ships.
    ("generate", &["layer", "rules"]),
    // OCI documents, layouts and archives.
    ("oci", &["layer"]),
    // SPDX documents.
    ("sbom", &[]),
    // Signatures and provenance.
    ("sign", &["snapshot", "oci"]),
    // Pushing layouts to registries.
    ("registry", &["http", "oci", "sbom", "sign"]),
    // Reading images back.
    ("inspect", &["oci", "layer", "sbom"]),
    // An image as a root filesystem or runtime bundle.
    ("unpack", &["oci"]),
    // `debless build`: drives every stage.
    (
        "build",
        &[
            "http", "archive", "snapshot", "rules", "resolve", "fetch", "pin", "layer", "deb",
            "generate", "oci", "sbom", "sign", "registry", "inspect",
        ],
    ),
];

/// Modules that are not part of the pipeline: the binary's and test support.
const OUTSIDE: &[&str] = &["lib", "main", "cli", "testing"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to (`src/build/plan.rs` -> build).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

/// Every `crate::NAME` a line mentions, including `use crate::{a, b::c}` groups.
fn crate_refs(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn modules_use_only_the_stages_the_table_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let known = |m: &str| {
        BASICS.contains(&m) || OUTSIDE.contains(&m) || ALLOWED.iter().any(|(n, _)| *n == m)
    };
    let mut broken = Vec::new();
    let mut unknown = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        if OUTSIDE.contains(&module.as_str()) {
            continue;
        }
        if !known(&module) {
            unknown.push(module.clone());
        }
        let allowed: &[&str] = ALLOWED
            .iter()
            .find(|(n, _)| *n == module)
            .map(|(_, a)| *a)
            .unwrap_or(&[]);
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for used in crate_refs(code) {
                if used == module || used == "testing" || BASICS.contains(&used.as_str()) {
                    continue;
                }
                if !known(&used) {
                    unknown.push(used.clone());
                } else if !allowed.contains(&used.as_str()) {
                    broken.push(format!(
                        "{}:{}: {module} uses {used}, which tests/layering.rs does not allow",
                        file.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "modules missing from tests/layering.rs (add each where it belongs in the pipeline): {unknown:?}"
    );
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_table_only_points_back_up_the_pipeline() {
    for (i, (module, allowed)) in ALLOWED.iter().enumerate() {
        for used in *allowed {
            let pos = ALLOWED.iter().position(|(n, _)| n == used);
            assert!(
                pos.is_some_and(|p| p < i),
                "{module} may use {used}, which is not listed above it"
            );
        }
    }
}

#[test]
fn the_checker_sees_grouped_and_inline_uses() {
    assert_eq!(
        crate_refs("use crate::{arch::Arch, digest::Digest};"),
        ["arch", "digest"]
    );
    assert_eq!(
        crate_refs("let x = crate::oci::platform_for(a) + crate::layer::X;"),
        ["oci", "layer"]
    );
    assert!(crate_refs("no refs here").is_empty());
}
