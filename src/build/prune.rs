//! `debless cache`: what the cache holds, by kind, and pruning it by age and by what some
//! locks still need.
//!
//! The cache (`fetch::cache`, `layer_cache`) is `sha256/<hex>` (.debs, verified indices,
//! upstream tarballs and layer blobs side by side), `layers/<key>.json` (layer entries),
//! `sboms/<key>.spdx.json` (SPDX documents), `partial/` (downloads to resume and
//! temporaries) and `locks/` (one empty lock file per blob ever fetched).
//!
//! **Last use** is a file's mtime or atime, whichever is later: a build sets the mtime of
//! every .deb, layer entry, layer blob and document it takes from the cache (atime alone
//! is not kept on `noatime` mounts). **A running build is never broken:** nothing used
//! within the grace period (an hour unless `--grace` says otherwise) is removed, a build
//! takes what it needs from the cache at its start and touches it then, a resumable
//! download is removed only when no process holds its lock, and a temporary only when the
//! process that made it is gone. Lock files are never removed (a process may hold one).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::layer_cache::BuiltLayer;
use crate::digest::Digest;
use crate::snapshot::lock::Lock;

/// What a cache file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A .deb (`sha256/`, an ar archive).
    Debs,
    /// A layer entry (`layers/`) or the blob one names (`sha256/`).
    Layers,
    /// A cached SPDX document (`sboms/`).
    Sboms,
    /// A verified archive index or InRelease (`sha256/`).
    Indices,
    /// Any other blob: an upstream tarball, a layer blob no entry names.
    Other,
    /// A download to resume or a temporary (`partial/`).
    Partial,
    /// A lock file (`locks/`), never pruned.
    Locks,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 7] = [
        Kind::Debs,
        Kind::Layers,
        Kind::Sboms,
        Kind::Indices,
        Kind::Other,
        Kind::Partial,
        Kind::Locks,
    ];

    /// The report's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Debs => "debs",
            Kind::Layers => "layers",
            Kind::Sboms => "sboms",
            Kind::Indices => "indices",
            Kind::Other => "other",
            Kind::Partial => "partial",
            Kind::Locks => "locks",
        }
    }
}

/// Files and bytes (apparent sizes, as `du -b` counts them, directories left out).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Size {
    /// Files.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
}

impl Size {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// What the cache holds.
#[derive(Debug, Clone, Serialize)]
pub struct CacheReport {
    /// The cache directory.
    pub dir: String,
    /// By kind (every kind, empty ones too).
    pub kinds: BTreeMap<Kind, Size>,
    /// Everything.
    pub total: Size,
}

/// How to prune.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// Remove only what was last used longer ago than this.
    pub older_than: Option<Duration>,
    /// Remove only what none of these locks needs.
    pub keep_locks: Vec<PathBuf>,
    /// Never remove what was used more recently than this (a running build's files).
    pub grace: Duration,
    /// Only say what would go.
    pub dry_run: bool,
}

/// The default grace period: an hour.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// One file pruned (or that would be).
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    /// The file.
    pub path: String,
    /// What it was.
    pub kind: Kind,
    /// Its size.
    pub bytes: u64,
}

/// What a prune did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// Whether nothing was removed on purpose.
    pub dry_run: bool,
    /// The cache before.
    pub before: CacheReport,
    /// Each file removed (or, with `dry_run`, that would be), by path.
    pub removed: Vec<Removed>,
    /// Their sizes by kind.
    pub removed_by_kind: BTreeMap<Kind, Size>,
    /// The cache after (with `dry_run`, as it would be).
    pub after: CacheReport,
}

/// Why the cache could not be read or pruned.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    /// Neither `--older-than` nor `--keep-lock`: nothing says what may go.
    #[error("say what to prune: --older-than AGE (e.g. 30d), --keep-lock LOCK, or both")]
    NothingChosen,
    /// A lock to keep cannot be read.
    #[error(transparent)]
    Lock(#[from] crate::snapshot::lock::LockError),
    /// A file or directory of the cache cannot be read or removed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// One file of the cache.
#[derive(Debug)]
struct File {
    path: PathBuf,
    kind: Kind,
    bytes: u64,
    last_use: SystemTime,
    /// The blob's digest (`sha256/`, and resumable downloads in `partial/`).
    digest: Option<Digest>,
    /// For a layer entry or document: the .deb and tarball SHA256s it was made from
    /// (`None`: unreadable, so no lock can use it); for a layer entry, also its blob.
    inputs: Option<(BTreeSet<Digest>, Option<Digest>)>,
}

/// What the cache at `dir` holds, by kind.
pub fn report(dir: &Path) -> Result<CacheReport, PruneError> {
    Ok(summarize(dir, &survey(dir)?, &BTreeSet::new()))
}

/// Prune the cache at `dir` as `opts` say; see the module documentation for what is
/// never removed.
pub fn prune(dir: &Path, opts: &PruneOptions) -> Result<PruneReport, PruneError> {
    if opts.older_than.is_none() && opts.keep_locks.is_empty() {
        return Err(PruneError::NothingChosen);
    }
    let mut needed: Option<BTreeSet<Digest>> = None;
    for path in &opts.keep_locks {
        let lock = Lock::read(path)?;
        let set = needed.get_or_insert_with(BTreeSet::new);
        set.extend(lock.packages.iter().map(|p| p.sha256));
        set.extend(lock.tarballs.iter().map(|t| t.sha256));
        for s in lock.suites.iter().chain(&lock.vendors) {
            set.insert(s.inrelease_sha256);
            set.extend(s.indices.iter().map(|i| i.sha256));
        }
    }
    if !opts.dry_run {
        // Temporaries of processes that are gone, as every build does at its start.
        crate::tmp::sweep(&dir.join("partial"), None);
    }
    let files = survey(dir)?;
    let now = SystemTime::now();
    let age = |f: &File| now.duration_since(f.last_use).unwrap_or_default();
    let old_enough =
        |f: &File| age(f) >= opts.grace && opts.older_than.is_none_or(|limit| age(f) >= limit);
    // What no kept lock needs: a blob the locks do not name, an entry or document made
    // from a .deb they do not name.
    let unneeded = |f: &File| match (&needed, f.kind) {
        (None, _) => true,
        (Some(_), Kind::Locks) => false,
        (Some(set), Kind::Layers | Kind::Sboms) if f.digest.is_none() => match &f.inputs {
            Some((inputs, _)) => !inputs.is_subset(set),
            None => true,
        },
        (Some(set), _) => f.digest.is_none_or(|d| !set.contains(&d)),
    };
    let mut gone: BTreeSet<PathBuf> = BTreeSet::new();
    for f in &files {
        let candidate = match f.kind {
            Kind::Locks => false,
            // A layer blob goes with the last entry naming it (below).
            Kind::Layers if f.digest.is_some() => false,
            Kind::Partial => old_enough(f) && unneeded(f) && download_is_idle(dir, f),
            _ => old_enough(f) && unneeded(f),
        };
        if candidate {
            gone.insert(f.path.clone());
        }
    }
    // Layer blobs no remaining entry names (and not used within the grace period).
    let still_named: BTreeSet<Digest> = files
        .iter()
        .filter(|f| f.kind == Kind::Layers && f.digest.is_none() && !gone.contains(&f.path))
        .filter_map(|f| f.inputs.as_ref().and_then(|(_, blob)| *blob))
        .collect();
    for f in &files {
        if f.kind == Kind::Layers
            && let Some(d) = f.digest
            && !still_named.contains(&d)
            && age(f) >= opts.grace
        {
            gone.insert(f.path.clone());
        }
    }
    let before = summarize(dir, &files, &BTreeSet::new());
    let after = summarize(dir, &files, &gone);
    let mut removed = Vec::new();
    let mut removed_by_kind: BTreeMap<Kind, Size> = BTreeMap::new();
    for f in files.iter().filter(|f| gone.contains(&f.path)) {
        if !opts.dry_run {
            match std::fs::remove_file(&f.path) {
                Ok(()) => {}
                // Another prune, or a build replacing a damaged blob, got there first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(PruneError::Io {
                        path: f.path.clone(),
                        what: "cannot remove",
                        source,
                    });
                }
            }
        }
        removed_by_kind.entry(f.kind).or_default().add(f.bytes);
        removed.push(Removed {
            path: f.path.display().to_string(),
            kind: f.kind,
            bytes: f.bytes,
        });
    }
    Ok(PruneReport {
        dry_run: opts.dry_run,
        before,
        removed,
        removed_by_kind,
        after,
    })
}

/// Is `f`, a file under `partial/`, free to remove: a download to resume whose lock no
/// process holds? Anything else there is a temporary of a live process (those of dead
/// ones were swept) and stays.
fn download_is_idle(dir: &Path, f: &File) -> bool {
    let Some(d) = f.digest else {
        return false;
    };
    let cache = crate::fetch::cache::Cache::new(dir);
    match crate::tmp::open_owned(&cache.lock_path(&d)) {
        Ok(lock) => lock.try_lock().is_ok(),
        Err(_) => false,
    }
}

/// Sizes by kind of `files` without those in `gone`.
fn summarize(dir: &Path, files: &[File], gone: &BTreeSet<PathBuf>) -> CacheReport {
    let mut kinds: BTreeMap<Kind, Size> = Kind::ALL.iter().map(|k| (*k, Size::default())).collect();
    let mut total = Size::default();
    for f in files.iter().filter(|f| !gone.contains(&f.path)) {
        kinds.entry(f.kind).or_default().add(f.bytes);
        total.add(f.bytes);
    }
    CacheReport {
        dir: dir.display().to_string(),
        kinds,
        total,
    }
}

/// Every regular file of the cache, classified. Links and other odd files a cache never
/// holds are left out (and never removed).
fn survey(dir: &Path) -> Result<Vec<File>, PruneError> {
    let mut files = Vec::new();
    let mut layer_blobs = BTreeSet::new();
    for e in list(&dir.join("layers"))? {
        let inputs = read_small(&e.0)
            .and_then(|b| serde_json::from_slice::<BuiltLayer>(&b).ok())
            .map(|l| {
                layer_blobs.insert(l.info.digest);
                let debs = l.packages.values().map(|p| p.deb_sha256).collect();
                (debs, Some(l.info.digest))
            });
        files.push(file(e, Kind::Layers, None, inputs));
    }
    for e in list(&dir.join("sboms"))? {
        let inputs = read_small(&e.0)
            .and_then(|b| sbom_inputs(&b))
            .map(|s| (s, None));
        files.push(file(e, Kind::Sboms, None, inputs));
    }
    for e in list(&dir.join("sha256"))? {
        let digest =
            e.0.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| Digest::from_hex(n).ok());
        let kind = match digest {
            Some(d) if layer_blobs.contains(&d) => Kind::Layers,
            _ => sniff(&e.0),
        };
        files.push(file(e, kind, digest, None));
    }
    for e in list(&dir.join("partial"))? {
        let digest =
            e.0.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| Digest::from_hex(n).ok());
        files.push(file(e, Kind::Partial, digest, None));
    }
    for e in list(&dir.join("locks"))? {
        files.push(file(e, Kind::Locks, None, None));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn file(
    (path, meta): (PathBuf, std::fs::Metadata),
    kind: Kind,
    digest: Option<Digest>,
    inputs: Option<(BTreeSet<Digest>, Option<Digest>)>,
) -> File {
    let last_use = [meta.modified(), meta.accessed()]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH);
    File {
        path,
        kind,
        bytes: meta.len(),
        last_use,
        digest,
        inputs,
    }
}

/// The regular files directly in `dir` (none if it does not exist; a link in its place is
/// not followed).
fn list(dir: &Path) -> Result<Vec<(PathBuf, std::fs::Metadata)>, PruneError> {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(Vec::new());
    }
    let err = |source| PruneError::Io {
        path: dir.to_owned(),
        what: "cannot list",
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(err)? {
        let e = e.map_err(err)?;
        let Ok(meta) = e.metadata() else {
            // Removed while we looked.
            continue;
        };
        if meta.is_file() {
            out.push((e.path(), meta));
        }
    }
    Ok(out)
}

/// A cache entry's bytes, if it is small enough to be an entry (a layer entry or SPDX
/// document is at most a few MiB).
fn read_small(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(256 << 20)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(bytes)
}

/// The SHA256s of the packages (.debs, tarballs) an SPDX document describes: every
/// package's but the image's or index's own.
fn sbom_inputs(bytes: &[u8]) -> Option<BTreeSet<Digest>> {
    let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let mut out = BTreeSet::new();
    for p in doc["packages"].as_array()? {
        if p["primaryPackagePurpose"] == "CONTAINER" {
            continue;
        }
        for c in p["checksums"].as_array().into_iter().flatten() {
            if c["algorithm"] == "SHA256"
                && let Some(d) = c["checksumValue"]
                    .as_str()
                    .and_then(|h| Digest::from_hex(h).ok())
            {
                out.insert(d);
            }
        }
    }
    Some(out)
}

/// A `sha256/` blob no layer entry names, by its first bytes: a .deb (ar), an index
/// (xz, an InRelease, a plain Packages file) or something else.
fn sniff(path: &Path) -> Kind {
    let mut head = [0u8; 32];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    if head.starts_with(b"!<arch>\n") {
        Kind::Debs
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || head.starts_with(b"-----BEGIN PGP SIGNED MESSAGE")
        || head.starts_with(b"Package: ")
        || head.starts_with(b"Origin: ")
    {
        Kind::Indices
    } else {
        Kind::Other
    }
}

/// Parse an age: a number and a unit, `s`, `m`, `h`, `d` or `w` (`30d`, `12h`).
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not an age; write a number and a unit, e.g. 30d or 12h"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?}; use s, m, h, d or w (e.g. 30d)"
            ));
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long an age"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_a_unit() {
        assert_eq!(parse_age("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_age("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_age("30").unwrap_err().contains("unknown unit"));
        assert!(parse_age("d").unwrap_err().contains("not an age"));
        assert!(parse_age("99999999999999999999d").is_err());
    }

    #[test]
    fn nothing_goes_without_a_rule_and_nothing_recent_goes_at_all() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("sha256")).unwrap();
        let deb = b"!<arch>\ndebian-binary   ";
        let d = Digest::of(deb);
        std::fs::write(dir.join("sha256").join(d.hex()), deb).unwrap();
        let opts = PruneOptions {
            older_than: None,
            keep_locks: Vec::new(),
            grace: DEFAULT_GRACE,
            dry_run: false,
        };
        assert!(matches!(prune(dir, &opts), Err(PruneError::NothingChosen)));
        let r = report(dir).unwrap();
        assert_eq!(
            r.kinds[&Kind::Debs],
            Size {
                files: 1,
                bytes: deb.len() as u64
            }
        );
        // Just written, so inside the grace period: kept whatever the age asked.
        let opts = PruneOptions {
            older_than: Some(Duration::ZERO),
            ..opts
        };
        assert!(prune(dir, &opts).unwrap().removed.is_empty());
        let opts = PruneOptions {
            grace: Duration::ZERO,
            dry_run: true,
            ..opts
        };
        let r = prune(dir, &opts).unwrap();
        assert_eq!(r.removed.len(), 1);
        assert!(
            dir.join("sha256").join(d.hex()).exists(),
            "a dry run removed a file"
        );
        assert_eq!(r.after.total, Size::default());
        let r = prune(
            dir,
            &PruneOptions {
                dry_run: false,
                ..opts
            },
        )
        .unwrap();
        assert_eq!(r.removed_by_kind[&Kind::Debs].files, 1);
        assert!(!dir.join("sha256").join(d.hex()).exists());
    }
}
