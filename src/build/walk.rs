//! Making the layers: each architecture's layer tree is walked depth first, and each layer
//! is read, assembled on the union of the layers below it, hashed for the SBOM and streamed
//! into the blob store before its children, so memory holds only the current branch's
//! files. Layers the layer cache has are taken as they are.

use std::collections::{BTreeMap, BTreeSet};

use super::check::{Listings, fingerprint_all};
use super::generators;
use super::images::Images;
use super::layer_cache::BuiltLayer;
use super::plan::{LayerKey, LayerPlan};
use super::read::PackageRead;
use super::sbom::layer_packages;
use super::tarball::TarballRead;
use super::{BuildError, Ctx};
use crate::deb::{MergedLinks, Tree};
use crate::layer::Entry;
use crate::progress::{Phase, Unit};

/// One build's results: the layers are in the blob store, the rest in memory until written.
pub(super) struct Built {
    /// Every layer of the plan.
    pub layers: BTreeMap<LayerKey, BuiltLayer>,
    /// How many layers this build read and compressed (the rest came from the layer cache).
    pub made: usize,
    /// `--check`: what each layer made holds, to explain a difference.
    pub listings: Listings,
    /// The images on those layers.
    pub images: Images,
}

/// What a layer is assembled on top of: the union of the layers below, the merged-/usr
/// links they made, and the generators they switched on.
#[derive(Clone)]
struct Below {
    tree: Tree,
    links: MergedLinks,
    generators: generators::Inherited,
    /// The time of the layers so far (see [`Ctx::layer_time`]).
    time: u64,
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
    listings: Listings,
    /// What the user sees: one unit per layer assembled.
    phase: &'w Phase,
}

impl Ctx<'_> {
    /// Make the layers and images on `threads` threads, taking the `cached` layers as
    /// they are.
    pub(super) fn run(
        &self,
        threads: usize,
        cached: BTreeMap<LayerKey, BuiltLayer>,
    ) -> Result<Built, BuildError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|source| BuildError::Threads { threads, source })?;
        pool.install(|| self.run_in_pool(cached, !(self.opts.check || self.opts.fresh)))
    }

    /// Every layer of the plan the layer cache has.
    pub(super) fn cached_layers(&self) -> BTreeMap<LayerKey, BuiltLayer> {
        self.keys
            .iter()
            .filter_map(|(k, key)| Some((k.clone(), self.layer_cache.get(key)?)))
            .collect()
    }

    /// The layers to assemble: those not `cached`, and every layer below one of them
    /// (whose files it sees), cached or not.
    pub(super) fn needed(&self, cached: &BTreeMap<LayerKey, BuiltLayer>) -> BTreeSet<&LayerKey> {
        self.plan
            .with_layers_below(self.plan.layers.keys().filter(|k| !cached.contains_key(*k)))
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
        let phase = Phase::start("layers", needed.len() as u64, Unit::Items, self.opts.quiet);
        for (k, layer) in layers.iter() {
            phase.detail(|| format!("{k}: {} from the layer cache", layer.info.digest));
        }
        let mut walk = Walk {
            children: &children,
            make: &make,
            layers: &mut layers,
            listings: BTreeMap::new(),
            phase: &phase,
        };
        let root = Below {
            tree: Tree::new(self.l.lock.merged_usr),
            links: MergedLinks::default(),
            generators: generators::Inherited::default(),
            time: 0,
        };
        for lp in children.get(&None).into_iter().flatten() {
            self.visit(lp, &root, &mut walk)?;
        }
        let listings = walk.listings;
        phase.finish();
        let images = self.images(&layers, use_cache)?;
        Ok(Built {
            made: make.len(),
            layers,
            listings,
            images,
        })
    }

    /// Assemble `lp` on `below`, store it if it is to be made, then do its children.
    fn visit(
        &self,
        lp: &LayerPlan,
        below: &Below,
        walk: &mut Walk<'_, '_>,
    ) -> Result<(), BuildError> {
        walk.phase.message(&lp.key.to_string());
        let reads = self.read_layer(lp)?;
        let tarballs = self.read_tarballs(lp)?;
        // The decompressors' buffers are gone; the files read stay.
        release_freed_memory();
        let mut state = below.clone();
        state.time = self.layer_time(&reads, &tarballs, below);
        let entries = self.assemble(lp, &mut state, &reads, &tarballs)?;
        if walk.make.contains(&lp.key) {
            let packages = layer_packages(lp, &reads, &tarballs, &entries);
            drop(reads);
            drop(tarballs);
            if self.opts.check {
                walk.listings
                    .insert(lp.key.clone(), fingerprint_all(&entries));
            }
            let built = self
                .layer_cache
                .put(
                    self.keys.get(&lp.key).map(String::as_str),
                    &entries,
                    self.opts.compression,
                    state.time,
                    packages,
                )
                .map_err(|source| BuildError::Store {
                    layer: lp.key.clone(),
                    source: Box::new(source),
                })?;
            walk.phase.detail(|| {
                format!(
                    "{}: made {} ({}, {} compressed)",
                    lp.key,
                    built.info.digest,
                    crate::text::bytes(built.info.tar_size),
                    crate::text::bytes(built.info.size)
                )
            });
            walk.layers.insert(lp.key.clone(), built);
        }
        walk.phase.inc(1);
        drop(entries);
        release_freed_memory();
        if let Some(kids) = walk.children.get(&Some(&lp.key)) {
            for child in kids {
                self.visit(child, &state, walk)?;
            }
        }
        Ok(())
    }

    /// A layer's time: `SOURCE_DATE_EPOCH` when set, else the newest mtime among the
    /// files its packages ship and the layers below it have. It is a function of the
    /// layer's own inputs, so a lock re-pinned with a newer Release date but the same
    /// packages moves no byte; generated files, directories the tree creates and the tar's
    /// mtime clamp all use it.
    /// An upstream tarball's files count like a package's.
    fn layer_time(
        &self,
        reads: &[PackageRead<'_>],
        tarballs: &[TarballRead<'_>],
        below: &Below,
    ) -> u64 {
        if let Some(t) = self.source_date_epoch {
            return t;
        }
        reads
            .iter()
            .flat_map(|r| r.deb.entries.iter().map(|e| e.mtime))
            .chain(
                tarballs
                    .iter()
                    .flat_map(|t| t.entries.iter().map(|e| e.mtime)),
            )
            .fold(below.time, u64::max)
    }

    /// Merge `lp`'s packages and generated files on top of `below` (which becomes the
    /// union including `lp`) and return the layer's entries.
    fn assemble(
        &self,
        lp: &LayerPlan,
        below: &mut Below,
        reads: &[PackageRead<'_>],
        tarballs: &[TarballRead<'_>],
    ) -> Result<Vec<Entry>, BuildError> {
        // Added host files carry the layer's time, not the host's: the same bytes make the
        // same layer on every machine and checkout.
        let time = below.time;
        let added = self
            .added
            .get(&lp.rule.file)
            .into_iter()
            .flat_map(|a| a.entries.iter().cloned())
            .map(|mut e| {
                e.mtime = time;
                e
            });
        let mut candidates: Vec<Entry> = reads
            .iter()
            .flat_map(|r| r.deb.entries.iter().cloned())
            .chain(tarballs.iter().flat_map(|t| t.entries.iter().cloned()))
            .chain(added)
            .collect();
        below.generators = generators::run(
            &generators::LayerInput {
                plan: lp,
                lock: &self.l.lock,
                lower: &below.tree,
                packages: reads,
                mtime: below.time,
            },
            below.generators,
            &mut candidates,
        )
        .map_err(|source| BuildError::Generate {
            layer: lp.key.clone(),
            file: lp.rule.file.clone(),
            source,
        })?;
        if self.l.lock.merged_usr {
            candidates.extend(below.links.add_for(&candidates, below.time));
        }
        below
            .tree
            .add_layer(candidates, below.time)
            .map_err(|source| BuildError::Merge {
                layer: lp.key.clone(),
                file: lp.rule.file.clone(),
                source: Box::new(source),
            })
    }
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
