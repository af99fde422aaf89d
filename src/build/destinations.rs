//! Where a build writes, worked out from the plan before any work: per image repository
//! its layout (or archive) and its SPDX directory. Each is refused, in one line before a
//! package is read, when two outputs resolve to one path or one lies inside another
//! (`--out D --sbom-dir D`), when an output would swallow the cache, or when something is
//! already there that debless cannot tell it wrote: a layout of other files or of images
//! it did not build, an archive of another shape, a directory of other documents. Nothing
//! a user owns is replaced.

use std::path::{Component, Path, PathBuf};

use super::{BuildError, BuildOptions, Format};
use crate::oci;

/// What a destination holds, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An OCI image layout directory.
    Layout,
    /// An `oci-archive` or `docker-archive` file.
    Archive,
    /// A directory of SPDX documents.
    Spdx,
    /// A directory of provenance statements.
    Provenance,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Layout => "image layout",
            Kind::Archive => "image archive",
            Kind::Spdx => "SPDX directory",
            Kind::Provenance => "provenance directory",
        }
    }
}

/// One path a build writes.
#[derive(Debug, Clone)]
pub(super) struct Destination {
    /// The repository it is for (`base-debian13`).
    pub repo: String,
    /// What goes there.
    pub kind: Kind,
    /// The path as the options make it.
    pub path: PathBuf,
}

/// The repository an image's outputs are named by.
pub(super) fn repository_name(image: &str, distro: &str) -> String {
    format!("{image}-{distro}")
}

/// Where `repo`'s layout (or archive) of `format` goes under `--out`.
pub(super) fn path_of(opts: &BuildOptions, repo: &str, format: Format) -> PathBuf {
    let out = &opts.out;
    match format {
        Format::Oci => out.join(repo),
        Format::OciArchive => out.join(format!("{repo}.tar")),
        Format::DockerArchive => out.join(format!("{repo}.docker.tar")),
    }
}

/// Where `repo`'s SPDX documents go: `--sbom-dir`/<repo>, else next to its layout.
pub(super) fn sbom_dir_of(opts: &BuildOptions, repo: &str) -> PathBuf {
    match &opts.sbom_dir {
        Some(d) => d.join(repo),
        None => opts.out.join(format!("{repo}.spdx")),
    }
}

/// Where `repo`'s provenance statements go: next to its layout's path under `--out`,
/// whatever `--sbom-dir` and `--format` say (`debless push` finds them there).
pub(super) fn provenance_dir_of(opts: &BuildOptions, repo: &str) -> PathBuf {
    crate::sign::provenance::provenance_dir(&opts.out.join(repo))
}

/// The formats a build writes, each once, in a fixed order.
pub(super) fn formats(opts: &BuildOptions) -> Vec<Format> {
    let mut formats = opts.formats.clone();
    formats.sort();
    formats.dedup();
    formats
}

/// Every destination of a build of `repos`: one per image and format, and its SPDX
/// directory.
pub(super) fn destinations(opts: &BuildOptions, repos: &[String]) -> Vec<Destination> {
    let mut out = Vec::new();
    for repo in repos {
        for format in formats(opts) {
            let kind = match format {
                Format::Oci => Kind::Layout,
                Format::OciArchive | Format::DockerArchive => Kind::Archive,
            };
            out.push(Destination {
                repo: repo.clone(),
                kind,
                path: path_of(opts, repo, format),
            });
        }
        out.push(Destination {
            repo: repo.clone(),
            kind: Kind::Spdx,
            path: sbom_dir_of(opts, repo),
        });
        out.push(Destination {
            repo: repo.clone(),
            kind: Kind::Provenance,
            path: provenance_dir_of(opts, repo),
        });
    }
    out
}

/// Refuse the build, before any work, if its destinations clash with each other or with
/// the cache, or if one of them holds something debless did not write.
pub(super) fn check(dests: &[Destination], opts: &BuildOptions) -> Result<(), BuildError> {
    for (dir, flag) in [
        (Some(&opts.out), "--out"),
        (opts.sbom_dir.as_ref(), "--sbom-dir"),
    ] {
        if let Some(dir) = dir
            && dir.exists()
            && !dir.is_dir()
        {
            return Err(BuildError::Destination {
                path: dir.clone(),
                what: format!(
                    "exists and is not a directory, so it cannot be the {flag} directory; choose another"
                ),
            });
        }
    }
    let resolved: Vec<PathBuf> = dests.iter().map(|d| resolve(&d.path)).collect();
    for (i, a) in dests.iter().enumerate() {
        for (j, b) in dests.iter().enumerate().skip(i + 1) {
            let (ra, rb) = (&resolved[i], &resolved[j]);
            let relation = if ra == rb {
                "is the same path as"
            } else if ra.starts_with(rb) {
                "lies inside"
            } else if rb.starts_with(ra) {
                "contains"
            } else {
                continue;
            };
            return Err(BuildError::Destination {
                path: a.path.clone(),
                what: format!(
                    "the {} of {} {relation} the {} of {} ({}); give --out and --sbom-dir different directories",
                    a.kind.describe(),
                    a.repo,
                    b.kind.describe(),
                    b.repo,
                    b.path.display()
                ),
            });
        }
    }
    let cache = resolve(&opts.cache_dir);
    for (d, r) in dests.iter().zip(&resolved) {
        if cache.starts_with(r) {
            return Err(BuildError::Destination {
                path: d.path.clone(),
                what: format!(
                    "the {} of {} would replace the cache directory {} inside it; choose another --out, --sbom-dir or --cache-dir",
                    d.kind.describe(),
                    d.repo,
                    opts.cache_dir.display()
                ),
            });
        }
    }
    for d in dests {
        if !may_replace(d)? {
            return Err(BuildError::Destination {
                path: d.path.clone(),
                what: format!(
                    "exists and is not an {} debless wrote, so it is left alone; move it away or choose another {}",
                    d.kind.describe(),
                    if d.kind == Kind::Spdx && opts.sbom_dir.is_some() {
                        "--sbom-dir"
                    } else {
                        "--out"
                    }
                ),
            });
        }
    }
    Ok(())
}

/// Is `d` absent, or something debless wrote and may replace?
fn may_replace(d: &Destination) -> Result<bool, BuildError> {
    let io = |source| BuildError::Io {
        path: d.path.clone(),
        what: "cannot inspect",
        source,
    };
    match std::fs::symlink_metadata(&d.path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(io(e)),
        Ok(_) => {}
    }
    Ok(match d.kind {
        Kind::Layout => {
            oci::holds_only_a_layout(&d.path).map_err(|e| BuildError::Oci(Box::new(e)))?
                && layout_is_ours(&d.path)
        }
        Kind::Archive => oci::may_replace_archive(&d.path),
        Kind::Spdx => spdx_dir_is_ours(&d.path),
        Kind::Provenance => provenance_dir_is_ours(&d.path),
    })
}

/// Every image `index.json` names carries the annotations debless writes (`dev.debless.*`):
/// a layout another tool wrote, or one a user added images to, is not replaced. An empty
/// directory holds nothing to lose.
fn layout_is_ours(dir: &Path) -> bool {
    let index = dir.join("index.json");
    if !index.exists() {
        return std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    }
    let Ok(bytes) = read_small(&index) else {
        return false;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    let Some(manifests) = json.get("manifests").and_then(|m| m.as_array()) else {
        return false;
    };
    manifests.iter().all(|m| {
        m.get("annotations")
            .and_then(|a| a.as_object())
            .is_some_and(|a| a.keys().any(|k| k.starts_with("dev.debless.")))
    })
}

/// A real directory (not a link) that is empty or holds only `*.spdx.json` documents
/// whose creator is debless: what [`super::output`] writes, and nothing else.
pub(super) fn spdx_dir_is_ours(dir: &Path) -> bool {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in entries {
        let Ok(e) = e else { return false };
        let name = e.file_name();
        let is_doc = name.to_str().is_some_and(|n| n.ends_with(".spdx.json"))
            && e.file_type().is_ok_and(|t| t.is_file());
        if !is_doc || !made_by_debless(&e.path()) {
            return false;
        }
    }
    true
}

/// A real directory (not a link) that is empty or holds only in-toto statements
/// (`*.intoto.json`) and the DSSE envelopes of them push writes (`*.intoto.jsonl`): what
/// [`super::output`] and `debless push` write, and nothing else.
pub(super) fn provenance_dir_is_ours(dir: &Path) -> bool {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for e in entries {
        let Ok(e) = e else { return false };
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            return false;
        }
        let Ok(bytes) = read_small(&e.path()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&bytes);
        let ours = if name.ends_with(".intoto.json") {
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| {
                v.get("_type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.starts_with("https://in-toto.io/Statement/"))
            })
        } else if name.ends_with(".intoto.jsonl") {
            text.lines().filter(|l| !l.trim().is_empty()).all(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                    v.get("payloadType").and_then(|t| t.as_str())
                        == Some("application/vnd.in-toto+json")
                })
            })
        } else {
            false
        };
        if !ours {
            return false;
        }
    }
    true
}

/// Does the SPDX document at `path` name debless as its creator?
fn made_by_debless(path: &Path) -> bool {
    let Ok(bytes) = read_small(path) else {
        return false;
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    doc.pointer("/creationInfo/creators")
        .and_then(|c| c.as_array())
        .is_some_and(|c| {
            c.iter()
                .any(|v| v.as_str().is_some_and(|s| s.starts_with("Tool: debless-")))
        })
}

/// A document debless wrote is far below this; a bigger file is not one.
const MAX_DOCUMENT: u64 = 256 << 20;

/// Read a file that should be one of debless's small JSON documents, without following a
/// link and without reading a huge file whole.
fn read_small(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    f.take(MAX_DOCUMENT).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `path` made absolute, with the longest part of it that exists resolved through any
/// symlinks (so `--sbom-dir` a link to `--out` is seen to be `--out`) and the rest cleaned
/// of `.` and `..` lexically. The last component is never followed: an output that is a
/// link is itself what would be replaced.
fn resolve(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let comps: Vec<Component> = abs.components().collect();
    let mut out = PathBuf::from("/");
    for (i, c) in comps.iter().enumerate() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => {
                out.push(n);
                if i + 1 < comps.len()
                    && let Ok(real) = out.canonicalize()
                {
                    out = real;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_follows_links_above_the_last_component() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
        let canon = real.canonicalize().unwrap();
        assert_eq!(resolve(&tmp.path().join("link/x")), canon.join("x"));
        assert_eq!(resolve(&tmp.path().join("link/new/../y")), canon.join("y"));
        // The last component is the output itself, link or not.
        assert_eq!(
            resolve(&tmp.path().join("link")),
            tmp.path().canonicalize().unwrap().join("link")
        );
    }
}
