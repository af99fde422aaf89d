//! Writing a build's outputs under `--out`: per image repository a layout, OCI archive or
//! docker archive, and its SPDX directory, each replaced atomically and left alone when
//! it already holds exactly this build.

use std::path::{Path, PathBuf};

use super::images::SpdxFile;
use super::walk::Built;
use super::{BuildError, Ctx, Format};
use crate::oci;

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
        match &self.opts.sbom_dir {
            Some(d) => d.join(repo),
            None => self.opts.out.join(format!("{repo}.spdx")),
        }
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
        let mut formats = self.opts.formats.clone();
        formats.sort();
        formats.dedup();
        for repo in &built.images.repositories {
            let mut changed_any = false;
            for &format in &formats {
                let (path, r) = match format {
                    Format::Oci => {
                        let p = out.join(&repo.name);
                        let r = repo.layout.write_dir(&p);
                        (p, r)
                    }
                    Format::OciArchive => {
                        let p = out.join(format!("{}.tar", repo.name));
                        let r = repo.layout.write_oci_archive(&p).map(|()| true);
                        (p, r)
                    }
                    Format::DockerArchive => {
                        let p = out.join(format!("{}.docker.tar", repo.name));
                        let r = repo
                            .layout
                            .write_docker_archive(&p, &repo.docker)
                            .map(|()| true);
                        (p, r)
                    }
                };
                let changed = r.map_err(|source| BuildError::Output {
                    path: path.clone(),
                    source: Box::new(source),
                })?;
                changed_any |= changed;
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
            )?;
            // The documents belong to every output of the image: written with any of them.
            if sbom_changed && !changed_any {
                for w in paths.iter_mut().rev().take(formats.len()) {
                    w.changed = true;
                }
            }
        }
        Ok(paths)
    }
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
/// directory first, so a failure leaves the old one intact. A directory already holding
/// exactly those files is left alone; returns whether anything was written.
fn write_dir_atomically(dir: &Path, files: &[SpdxFile]) -> Result<bool, BuildError> {
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
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(err)?;
    let staging = tempfile::Builder::new()
        .prefix(".debless-sbom-")
        .tempdir_in(parent)
        .map_err(err)?;
    for f in files {
        std::fs::write(staging.path().join(&f.name), &f.bytes).map_err(err)?;
    }
    // The same swap as a layout's: the old directory comes back if the rename fails.
    oci::replace_dir(staging.path(), dir, dir.exists())?;
    // Renamed into place: nothing left for the guard to delete.
    let _ = staging.keep();
    Ok(true)
}
