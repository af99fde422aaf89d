//! The hand-written source manifest: `snapshots/<distro>.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::arch::Arch;
use crate::archive::trust::same_fingerprint;
use crate::text::one_line;

/// One suite of one archive, e.g. `trixie-security` from `debian-security`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    /// Archive name as mirrors and the snapshot service spell it (`debian`, `debian-security`).
    pub archive: String,
    /// Suite or codename under `dists/`.
    pub suite: String,
    /// Fingerprints (of `keys`) allowed to sign this suite; empty means any manifest key.
    #[serde(default)]
    pub signed_by: Vec<String>,
}

/// A trusted archive key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// ASCII-armoured public key, relative to the manifest's directory.
    pub file: PathBuf,
    /// The primary key's fingerprint, checked when the file is loaded.
    pub fingerprint: String,
}

/// `snapshots/<distro>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Distro name used by rules and locks (`debian13`).
    pub distro: String,
    /// Debian codename (`trixie`).
    pub codename: String,
    /// Components to index (normally `["main"]`).
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// Architectures pinned by default.
    pub architectures: Vec<Arch>,
    /// Suites in preference order; the highest version across them wins.
    pub suites: Vec<SuiteSpec>,
    /// Trusted signing keys.
    pub keys: Vec<KeySpec>,
    /// Default snapshot date (RFC 3339); `--date` overrides it.
    #[serde(default)]
    pub date: Option<String>,
    /// Snapshot service URL template for dated pins and builds of dated locks
    /// (`.../archive/{archive}/{timestamp}/`); `--snapshot-service` and
    /// `$DEBLESS_SNAPSHOT_SERVICE` override it.
    #[serde(default)]
    pub snapshot_service: Option<String>,
    /// Packages never pulled in by dependencies, for every image of this distro.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Whether the distro is merged-/usr (affects the build, recorded in the lock).
    #[serde(default = "yes")]
    pub merged_usr: bool,
    /// Where this manifest was read from (not part of the file).
    #[serde(skip)]
    pub path: PathBuf,
}

fn default_components() -> Vec<String> {
    vec!["main".into()]
}

fn yes() -> bool {
    true
}

/// Why a manifest could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}")]
pub struct ManifestError {
    /// The manifest file.
    pub path: PathBuf,
    /// What is wrong and what to do.
    pub what: String,
}

impl Manifest {
    /// The manifest of `distro` under `snapshots_dir`.
    pub fn load(snapshots_dir: &Path, distro: &str) -> Result<Manifest, ManifestError> {
        let path = snapshots_dir.join(format!("{distro}.toml"));
        let err = |what: String| ManifestError {
            path: path.clone(),
            what,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            err(format!(
                "cannot read source manifest ({e}); is '{distro}' a distro with a manifest under {}?",
                snapshots_dir.display()
            ))
        })?;
        let mut m: Manifest = toml::from_str(&text).map_err(|e| err(one_line(&e.to_string())))?;
        m.path = path.clone();
        if m.distro != distro {
            return Err(err(format!(
                "declares distro = {:?}, but the file name says {distro:?}",
                m.distro
            )));
        }
        if m.suites.is_empty() || m.keys.is_empty() || m.architectures.is_empty() {
            return Err(err(
                "needs at least one suite, one key and one architecture".into(),
            ));
        }
        for s in &m.suites {
            for fp in &s.signed_by {
                if !m.keys.iter().any(|k| same_fingerprint(&k.fingerprint, fp)) {
                    return Err(err(format!(
                        "suite {} is signed_by {fp}, which is not among the manifest's keys",
                        s.suite
                    )));
                }
            }
        }
        Ok(m)
    }

    /// The distros with a manifest under `snapshots_dir` (`<distro>.toml`), sorted.
    pub fn distros(snapshots_dir: &Path) -> Result<Vec<String>, ManifestError> {
        let entries = std::fs::read_dir(snapshots_dir).map_err(|e| ManifestError {
            path: snapshots_dir.to_owned(),
            what: format!(
                "cannot list source manifests ({e}); is this a debless project (-C DIR)?"
            ),
        })?;
        let mut out: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let stem = name.strip_suffix(".toml")?;
                (!stem.is_empty() && e.path().is_file()).then(|| stem.to_owned())
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Key files resolved against the manifest's directory, with their pinned fingerprints.
    pub fn key_files(&self) -> Vec<(PathBuf, String)> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        self.keys
            .iter()
            .map(|k| (dir.join(&k.file), k.fingerprint.clone()))
            .collect()
    }
}
