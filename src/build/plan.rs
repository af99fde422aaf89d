//! What to build, worked out from the lock and the rules alone: for every image and
//! architecture, its layers (one per rule level, parents first) and the packages each
//! layer takes, and for every tag the variant layers and runtime settings on top.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use crate::arch::{Arch, join};
use crate::rules::{
    ImageSettings, Kind, PackageRule, Rule, RuleConfig, RuleError, RuleSet, TarballRule,
};
use crate::snapshot::lock::{Lock, LockedPackage, LockedTarball};

pub use shard::{BadShard, Shard};

/// Identifies one layer; equal keys are the same layer by construction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LayerKey {
    /// The layer a rule level adds on top of its parent's layers.
    Level {
        /// Architecture.
        arch: Arch,
        /// The rule whose level it is.
        rule: String,
    },
    /// A variant's additions on top of one image.
    Variant {
        /// Architecture.
        arch: Arch,
        /// The image below it.
        image: String,
        /// The (plain) variant.
        variant: String,
    },
    /// The files `debless build --add` puts on top of a tag's layers.
    Added {
        /// The tag's top layer, which this one sits on.
        below: Box<LayerKey>,
    },
}

impl LayerKey {
    /// The architecture the layer is for.
    pub fn arch(&self) -> Arch {
        match self {
            LayerKey::Level { arch, .. } | LayerKey::Variant { arch, .. } => *arch,
            LayerKey::Added { below } => below.arch(),
        }
    }
}

impl fmt::Display for LayerKey {
    /// How messages name the layer: `layer of rule base (amd64)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerKey::Level { arch, rule } => write!(f, "layer of rule {rule} ({arch})"),
            LayerKey::Variant {
                arch,
                image,
                variant,
            } => write!(f, "layer of variant {variant} on {image} ({arch})"),
            LayerKey::Added { below } => write!(f, "layer of --add on the {below}"),
        }
    }
}

/// One package going into one layer, with the rule that declares its files (if any).
#[derive(Debug, Clone)]
pub struct LayerPackage<'a> {
    /// The locked package.
    pub locked: &'a LockedPackage,
    /// The rule naming it as a root, and what it says; `None` = a dependency nobody names,
    /// which contributes everything but the global excludes.
    pub declared: Option<(&'a Rule, &'a PackageRule)>,
}

/// One upstream tarball going into one layer: the rule's declaration and the locked file.
#[derive(Debug, Clone)]
pub struct LayerTarball<'a> {
    /// Its name in the rule (`node`).
    pub name: &'a str,
    /// What the rule says about it.
    pub rule: &'a TarballRule,
    /// The file the lock pins for this architecture.
    pub locked: &'a LockedTarball,
}

/// One layer to make.
#[derive(Debug, Clone)]
pub struct LayerPlan<'a> {
    /// Its identity.
    pub key: LayerKey,
    /// The rule (or variant) that adds it.
    pub rule: &'a Rule,
    /// The layer below it (`None` for an image's first layer).
    pub below: Option<LayerKey>,
    /// Its packages, sorted by name.
    pub packages: Vec<LayerPackage<'a>>,
    /// Its upstream tarballs, sorted by name.
    pub tarballs: Vec<LayerTarball<'a>>,
}

/// One tag of an image for one architecture.
#[derive(Debug, Clone)]
pub struct TagPlan {
    /// `latest`, `nonroot`, `debug`, `debug-nonroot`...
    pub tag: String,
    /// The image's layers and then the variant layers, bottom first.
    pub layers: Vec<LayerKey>,
    /// Runtime settings.
    pub settings: ImageSettings,
}

/// One image for one architecture.
#[derive(Debug, Clone)]
pub struct ImagePlan {
    /// Image (rule) name.
    pub image: String,
    /// Architecture.
    pub arch: Arch,
    /// Its tags.
    pub tags: Vec<TagPlan>,
}

/// The whole build: every distinct layer once, and every image's tags.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// Layers by key.
    pub layers: BTreeMap<LayerKey, LayerPlan<'a>>,
    /// Images in (image, arch) order.
    pub images: Vec<ImagePlan>,
}

impl<'a> Plan<'a> {
    /// `tops` and every layer below each of them (whose files they stand on).
    pub fn with_layers_below<'p>(
        &'p self,
        tops: impl IntoIterator<Item = &'p LayerKey>,
    ) -> BTreeSet<&'p LayerKey> {
        let mut all = BTreeSet::new();
        for k in tops {
            let mut cur = Some(k);
            while let Some(c) = cur {
                if !all.insert(c) {
                    break;
                }
                cur = self.layers.get(c).and_then(|l| l.below.as_ref());
            }
        }
        all
    }

    /// Put a layer of `rule`'s `[[add]]` files (the command line's `--add`) on top of every
    /// tag. Tags with the same top layer (`latest` and `nonroot`) share it.
    pub fn add_on_top(&mut self, rule: &'a Rule) {
        for image in &mut self.images {
            for tag in &mut image.tags {
                let Some(top) = tag.layers.last().cloned() else {
                    continue;
                };
                let key = LayerKey::Added {
                    below: Box::new(top.clone()),
                };
                self.layers.entry(key.clone()).or_insert_with(|| LayerPlan {
                    key: key.clone(),
                    rule,
                    below: Some(top),
                    packages: Vec::new(),
                    tarballs: Vec::new(),
                });
                tag.layers.push(key);
            }
        }
    }

    /// Apply the command line's runtime settings on top of every tag's.
    pub fn override_settings(&mut self, config: &RuleConfig) {
        for tag in self.images.iter_mut().flat_map(|i| &mut i.tags) {
            tag.settings.apply(config);
        }
    }

    /// Every locked package some layer takes (each once per architecture).
    pub fn packages(&self) -> Vec<&LockedPackage> {
        self.packages_of(self.layers.keys())
    }

    /// Every locked tarball the layers `keys` take (each once).
    pub fn tarballs_of<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k LayerKey>,
    ) -> Vec<&LockedTarball> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for k in keys {
            for t in &self.layers[k].tarballs {
                let l = t.locked;
                if seen.insert((l.arch, &l.name, &l.version)) {
                    out.push(l);
                }
            }
        }
        out
    }

    /// Every locked package the layers `keys` take (each once per architecture).
    pub fn packages_of<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k LayerKey>,
    ) -> Vec<&LockedPackage> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for k in keys {
            for p in &self.layers[k].packages {
                if seen.insert((&p.locked.arch, &p.locked.name)) {
                    out.push(p.locked);
                }
            }
        }
        out
    }
}

/// Why the rules and the lock do not make a plan: an unknown name, or a lock older than
/// the rules. Each says which file to fix or what to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// An unknown rule, or rules that do not fit together.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// `--arch` names an architecture the lock was not pinned for.
    #[error(
        "{lock} has no {arch} packages (it has {}); run `debless pin --distro {distro} --arch {arch}`",
        join(.pinned)
    )]
    ArchNotPinned {
        /// The lock's name (`snapshots/debian13.lock`).
        lock: String,
        /// The architecture asked for.
        arch: Arch,
        /// The architectures the lock has.
        pinned: Vec<Arch>,
        /// The distro.
        distro: String,
    },
    /// An image named on the command line is no rule at all.
    #[error("no image named {name:?} for {distro}; images: {}", .images.join(", "))]
    UnknownImage {
        /// The name given.
        name: String,
        /// The distro being built.
        distro: String,
        /// The images the rules define for it.
        images: Vec<String>,
    },
    /// An image named on the command line is built for none of the architectures asked.
    #[error(
        "image {name} is not built for {} (its architectures: {}); pass --arch with one of those",
        join(.asked),
        join(.theirs)
    )]
    NotBuiltFor {
        /// The image.
        name: String,
        /// The architectures asked for.
        asked: Vec<Arch>,
        /// The architectures its rules name.
        theirs: Vec<Arch>,
    },
    /// A tag named with `--variant` is neither `latest` nor a variant rule.
    #[error("no variant named {name:?} for {distro}; variants: latest, {}", .variants.join(", "))]
    UnknownVariant {
        /// The name given.
        name: String,
        /// The distro being built.
        distro: String,
        /// The variants the rules define for it.
        variants: Vec<String>,
    },
    /// An image named on the command line is a variant.
    #[error("{name} is a variant; build an image with --variant {name}")]
    NotAnImage {
        /// The name given.
        name: String,
    },
    /// An image named on the command line is not defined for the distro.
    #[error(
        "{}: image {image} is not defined for {distro} (its distros: {})",
        file.display(),
        .distros.join(", ")
    )]
    ImageNotForDistro {
        /// The image's rule file.
        file: PathBuf,
        /// The image.
        image: String,
        /// The distro being built.
        distro: String,
        /// The distros the rule defines.
        distros: Vec<String>,
    },
    /// A variant named on the command line is not defined for the distro.
    #[error("{}: variant {variant} is not defined for {distro}", file.display())]
    VariantNotForDistro {
        /// The variant's rule file.
        file: PathBuf,
        /// The variant.
        variant: String,
        /// The distro being built.
        distro: String,
    },
    /// A rule with roots has no closure in the lock: the lock predates the rule.
    #[error(
        "{lock} has no {arch} packages for rule {rule} ({}); run `debless pin --distro {distro}` after changing rules",
        file.display()
    )]
    RuleNotPinned {
        /// The lock's name.
        lock: String,
        /// The architecture.
        arch: Arch,
        /// The rule.
        rule: String,
        /// Its file.
        file: PathBuf,
        /// The distro.
        distro: String,
    },
    /// A root a rule names is not in its locked closure: the lock predates the rule.
    #[error(
        "{} names {root}, which {lock} does not have for {arch} in rule {rule}; run `debless pin --distro {distro}` after changing rules",
        file.display()
    )]
    RootNotPinned {
        /// The rule's file.
        file: PathBuf,
        /// The root package.
        root: String,
        /// The lock's name.
        lock: String,
        /// The architecture.
        arch: Arch,
        /// The rule.
        rule: String,
        /// The distro.
        distro: String,
    },
    /// A package of a parent's closure is missing from its child's: the lock is stale.
    #[error(
        "{lock}: {package} ({arch}) is in rule {parent}'s closure but not in its child {child}'s; run `debless pin --distro {distro}`"
    )]
    NotInChild {
        /// The lock's name.
        lock: String,
        /// The package.
        package: String,
        /// The architecture.
        arch: Arch,
        /// The parent rule.
        parent: String,
        /// The child rule.
        child: String,
        /// The distro.
        distro: String,
    },
    /// An image under `rules/extra/` has nothing in the lock: it was pinned without
    /// `--extra`.
    #[error(
        "{lock} has nothing for rule {rule} ({}), an image outside the default family; run `debless pin --distro {distro} --extra`",
        file.display()
    )]
    ExtraNotPinned {
        /// The lock's name.
        lock: String,
        /// The rule.
        rule: String,
        /// Its file.
        file: PathBuf,
        /// The distro.
        distro: String,
    },
    /// A tarball a rule takes is not in the lock for an architecture, or at another URL:
    /// the lock predates the rule.
    #[error(
        "{}: tarball {tarball}: {why} in {lock}; run `debless pin --distro {distro} --extra`",
        file.display()
    )]
    TarballNotPinned {
        /// The rule's file.
        file: PathBuf,
        /// The tarball, its version and architecture (`node 22.11.0 (amd64)`).
        tarball: String,
        /// What does not match (`not pinned`, `pinned from another URL`...).
        why: String,
        /// The lock's name.
        lock: String,
        /// The distro.
        distro: String,
    },
    /// More than one of a combining variant's parts adds packages.
    #[error(
        "{}: only one of the combined variants may add packages",
        file.display()
    )]
    CombinedVariantsAddPackages {
        /// The combining variant's rule file.
        file: PathBuf,
    },
}

/// Work out the plan for `images` × `tags` × `arches` (empty = all the distro defines).
pub fn plan<'a>(
    lock: &'a Lock,
    lock_name: &str,
    rules: &'a RuleSet,
    images: &[String],
    tags: &[String],
    arches: &[Arch],
) -> Result<Plan<'a>, PlanError> {
    let distro = lock.distro.as_str();
    let arches: Vec<Arch> = if arches.is_empty() {
        lock.architectures.clone()
    } else {
        for a in arches {
            if !lock.architectures.contains(a) {
                return Err(PlanError::ArchNotPinned {
                    lock: lock_name.to_owned(),
                    arch: *a,
                    pinned: lock.architectures.clone(),
                    distro: distro.to_owned(),
                });
            }
        }
        arches.to_vec()
    };
    let image_rules: Vec<&Rule> = if images.is_empty() {
        rules.images_for(distro).collect()
    } else {
        let mut v = Vec::new();
        for name in images {
            let Ok(r) = rules.get(name) else {
                return Err(PlanError::UnknownImage {
                    name: name.clone(),
                    distro: distro.to_owned(),
                    images: rules.images_for(distro).map(|r| r.name.clone()).collect(),
                });
            };
            if r.kind != Kind::Image {
                return Err(PlanError::NotAnImage { name: name.clone() });
            }
            if !r.has_distro(distro) {
                return Err(PlanError::ImageNotForDistro {
                    file: r.file.clone(),
                    image: name.clone(),
                    distro: distro.to_owned(),
                    distros: r.distros.clone(),
                });
            }
            v.push(r);
        }
        v
    };
    let variant_names: Vec<String> = if tags.is_empty() {
        std::iter::once("latest".to_owned())
            .chain(rules.variants_for(distro).map(|r| r.name.clone()))
            .collect()
    } else {
        tags.to_vec()
    };
    let mut variants: Vec<(String, Vec<&Rule>)> = Vec::new();
    for v in &variant_names {
        if v == "latest" {
            variants.push((v.clone(), Vec::new()));
            continue;
        }
        if rules.get(v).map(|r| r.kind) != Ok(Kind::Variant) {
            return Err(PlanError::UnknownVariant {
                name: v.clone(),
                distro: distro.to_owned(),
                variants: rules.variants_for(distro).map(|r| r.name.clone()).collect(),
            });
        }
        let parts = rules.variant_parts(v)?;
        let r = rules.get(v)?;
        if !r.has_distro(distro) {
            return Err(PlanError::VariantNotForDistro {
                file: r.file.clone(),
                variant: v.clone(),
                distro: distro.to_owned(),
            });
        }
        variants.push((v.clone(), parts));
    }

    let mut out = Plan {
        layers: BTreeMap::new(),
        images: Vec::new(),
    };
    for &arch in &arches {
        let by_rule = closures(lock, arch);
        let empty = BTreeMap::new();
        let closure = |rule: &Rule| -> Result<&BTreeMap<&str, &LockedPackage>, PlanError> {
            if rule.kind == Kind::Variant && rule.roots(distro, arch).is_empty() {
                // Config-only variants (like nonroot) have no closure to lock; an image
                // always has its parents' packages, so a missing one was never pinned.
                return Ok(by_rule.get(rule.name.as_str()).unwrap_or(&empty));
            }
            by_rule
                .get(rule.name.as_str())
                .ok_or_else(|| PlanError::RuleNotPinned {
                    lock: lock_name.to_owned(),
                    arch,
                    rule: rule.name.clone(),
                    file: rule.file.clone(),
                    distro: distro.to_owned(),
                })
        };
        for image in &image_rules {
            if !rules.builds_for(&image.name, arch) {
                continue;
            }
            let chain = rules.chain(&image.name)?;
            for level in chain.iter().filter(|r| r.extra) {
                let named = |rules: &[String]| rules.contains(&level.name);
                if !lock.packages.iter().any(|p| named(&p.rules))
                    && !lock.tarballs.iter().any(|t| named(&t.rules))
                {
                    return Err(PlanError::ExtraNotPinned {
                        lock: lock_name.to_owned(),
                        rule: level.name.clone(),
                        file: level.file.clone(),
                        distro: distro.to_owned(),
                    });
                }
            }
            let mut below: Option<LayerKey> = None;
            let mut image_layers = Vec::new();
            let mut lower: BTreeMap<&str, &LockedPackage> = BTreeMap::new();
            let mut settings = ImageSettings::default();
            for (i, level) in chain.iter().enumerate() {
                settings.apply(&level.config);
                let mine = closure(level)?;
                check_roots(level, distro, arch, mine, lock_name)?;
                for name in lower.keys() {
                    if !mine.contains_key(name) {
                        return Err(PlanError::NotInChild {
                            lock: lock_name.to_owned(),
                            package: (*name).to_owned(),
                            arch,
                            parent: chain[i - 1].name.clone(),
                            child: level.name.clone(),
                            distro: distro.to_owned(),
                        });
                    }
                }
                let key = LayerKey::Level {
                    arch,
                    rule: level.name.clone(),
                };
                if !out.layers.contains_key(&key) {
                    let mut pkgs = Vec::new();
                    for (name, p) in mine {
                        if lower.contains_key(name) {
                            // A package a parent level ships comes again only where this
                            // level names it with `paths`: this layer adds those files.
                            if let Some(pr) = adds_paths(level, name, distro, arch) {
                                pkgs.push(LayerPackage {
                                    locked: p,
                                    declared: Some((*level, pr)),
                                });
                            }
                            continue;
                        }
                        pkgs.push(LayerPackage {
                            locked: p,
                            declared: declared_in(&chain[..=i], name, distro, arch),
                        });
                    }
                    let tarballs = tarballs_of(level, lock, distro, arch, lock_name)?;
                    out.layers.insert(
                        key.clone(),
                        LayerPlan {
                            key: key.clone(),
                            rule: level,
                            below: below.clone(),
                            packages: pkgs,
                            tarballs,
                        },
                    );
                }
                lower = mine.clone();
                image_layers.push(key.clone());
                below = Some(key);
            }
            let mut tag_plans = Vec::new();
            for (tag, parts) in &variants {
                let mut layers = image_layers.clone();
                let mut s = settings.clone();
                let mut have = lower.clone();
                for part in parts {
                    s.apply(&part.config);
                    let mine = closure(part)?;
                    check_roots(part, distro, arch, mine, lock_name)?;
                    let pkgs: Vec<LayerPackage> = mine
                        .iter()
                        .filter(|(n, _)| !have.contains_key(*n))
                        .map(|(n, p)| LayerPackage {
                            locked: p,
                            declared: declared_in(&[part], n, distro, arch),
                        })
                        .collect();
                    if pkgs.is_empty() {
                        continue;
                    }
                    let key = LayerKey::Variant {
                        arch,
                        image: image.name.clone(),
                        variant: part.name.clone(),
                    };
                    // The key names only the image and the variant, so a variant's layer sits
                    // directly on the image whichever other variants come before it.
                    if layers.len() != image_layers.len() {
                        return Err(PlanError::CombinedVariantsAddPackages {
                            file: rules.get(tag).map(|r| r.file.clone()).unwrap_or_default(),
                        });
                    }
                    out.layers.entry(key.clone()).or_insert_with(|| LayerPlan {
                        key: key.clone(),
                        rule: part,
                        below: layers.last().cloned(),
                        packages: pkgs,
                        // Variants take no tarballs (the rules refuse them).
                        tarballs: Vec::new(),
                    });
                    for (n, p) in mine {
                        have.insert(n, p);
                    }
                    layers.push(key);
                }
                tag_plans.push(TagPlan {
                    tag: tag.clone(),
                    layers,
                    settings: s,
                });
            }
            out.images.push(ImagePlan {
                image: image.name.clone(),
                arch,
                tags: tag_plans,
            });
        }
    }
    // An image named on the command line must be built for one of the architectures asked.
    for name in images {
        if !out.images.iter().any(|i| &i.image == name) {
            return Err(PlanError::NotBuiltFor {
                name: name.clone(),
                asked: arches.clone(),
                theirs: rules.architectures(name).unwrap_or_default(),
            });
        }
    }
    out.images
        .sort_by(|a, b| (&a.image, &a.arch).cmp(&(&b.image, &b.arch)));
    Ok(out)
}

/// The tarballs `rule` takes on `arch`, each as the lock pins it: same version, same URL,
/// taken by this rule.
fn tarballs_of<'a>(
    rule: &'a Rule,
    lock: &'a Lock,
    distro: &str,
    arch: Arch,
    lock_name: &str,
) -> Result<Vec<LayerTarball<'a>>, PlanError> {
    let mut out = Vec::new();
    for (name, t) in rule.tarballs_for(distro) {
        let not_pinned = |why: String| PlanError::TarballNotPinned {
            file: rule.file.clone(),
            tarball: format!("{name} {} ({arch})", t.version),
            why,
            lock: lock_name.to_owned(),
            distro: distro.to_owned(),
        };
        let url = t.url_for(arch).map_err(&not_pinned)?;
        t.strip_for(arch).map_err(&not_pinned)?;
        let locked = lock
            .tarball(arch, name, &t.version)
            .ok_or_else(|| not_pinned("not pinned".to_owned()))?;
        if locked.url != url {
            return Err(not_pinned(format!(
                "the rule's URL is {url}, the lock's {}",
                locked.url
            )));
        }
        if !locked.rules.contains(&rule.name) {
            return Err(not_pinned(format!("not pinned for rule {}", rule.name)));
        }
        out.push(LayerTarball {
            name,
            rule: t,
            locked,
        });
    }
    Ok(out)
}

/// Per rule name, the packages (by name) of its closure for `arch`.
fn closures(lock: &Lock, arch: Arch) -> BTreeMap<&str, BTreeMap<&str, &LockedPackage>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, &LockedPackage>> = BTreeMap::new();
    for p in lock.packages.iter().filter(|p| p.arch == arch) {
        for r in &p.rules {
            out.entry(r.as_str())
                .or_default()
                .insert(p.name.as_str(), p);
        }
    }
    out
}

/// Every root a rule names must be in its locked closure, else the lock predates the rule.
fn check_roots(
    rule: &Rule,
    distro: &str,
    arch: Arch,
    closure: &BTreeMap<&str, &LockedPackage>,
    lock_name: &str,
) -> Result<(), PlanError> {
    for root in rule.roots(distro, arch) {
        if !closure.contains_key(root) {
            return Err(PlanError::RootNotPinned {
                file: rule.file.clone(),
                root: root.to_owned(),
                lock: lock_name.to_owned(),
                arch,
                rule: rule.name.clone(),
                distro: distro.to_owned(),
            });
        }
    }
    Ok(())
}

/// What `level` says about `pkg` when it names it with `paths` for `distro` on `arch`.
fn adds_paths<'a>(level: &'a Rule, pkg: &str, distro: &str, arch: Arch) -> Option<&'a PackageRule> {
    level
        .packages
        .get(pkg)
        .filter(|p| p.paths.is_some() && p.applies(distro, arch))
}

/// The nearest rule (child-most first) in `rules` naming `pkg` for `distro` on `arch`.
fn declared_in<'a>(
    rules: &[&'a Rule],
    pkg: &str,
    distro: &str,
    arch: Arch,
) -> Option<(&'a Rule, &'a PackageRule)> {
    rules.iter().rev().find_map(|r| {
        r.packages
            .get(pkg)
            .filter(|p| p.applies(distro, arch))
            .map(|p| (*r, p))
    })
}

mod shard;
#[cfg(test)]
mod tests;
