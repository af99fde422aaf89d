//! `debless push`: its arguments, the options they make, and what it prints.

use std::path::PathBuf;

use debless::registry::{
    DEFAULT_CHUNK_SIZE, DEFAULT_JOBS, Login, PushOptions, PushReport, push_layout, read_password,
};

/// Arguments of `debless push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// Image layout directory written by `debless build` (e.g. out/base-debian13).
    pub layout: PathBuf,
    /// Where to push: REGISTRY/REPOSITORY[:TAG]. A :TAG pushes that tag only (with its
    /// per-architecture tags); without one, every tag of the layout.
    pub target: String,
    /// Push this layout tag (repeatable; besides a :TAG in TARGET), with its
    /// per-architecture tags.
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Use plain HTTP instead of HTTPS (a local test registry).
    #[arg(long)]
    pub insecure: bool,
    /// Parallel blob uploads.
    #[arg(long, short = 'j', default_value_t = DEFAULT_JOBS)]
    pub jobs: usize,
    /// Registry username [default: $DEBLESS_REGISTRY_USER, else the auth files].
    #[arg(long, short = 'u', value_name = "U")]
    pub username: Option<String>,
    /// Read the password (or token) from the first line of stdin
    /// [default: $DEBLESS_REGISTRY_PASSWORD].
    #[arg(long)]
    pub password_stdin: bool,
    /// Blobs larger than this many bytes go in chunks of this size.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u64,
}

/// Run `debless push`: one line per tag on stdout, a summary on stderr.
pub fn run(args: PushArgs, quiet: bool) -> anyhow::Result<()> {
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    if args.chunk_size == 0 {
        anyhow::bail!("--chunk-size must be at least 1");
    }
    let password = match args.password_stdin {
        true => Some(read_password(&mut std::io::stdin().lock())?),
        false => None,
    };
    let opts = PushOptions {
        login: Login {
            username: args.username,
            password,
            ..Login::from_env()
        },
        tags: args.tags,
        insecure: args.insecure,
        jobs: args.jobs,
        chunk_size: args.chunk_size,
        quiet,
        ..PushOptions::default()
    };
    let report = push_layout(&args.layout, &args.target, &opts)?;
    if !quiet {
        print(&report);
    }
    Ok(())
}

fn print(r: &PushReport) {
    for t in &r.tags {
        println!("pushed {}:{} {}", r.repository, t.tag, t.digest);
    }
    eprintln!(
        "blobs: {} uploaded ({} bytes, {} in chunks), {} mounted ({} bytes), {} already there \
         ({} bytes); {} manifests; {} SBOMs attached",
        r.uploaded.blobs,
        r.uploaded.bytes,
        r.chunked,
        r.mounted.blobs,
        r.mounted.bytes,
        r.skipped.blobs,
        r.skipped.bytes,
        r.manifests,
        r.sboms
    );
}
