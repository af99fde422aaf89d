//! The machine-written lock: `snapshots/<distro>.lock`.
//!
//! TOML, sorted, one table per package and architecture, so a one-package bump is a
//! few-line diff. Written atomically; unknown fields are rejected when read.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::digest::{Digest, bare_hex};
use crate::text::one_line;

/// Lock format version written by this debless.
pub const LOCK_VERSION: u32 = 1;

/// One verified index file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedIndex {
    /// Architecture of the index (`amd64`, or `all` for binary-all).
    pub architecture: String,
    /// Path under `dists/<suite>/`.
    pub path: String,
    /// SHA256 of the file as listed in the signed Release.
    #[serde(with = "bare_hex")]
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// One suite as it was pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedSuite {
    /// Archive name (`debian`, `debian-security`).
    pub archive: String,
    /// Suite name under `dists/`.
    pub suite: String,
    /// SHA256 of the InRelease file.
    #[serde(with = "bare_hex")]
    pub inrelease_sha256: Digest,
    /// Primary fingerprint of the key whose signature was accepted.
    pub signed_by: String,
    /// Release `Date:` (RFC 3339).
    pub date: String,
    /// Release `Valid-Until:` (RFC 3339), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
    /// Release `Version:`, when present (point release, e.g. `13.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_version: Option<String>,
    /// The Packages indices read.
    pub indices: Vec<LockedIndex>,
}

/// One package resolved for one architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedPackage {
    /// Package name.
    pub name: String,
    /// The image architecture this entry is for.
    pub arch: Arch,
    /// Version.
    pub version: String,
    /// The package's own Architecture (`amd64` or `all`).
    pub architecture: String,
    /// Suite it was taken from.
    pub suite: String,
    /// Source package name.
    pub source: String,
    /// Source package version.
    pub source_version: String,
    /// Pool path relative to the archive root.
    pub filename: String,
    /// .deb size in bytes.
    pub size: u64,
    /// .deb SHA256.
    #[serde(with = "bare_hex")]
    pub sha256: Digest,
    /// Installed-Size in KiB (bounds extraction).
    pub installed_size: u64,
    /// Resolved dependency names.
    pub depends: Vec<String>,
    /// Rules whose closure contains this package.
    pub rules: Vec<String>,
}

/// A dependency that was satisfied by exclusion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedExclude {
    /// Excluded package name.
    pub name: String,
    /// Architecture.
    pub arch: Arch,
    /// The file whose `exclude` list names it.
    pub excluded_by: String,
    /// Packages whose dependency it satisfied.
    pub required_by: Vec<String>,
    /// Rules in whose closure the exclusion happened.
    pub rules: Vec<String>,
}

/// The whole lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Lock format version.
    pub lock_version: u32,
    /// Distro (`debian13`).
    pub distro: String,
    /// Snapshot timestamp (RFC 3339): the `--date`, or the newest Release Date of a live pin.
    pub timestamp: String,
    /// For dated pins, the snapshot service timestamp (`20261120T000000Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Whether images are merged-/usr.
    pub merged_usr: bool,
    /// Architectures pinned.
    pub architectures: Vec<Arch>,
    /// Suites, in manifest order.
    #[serde(rename = "suite")]
    pub suites: Vec<LockedSuite>,
    /// Packages sorted by (arch, name).
    #[serde(rename = "package", default)]
    pub packages: Vec<LockedPackage>,
    /// Exclusions sorted by (arch, name).
    #[serde(rename = "excluded", default)]
    pub excluded: Vec<LockedExclude>,
}

/// Why a lock could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct LockError {
    /// The lock file.
    pub path: PathBuf,
    /// What is wrong and what to do.
    pub what: String,
}

const HEADER: &str = "# Written by `debless pin`; do not edit by hand (run `debless pin` again).\n";

impl Lock {
    /// Serialise deterministically.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(self).expect("lock types always serialise");
        format!("{HEADER}{body}")
    }

    /// Read and validate a lock file.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let err = |what: String| LockError {
            path: path.to_owned(),
            what,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "cannot read the lock ({e}); run `debless pin` to create it"
            ))
        })?;
        let lock: Lock = toml::from_str(&text).map_err(|e| {
            err(format!(
                "not a valid debless lock: {}; run `debless pin` to regenerate it",
                one_line(&e.to_string())
            ))
        })?;
        if lock.lock_version != LOCK_VERSION {
            return Err(err(format!(
                "lock format {} is not supported (this debless writes {LOCK_VERSION}); run `debless pin`",
                lock.lock_version
            )));
        }
        for p in &lock.packages {
            if !crate::archive::packages::safe_pool_path(&p.filename) {
                return Err(err(format!(
                    "package {} ({}) has a malformed filename; run `debless pin`",
                    p.name, p.arch
                )));
            }
        }
        Ok(lock)
    }

    /// Write atomically (temp file in the same directory, then rename).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        let err = |what: String| LockError {
            path: path.to_owned(),
            what,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| err(format!("cannot create a temporary file next to it ({e})")))?;
        tmp.write_all(self.to_toml().as_bytes())
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| err(format!("cannot write ({e}); the old lock is unchanged")))?;
        tmp.persist(path).map_err(|e| {
            err(format!(
                "cannot replace ({}); the old lock is unchanged",
                e.error
            ))
        })?;
        Ok(())
    }

    /// Packages of one architecture.
    pub fn packages_for(&self, arch: Arch) -> impl Iterator<Item = &LockedPackage> + '_ {
        self.packages.iter().filter(move |p| p.arch == arch)
    }
}
