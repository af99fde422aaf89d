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

/// A vendor's own apt repository (Eclipse Adoptium's, say), with its own key. It supplies
/// only the packages its `packages` patterns name, and nothing else may supply them, so a
/// vendor can neither replace a Debian package nor be replaced by one; and it is fetched
/// only when a rule being pinned names one of those packages as a root.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorSpec {
    /// Short name (`adoptium`): how the lock and messages name the repository.
    pub name: String,
    /// The repository root, under which `dists/<suite>/` and the pool live.
    pub url: String,
    /// The suite under `dists/` (vendors often name it after the Debian codename).
    pub suite: String,
    /// Components to index; default `["main"]`.
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// Package names (`*` matches any run of characters) only this repository supplies.
    pub packages: Vec<String>,
    /// The vendor's signing key: the only key its InRelease is checked against, and one
    /// no Debian suite accepts. An empty fingerprint is allowed in the file (a key the
    /// user has yet to fetch and check) and refused when the repository is needed.
    pub key: KeySpec,
}

impl VendorSpec {
    /// Does this repository supply the package `name`?
    pub fn supplies(&self, name: &str) -> bool {
        self.packages.iter().any(|p| name_matches(p, name))
    }

    /// The repository root with one trailing `/`.
    pub fn root(&self) -> String {
        format!("{}/", self.url.trim_end_matches('/'))
    }
}

/// Does `name` match `pattern`, where `*` stands for any run of characters?
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
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
    /// Vendors' own apt repositories (`[[vendors]]`), each with its own key.
    #[serde(default)]
    pub vendors: Vec<VendorSpec>,
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
        m.check_vendors().map_err(err)?;
        Ok(m)
    }

    /// Vendor repositories: unique names that cannot pass for an archive, http(s) URLs,
    /// usable suite names, and package patterns no two repositories share.
    fn check_vendors(&self) -> Result<(), String> {
        for (i, v) in self.vendors.iter().enumerate() {
            let name_ok = !v.name.is_empty()
                && v.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok {
                return Err(format!(
                    "vendor {:?}: a vendor name uses lower-case letters, digits and '-' only",
                    v.name
                ));
            }
            if self.vendors[..i].iter().any(|o| o.name == v.name)
                || self.suites.iter().any(|s| s.archive == v.name)
            {
                return Err(format!(
                    "vendor {}: the name is already used by another vendor or archive; name it differently",
                    v.name
                ));
            }
            if !(v.url.starts_with("http://") || v.url.starts_with("https://")) {
                return Err(format!(
                    "vendor {}: url {:?} is not an http:// or https:// URL",
                    v.name, v.url
                ));
            }
            let usable =
                |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains(['/', ' ', '\\']);
            if !usable(&v.suite) || !v.components.iter().all(|c| usable(c)) {
                return Err(format!(
                    "vendor {}: suite {:?} and components {:?} must be plain names: debless reads the `dists/<suite>/<component>/binary-<arch>/Packages` layout only (a flat repository, `deb URL ./`, is not supported)",
                    v.name, v.suite, v.components
                ));
            }
            if v.packages.is_empty() || v.packages.iter().any(|p| p.is_empty() || p == "*") {
                return Err(format!(
                    "vendor {}: `packages` must name the packages it supplies (patterns like \"temurin-*\", not \"*\"): a vendor may not stand in for Debian's packages",
                    v.name
                ));
            }
            for other in &self.vendors[..i] {
                if let Some(p) = v.packages.iter().find(|p| other.packages.contains(p)) {
                    return Err(format!(
                        "vendors {} and {} both claim packages {p:?}; a package comes from one place",
                        other.name, v.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The vendor that supplies `name`, if any.
    pub fn vendor_of(&self, name: &str) -> Option<&VendorSpec> {
        self.vendors.iter().find(|v| v.supplies(name))
    }

    /// A vendor's key file resolved against the manifest's directory, with its pinned
    /// fingerprint; an error saying how to get the key while the fingerprint is unset.
    pub fn vendor_key(&self, v: &VendorSpec) -> Result<(PathBuf, String), ManifestError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let file = dir.join(&v.key.file);
        if v.key.fingerprint.trim().is_empty() {
            return Err(ManifestError {
                path: self.path.clone(),
                what: format!(
                    "vendor {}: the key fingerprint is not set; fetch the vendor's public key, save it as {}, check its fingerprint against the one the vendor publishes, and set `fingerprint` (README, \"Images outside the family\")",
                    v.name,
                    file.display()
                ),
            });
        }
        Ok((file, v.key.fingerprint.clone()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_patterns_match_whole_names() {
        assert!(name_matches("temurin-*", "temurin-21-jre"));
        assert!(name_matches("temurin-*-jre", "temurin-21-jre"));
        assert!(!name_matches("temurin-*-jre", "temurin-21-jdk"));
        assert!(name_matches(
            "adoptium-ca-certificates",
            "adoptium-ca-certificates"
        ));
        assert!(!name_matches("adoptium-ca", "adoptium-ca-certificates"));
        assert!(!name_matches("x*x", "x"));
        assert!(name_matches("*-jre", "a-jre"));
    }

    fn load(vendors: &str) -> Result<Manifest, String> {
        let d = tempfile::tempdir().unwrap();
        let text = format!(
            "distro = \"t\"\ncodename = \"t\"\narchitectures = [\"amd64\"]\n\
             [[suites]]\narchive = \"debian\"\nsuite = \"t\"\n\
             [[keys]]\nfile = \"k.asc\"\nfingerprint = \"AB\"\n{vendors}"
        );
        std::fs::write(d.path().join("t.toml"), text).unwrap();
        Manifest::load(d.path(), "t").map_err(|e| e.what)
    }

    const VENDOR: &str = "[[vendors]]\nname = \"acme\"\nurl = \"https://acme.invalid/deb\"\nsuite = \"t\"\npackages = [\"acme-*\"]\nkey = { file = \"keys/acme.asc\", fingerprint = \"\" }\n";

    #[test]
    fn a_vendor_without_a_fingerprint_loads_and_is_refused_when_needed() {
        let m = load(VENDOR).unwrap();
        let v = m.vendor_of("acme-runtime").unwrap();
        assert_eq!(v.root(), "https://acme.invalid/deb/");
        assert!(m.vendor_of("libc6").is_none());
        let e = m.vendor_key(v).unwrap_err().what;
        assert!(
            e.starts_with("vendor acme: the key fingerprint is not set; fetch the vendor's public key, save it as "),
            "{e}"
        );
    }

    #[test]
    fn vendors_are_checked_when_the_manifest_loads() {
        let flat = VENDOR.replace("suite = \"t\"", "suite = \"./\"");
        assert!(load(&flat).unwrap_err().contains("flat repository"));
        let all = VENDOR.replace("[\"acme-*\"]", "[\"*\"]");
        assert!(
            load(&all)
                .unwrap_err()
                .contains("may not stand in for Debian")
        );
        let clash = VENDOR.replace("name = \"acme\"", "name = \"debian\"");
        assert!(load(&clash).unwrap_err().contains("already used"));
        let ftp = VENDOR.replace("https://", "ftp://");
        assert!(
            load(&ftp)
                .unwrap_err()
                .contains("not an http:// or https:// URL")
        );
        let twice = format!("{VENDOR}{}", VENDOR.replace("\"acme\"", "\"other\""));
        assert!(load(&twice).unwrap_err().contains("both claim"));
    }
}
