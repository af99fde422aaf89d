//! The second-level layer cache (`--cache-registry`): a registry repository many machines
//! share. A layer the local cache lacks is looked up by its local layer-cache key; a hit
//! brings its entry and blob into the local cache (so the local cache stays the first
//! level), and a layer this build made is pushed back under its key.
//!
//! Nothing fetched is taken on trust beyond what its key promises: the blob must hash to
//! the digest the manifest names, the entry must name that blob (digest, size, media type,
//! compression), and the blob must decompress to the entry's diff_id and tar size. An
//! entry failing any of these is refused (reported, never used) and the layer is made
//! from the .debs. What a key cannot prove (that the layer is the one its inputs make) is
//! the registry's write access to guard: see SECURITY.md.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use rayon::prelude::*;

use super::layer_cache::BuiltLayer;
use super::plan::LayerKey;
use super::{BuildError, Ctx};
use crate::digest::Digest;
use crate::layer::Compression;
use crate::oci::Descriptor;
use crate::registry::PushOptions;
use crate::registry::cache::{CacheRepo, CachedEntry};

/// Where `--cache-registry` points, and how to reach it.
#[derive(Debug, Clone)]
pub struct RegistryCache {
    /// `REGISTRY/REPOSITORY`.
    pub repository: String,
    /// Credentials, `--insecure`, retries and parallel transfers, as for a push.
    pub push: PushOptions,
    /// Only read the cache, never push to it (a job without push rights).
    pub read_only: bool,
}

/// What the registry layer cache did in one build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryCacheReport {
    /// `host/repository`.
    pub repository: String,
    /// Layers the local cache lacked that came from the registry.
    pub hits: usize,
    /// Layers looked up and not there.
    pub misses: usize,
    /// Layers pushed: those this build made, and those the local cache had that the
    /// registry lacked.
    pub pushed: usize,
    /// Entries refused or pushes failed, one line each (the layers were made, or the
    /// build went on without pushing them).
    pub warnings: Vec<String>,
}

/// One key looked up: the layer, its key, and the layer found, none, or why refused.
type Lookup<'k> = (
    &'k LayerKey,
    &'k String,
    Result<Option<BuiltLayer>, Refused>,
);

/// Why one entry was refused.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error(transparent)]
    Registry(#[from] crate::registry::PushError),
    #[error("the entry is not a debless layer-cache entry")]
    Entry(#[source] serde_json::Error),
    #[error("the entry names {what} {entry}, but its manifest's layer is {manifest}")]
    Mismatch {
        what: &'static str,
        entry: String,
        manifest: String,
    },
    #[error("the blob decompresses to {got} ({size} bytes), not the entry's diff_id {want}")]
    DiffId {
        got: Digest,
        size: u64,
        want: Digest,
    },
    #[error("the blob cannot be decompressed")]
    Corrupt(#[source] std::io::Error),
    #[error(transparent)]
    Local(#[from] super::LayerCacheError),
}

impl Ctx<'_> {
    /// Open the registry cache `--cache-registry` names, if any (`--check` uses none).
    pub(super) fn open_registry_cache(&self) -> Result<Option<CacheRepo>, BuildError> {
        let Some(rc) = &self.opts.cache_registry else {
            return Ok(None);
        };
        if self.opts.check || self.keys.is_empty() {
            return Ok(None);
        }
        CacheRepo::open(&rc.repository, &rc.push)
            .map(Some)
            .map_err(|source| BuildError::CacheRegistry {
                repository: rc.repository.clone(),
                source: Box::new(source),
            })
    }

    /// The layers of `local` (the local cache's) that `repo` lacks, or holds an entry
    /// for that names another blob or is refused: pushed after the build, so that a
    /// registry cache fills from machines whose local caches were warm before they used
    /// it, and an entry the registry lost or holds wrong is put back. None with
    /// `--cache-read-only`.
    pub(super) fn registry_lacks(
        &self,
        repo: &CacheRepo,
        local: &BTreeMap<LayerKey, BuiltLayer>,
    ) -> BTreeSet<LayerKey> {
        if self
            .opts
            .cache_registry
            .as_ref()
            .is_none_or(|rc| rc.read_only)
        {
            return BTreeSet::new();
        }
        let held: Vec<(&LayerKey, &String, &BuiltLayer)> = local
            .iter()
            .filter_map(|(k, layer)| Some((k, self.keys.get(k)?, layer)))
            .collect();
        self.transfers(|| {
            held.par_iter()
                .filter(|(_, key, layer)| {
                    // The entry document push_layers would store: the registry holds this
                    // entry exactly when its manifest names that document and this blob.
                    let entry = Digest::of(&entry_document(layer));
                    !matches!(repo.manifest(key), Ok(Some((c, l)))
                        if c.digest == entry && l.digest == layer.info.digest)
                })
                .map(|(k, _, _)| (*k).clone())
                .collect()
        })
    }

    /// The layers of the plan that `local` lacks and `repo` has, each brought into the
    /// local cache first.
    pub(super) fn registry_layers(
        &self,
        repo: &CacheRepo,
        local: &BTreeMap<LayerKey, BuiltLayer>,
        report: &mut RegistryCacheReport,
    ) -> BTreeMap<LayerKey, BuiltLayer> {
        let wanted: Vec<(&LayerKey, &String)> = self
            .keys
            .iter()
            .filter(|(k, _)| !local.contains_key(*k))
            .collect();
        let results: Vec<Lookup<'_>> = self.transfers(|| {
            wanted
                .par_iter()
                .map(|(k, key)| (*k, *key, self.fetch_entry(repo, key)))
                .collect()
        });
        let mut found = BTreeMap::new();
        for (k, key, r) in results {
            match r {
                Ok(Some(layer)) => {
                    report.hits += 1;
                    found.insert(k.clone(), layer);
                }
                Ok(None) => report.misses += 1,
                Err(e) => {
                    report.misses += 1;
                    report.warnings.push(format!(
                        "{}: refused the entry for the {k} (key {key}), making it instead: {}",
                        repo.name,
                        crate::text::error_line(&e)
                    ));
                }
            }
        }
        found
    }

    /// Push the `to_push` layers under their keys.
    pub(super) fn push_layers(
        &self,
        repo: &CacheRepo,
        to_push: &BTreeSet<&LayerKey>,
        layers: &BTreeMap<LayerKey, BuiltLayer>,
        report: &mut RegistryCacheReport,
    ) {
        let Some(rc) = &self.opts.cache_registry else {
            return;
        };
        if rc.read_only {
            return;
        }
        let todo: Vec<(&LayerKey, &String, &BuiltLayer)> = to_push
            .iter()
            .filter_map(|k| Some((*k, self.keys.get(*k)?, layers.get(*k)?)))
            .collect();
        let results: Vec<_> = self.transfers(|| {
            todo.par_iter()
                .map(|(k, key, layer)| {
                    let entry = entry_document(layer);
                    let desc = Descriptor {
                        media_type: layer.info.compression.media_type().to_owned(),
                        digest: layer.info.digest,
                        size: layer.info.size,
                        platform: None,
                        annotations: BTreeMap::new(),
                    };
                    let blob = self.layer_cache.blob_path(&layer.info.digest);
                    let r = repo.put(key, &entry, &desc, &blob, &rc.push);
                    (*k, r)
                })
                .collect()
        });
        for (k, r) in results {
            match r {
                Ok(()) => report.pushed += 1,
                Err(e) => report.warnings.push(format!(
                    "{}: could not push the {k}: {}",
                    repo.name,
                    crate::text::error_line(&e)
                )),
            }
        }
    }

    /// Run `f` on as many threads as the registry options allow (transfers wait on the
    /// network, not the CPU).
    fn transfers<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let jobs = self
            .opts
            .cache_registry
            .as_ref()
            .map_or(1, |rc| rc.push.jobs.max(1));
        match rayon::ThreadPoolBuilder::new().num_threads(jobs).build() {
            Ok(pool) => pool.install(f),
            // No threads to spare: one at a time.
            Err(_) => f(),
        }
    }

    /// One key: `None` when the registry has no entry; the layer, now in the local
    /// cache, when it has a good one.
    fn fetch_entry(&self, repo: &CacheRepo, key: &str) -> Result<Option<BuiltLayer>, Refused> {
        let Some(CachedEntry { entry, layer: desc }) = repo.get(key)? else {
            return Ok(None);
        };
        let layer: BuiltLayer = serde_json::from_slice(&entry).map_err(Refused::Entry)?;
        let info = &layer.info;
        let mismatch = |what, entry: String, manifest: String| {
            Err(Refused::Mismatch {
                what,
                entry,
                manifest,
            })
        };
        if info.digest != desc.digest {
            return mismatch("digest", info.digest.to_string(), desc.digest.to_string());
        }
        if info.size != desc.size {
            return mismatch("size", info.size.to_string(), desc.size.to_string());
        }
        if info.compression != self.opts.compression
            || info.compression.media_type() != desc.media_type
        {
            return mismatch(
                "media type",
                info.compression.media_type().to_owned(),
                desc.media_type.clone(),
            );
        }
        let path = self.layer_cache.blob_path(&info.digest);
        let have = std::fs::metadata(&path).is_ok_and(|m| m.len() == info.size);
        let tmp = if have {
            None
        } else {
            let tmp = self.layer_cache.temp_blob()?;
            repo.get_blob(&desc, tmp.file())?;
            Some(tmp)
        };
        // The blob's digest is checked; its tar is what the image config will name.
        let file = match &tmp {
            Some(t) => std::fs::File::open(t.path()),
            None => std::fs::File::open(&path),
        }
        .map_err(Refused::Corrupt)?;
        let (got, size) = tar_digest(file, info.compression).map_err(Refused::Corrupt)?;
        if got != info.diff_id || size != info.tar_size {
            return Err(Refused::DiffId {
                got,
                size,
                want: info.diff_id,
            });
        }
        self.layer_cache.insert(key, &layer, tmp)?;
        Ok(Some(layer))
    }
}

/// A layer's entry document, as the registry stores it.
fn entry_document(layer: &BuiltLayer) -> Vec<u8> {
    // Plain structs of strings and numbers: serialising cannot fail.
    serde_json::to_vec(layer).expect("layer entries always serialise")
}

/// The digest and length of the tar inside a layer blob.
fn tar_digest(file: std::fs::File, compression: Compression) -> std::io::Result<(Digest, u64)> {
    let file = std::io::BufReader::with_capacity(1 << 20, file);
    let reader: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    };
    Digest::of_reader(reader)
}
