//! The layer cache: a finished layer, found again by the digest of everything that went
//! into it, so an unchanged layer is never read, assembled or compressed twice.
//!
//! A layer's key hashes the tool binary itself (any code change invalidates everything),
//! the compression, `SOURCE_DATE_EPOCH` (when set), the lock's /usr layout, `--whole-packages`,
//! `rules/defaults.toml`, the bytes of the rule file that adds the layer, each package's
//! name, version and .deb sha256 with the bytes of the rule file that declares its paths,
//! each upstream tarball's name, version, URL and sha256, the content of the host files
//! `[[add]]` and `--add` put in it, and the key of the layer below (whose files the layer's whiteouts and generators see).
//! The blob sits in the content-addressed store next to the .debs (`sha256/<hex>`); the
//! entry `layers/<key>.json` holds its digests and its packages as the SBOM lists them.
//! Both are written to a temporary under `partial/` (named by the writer's pid, so the
//! next build removes what a killed one left) and renamed, blob first: an entry never
//! points at a half-written blob. A blob is re-hashed whenever it is copied into an image.
//! Nothing is written into a directory of the cache that is a link (see `fetch::cache`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

use super::plan::{LayerKey, LayerPlan, Plan};
use crate::fetch::cache::Cache;
use crate::layer::{Compression, Entry, LayerError, LayerInfo, write_layer_to};
use crate::sbom::SbomPackage;

/// Bumped when the entry format changes.
const FORMAT: &str = "debless-layer-cache-3";

/// Names of the temporary files older debless versions left under `partial/`.
const LEGACY_TEMP_PREFIX: &str = ".layer-cache-";

/// A finished layer: its blob's identity and its packages as its SBOM describes them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct BuiltLayer {
    /// Digests and sizes of the blob.
    pub info: LayerInfo,
    /// By package name, each with the files the layer ships from it.
    pub packages: BTreeMap<String, SbomPackage>,
    /// The layer's time: the newest mtime of the package files in it and below it
    /// (`SOURCE_DATE_EPOCH` when set). Generated files carry it, and an image's `created`
    /// is the newest of its layers'.
    pub time: u64,
}

/// Everything outside the plan that changes a layer's bytes.
pub(crate) struct KeyInputs<'a> {
    /// `sha256:<hex>` of the running binary.
    pub tool: &'a str,
    /// Layer compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`, which replaces every time in the layer.
    pub source_date_epoch: Option<u64>,
    /// The lock's merged-/usr setting.
    pub merged_usr: bool,
    /// `--whole-packages`.
    pub whole_packages: bool,
    /// `sha256:<hex>` of `rules/defaults.toml`.
    pub defaults: &'a str,
    /// By rule file, the digest of what its `[[add]]` (or `--add`) reads from the host.
    pub added: &'a BTreeMap<std::path::PathBuf, super::add::Added>,
}

/// `sha256:<hex>` of the running executable, or `None` when it cannot be read (then
/// nothing is cached: a layer from another build of the tool could differ).
pub(crate) fn tool_digest() -> Option<&'static str> {
    static DIGEST: OnceLock<Option<String>> = OnceLock::new();
    DIGEST
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            Some(crate::digest::Digest::of_file(&exe).ok()?.to_string())
        })
        .as_deref()
}

/// The key of every layer of `plan`.
pub(crate) fn keys(plan: &Plan<'_>, inputs: &KeyInputs<'_>) -> BTreeMap<LayerKey, String> {
    let mut out: BTreeMap<LayerKey, String> = BTreeMap::new();
    // Parents before children; `plan::plan` guarantees `below` exists and is acyclic.
    let mut todo: Vec<&LayerPlan> = plan.layers.values().collect();
    while !todo.is_empty() {
        let before = todo.len();
        todo.retain(|lp| {
            let below = match &lp.below {
                None => None,
                Some(b) => match out.get(b) {
                    Some(k) => Some(k.clone()),
                    None => return true,
                },
            };
            out.insert(lp.key.clone(), key_of(lp, below.as_deref(), inputs));
            false
        });
        if todo.len() == before {
            break;
        }
    }
    out
}

/// A cache key being made: named values, one per line, hashed.
pub(crate) struct KeyHasher(Sha256);

impl KeyHasher {
    /// A key of the kind `format` (bumped when what the key covers changes).
    pub fn new(format: &str) -> KeyHasher {
        let mut k = KeyHasher(Sha256::new());
        k.line("format", format);
        k
    }

    /// Add `name=value`.
    pub fn line(&mut self, name: &str, value: &str) {
        for part in [name, "=", value, "\n"] {
            self.0.update(part.as_bytes());
        }
    }

    /// The key: lower-case hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

fn key_of(lp: &LayerPlan<'_>, below: Option<&str>, k: &KeyInputs<'_>) -> String {
    let mut key = KeyHasher::new(FORMAT);
    let mut line = |name: &str, value: &str| key.line(name, value);
    line("tool", k.tool);
    line("compression", k.compression.name());
    line(
        "source_date_epoch",
        &k.source_date_epoch
            .map_or("-".to_owned(), |e| e.to_string()),
    );
    line("merged_usr", &k.merged_usr.to_string());
    line("whole_packages", &k.whole_packages.to_string());
    line("defaults", k.defaults);
    line("below", below.unwrap_or("-"));
    line("arch", lp.key.arch().name());
    line("layer", &format!("{:?}", lp.key));
    line("rule", &format!("{} {}", lp.rule.name, lp.rule.digest));
    for p in &lp.packages {
        let l = p.locked;
        line(
            "package",
            // Every lock field the layer's entry records, not only those its bytes use.
            &format!(
                "{} {} {} {} {} {} {} {}",
                l.name,
                l.version,
                l.arch,
                l.architecture,
                l.source,
                l.source_version,
                l.sha256,
                l.installed_size
            ),
        );
        if let Some((rule, _)) = p.declared {
            line("declared", &format!("{} {}", rule.name, rule.digest));
        }
    }
    // Only layers with added host files have this line: their content, which the rule
    // file's bytes do not cover.
    if let Some(a) = k.added.get(&lp.rule.file) {
        line("added", &a.digest);
    }
    // Only layers with tarballs have these lines, so no other layer's key moves. The
    // rule that declares a tarball is the layer's own, already above.
    for t in &lp.tarballs {
        let l = t.locked;
        line(
            "tarball",
            &format!(
                "{} {} {} {} {} {}",
                l.name, l.version, l.arch, l.url, l.size, l.sha256
            ),
        );
    }
    key.finish()
}

/// The layer cache under a cache directory.
pub(crate) struct LayerCache {
    dir: PathBuf,
    /// The content-addressed store the .debs share.
    blobs: Cache,
}

impl LayerCache {
    /// The cache under `cache_dir` (`layers/` and the shared `sha256/`).
    pub fn new(cache_dir: &Path) -> LayerCache {
        LayerCache {
            dir: cache_dir.to_path_buf(),
            blobs: Cache::new(cache_dir),
        }
    }

    /// Where a blob lives.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.path(digest)
    }

    /// Where files are written before they are renamed into place (shared with partial
    /// downloads, which are named by their hash).
    fn partial(&self) -> PathBuf {
        self.dir.join("partial")
    }

    /// Remove temporary files killed builds left behind: those whose process is gone, and
    /// older versions' (named without a pid) once a day old.
    pub fn sweep(&self) {
        // Never through a link: a planted one is refused when something is written.
        if !std::fs::symlink_metadata(self.partial()).is_ok_and(|m| m.is_dir()) {
            return;
        }
        crate::tmp::sweep(&self.partial(), None);
        let Ok(dir) = std::fs::read_dir(self.partial()) else {
            return;
        };
        let day = std::time::Duration::from_secs(24 * 3600);
        for e in dir.flatten() {
            let stale = e
                .file_name()
                .to_string_lossy()
                .starts_with(LEGACY_TEMP_PREFIX)
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > day);
            if stale {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        self.dir.join("layers").join(format!("{key}.json"))
    }

    /// The layer stored under `key`, if its entry parses and its blob is there at the
    /// right size (the bytes are checked when copied into an image).
    pub fn get(&self, key: &str) -> Option<BuiltLayer> {
        let entry = self.entry_path(key);
        let bytes = read_entry(&entry).ok()?;
        let layer: BuiltLayer = serde_json::from_slice(&bytes).ok()?;
        let blob = self.blob_path(&layer.info.digest);
        let meta = std::fs::symlink_metadata(&blob).ok()?;
        let hit = meta.is_file() && meta.len() == layer.info.size;
        if hit {
            // Used now: `debless cache prune --older-than` keeps it.
            crate::fetch::cache::touch(&entry);
            crate::fetch::cache::touch(&blob);
        }
        hit.then_some(layer)
    }

    /// Compress `entries` straight into the blob store and record the layer under `key`
    /// (`None`: caching is off; the blob is stored all the same, for the image to copy).
    /// `time` is the layer's time: no mtime in it is later.
    pub fn put(
        &self,
        key: Option<&str>,
        entries: &[Entry],
        compression: Compression,
        time: u64,
        packages: BTreeMap<String, SbomPackage>,
    ) -> Result<BuiltLayer, LayerCacheError> {
        let partial = self.partial();
        let io = |path: &Path, what: &'static str| {
            let path = path.to_path_buf();
            move |source| LayerCacheError::Io { path, what, source }
        };
        for d in ["sha256", "partial"] {
            self.blobs
                .subdir(d)
                .map_err(io(&self.dir.join(d), "cannot create"))?;
        }
        // Written under partial/ and renamed: sha256/ only ever holds whole blobs named
        // by their hash, even after a `kill -9`.
        let tmp = crate::tmp::TempFile::new_in(&partial, "layer", 0o644)
            .map_err(io(&partial, "cannot create a temporary file in"))?;
        let file = std::io::BufWriter::with_capacity(1 << 20, tmp.file());
        let (file, info) =
            write_layer_to(entries, compression, time, file).map_err(|e| match e {
                // Most likely the disk: name the directory rather than the compressor.
                LayerError::Write { source, .. } => LayerCacheError::Io {
                    path: partial.clone(),
                    what: "cannot write a layer into",
                    source,
                },
                e => LayerCacheError::Layer(e),
            })?;
        file.into_inner().map_err(|e| LayerCacheError::Io {
            path: partial.clone(),
            what: "cannot write a layer into",
            source: e.into_error(),
        })?;
        crate::tmp::kill_point("layer-written");
        let blob = self.blob_path(&info.digest);
        tmp.persist(&blob)
            .map_err(io(&blob, "cannot store the layer blob at"))?;
        let layer = BuiltLayer {
            info,
            packages,
            time,
        };
        let Some(key) = key else {
            return Ok(layer);
        };
        // Plain structs of strings and numbers: serialising cannot fail.
        let json = serde_json::to_vec(&layer).expect("layer entries always serialise");
        let entry = self.entry_path(key);
        self.store(&entry, &json)
            .map_err(io(&entry, "cannot store the layer entry at"))?;
        Ok(layer)
    }

    /// A temporary file under `partial/` for a blob coming from elsewhere (the registry
    /// layer cache), to be given to [`LayerCache::insert`] once it is verified.
    pub fn temp_blob(&self) -> Result<crate::tmp::TempFile, LayerCacheError> {
        let partial = self.partial();
        let io = |path: &Path, what: &'static str| {
            let path = path.to_path_buf();
            move |source| LayerCacheError::Io { path, what, source }
        };
        for d in ["sha256", "partial"] {
            self.blobs
                .subdir(d)
                .map_err(io(&self.dir.join(d), "cannot create"))?;
        }
        crate::tmp::TempFile::new_in(&partial, "layer", 0o644)
            .map_err(io(&partial, "cannot create a temporary file in"))
    }

    /// Record `layer` under `key`, its blob moved into the store from `blob` first
    /// (`None`: the store has it already).
    pub fn insert(
        &self,
        key: &str,
        layer: &BuiltLayer,
        blob: Option<crate::tmp::TempFile>,
    ) -> Result<(), LayerCacheError> {
        let io = |path: PathBuf, what: &'static str| {
            move |source| LayerCacheError::Io { path, what, source }
        };
        if let Some(tmp) = blob {
            let path = self.blob_path(&layer.info.digest);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf(), "cannot create"))?;
            }
            tmp.persist(&path)
                .map_err(io(path.clone(), "cannot store the layer blob at"))?;
        }
        // Plain structs of strings and numbers: serialising cannot fail.
        let json = serde_json::to_vec(layer).expect("layer entries always serialise");
        let entry = self.entry_path(key);
        self.store(&entry, &json)
            .map_err(io(entry.clone(), "cannot store the layer entry at"))
    }

    /// Write `bytes` to `path` through a temporary file under `partial/` and a rename, so
    /// `path` is whole or absent.
    fn store(&self, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let partial = self.blobs.subdir("partial")?;
        if let Some(dir) = path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
        {
            self.blobs.subdir(dir)?;
        }
        let tmp = crate::tmp::TempFile::new_in(&partial, "entry", 0o644)?;
        tmp.file().write_all(bytes)?;
        tmp.persist(path)
    }

    fn sbom_path(&self, key: &str) -> PathBuf {
        self.dir.join("sboms").join(format!("{key}.spdx.json"))
    }

    /// A document stored under `key`.
    pub fn get_sbom(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.sbom_path(key);
        let bytes = read_entry(&path).ok()?;
        crate::fetch::cache::touch(&path);
        Some(bytes)
    }

    /// Store a document under `key` (temporary file and rename). Best effort: a document
    /// that cannot be cached is made again next time.
    pub fn put_sbom(&self, key: &str, bytes: &[u8]) {
        drop(self.store(&self.sbom_path(key), bytes));
    }
}

/// Read a cache entry without following a link at its name.
fn read_entry(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut bytes = Vec::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Why a layer could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum LayerCacheError {
    /// The tar or compressor failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// The cache directory could not be written.
    #[error("{what} {}; check the cache directory (--cache-dir) has room and is writable", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_dead_processes_temporaries_and_day_old_legacy_ones() {
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("partial");
        std::fs::create_dir_all(&partial).unwrap();
        let two_days_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(48 * 3600);
        let make = |name: &str, old: bool| {
            let f = std::fs::File::create(partial.join(name)).unwrap();
            if old {
                f.set_modified(two_days_ago).unwrap();
            }
        };
        make(".layer-cache-abc", true);
        make(".layer-cache-def", false);
        // A resumable download is named by its hash and kept however old.
        make(&"0".repeat(64), true);
        // A temporary of a process that is gone goes at once; a live one's stays.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        make(&format!(".layer.debless-{dead}-1.tmp"), false);
        let mine = crate::tmp::TempFile::new_in(&partial, "layer", 0o644).unwrap();
        LayerCache::new(dir.path()).sweep();
        let mut left: Vec<String> = std::fs::read_dir(&partial)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mine = mine
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut want = vec![".layer-cache-def".to_owned(), "0".repeat(64), mine];
        want.sort();
        assert_eq!(left, want);
    }
}
