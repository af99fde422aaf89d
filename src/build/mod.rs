//! `debless build` and `debless fetch`: lock + rules -> .debs in the cache -> selected
//! entries -> one deterministic layer per rule level -> OCI layouts or archives.
//!
//! The pipe, one file per step:
//!
//! | file | step |
//! |---|---|
//! | `plan.rs` | lock + rules -> every layer and image, as data, before any I/O |
//! | `debs.rs` | the .debs the plan needs, fetched into the cache |
//! | `walk.rs` | each architecture's layer tree, depth first: read, assemble, store |
//! | `read.rs` | one package's selected entries for one layer |
//! | `tarball.rs` | one upstream tarball's selected entries for one layer |
//! | `add.rs` | host files, directories and tarballs of `[[add]]` and `--add` |
//! | `generators.rs`, `generators_certs.rs` | the files no package ships |
//! | `layer_cache.rs` | finished layers (and SPDX documents) found again by their inputs |
//! | `registry_cache.rs` | the same, shared by machines through a registry (`--cache-registry`) |
//! | `sbom.rs` | each layer's packages as the SPDX documents list them |
//! | `images.rs` | configs, manifests, indexes, SPDX documents, report rows |
//! | `destinations.rs` | every output path, checked before any work: no clash, nothing not ours |
//! | `output.rs` | layouts, archives and SPDX directories, written atomically |
//! | `provenance.rs` | per manifest and index, the unsigned in-toto/SLSA statement of what made it |
//! | `check.rs` | `--check`: two builds compared |
//! | `rebuild.rs` | `debless verify --rebuild`: a build from a provenance, compared with the registry's |
//! | `assemble.rs` | `debless index`: multi-arch indexes in a registry from shards' manifests |
//! | `prune.rs` | `debless cache`: the cache's size by kind, and pruning it by age and by locks |
//! | `error.rs` | why a build failed |

mod add;
mod assemble;
mod check;
mod debs;
mod destinations;
mod error;
mod generators;
mod generators_certs;
mod images;
mod layer_cache;
mod output;
pub mod plan;
mod previous;
mod provenance;
pub mod prune;
mod read;
pub mod rebuild;
mod registry_cache;
mod sbom;
mod tarball;
pub mod template;
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::digest::Digest;
use crate::fetch::cache::Cache;
use crate::fetch::debs::FetchReport;
use crate::fetch::mirror::Mirror;
use crate::layer::Compression;
use crate::rules::{AddRule, Kind, Rule, RuleConfig, RuleSet};
use crate::sign::provenance::InputFile;
use crate::snapshot::lock::Lock;
use layer_cache::LayerCache;
use plan::{LayerKey, Plan};

pub use add::AddError;
pub use assemble::{AssembleOptions, AssembledTag, assemble};
pub use error::BuildError;
pub use layer_cache::LayerCacheError;
pub use previous::TagChanges;
pub use read::PackageError;
pub use registry_cache::{RegistryCache, RegistryCacheReport};
pub use tarball::TarballError;

/// How images are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    /// An OCI image layout directory per image: `out/<image>-<distro>/`.
    Oci,
    /// A tar of that layout: `out/<image>-<distro>.tar`.
    OciArchive,
    /// A `docker load` tarball: `out/<image>-<distro>.docker.tar`.
    DockerArchive,
}

/// A `--format` that is none of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}; use oci, oci-archive or docker-archive")]
pub struct UnknownFormat(pub String);

impl Format {
    /// The file name suffix of an archive format (`tar`, `docker.tar`); none for a layout.
    pub fn archive_suffix(self) -> Option<&'static str> {
        match self {
            Format::Oci => None,
            Format::OciArchive => Some("tar"),
            Format::DockerArchive => Some("docker.tar"),
        }
    }
}

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s {
            "oci" => Ok(Format::Oci),
            "oci-archive" => Ok(Format::OciArchive),
            "docker-archive" => Ok(Format::DockerArchive),
            _ => Err(UnknownFormat(s.to_owned())),
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
    /// Read the lock from here instead of `snapshots/<distro>.lock` (it must be a lock of
    /// `distro`).
    pub lock: Option<PathBuf>,
    /// Images (rule names); empty = every image of the distro's family (those under
    /// `rules/extra/` are built when named).
    pub images: Vec<String>,
    /// Tags (`latest` and variant names); empty = `latest` plus every variant.
    pub variants: Vec<String>,
    /// Architectures; empty = all the lock has.
    pub arches: Vec<Arch>,
    /// `--shard I/N`: only this slice of the images × tags × architectures selected.
    pub shard: Option<plan::Shard>,
    /// `--cache-registry`: a repository used as a second layer cache, after `cache_dir`'s.
    pub cache_registry: Option<RegistryCache>,
    /// Output directory.
    pub out: PathBuf,
    /// Output formats, each written for every image (at least one; duplicates ignored).
    pub formats: Vec<Format>,
    /// The architecture whose image a docker archive also names `<image>:<tag>` (besides
    /// `<tag>-<arch>` for each): this one where the image is built for it, else the
    /// host's, else the first built.
    pub archive_arch: Option<Arch>,
    /// Layer compression.
    pub compression: Compression,
    /// Build twice (different thread counts) and compare.
    pub check: bool,
    /// Make every layer and SPDX document from the .debs, never from the layer cache (as
    /// `--check` does, once): what a rebuild that is to prove something must do.
    pub fresh: bool,
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
    /// `SOURCE_DATE_EPOCH`: replaces every time derived from the layers' content (mtimes
    /// of generated files, `created`) and clamps package mtimes.
    pub source_date_epoch: Option<i64>,
    /// `org.opencontainers.image.source`, if given.
    pub source_url: Option<String>,
    /// No progress output.
    pub quiet: bool,
    /// `--add`: host files, directories and tarballs put in one more layer on top of
    /// every tag built.
    pub add: Vec<AddRule>,
    /// `--entrypoint`, `--env`...: runtime settings applied on top of every tag's.
    pub config: RuleConfig,
}

/// The file name messages give the command line's `--add` layer.
const CLI_ADD: &str = "command line --add";

/// The rule the command line's `--add` files make: no packages, only files.
fn cli_add_rule(add: &[AddRule]) -> Option<Rule> {
    if add.is_empty() {
        return None;
    }
    let spec: Vec<String> = add.iter().map(|a| format!("{a:?}")).collect();
    Some(Rule {
        description: "files added with --add".to_owned(),
        parent: None,
        distros: Vec::new(),
        architectures: None,
        exclude: Vec::new(),
        packages: BTreeMap::new(),
        tarballs: BTreeMap::new(),
        config: RuleConfig::default(),
        generate: crate::rules::Generate::default(),
        add: add.to_vec(),
        combines: Vec::new(),
        name: "--add".to_owned(),
        file: PathBuf::from(CLI_ADD),
        kind: Kind::Image,
        extra: false,
        // The declarations; the content they read is a key line of its own.
        digest: Digest::of(spec.join("\n").as_bytes()).to_string(),
    })
}

/// Per image, tag and architecture: what was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltTag {
    /// Image name.
    pub image: String,
    /// The repository (layout, archive and registry name) it went into: `<image>-<distro>`.
    pub repository: String,
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

/// Per image and tag: the multi-architecture index written (what `FROM …@sha256:` pins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltIndex {
    /// Image name.
    pub image: String,
    /// `<image>-<distro>`.
    pub repository: String,
    /// Tag.
    pub tag: String,
    /// Index digest.
    pub digest: Digest,
    /// Its members' architectures (a partial build's kept members too), in index order.
    pub arches: Vec<Arch>,
}

/// Per image repository: where a build put it and its documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltRepository {
    /// `<image>-<distro>`.
    pub name: String,
    /// Image name.
    pub image: String,
    /// Each output written (or found up to date), by format.
    pub outputs: BTreeMap<Format, PathBuf>,
    /// The SPDX directory: `<tag>.spdx.json` per index, `<tag>-<arch>.spdx.json` per
    /// manifest.
    pub sbom_dir: PathBuf,
    /// The provenance directory: `<tag>.intoto.json` per manifest and index.
    pub provenance_dir: PathBuf,
}

/// What a build did.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The fetch step.
    pub fetch: FetchReport,
    /// Every image/tag/arch written.
    pub tags: Vec<BuiltTag>,
    /// Every image/tag index written.
    pub indexes: Vec<BuiltIndex>,
    /// Every image repository, in name order.
    pub repositories: Vec<BuiltRepository>,
    /// Where each image went (one path per image and format).
    pub outputs: Vec<PathBuf>,
    /// Those of `outputs` that are OCI layouts (`Format::Oci`): what `--push` pushes.
    pub layouts: Vec<PathBuf>,
    /// Those of `outputs` that already held exactly this build, so were left alone.
    pub up_to_date: Vec<PathBuf>,
    /// Distinct layers the images use.
    pub layers: usize,
    /// Of those, how many this build read and compressed (the rest came from the layer
    /// cache, unchanged).
    pub layers_made: usize,
    /// Of those, how many more than one image uses (each made once all the same).
    pub layers_shared: usize,
    /// By output (`base-debian13`), how its tags changed against what was there.
    pub tag_changes: BTreeMap<String, TagChanges>,
    /// What `--cache-registry` did, when given.
    pub registry_cache: Option<RegistryCacheReport>,
}

/// The project files a build reads: the lock and the rules (and the manifest, for the
/// provenance).
struct Loaded {
    lock: Lock,
    /// `snapshots/<distro>.lock`, as messages name it.
    lock_name: String,
    /// The lock file's bytes, which the provenance carries.
    lock_bytes: Vec<u8>,
    /// `snapshots/<distro>.toml`, if there is one.
    manifest: Option<InputFile>,
    rules: RuleSet,
    /// The layer of the command line's `--add`, if any.
    cli_add: Option<Rule>,
}

/// Read the lock and the rules `opts` name.
fn load(opts: &BuildOptions) -> Result<Loaded, BuildError> {
    let mut l = load_project(&opts.project, &opts.distro, opts.lock.as_deref())?;
    l.cli_add = cli_add_rule(&opts.add);
    Ok(l)
}

/// Read `distro`'s lock (`lock`, else `snapshots/<distro>.lock`) and the rules of
/// `project`.
fn load_project(project: &Path, distro: &str, lock: Option<&Path>) -> Result<Loaded, BuildError> {
    let (lock_path, lock_name) = match lock {
        Some(path) => (path.to_path_buf(), path.display().to_string()),
        None => (
            project.join("snapshots").join(format!("{distro}.lock")),
            format!("snapshots/{distro}.lock"),
        ),
    };
    // The bytes are the provenance's copy of the lock.
    let lock_bytes = std::fs::read(&lock_path).map_err(|source| BuildError::NoLock {
        path: lock_path.clone(),
        distro: distro.to_owned(),
        source,
    })?;
    let lock = Lock::read(&lock_path)?;
    if lock.distro != distro {
        return Err(BuildError::LockDistro {
            path: lock_path,
            locked: lock.distro,
            distro: distro.to_owned(),
        });
    }
    let rules = RuleSet::load(&project.join("rules"))?;
    let manifest_name = format!("snapshots/{distro}.toml");
    let manifest_path = project.join(&manifest_name);
    let manifest = match std::fs::read(&manifest_path) {
        Ok(bytes) => Some(InputFile {
            name: manifest_name,
            bytes,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(BuildError::Io {
                path: manifest_path,
                what: "cannot read",
                source,
            });
        }
    };
    Ok(Loaded {
        lock,
        lock_name,
        lock_bytes,
        manifest,
        rules,
        cli_add: None,
    })
}

impl Loaded {
    /// The plan for the images, variants and architectures `opts` selects.
    fn plan(&self, opts: &BuildOptions) -> Result<Plan<'_>, BuildError> {
        let mut p = plan::plan(
            &self.lock,
            &self.lock_name,
            &self.rules,
            &opts.images,
            &opts.variants,
            &opts.arches,
        )?;
        if let Some(shard) = opts.shard {
            p.shard(shard);
        }
        if let Some(rule) = &self.cli_add {
            p.add_on_top(rule);
        }
        p.override_settings(&opts.config);
        Ok(p)
    }
}

/// `debless fetch`: put every .deb the selection needs into the cache.
pub fn fetch(opts: &BuildOptions) -> Result<FetchReport, BuildError> {
    let l = load(opts)?;
    let p = l.plan(opts)?;
    debs::fetch_packages(
        opts,
        &l.lock,
        &p.packages(),
        &p.tarballs_of(p.layers.keys()),
    )
}

/// `debless build`.
pub fn build(opts: &BuildOptions) -> Result<BuildReport, BuildError> {
    let l = load(opts)?;
    let p = l.plan(opts)?;
    // Every output path is known from the plan: a clash, or something at one of them that
    // debless did not write, fails now, before a package is fetched.
    let repos: std::collections::BTreeSet<String> = p
        .images
        .iter()
        .map(|ip| destinations::repository_name(&ip.image, &l.lock.distro))
        .collect();
    let repos: Vec<String> = repos.into_iter().collect();
    destinations::check(&destinations::destinations(opts, &repos), opts)?;
    // Times in a layer come from what the layer is made of (see `walk`), never from the
    // lock as a whole; SOURCE_DATE_EPOCH, when set, replaces them all.
    let source_date_epoch = opts.source_date_epoch.map(|e| e.max(0) as u64);
    // Host files are read now: their content is part of the layer cache's keys.
    let added = add::read_all(&p, l.lock.merged_usr)?;
    let tool = layer_cache::tool_digest();
    let keys = match tool {
        Some(tool) => layer_cache::keys(
            &p,
            &layer_cache::KeyInputs {
                tool,
                compression: opts.compression,
                source_date_epoch,
                merged_usr: l.lock.merged_usr,
                whole_packages: opts.whole_packages,
                defaults: &l.rules.defaults_digest,
                added: &added,
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
        source_date_epoch,
        added,
        // For the provenance's URLs only; a build that fetches nothing (--offline) with a
        // broken mirror setting names its .debs by package URL instead.
        mirrors: debs::mirrors(opts, &l.lock).unwrap_or_default(),
    };
    ctx.layer_cache.sweep();
    ctx.refuse_partial_archives()?;
    // `--check` makes every layer twice from the packages, never from the layer cache;
    // `fresh` once.
    let mut cached = if opts.check || opts.fresh {
        BTreeMap::new()
    } else {
        ctx.cached_layers()
    };
    let registry = ctx.open_registry_cache()?;
    let mut registry_report = registry.as_ref().map(|r| RegistryCacheReport {
        repository: r.name.clone(),
        ..RegistryCacheReport::default()
    });
    let mut lacking = BTreeSet::new();
    if let (Some(repo), Some(report)) = (&registry, &mut registry_report) {
        lacking = ctx.registry_lacks(repo, &cached);
        let found = ctx.registry_layers(repo, &cached, report);
        cached.extend(found);
    }
    let from_caches: BTreeSet<LayerKey> = cached.keys().cloned().collect();
    // Only the .debs of the layers to make (and of the layers below them) are needed.
    let needed = ctx.needed(&cached);
    let fetched = debs::fetch_packages(
        opts,
        &l.lock,
        &p.packages_of(needed.iter().copied()),
        &p.tarballs_of(needed.iter().copied()),
    )?;
    let first = ctx.run(opts.jobs.max(1), cached)?;
    if opts.check {
        let other = if opts.jobs.max(1) == 1 { 2 } else { 1 };
        let second = ctx.run(other, BTreeMap::new())?;
        check::compare(&first, &second, opts.jobs.max(1), other)?;
    }
    if let (Some(repo), Some(report)) = (&registry, &mut registry_report) {
        let to_push: BTreeSet<&LayerKey> = first
            .layers
            .keys()
            .filter(|k| !from_caches.contains(*k) || lacking.contains(*k))
            .collect();
        ctx.push_layers(repo, &to_push, &first.layers, report);
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
    let repositories = first
        .images
        .repositories
        .iter()
        .map(|repo| BuiltRepository {
            name: repo.name.clone(),
            image: repo.image.clone(),
            outputs: destinations::formats(opts)
                .into_iter()
                .map(|f| (f, destinations::path_of(opts, &repo.name, f)))
                .collect(),
            sbom_dir: destinations::sbom_dir_of(opts, &repo.name),
            provenance_dir: destinations::provenance_dir_of(opts, &repo.name),
        })
        .collect();
    Ok(BuildReport {
        fetch: fetched,
        tags: first.images.tags.clone(),
        indexes: first.images.indexes.clone(),
        repositories,
        outputs: written.iter().map(|w| w.path.clone()).collect(),
        layouts: written
            .iter()
            .filter(|w| w.format == Format::Oci)
            .map(|w| w.path.clone())
            .collect(),
        up_to_date: written
            .iter()
            .filter(|w| !w.changed)
            .map(|w| w.path.clone())
            .collect(),
        layers: first.layers.len(),
        layers_made: first.made,
        layers_shared: shared,
        tag_changes: first.images.changes.clone(),
        registry_cache: registry_report,
    })
}

/// One build's context: what every step reads, worked out once.
struct Ctx<'a> {
    opts: &'a BuildOptions,
    l: &'a Loaded,
    plan: &'a Plan<'a>,
    cache: Cache,
    layer_cache: LayerCache,
    /// Each layer's layer-cache key (empty: caching is off).
    keys: BTreeMap<LayerKey, String>,
    /// By rule file (or `command line --add`), the host files its layer adds.
    added: BTreeMap<PathBuf, add::Added>,
    /// `SOURCE_DATE_EPOCH`: every mtime and `created`, when set. Otherwise each layer's
    /// times derive from its own content.
    source_date_epoch: Option<u64>,
    /// The mirrors, in the order a fetch tries them (the provenance names the first).
    mirrors: Vec<Mirror>,
}

/// The default output directory of a project.
pub fn default_out(project: &Path) -> PathBuf {
    project.join("out")
}
