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
        let suffix = match self.opts.format {
            Format::Oci => return Ok(()),
            Format::OciArchive => "tar",
            Format::DockerArchive => "docker.tar",
        };
        if self.opts.arches.is_empty() && self.opts.variants.is_empty() {
            return Ok(());
        }
        let images: std::collections::BTreeSet<&str> =
            self.plan.images.iter().map(|i| i.image.as_str()).collect();
        for image in images {
            let path = self
                .opts
                .out
                .join(format!("{image}-{}.{suffix}", self.l.lock.distro));
            if path.exists() {
                return Err(BuildError::PartialArchive { path });
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

    /// Write every layout (or archive) under `--out`, each one atomically; an output
    /// already up to date is left alone. Returns each output and whether it was written.
    pub(super) fn write(&self, built: &Built) -> Result<Vec<(PathBuf, bool)>, BuildError> {
        let out = &self.opts.out;
        std::fs::create_dir_all(out).map_err(|source| BuildError::Io {
            path: out.clone(),
            what: "cannot create",
            source,
        })?;
        let mut paths = Vec::new();
        for repo in &built.images.repositories {
            let (path, r) = match self.opts.format {
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
            paths.push((path, changed || sbom_changed));
        }
        Ok(paths)
    }
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
