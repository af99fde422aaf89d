//! The dependency solver: per architecture, the closure of a rule's root packages.
//!
//! Deterministic and apt-like: one version per package name (the highest across suites
//! that satisfies the first constraint met, or the locked one when the pin is
//! incremental: see [`Universe::with_preferences`]), alternatives prefer an already selected
//! package, then an excluded one (treated as satisfied), then the first satisfiable; a
//! virtual package with several providers takes the first provider by name.
//! Unmet dependencies and Conflicts/Breaks between selected packages are hard errors
//! that print the chain from the root.
//!
//! Just over 600 lines: the universe index and the solver share private state; the
//! tests live in tests.rs.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use debian_control::lossy::{Relation, Relations};

use crate::archive::packages::Package;
use crate::archive::version::{self, Version};

/// A package stanza with the suite it came from.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The stanza.
    pub pkg: &'a Package,
    /// Index of the suite in the manifest.
    pub suite: usize,
    /// Index of the candidate in its universe.
    pub index: usize,
}

/// Every package installable on one architecture, across all suites.
pub struct Universe<'a> {
    /// The architecture (`amd64`).
    pub arch: String,
    cands: Vec<Candidate<'a>>,
    /// Real names -> candidate indices, best (highest version, earliest suite) first.
    by_name: HashMap<&'a str, Vec<usize>>,
    /// Virtual names -> (provider candidate, provided version).
    provides: HashMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    /// Per candidate, what its Provides field names: (virtual name, provided version).
    provided_by: Vec<Vec<(&'a str, Option<&'a str>)>>,
    /// Per candidate, the rank of its name in name order (names compare as integers).
    name_rank: Vec<u32>,
    /// Real names in name order: `names[name_rank[i]]` is candidate `i`'s name.
    names: Vec<&'a str>,
}

impl<'a> Universe<'a> {
    /// Index the given stanzas (those of `arch` and `all`; others are ignored).
    pub fn new(arch: &str, suites: &[&'a [Package]]) -> Universe<'a> {
        let mut cands = Vec::new();
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut provides: HashMap<&str, Vec<(usize, Option<&str>)>> = HashMap::new();
        let mut provided_by = Vec::new();
        for (suite, pkgs) in suites.iter().enumerate() {
            for pkg in pkgs.iter() {
                if pkg.architecture != arch && pkg.architecture != "all" {
                    continue;
                }
                let i = cands.len();
                cands.push(Candidate {
                    pkg,
                    suite,
                    index: i,
                });
                by_name.entry(pkg.name.as_str()).or_default().push(i);
                let own = parse_provides(&pkg.provides);
                for &(name, ver) in &own {
                    provides.entry(name).or_default().push((i, ver));
                }
                provided_by.push(own);
            }
        }
        for list in by_name.values_mut() {
            if list.len() > 1 {
                let key: Vec<(usize, Option<Version>)> = list
                    .iter()
                    .map(|&i| (i, version::parse(&cands[i].pkg.version)))
                    .collect();
                let mut key = key;
                key.sort_by(|(a, va), (b, vb)| {
                    vb.cmp(va)
                        .then(cands[*a].suite.cmp(&cands[*b].suite))
                        .then(a.cmp(b))
                });
                // The same version in two suites (e.g. a point release) is one candidate.
                key.dedup_by(|(_, a), (_, b)| a == b);
                *list = key.into_iter().map(|(i, _)| i).collect();
            }
        }
        let mut u = Universe {
            arch: arch.to_owned(),
            cands,
            by_name,
            provides,
            provided_by,
            name_rank: Vec::new(),
            names: Vec::new(),
        };
        u.rank_names();
        u.sort_providers();
        u
    }

    /// [`Universe::new`] preferring, for each name in `locked`, that version over the
    /// highest one wherever it satisfies what is asked: an incremental pin keeps what the
    /// lock has and moves a package only when a constraint needs it to.
    pub fn with_preferences(
        arch: &str,
        suites: &[&'a [Package]],
        locked: &BTreeMap<String, String>,
    ) -> Universe<'a> {
        let mut u = Universe::new(arch, suites);
        for (name, list) in u.by_name.iter_mut() {
            let Some(want) = locked.get(*name) else {
                continue;
            };
            if let Some(pos) = list.iter().position(|&i| &u.cands[i].pkg.version == want) {
                let i = list.remove(pos);
                list.insert(0, i);
            }
        }
        u.sort_providers();
        u
    }

    /// Number every candidate's name in name order, so that orderings by name compare
    /// integers (a wide index has millions of Provides entries to sort).
    fn rank_names(&mut self) {
        let mut names: Vec<&str> = self.by_name.keys().copied().collect();
        names.sort_unstable();
        let rank: HashMap<&str, u32> = names
            .iter()
            .enumerate()
            .map(|(r, n)| (*n, r as u32))
            .collect();
        self.name_rank = self
            .cands
            .iter()
            .map(|c| rank[c.pkg.name.as_str()])
            .collect();
        self.names = names;
    }

    /// Providers of each virtual name by provider name, then in the order that name's own
    /// candidates are preferred (highest version, or the locked one, first).
    fn sort_providers(&mut self) {
        let mut pref = vec![0u32; self.cands.len()];
        for list in self.by_name.values() {
            for (r, &i) in list.iter().enumerate() {
                pref[i] = r as u32;
            }
        }
        let name_rank = &self.name_rank;
        for list in self.provides.values_mut() {
            list.sort_unstable_by_key(|(i, _)| (name_rank[*i], pref[*i], *i));
        }
    }

    /// Is `version` of `name` a candidate here (offered by some suite)?
    pub fn offers(&self, name: &str, version: &str) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|l| l.iter().any(|&i| self.cands[i].pkg.version == version))
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.cands.len()
    }

    /// Is the universe empty?
    pub fn is_empty(&self) -> bool {
        self.cands.is_empty()
    }

    /// The best candidate of a real package name.
    pub fn best(&self, name: &str) -> Option<Candidate<'a>> {
        self.by_name.get(name).map(|l| self.cands[l[0]])
    }

    fn arch_ok(&self, rel: &Relation, c: &Candidate<'_>) -> bool {
        match rel.archqual.as_deref() {
            None => true,
            Some("any") => c.pkg.multi_arch == "allowed",
            Some("native") => c.pkg.architecture == self.arch || c.pkg.architecture == "all",
            Some(q) => c.pkg.architecture == q,
        }
    }

    /// Does candidate `i` satisfy `rel` by its own name?
    fn satisfies_real(&self, rel: &Relation, i: usize) -> bool {
        let c = &self.cands[i];
        if c.pkg.name != rel.name || !self.arch_ok(rel, c) {
            return false;
        }
        match &rel.version {
            None => true,
            Some((op, want)) => version::parse(&c.pkg.version)
                .is_some_and(|have| version::satisfies(&have, op, want)),
        }
    }

    /// Does candidate `i` satisfy `rel` through a Provides entry?
    fn satisfies_virtual(&self, rel: &Relation, i: usize) -> bool {
        let c = &self.cands[i];
        if rel.archqual.as_deref() == Some("any")
            && c.pkg.multi_arch != "allowed"
            && c.pkg.multi_arch != "foreign"
        {
            return false;
        }
        self.provided_by[i].iter().any(|&(name, ver)| {
            name == rel.name
                && match (&rel.version, ver) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some((op, want)), Some(v)) => {
                        version::parse(v).is_some_and(|have| version::satisfies(&have, op, want))
                    }
                }
        })
    }

    fn satisfies(&self, rel: &Relation, i: usize) -> bool {
        self.satisfies_real(rel, i) || self.satisfies_virtual(rel, i)
    }

    /// Candidates that could satisfy `rel`, real ones first (best version first), then
    /// providers by name; lazy, so a caller that takes the first acceptable one does not
    /// walk every provider of a virtual name.
    fn candidates_for<'r>(&'r self, rel: &'r Relation) -> impl Iterator<Item = usize> + 'r {
        let real = self
            .by_name
            .get(rel.name.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(move |&i| self.satisfies_real(rel, i));
        let virt = self
            .provides
            .get(rel.name.as_str())
            .into_iter()
            .flatten()
            .map(|(p, _)| *p)
            // A package providing its own name is already among the real candidates.
            .filter(move |&p| self.cands[p].pkg.name != rel.name || !self.satisfies_real(rel, p))
            .filter(move |&p| self.satisfies_virtual(rel, p));
        real.chain(virt)
    }

    /// Names (real packages) that provide `name`.
    fn providers(&self, name: &str) -> impl Iterator<Item = &'a str> + '_ {
        self.provides
            .get(name)
            .into_iter()
            .flatten()
            .map(|(p, _)| self.cands[*p].pkg.name.as_str())
    }
}

/// `Provides:` entries: name and optional `= version`.
fn parse_provides(field: &str) -> Vec<(&str, Option<&str>)> {
    field
        .split(',')
        .filter_map(|e| {
            let e = e.trim();
            if e.is_empty() {
                return None;
            }
            let (name, ver) = match e.split_once('(') {
                Some((n, v)) => {
                    let v = v.trim().trim_end_matches(')').trim();
                    (n.trim(), v.strip_prefix('=').map(str::trim))
                }
                None => (e, None),
            };
            let name = name.split(':').next().unwrap_or(name);
            Some((name, ver))
        })
        .collect()
}

/// Where excluded names come from, for messages and the lock.
#[derive(Debug, Clone)]
pub struct Excludes {
    /// Excluded name -> the file that excludes it.
    pub by_name: BTreeMap<String, String>,
}

impl Excludes {
    fn source_of(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }
}

/// The closure of one rule on one architecture.
#[derive(Debug, Clone, Default)]
pub struct Closure<'a> {
    /// Selected packages by name.
    pub selected: BTreeMap<String, Candidate<'a>>,
    /// Resolved dependency names of each selected package.
    pub edges: BTreeMap<String, BTreeSet<String>>,
    /// Excluded name -> (the file excluding it, the packages whose dependency it satisfied).
    pub excluded: BTreeMap<String, (String, BTreeSet<String>)>,
}

/// A resolution failure, already formatted as one line with the chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

/// Resolve `roots` (package name, the rule file naming it) on `u` with `excludes`.
pub fn resolve<'a>(
    u: &Universe<'a>,
    roots: &[(String, String)],
    excludes: &Excludes,
) -> Result<Closure<'a>, ResolveError> {
    let mut cl = Closure::default();
    // Virtual name -> the selected packages providing it, so that checking whether a
    // dependency is already met costs the providers selected, not the whole selection.
    let mut providing: Providing = HashMap::new();
    // Who first required each package: a tree, so walking it up always ends at a root.
    let mut parent: HashMap<String, String> = HashMap::new();
    let mut queue = VecDeque::new();
    for (root, file) in roots {
        if let Some(src) = excludes.source_of(root) {
            return Err(ResolveError(format!(
                "{file} names {root}, but {src} excludes it; remove one of the two"
            )));
        }
        if cl.selected.contains_key(root) {
            continue;
        }
        let Some(c) = u.best(root) else {
            let hint = match u.providers(root).next() {
                Some(p) => format!(" ({root} is virtual; name a provider such as {p})"),
                None => String::new(),
            };
            return Err(ResolveError(format!(
                "{file} names {root}: no candidate for {} in any suite{hint}",
                u.arch
            )));
        };
        note_provides(u, &mut providing, &c);
        cl.selected.insert(root.clone(), c);
        queue.push_back(root.clone());
    }
    let chain = |parent: &HashMap<String, String>, name: &str| -> String {
        let mut parts = vec![name.to_owned()];
        let mut cur = name;
        while let Some(p) = parent.get(cur) {
            parts.push(p.clone());
            cur = p;
        }
        parts.reverse();
        bounded_chain(&parts)
    };
    while let Some(name) = queue.pop_front() {
        let c = cl.selected[&name];
        let mut deps = BTreeSet::new();
        for (field, raw) in [
            ("Pre-Depends", &c.pkg.pre_depends),
            ("Depends", &c.pkg.depends),
        ] {
            if raw.is_empty() {
                continue;
            }
            let rels: Relations = raw.parse().map_err(|e| {
                ResolveError(format!(
                    "{} {} ({}): malformed {field} {raw:?}: {e}",
                    c.pkg.name, c.pkg.version, c.pkg.filename
                ))
            })?;
            for group in rels.0.iter() {
                let group: Vec<&Relation> = group
                    .iter()
                    .filter(|r| arch_restriction_applies(r, &u.arch))
                    .collect();
                if group.is_empty() {
                    continue;
                }
                // 1. An alternative already selected.
                if let Some(hit) = group
                    .iter()
                    .find_map(|r| selected_satisfying(u, &cl, &providing, r, None))
                {
                    deps.insert(hit);
                    continue;
                }
                // 2. An excluded alternative counts as satisfied (never pulled in).
                if let Some((ex, src)) = group.iter().find_map(|r| excluded_match(u, r, excludes)) {
                    let entry = cl
                        .excluded
                        .entry(ex)
                        .or_insert_with(|| (src, BTreeSet::new()));
                    entry.1.insert(name.clone());
                    continue;
                }
                // 3. The first satisfiable alternative.
                let mut chosen = None;
                for r in &group {
                    // A name already selected with an unsuitable version cannot be replaced.
                    if cl.selected.contains_key(&r.name) {
                        continue;
                    }
                    // A provider already selected in another version did not satisfy step 1,
                    // and one name holds one version: skip it as well as excluded ones.
                    if let Some(i) = u.candidates_for(r).find(|&i| {
                        let n = &u.cands[i].pkg.name;
                        !excludes.by_name.contains_key(n) && !cl.selected.contains_key(n)
                    }) {
                        chosen = Some(u.cands[i]);
                        break;
                    }
                }
                let Some(pick) = chosen else {
                    let wanted = group
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(" | ");
                    let why = unmet_reason(u, &cl, &group);
                    return Err(ResolveError(format!(
                        "{} -> {wanted}: {why}",
                        chain(&parent, &name)
                    )));
                };
                let pname = pick.pkg.name.clone();
                deps.insert(pname.clone());
                // The pick is never already selected (filtered above): select it.
                parent.insert(pname.clone(), name.clone());
                note_provides(u, &mut providing, &pick);
                cl.selected.insert(pname.clone(), pick);
                queue.push_back(pname);
            }
        }
        cl.edges.insert(name, deps);
    }
    check_conflicts(u, &cl, &providing, &|n: &str| chain(&parent, n))?;
    Ok(cl)
}

/// `foo [amd64]` restrictions only appear in source relations, but honour them anyway.
fn arch_restriction_applies(r: &Relation, arch: &str) -> bool {
    match &r.architectures {
        None => true,
        Some(list) => {
            let neg = list.iter().any(|a| a.starts_with('!'));
            if neg {
                !list.iter().any(|a| a.trim_start_matches('!') == arch)
            } else {
                list.iter().any(|a| a == arch)
            }
        }
    }
}

/// Is `r` satisfied by exclusion? Yes when the name it asks for is excluded (a real or a
/// virtual name), or when it is virtual and every package providing it is excluded. A
/// virtual with a provider that is not excluded is resolved normally.
fn excluded_match(u: &Universe<'_>, r: &Relation, ex: &Excludes) -> Option<(String, String)> {
    if let Some(src) = ex.source_of(&r.name) {
        return Some((r.name.clone(), src.to_owned()));
    }
    if u.by_name.contains_key(r.name.as_str()) {
        return None;
    }
    // Every provider that would satisfy `r` is excluded: stop at the first that is not.
    let mut providers = u
        .provides
        .get(r.name.as_str())
        .into_iter()
        .flatten()
        .map(|(p, _)| *p)
        .filter(|&p| u.satisfies_virtual(r, p));
    let first = providers.next()?;
    let name = &u.cands[first].pkg.name;
    let src = ex.by_name.get(name)?;
    if providers.all(|p| ex.by_name.contains_key(&u.cands[p].pkg.name)) {
        return Some((name.clone(), src.clone()));
    }
    None
}

/// Virtual name -> the name ranks of the selected packages providing it.
type Providing<'a> = HashMap<&'a str, BTreeSet<u32>>;

/// Record what a newly selected candidate provides.
fn note_provides<'a>(u: &Universe<'a>, providing: &mut Providing<'a>, c: &Candidate<'_>) {
    for &(name, _) in &u.provided_by[c.index] {
        providing
            .entry(name)
            .or_default()
            .insert(u.name_rank[c.index]);
    }
}

/// The first (by name) selected package other than `except` that satisfies `r`, by its
/// own name or through Provides.
fn selected_satisfying(
    u: &Universe<'_>,
    cl: &Closure<'_>,
    providing: &Providing,
    r: &Relation,
    except: Option<&str>,
) -> Option<String> {
    let ok =
        |n: &str| except != Some(n) && cl.selected.get(n).is_some_and(|s| u.satisfies(r, s.index));
    let real = Some(r.name.as_str()).filter(|n| ok(n));
    let virt = providing
        .get(r.name.as_str())
        .into_iter()
        .flatten()
        .map(|&rank| u.names[rank as usize])
        .find(|n| ok(n));
    match (real, virt) {
        (Some(a), Some(b)) => Some(a.min(b).to_owned()),
        (a, b) => a.or(b).map(str::to_owned),
    }
}

/// A dependency chain for a message: whole when short, else its first and last links
/// around a count, so a deep chain cannot make a message of megabytes.
fn bounded_chain(parts: &[String]) -> String {
    const KEEP: usize = 4;
    if parts.len() <= 2 * KEEP + 1 {
        return parts.join(" -> ");
    }
    format!(
        "{} -> ... ({} more) -> {}",
        parts[..KEEP].join(" -> "),
        parts.len() - 2 * KEEP,
        parts[parts.len() - KEEP..].join(" -> ")
    )
}

fn unmet_reason(u: &Universe<'_>, cl: &Closure<'_>, group: &[&Relation]) -> String {
    for r in group {
        if let Some(s) = cl.selected.get(&r.name) {
            return format!(
                "{} {} is already selected and does not satisfy it",
                r.name, s.pkg.version
            );
        }
    }
    let r = group[0];
    match u.by_name.get(r.name.as_str()) {
        Some(list) if r.version.is_some() => {
            const SHOWN: usize = 8;
            let have: Vec<&str> = list
                .iter()
                .take(SHOWN)
                .map(|&i| u.cands[i].pkg.version.as_str())
                .collect();
            let more = match list.len().saturating_sub(SHOWN) {
                0 => String::new(),
                n => format!(" and {n} more"),
            };
            format!(
                "no candidate for {} (available: {}{more})",
                u.arch,
                have.join(", ")
            )
        }
        _ => format!("no candidate for {}", u.arch),
    }
}

fn check_conflicts(
    u: &Universe<'_>,
    cl: &Closure<'_>,
    providing: &Providing,
    chain: &dyn Fn(&str) -> String,
) -> Result<(), ResolveError> {
    for (name, c) in &cl.selected {
        for (field, raw) in [("Conflicts", &c.pkg.conflicts), ("Breaks", &c.pkg.breaks)] {
            if raw.is_empty() {
                continue;
            }
            let rels: Relations = raw.parse().map_err(|e| {
                ResolveError(format!(
                    "{} {}: malformed {field} {raw:?}: {e}",
                    c.pkg.name, c.pkg.version
                ))
            })?;
            for r in rels.0.iter().flatten() {
                if let Some(other) = selected_satisfying(u, cl, providing, r, Some(name)) {
                    let i = cl.selected[&other].index;
                    return Err(ResolveError(format!(
                        "{} {} {field} {r}, but {other} {} is selected too ({} ; {})",
                        name,
                        c.pkg.version,
                        u.cands[i].pkg.version,
                        chain(name),
                        chain(&other)
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
