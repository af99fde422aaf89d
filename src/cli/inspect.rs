//! `debless inspect`: what an image holds.

/// Arguments of `debless inspect`.
#[derive(clap::Args)]
pub struct InspectArgs {
    /// OUT/IMAGE[:TAG], e.g. out/python3-debian13:nonroot (default tag: latest).
    pub target: String,
    /// How many of the largest files to list.
    #[arg(long, default_value_t = 10)]
    pub largest: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless inspect`.
pub fn run(a: InspectArgs) -> anyhow::Result<()> {
    let InspectArgs {
        target,
        largest,
        json,
    } = a;
    let (dir, tag) = debless::inspect::parse_target(&target);
    let r = debless::inspect::inspect(&dir, &tag, largest)?;
    if json {
        super::json::print(&r)?;
    } else {
        print!("{}", r.to_text());
    }
    Ok(())
}
