//! `debless list`: the distros, images, variants and architectures a project defines,
//! one line each, so a user (or a script) can find what to build without reading rules/.

use std::collections::BTreeSet;

use debless::arch::Arch;
use debless::oci::platform_for;
use debless::rules::{Rule, RuleSet};
use debless::snapshot::manifest::Manifest;

use super::Global;

/// What to list.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// Distros: snapshots/<distro>.toml.
    Distros,
    /// Image rules: rules/<image>.toml.
    Images,
    /// Variant rules: rules/variants/<variant>.toml.
    Variants,
    /// Architectures the distros pin.
    Arches,
}

/// Arguments of `debless list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this kind, one name a line (for scripts); none lists everything with details.
    pub what: Option<What>,
    /// Only what this distro defines.
    #[arg(long)]
    pub distro: Option<String>,
    /// Print JSON: {distros: [...], images: [...], variants: [...], architectures: [...]}.
    #[arg(long)]
    pub json: bool,
}

/// One distro as listed.
struct DistroLine {
    name: String,
    codename: String,
    arches: Vec<Arch>,
}

/// Run `debless list`.
pub fn run(a: ListArgs, g: &Global) -> anyhow::Result<()> {
    let snapshots = g.project.join("snapshots");
    let rules = RuleSet::load(&g.project.join("rules"))?;
    let mut names = Manifest::distros(&snapshots)?;
    if let Some(d) = &a.distro {
        if !names.contains(d) {
            anyhow::bail!(
                "no distro {d:?} under {}; distros: {}",
                snapshots.display(),
                names.join(", ")
            );
        }
        names.retain(|n| n == d);
    }
    let distros = names
        .iter()
        .map(|n| {
            let m = Manifest::load(&snapshots, n)?;
            Ok(DistroLine {
                name: m.distro,
                codename: m.codename,
                arches: m.architectures,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let in_scope = |r: &&Rule| names.iter().any(|d| r.has_distro(d));
    let images: Vec<&Rule> = rules
        .rules
        .values()
        .filter(|r| r.kind == debless::rules::Kind::Image)
        .filter(in_scope)
        .collect();
    let variants: Vec<&Rule> = rules
        .rules
        .values()
        .filter(|r| r.kind == debless::rules::Kind::Variant)
        .filter(in_scope)
        .collect();
    let arches: BTreeSet<Arch> = distros.iter().flat_map(|d| d.arches.clone()).collect();

    if a.json {
        let rule = |r: &&Rule| {
            serde_json::json!({
                "name": r.name,
                "description": r.description,
                "parent": r.parent,
                "distros": r.distros.iter().filter(|d| names.contains(d)).collect::<Vec<_>>(),
                "combines": r.combines,
                // The architectures an image is built for (its own, else its parent's);
                // null: every one the lock pins.
                "architectures": rules.architectures(&r.name),
                // Under rules/extra/: pinned with `pin --extra`, built only when named.
                "extra": r.extra,
                "file": r.file.display().to_string(),
            })
        };
        let doc = serde_json::json!({
            "distros": distros.iter().map(|d| serde_json::json!({
                "name": d.name,
                "codename": d.codename,
                "architectures": d.arches,
            })).collect::<Vec<_>>(),
            "images": images.iter().map(rule).collect::<Vec<_>>(),
            "variants": variants.iter().map(rule).collect::<Vec<_>>(),
            "architectures": arches.iter().map(|a| serde_json::json!({
                "name": a,
                "platform": platform_for(*a).to_string(),
            })).collect::<Vec<_>>(),
        });
        super::json::print(&doc)?;
        return Ok(());
    }
    match a.what {
        Some(What::Distros) => distros.iter().for_each(|d| println!("{}", d.name)),
        Some(What::Images) => images.iter().for_each(|r| println!("{}", r.name)),
        Some(What::Variants) => variants.iter().for_each(|r| println!("{}", r.name)),
        Some(What::Arches) => arches.iter().for_each(|a| println!("{a}")),
        None => {
            for d in &distros {
                let arches: Vec<&str> = d.arches.iter().map(|a| a.name()).collect();
                println!(
                    "distro   {:<12} {:<10} {}",
                    d.name,
                    d.codename,
                    arches.join(" ")
                );
            }
            for r in &images {
                let on: Vec<&str> = r
                    .distros
                    .iter()
                    .filter(|d| names.contains(d))
                    .map(String::as_str)
                    .collect();
                let built_for = rules.architectures(&r.name).map_or_else(
                    || "(all architectures) ".to_owned(),
                    |a| format!("({}) ", debless::arch::join(&a)),
                );
                println!(
                    "image    {:<12} {:<18} {}{}{}{}",
                    r.name,
                    on.join(","),
                    r.parent
                        .as_deref()
                        .map_or(String::new(), |p| format!("[on {p}] ")),
                    built_for,
                    if r.extra { "[extra: pin --extra] " } else { "" },
                    r.description
                );
            }
            for r in &variants {
                let on: Vec<&str> = r
                    .distros
                    .iter()
                    .filter(|d| names.contains(d))
                    .map(String::as_str)
                    .collect();
                println!(
                    "variant  {:<12} {:<18} {}",
                    r.name,
                    on.join(","),
                    r.description
                );
            }
            for a in &arches {
                println!("arch     {:<12} {}", a.name(), platform_for(*a));
            }
        }
    }
    Ok(())
}
