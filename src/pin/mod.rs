//! `debless pin`: fetch and verify each suite's InRelease and Packages, resolve every
//! rule's closure per architecture, and write the lock atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

mod closures;
mod suite;
mod tarball;
mod vendor;
pub mod why;

use crate::arch::Arch;
use crate::archive::packages::Package;
use crate::archive::trust::{Keyring, TrustError};
use crate::fetch::cache::Cache;
use crate::fetch::mirror::{MirrorConfig, mirror_list};
use crate::http::Http;
use crate::rules::{RuleError, RuleSet};
use crate::snapshot::lock::Lock;
use crate::snapshot::manifest::{Manifest, ManifestError};
use closures::{changes, check_declarations, lock_entries, preferences, resolve_all};
use suite::{FetchedSuite, Fetcher};

/// Everything `pin` needs to know.
#[derive(Debug, Clone)]
pub struct PinOptions {
    /// Project root holding `rules/` and `snapshots/`.
    pub project: PathBuf,
    /// Distro to pin (`debian13`).
    pub distro: String,
    /// Snapshot date (RFC 3339) for a dated pin; falls back to the manifest's `date`.
    pub date: Option<String>,
    /// `--mirror` flags (replace the default list).
    pub mirrors: Vec<String>,
    /// `--arch` flags: replace the manifest's list; an existing lock's architectures are
    /// kept as well (see [`PinOptions::drop_arches`]).
    pub arches: Vec<Arch>,
    /// `--drop-arch` flags: architectures to remove from an existing lock.
    pub drop_arches: Vec<Arch>,
    /// Which locked versions may move (`--upgrade`).
    pub upgrade: Upgrade,
    /// Snapshot service template or prefix.
    pub snapshot_service: Option<String>,
    /// Where to write the lock (default `snapshots/<distro>.lock`).
    pub output: Option<PathBuf>,
    /// Content-addressed cache for indices.
    pub cache_dir: PathBuf,
    /// Host apt configuration directory (`/etc/apt`).
    pub etc_apt: PathBuf,
    /// `$DEBLESS_MIRRORS`.
    pub env_mirrors: Option<String>,
    /// Suppress progress lines.
    pub quiet: bool,
    /// Which images under `rules/extra/` to pin too (`--extra`); their vendor
    /// repositories and tarball sites must then be reachable.
    pub extra: Extra,
}

/// Which images outside the default family (`rules/extra/`) a pin resolves. Those it
/// does not leave the lock, like any rule no longer pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Extra {
    /// The default family only (the default).
    #[default]
    None,
    /// Every image under `rules/extra/` (`--extra`).
    All,
    /// These images under `rules/extra/` (`--extra IMAGE...`).
    Only(BTreeSet<String>),
}

/// Which versions a pin may move. By default a pin is incremental: every package the
/// existing lock has keeps its version wherever that version is still offered and still
/// satisfies what depends on it, and only what is new gets resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Upgrade {
    /// Keep locked versions (the default).
    #[default]
    Nothing,
    /// Re-resolve everything to the newest versions (`--upgrade`).
    All,
    /// Move these packages to their newest versions, keep the rest (`--upgrade PKG...`).
    Only(BTreeSet<String>),
}

/// How the new lock differs from the one it replaces, per (architecture, package).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinChanges {
    /// Packages whose locked version was kept.
    pub kept: usize,
    /// Packages the old lock did not have.
    pub added: Vec<(Arch, String)>,
    /// Packages now at another version: (arch, name, old version, new version).
    pub changed: Vec<(Arch, String, String, String)>,
    /// Packages no longer in any closure.
    pub removed: Vec<(Arch, String)>,
    /// Locked versions the archive no longer offers (they had to move).
    pub gone: Vec<(Arch, String, String)>,
    /// Architectures kept from the old lock although neither the manifest nor `--arch`
    /// names them.
    pub kept_arches: Vec<Arch>,
    /// Tarballs this pin downloaded and hashed (new, or at a new URL): (arch, name,
    /// version). The others kept their locked hash.
    pub tarballs_hashed: Vec<(Arch, String, String)>,
}

/// What a pin did, for the summary line and the benchmark.
#[derive(Debug, Clone)]
pub struct PinReport {
    /// Where the lock was written.
    pub lock_path: PathBuf,
    /// Packages per architecture.
    pub packages: BTreeMap<Arch, usize>,
    /// Exclusions recorded.
    pub excluded: usize,
    /// Wall-clock seconds to fetch, verify, decompress and parse every index.
    pub fetch_secs: f64,
    /// CPU seconds spent parsing Packages stanzas (summed over threads).
    pub parse_secs: f64,
    /// Seconds spent resolving.
    pub resolve_secs: f64,
    /// Stanzas parsed in all.
    pub stanzas: usize,
    /// What changed against the lock it replaced (everything is `added` for a first pin).
    pub changes: PinChanges,
}

/// A pin failure: one line naming the suite, URL or package and what to do.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The source manifest is unusable.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A trusted key file is unusable.
    #[error(transparent)]
    Keys(#[from] TrustError),
    /// A rule file is unusable.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// Flags, or rules against the archive, are unusable.
    #[error("{0}")]
    Config(String),
    /// `--date` is not a timestamp.
    #[error("--date {date:?} is not an RFC 3339 timestamp like 2026-11-20T00:00:00Z")]
    Date {
        /// What was given.
        date: String,
        /// Why it does not parse.
        #[source]
        source: jiff::Error,
    },
    /// The mirror list cannot be made (a bad `--mirror` or `$DEBLESS_MIRRORS`).
    #[error(transparent)]
    Mirrors(#[from] crate::fetch::mirror::MirrorError),
    /// The HTTP client cannot start.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// No mirror could serve a file.
    #[error("{0}")]
    Unreachable(String),
    /// A signature or hash check failed: never retried on another mirror.
    #[error("{0}")]
    Integrity(String),
    /// An index is malformed.
    #[error("{0}")]
    Index(String),
    /// Dependency resolution failed.
    #[error("pin {distro} for {arch}, rule {rule}: {what}")]
    Resolve {
        /// Distro.
        distro: String,
        /// Architecture.
        arch: Arch,
        /// The rule being resolved.
        rule: String,
        /// The chain and reason.
        what: String,
    },
    /// The lock could not be written.
    #[error(transparent)]
    Write(#[from] crate::snapshot::lock::LockError),
}

/// Convert an RFC 3339 `--date` into (normalised RFC 3339, snapshot timestamp).
pub fn parse_snapshot_date(date: &str) -> Result<(jiff::Timestamp, String), PinError> {
    let ts: jiff::Timestamp = date.trim().parse().map_err(|source| PinError::Date {
        date: date.to_owned(),
        source,
    })?;
    let stamp = ts.strftime("%Y%m%dT%H%M%SZ").to_string();
    Ok((ts, stamp))
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn log(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

/// A line for `-v` only: one per file downloaded, which a daily log does not need.
fn detail(msg: impl FnOnce() -> String) {
    if crate::progress::level() == crate::progress::Level::Verbose {
        eprintln!("{}", msg());
    }
}

/// Run a pin.
pub fn pin(opts: &PinOptions) -> Result<PinReport, PinError> {
    let snapshots = opts.project.join("snapshots");
    let manifest = Manifest::load(&snapshots, &opts.distro)?;
    let keyring = Keyring::load(&manifest.key_files())?;
    let mut rules = RuleSet::load(&opts.project.join("rules"))?;
    select_extras(&mut rules, &opts.extra)?;
    let lock_path = opts
        .output
        .clone()
        .unwrap_or_else(|| snapshots.join(format!("{}.lock", opts.distro)));
    let old = previous_lock(&lock_path, &opts.distro, &opts.upgrade)?;
    let (arches, kept_arches) = architectures(&manifest, opts, old.as_ref());
    // Vendors are needed (and their keys read) only when a rule being pinned names one
    // of their packages.
    let vendors = vendor::needed(&manifest, &rules, &opts.distro, &arches);
    let vendor_keys = vendor::keyrings(&manifest, &vendors)?;
    let date = opts.date.clone().or(manifest.date.clone());
    let dated = match &date {
        Some(d) => Some(parse_snapshot_date(d)?),
        None => None,
    };
    let archives: Vec<&str> = manifest.suites.iter().map(|s| s.archive.as_str()).collect();
    let mirrors = mirror_list(
        &MirrorConfig {
            flags: &opts.mirrors,
            env: opts.env_mirrors.clone(),
            etc_apt: &opts.etc_apt,
            snapshot_service: opts
                .snapshot_service
                .clone()
                .or(manifest.snapshot_service.clone()),
            dated: dated.is_some(),
        },
        &archives,
    )?;
    let http = Http::new()?;
    let cache = Cache::new(&opts.cache_dir);
    let stamp = dated.as_ref().map(|(_, s)| s.as_str());
    let fetcher = Fetcher {
        manifest: &manifest,
        keyring: &keyring,
        mirrors: &mirrors,
        http: &http,
        cache: &cache,
        arches: &arches,
        dated: dated.as_ref(),
        components: &manifest.components,
        vendor: None,
        quiet: opts.quiet,
    };

    // Every parallel step collects all results before looking for an error, so the error
    // reported is the first in manifest order, not whichever thread happened to fail first.
    let t0 = Instant::now();
    let mut fetched: Vec<FetchedSuite> = manifest
        .suites
        .par_iter()
        .map(|spec| fetcher.suite(spec))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<_, _>>()?;
    // A name a vendor claims comes from that vendor alone, never from Debian.
    for f in &mut fetched {
        vendor::retain(&mut f.packages, |p| manifest.vendor_of(&p.name).is_none());
    }
    let vendor_fetched: Vec<FetchedSuite> = vendors
        .iter()
        .zip(&vendor_keys)
        .map(|(v, keys)| {
            vendor::fetch(
                &Fetcher {
                    keyring: keys,
                    ..fetcher
                },
                v,
            )
        })
        .collect::<Result<_, _>>()?;
    let parse_secs: f64 = fetched
        .iter()
        .chain(&vendor_fetched)
        .map(|f| f.parse_secs)
        .sum();
    let fetch_secs = t0.elapsed().as_secs_f64();

    // Per architecture, every rule's closure.
    let t1 = Instant::now();
    let global: Vec<(String, String)> = manifest
        .exclude
        .iter()
        .map(|e| (e.clone(), manifest.path.display().to_string()))
        .collect();
    let universes: Vec<(Arch, Vec<&[Package]>)> = arches
        .iter()
        .map(|arch| {
            let lists = fetched
                .iter()
                .chain(&vendor_fetched)
                .map(|f| {
                    f.packages
                        .get(arch.name())
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                })
                .collect();
            (*arch, lists)
        })
        .collect();
    let prefs = preferences(old.as_ref(), &opts.upgrade);
    let results = resolve_all(&universes, prefs, &rules, &global, opts)?;
    let resolve_secs = t1.elapsed().as_secs_f64();
    for closures in &results {
        check_declarations(&rules, &opts.distro, closures)?;
    }

    let sources: Vec<(String, Option<String>)> = fetched
        .iter()
        .map(|f| (f.spec.suite.clone(), None))
        .chain(
            vendor_fetched
                .iter()
                .map(|f| (f.spec.suite.clone(), Some(f.spec.archive.clone()))),
        )
        .collect();
    let (packages, excluded) = lock_entries(&results, &sources, &opts.project);
    let tarballs = tarball::pin_tarballs(
        &rules,
        &opts.distro,
        &arches,
        old.as_ref(),
        &http,
        &cache,
        opts.quiet,
    )?;

    let timestamp = match &dated {
        Some((ts, _)) => ts.to_string(),
        None => fetched
            .iter()
            .map(|f| f.release_date)
            .max()
            .map(|t| t.to_string())
            .unwrap_or_default(),
    };
    let mut lock = Lock {
        lock_version: 0,
        distro: opts.distro.clone(),
        timestamp,
        snapshot: stamp.map(str::to_owned),
        merged_usr: manifest.merged_usr,
        architectures: arches.clone(),
        suites: fetched.iter().map(|f| f.locked.clone()).collect(),
        vendors: vendor_fetched.iter().map(|f| f.locked.clone()).collect(),
        packages,
        tarballs: tarballs.entries,
        excluded,
    };
    lock.lock_version = lock.format_version();
    let mut changes = changes(old.as_ref(), &lock, &universes);
    changes.kept_arches = kept_arches;
    changes.tarballs_hashed = tarballs.hashed;
    lock.write(&lock_path)?;
    let mut per_arch = BTreeMap::new();
    for p in &lock.packages {
        *per_arch.entry(p.arch).or_insert(0) += 1;
    }
    Ok(PinReport {
        lock_path,
        packages: per_arch,
        excluded: lock.excluded.len(),
        fetch_secs,
        parse_secs,
        resolve_secs,
        stanzas: fetched
            .iter()
            .chain(&vendor_fetched)
            .map(|f| f.stanzas)
            .sum(),
        changes,
    })
}

/// Keep the images under `rules/extra/` that `extra` asks for (and the extra rules they
/// build on), drop the others.
fn select_extras(rules: &mut RuleSet, extra: &Extra) -> Result<(), PinError> {
    let names = match extra {
        Extra::All => return Ok(()),
        Extra::None => BTreeSet::new(),
        Extra::Only(names) => names.clone(),
    };
    let mut keep = BTreeSet::new();
    for name in &names {
        let known = rules.rules.get(name).is_some_and(|r| r.extra);
        if !known {
            let extras: Vec<&str> = rules
                .rules
                .values()
                .filter(|r| r.extra)
                .map(|r| r.name.as_str())
                .collect();
            return Err(PinError::Config(format!(
                "--extra {name}: there is no image of that name under rules/extra/ (there: {})",
                if extras.is_empty() {
                    "none".to_owned()
                } else {
                    extras.join(", ")
                }
            )));
        }
        for r in rules.chain(name)? {
            keep.insert(r.name.clone());
        }
    }
    rules
        .rules
        .retain(|name, r| !r.extra || keep.contains(name));
    Ok(())
}

/// The lock a pin replaces, if there is one to keep versions from. `--upgrade` (all) does
/// not need it, so an unreadable old lock only stops an incremental pin.
fn previous_lock(path: &Path, distro: &str, upgrade: &Upgrade) -> Result<Option<Lock>, PinError> {
    if !path.exists() {
        return Ok(None);
    }
    match Lock::read(path) {
        Ok(lock) if lock.distro == distro => Ok(Some(lock)),
        Ok(lock) => Err(PinError::Config(format!(
            "{}: is a lock of {}, not {distro}; write the {distro} lock elsewhere with -o, or move this one away",
            path.display(),
            lock.distro
        ))),
        Err(_) if *upgrade == Upgrade::All => Ok(None),
        Err(e) => Err(PinError::Config(format!(
            "{e}; an incremental pin keeps the versions of the existing lock: fix it, or pass --upgrade to resolve everything afresh"
        ))),
    }
}

/// The architectures to pin: `--arch` (else the manifest's list), plus every one the old
/// lock has (so pinning one architecture never drops the others), minus `--drop-arch`.
/// Also returns those kept only because the old lock had them.
fn architectures(
    manifest: &Manifest,
    opts: &PinOptions,
    old: Option<&Lock>,
) -> (Vec<Arch>, Vec<Arch>) {
    let asked: BTreeSet<Arch> = if opts.arches.is_empty() {
        manifest.architectures.iter().copied().collect()
    } else {
        opts.arches.iter().copied().collect()
    };
    let mut all = asked.clone();
    let mut kept = Vec::new();
    for a in old.map(|l| l.architectures.as_slice()).unwrap_or_default() {
        if !asked.contains(a) && !opts.drop_arches.contains(a) {
            kept.push(*a);
        }
        all.insert(*a);
    }
    all.retain(|a| !opts.drop_arches.contains(a));
    (all.into_iter().collect(), kept)
}
