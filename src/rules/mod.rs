//! Rule files: images and variants as data, with inheritance and validation.
//!
//! `rules/<name>.toml` defines an image level; `rules/variants/<name>.toml` defines a
//! variant that can be applied on top of any image; `rules/extra/<name>.toml` defines an
//! image outside the default family (its sources may not be reachable from every
//! machine: pinned with `--extra`, built when named); `rules/defaults.toml` holds the file
//! policy every package is filtered through.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::arch::{Arch, join};
use crate::text::one_line;

mod add;
mod generate;
mod paths;
mod tarball;

pub use add::{AddAttrs, AddRule};

pub use generate::{
    Busybox, CaBundle, Empty, Generate, Group, LiteralFile, OsRelease, User, Users,
};
pub use paths::PathPattern;
pub use tarball::TarballRule;

/// What a rule file says about one package.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageRule {
    /// Distros this package applies to; absent means every distro of the rule.
    #[serde(default)]
    pub distros: Option<Vec<String>>,
    /// Architectures this package applies to (a package Debian builds only for some,
    /// such as a JIT runtime); absent means every architecture.
    #[serde(default)]
    pub architectures: Option<Vec<Arch>>,
    /// Image paths (globs, `**` crosses directories) this package contributes; absent
    /// means every file except the global `[files] exclude` list. A path that matches
    /// nothing is an error unless it starts with `?` (e.g. `?/usr/lib64/*`, which only
    /// some architectures have).
    #[serde(default)]
    pub paths: Option<Vec<PathPattern>>,
    /// Globs dropped from this package on top of the global `[files] exclude` list. Like
    /// `paths`, a glob that matches no path of the package is an error (a typo drops
    /// nothing) unless it starts with `?`.
    #[serde(default)]
    pub drop: Vec<PathPattern>,
    /// Setuid/setgid files this package may keep (globs); any other is a build error.
    #[serde(default)]
    pub allow_setuid: Vec<String>,
}

/// The runtime settings a rule contributes to the image config. Children override their
/// parents field by field; `env`, `labels` and `annotations` merge by key. The command
/// line's overrides (`debless build --env ...`) are one more of these, applied last.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Environment variables (sorted by name in the image).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Text appended to an inherited variable (`PATH = ":/busybox"`).
    #[serde(default)]
    pub env_append: BTreeMap<String, String>,
    /// `User` (`"65532"`, `"0"`).
    #[serde(default)]
    pub user: Option<String>,
    /// `WorkingDir`.
    #[serde(default)]
    pub workdir: Option<String>,
    /// `Entrypoint`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Entrypoint` only if nothing below set one (a debug shell for images without a
    /// runtime; language images keep theirs).
    #[serde(default)]
    pub default_entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// Image labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations (`org.opencontainers.image.version`...).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The merged runtime settings of an image (and variant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSettings {
    /// Environment, by name.
    pub env: BTreeMap<String, String>,
    /// `User`.
    pub user: Option<String>,
    /// `WorkingDir`.
    pub workdir: Option<String>,
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations the rules and the command line add.
    pub annotations: BTreeMap<String, String>,
}

impl ImageSettings {
    /// Apply one rule's config on top.
    pub fn apply(&mut self, c: &RuleConfig) {
        for (k, v) in &c.env {
            self.env.insert(k.clone(), v.clone());
        }
        for (k, v) in &c.env_append {
            self.env.entry(k.clone()).or_default().push_str(v);
        }
        if c.user.is_some() {
            self.user.clone_from(&c.user);
        }
        if c.workdir.is_some() {
            self.workdir.clone_from(&c.workdir);
        }
        if c.entrypoint.is_some() {
            self.entrypoint.clone_from(&c.entrypoint);
        }
        if self.entrypoint.is_none() {
            self.entrypoint.clone_from(&c.default_entrypoint);
        }
        if c.cmd.is_some() {
            self.cmd.clone_from(&c.cmd);
        }
        for (k, v) in &c.labels {
            self.labels.insert(k.clone(), v.clone());
        }
        for (k, v) in &c.annotations {
            self.annotations.insert(k.clone(), v.clone());
        }
    }
}

/// `rules/defaults.toml`: what every package is filtered through.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// The file policy.
    #[serde(default)]
    pub files: FilePolicy,
}

/// Paths no image ships (docs, man pages...) and the exceptions that stay (licences).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePolicy {
    /// Globs dropped from every package.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Globs kept even when `exclude` matches.
    #[serde(default)]
    pub keep: Vec<String>,
}

/// The name of the defaults file under the rules directory.
pub const DEFAULTS_FILE: &str = "defaults.toml";

/// The directory under the rules directory holding images outside the default family.
pub const EXTRA_DIR: &str = "extra";

/// Whether a rule is an image level or a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `rules/<name>.toml`.
    Image,
    /// `rules/variants/<name>.toml`.
    Variant,
}

/// One rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// One-line description.
    #[serde(default)]
    pub description: String,
    /// The image this one builds on.
    #[serde(default)]
    pub parent: Option<String>,
    /// Distros the rule is defined for.
    pub distros: Vec<String>,
    /// Images only: the architectures the image is built for (pinned, planned, indexed);
    /// absent means its parent's, and every architecture for an image without a parent.
    #[serde(default)]
    pub architectures: Option<Vec<Arch>>,
    /// Packages never pulled in by dependencies of this rule (and its children).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Root packages and the paths each contributes.
    #[serde(default)]
    pub packages: BTreeMap<String, PackageRule>,
    /// Upstream tarballs whose files this level's layer takes (images only).
    #[serde(default)]
    pub tarballs: BTreeMap<String, TarballRule>,
    /// Runtime settings (env, user, entrypoint...).
    #[serde(default)]
    pub config: RuleConfig,
    /// Files generated into this level's layer.
    #[serde(default)]
    pub generate: Generate,
    /// Host files, directories and tarballs added to this level's layer (images only).
    #[serde(default)]
    pub add: Vec<AddRule>,
    /// Variants only: build this variant as these variants applied in order
    /// (`debug-nonroot` = `["debug", "nonroot"]`).
    #[serde(default)]
    pub combines: Vec<String>,
    /// The rule's name (file stem).
    #[serde(skip)]
    pub name: String,
    /// The file it came from.
    #[serde(skip)]
    pub file: PathBuf,
    /// Image or variant.
    #[serde(skip, default = "image_kind")]
    pub kind: Kind,
    /// An image under `rules/extra/`: not part of the default family.
    #[serde(skip)]
    pub extra: bool,
    /// `sha256:<hex>` of the file's bytes: what the layer cache keys on.
    #[serde(skip)]
    pub digest: String,
}

fn image_kind() -> Kind {
    Kind::Image
}

/// A rule-file problem, naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {what}")]
pub struct RuleError {
    /// The offending file (or the rules directory).
    pub file: PathBuf,
    /// What is wrong and what to do.
    pub what: String,
}

/// Every rule under a rules directory.
#[derive(Debug, Clone)]
pub struct RuleSet {
    /// Rules by name (sorted).
    pub rules: BTreeMap<String, Rule>,
    /// `rules/defaults.toml` (empty policy when the file is absent).
    pub defaults: Defaults,
    /// `sha256:<hex>` of `rules/defaults.toml` (empty when absent): the layer cache's key.
    pub defaults_digest: String,
}

impl PackageRule {
    /// Does this declaration apply to `distro` on `arch` (its `distros` and
    /// `architectures`, absent meaning all)?
    pub fn applies(&self, distro: &str, arch: Arch) -> bool {
        self.distros
            .as_ref()
            .is_none_or(|d| d.iter().any(|x| x == distro))
            && self
                .architectures
                .as_ref()
                .is_none_or(|a| a.contains(&arch))
    }
}

impl Rule {
    /// Root package names this rule itself names for `distro` on `arch`.
    pub fn roots(&self, distro: &str, arch: Arch) -> Vec<&str> {
        self.packages
            .iter()
            .filter(|(_, p)| p.applies(distro, arch))
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Is the rule defined for `distro`?
    pub fn has_distro(&self, distro: &str) -> bool {
        self.distros.iter().any(|d| d == distro)
    }

    /// The tarballs this rule takes for `distro`, by name.
    pub fn tarballs_for(&self, distro: &str) -> Vec<(&str, &TarballRule)> {
        self.tarballs
            .iter()
            .filter(|(_, t)| t.applies_to(distro))
            .map(|(n, t)| (n.as_str(), t))
            .collect()
    }
}

impl RuleSet {
    /// Load `dir/*.toml` (images), `dir/variants/*.toml` (variants) and
    /// `dir/extra/*.toml` (images outside the default family).
    pub fn load(dir: &Path) -> Result<RuleSet, RuleError> {
        let mut rules = BTreeMap::new();
        for (sub, kind, extra) in [
            (dir.to_path_buf(), Kind::Image, false),
            (dir.join("variants"), Kind::Variant, false),
            (dir.join(EXTRA_DIR), Kind::Image, true),
        ] {
            if (kind == Kind::Variant || extra) && !sub.is_dir() {
                continue;
            }
            let entries = std::fs::read_dir(&sub).map_err(|e| RuleError {
                file: sub.clone(),
                what: format!("cannot read the rules directory ({e})"),
            })?;
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .filter(|p| !(kind == Kind::Image && p.file_name() == Some(DEFAULTS_FILE.as_ref())))
                .collect();
            files.sort();
            for file in files {
                let mut rule = load_rule(&file, kind)?;
                rule.extra = extra;
                // `[[add]] src` is relative to the project: the directory holding `rules/`.
                for a in &mut rule.add {
                    a.base = dir.parent().unwrap_or(Path::new("")).to_path_buf();
                }
                if let Some(old) = rules.insert(rule.name.clone(), rule) {
                    return Err(RuleError {
                        file,
                        what: format!(
                            "a rule named {:?} is already defined in {}",
                            old.name,
                            old.file.display()
                        ),
                    });
                }
            }
        }
        let defaults_file = dir.join(DEFAULTS_FILE);
        let defaults = if defaults_file.is_file() {
            let err = |what: String| RuleError {
                file: defaults_file.clone(),
                what,
            };
            let text = std::fs::read_to_string(&defaults_file)
                .map_err(|e| err(format!("cannot read ({e})")))?;
            let parsed = toml::from_str(&text).map_err(|e| err(one_line(&e.to_string())))?;
            (
                parsed,
                crate::digest::Digest::of(text.as_bytes()).to_string(),
            )
        } else {
            (Defaults::default(), String::new())
        };
        let (defaults, defaults_digest) = defaults;
        let set = RuleSet {
            rules,
            defaults,
            defaults_digest,
        };
        set.validate()?;
        Ok(set)
    }

    fn validate(&self) -> Result<(), RuleError> {
        for rule in self.rules.values() {
            let err = |what: String| RuleError {
                file: rule.file.clone(),
                what,
            };
            if let Some(p) = &rule.parent {
                let Some(parent) = self.rules.get(p) else {
                    return Err(err(format!("parent {p:?} is not a rule")));
                };
                if parent.extra && !rule.extra {
                    return Err(err(format!(
                        "parent {p:?} is under rules/{EXTRA_DIR}/, outside the default family; move this rule there too"
                    )));
                }
                if rule.kind == Kind::Variant || parent.kind == Kind::Variant {
                    return Err(err("variants cannot have or be parents".into()));
                }
                for d in &rule.distros {
                    if !parent.has_distro(d) {
                        return Err(err(format!(
                            "distro {d} is not defined by parent {p} ({})",
                            parent.file.display()
                        )));
                    }
                }
            }
            // Walk up to detect cycles.
            let mut seen = vec![rule.name.as_str()];
            let mut cur = rule;
            while let Some(p) = &cur.parent {
                if seen.contains(&p.as_str()) {
                    return Err(err(format!(
                        "inheritance cycle: {} -> {p}",
                        seen.join(" -> ")
                    )));
                }
                seen.push(p);
                cur = &self.rules[p];
            }
            if let Some(arches) = &rule.architectures {
                if rule.kind == Kind::Variant {
                    return Err(err(
                        "architectures is for images; a variant applies to every architecture of the image below it".into(),
                    ));
                }
                if arches.is_empty() {
                    return Err(err(
                        "architectures is empty; name at least one, or leave it out to inherit the parent's".into(),
                    ));
                }
                if let Some(p) = &rule.parent
                    && let Some(theirs) = self.architectures(p)
                    && let Some(a) = arches.iter().find(|a| !theirs.contains(a))
                {
                    return Err(err(format!(
                        "architecture {a} is not built for parent {p} (its architectures: {}); an image builds on its parent's layers",
                        join(&theirs)
                    )));
                }
            }
            for (name, p) in &rule.packages {
                if let Some(ds) = &p.distros {
                    for d in ds {
                        if !rule.has_distro(d) {
                            return Err(err(format!(
                                "package {name} names distro {d}, which the rule does not define"
                            )));
                        }
                    }
                }
                if p.architectures.as_ref().is_some_and(Vec::is_empty) {
                    return Err(err(format!(
                        "package {name}: architectures is empty; name at least one, or leave it out for every architecture"
                    )));
                }
                if rule.exclude.contains(name) {
                    return Err(err(format!("package {name} is both a root and excluded")));
                }
                for pat in p.paths.iter().flatten() {
                    if !pat.glob.starts_with('/') {
                        return Err(err(format!(
                            "package {name}: path {:?} must be absolute (start with / or ?/)",
                            pat.to_string()
                        )));
                    }
                }
                for pat in &p.drop {
                    if !pat.glob.starts_with('/') {
                        return Err(err(format!(
                            "package {name}: drop {:?} must be absolute (start with / or ?/)",
                            pat.to_string()
                        )));
                    }
                }
                for pat in &p.allow_setuid {
                    if !pat.starts_with('/') {
                        return Err(err(format!(
                            "package {name}: allow_setuid {pat:?} must be absolute (start with /)"
                        )));
                    }
                }
            }
            for (name, t) in &rule.tarballs {
                if rule.kind != Kind::Image {
                    return Err(err(format!(
                        "tarball {name}: only image rules take tarballs, not variants"
                    )));
                }
                if !valid_package_name(name) {
                    return Err(err(format!(
                        "tarball {name:?}: names use lower-case letters, digits, '+', '-' and '.'"
                    )));
                }
                t.check(name).map_err(err)?;
                for d in t.distros.iter().flatten() {
                    if !rule.has_distro(d) {
                        return Err(err(format!(
                            "tarball {name} names distro {d}, which the rule does not define"
                        )));
                    }
                }
            }
            for (i, a) in rule.add.iter().enumerate() {
                if rule.kind != Kind::Image {
                    return Err(err(
                        "[[add]] is for image rules; make an image with `parent` for the app instead of a variant".into(),
                    ));
                }
                a.check()
                    .map_err(|what| err(format!("[[add]] #{} ({}): {what}", i + 1, a.src)))?;
            }
            if !rule.combines.is_empty() {
                if rule.kind != Kind::Variant {
                    return Err(err("only variants can combine other variants".into()));
                }
                if !rule.packages.is_empty()
                    || rule.config != RuleConfig::default()
                    || rule.generate != Generate::default()
                {
                    return Err(err(
                        "a combining variant takes its packages and config from the variants it combines".into(),
                    ));
                }
                for c in &rule.combines {
                    match self.rules.get(c) {
                        Some(v) if v.kind == Kind::Variant && v.combines.is_empty() => {
                            for d in &rule.distros {
                                if !v.has_distro(d) {
                                    return Err(err(format!(
                                        "distro {d} is not defined by combined variant {c} ({})",
                                        v.file.display()
                                    )));
                                }
                            }
                        }
                        _ => {
                            return Err(err(format!(
                                "combines {c:?}, which is not a plain variant under rules/variants/"
                            )));
                        }
                    }
                }
            }
            if rule.kind == Kind::Variant && rule.name == "latest" {
                return Err(err(
                    "\"latest\" is the tag of the image without variants; rename the variant"
                        .into(),
                ));
            }
        }
        Ok(())
    }

    /// The plain variants a (possibly combining) variant applies, in order.
    pub fn variant_parts(&self, name: &str) -> Result<Vec<&Rule>, RuleError> {
        let v = self.get(name)?;
        if v.kind != Kind::Variant {
            return Err(RuleError {
                file: v.file.clone(),
                what: format!("{name} is an image, not a variant"),
            });
        }
        if v.combines.is_empty() {
            return Ok(vec![v]);
        }
        v.combines.iter().map(|c| self.get(c)).collect()
    }

    /// Image rules of the default family defined for `distro` (not those under
    /// `rules/extra/`, which are built when named).
    pub fn images_for<'a>(&'a self, distro: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.for_distro(distro)
            .filter(|r| r.kind == Kind::Image && !r.extra)
    }

    /// Image rules under `rules/extra/` defined for `distro`.
    pub fn extra_images_for<'a>(&'a self, distro: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.for_distro(distro)
            .filter(|r| r.kind == Kind::Image && r.extra)
    }

    /// Variant rules defined for `distro`.
    pub fn variants_for<'a>(&'a self, distro: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.for_distro(distro).filter(|r| r.kind == Kind::Variant)
    }

    /// A rule by name, or an error listing what exists.
    pub fn get(&self, name: &str) -> Result<&Rule, RuleError> {
        self.rules.get(name).ok_or_else(|| RuleError {
            file: PathBuf::from("rules"),
            what: format!(
                "no rule named {name:?}; rules: {}",
                self.rules.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// The rule and its ancestors, root-most first.
    pub fn chain(&self, name: &str) -> Result<Vec<&Rule>, RuleError> {
        let mut out = vec![self.get(name)?];
        while let Some(p) = &out.last().and_then(|r| r.parent.clone()) {
            out.push(self.get(p)?);
        }
        out.reverse();
        Ok(out)
    }

    /// The architectures image `name` is built for: its own `architectures`, else the
    /// nearest ancestor's; `None` when no rule in its chain restricts them.
    pub fn architectures(&self, name: &str) -> Option<Vec<Arch>> {
        let mut cur = self.rules.get(name);
        while let Some(r) = cur {
            if let Some(a) = &r.architectures {
                return Some(a.clone());
            }
            cur = r.parent.as_ref().and_then(|p| self.rules.get(p));
        }
        None
    }

    /// Is `name` built for `arch`? Variants apply wherever the image below them is built.
    pub fn builds_for(&self, name: &str, arch: Arch) -> bool {
        self.architectures(name).is_none_or(|a| a.contains(&arch))
    }

    /// Rules defined for `distro`.
    pub fn for_distro<'a>(&'a self, distro: &'a str) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules.values().filter(move |r| r.has_distro(distro))
    }
}

/// A Debian package name's characters (Policy 5.6.1), for tarball names too.
fn valid_package_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.')
        })
}

fn load_rule(file: &Path, kind: Kind) -> Result<Rule, RuleError> {
    let err = |what: String| RuleError {
        file: file.to_owned(),
        what,
    };
    let text = std::fs::read_to_string(file).map_err(|e| err(format!("cannot read ({e})")))?;
    let mut rule: Rule = toml::from_str(&text).map_err(|e| err(one_line(&e.to_string())))?;
    rule.name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| err("file name is not UTF-8".into()))?
        .to_owned();
    if !rule
        .name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(err(
            "rule names (file stems) use lower-case letters, digits and '-' only".into(),
        ));
    }
    rule.file = file.to_owned();
    rule.kind = kind;

    rule.digest = crate::digest::Digest::of(text.as_bytes()).to_string();
    if rule.distros.is_empty() {
        return Err(err("distros is empty; name at least one distro".into()));
    }
    Ok(rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn loads_inheritance_and_variants() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "a.toml",
            "distros=['x','y']\n[packages.p]\n[packages.q]\ndistros=['y']\n",
        );
        write(
            d.path(),
            "b.toml",
            "parent='a'\ndistros=['x']\n[packages.r]\n",
        );
        write(d.path(), "variants/v.toml", "distros=['x']\n[packages.s]\n");
        let set = RuleSet::load(d.path()).unwrap();
        let chain: Vec<_> = set
            .chain("b")
            .unwrap()
            .iter()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(chain, ["a", "b"]);
        assert_eq!(set.get("a").unwrap().roots("x", Arch::Amd64), ["p"]);
        assert_eq!(set.get("a").unwrap().roots("y", Arch::Amd64), ["p", "q"]);
        assert_eq!(set.get("v").unwrap().kind, Kind::Variant);
    }

    #[test]
    fn extra_rules_stay_out_of_the_family_until_asked_for() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.toml", "distros=['x']\n[packages.p]\n");
        let tarball = "[tarballs.node]\nversion='1.0'\nurl='https://h/node-{version}.tar.gz'\nprefix='/nodejs'\nlicense_file='/nodejs/LICENSE'\n";
        write(
            d.path(),
            "extra/b.toml",
            &format!("parent='a'\ndistros=['x']\n{tarball}"),
        );
        let set = RuleSet::load(d.path()).unwrap();
        let names = |it: &mut dyn Iterator<Item = &Rule>| -> Vec<String> {
            it.map(|r| r.name.clone()).collect()
        };
        assert_eq!(names(&mut set.images_for("x")), ["a"]);
        assert_eq!(names(&mut set.extra_images_for("x")), ["b"]);
        let b = set.get("b").unwrap();
        assert!(b.extra);
        let names: Vec<&str> = b.tarballs_for("x").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["node"]);

        // A family rule cannot build on an extra one; a variant takes no tarball.
        write(d.path(), "c.toml", "parent='b'\ndistros=['x']\n");
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("c.toml") && e.contains("outside the default family"),
            "{e}"
        );
        std::fs::remove_file(d.path().join("c.toml")).unwrap();
        write(
            d.path(),
            "variants/v.toml",
            &format!("distros=['x']\n{tarball}"),
        );
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("only image rules take tarballs"), "{e}");
    }

    #[test]
    fn architectures_are_inherited_narrowed_and_checked() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.toml", "distros=['x']\n");
        write(
            d.path(),
            "b.toml",
            "parent='a'\ndistros=['x']\narchitectures=['amd64','s390x']\n",
        );
        write(d.path(), "c.toml", "parent='b'\ndistros=['x']\n");
        write(
            d.path(),
            "e.toml",
            "parent='b'\ndistros=['x']\narchitectures=['s390x']\n",
        );
        write(d.path(), "variants/v.toml", "distros=['x']\n");
        let set = RuleSet::load(d.path()).unwrap();
        let (amd64, s390x, armhf) = (Arch::Amd64, Arch::S390x, Arch::Armhf);
        assert_eq!(set.architectures("a"), None);
        assert!(set.builds_for("a", armhf) && set.builds_for("v", armhf));
        assert_eq!(set.architectures("c"), Some(vec![amd64, s390x]));
        assert!(set.builds_for("c", s390x) && !set.builds_for("c", armhf));
        assert_eq!(set.architectures("e"), Some(vec![s390x]));

        write(
            d.path(),
            "e.toml",
            "parent='b'\ndistros=['x']\narchitectures=['armhf']\n",
        );
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("e.toml") && e.contains("armhf is not built for parent b"),
            "{e}"
        );
        write(
            d.path(),
            "e.toml",
            "parent='b'\ndistros=['x']\narchitectures=[]\n",
        );
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("architectures is empty"), "{e}");
        write(
            d.path(),
            "e.toml",
            "distros=['x']\narchitectures=['sparc']\n",
        );
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("e.toml") && e.contains("sparc"), "{e}");
        std::fs::remove_file(d.path().join("e.toml")).unwrap();
        write(
            d.path(),
            "variants/v.toml",
            "distros=['x']\narchitectures=['amd64']\n",
        );
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("architectures is for images"), "{e}");
    }

    #[test]
    fn add_entries_are_relative_to_the_project_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let rules = d.path().join("rules");
        write(
            &rules,
            "app.toml",
            "distros=['x']\n[[add]]\nsrc='build/server'\ndest='/app/server'\nowner='1:2'\n[config]\nannotations={ a = 'b' }\n",
        );
        let set = RuleSet::load(&rules).unwrap();
        let app = set.get("app").unwrap();
        assert_eq!(app.add[0].source(), d.path().join("build/server"));
        assert_eq!(app.config.annotations["a"], "b");

        write(
            &rules,
            "app.toml",
            "distros=['x']\n[[add]]\nsrc='s'\ndest='/a'\nowner='root'\n",
        );
        let e = RuleSet::load(&rules).unwrap_err().to_string();
        assert!(
            e.contains("app.toml") && e.contains("[[add]] #1 (s)") && e.contains("numeric UID:GID"),
            "{e}"
        );
        std::fs::remove_file(rules.join("app.toml")).unwrap();
        write(
            &rules,
            "variants/v.toml",
            "distros=['x']\n[[add]]\nsrc='s'\ndest='/a'\n",
        );
        let e = RuleSet::load(&rules).unwrap_err().to_string();
        assert!(
            e.contains("v.toml") && e.contains("[[add]] is for image rules"),
            "{e}"
        );
    }

    #[test]
    fn names_the_file_on_errors() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.toml", "distros=['x']\nparent='missing'\n");
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("a.toml") && e.contains("missing"), "{e}");
        write(d.path(), "a.toml", "distros=['x']\npackagez=[]\n");
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("a.toml") && e.contains("packagez"), "{e}");
        write(d.path(), "a.toml", "distros=['x']\nparent='b'\n");
        write(d.path(), "b.toml", "distros=['x']\nparent='a'\n");
        let e = RuleSet::load(d.path()).unwrap_err().to_string();
        assert!(e.contains("cycle"), "{e}");
    }
}
