//! One suite of a pin: its InRelease fetched from the first mirror that has it and
//! verified against the manifest's keys, then every Packages index it lists for the
//! pinned architectures, checked against the signed Release, decompressed and parsed.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::time::Instant;

use rayon::prelude::*;

use super::{PinError, detail, log, now};
use crate::arch::Arch;
use crate::archive::packages::{self, Package};
use crate::archive::release::Release;
use crate::archive::trust::{Keyring, ValidAt};
use crate::digest::Digest;
use crate::fetch::cache::Cache;
use crate::fetch::mirror::Mirror;
use crate::http::Http;
use crate::snapshot::lock::{LockedIndex, LockedSuite};
use crate::snapshot::manifest::{Manifest, SuiteSpec, VendorSpec};
use crate::text::error_line;

/// Largest InRelease accepted.
const MAX_INRELEASE: u64 = 16 << 20;
/// Largest compressed Packages index accepted.
const MAX_INDEX: u64 = 512 << 20;
/// Largest decompressed Packages index accepted (bounds decompression bombs).
const MAX_INDEX_TEXT: u64 = 2 << 30;

/// One index: its architecture, lock entry, stanzas and parse time.
type FetchedIndex = (String, LockedIndex, Vec<Package>, f64);

/// One suite after verification and index download.
pub(super) struct FetchedSuite {
    pub(super) spec: SuiteSpec,
    pub(super) locked: LockedSuite,
    pub(super) release_date: jiff::Timestamp,
    /// Per image architecture: its packages (arch index plus binary-all when separate).
    pub(super) packages: BTreeMap<String, Vec<Package>>,
    pub(super) parse_secs: f64,
    pub(super) stanzas: usize,
}

/// What fetching a suite needs: trust, mirrors, transport and the pin's scope.
pub(super) struct Fetcher<'a> {
    pub(super) manifest: &'a Manifest,
    pub(super) keyring: &'a Keyring,
    pub(super) mirrors: &'a [Mirror],
    pub(super) http: &'a Http,
    pub(super) cache: &'a Cache,
    pub(super) arches: &'a [Arch],
    /// The requested date and its snapshot timestamp, for a dated pin.
    pub(super) dated: Option<&'a (jiff::Timestamp, String)>,
    /// The components to index.
    pub(super) components: &'a [String],
    /// The vendor repository being fetched (its own key and URL), if not a Debian suite.
    pub(super) vendor: Option<&'a VendorSpec>,
    pub(super) quiet: bool,
}

impl Fetcher<'_> {
    /// Verify one suite's InRelease and fetch its Packages indices for every architecture.
    pub(super) fn suite(&self, spec: &SuiteSpec) -> Result<FetchedSuite, PinError> {
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
            let what = if self.vendor.is_some() {
                "this is a debless bug: a vendor repository is its own mirror"
            } else if dated.is_some() {
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
                Err(e) => tried.push(error_line(&e)),
            }
        }
        let Some((root, url, bytes)) = got else {
            return Err(PinError::Unreachable(match self.vendor {
                Some(v) => format!(
                    "vendor {}: its repository did not serve InRelease (tried {}); check `url` and `suite` of the vendor in {}, or pin without --extra",
                    v.name,
                    tried.join("; "),
                    manifest.path.display()
                ),
                None => format!(
                    "suite {suite}: no mirror served InRelease (tried {}); check the mirror list or pass --mirror",
                    tried.join("; ")
                ),
            }));
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
                PinError::Integrity(match self.vendor {
                    Some(v) => format!(
                        "{url}: {e}; refusing to use vendor {} (its InRelease must be signed by the key the manifest pins for it, {})",
                        v.name, v.key.fingerprint
                    ),
                    None => format!(
                        "{url}: {e}; refusing to use this suite (check snapshots/keys and the manifest's keys)"
                    ),
                })
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
        for comp in self.components {
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
                url: None,
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
        let (http, cache) = (self.http, self.cache);
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
                        // The signed size: nothing longer can match, and the download's
                        // deadline is in proportion to it.
                        match http.get(url, entry.size.min(MAX_INDEX)) {
                            Ok(b) => {
                                body = Some((url.clone(), b));
                                break;
                            }
                            Err(e) => tried.push(error_line(&e)),
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
                    detail(|| {
                        format!(
                            "pin: {suite}: {path} {} from {url}",
                            crate::text::bytes(b.len() as u64)
                        )
                    });
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
