//! `debless cache`: what the cache holds, and pruning it.

use std::path::PathBuf;

use debless::build::prune::{
    CacheReport, DEFAULT_GRACE, Kind, PruneOptions, PruneReport, parse_age, prune, report,
};
use debless::fetch::cache::Cache;

/// Arguments of `debless cache`.
#[derive(clap::Args)]
pub struct CacheArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: CacheAction,
}

/// `debless cache` subcommands.
#[derive(clap::Subcommand)]
pub enum CacheAction {
    /// The cache's size by kind: .debs, layers (entries and blobs), SPDX documents,
    /// archive indices, other blobs (upstream tarballs), partial downloads, lock files.
    Size(SizeArgs),
    /// Remove what was not used for a while (--older-than) and/or what none of some locks
    /// needs (--keep-lock), never what was used within --grace (a running build's files).
    ///
    /// Last use is a file's mtime or atime, whichever is later; a build sets the mtime of
    /// each .deb, layer and document it takes from the cache. With --keep-lock, a .deb,
    /// index or tarball is needed if a kept lock names it, and a layer entry or SPDX
    /// document if every .deb it was made from is named (a layer blob goes with the last
    /// entry naming it). Both options: only what is old and unneeded goes. Lock files
    /// stay; a partial download goes only when no process holds its lock.
    Prune(PruneArgs),
}

/// Where the cache is, and how to print.
#[derive(clap::Args)]
pub struct CacheDir {
    /// Cache directory [default: $XDG_CACHE_HOME/debless].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `debless cache size`.
#[derive(clap::Args)]
pub struct SizeArgs {
    #[command(flatten)]
    pub dir: CacheDir,
}

/// Arguments of `debless cache prune`.
#[derive(clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub dir: CacheDir,
    /// Remove only what was last used longer ago than AGE (e.g. 30d, 12h; units s m h d w).
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<std::time::Duration>,
    /// Keep what this lock needs (repeatable): remove only what none of them needs.
    #[arg(long = "keep-lock", value_name = "LOCK")]
    pub keep_locks: Vec<PathBuf>,
    /// Never remove what was used more recently than AGE, so a build running meanwhile
    /// keeps its files [default: 1h].
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub grace: Option<std::time::Duration>,
    /// List what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

impl CacheArgs {
    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        match &self.action {
            CacheAction::Size(s) => s.dir.json,
            CacheAction::Prune(p) => p.dir.json,
        }
    }
}

/// Run `debless cache`.
pub fn run(a: CacheArgs, quiet: bool) -> anyhow::Result<()> {
    match a.action {
        CacheAction::Size(s) => {
            let dir = s.dir.cache_dir.unwrap_or_else(Cache::default_dir);
            let r = report(&dir)?;
            if s.dir.json {
                super::json::print(&r)?;
            } else {
                print!("{}", sizes(&r));
            }
        }
        CacheAction::Prune(p) => {
            let dir = p.dir.cache_dir.unwrap_or_else(Cache::default_dir);
            let r = prune(
                &dir,
                &PruneOptions {
                    older_than: p.older_than,
                    keep_locks: p.keep_locks,
                    grace: p.grace.unwrap_or(DEFAULT_GRACE),
                    dry_run: p.dry_run,
                },
            )?;
            if p.dir.json {
                super::json::print(&r)?;
            } else if !quiet {
                print_prune(&r);
            }
        }
    }
    Ok(())
}

/// One line per kind, then the total.
fn sizes(r: &CacheReport) -> String {
    let mut s = format!("{}\n", r.dir);
    for k in Kind::ALL {
        let n = r.kinds.get(&k).copied().unwrap_or_default();
        s.push_str(&format!(
            "  {:<8} {:>7} files {:>10}\n",
            k.name(),
            n.files,
            debless::text::bytes(n.bytes)
        ));
    }
    s.push_str(&format!(
        "  {:<8} {:>7} files {:>10}\n",
        "total",
        r.total.files,
        debless::text::bytes(r.total.bytes)
    ));
    s
}

fn print_prune(r: &PruneReport) {
    let verb = if r.dry_run { "would remove" } else { "removed" };
    for f in &r.removed {
        println!(
            "{verb} {} ({}, {})",
            f.path,
            f.kind.name(),
            debless::text::bytes(f.bytes)
        );
    }
    let freed: u64 = r.removed.iter().map(|f| f.bytes).sum();
    eprintln!(
        "{verb} {} files, {}; the cache {} {} ({} before)",
        r.removed.len(),
        debless::text::bytes(freed),
        if r.dry_run { "would hold" } else { "holds" },
        debless::text::bytes(r.after.total.bytes),
        debless::text::bytes(r.before.total.bytes)
    );
}
