//! The .debs a build needs, put into the cache from the mirrors the options, the host and
//! the lock name.

use std::collections::BTreeMap;

use super::{BuildError, BuildOptions};
use crate::fetch::cache::Cache;
use crate::fetch::debs::{DebSpec, FetchOptions, FetchReport, fetch_debs};
use crate::fetch::mirror::{Mirror, MirrorConfig, mirror_list};
use crate::http::Http;
use crate::snapshot::lock::{Lock, LockedPackage};
use crate::snapshot::manifest::Manifest;

/// The mirrors a build fetches from, in order: flags, the environment, the host's apt
/// sources, and for a dated lock the snapshot service.
pub(super) fn mirrors(opts: &BuildOptions, lock: &Lock) -> Result<Vec<Mirror>, BuildError> {
    let archives: Vec<&str> = lock.suites.iter().map(|s| s.archive.as_str()).collect();
    mirror_list(
        &MirrorConfig {
            flags: &opts.mirrors,
            env: opts.env_mirrors.clone(),
            etc_apt: &opts.etc_apt,
            // A dated lock's .debs live on the snapshot service the manifest names,
            // unless a flag or the environment names another.
            snapshot_service: opts.snapshot_service.clone().or_else(|| {
                Manifest::load(&opts.project.join("snapshots"), &lock.distro)
                    .ok()
                    .and_then(|m| m.snapshot_service)
            }),
            dated: lock.snapshot.is_some(),
        },
        &archives,
    )
    .map_err(BuildError::Mirrors)
}

/// Make sure the cache holds every one of `pkgs`' .debs, downloading what is missing.
pub(super) fn fetch_packages(
    opts: &BuildOptions,
    lock: &Lock,
    pkgs: &[&LockedPackage],
) -> Result<FetchReport, BuildError> {
    let archive_of: BTreeMap<&str, &str> = lock
        .suites
        .iter()
        .map(|s| (s.suite.as_str(), s.archive.as_str()))
        .collect();
    let mut specs = Vec::new();
    for p in pkgs {
        let archive = archive_of
            .get(p.suite.as_str())
            .ok_or_else(|| BuildError::UnknownSuite {
                lock: format!("snapshots/{}.lock", lock.distro),
                package: p.name.clone(),
                suite: p.suite.clone(),
            })?;
        specs.push(DebSpec {
            name: p.name.clone(),
            version: p.version.clone(),
            arch: p.arch,
            archive: (*archive).to_owned(),
            filename: p.filename.clone(),
            size: p.size,
            sha256: p.sha256,
        });
    }
    let mirrors = if opts.offline {
        Vec::new()
    } else {
        mirrors(opts, lock)?
    };
    let http = Http::new().map_err(BuildError::Http)?;
    let cache = Cache::new(&opts.cache_dir);
    Ok(fetch_debs(
        &specs,
        &mirrors,
        &http,
        &cache,
        &FetchOptions {
            offline: opts.offline,
            verify: opts.verify,
            jobs: opts.jobs.max(1) * 2,
            quiet: opts.quiet,
            snapshot: lock.snapshot.clone(),
        },
    )?)
}
