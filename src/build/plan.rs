//! What to build, worked out from the lock and the rules alone: for every image and
//! architecture, its layers (one per rule level, parents first) and the packages each
//! layer takes, and for every tag the variant layers and runtime settings on top.

use std::collections::{BTreeMap, BTreeSet};

use crate::arch::{Arch, join};
use crate::rules::{ImageSettings, Kind, PackageRule, Rule, RuleSet};
use crate::snapshot::lock::{Lock, LockedPackage};

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
}

impl LayerKey {
    /// The architecture the layer is for.
    pub fn arch(&self) -> Arch {
        match self {
            LayerKey::Level { arch, .. } | LayerKey::Variant { arch, .. } => *arch,
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

impl Plan<'_> {
    /// Every locked package some layer takes (each once per architecture).
    pub fn packages(&self) -> Vec<&LockedPackage> {
        self.packages_of(self.layers.keys())
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

/// A rule/lock mismatch or an unknown name, one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

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
                return Err(PlanError(format!(
                    "{lock_name} has no {a} packages (it has {}); run `debless pin --distro {distro} --arch {a}`",
                    join(&lock.architectures)
                )));
            }
        }
        arches.to_vec()
    };
    let image_rules: Vec<&Rule> = if images.is_empty() {
        rules.images_for(distro).collect()
    } else {
        let mut v = Vec::new();
        for name in images {
            let r = rules.get(name).map_err(|e| PlanError(e.to_string()))?;
            if r.kind != Kind::Image {
                return Err(PlanError(format!(
                    "{name} is a variant; build an image with --variant {name}"
                )));
            }
            if !r.has_distro(distro) {
                return Err(PlanError(format!(
                    "{}: image {name} is not defined for {distro} (its distros: {})",
                    r.file.display(),
                    r.distros.join(", ")
                )));
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
        let parts = rules
            .variant_parts(v)
            .map_err(|e| PlanError(e.to_string()))?;
        let r = rules.get(v).map_err(|e| PlanError(e.to_string()))?;
        if !r.has_distro(distro) {
            return Err(PlanError(format!(
                "{}: variant {v} is not defined for {distro}",
                r.file.display()
            )));
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
            if rule.roots(distro).is_empty() {
                // Config-only rules (like nonroot) have no closure to lock.
                return Ok(by_rule.get(rule.name.as_str()).unwrap_or(&empty));
            }
            by_rule.get(rule.name.as_str()).ok_or_else(|| {
                PlanError(format!(
                    "{lock_name} has no {arch} packages for rule {} ({}); run `debless pin --distro {distro}` after changing rules",
                    rule.name,
                    rule.file.display()
                ))
            })
        };
        for image in &image_rules {
            if !rules.builds_for(&image.name, arch) {
                continue;
            }
            let chain = rules
                .chain(&image.name)
                .map_err(|e| PlanError(e.to_string()))?;
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
                        return Err(PlanError(format!(
                            "{lock_name}: {name} ({arch}) is in rule {}'s closure but not in its child {}'s; run `debless pin --distro {distro}`",
                            chain[i - 1].name,
                            level.name
                        )));
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
                            if let Some(pr) = adds_paths(level, name, distro) {
                                pkgs.push(LayerPackage {
                                    locked: p,
                                    declared: Some((*level, pr)),
                                });
                            }
                            continue;
                        }
                        pkgs.push(LayerPackage {
                            locked: p,
                            declared: declared_in(&chain[..=i], name, distro),
                        });
                    }
                    out.layers.insert(
                        key.clone(),
                        LayerPlan {
                            key: key.clone(),
                            rule: level,
                            below: below.clone(),
                            packages: pkgs,
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
                            declared: declared_in(&[part], n, distro),
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
                        return Err(PlanError(format!(
                            "{}: only one of the combined variants may add packages",
                            rules
                                .get(tag)
                                .map(|r| r.file.display().to_string())
                                .unwrap_or_default()
                        )));
                    }
                    out.layers.entry(key.clone()).or_insert_with(|| LayerPlan {
                        key: key.clone(),
                        rule: part,
                        below: layers.last().cloned(),
                        packages: pkgs,
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
            let theirs = rules.architectures(name).unwrap_or_default();
            return Err(PlanError(format!(
                "image {name} is not built for {} (its architectures: {}); pass --arch with one of those",
                join(&arches),
                join(&theirs)
            )));
        }
    }
    out.images
        .sort_by(|a, b| (&a.image, &a.arch).cmp(&(&b.image, &b.arch)));
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
    for root in rule.roots(distro) {
        if !closure.contains_key(root) {
            return Err(PlanError(format!(
                "{} names {root}, which {lock_name} does not have for {arch} in rule {}; run `debless pin --distro {distro}` after changing rules",
                rule.file.display(),
                rule.name
            )));
        }
    }
    Ok(())
}

/// What `level` says about `pkg` when it names it with `paths` for `distro`.
fn adds_paths<'a>(level: &'a Rule, pkg: &str, distro: &str) -> Option<&'a PackageRule> {
    level.packages.get(pkg).filter(|p| {
        p.paths.is_some()
            && p.distros
                .as_ref()
                .is_none_or(|d| d.iter().any(|x| x == distro))
    })
}

/// The nearest rule (child-most first) in `rules` naming `pkg` for `distro`.
fn declared_in<'a>(
    rules: &[&'a Rule],
    pkg: &str,
    distro: &str,
) -> Option<(&'a Rule, &'a PackageRule)> {
    rules.iter().rev().find_map(|r| {
        r.packages
            .get(pkg)
            .filter(|p| {
                p.distros
                    .as_ref()
                    .is_none_or(|d| d.iter().any(|x| x == distro))
            })
            .map(|p| (*r, p))
    })
}
