//! From resolved closures to lock entries: which versions an incremental pin prefers,
//! one closure per rule and architecture, the checks across rules (one version of a
//! package per architecture; no file choices for a package a parent layer holds), and how
//! the new lock differs from the old.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use rayon::prelude::*;

use super::{PinChanges, PinError, PinOptions, Upgrade};
use crate::arch::Arch;
use crate::archive::packages::Package;
use crate::resolve::{self, Excludes, Universe};
use crate::rules::{Kind, RuleSet};
use crate::snapshot::lock::{Lock, LockedExclude, LockedPackage};

/// Per architecture, the versions an incremental pin prefers: the old lock's, except for
/// the packages `--upgrade` names (all of them for a bare `--upgrade`).
pub(super) fn preferences(
    old: Option<&Lock>,
    upgrade: &Upgrade,
) -> BTreeMap<Arch, BTreeMap<String, String>> {
    let mut out: BTreeMap<Arch, BTreeMap<String, String>> = BTreeMap::new();
    let Some(old) = old else { return out };
    for p in &old.packages {
        let moves = match upgrade {
            Upgrade::Nothing => false,
            Upgrade::All => true,
            Upgrade::Only(names) => names.contains(&p.name),
        };
        if !moves {
            out.entry(p.arch)
                .or_default()
                .insert(p.name.clone(), p.version.clone());
        }
    }
    out
}

/// A rule that drops files of a package (`drop`, `allow_setuid`) a parent rule's layer
/// already holds would have no effect: the parent's layer ships it. Refused here, naming
/// both rules, rather than at build time. With `paths` it is fine: the child's layer adds
/// those files of the package (and `drop` applies to them).
pub(super) fn check_declarations(
    rules: &RuleSet,
    distro: &str,
    (arch, closures): &ArchClosures<'_>,
) -> Result<(), PinError> {
    let by_rule: BTreeMap<&str, &resolve::Closure<'_>> =
        closures.iter().map(|(r, c)| (r.as_str(), c)).collect();
    for rule in rules.for_distro(distro) {
        let Some(parent) = rule.parent.as_deref() else {
            continue;
        };
        let Some(parent_closure) = by_rule.get(parent) else {
            continue;
        };
        for (name, p) in &rule.packages {
            let applies = p.applies(distro, *arch);
            let selects = p.paths.is_none() && (!p.drop.is_empty() || !p.allow_setuid.is_empty());
            if applies && selects && parent_closure.selected.contains_key(name) {
                let parent_file = rules
                    .get(parent)
                    .map(|r| r.file.display().to_string())
                    .unwrap_or_else(|_| parent.to_owned());
                return Err(PinError::Config(format!(
                    "{}: [packages.{name}] has drop or allow_setuid but no paths, and {name} is already in the layer of parent rule {parent} on {arch}; declare them in {parent_file}, or name the files this rule adds with paths",
                    rule.file.display()
                )));
            }
        }
    }
    Ok(())
}

/// A package that rules resolved to different versions on one architecture:
/// (arch, package, [(rule, version)]).
pub(super) type Clash = (Arch, String, Vec<(String, String)>);

/// One architecture's closures, one per rule (by rule name).
pub(super) type ArchClosures<'u> = (Arch, Vec<(String, resolve::Closure<'u>)>);

/// Resolve every rule of the distro on one architecture.
pub(super) fn resolve_rules<'u>(
    universe: &Universe<'u>,
    arch: Arch,
    rules: &RuleSet,
    global: &[(String, String)],
    opts: &PinOptions,
) -> Result<ArchClosures<'u>, PinError> {
    let mut closures = Vec::new();
    for rule in rules.for_distro(&opts.distro) {
        // An image is not resolved (nor locked) for an architecture it is not built for;
        // its packages may not even exist there.
        if !rules.builds_for(&rule.name, arch) {
            continue;
        }
        let chain = match rule.kind {
            Kind::Image => rules.chain(&rule.name)?,
            Kind::Variant => vec![rule],
        };
        let mut roots = Vec::new();
        let mut ex: BTreeMap<String, String> = global.iter().cloned().collect();
        for r in &chain {
            for root in r.roots(&opts.distro, arch) {
                roots.push((root.to_owned(), r.file.display().to_string()));
            }
            for e in &r.exclude {
                ex.entry(e.clone())
                    .or_insert_with(|| r.file.display().to_string());
            }
        }
        let closure =
            resolve::resolve(universe, &roots, &Excludes { by_name: ex }).map_err(|e| {
                PinError::Resolve {
                    distro: opts.distro.clone(),
                    arch,
                    rule: rule.name.clone(),
                    what: e.to_string(),
                }
            })?;
        closures.push((rule.name.clone(), closure));
    }
    Ok((arch, closures))
}

/// (arch, package, [(rule, version)]) wherever rules selected different versions of one
/// package on one architecture.
pub(super) fn version_clashes(results: &[ArchClosures<'_>]) -> Vec<Clash> {
    let mut out = Vec::new();
    for (arch, closures) in results {
        let mut by_name: BTreeMap<&str, Vec<(String, String)>> = BTreeMap::new();
        for (rule, cl) in closures {
            for (name, c) in &cl.selected {
                by_name
                    .entry(name)
                    .or_default()
                    .push((rule.clone(), c.pkg.version.clone()));
            }
        }
        for (name, list) in by_name {
            if list.iter().any(|(_, v)| *v != list[0].1) {
                out.push((*arch, name.to_owned(), list));
            }
        }
    }
    out
}

/// How `new` differs from `old`, and which of the old versions the archive stopped offering.
pub(super) fn changes(
    old: Option<&Lock>,
    new: &Lock,
    universes: &[(Arch, Vec<&[Package]>)],
) -> PinChanges {
    let key = |p: &LockedPackage| (p.arch, p.name.clone());
    let old_map: BTreeMap<(Arch, String), &LockedPackage> = old
        .map(|l| l.packages.iter().map(|p| (key(p), p)).collect())
        .unwrap_or_default();
    let new_map: BTreeMap<(Arch, String), &LockedPackage> =
        new.packages.iter().map(|p| (key(p), p)).collect();
    let mut c = PinChanges::default();
    for (k, n) in &new_map {
        match old_map.get(k) {
            None => c.added.push(k.clone()),
            Some(o) if o.version == n.version => c.kept += 1,
            Some(o) => c
                .changed
                .push((k.0, k.1.clone(), o.version.clone(), n.version.clone())),
        }
    }
    for k in old_map.keys() {
        if !new_map.contains_key(k) {
            c.removed.push(k.clone());
        }
    }
    for (arch, lists) in universes {
        let offered: HashSet<(&str, &str)> = lists
            .iter()
            .flat_map(|l| l.iter())
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        for ((a, name), o) in &old_map {
            if a == arch && !offered.contains(&(name.as_str(), o.version.as_str())) {
                c.gone.push((*arch, name.clone(), o.version.clone()));
            }
        }
    }
    c
}

/// Every rule's closure on every architecture. Rules are resolved one by one, so a kept
/// version may satisfy one rule where another needs a newer one: that package's
/// preference is dropped and everything resolved again, until every package has one
/// version per architecture (or no preference is left to drop, which is an error).
pub(super) fn resolve_all<'u>(
    universes: &[(Arch, Vec<&'u [Package]>)],
    mut prefs: BTreeMap<Arch, BTreeMap<String, String>>,
    rules: &RuleSet,
    global: &[(String, String)],
    opts: &PinOptions,
) -> Result<Vec<ArchClosures<'u>>, PinError> {
    loop {
        let results: Vec<ArchClosures<'_>> = universes
            .par_iter()
            .map(|(arch, lists)| {
                let none = BTreeMap::new();
                let universe = Universe::with_preferences(
                    arch.name(),
                    lists,
                    prefs.get(arch).unwrap_or(&none),
                );
                resolve_rules(&universe, *arch, rules, global, opts)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<_, PinError>>()?;
        // Rules are resolved one by one; where a kept version satisfies one rule and a
        // newer one is needed by another, let that package move and resolve again.
        let clashes = version_clashes(&results);
        let movable: Vec<&Clash> = clashes
            .iter()
            .filter(|(arch, name, _)| prefs.get(arch).is_some_and(|p| p.contains_key(name)))
            .collect();
        if movable.is_empty() {
            if let Some((arch, name, by_rule)) = clashes.first() {
                let versions: Vec<String> = by_rule
                    .iter()
                    .map(|(r, v)| format!("{v} for rule {r}"))
                    .collect();
                return Err(PinError::Resolve {
                    distro: opts.distro.clone(),
                    arch: *arch,
                    rule: by_rule[0].0.clone(),
                    what: format!(
                        "{name} resolves to different versions ({}), but an image holds one; pin the version in one rule's roots or relax the other's constraint",
                        versions.join(", ")
                    ),
                });
            }
            return Ok(results);
        }
        for (arch, name, _) in movable {
            if let Some(p) = prefs.get_mut(arch) {
                p.remove(name);
            }
        }
    }
}

/// The lock's package and exclusion entries from every architecture's closures: one entry
/// per (architecture, package), listing the rules whose closure holds it.
pub(super) fn lock_entries(
    results: &[ArchClosures<'_>],
    suite_names: &[String],
    project: &Path,
) -> (Vec<LockedPackage>, Vec<LockedExclude>) {
    let mut pkgs: BTreeMap<(Arch, String), LockedPackage> = BTreeMap::new();
    let mut excl: BTreeMap<(Arch, String, String), LockedExclude> = BTreeMap::new();
    for (arch, closures) in results {
        for (rule, cl) in closures {
            for (name, c) in &cl.selected {
                let entry = pkgs
                    .entry((*arch, name.clone()))
                    .or_insert_with(|| LockedPackage {
                        name: name.clone(),
                        arch: *arch,
                        version: c.pkg.version.clone(),
                        architecture: c.pkg.architecture.clone(),
                        suite: suite_names[c.suite].clone(),
                        source: c.pkg.source.clone(),
                        source_version: c.pkg.source_version.clone(),
                        filename: c.pkg.filename.clone(),
                        size: c.pkg.size,
                        sha256: c.pkg.sha256,
                        installed_size: c.pkg.installed_size,
                        depends: Vec::new(),
                        rules: Vec::new(),
                    });
                let deps = cl.edges.get(name).cloned().unwrap_or_default();
                merge_sorted(&mut entry.depends, deps);
                merge_sorted(&mut entry.rules, [rule.clone()]);
            }
            for (name, (by, required_by)) in &cl.excluded {
                let entry = excl
                    .entry((*arch, name.clone(), by.clone()))
                    .or_insert_with(|| LockedExclude {
                        name: name.clone(),
                        arch: *arch,
                        excluded_by: relative_to(by, project),
                        required_by: Vec::new(),
                        rules: Vec::new(),
                    });
                merge_sorted(&mut entry.required_by, required_by.iter().cloned());
                merge_sorted(&mut entry.rules, [rule.clone()]);
            }
        }
    }
    (pkgs.into_values().collect(), excl.into_values().collect())
}

fn merge_sorted(v: &mut Vec<String>, more: impl IntoIterator<Item = String>) {
    let mut set: BTreeSet<String> = v.drain(..).collect();
    set.extend(more);
    *v = set.into_iter().collect();
}

/// Paths in the lock are project-relative so locks match across checkouts.
fn relative_to(path: &str, project: &Path) -> String {
    Path::new(path)
        .strip_prefix(project)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_owned())
}
