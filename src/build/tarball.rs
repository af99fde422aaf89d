//! Reading one layer's upstream tarballs: each from the cache, re-hashed, through the
//! selection its rule declares (`paths`, `drop`) and the defaults' file policy, its top
//! directory moved under the rule's `prefix`, its licence file always kept.

use rayon::prelude::*;

use super::plan::{LayerPlan, LayerTarball};
use super::{BuildError, Ctx};
use crate::deb::{
    DebError, ReadOptions, Relocation, Selection, TARBALL_ORIGIN, max_tarball_bytes, read_tarball,
};
use crate::fetch::cache::CacheError;
use crate::layer::{Entry, EntryKind};

/// A tarball as read for one layer: its selected entries.
pub(crate) struct TarballRead<'p> {
    /// The tarball as planned (rule declaration and locked file).
    pub tarball: &'p LayerTarball<'p>,
    /// What it contributes, origin `tarball:<name>`.
    pub entries: Vec<Entry>,
}

impl TarballRead<'_> {
    /// The origin its entries carry.
    pub fn origin(&self) -> String {
        origin(self.tarball.name)
    }
}

/// The origin of a tarball's entries (`tarball:node`).
pub(crate) fn origin(name: &str) -> String {
    format!("{TARBALL_ORIGIN}{name}")
}

/// Why a locked tarball could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TarballError {
    /// The tarball is not in the cache.
    #[error("it is not in the cache; run `debless fetch`")]
    NotCached(#[source] CacheError),
    /// The cached file is not the one the lock pins (it was removed).
    #[error("the cached file does not match the lock's sha256; run the build again to download it")]
    Damaged(#[source] CacheError),
    /// The tarball is unreadable, or holds what an image must not.
    #[error(transparent)]
    Deb(#[from] DebError),
    /// A required `paths` pattern matches nothing in it.
    #[error("path {pattern} matches nothing in it; fix or drop the pattern")]
    Unmatched {
        /// The pattern as written.
        pattern: String,
    },
    /// A template of the rule cannot be filled in for the architecture.
    #[error("{what}")]
    Template {
        /// What is missing.
        what: String,
    },
    /// The licence file the rule names is not a file of the tarball.
    #[error("its licence file {path} is not a regular file of the tarball; fix `license_file`")]
    NoLicense {
        /// The image path the rule names.
        path: String,
    },
}

impl From<CacheError> for TarballError {
    fn from(e: CacheError) -> TarballError {
        match e {
            CacheError::Read { .. } => TarballError::NotCached(e),
            CacheError::Mismatch { .. } => TarballError::Damaged(e),
        }
    }
}

impl Ctx<'_> {
    /// Read a layer's tarballs, in parallel, in the plan's order.
    pub(super) fn read_tarballs<'p>(
        &self,
        lp: &'p LayerPlan<'p>,
    ) -> Result<Vec<TarballRead<'p>>, BuildError> {
        let results: Vec<Result<Vec<Entry>, BuildError>> = lp
            .tarballs
            .par_iter()
            .map(|t| self.read_tarball(t, lp))
            .collect();
        let mut out = Vec::with_capacity(results.len());
        for (t, r) in lp.tarballs.iter().zip(results) {
            out.push(TarballRead {
                tarball: t,
                entries: r?,
            });
        }
        Ok(out)
    }

    /// Read one tarball's selected entries for `lp`.
    fn read_tarball(&self, t: &LayerTarball, lp: &LayerPlan) -> Result<Vec<Entry>, BuildError> {
        let locked = t.locked;
        let err = |source: TarballError| BuildError::Tarball {
            file: lp.rule.file.clone(),
            name: locked.name.clone(),
            version: locked.version.clone(),
            arch: locked.arch,
            source: Box::new(source),
        };
        let policy = &self.l.rules.defaults.files;
        let license = t.rule.license_file.clone();
        let sel = if self.opts.whole_packages {
            Selection::new(None, &[], &[], &[])
        } else {
            // The licence file is kept whatever `paths`, `drop` and the defaults say.
            let include: Option<Vec<String>> = t.rule.paths.as_ref().map(|ps| {
                ps.iter()
                    .map(|p| p.glob.clone())
                    .chain([license.clone()])
                    .collect()
            });
            let exclude: Vec<String> = policy.exclude.iter().chain(&t.rule.drop).cloned().collect();
            let keep: Vec<String> = policy
                .keep
                .iter()
                .cloned()
                .chain([license.clone()])
                .collect();
            Selection::new(include.as_deref(), &exclude, &keep, &[])
        }
        .map_err(|source| BuildError::Pattern {
            file: lp.rule.file.clone(),
            package: format!("tarball {}", t.name),
            source: Box::new(source),
        })?;
        // Re-hashed on the way in: a flipped bit in the cache must not reach an image.
        let bytes = self
            .cache
            .read_verified(&locked.sha256, locked.size)
            .map_err(|e| err(e.into()))?;
        let arch = locked.arch;
        let strip = t
            .rule
            .strip_for(arch)
            .map_err(|what| err(TarballError::Template { what }))?;
        let file = locked
            .url
            .rsplit('/')
            .next()
            .filter(|f| !f.is_empty())
            .unwrap_or(&locked.url);
        let read = read_tarball(
            &bytes,
            &origin(t.name),
            file,
            &sel,
            &Relocation::new(&strip, &t.rule.prefix),
            &ReadOptions {
                merged_usr: self.l.lock.merged_usr,
                max_data_bytes: Some(max_tarball_bytes(locked.size)),
            },
        )
        .map_err(|e| err(e.into()))?;
        if !self.opts.whole_packages {
            let required = t.rule.paths.iter().flatten().filter(|p| p.required);
            if let Some(pat) = required
                .map(|p| &p.glob)
                .find(|glob| read.unmatched.contains(glob))
            {
                return Err(err(TarballError::Unmatched {
                    pattern: pat.clone(),
                }));
            }
        }
        let has_license = read
            .entries
            .iter()
            .any(|e| e.abs_path() == license && matches!(e.kind, EntryKind::File { .. }));
        if !has_license {
            return Err(err(TarballError::NoLicense { path: license }));
        }
        Ok(read.entries)
    }
}
