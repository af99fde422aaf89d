//! `debless build` and `debless fetch`: lock + rules -> .debs in the cache -> selected
//! entries -> one deterministic layer per rule level -> OCI layouts or archives.

mod generators;
mod generators_certs;
mod layer_cache;
pub mod plan;
mod sbom;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::arch::Arch;
use crate::deb::{MergedLinks, ReadOptions, Selection, Tree, max_data_bytes, read_deb};
use crate::digest::Digest;
use crate::fetch::cache::{Cache, CacheError};
use crate::fetch::debs::{DebSpec, FetchOptions, FetchReport, fetch_debs};
use crate::fetch::http::Http;
use crate::fetch::mirror::{MirrorConfig, mirror_list};
use crate::layer::{Compression, Entry, EntryKind};
use crate::oci::{self, Descriptor, Layout};
use crate::rules::RuleSet;
use crate::snapshot::lock::{Lock, LockedPackage};
use layer_cache::{BuiltLayer, LayerCache};
use plan::{LayerKey, LayerPlan, Plan};
use sbom::layer_packages;

/// How images are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An OCI image layout directory per image: `out/<image>-<distro>/`.
    Oci,
    /// A tar of that layout: `out/<image>-<distro>.tar`.
    OciArchive,
    /// A `docker load` tarball: `out/<image>-<distro>.docker.tar`.
    DockerArchive,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "oci" => Ok(Format::Oci),
            "oci-archive" => Ok(Format::OciArchive),
            "docker-archive" => Ok(Format::DockerArchive),
            _ => Err(format!(
                "unknown format {s:?}; use oci, oci-archive or docker-archive"
            )),
        }
    }
}

/// Everything `build` and `fetch` need.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Project root holding `rules/` and `snapshots/`.
    pub project: PathBuf,
    /// Distro whose lock to build.
    pub distro: String,
    /// Images (rule names); empty = all the distro defines.
    pub images: Vec<String>,
    /// Tags (`latest` and variant names); empty = `latest` plus every variant.
    pub variants: Vec<String>,
    /// Architectures; empty = all the lock has.
    pub arches: Vec<Arch>,
    /// Output directory.
    pub out: PathBuf,
    /// Output format.
    pub format: Format,
    /// Layer compression.
    pub compression: Compression,
    /// Build twice (different thread counts) and compare.
    pub check: bool,
    /// Where SPDX documents go (default: `<out>/<image>-<distro>.spdx/`).
    pub sbom_dir: Option<PathBuf>,
    /// Ignore `paths` and the file policy: every file of every package, as Google
    /// distroless builds its images (for size comparisons).
    pub whole_packages: bool,
    /// Cache only.
    pub offline: bool,
    /// Re-hash cached .debs.
    pub verify: bool,
    /// Cache directory.
    pub cache_dir: PathBuf,
    /// Worker threads.
    pub jobs: usize,
    /// `--mirror` flags.
    pub mirrors: Vec<String>,
    /// `$DEBLESS_MIRRORS`.
    pub env_mirrors: Option<String>,
    /// Snapshot service for dated locks.
    pub snapshot_service: Option<String>,
    /// Host apt configuration (`/etc/apt`).
    pub etc_apt: PathBuf,
    /// `SOURCE_DATE_EPOCH`: overrides the lock's timestamp for mtimes and `created`.
    pub source_date_epoch: Option<i64>,
    /// `org.opencontainers.image.source`, if given.
    pub source_url: Option<String>,
    /// No progress output.
    pub quiet: bool,
}

/// A build failure: one line naming the file, package or image and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Lock, rules or flags are unusable.
    #[error("{0}")]
    Config(String),
    /// Downloading failed.
    #[error(transparent)]
    Fetch(#[from] crate::fetch::debs::FetchError),
    /// A package could not be read or selected from.
    #[error("{0}")]
    Package(String),
    /// Assembling or writing an image failed.
    #[error("{0}")]
    Image(String),
    /// `--check` found a difference.
    #[error("{0}")]
    NotReproducible(String),
}

/// Per image, tag and architecture: what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTag {
    /// Image name.
    pub image: String,
    /// Tag.
    pub tag: String,
    /// Architecture.
    pub arch: Arch,
    /// Manifest digest.
    pub digest: Digest,
    /// Layer digests, bottom first.
    pub layers: Vec<Digest>,
    /// Sum of uncompressed layer sizes.
    pub tar_bytes: u64,
    /// Sum of compressed layer sizes.
    pub blob_bytes: u64,
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The fetch step.
    pub fetch: FetchReport,
    /// Every image/tag/arch written.
    pub tags: Vec<BuiltTag>,
    /// Where each image went.
    pub outputs: Vec<PathBuf>,
    /// Those of `outputs` that already held exactly this build, so were left alone.
    pub up_to_date: Vec<PathBuf>,
    /// Distinct layers the images use.
    pub layers: usize,
    /// Of those, how many this build read and compressed (the rest came from the layer
    /// cache, unchanged).
    pub layers_made: usize,
    /// Of those, how many more than one image uses (each made once all the same).
    pub layers_shared: usize,
}

struct Loaded {
    lock: Lock,
    lock_name: String,
    lock_digest: Digest,
    rules: RuleSet,
}

fn load(opts: &BuildOptions) -> Result<Loaded, BuildError> {
    let lock_path = opts
        .project
        .join("snapshots")
        .join(format!("{}.lock", opts.distro));
    let lock_bytes = std::fs::read(&lock_path).map_err(|e| {
        BuildError::Config(format!(
            "{}: cannot read ({e}); run `debless pin --distro {}` first",
            lock_path.display(),
            opts.distro
        ))
    })?;
    let lock = Lock::read(&lock_path).map_err(|e| BuildError::Config(e.to_string()))?;
    let rules = RuleSet::load(&opts.project.join("rules"))
        .map_err(|e| BuildError::Config(e.to_string()))?;
    Ok(Loaded {
        lock,
        lock_name: format!("snapshots/{}.lock", opts.distro),
        lock_digest: Digest::of(&lock_bytes),
        rules,
    })
}

/// `debless fetch`: put every .deb the selection needs into the cache.
pub fn fetch(opts: &BuildOptions) -> Result<FetchReport, BuildError> {
    let l = load(opts)?;
    let p = plan::plan(
        &l.lock,
        &l.lock_name,
        &l.rules,
        &opts.images,
        &opts.variants,
        &opts.arches,
    )
    .map_err(|e| BuildError::Config(e.to_string()))?;
    fetch_for(opts, &l.lock, &p.packages())
}

fn fetch_for(
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
        let archive = archive_of.get(p.suite.as_str()).ok_or_else(|| {
            BuildError::Config(format!(
                "snapshots/{}.lock: package {} names suite {}, which the lock does not list; run `debless pin`",
                lock.distro, p.name, p.suite
            ))
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
    let archives: Vec<&str> = lock.suites.iter().map(|s| s.archive.as_str()).collect();
    let mirrors = if opts.offline {
        Vec::new()
    } else {
        mirror_list(
            &MirrorConfig {
                flags: &opts.mirrors,
                env: opts.env_mirrors.clone(),
                etc_apt: &opts.etc_apt,
                // A dated lock's .debs live on the snapshot service the manifest names,
                // unless a flag or the environment names another.
                snapshot_service: opts.snapshot_service.clone().or_else(|| {
                    crate::snapshot::manifest::Manifest::load(
                        &opts.project.join("snapshots"),
                        &lock.distro,
                    )
                    .ok()
                    .and_then(|m| m.snapshot_service)
                }),
                dated: lock.snapshot.is_some(),
            },
            &archives,
        )
        .map_err(BuildError::Config)?
    };
    let http = Http::new().map_err(BuildError::Config)?;
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

/// `debless build`.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    let l = load(opts)?;
    let p = plan::plan(
        &l.lock,
        &l.lock_name,
        &l.rules,
        &opts.images,
        &opts.variants,
        &opts.arches,
    )
    .map_err(|e| BuildError::Config(e.to_string()))?;
    let epoch = match opts.source_date_epoch {
        Some(e) => e,
        None => l
            .lock
            .timestamp
            .parse::<jiff::Timestamp>()
            .map_err(|e| {
                BuildError::Config(format!(
                    "{}: timestamp {:?} is not RFC 3339 ({e}); run `debless pin`",
                    l.lock_name, l.lock.timestamp
                ))
            })?
            .as_second(),
    };
    let tool = layer_cache::tool_digest();
    let keys = match tool {
        Some(tool) => layer_cache::keys(
            &p,
            &layer_cache::KeyInputs {
                tool,
                compression: opts.compression,
                epoch: epoch.max(0) as u64,
                merged_usr: l.lock.merged_usr,
                whole_packages: opts.whole_packages,
                defaults: &l.rules.defaults_digest,
            },
        ),
        // Without the binary's digest a cached layer could come from other code.
        None => BTreeMap::new(),
    };
    let ctx = Ctx {
        opts,
        l: &l,
        plan: &p,
        cache: Cache::new(&opts.cache_dir),
        layer_cache: LayerCache::new(&opts.cache_dir),
        keys,
        epoch: epoch.max(0) as u64,
    };
    ctx.layer_cache.sweep();
    // `--check` makes every layer twice from the packages, never from the layer cache.
    let cached = if opts.check {
        BTreeMap::new()
    } else {
        ctx.cached_layers()
    };
    // Only the .debs of the layers to make (and of the layers below them) are needed.
    let needed = ctx.needed(&cached);
    let fetched = fetch_for(opts, &l.lock, &p.packages_of(needed))?;
    let first = ctx.run(opts.jobs.max(1), cached)?;
    if opts.check {
        let other = if opts.jobs.max(1) == 1 { 2 } else { 1 };
        let second = ctx.run(other, BTreeMap::new())?;
        compare(&first, &second, opts.jobs.max(1), other)?;
    }
    let written = ctx.write(&first)?;
    let shared = first
        .layers
        .keys()
        .filter(|k| {
            p.images
                .iter()
                .filter(|ip| ip.tags.iter().any(|t| t.layers.contains(k)))
                .count()
                > 1
        })
        .count();
    Ok(BuildReport {
        fetch: fetched,
        tags: first.tags.clone(),
        outputs: written.iter().map(|(p, _)| p.clone()).collect(),
        up_to_date: written
            .iter()
            .filter(|(_, w)| !w)
            .map(|(p, _)| p.clone())
            .collect(),
        layers: first.layers.len(),
        layers_made: first.made,
        layers_shared: shared,
    })
}

struct Ctx<'a> {
    opts: &'a BuildOptions,
    l: &'a Loaded,
    plan: &'a Plan<'a>,
    cache: Cache,
    layer_cache: LayerCache,
    /// Each layer's layer-cache key (empty: caching is off).
    keys: BTreeMap<LayerKey, String>,
    epoch: u64,
}

/// One build's results: the layers are in the blob store, the rest in memory until written.
struct Built {
    layers: BTreeMap<LayerKey, BuiltLayer>,
    /// How many layers this build read and compressed (the rest came from the layer cache).
    made: usize,
    /// SPDX documents per image repository: (file name, bytes).
    sboms: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    /// Per layer made under `--check`, (path, fingerprint) of every entry, to explain a
    /// difference.
    listings: BTreeMap<LayerKey, Vec<(String, String)>>,
    tags: Vec<BuiltTag>,
    layouts: Vec<ImageOut>,
}

/// A package as read for one layer: its selected entries and its dpkg metadata.
pub(crate) struct PkgRead {
    entries: Vec<Entry>,
    control: String,
    md5sums: Option<String>,
}

/// The state of the depth-first walk over the layers.
struct Walk<'w, 'p> {
    /// Layers to assemble, by the layer they sit on.
    children: &'w BTreeMap<Option<&'p LayerKey>, Vec<&'p LayerPlan<'p>>>,
    /// Layers to make (the others are only assembled, for the files their children see).
    make: &'w BTreeSet<&'p LayerKey>,
    /// Finished layers.
    layers: &'w mut BTreeMap<LayerKey, BuiltLayer>,
    /// `--check` listings of the layers made.
    listings: BTreeMap<LayerKey, Vec<(String, String)>>,
}

/// An image document to write: where, and what it describes.
struct ImageDoc {
    repo: String,
    file: String,
    name: String,
    digest: Digest,
    platform: String,
    layers: Vec<LayerKey>,
}

/// An index document: where, and which image documents it refers to.
struct IndexDoc {
    repo: String,
    file: String,
    name: String,
    digest: Digest,
    /// Positions in the image documents.
    members: Vec<usize>,
}

/// One image repository ready to write: its name, layout, and docker-archive entries.
type ImageOut = (String, Layout, Vec<(Vec<String>, Descriptor)>);

/// The union of the layers below, the merged-/usr links already made, and the generators
/// they switched on: what a layer is assembled on top of.
type Below = (Tree, MergedLinks, generators::Inherited);

impl Ctx<'_> {
    fn run(
        &self,
        threads: usize,
        cached: BTreeMap<LayerKey, BuiltLayer>,
    ) -> Result<Built, BuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| BuildError::Image(format!("cannot start {threads} threads ({e})")))?;
        pool.install(|| self.run_in_pool(cached, !self.opts.check))
    }

    /// Every layer of the plan the layer cache has.
    fn cached_layers(&self) -> BTreeMap<LayerKey, BuiltLayer> {
        self.keys
            .iter()
            .filter_map(|(k, key)| Some((k.clone(), self.layer_cache.get(key)?)))
            .collect()
    }

    /// The layers to assemble: those not `cached`, and every layer below one of them
    /// (whose files it sees), cached or not.
    fn needed(&self, cached: &BTreeMap<LayerKey, BuiltLayer>) -> BTreeSet<&LayerKey> {
        let mut needed = BTreeSet::new();
        for k in self.plan.layers.keys().filter(|k| !cached.contains_key(*k)) {
            let mut cur = Some(k);
            while let Some(c) = cur {
                if !needed.insert(c) {
                    break;
                }
                cur = self.plan.layers[c].below.as_ref();
            }
        }
        needed
    }

    /// Take the `cached` layers as they are; make the others, walking each
    /// architecture's layer tree depth first so that only the current branch's files are
    /// in memory.
    fn run_in_pool(
        &self,
        cached: BTreeMap<LayerKey, BuiltLayer>,
        use_cache: bool,
    ) -> Result<Built, BuildError> {
        let needed = self.needed(&cached);
        let mut layers = cached;
        let make: BTreeSet<&LayerKey> = self
            .plan
            .layers
            .keys()
            .filter(|k| !layers.contains_key(*k))
            .collect();
        let mut children: BTreeMap<Option<&LayerKey>, Vec<&LayerPlan>> = BTreeMap::new();
        for k in &needed {
            let lp = &self.plan.layers[*k];
            children.entry(lp.below.as_ref()).or_default().push(lp);
        }
        let mut walk = Walk {
            children: &children,
            make: &make,
            layers: &mut layers,
            listings: BTreeMap::new(),
        };
        let root: Below = (
            Tree::new(self.l.lock.merged_usr),
            MergedLinks::default(),
            generators::Inherited::default(),
        );
        for lp in children.get(&None).into_iter().flatten() {
            self.visit(lp, &root, &mut walk)?;
        }
        let listings = walk.listings;
        let (tags, layouts, sboms) = self.images(&layers, use_cache)?;
        Ok(Built {
            made: make.len(),
            layers,
            sboms,
            listings,
            tags,
            layouts,
        })
    }

    /// Assemble `lp` on `below`, store it if it is to be made, then do its children.
    fn visit(
        &self,
        lp: &LayerPlan,
        below: &Below,
        walk: &mut Walk<'_, '_>,
    ) -> Result<(), BuildError> {
        let reads = self.read_layer(lp)?;
        // The decompressors' buffers are gone; the files read stay.
        release_freed_memory();
        let mut state = below.clone();
        let entries = self.assemble(lp, &mut state, &reads)?;
        if walk.make.contains(&lp.key) {
            let packages = layer_packages(lp, &reads, &entries);
            drop(reads);
            if self.opts.check {
                walk.listings.insert(
                    lp.key.clone(),
                    entries.par_iter().map(fingerprint).collect(),
                );
            }
            let built = self
                .layer_cache
                .put(
                    self.keys.get(&lp.key).map(String::as_str),
                    &entries,
                    self.opts.compression,
                    self.epoch,
                    packages,
                )
                .map_err(|e| BuildError::Image(format!("{}: {e}", describe(&lp.key))))?;
            walk.layers.insert(lp.key.clone(), built);
        }
        drop(entries);
        release_freed_memory();
        if let Some(kids) = walk.children.get(&Some(&lp.key)) {
            for child in kids {
                self.visit(child, &state, walk)?;
            }
        }
        Ok(())
    }

    /// Read a layer's packages, in parallel, in the plan's order.
    fn read_layer<'p>(
        &self,
        lp: &'p LayerPlan<'p>,
    ) -> Result<Vec<(&'p LockedPackage, PkgRead)>, BuildError> {
        let results: Vec<Result<PkgRead, BuildError>> = lp
            .packages
            .par_iter()
            .map(|p| self.read_package(p, lp))
            .collect();
        let mut out = Vec::with_capacity(results.len());
        for (p, r) in lp.packages.iter().zip(results) {
            out.push((p.locked, r?));
        }
        Ok(out)
    }

    /// Read one package's selected entries for `lp`.
    fn read_package(&self, p: &plan::LayerPackage, lp: &LayerPlan) -> Result<PkgRead, BuildError> {
        let policy = &self.l.rules.defaults.files;
        let merged_usr = self.l.lock.merged_usr;
        let (locked, declared) = (p.locked, p.declared);
        let (include, setuid, drop, file) = match declared {
            Some((rule, pr)) => (
                pr.paths.as_deref(),
                pr.allow_setuid.as_slice(),
                pr.drop.as_slice(),
                rule.file.display().to_string(),
            ),
            None => (None, &[][..], &[][..], String::new()),
        };
        let required: Vec<&str> = include
            .into_iter()
            .flatten()
            .filter(|p| p.required)
            .map(|p| p.glob.as_str())
            .collect();
        let include: Option<Vec<String>> =
            include.map(|pats| pats.iter().map(|p| p.glob.clone()).collect());
        let (include, exclude, keep): (Option<Vec<String>>, Vec<String>, &[String]) =
            if self.opts.whole_packages {
                (None, Vec::new(), &[])
            } else {
                let ex = policy.exclude.iter().chain(drop).cloned().collect();
                (include, ex, &policy.keep)
            };
        let sel = Selection::new(include.as_deref(), &exclude, keep, setuid)
            .map_err(|e| BuildError::Config(format!("{file}: package {}: {e}", locked.name)))?;
        // Hashing what is already in memory costs little next to decompressing
        // it, and a flipped bit in the cache must not reach an image.
        let bytes = self
            .cache
            .read_verified(&locked.sha256, locked.size)
            .map_err(|e| match e {
                CacheError::Read { source, .. } => BuildError::Package(format!(
                    "{} {} ({}): cannot read its .deb from the cache ({source}); run `debless fetch`",
                    locked.name, locked.version, locked.arch
                )),
                CacheError::Mismatch { .. } => BuildError::Package(format!(
                    "{} {} ({}): the cached .deb does not match the lock's sha256 and was removed; run the build again to re-download it",
                    locked.name, locked.version, locked.arch
                )),
            })?;
        let read_opts = ReadOptions {
            merged_usr,
            max_data_bytes: Some(max_data_bytes(locked.installed_size)),
        };
        let deb = read_deb(&bytes, &locked.name, &sel, &read_opts)
            .map_err(|e| {
                // An undeclared dependency has no rule of its own to fix: say
                // which rule brings it in.
                let hint = match declared {
                    None => format!(
                        " ({} is a dependency in {}: declare it there under [packages.{}] with `paths`/`allow_setuid`, or exclude it)",
                        locked.name,
                        lp.rule.file.display(),
                        locked.name
                    ),
                    Some(_) => String::new(),
                };
                BuildError::Package(format!(
                    "{} {} ({}): {e}{hint}",
                    locked.name, locked.version, locked.arch
                ))
            })?;
        if let Some(pat) = deb
            .unmatched
            .iter()
            .find(|p| !self.opts.whole_packages && required.contains(&p.as_str()))
        {
            return Err(BuildError::Config(format!(
                "{file}: package {}: path {pat} matches nothing in {} {} ({}); fix or drop the pattern",
                locked.name, locked.name, locked.version, locked.arch
            )));
        }
        Ok(PkgRead {
            entries: deb.entries,
            control: deb.control,
            md5sums: deb.md5sums,
        })
    }

    /// Merge `lp`'s packages and generated files on top of `below` (which becomes the
    /// union including `lp`) and return the layer's entries.
    fn assemble(
        &self,
        lp: &LayerPlan,
        below: &mut Below,
        reads: &[(&LockedPackage, PkgRead)],
    ) -> Result<Vec<Entry>, BuildError> {
        let (tree, links, inherited) = below;
        let mut candidates: Vec<Entry> = reads
            .iter()
            .flat_map(|(_, r)| r.entries.iter().cloned())
            .collect();
        let packages: Vec<(&LockedPackage, &PkgRead)> =
            reads.iter().map(|(l, r)| (*l, r)).collect();
        *inherited = generators::run(
            &generators::LayerInput {
                plan: lp,
                lock: &self.l.lock,
                lower: tree,
                packages: &packages,
                mtime: self.epoch,
            },
            *inherited,
            &mut candidates,
        )
        .map_err(|e| {
            BuildError::Image(format!(
                "{} ({}): {e}",
                describe(&lp.key),
                lp.rule.file.display()
            ))
        })?;
        if self.l.lock.merged_usr {
            candidates.extend(links.add_for(&candidates, self.epoch));
        }
        tree.add_layer(candidates, self.epoch).map_err(|e| {
            BuildError::Image(format!(
                "{} ({}): {e}",
                describe(&lp.key),
                lp.rule.file.display()
            ))
        })
    }

    /// Configs, manifests and indexes per image.
    #[allow(clippy::type_complexity)]
    fn images(
        &self,
        layers: &BTreeMap<LayerKey, BuiltLayer>,
        use_cache: bool,
    ) -> Result<
        (
            Vec<BuiltTag>,
            Vec<ImageOut>,
            BTreeMap<String, Vec<(String, Vec<u8>)>>,
        ),
        BuildError,
    > {
        let lock = &self.l.lock;
        let created = jiff::Timestamp::from_second(self.epoch as i64)
            .map(|t| t.to_string())
            .map_err(|e| BuildError::Config(format!("SOURCE_DATE_EPOCH out of range ({e})")))?;
        let mut by_image: BTreeMap<&str, Vec<&plan::ImagePlan>> = BTreeMap::new();
        for ip in &self.plan.images {
            by_image.entry(ip.image.as_str()).or_default().push(ip);
        }
        let mut tags_out = Vec::new();
        let mut layouts = Vec::new();
        let mut image_docs: Vec<ImageDoc> = Vec::new();
        let mut index_docs: Vec<IndexDoc> = Vec::new();
        for (image, plans) in by_image {
            let mut layout = Layout::new();
            let mut docker = Vec::new();
            let repo = format!("{image}-{}", lock.distro);
            let mut annotations = BTreeMap::new();
            annotations.insert(
                "org.opencontainers.image.created".to_owned(),
                created.clone(),
            );
            annotations.insert("org.opencontainers.image.title".to_owned(), repo.clone());
            annotations.insert("dev.debless.distro".to_owned(), lock.distro.clone());
            annotations.insert(
                "dev.debless.snapshot".to_owned(),
                lock.snapshot
                    .clone()
                    .unwrap_or_else(|| lock.timestamp.clone()),
            );
            annotations.insert(
                "dev.debless.lock.digest".to_owned(),
                self.l.lock_digest.to_string(),
            );
            if let Some(src) = &self.opts.source_url {
                annotations.insert("org.opencontainers.image.source".to_owned(), src.clone());
            }
            let tag_names: Vec<&str> = plans[0].tags.iter().map(|t| t.tag.as_str()).collect();
            for tag in tag_names {
                let mut per_arch = Vec::new();
                let mut members = Vec::new();
                for ip in &plans {
                    let Some(tp) = ip.tags.iter().find(|t| t.tag == tag) else {
                        continue;
                    };
                    let platform = oci::platform_for(ip.arch);
                    let mut refs = Vec::new();
                    let mut history = Vec::new();
                    let (mut tar_bytes, mut blob_bytes) = (0, 0);
                    for k in &tp.layers {
                        let layer = &layers[k].info;
                        layout.add_file_blob(
                            layer.digest,
                            self.layer_cache.blob_path(&layer.digest),
                            layer.size,
                        );
                        refs.push(oci::LayerRef {
                            digest: layer.digest,
                            diff_id: layer.diff_id,
                            size: layer.size,
                            media_type: layer.compression.media_type().to_owned(),
                        });
                        tar_bytes += layer.tar_size;
                        blob_bytes += layer.size;
                        let lp = &self.plan.layers[k];
                        let names: Vec<&str> =
                            lp.packages.iter().map(|p| p.locked.name.as_str()).collect();
                        history.push(oci::History {
                            created_by: format!("debless {}: {}", lp.rule.name, names.join(" ")),
                            comment: Some(lp.rule.description.clone()).filter(|d| !d.is_empty()),
                            empty_layer: false,
                        });
                    }
                    let s = &tp.settings;
                    let mut env = Vec::new();
                    for (k, v) in &s.env {
                        let v = crate::rules::template::expand_versions(v, lock, ip.arch)
                            .map_err(|e| BuildError::Config(format!("{image}: env {k}: {e}")))?;
                        env.push(format!("{k}={v}"));
                    }
                    let config = oci::Config {
                        env,
                        user: s.user.clone(),
                        working_dir: s.workdir.clone(),
                        entrypoint: s.entrypoint.clone(),
                        cmd: s.cmd.clone(),
                        labels: s.labels.clone(),
                    };
                    let img = oci::Image {
                        platform,
                        config,
                        created: created.clone(),
                        layers: refs,
                        history,
                        annotations: annotations.clone(),
                    };
                    let desc = layout
                        .add_image(&img)
                        .map_err(|e| BuildError::Image(format!("{repo}:{tag}-{}: {e}", ip.arch)))?;
                    layout.tag(&desc, &format!("{tag}-{}", ip.arch));
                    members.push(image_docs.len());
                    image_docs.push(ImageDoc {
                        repo: repo.clone(),
                        file: format!("{tag}-{}.spdx.json", ip.arch),
                        name: format!("{repo}:{tag}-{}", ip.arch),
                        digest: desc.digest,
                        platform: desc
                            .platform
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        layers: tp.layers.clone(),
                    });
                    docker.push((vec![format!("{repo}:{tag}-{}", ip.arch)], desc.clone()));
                    tags_out.push(BuiltTag {
                        image: image.to_owned(),
                        tag: tag.to_owned(),
                        arch: ip.arch,
                        digest: desc.digest,
                        layers: tp.layers.iter().map(|k| layers[k].info.digest).collect(),
                        tar_bytes,
                        blob_bytes,
                    });
                    per_arch.push(desc);
                }
                let index = layout.add_index(&per_arch, annotations.clone());
                layout.tag(&index, tag);
                index_docs.push(IndexDoc {
                    repo: repo.clone(),
                    file: format!("{tag}.spdx.json"),
                    name: format!("{repo}:{tag}"),
                    digest: index.digest,
                    members,
                });
            }
            layouts.push((repo, layout, docker));
        }
        let sboms = self.sboms(&image_docs, &index_docs, layers, &created, use_cache);
        Ok((tags_out, layouts, sboms))
    }

    /// Every SPDX document, in parallel: per image and platform (from the document cache
    /// when its inputs are unchanged), then per index over those.
    fn sboms(
        &self,
        image_docs: &[ImageDoc],
        index_docs: &[IndexDoc],
        layers: &BTreeMap<LayerKey, BuiltLayer>,
        created: &str,
        use_cache: bool,
    ) -> BTreeMap<String, Vec<(String, Vec<u8>)>> {
        let tool = env!("CARGO_PKG_VERSION");
        let written: Vec<Vec<u8>> = image_docs
            .par_iter()
            .map(|d| {
                let key = self.sbom_key(d, created);
                if let Some(bytes) = key
                    .as_deref()
                    .filter(|_| use_cache)
                    .and_then(|k| self.layer_cache.get_sbom(k))
                {
                    return bytes;
                }
                let doc = crate::sbom::to_json(&crate::sbom::image_sbom(
                    &sbom::image_input(
                        &d.name,
                        &d.digest,
                        created,
                        &d.layers,
                        &sbom::Sources {
                            lock: &self.l.lock,
                            layers,
                        },
                    ),
                    tool,
                ));
                if let Some(k) = key {
                    self.layer_cache.put_sbom(&k, &doc);
                }
                doc
            })
            .collect();
        let indexes: Vec<Vec<u8>> = index_docs
            .par_iter()
            .map(|x| {
                let members: Vec<crate::sbom::IndexMember> = x
                    .members
                    .iter()
                    .map(|&i| crate::sbom::IndexMember {
                        platform: image_docs[i].platform.clone(),
                        namespace: crate::sbom::image_namespace(
                            &image_docs[i].name,
                            &image_docs[i].digest,
                        ),
                        bytes: written[i].clone(),
                    })
                    .collect();
                crate::sbom::to_json(&crate::sbom::index_sbom_of(
                    &x.name, &x.digest, created, &members, tool,
                ))
            })
            .collect();
        let mut out: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
        for (d, bytes) in image_docs.iter().zip(written) {
            out.entry(d.repo.clone())
                .or_default()
                .push((d.file.clone(), bytes));
        }
        for (x, bytes) in index_docs.iter().zip(indexes) {
            out.entry(x.repo.clone())
                .or_default()
                .push((x.file.clone(), bytes));
        }
        out
    }

    /// The document cache's key for an image document: everything it is made from (the
    /// layers' keys cover their packages' .debs; the lock covers the rest of the fields).
    fn sbom_key(&self, d: &ImageDoc, created: &str) -> Option<String> {
        let mut key = layer_cache::KeyHasher::new("sbom-1");
        key.line("tool", layer_cache::tool_digest()?);
        key.line("name", &d.name);
        key.line("digest", &d.digest.to_string());
        key.line("created", created);
        key.line("lock", &self.l.lock_digest.to_string());
        for k in &d.layers {
            key.line("layer", self.keys.get(k)?);
        }
        Some(key.finish())
    }

    /// Write every layout (or archive) under `--out`, each one atomically; an output
    /// already up to date is left alone. Returns each output and whether it was written.
    fn write(&self, built: &Built) -> Result<Vec<(PathBuf, bool)>, BuildError> {
        let out = &self.opts.out;
        std::fs::create_dir_all(out)
            .map_err(|e| BuildError::Image(format!("{}: cannot create ({e})", out.display())))?;
        let mut paths = Vec::new();
        for (repo, layout, docker) in &built.layouts {
            let (path, r) = match self.opts.format {
                Format::Oci => {
                    let p = out.join(repo);
                    let r = layout.write_dir(&p);
                    (p, r)
                }
                Format::OciArchive => {
                    let p = out.join(format!("{repo}.tar"));
                    let r = layout.write_oci_archive(&p).map(|()| true);
                    (p, r)
                }
                Format::DockerArchive => {
                    let p = out.join(format!("{repo}.docker.tar"));
                    let r = layout.write_docker_archive(&p, docker).map(|()| true);
                    (p, r)
                }
            };
            let changed = r.map_err(|e| BuildError::Image(format!("{}: {e}", path.display())))?;
            let sbom_dir = match &self.opts.sbom_dir {
                Some(d) => d.join(repo),
                None => out.join(format!("{repo}.spdx")),
            };
            let sbom_changed = write_dir_atomically(
                &sbom_dir,
                built.sboms.get(repo).map(Vec::as_slice).unwrap_or(&[]),
            )?;
            paths.push((path, changed || sbom_changed));
        }
        Ok(paths)
    }
}

/// Replace `dir` with a directory holding exactly `files`: written into a sibling temp
/// directory first, so a failure leaves the old one intact. A directory already holding
/// exactly those files is left alone; returns whether anything was written.
fn write_dir_atomically(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<bool, BuildError> {
    let err =
        |e: std::io::Error| BuildError::Image(format!("{}: cannot write ({e})", dir.display()));
    let same = std::fs::read_dir(dir).is_ok_and(|d| d.count() == files.len())
        && files
            .iter()
            .all(|(name, bytes)| std::fs::read(dir.join(name)).is_ok_and(|b| b == *bytes));
    if same {
        return Ok(false);
    }
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(err)?;
    let staging = tempfile::Builder::new()
        .prefix(".debless-sbom-")
        .tempdir_in(parent)
        .map_err(err)?;
    for (name, bytes) in files {
        std::fs::write(staging.path().join(name), bytes).map_err(err)?;
    }
    // The same swap as a layout's: the old directory comes back if the rename fails.
    oci::replace_dir(staging.path(), dir, dir.exists())
        .map_err(|e| BuildError::Image(e.to_string()))?;
    // Renamed into place: nothing left for the guard to delete.
    let _ = staging.keep();
    Ok(true)
}

/// Hand memory freed by the last layer back to the system. glibc keeps freed heap in
/// per-thread arenas, so one big layer read on one thread and the next on another would
/// otherwise both count against the build's peak.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it touches nothing live.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A stable description of an entry's content and metadata.
fn fingerprint(e: &Entry) -> (String, String) {
    let what = match &e.kind {
        EntryKind::Dir => "dir".to_owned(),
        EntryKind::File { data, link_group } => format!(
            "file sha256:{} link:{}",
            Digest::of(data).hex(),
            link_group.as_deref().unwrap_or("-")
        ),
        EntryKind::Symlink { target } => format!("symlink {target}"),
    };
    (
        e.path.clone(),
        format!(
            "{what} mode:{:o} owner:{}:{} mtime:{}",
            e.mode, e.uid, e.gid, e.mtime
        ),
    )
}

fn describe(k: &LayerKey) -> String {
    match k {
        LayerKey::Level { arch, rule } => format!("layer of rule {rule} ({arch})"),
        LayerKey::Variant {
            arch,
            image,
            variant,
        } => format!("layer of variant {variant} on {image} ({arch})"),
    }
}

/// `--check`: the two builds must agree on every layer and manifest.
fn compare(a: &Built, b: &Built, ta: usize, tb: usize) -> Result<(), BuildError> {
    for (k, la) in &a.layers {
        let Some(lb) = b.layers.get(k) else {
            return Err(BuildError::NotReproducible(format!(
                "{} exists only in the {ta}-thread build",
                describe(k)
            )));
        };
        let (la, lb) = (&la.info, &lb.info);
        if la.digest != lb.digest || la.diff_id != lb.diff_id {
            let (ea, eb) = (&a.listings[k], &b.listings[k]);
            let first = ea
                .iter()
                .zip(eb.iter())
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("first differing file: /{} ({} vs {})", x.0, x.1, y.1))
                .unwrap_or_else(|| {
                    if ea.len() != eb.len() {
                        format!("entry counts differ: {} vs {}", ea.len(), eb.len())
                    } else {
                        "the entries agree, so the tar or compressor output differs".to_owned()
                    }
                });
            return Err(BuildError::NotReproducible(format!(
                "not reproducible: {} is {} with {ta} threads but {} with {tb}; {first}",
                describe(k),
                la.digest,
                lb.digest
            )));
        }
    }
    for (repo, docs) in &a.sboms {
        let other = b.sboms.get(repo);
        for (name, bytes) in docs {
            let same = other
                .and_then(|o| o.iter().find(|(n, _)| n == name))
                .is_some_and(|(_, b)| b == bytes);
            if !same {
                return Err(BuildError::NotReproducible(format!(
                    "not reproducible: the SPDX document {repo}.spdx/{name} differs between {ta} and {tb} threads"
                )));
            }
        }
    }
    for (x, y) in a.tags.iter().zip(&b.tags) {
        if x.digest != y.digest {
            return Err(BuildError::NotReproducible(format!(
                "not reproducible: {}:{}-{} manifest is {} with {ta} threads but {} with {tb} (its layers agree: the config or manifest differs)",
                x.image, x.tag, x.arch, x.digest, y.digest
            )));
        }
    }
    Ok(())
}

/// The default output directory of a project.
pub fn default_out(project: &Path) -> PathBuf {
    project.join("out")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{LayerInfo, write_layer};
    use std::sync::Arc;

    fn built(content: &[u8]) -> Built {
        let entries = vec![
            Entry::dir("etc", 0, "t"),
            Entry {
                path: "etc/a".into(),
                kind: EntryKind::File {
                    data: Arc::new(b"same".to_vec()),
                    link_group: None,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                origin: "t".into(),
            },
            Entry {
                path: "etc/b".into(),
                kind: EntryKind::File {
                    data: Arc::new(content.to_vec()),
                    link_group: None,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                origin: "t".into(),
            },
        ];
        let key = LayerKey::Level {
            arch: Arch::Amd64,
            rule: "static".into(),
        };
        let layer = write_layer(&entries, Compression::Gzip, 0).unwrap();
        let info = LayerInfo {
            digest: layer.digest,
            diff_id: layer.diff_id,
            size: layer.size,
            tar_size: layer.tar_size,
            compression: layer.compression,
        };
        Built {
            sboms: BTreeMap::new(),
            made: 1,
            layers: BTreeMap::from([(
                key.clone(),
                BuiltLayer {
                    info,
                    packages: BTreeMap::new(),
                },
            )]),
            listings: BTreeMap::from([(key, entries.iter().map(fingerprint).collect())]),
            tags: Vec::new(),
            layouts: Vec::new(),
        }
    }

    #[test]
    fn check_names_the_first_differing_layer_and_file() {
        assert!(compare(&built(b"x"), &built(b"x"), 2, 1).is_ok());
        let e = compare(&built(b"x"), &built(b"y"), 2, 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("not reproducible: layer of rule static (amd64) is sha256:")
                && e.contains("with 2 threads")
                && e.contains("first differing file: /etc/b (file sha256:"),
            "{e}"
        );
    }
}
