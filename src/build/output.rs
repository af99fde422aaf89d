//! Writing a build's outputs under `--out`: per image repository a layout, OCI archive or
//! docker archive, its SPDX directory and its provenance directory, each replaced
//! atomically and left alone when it already holds exactly this build.

use std::path::{Path, PathBuf};

use super::images::NamedFile;
use super::walk::Built;
use super::{BuildError, Ctx, Format, destinations};

impl Ctx<'_> {
    /// A build of some tags or architectures cannot merge into an archive: refuse to
    /// replace one that exists rather than drop what it holds.
    pub(super) fn refuse_partial_archives(&self) -> Result<(), BuildError> {
        if self.opts.arches.is_empty() && self.opts.variants.is_empty() {
            return Ok(());
        }
        let images: std::collections::BTreeSet<&str> =
            self.plan.images.iter().map(|i| i.image.as_str()).collect();
        for format in &self.opts.formats {
            let Some(suffix) = format.archive_suffix() else {
                continue;
            };
            for image in &images {
                let path = self
                    .opts
                    .out
                    .join(format!("{image}-{}.{suffix}", self.l.lock.distro));
                if path.exists() {
                    return Err(BuildError::PartialArchive { path });
                }
            }
        }
        Ok(())
    }

    /// Where `repo`'s SPDX documents go: `--sbom-dir`/<repo>, else next to its layout.
    pub(super) fn sbom_dir(&self, repo: &str) -> PathBuf {
        destinations::sbom_dir_of(self.opts, repo)
    }

    /// Write every layout and archive (one per image and `--format`) under `--out`, each
    /// one atomically; an output already up to date is left alone.
    pub(super) fn write(&self, built: &Built) -> Result<Vec<Written>, BuildError> {
        let out = &self.opts.out;
        std::fs::create_dir_all(out).map_err(|source| BuildError::Io {
            path: out.clone(),
            what: "cannot create",
            source,
        })?;
        let mut paths = Vec::new();
        let formats = destinations::formats(self.opts);
        let phase = crate::progress::Phase::start(
            "write",
            (built.images.repositories.len() * formats.len()) as u64,
            crate::progress::Unit::Items,
            self.opts.quiet,
        );
        for repo in &built.images.repositories {
            let mut changed_any = false;
            for &format in &formats {
                let path = destinations::path_of(self.opts, &repo.name, format);
                let r = match format {
                    Format::Oci => repo.layout.write_dir(&path),
                    Format::OciArchive => repo.layout.write_oci_archive(&path).map(|()| true),
                    Format::DockerArchive => repo
                        .layout
                        .write_docker_archive(&path, &repo.docker)
                        .map(|()| true),
                };
                let changed = r.map_err(|source| BuildError::Output {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
                changed_any |= changed;
                phase.inc(1);
                phase.detail(|| match changed {
                    true => format!("wrote {}", path.display()),
                    false => format!("up to date {}", path.display()),
                });
                paths.push(Written {
                    path,
                    format,
                    changed,
                });
            }
            let sbom_dir = self.sbom_dir(&repo.name);
            let sbom_changed = write_dir_atomically(
                &sbom_dir,
                built
                    .images
                    .sboms
                    .get(&repo.name)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
                DocDir::Spdx,
            )?;
            // Next to the layout whatever --sbom-dir says: `debless push` finds it there.
            let provenance_changed = write_dir_atomically(
                &destinations::provenance_dir_of(self.opts, &repo.name),
                built
                    .images
                    .provenance
                    .get(&repo.name)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
                DocDir::Provenance,
            )?;
            // The documents belong to every output of the image: written with any of them.
            if (sbom_changed || provenance_changed) && !changed_any {
                for w in paths.iter_mut().rev().take(formats.len()) {
                    w.changed = true;
                }
            }
        }
        phase.finish();
        Ok(paths)
    }
}

/// Which documents a directory [`write_dir_atomically`] replaces holds.
#[derive(Debug, Clone, Copy)]
enum DocDir {
    /// `<tag>.spdx.json`, debless the creator.
    Spdx,
    /// `<tag>.intoto.json` statements (and the `.intoto.jsonl` envelopes push adds).
    Provenance,
}

/// One output a build wrote (or found up to date).
pub(super) struct Written {
    /// The layout directory or archive.
    pub(super) path: PathBuf,
    /// Its format.
    pub(super) format: Format,
    /// Whether it (or the image's SPDX documents) was written rather than left alone.
    pub(super) changed: bool,
}

/// Replace `dir` with a directory holding exactly `files`: written into a sibling temp
/// directory first, so a failure (or a kill) leaves the old one intact. A directory already
/// holding exactly those files is left alone; returns whether anything was written. Only a
/// directory of documents of `kind` debless wrote is ever replaced.
fn write_dir_atomically(dir: &Path, files: &[NamedFile], kind: DocDir) -> Result<bool, BuildError> {
    let err = |source| BuildError::Io {
        path: dir.to_owned(),
        what: "cannot write",
        source,
    };
    let same = std::fs::read_dir(dir).is_ok_and(|d| d.count() == files.len())
        && files
            .iter()
            .all(|f| std::fs::read(dir.join(&f.name)).is_ok_and(|b| b == f.bytes));
    if same {
        return Ok(false);
    }
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("sbom")
        .to_owned();
    std::fs::create_dir_all(parent).map_err(err)?;
    // A build killed while writing this directory left its temporaries here.
    crate::tmp::sweep(parent, Some(&name));
    let ours = match kind {
        DocDir::Spdx => destinations::spdx_dir_is_ours(dir),
        DocDir::Provenance => destinations::provenance_dir_is_ours(dir),
    };
    if std::fs::symlink_metadata(dir).is_ok() && !ours {
        return Err(BuildError::Destination {
            path: dir.to_owned(),
            what: match kind {
                DocDir::Spdx => "exists and is not an SPDX directory debless wrote, so it is left alone; move it away or choose another --sbom-dir",
                DocDir::Provenance => "exists and is not a provenance directory debless wrote, so it is left alone; move it away or choose another --out",
            }
            .to_owned(),
        });
    }
    let staging = crate::tmp::TempDir::new_in(parent, &name).map_err(err)?;
    for f in files {
        write_new(&staging.path().join(&f.name), &f.bytes).map_err(err)?;
    }
    crate::tmp::kill_point("spdx-staged");
    crate::tmp::replace_dir(staging, dir).map_err(err)?;
    Ok(true)
}

/// Write a file that must not exist yet (in a directory this process just made), never
/// through a link.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .write_all(bytes)
}
