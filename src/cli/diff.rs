//! `debless diff`: what a snapshot bump changes.

use std::path::PathBuf;

use debless::snapshot::lock::Lock;

/// Arguments of `debless diff`.
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The old lock (e.g. from `git show HEAD:snapshots/debian13.lock > old.lock`).
    pub old: PathBuf,
    /// The new lock.
    pub new: PathBuf,
    /// Print JSON.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print a Markdown table for a pull-request comment.
    #[arg(long)]
    pub markdown: bool,
}

/// Run `debless diff`.
pub fn run(a: DiffArgs) -> anyhow::Result<()> {
    let DiffArgs {
        old,
        new,
        json,
        markdown,
    } = a;
    let d = debless::snapshot::diff::diff(&Lock::read(&old)?, &Lock::read(&new)?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
    } else if markdown {
        print!("{}", d.to_markdown());
    } else {
        print!("{}", d.to_text());
    }
    Ok(())
}
