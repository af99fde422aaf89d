//! `debless pin`: its arguments, the options they make, and what it prints.

use std::path::PathBuf;

use debless::arch::Arch;
use debless::fetch::cache::Cache;
use debless::fetch::mirror::{MIRRORS_ENV, SNAPSHOT_ENV};
use debless::pin::{Extra, PinChanges, PinOptions, Upgrade, pin};

use super::Global;

/// Arguments of `debless pin`.
#[derive(clap::Args)]
pub struct PinArgs {
    /// Distro to pin (a manifest snapshots/<distro>.toml must exist).
    #[arg(long, default_value = "debian13")]
    pub distro: String,
    /// Snapshot date (RFC 3339, e.g. 2026-11-20T00:00:00Z): pin the archive as it was then.
    #[arg(long)]
    pub date: Option<String>,
    /// Mirror URL (repeatable); replaces the default mirror list.
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// Architecture (repeatable); replaces the manifest's list. Architectures the
    /// existing lock has are kept too (see --drop-arch).
    #[arg(long = "arch", value_name = "ARCH")]
    pub arches: Vec<Arch>,
    /// Remove an architecture from the existing lock (repeatable).
    #[arg(long = "drop-arch", value_name = "ARCH")]
    pub drop_arches: Vec<Arch>,
    /// Move locked versions: alone, every package goes to the newest version the
    /// archive offers; with names, only those packages. Without it a pin keeps every
    /// locked version that is still offered and satisfies what needs it.
    #[arg(long, value_name = "PKG", num_args = 0..)]
    pub upgrade: Option<Vec<String>>,
    /// Snapshot service URL template for dated pins.
    #[arg(long, env = SNAPSHOT_ENV, value_name = "URL")]
    pub snapshot_service: Option<String>,
    /// Write the lock here instead of snapshots/<distro>.lock.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Cache directory for downloaded indices [default: $XDG_CACHE_HOME/debless].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Also pin images under rules/extra/ (from vendor repositories and upstream
    /// tarballs, whose sites must be reachable): alone, every one; with names, those.
    /// Extra images not named leave the lock.
    #[arg(long, value_name = "IMAGE", num_args = 0..)]
    pub extra: Option<Vec<String>>,
    /// Print JSON on stdout: the lock written, packages per architecture, the changes.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless pin`: a summary line and the changes against the old lock on stderr.
pub fn run(a: PinArgs, g: &Global) -> anyhow::Result<()> {
    let PinArgs {
        distro,
        date,
        mirrors,
        arches,
        drop_arches,
        upgrade,
        snapshot_service,
        output,
        cache_dir,
        extra,
        json,
    } = a;
    let extra = match extra {
        None => Extra::None,
        Some(names) if names.is_empty() => Extra::All,
        Some(names) => Extra::Only(names.into_iter().collect()),
    };
    let upgrade = match upgrade {
        None => Upgrade::Nothing,
        Some(names) if names.is_empty() => Upgrade::All,
        Some(names) => Upgrade::Only(names.into_iter().collect()),
    };
    let opts = PinOptions {
        project: g.project.clone(),
        distro,
        date,
        mirrors,
        arches,
        drop_arches,
        upgrade,
        snapshot_service,
        output,
        cache_dir: cache_dir.unwrap_or_else(Cache::default_dir),
        etc_apt: PathBuf::from("/etc/apt"),
        env_mirrors: std::env::var(MIRRORS_ENV)
            .ok()
            .filter(|s| !s.trim().is_empty()),
        quiet: g.quiet,
        extra,
    };
    let r = pin(&opts)?;
    if json {
        return super::json::print(&super::json::pin(&r));
    }
    let counts: Vec<String> = r.packages.iter().map(|(a, n)| format!("{a} {n}")).collect();
    if !g.quiet {
        eprintln!(
            "pinned {}: packages {}; {} exclusions; indices {:.2}s wall ({} stanzas parsed in {:.2}s CPU); resolve {:.3}s",
            r.lock_path.display(),
            counts.join(", "),
            r.excluded,
            r.fetch_secs,
            r.stanzas,
            r.parse_secs,
            r.resolve_secs
        );
        print_pin_changes(&r.changes);
    }
    Ok(())
}

/// What an incremental pin kept and moved, so the bump can be reviewed.
fn print_pin_changes(c: &PinChanges) {
    eprintln!(
        "changes: {} kept, {} added, {} changed, {} removed",
        c.kept,
        c.added.len(),
        c.changed.len(),
        c.removed.len()
    );
    for (arch, name, old, new) in &c.changed {
        eprintln!("  {name} ({arch}): {old} -> {new}");
    }
    for (arch, name, version) in &c.gone {
        eprintln!("  note: {name} {version} ({arch}) is no longer offered by the archive");
    }
    for (arch, name, version) in &c.tarballs_hashed {
        eprintln!("  tarball {name} {version} ({arch}): downloaded and hashed");
    }
    for arch in &c.kept_arches {
        eprintln!(
            "  note: kept {arch} from the existing lock; `debless pin --drop-arch {arch}` removes it"
        );
    }
}
