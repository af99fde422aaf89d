//! `debless diff`: what a snapshot bump changes.

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Exit 1 when the locks differ (a package added, removed or moved, or an
    /// architecture added or removed), 0 when they do not, 2 on an error: as `git diff
    /// --exit-code`.
    #[arg(long)]
    pub exit_code: bool,
}

/// Run `debless diff`.
pub fn run(a: DiffArgs) -> anyhow::Result<ExitCode> {
    let DiffArgs {
        old,
        new,
        json,
        markdown,
        exit_code,
    } = a;
    let d = debless::snapshot::diff::diff(&Lock::read(&old)?, &Lock::read(&new)?)?;
    if json {
        super::json::print(&d)?;
    } else if markdown {
        print!("{}", d.to_markdown());
    } else {
        print!("{}", d.to_text());
    }
    Ok(match exit_code && !d.is_empty() {
        true => ExitCode::from(1),
        false => ExitCode::SUCCESS,
    })
}
