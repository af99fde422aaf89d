//! The machine-written lock: `snapshots/<distro>.lock`.
//!
//! TOML, sorted, one table per package and architecture, so a one-package bump is a
//! few-line diff. Written atomically; unknown fields are rejected when read.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::digest::{Digest, bare_hex};
use crate::text::one_line;

/// Lock format version of a lock whose packages all come from Debian suites.
pub const LOCK_VERSION: u32 = 1;
/// Lock format version of a lock that also has vendor repositories (`[[vendor]]`) or
/// upstream tarballs (`[[tarball]]`). Only such a lock is written as 2, so every other
/// lock stays byte for byte what it was, and a debless that predates them refuses it by
/// its version rather than by an unknown field.
pub const LOCK_VERSION_SOURCES: u32 = 2;

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
    /// Archive name (`debian`, `debian-security`); for a vendor repository, the vendor's
    /// name in the manifest (`adoptium`).
    pub archive: String,
    /// A vendor repository's root URL (Debian suites come from mirrors instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
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
    /// The vendor repository it was taken from (`[[vendor]]`), if not a Debian suite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
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

/// One upstream tarball (a rule's `[tarballs.<name>]`) for one architecture, hashed when
/// it was pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedTarball {
    /// The tarball's name in the rule (`node`): its SBOM package name.
    pub name: String,
    /// The image architecture this entry is for.
    pub arch: Arch,
    /// The upstream version the rule names.
    pub version: String,
    /// Where it was downloaded from (the rule's template filled in).
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA256 of the file as downloaded at pin time.
    #[serde(with = "bare_hex")]
    pub sha256: Digest,
    /// Rules that take it.
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
    /// Vendor repositories some package was taken from, in manifest order.
    #[serde(rename = "vendor", default, skip_serializing_if = "Vec::is_empty")]
    pub vendors: Vec<LockedSuite>,
    /// Packages sorted by (arch, name).
    #[serde(rename = "package", default)]
    pub packages: Vec<LockedPackage>,
    /// Upstream tarballs sorted by (arch, name, version).
    #[serde(rename = "tarball", default, skip_serializing_if = "Vec::is_empty")]
    pub tarballs: Vec<LockedTarball>,
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
        check_entries(&text).map_err(err)?;
        let lock: Lock = toml::from_str(&text).map_err(|e| {
            err(format!(
                "not a valid debless lock: {}; run `debless pin` to regenerate it",
                one_line(&e.to_string())
            ))
        })?;
        if lock.lock_version != LOCK_VERSION && lock.lock_version != LOCK_VERSION_SOURCES {
            return Err(err(format!(
                "lock format {} is not supported (this debless reads {LOCK_VERSION} and {LOCK_VERSION_SOURCES}); run `debless pin`",
                lock.lock_version
            )));
        }
        if lock.lock_version < lock.format_version() {
            return Err(err(format!(
                "lock format {} cannot hold vendor repositories or tarballs, but this lock has them; run `debless pin` to rewrite it",
                lock.lock_version
            )));
        }
        lock.check_sources().map_err(err)?;
        let mut seen = std::collections::BTreeSet::new();
        for p in &lock.packages {
            // A name becomes a path in the image (/var/lib/dpkg/status.d/<name>).
            if !crate::archive::packages::valid_package_name(&p.name) {
                return Err(err(format!(
                    "package {:?} ({}) is not a Debian package name; run `debless pin`",
                    p.name, p.arch
                )));
            }
            if !crate::archive::packages::safe_pool_path(&p.filename) {
                return Err(err(format!(
                    "package {} ({}) has a malformed filename; run `debless pin`",
                    p.name, p.arch
                )));
            }
            if !seen.insert((p.arch, p.name.as_str())) {
                return Err(err(format!(
                    "package {} ({}) is listed twice; an image holds one version of a package: run `debless pin` to rewrite the lock",
                    p.name, p.arch
                )));
            }
        }
        Ok(lock)
    }

    /// The format version this lock needs: [`LOCK_VERSION_SOURCES`] when it has vendor
    /// repositories or tarballs, else [`LOCK_VERSION`].
    pub fn format_version(&self) -> u32 {
        if self.vendors.is_empty() && self.tarballs.is_empty() {
            LOCK_VERSION
        } else {
            LOCK_VERSION_SOURCES
        }
    }

    /// Vendor repositories and tarballs: http(s) URLs, every vendor a package names
    /// listed, one entry per tarball, name, version and architecture.
    fn check_sources(&self) -> Result<(), String> {
        let web = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        for v in &self.vendors {
            if !v.url.as_deref().is_some_and(web) {
                return Err(format!(
                    "vendor {}: url is missing or not http(s); run `debless pin`",
                    v.archive
                ));
            }
        }
        for p in &self.packages {
            if let Some(vendor) = &p.vendor
                && !self
                    .vendors
                    .iter()
                    .any(|v| &v.archive == vendor && v.suite == p.suite)
            {
                return Err(format!(
                    "package {} ({}) names vendor {vendor} suite {}, which the lock does not list; run `debless pin`",
                    p.name, p.arch, p.suite
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for t in &self.tarballs {
            if !web(&t.url) {
                return Err(format!(
                    "tarball {} ({}): url {:?} is not http(s); run `debless pin`",
                    t.name, t.arch, t.url
                ));
            }
            if !seen.insert((t.arch, t.name.as_str(), t.version.as_str())) {
                return Err(format!(
                    "tarball {} {} ({}) is listed twice; run `debless pin` to rewrite the lock",
                    t.name, t.version, t.arch
                ));
            }
        }
        Ok(())
    }

    /// The locked tarball `name` at `version` for `arch`.
    pub fn tarball(&self, arch: Arch, name: &str, version: &str) -> Option<&LockedTarball> {
        self.tarballs
            .iter()
            .find(|t| t.arch == arch && t.name == name && t.version == version)
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
        // A rewritten lock keeps its mode (a repository may want 0664); a new one is 0644
        // like any file a user writes, not the temporary file's 0600.
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("lock");
        // A pin killed while writing left a temporary here: it goes now.
        crate::tmp::sweep(dir, Some(name));
        let tmp = crate::tmp::TempFile::new_in(dir, name, mode)
            .map_err(|e| err(format!("cannot create a temporary file next to it ({e})")))?;
        tmp.file()
            .write_all(self.to_toml().as_bytes())
            .and_then(|_| {
                // The mode is set again: creation masks it with the umask.
                tmp.file()
                    .set_permissions(std::fs::Permissions::from_mode(mode))
            })
            .map_err(|e| err(format!("cannot write ({e}); the old lock is unchanged")))?;
        tmp.persist(path)
            .map_err(|e| err(format!("cannot replace ({e}); the old lock is unchanged")))?;
        Ok(())
    }

    /// The locked package `name` for `arch`.
    pub fn package(&self, arch: Arch, name: &str) -> Option<&LockedPackage> {
        self.packages
            .iter()
            .find(|p| p.arch == arch && p.name == name)
    }

    /// Packages of one architecture.
    pub fn packages_for(&self, arch: Arch) -> impl Iterator<Item = &LockedPackage> + '_ {
        self.packages.iter().filter(move |p| p.arch == arch)
    }
}

/// Every digest in the lock in its canonical form (64 lower-case hex digits), checked
/// before the typed parse so that the error names the entry, not a line and column.
fn check_entries(text: &str) -> Result<(), String> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        // Not TOML at all: the typed parse reports where.
        return Ok(());
    };
    let s = |v: Option<&toml::Value>| v.and_then(toml::Value::as_str).unwrap_or("?").to_owned();
    for p in doc
        .get("package")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(h) = p.get("sha256").and_then(toml::Value::as_str)
            && Digest::from_hex(h).is_err()
        {
            return Err(format!(
                "package {} ({}): sha256 {h:?} is not 64 lower-case hex digits; run `debless pin` to rewrite the lock",
                s(p.get("name")),
                s(p.get("arch"))
            ));
        }
    }
    for t in doc
        .get("tarball")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(h) = t.get("sha256").and_then(toml::Value::as_str)
            && Digest::from_hex(h).is_err()
        {
            return Err(format!(
                "tarball {} ({}): sha256 {h:?} is not 64 lower-case hex digits; run `debless pin` to rewrite the lock",
                s(t.get("name")),
                s(t.get("arch"))
            ));
        }
    }
    let suites = ["suite", "vendor"].into_iter().flat_map(|k| {
        doc.get(k)
            .and_then(toml::Value::as_array)
            .into_iter()
            .flatten()
    });
    for suite in suites {
        let hashes = std::iter::once(suite.get("inrelease_sha256")).chain(
            suite
                .get("indices")
                .and_then(toml::Value::as_array)
                .into_iter()
                .flatten()
                .map(|i| i.get("sha256")),
        );
        for h in hashes.flatten().filter_map(toml::Value::as_str) {
            if Digest::from_hex(h).is_err() {
                return Err(format!(
                    "suite {}: sha256 {h:?} is not 64 lower-case hex digits; run `debless pin` to rewrite the lock",
                    s(suite.get("suite"))
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        let pkg = |name: &str, arch: Arch| LockedPackage {
            name: name.into(),
            arch,
            version: "1.0-1".into(),
            architecture: arch.name().into(),
            suite: "trixie".into(),
            vendor: None,
            source: name.into(),
            source_version: "1.0-1".into(),
            filename: format!("pool/main/x/{name}_1.0-1_{arch}.deb"),
            size: 10,
            sha256: Digest::of(format!("{name} {arch}").as_bytes()),
            installed_size: 1,
            depends: vec![],
            rules: vec!["base".into()],
        };
        Lock {
            lock_version: LOCK_VERSION,
            distro: "debian13".into(),
            timestamp: "2026-11-21T09:15:44Z".into(),
            snapshot: None,
            merged_usr: true,
            architectures: vec![Arch::Amd64, Arch::Arm64],
            suites: vec![LockedSuite {
                archive: "debian".into(),
                url: None,
                suite: "trixie".into(),
                inrelease_sha256: Digest::of(b"inrelease"),
                signed_by: "ABCD".into(),
                date: "2026-11-21T09:15:44Z".into(),
                valid_until: None,
                release_version: None,
                indices: vec![LockedIndex {
                    architecture: "amd64".into(),
                    path: "main/binary-amd64/Packages.xz".into(),
                    sha256: Digest::of(b"index"),
                    size: 1,
                }],
            }],
            vendors: vec![],
            packages: vec![pkg("libc6", Arch::Amd64), pkg("libc6", Arch::Arm64)],
            tarballs: vec![],
            excluded: vec![],
        }
    }

    /// The sample with a vendor repository, one package from it and a tarball.
    fn with_sources() -> Lock {
        let mut lock = sample();
        let mut vendor = lock.suites[0].clone();
        vendor.archive = "acme".into();
        vendor.url = Some("https://acme.invalid/deb/".into());
        lock.vendors.push(vendor);
        let mut runtime = lock.packages[0].clone();
        runtime.name = "acme-runtime".into();
        runtime.vendor = Some("acme".into());
        lock.packages.push(runtime);
        lock.tarballs.push(LockedTarball {
            name: "node".into(),
            arch: Arch::Amd64,
            version: "22.11.0".into(),
            url: "https://nodejs.invalid/v22.11.0/node-v22.11.0-linux-x64.tar.xz".into(),
            size: 3,
            sha256: Digest::of(b"node"),
            rules: vec!["nodejs22".into()],
        });
        lock.lock_version = lock.format_version();
        lock
    }

    fn read_text(text: &str) -> Result<Lock, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        std::fs::write(&path, text).unwrap();
        Lock::read(&path).map_err(|e| e.what)
    }

    #[test]
    fn a_written_lock_reads_back_identical() {
        let lock = sample();
        assert_eq!(read_text(&lock.to_toml()).unwrap(), lock);
    }

    #[test]
    fn a_lock_without_vendors_or_tarballs_stays_format_1_and_says_nothing_of_them() {
        let text = sample().to_toml();
        assert!(text.contains("lock_version = 1\n"), "{text}");
        assert!(!text.contains("vendor") && !text.contains("tarball") && !text.contains("url"));
    }

    #[test]
    fn vendors_and_tarballs_make_format_2_and_read_back() {
        let lock = with_sources();
        assert_eq!(lock.lock_version, LOCK_VERSION_SOURCES);
        let text = lock.to_toml();
        assert!(
            text.contains("[[vendor]]") && text.contains("[[tarball]]"),
            "{text}"
        );
        assert!(text.contains("vendor = \"acme\""), "{text}");
        assert_eq!(read_text(&text).unwrap(), lock);
        // Written as format 1, a debless that knows nothing of them would misread it.
        let v1 = text.replace("lock_version = 2", "lock_version = 1");
        assert!(
            read_text(&v1)
                .unwrap_err()
                .contains("cannot hold vendor repositories")
        );
        let v3 = text.replace("lock_version = 2", "lock_version = 3");
        assert!(
            read_text(&v3)
                .unwrap_err()
                .contains("lock format 3 is not supported")
        );
    }

    #[test]
    fn vendor_and_tarball_entries_are_checked() {
        let text = with_sources().to_toml();
        let orphan = text.replace("vendor = \"acme\"", "vendor = \"other\"");
        assert!(
            read_text(&orphan)
                .unwrap_err()
                .contains("names vendor other suite trixie, which the lock does not list"),
        );
        let hex = Digest::of(b"node").hex();
        let bad = text.replace(&hex, &hex.to_uppercase());
        assert!(
            read_text(&bad)
                .unwrap_err()
                .starts_with("tarball node (amd64): sha256 ")
        );
        let mut twice = with_sources();
        twice.tarballs.push(twice.tarballs[0].clone());
        assert!(
            read_text(&twice.to_toml())
                .unwrap_err()
                .contains("tarball node 22.11.0 (amd64) is listed twice")
        );
    }

    #[test]
    fn duplicate_entries_are_refused_naming_them() {
        let text = sample().to_toml();
        let dup = text.replace("arch = \"arm64\"", "arch = \"amd64\"");
        assert_eq!(
            read_text(&dup).unwrap_err(),
            "package libc6 (amd64) is listed twice; an image holds one version of a package: run `debless pin` to rewrite the lock"
        );
    }

    #[test]
    fn a_name_that_is_not_a_package_name_is_refused() {
        // It would become /var/lib/dpkg/status.d/<name> in the image.
        let text =
            sample()
                .to_toml()
                .replacen("name = \"libc6\"", "name = \"../../etc/passwd\"", 1);
        assert_eq!(
            read_text(&text).unwrap_err(),
            "package \"../../etc/passwd\" (amd64) is not a Debian package name; run `debless pin`"
        );
    }

    #[test]
    fn non_canonical_hashes_are_refused_naming_the_entry() {
        let lock = sample();
        let hex = lock.packages[1].sha256.hex();
        let upper = lock.to_toml().replace(&hex, &hex.to_uppercase());
        assert_eq!(
            read_text(&upper).unwrap_err(),
            format!(
                "package libc6 (arm64): sha256 \"{}\" is not 64 lower-case hex digits; run `debless pin` to rewrite the lock",
                hex.to_uppercase()
            )
        );
        let index = lock.suites[0].indices[0].sha256.hex();
        let short = lock.to_toml().replace(&index, &index[1..]);
        assert!(
            read_text(&short)
                .unwrap_err()
                .starts_with("suite trixie: sha256 "),
        );
    }

    #[test]
    fn a_rewritten_lock_keeps_its_mode_and_a_new_one_is_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        sample().write(&path).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o644);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        sample().write(&path).unwrap();
        assert_eq!(mode(&path), 0o664);
    }
}
