//! Upstream tarballs in a pin: every `[tarballs.<name>]` of the rules being pinned, for
//! every pinned architecture, downloaded and hashed (or kept from the old lock when its
//! URL is unchanged), and recorded in the lock with its size and SHA256.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use super::{PinError, log};
use crate::arch::Arch;
use crate::digest::Digest;
use crate::fetch::cache::Cache;
use crate::http::Http;
use crate::rules::RuleSet;
use crate::snapshot::lock::{Lock, LockedTarball};
use crate::text::error_line;

/// Largest tarball accepted (a JDK is about 200 MB).
const MAX_TARBALL: u64 = 2 << 30;

/// What the rules ask for one (architecture, name, version): its URL, the rules taking
/// it, and the SHA256 a rule expects, if it names one.
struct Wanted {
    url: String,
    rules: BTreeSet<String>,
    /// (expected hex, the rule file that says so).
    expected: Option<(String, String)>,
}

/// What pinning the tarballs made.
pub(super) struct Pinned {
    /// The lock's tarball entries, sorted by (architecture, name, version).
    pub(super) entries: Vec<LockedTarball>,
    /// Those this pin downloaded and hashed (the others were kept from the old lock):
    /// (arch, name, version).
    pub(super) hashed: Vec<(Arch, String, String)>,
}

/// Every tarball the rules take, for every architecture, as the lock records it.
pub(super) fn pin_tarballs(
    rules: &RuleSet,
    distro: &str,
    arches: &[Arch],
    old: Option<&Lock>,
    http: &Http,
    cache: &Cache,
    quiet: bool,
) -> Result<Pinned, PinError> {
    let mut wanted: BTreeMap<(Arch, String, String), Wanted> = BTreeMap::new();
    for rule in rules.for_distro(distro) {
        let file = rule.file.display().to_string();
        for (name, t) in rule.tarballs_for(distro) {
            for &arch in arches.iter().filter(|&&a| rules.builds_for(&rule.name, a)) {
                let url = t.url_for(arch).map_err(|e| {
                    PinError::Config(format!("{file}: tarball {name} for {arch}: {e}"))
                })?;
                // The top directory is checked here too, so a missing architecture is a
                // pin error and never a build one.
                t.strip_for(arch).map_err(|e| {
                    PinError::Config(format!("{file}: tarball {name} for {arch}: {e}"))
                })?;
                let key = (arch, name.to_owned(), t.version.clone());
                let w = wanted.entry(key).or_insert_with(|| Wanted {
                    url: url.clone(),
                    rules: BTreeSet::new(),
                    expected: None,
                });
                if w.url != url {
                    return Err(PinError::Config(format!(
                        "{file}: tarball {name} {} for {arch} is {url}, but another rule takes it from {}; one name and version is one file",
                        t.version, w.url
                    )));
                }
                w.rules.insert(rule.name.clone());
                if let Some(hex) = t.sha256.get(&arch) {
                    match &w.expected {
                        Some((other, by)) if other != hex => {
                            return Err(PinError::Config(format!(
                                "{file}: tarball {name} {} for {arch} expects sha256 {hex}, but {by} expects {other}",
                                t.version
                            )));
                        }
                        _ => w.expected = Some((hex.clone(), file.clone())),
                    }
                }
            }
        }
    }
    let results: Vec<Result<(LockedTarball, bool), PinError>> = wanted
        .into_par_iter()
        .map(|((arch, name, version), w)| {
            let kept = old
                .and_then(|o| o.tarball(arch, &name, &version))
                .filter(|t| t.url == w.url)
                .filter(|t| {
                    w.expected
                        .as_ref()
                        .is_none_or(|(hex, _)| *hex == t.sha256.hex())
                });
            let (size, sha256, fresh) = match kept {
                Some(t) => (t.size, t.sha256, false),
                None => {
                    let (size, sha256) = download(&name, &version, arch, &w, http, cache, quiet)?;
                    (size, sha256, true)
                }
            };
            Ok((
                LockedTarball {
                    name,
                    arch,
                    version,
                    url: w.url,
                    size,
                    sha256,
                    rules: w.rules.into_iter().collect(),
                },
                fresh,
            ))
        })
        .collect();
    let mut entries = Vec::new();
    let mut hashed = Vec::new();
    // The first failure in (architecture, name, version) order, whichever thread saw it.
    for r in results {
        let (t, fresh) = r?;
        if fresh {
            hashed.push((t.arch, t.name.clone(), t.version.clone()));
        }
        entries.push(t);
    }
    Ok(Pinned { entries, hashed })
}

/// Download one tarball, check it looks like one (and has the expected hash, if a rule
/// gives one), and keep it in the cache for the build.
fn download(
    name: &str,
    version: &str,
    arch: Arch,
    w: &Wanted,
    http: &Http,
    cache: &Cache,
    quiet: bool,
) -> Result<(u64, Digest), PinError> {
    let url = &w.url;
    let bytes = http.get(url, MAX_TARBALL).map_err(|e| {
        PinError::Unreachable(format!(
            "tarball {name} {version} ({arch}): {}; check the rule's url and arch_upstream, or pin without --extra",
            error_line(&e)
        ))
    })?;
    if !looks_like_tar(&bytes) {
        return Err(PinError::Integrity(format!(
            "{url}: tarball {name} {version} ({arch}) is not a tar archive (gzip, xz, zstd or plain); the server answered with something else, so nothing was pinned"
        )));
    }
    let sha256 = Digest::of(&bytes);
    if let Some((hex, file)) = &w.expected
        && *hex != sha256.hex()
    {
        return Err(PinError::Integrity(format!(
            "{url}: tarball {name} {version} ({arch}) has sha256 {}, but {file} expects {hex}; refusing to pin it",
            sha256.hex()
        )));
    }
    if let Err(e) = cache.put(&sha256, &bytes) {
        log(
            quiet,
            format!(
                "pin: warning: cannot cache {url} in {} ({e}); the build downloads it again",
                cache.dir().display()
            ),
        );
    }
    log(
        quiet,
        format!(
            "pin: tarball {name} {version} ({arch}): {}, sha256 {} from {url}",
            crate::text::bytes(bytes.len() as u64),
            sha256.hex()
        ),
    );
    Ok((bytes.len() as u64, sha256))
}

/// gzip, xz or zstd by magic number, or a plain tar by its ustar magic: enough to refuse
/// an HTML error page served with a 200 before its hash goes into the lock.
fn looks_like_tar(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
        || bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || bytes.get(257..262) == Some(b"ustar")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarballs_are_recognised_by_their_magic() {
        assert!(looks_like_tar(&[0x1f, 0x8b, 8, 0]));
        assert!(looks_like_tar(b"\xfd7zXZ\0rest"));
        assert!(looks_like_tar(&[0x28, 0xb5, 0x2f, 0xfd, 0]));
        let mut plain = vec![0u8; 512];
        plain[257..262].copy_from_slice(b"ustar");
        assert!(looks_like_tar(&plain));
        assert!(!looks_like_tar(b"<!DOCTYPE html><html>not found</html>"));
        assert!(!looks_like_tar(b"BZh91AY&SY"));
    }
}
