//! `debless pin`: fetch and verify each suite's InRelease and Packages, resolve every
//! rule's closure per architecture, and write the lock atomically.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;

use crate::arch::Arch;
use crate::archive::packages::{self, Package};
use crate::archive::release::Release;
use crate::archive::trust::{Keyring, ValidAt};
use crate::digest::Digest;
use crate::fetch::cache::Cache;
use crate::fetch::http::Http;
use crate::fetch::mirror::{Mirror, MirrorConfig, mirror_list};
use crate::resolve::{self, Excludes, Universe};
use crate::rules::{Kind, RuleSet};
use crate::snapshot::lock::{
    LOCK_VERSION, Lock, LockedExclude, LockedIndex, LockedPackage, LockedSuite,
};
use crate::snapshot::manifest::{Manifest, SuiteSpec};

/// Largest InRelease accepted.
const MAX_INRELEASE: u64 = 16 << 20;
/// Largest compressed Packages index accepted.
const MAX_INDEX: u64 = 512 << 20;
/// Largest decompressed Packages index accepted (bounds decompression bombs).
const MAX_INDEX_TEXT: u64 = 2 << 30;

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
    /// Manifest, keys or rules are unusable.
    #[error("{0}")]
    Config(String),
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
    #[error("{0}")]
    Write(String),
}

/// One index: its architecture, lock entry, stanzas and parse time.
type FetchedIndex = (String, LockedIndex, Vec<Package>, f64);

/// One suite after verification and index download.
struct FetchedSuite {
    spec: SuiteSpec,
    locked: LockedSuite,
    release_date: jiff::Timestamp,
    /// Per image architecture: its packages (arch index plus binary-all when separate).
    packages: BTreeMap<String, Vec<Package>>,
    parse_secs: f64,
    stanzas: usize,
}

/// Convert an RFC 3339 `--date` into (normalised RFC 3339, snapshot timestamp).
pub fn parse_snapshot_date(date: &str) -> Result<(jiff::Timestamp, String), String> {
    let ts: jiff::Timestamp = date.trim().parse().map_err(|e| {
        format!("--date {date:?} is not an RFC 3339 timestamp like 2026-11-20T00:00:00Z ({e})")
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

/// Run a pin.
pub fn pin(opts: &PinOptions) -> Result<PinReport, PinError> {
    let snapshots = opts.project.join("snapshots");
    let manifest =
        Manifest::load(&snapshots, &opts.distro).map_err(|e| PinError::Config(e.to_string()))?;
    let keyring =
        Keyring::load(&manifest.key_files()).map_err(|e| PinError::Config(e.to_string()))?;
    let rules =
        RuleSet::load(&opts.project.join("rules")).map_err(|e| PinError::Config(e.to_string()))?;
    let lock_path = opts
        .output
        .clone()
        .unwrap_or_else(|| snapshots.join(format!("{}.lock", opts.distro)));
    let old = previous_lock(&lock_path, &opts.distro, &opts.upgrade)?;
    let (arches, kept_arches) = architectures(&manifest, opts, old.as_ref());
    let date = opts.date.clone().or(manifest.date.clone());
    let dated = match &date {
        Some(d) => Some(parse_snapshot_date(d).map_err(PinError::Config)?),
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
    )
    .map_err(PinError::Config)?;
    let http = Http::new().map_err(PinError::Config)?;
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
        quiet: opts.quiet,
    };

    // Every parallel step collects all results before looking for an error, so the error
    // reported is the first in manifest order, not whichever thread happened to fail first.
    let t0 = Instant::now();
    let fetched: Vec<FetchedSuite> = manifest
        .suites
        .par_iter()
        .map(|spec| fetcher.suite(spec))
        .collect::<Vec<_>>()
        .into_iter()
        .collect::<Result<_, _>>()?;
    let parse_secs: f64 = fetched.iter().map(|f| f.parse_secs).sum();
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
    let mut prefs = preferences(old.as_ref(), &opts.upgrade);
    let results = loop {
        let results: Vec<ArchClosures<'_>> = universes
            .par_iter()
            .map(|(arch, lists)| {
                let none = BTreeMap::new();
                let universe = Universe::with_preferences(
                    arch.name(),
                    lists,
                    prefs.get(arch).unwrap_or(&none),
                );
                resolve_rules(&universe, *arch, &rules, &global, opts)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<_, PinError>>()?;
        // Rules are resolved one by one; where a kept version satisfies one rule and a
        // newer one is needed by another, let that package move and resolve again.
        let clashes = version_clashes(&results);
        let movable: Vec<&Clash> = clashes
            .iter()
            .filter(|(arch, name, _)| prefs.get(arch).is_some_and(|p| p.contains_key(name)))
            .collect();
        if movable.is_empty() {
            if let Some((arch, name, by_rule)) = clashes.first() {
                let versions: Vec<String> = by_rule
                    .iter()
                    .map(|(r, v)| format!("{v} for rule {r}"))
                    .collect();
                return Err(PinError::Resolve {
                    distro: opts.distro.clone(),
                    arch: *arch,
                    rule: by_rule[0].0.clone(),
                    what: format!(
                        "{name} resolves to different versions ({}), but an image holds one; pin the version in one rule's roots or relax the other's constraint",
                        versions.join(", ")
                    ),
                });
            }
            break results;
        }
        for (arch, name, _) in movable {
            if let Some(p) = prefs.get_mut(arch) {
                p.remove(name);
            }
        }
    };
    let resolve_secs = t1.elapsed().as_secs_f64();

    let suite_names: Vec<String> = fetched.iter().map(|f| f.spec.suite.clone()).collect();
    let mut pkgs: BTreeMap<(Arch, String), LockedPackage> = BTreeMap::new();
    let mut excl: BTreeMap<(Arch, String, String), LockedExclude> = BTreeMap::new();
    for (arch, closures) in &results {
        for (rule, cl) in closures {
            for (name, c) in &cl.selected {
                let entry = pkgs
                    .entry((*arch, name.clone()))
                    .or_insert_with(|| LockedPackage {
                        name: name.clone(),
                        arch: *arch,
                        version: c.pkg.version.clone(),
                        architecture: c.pkg.architecture.clone(),
                        suite: suite_names[c.suite].clone(),
                        source: c.pkg.source.clone(),
                        source_version: c.pkg.source_version.clone(),
                        filename: c.pkg.filename.clone(),
                        size: c.pkg.size,
                        sha256: c.pkg.sha256,
                        installed_size: c.pkg.installed_size,
                        depends: Vec::new(),
                        rules: Vec::new(),
                    });
                let deps = cl.edges.get(name).cloned().unwrap_or_default();
                merge_sorted(&mut entry.depends, deps);
                merge_sorted(&mut entry.rules, [rule.clone()]);
            }
            for (name, (by, required_by)) in &cl.excluded {
                let entry = excl
                    .entry((*arch, name.clone(), by.clone()))
                    .or_insert_with(|| LockedExclude {
                        name: name.clone(),
                        arch: *arch,
                        excluded_by: relative_to(by, &opts.project),
                        required_by: Vec::new(),
                        rules: Vec::new(),
                    });
                merge_sorted(&mut entry.required_by, required_by.iter().cloned());
                merge_sorted(&mut entry.rules, [rule.clone()]);
            }
        }
    }

    let timestamp = match &dated {
        Some((ts, _)) => ts.to_string(),
        None => fetched
            .iter()
            .map(|f| f.release_date)
            .max()
            .map(|t| t.to_string())
            .unwrap_or_default(),
    };
    let lock = Lock {
        lock_version: LOCK_VERSION,
        distro: opts.distro.clone(),
        timestamp,
        snapshot: stamp.map(str::to_owned),
        merged_usr: manifest.merged_usr,
        architectures: arches.clone(),
        suites: fetched.iter().map(|f| f.locked.clone()).collect(),
        packages: pkgs.into_values().collect(),
        excluded: excl.into_values().collect(),
    };
    let mut changes = changes(old.as_ref(), &lock, &universes);
    changes.kept_arches = kept_arches;
    lock.write(&lock_path)
        .map_err(|e| PinError::Write(e.to_string()))?;
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
        stanzas: fetched.iter().map(|f| f.stanzas).sum(),
        changes,
    })
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

/// Per architecture, the versions an incremental pin prefers: the old lock's, except for
/// the packages `--upgrade` names (all of them for a bare `--upgrade`).
fn preferences(old: Option<&Lock>, upgrade: &Upgrade) -> BTreeMap<Arch, BTreeMap<String, String>> {
    let mut out: BTreeMap<Arch, BTreeMap<String, String>> = BTreeMap::new();
    let Some(old) = old else { return out };
    for p in &old.packages {
        let moves = match upgrade {
            Upgrade::Nothing => false,
            Upgrade::All => true,
            Upgrade::Only(names) => names.contains(&p.name),
        };
        if !moves {
            out.entry(p.arch)
                .or_default()
                .insert(p.name.clone(), p.version.clone());
        }
    }
    out
}

/// A package that rules resolved to different versions on one architecture:
/// (arch, package, [(rule, version)]).
type Clash = (Arch, String, Vec<(String, String)>);

/// One architecture's closures, one per rule (by rule name).
type ArchClosures<'u> = (Arch, Vec<(String, resolve::Closure<'u>)>);

/// Resolve every rule of the distro on one architecture.
fn resolve_rules<'u>(
    universe: &Universe<'u>,
    arch: Arch,
    rules: &RuleSet,
    global: &[(String, String)],
    opts: &PinOptions,
) -> Result<ArchClosures<'u>, PinError> {
    let mut closures = Vec::new();
    for rule in rules.for_distro(&opts.distro) {
        // An image is not resolved (nor locked) for an architecture it is not built for;
        // its packages may not even exist there.
        if !rules.builds_for(&rule.name, arch) {
            continue;
        }
        let chain = match rule.kind {
            Kind::Image => rules
                .chain(&rule.name)
                .map_err(|e| PinError::Config(e.to_string()))?,
            Kind::Variant => vec![rule],
        };
        let mut roots = Vec::new();
        let mut ex: BTreeMap<String, String> = global.iter().cloned().collect();
        for r in &chain {
            for root in r.roots(&opts.distro) {
                roots.push((root.to_owned(), r.file.display().to_string()));
            }
            for e in &r.exclude {
                ex.entry(e.clone())
                    .or_insert_with(|| r.file.display().to_string());
            }
        }
        let closure =
            resolve::resolve(universe, &roots, &Excludes { by_name: ex }).map_err(|e| {
                PinError::Resolve {
                    distro: opts.distro.clone(),
                    arch,
                    rule: rule.name.clone(),
                    what: e.to_string(),
                }
            })?;
        closures.push((rule.name.clone(), closure));
    }
    Ok((arch, closures))
}

/// (arch, package, [(rule, version)]) wherever rules selected different versions of one
/// package on one architecture.
fn version_clashes(results: &[ArchClosures<'_>]) -> Vec<Clash> {
    let mut out = Vec::new();
    for (arch, closures) in results {
        let mut by_name: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
        for (rule, cl) in closures {
            for (name, c) in &cl.selected {
                by_name
                    .entry(name)
                    .or_default()
                    .push((rule.clone(), c.pkg.version.clone()));
            }
        }
        for (name, list) in by_name {
            if list.iter().any(|(_, v)| *v != list[0].1) {
                out.push((*arch, name.to_owned(), list));
            }
        }
    }
    out
}

/// How `new` differs from `old`, and which of the old versions the archive stopped offering.
fn changes(old: Option<&Lock>, new: &Lock, universes: &[(Arch, Vec<&[Package]>)]) -> PinChanges {
    let key = |p: &LockedPackage| (p.arch, p.name.clone());
    let old_map: BTreeMap<(Arch, String), &LockedPackage> = old
        .map(|l| l.packages.iter().map(|p| (key(p), p)).collect())
        .unwrap_or_default();
    let new_map: BTreeMap<(Arch, String), &LockedPackage> =
        new.packages.iter().map(|p| (key(p), p)).collect();
    let mut c = PinChanges::default();
    for (k, n) in &new_map {
        match old_map.get(k) {
            None => c.added.push(k.clone()),
            Some(o) if o.version == n.version => c.kept += 1,
            Some(o) => c
                .changed
                .push((k.0, k.1.clone(), o.version.clone(), n.version.clone())),
        }
    }
    for k in old_map.keys() {
        if !new_map.contains_key(k) {
            c.removed.push(k.clone());
        }
    }
    for (arch, lists) in universes {
        let offered: HashSet<(&str, &str)> = lists
            .iter()
            .flat_map(|l| l.iter())
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        for ((a, name), o) in &old_map {
            if a == arch && !offered.contains(&(name.as_str(), o.version.as_str())) {
                c.gone.push((*arch, name.clone(), o.version.clone()));
            }
        }
    }
    c
}

fn merge_sorted(v: &mut Vec<String>, more: impl IntoIterator<Item = String>) {
    let mut set: BTreeSet<String> = v.drain(..).collect();
    set.extend(more);
    *v = set.into_iter().collect();
}

/// Paths in the lock are project-relative so locks match across checkouts.
fn relative_to(path: &str, project: &Path) -> String {
    Path::new(path)
        .strip_prefix(project)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_owned())
}

/// What fetching a suite needs: trust, mirrors, transport and the pin's scope.
struct Fetcher<'a> {
    manifest: &'a Manifest,
    keyring: &'a Keyring,
    mirrors: &'a [Mirror],
    http: &'a Http,
    cache: &'a Cache,
    arches: &'a [Arch],
    /// The requested date and its snapshot timestamp, for a dated pin.
    dated: Option<&'a (jiff::Timestamp, String)>,
    quiet: bool,
}

impl Fetcher<'_> {
    /// Verify one suite's InRelease and fetch its Packages indices for every architecture.
    fn suite(&self, spec: &SuiteSpec) -> Result<FetchedSuite, PinError> {
        let Fetcher {
            manifest,
            keyring,
            mirrors,
            http,
            arches,
            dated,
            quiet,
            ..
        } = *self;
        let stamp = dated.map(|(_, s)| s.as_str());
        let suite = &spec.suite;
        let usable: Vec<(String, &Mirror)> = mirrors
            .iter()
            .filter(|m| m.is_dated() == dated.is_some())
            .filter_map(|m| m.root(&spec.archive, stamp).map(|r| (r, m)))
            .collect();
        if usable.is_empty() {
            let what = if dated.is_some() {
                "a dated pin needs a snapshot service: pass --snapshot-service URL, set $DEBLESS_SNAPSHOT_SERVICE, or add snapshot_service to the manifest (a template like https://HOST/archive/{archive}/{timestamp}/), or a --mirror with {timestamp}"
            } else {
                "pass --mirror URL, set $DEBLESS_MIRRORS, or add the archive to /etc/apt/sources.list.d"
            };
            return Err(PinError::Unreachable(format!(
                "suite {suite}: no mirror serves archive {:?}; {what}",
                spec.archive
            )));
        }
        // InRelease from the first mirror that has it; a bad signature is fatal, not a retry.
        let mut tried = Vec::new();
        let mut got = None;
        for (root, _) in &usable {
            let url = format!("{root}dists/{suite}/InRelease");
            match http.get(&url, MAX_INRELEASE) {
                Ok(bytes) => {
                    got = Some((root.clone(), url, bytes));
                    break;
                }
                Err(e) => tried.push(e.to_string()),
            }
        }
        let Some((root, url, bytes)) = got else {
            return Err(PinError::Unreachable(format!(
                "suite {suite}: no mirror served InRelease (tried {}); check the mirror list or pass --mirror",
                tried.join("; ")
            )));
        };
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| PinError::Integrity(format!("{url}: InRelease is not UTF-8 text")))?;
        let valid_at = match dated {
            Some(_) => ValidAt::SignatureTime,
            None => ValidAt::Time(now()),
        };
        let verified = keyring
        .verify_inrelease(text, valid_at, &spec.signed_by)
        .map_err(|e| {
            PinError::Integrity(format!(
                "{url}: {e}; refusing to use this suite (check snapshots/keys and the manifest's keys)"
            ))
        })?;
        let release = Release::parse(&verified.text)
            .map_err(|e| PinError::Integrity(format!("{url}: signed Release is malformed: {e}")))?;
        if !release.names_suite(suite) {
            return Err(PinError::Integrity(format!(
                "{url}: signed Release is for {} (Suite {}), not {suite}; the mirror serves the wrong suite",
                release.codename.as_deref().unwrap_or("?"),
                release.suite.as_deref().unwrap_or("?")
            )));
        }
        match dated {
            None => {
                if let Some(vu) = release.valid_until
                    && vu.as_second() < now()
                {
                    return Err(PinError::Integrity(format!(
                        "{url}: Release expired at {vu} (Valid-Until); the mirror is stale: use another mirror or pin a --date"
                    )));
                }
            }
            Some((ts, _)) => {
                if release.date > *ts {
                    return Err(PinError::Integrity(format!(
                        "{url}: Release Date {} is after the requested snapshot {ts}; the server is not a snapshot of that date",
                        release.date
                    )));
                }
            }
        }
        for arch in arches {
            if !release.architectures.iter().any(|a| a == arch.name()) {
                return Err(PinError::Index(format!(
                    "{url}: suite {suite} does not carry architecture {arch} (it has: {}); drop --arch {arch} or edit {}",
                    release.architectures.join(" "),
                    manifest.path.display()
                )));
            }
        }
        log(
            quiet,
            format!(
                "pin: {suite}: InRelease verified (key {}), Release Date {}",
                verified.fingerprint, release.date
            ),
        );

        let mut indices = Vec::new();
        let mut packages: BTreeMap<String, Vec<Package>> = BTreeMap::new();
        let mut parse_secs = 0.0;
        let mut stanzas = 0;
        for comp in &manifest.components {
            let fetch_all = |jobs: &[String]| -> Result<Vec<FetchedIndex>, PinError> {
                jobs.par_iter()
                    .map(|index_arch| {
                        let (li, text, fresh) =
                            self.index(&root, suite, comp, index_arch, &release)?;
                        let t = Instant::now();
                        let pkgs = parse_index(&text, &format!("{root}dists/{suite}/{}", li.path))?;
                        // Cached only once it parses: a signed but unusable index (a huge
                        // field, a duplicate stanza) must not sit in the cache looking good.
                        if let Some(bytes) = fresh {
                            self.cache_index(&li, &bytes);
                        }
                        Ok((index_arch.clone(), li, pkgs, t.elapsed().as_secs_f64()))
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect()
            };
            let names: Vec<String> = arches.iter().map(|a| a.name().to_owned()).collect();
            let mut fetched = fetch_all(&names)?;
            // Architecture: all packages live in every binary-<arch> index when the Release says
            // so, or when those indices visibly carry them (dak's default); only otherwise is the
            // separate binary-all index needed.
            let carries_all = fetched
                .iter()
                .any(|(_, _, pkgs, _)| pkgs.iter().any(|p| p.architecture == "all"));
            let listed_all = release
                .sha256
                .keys()
                .any(|k| k.starts_with(&format!("{comp}/binary-all/Packages")));
            if !release.all_in_arch_indices && !carries_all && listed_all {
                fetched.extend(fetch_all(&["all".to_owned()])?);
            }
            let mut all_pkgs = Vec::new();
            for (index_arch, li, pkgs, secs) in fetched {
                parse_secs += secs;
                stanzas += pkgs.len();
                indices.push(li);
                if index_arch == "all" {
                    all_pkgs = pkgs;
                } else {
                    packages.entry(index_arch).or_default().extend(pkgs);
                }
            }
            if !all_pkgs.is_empty() {
                for list in packages.values_mut() {
                    list.extend(all_pkgs.iter().cloned());
                }
            }
        }
        indices.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(FetchedSuite {
            spec: spec.clone(),
            locked: LockedSuite {
                archive: spec.archive.clone(),
                suite: suite.clone(),
                inrelease_sha256: Digest::of(&bytes),
                signed_by: verified.fingerprint,
                date: release.date.to_string(),
                valid_until: release.valid_until.map(|v| v.to_string()),
                release_version: release.version.clone(),
                indices,
            },
            release_date: release.date,
            packages,
            parse_secs,
            stanzas,
        })
    }

    /// Store a verified and parsed index; a failure only costs a download next time.
    fn cache_index(&self, li: &LockedIndex, bytes: &[u8]) {
        if let Err(e) = self.cache.put(&li.sha256, bytes) {
            log(
                self.quiet,
                format!(
                    "pin: warning: cannot cache {} in {} ({e})",
                    li.path,
                    self.cache.dir().display()
                ),
            );
        }
    }

    /// Download (or take from the cache) one Packages index, verify it against the signed
    /// Release, and decompress it; also returns the bytes when they were downloaded (for
    /// the caller to cache once they parse).
    fn index(
        &self,
        root: &str,
        suite: &str,
        comp: &str,
        arch: &str,
        release: &Release,
    ) -> Result<(LockedIndex, String, Option<Vec<u8>>), PinError> {
        let (http, cache, quiet) = (self.http, self.cache, self.quiet);
        let dir = format!("{comp}/binary-{arch}");
        let listed: Vec<&str> = ["Packages.xz", "Packages.gz", "Packages"]
            .into_iter()
            .filter(|f| release.sha256.contains_key(&format!("{dir}/{f}")))
            .collect();
        if listed.is_empty() {
            return Err(PinError::Index(format!(
                "{root}dists/{suite}/InRelease: the signed Release lists no {dir}/Packages index; \
             is {comp} a component of {suite}?"
            )));
        }
        let mut tried = Vec::new();
        for file in listed {
            let path = format!("{dir}/{file}");
            let entry = &release.sha256[&path];
            let mut fresh = false;
            let bytes = match cache.get_verified(&entry.sha256, entry.size) {
                Some(b) => b,
                None => {
                    let plain = format!("{root}dists/{suite}/{path}");
                    let mut urls = Vec::new();
                    if release.acquire_by_hash {
                        urls.push(format!(
                            "{root}dists/{suite}/{dir}/by-hash/SHA256/{}",
                            entry.sha256.hex()
                        ));
                    }
                    urls.push(plain);
                    let mut body = None;
                    for url in &urls {
                        match http.get(url, MAX_INDEX) {
                            Ok(b) => {
                                body = Some((url.clone(), b));
                                break;
                            }
                            Err(e) => tried.push(e.to_string()),
                        }
                    }
                    let Some((url, b)) = body else { continue };
                    let got = Digest::of(&b);
                    if got != entry.sha256 || b.len() as u64 != entry.size {
                        return Err(PinError::Integrity(format!(
                            "{url}: does not match the signed Release (sha256 {}, {} bytes; expected {}, {} bytes); \
                         the mirror is inconsistent or tampered, try again later or use another mirror",
                            got.hex(),
                            b.len(),
                            entry.sha256.hex(),
                            entry.size
                        )));
                    }
                    log(
                        quiet,
                        format!("pin: {suite}: {path} {} bytes from {url}", b.len()),
                    );
                    fresh = true;
                    b
                }
            };
            let text = decompress(&bytes, file)
                .map_err(|e| PinError::Index(format!("{root}dists/{suite}/{path}: {e}")))?;
            return Ok((
                LockedIndex {
                    architecture: arch.to_owned(),
                    path,
                    sha256: entry.sha256,
                    size: entry.size,
                },
                text,
                fresh.then_some(bytes),
            ));
        }
        Err(PinError::Unreachable(format!(
            "suite {suite}: no {dir}/Packages index could be downloaded (tried {})",
            tried.join("; ")
        )))
    }
}

fn decompress(bytes: &[u8], file: &str) -> Result<String, String> {
    let mut out = Vec::new();
    let limit = MAX_INDEX_TEXT + 1;
    let res = if file.ends_with(".xz") {
        liblzma::read::XzDecoder::new_multi_decoder(bytes)
            .take(limit)
            .read_to_end(&mut out)
    } else if file.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut out)
    } else {
        out.extend_from_slice(bytes);
        Ok(out.len())
    };
    res.map_err(|e| format!("cannot decompress ({e})"))?;
    if out.len() as u64 > MAX_INDEX_TEXT {
        return Err(format!("decompresses to more than {MAX_INDEX_TEXT} bytes"));
    }
    String::from_utf8(out).map_err(|_| "index is not UTF-8 text".to_owned())
}

fn parse_index(text: &str, url: &str) -> Result<Vec<Package>, PinError> {
    let pkgs = packages::parse(text).map_err(|e| PinError::Index(format!("{url}: {e}")))?;
    let mut seen = HashSet::with_capacity(pkgs.len());
    for p in &pkgs {
        if !seen.insert((p.name.as_str(), p.version.as_str(), p.architecture.as_str())) {
            return Err(PinError::Index(format!(
                "{url}: duplicate stanza for {} {} ({}); the index is corrupt",
                p.name, p.version, p.architecture
            )));
        }
    }
    Ok(pkgs)
}
