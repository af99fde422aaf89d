//! The .debs a build needs, put into the cache from the mirrors the options, the host and
//! the lock name; a vendor repository's .debs and upstream tarballs from their own URLs.

use std::collections::BTreeMap;

use super::{BuildError, BuildOptions};
use crate::fetch::cache::Cache;
use crate::fetch::debs::{DebSpec, FetchOptions, FetchReport, Location, fetch_debs};
use crate::fetch::mirror::{Mirror, MirrorConfig, mirror_list};
use crate::http::Http;
use crate::snapshot::lock::{Lock, LockedPackage, LockedTarball};
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

/// Make sure the cache holds every one of `pkgs`' .debs and every one of `tarballs`,
/// downloading what is missing.
pub(super) fn fetch_packages(
    opts: &BuildOptions,
    lock: &Lock,
    pkgs: &[&LockedPackage],
    tarballs: &[&LockedTarball],
) -> Result<FetchReport, BuildError> {
    let archive_of: BTreeMap<&str, &str> = lock
        .suites
        .iter()
        .map(|s| (s.suite.as_str(), s.archive.as_str()))
        .collect();
    let vendor_url: BTreeMap<(&str, &str), &str> = lock
        .vendors
        .iter()
        .filter_map(|v| Some(((v.archive.as_str(), v.suite.as_str()), v.url.as_deref()?)))
        .collect();
    let mut specs = Vec::new();
    for p in pkgs {
        if let Some(vendor) = &p.vendor {
            // `Lock::read` checked that the vendor is listed.
            let root = vendor_url
                .get(&(vendor.as_str(), p.suite.as_str()))
                .ok_or_else(|| BuildError::UnknownSuite {
                    lock: format!("snapshots/{}.lock", lock.distro),
                    package: p.name.clone(),
                    suite: format!("{vendor} {}", p.suite),
                })?;
            specs.push(DebSpec {
                name: p.name.clone(),
                version: p.version.clone(),
                arch: p.arch,
                location: Location::Url(format!("{root}{}", p.filename)),
                size: p.size,
                sha256: p.sha256,
            });
            continue;
        }
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
            location: Location::Pool {
                archive: (*archive).to_owned(),
                filename: p.filename.clone(),
            },
            size: p.size,
            sha256: p.sha256,
        });
    }
    for t in tarballs {
        specs.push(DebSpec {
            name: t.name.clone(),
            version: t.version.clone(),
            arch: t.arch,
            location: Location::Url(t.url.clone()),
            size: t.size,
            sha256: t.sha256,
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
