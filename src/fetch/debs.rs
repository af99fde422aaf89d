//! Downloading the locked .debs (and upstream tarballs) into the content-addressed cache:
//! mirrors in order, bounded parallelism, resume, per-blob file locks, and hash checks
//! before use.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::arch::Arch;
use crate::digest::Digest;
use crate::fetch::cache::Cache;
use crate::fetch::mirror::Mirror;
use crate::http::{Http, HttpError};
use crate::progress::{Phase, Unit};
use crate::text::{bytes as bytes_text, error_line};

/// Where a locked file is downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A pool path under an archive (`debian`, `debian-security`), served by the mirrors.
    Pool {
        /// The archive.
        archive: String,
        /// The pool path under the archive root.
        filename: String,
    },
    /// One URL no mirror serves: a vendor repository's .deb, an upstream tarball.
    Url(String),
}

impl std::fmt::Display for Location {
    /// The pool path, or the URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Pool { filename, .. } => f.write_str(filename),
            Location::Url(url) => f.write_str(url),
        }
    }
}

/// One .deb (or tarball) the lock asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebSpec {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Image architecture it was locked for.
    pub arch: Arch,
    /// Where it is downloaded from.
    pub location: Location,
    /// Size in bytes.
    pub size: u64,
    /// SHA256 (lower-case hex).
    pub sha256: Digest,
}

impl DebSpec {
    fn label(&self) -> String {
        format!("{} {} ({})", self.name, self.version, self.arch)
    }
}

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Use only the cache; list every missing .deb instead of downloading.
    pub offline: bool,
    /// Re-hash cached blobs instead of trusting their size.
    pub verify: bool,
    /// Parallel downloads.
    pub jobs: usize,
    /// No progress output.
    pub quiet: bool,
    /// Snapshot timestamp for dated mirrors (`20261120T000000Z`), if the lock is dated.
    pub snapshot: Option<String>,
}

/// What a fetch did.
#[derive(Debug, Clone, Default)]
pub struct FetchReport {
    /// Distinct .debs needed.
    pub wanted: usize,
    /// Already in the cache.
    pub cached: usize,
    /// Downloaded now.
    pub downloaded: usize,
    /// Bytes downloaded now.
    pub bytes: u64,
}

/// A fetch failure, one line, naming the package and what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// `--offline` and something is not cached.
    #[error(
        "offline: {} .deb(s) are not in the cache {cache}; run `debless fetch` (same flags) first:{}",
        missing.len(),
        missing.iter().map(|m| format!("\n  {m}")).collect::<String>()
    )]
    Offline {
        /// The cache directory.
        cache: String,
        /// `name version (arch)` of each missing .deb, sorted: listed one a line, as a
        /// list to work through.
        missing: Vec<String>,
    },
    /// The one URL of a vendor's .deb or an upstream tarball did not deliver the pinned
    /// file.
    #[error(
        "{package}: {url} did not deliver the file pinned by the lock (tried: {}); if its publisher replaced it, find out why before running `debless pin` to record the new one",
        tried.iter().map(|f| error_line(f)).collect::<Vec<_>>().join("; ")
    )]
    UrlUnavailable {
        /// `name version (arch)`.
        package: String,
        /// The URL.
        url: String,
        /// Why it failed (a download error, or a file with another hash).
        tried: Vec<MirrorFailure>,
    },
    /// No mirror could deliver a pinned file. The advice depends on why: only when every
    /// mirror answered "not found" is the lock likely older than the mirrors keep.
    #[error(
        "{package}: no mirror delivered {filename} with the pinned sha256 (tried: {}); {}",
        tried.iter().map(|f| error_line(f)).collect::<Vec<_>>().join("; "),
        unavailable_advice(tried)
    )]
    Unavailable {
        /// `name version (arch)`.
        package: String,
        /// Pool path.
        filename: String,
        /// Why each mirror failed, in order (each with its whole cause: a list has no
        /// single `source()`).
        tried: Vec<MirrorFailure>,
    },
    /// The cache could not be written.
    #[error("cache {}: {what}; check the disk and permissions, or pass --cache-dir", path.display())]
    Cache {
        /// The file or directory involved.
        path: PathBuf,
        /// What failed.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The download threads could not be started.
    #[error("cannot start the download threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
}

/// What to do when no mirror delivered a .deb, from why each failed.
fn unavailable_advice(tried: &[MirrorFailure]) -> &'static str {
    let gone = |f: &MirrorFailure| matches!(f, MirrorFailure::Http(HttpError::NotFound { .. }));
    let unreachable =
        |f: &MirrorFailure| matches!(f, MirrorFailure::Http(HttpError::Transport { .. }));
    if !tried.is_empty() && tried.iter().all(gone) {
        "the lock may be older than the mirrors keep: run `debless pin` for a fresh snapshot, or add a mirror or snapshot service that keeps old versions (--mirror, --snapshot-service)"
    } else if tried.iter().any(unreachable) {
        "a mirror could not be reached (see each failure); check the network and the mirror URLs, then run again (what was downloaded is kept)"
    } else if tried
        .iter()
        .any(|f| matches!(f, MirrorFailure::WrongHash { .. }))
    {
        "a mirror served other bytes than the lock pins: the mirror is inconsistent or tampered; try again later or use another mirror"
    } else {
        "check the mirrors (see each failure) and run again; what was downloaded is kept"
    }
}

/// Why one mirror did not deliver a .deb.
#[derive(Debug, thiserror::Error)]
pub enum MirrorFailure {
    /// The download failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The download completed but is another file.
    #[error("{url}: served sha256 {}", got.hex())]
    WrongHash {
        /// The URL.
        url: String,
        /// What the bytes hash to.
        got: Digest,
    },
    /// No mirror in the list serves the package's archive.
    #[error("no mirror serves the {archive} archive")]
    NoMirror {
        /// The archive (`debian-security`).
        archive: String,
    },
}

/// Make sure every .deb is in the cache, downloading what is missing.
pub fn fetch_debs(
    specs: &[DebSpec],
    mirrors: &[Mirror],
    http: &Http,
    cache: &Cache,
    opts: &FetchOptions,
) -> Result<FetchReport, FetchError> {
    // Architecture: all packages appear once per image architecture: fetch each blob once.
    let mut unique: BTreeMap<Digest, &DebSpec> = BTreeMap::new();
    for s in specs {
        unique.entry(s.sha256).or_insert(s);
    }
    let mut report = FetchReport {
        wanted: unique.len(),
        ..FetchReport::default()
    };
    let missing: Vec<&DebSpec> = unique
        .values()
        .copied()
        .filter(|s| !cache.has(&s.sha256, s.size, opts.verify))
        .collect();
    report.cached = report.wanted - missing.len();
    let wanted: std::collections::BTreeSet<Digest> = unique.keys().copied().collect();
    if missing.is_empty() {
        // Downloads a killed run left that nothing running needs any more.
        if !opts.offline {
            cache.sweep_partial(&wanted);
        }
        return Ok(report);
    }
    if opts.offline {
        let mut labels: Vec<String> = missing.iter().map(|s| s.label()).collect();
        labels.sort();
        return Err(FetchError::Offline {
            cache: cache.dir().display().to_string(),
            missing: labels,
        });
    }

    let total: u64 = missing.iter().map(|s| s.size).sum();
    let phase = Phase::start(
        &format!("fetch {} .debs", missing.len()),
        total,
        Unit::Bytes,
        opts.quiet,
    );
    let bytes = AtomicU64::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.clamp(1, 16))
        .build()
        .map_err(FetchError::Threads)?;
    let results: Vec<Result<(), FetchError>> = pool.install(|| {
        missing
            .par_iter()
            .map(|spec| {
                let r = fetch_one(spec, mirrors, http, cache, opts, &|n| {
                    bytes.fetch_add(n, Ordering::Relaxed);
                    phase.inc(n);
                });
                phase.message(&spec.name);
                if r.is_ok() {
                    phase.detail(|| format!("{} ({})", spec.label(), bytes_text(spec.size)));
                }
                r
            })
            .collect()
    });
    phase.finish();
    // The first failure in a fixed order, whatever finished first.
    for r in results {
        r?;
    }
    report.downloaded = missing.len();
    report.bytes = bytes.load(Ordering::Relaxed);
    cache.sweep_partial(&wanted);
    Ok(report)
}

fn fetch_one(
    spec: &DebSpec,
    mirrors: &[Mirror],
    http: &Http,
    cache: &Cache,
    opts: &FetchOptions,
    progress: &dyn Fn(u64),
) -> Result<(), FetchError> {
    let cache_err = |path: PathBuf, what: &'static str| {
        move |source: std::io::Error| FetchError::Cache { path, what, source }
    };
    let _lock = cache.lock(&spec.sha256).map_err(cache_err(
        cache.lock_path(&spec.sha256),
        "cannot lock the blob",
    ))?;
    // Another build may have fetched it while we waited for the lock.
    if cache.has(&spec.sha256, spec.size, false) {
        return Ok(());
    }
    let partial = cache.partial_path(&spec.sha256);
    cache
        .subdir("partial")
        .map_err(cache_err(cache.dir().join("partial"), "cannot create it"))?;
    let (archive, filename, urls) = match &spec.location {
        Location::Pool { archive, filename } => {
            let urls: Vec<String> = mirrors
                .iter()
                .filter_map(|m| m.root(archive, opts.snapshot.as_deref()))
                .map(|root| format!("{root}{filename}"))
                .collect();
            (archive, filename, urls)
        }
        Location::Url(url) => {
            let tried = download_from(
                std::slice::from_ref(url),
                spec,
                cache,
                http,
                &partial,
                progress,
            )?;
            return match tried {
                None => Ok(()),
                Some(tried) => Err(FetchError::UrlUnavailable {
                    package: spec.label(),
                    url: url.clone(),
                    tried,
                }),
            };
        }
    };
    let Some(mut tried) = download_from(&urls, spec, cache, http, &partial, progress)? else {
        return Ok(());
    };
    if tried.is_empty() {
        tried.push(MirrorFailure::NoMirror {
            archive: archive.clone(),
        });
    }
    Err(FetchError::Unavailable {
        package: spec.label(),
        filename: filename.clone(),
        tried,
    })
}

/// Try `urls` in order into `partial` and the cache; `None` once one delivered the pinned
/// file, else why each failed.
fn download_from(
    urls: &[String],
    spec: &DebSpec,
    cache: &Cache,
    http: &Http,
    partial: &std::path::Path,
    progress: &dyn Fn(u64),
) -> Result<Option<Vec<MirrorFailure>>, FetchError> {
    let mut tried = Vec::new();
    for url in urls {
        let url = url.clone();
        match http.download(&url, partial, spec.size, progress) {
            Ok(()) => match cache.promote(partial, &spec.sha256) {
                Ok(Ok(())) => return Ok(None),
                Ok(Err(got)) => tried.push(MirrorFailure::WrongHash { url, got }),
                Err(source) => {
                    return Err(FetchError::Cache {
                        path: cache.path(&spec.sha256),
                        what: "cannot store it",
                        source,
                    });
                }
            },
            // The partial file stays: every mirror serves the same bytes for a pinned
            // sha256, so the next mirror (or the next run) resumes it, and a wrong splice
            // is caught by the hash check in `promote`.
            Err(e) => tried.push(MirrorFailure::Http(e)),
        }
    }
    Ok(Some(tried))
}
