//! Reading one layer's packages: each .deb from the cache, re-hashed, streamed through the
//! selection its rule declares (`paths`, `drop`, `allow_setuid`) and the defaults' file
//! policy.

use std::path::PathBuf;

use rayon::prelude::*;

use super::plan::{LayerPackage, LayerPlan};
use super::{BuildError, Ctx};
use crate::deb::{Deb, DebError, ReadOptions, Selection, max_data_bytes, read_deb};
use crate::fetch::cache::CacheError;
use crate::rules::DEFAULTS_FILE;
use crate::snapshot::lock::LockedPackage;

/// A package as read for one layer: its selected entries and its dpkg metadata.
pub(crate) struct PackageRead<'p> {
    /// The package as locked.
    pub locked: &'p LockedPackage,
    /// What it contributes.
    pub deb: Deb,
}

/// Why a locked package could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The .deb is not in the cache.
    #[error("its .deb is not in the cache; run `debless fetch`")]
    NotCached(#[source] CacheError),
    /// The cached .deb is not the one the lock pins (it was removed).
    #[error(
        "the cached .deb does not match the lock's sha256; run the build again to re-download it"
    )]
    Damaged(#[source] CacheError),
    /// The .deb is unreadable, or holds what an image must not.
    #[error(transparent)]
    Deb(#[from] DebError),
    /// The .deb's control file names another package, version or architecture than the
    /// lock entry whose sha256 it has: the lock was edited, or the index lied.
    #[error(
        "its control file says {field} {deb:?} where the lock says {locked:?}: the .deb is not the package the lock names; run `debless pin` to rewrite the lock"
    )]
    NotLocked {
        /// `Package`, `Version` or `Architecture`.
        field: &'static str,
        /// What the lock says.
        locked: String,
        /// What the .deb says.
        deb: String,
    },
}

impl From<CacheError> for PackageError {
    fn from(e: CacheError) -> PackageError {
        match e {
            CacheError::Read { .. } => PackageError::NotCached(e),
            CacheError::Mismatch { .. } => PackageError::Damaged(e),
        }
    }
}

/// The .deb is the package its lock entry names: Package, Version and Architecture in its
/// control file equal the lock's, so what the SBOM and `dev.debless.packages` say is what
/// the image holds.
fn identity(locked: &LockedPackage, control: &str) -> Result<(), PackageError> {
    let stanza = crate::deb822::paragraphs(control)
        .next()
        .and_then(Result::ok);
    let field = |name: &str| {
        stanza
            .as_ref()
            .and_then(|p| p.get(name))
            .map(str::trim)
            .unwrap_or("")
            .to_owned()
    };
    for (name, want) in [
        ("Package", &locked.name),
        ("Version", &locked.version),
        ("Architecture", &locked.architecture),
    ] {
        let got = field(name);
        if got != *want {
            return Err(PackageError::NotLocked {
                field: name,
                locked: want.clone(),
                deb: got,
            });
        }
    }
    Ok(())
}

impl Ctx<'_> {
    /// Read a layer's packages, in parallel, in the plan's order.
    pub(super) fn read_layer<'p>(
        &self,
        lp: &'p LayerPlan<'p>,
    ) -> Result<Vec<PackageRead<'p>>, BuildError> {
        let results: Vec<Result<Deb, BuildError>> = lp
            .packages
            .par_iter()
            .map(|p| self.read_package(p, lp))
            .collect();
        let mut out = Vec::with_capacity(results.len());
        for (p, r) in lp.packages.iter().zip(results) {
            out.push(PackageRead {
                locked: p.locked,
                deb: r?,
            });
        }
        Ok(out)
    }

    /// Read one package's selected entries for `lp`.
    fn read_package(&self, p: &LayerPackage, lp: &LayerPlan) -> Result<Deb, BuildError> {
        let policy = &self.l.rules.defaults.files;
        let locked = p.locked;
        let declared = p.declared.map(|(_, pr)| pr);
        // Where a pattern problem is fixed: the declaring rule, else the defaults, whose
        // lists are the only patterns an undeclared package is read with.
        let file = match p.declared {
            Some((rule, _)) => rule.file.clone(),
            None => self.opts.project.join("rules").join(DEFAULTS_FILE),
        };
        let paths = declared.and_then(|pr| pr.paths.as_deref());
        let sel = if self.opts.whole_packages {
            Selection::new(None, &[], &[], declared.map_or(&[], |pr| &pr.allow_setuid))
        } else {
            let include: Option<Vec<String>> =
                paths.map(|ps| ps.iter().map(|p| p.glob.clone()).collect());
            let exclude: Vec<String> = policy
                .exclude
                .iter()
                .cloned()
                .chain(
                    declared
                        .iter()
                        .flat_map(|pr| pr.drop.iter().map(|d| d.glob.clone())),
                )
                .collect();
            Selection::new(
                include.as_deref(),
                &exclude,
                &policy.keep,
                declared.map_or(&[], |pr| &pr.allow_setuid),
            )
        }
        .map_err(|source| BuildError::Pattern {
            file: file.clone(),
            package: locked.name.clone(),
            source: Box::new(source),
        })?;
        let package_error =
            |source: PackageError, dependency_of: Option<PathBuf>| BuildError::Package {
                package: locked.name.clone(),
                version: locked.version.clone(),
                arch: locked.arch,
                dependency_of,
                source: Box::new(source),
            };
        // Hashing what is already in memory costs little next to decompressing it, and a
        // flipped bit in the cache must not reach an image.
        let bytes = self
            .cache
            .read_verified(&locked.sha256, locked.size)
            .map_err(|e| package_error(e.into(), None))?;
        let read_opts = ReadOptions {
            merged_usr: self.l.lock.merged_usr,
            max_data_bytes: Some(max_data_bytes(locked.installed_size)),
        };
        let deb = read_deb(&bytes, &locked.name, &sel, &read_opts).map_err(|e| {
            // An undeclared dependency has no rule of its own to fix: say which rule
            // brings it in.
            let dependency_of = p.declared.is_none().then(|| lp.rule.file.clone());
            package_error(e.into(), dependency_of)
        })?;
        identity(locked, &deb.control).map_err(|e| package_error(e, None))?;
        if !self.opts.whole_packages {
            let required = paths.into_iter().flatten().filter(|p| p.required);
            if let Some(pat) = required
                .map(|p| &p.glob)
                .find(|glob| deb.unmatched.contains(glob))
            {
                return Err(BuildError::Unmatched {
                    file,
                    package: locked.name.clone(),
                    key: "path",
                    pattern: pat.clone(),
                    version: locked.version.clone(),
                    arch: locked.arch,
                });
            }
            let drops = declared.map_or(&[][..], |pr| &pr.drop);
            if let Some(pat) = drops
                .iter()
                .filter(|p| p.required)
                .map(|p| &p.glob)
                .find(|glob| deb.unmatched_excludes.contains(glob))
            {
                return Err(BuildError::Unmatched {
                    file,
                    package: locked.name.clone(),
                    key: "drop",
                    pattern: pat.clone(),
                    version: locked.version.clone(),
                    arch: locked.arch,
                });
            }
        }
        Ok(deb)
    }
}
