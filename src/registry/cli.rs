//! `debless push`: its arguments and what it prints. Kept here so that `main.rs` holds one
//! variant and one call.

use std::path::PathBuf;

use super::{
    Credentials, DEFAULT_CHUNK_SIZE, DEFAULT_JOBS, PASSWORD_ENV, PushError, PushOptions,
    PushReport, USER_ENV, default_auth_files, push_layout, read_password,
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
pub fn run(args: PushArgs, quiet: bool) -> Result<(), PushError> {
    if args.jobs == 0 {
        return Err(PushError::Usage("--jobs must be at least 1".to_string()));
    }
    if args.chunk_size == 0 {
        return Err(PushError::Usage(
            "--chunk-size must be at least 1".to_string(),
        ));
    }
    let opts = PushOptions {
        credentials: credentials(&args)?,
        auth_files: default_auth_files(),
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

/// Credentials from the flags, then the environment; `None` leaves it to the auth files.
fn credentials(args: &PushArgs) -> Result<Option<Credentials>, PushError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (username, user_source) = match (&args.username, env(USER_ENV)) {
        (Some(u), _) => (Some(u.clone()), "--username".to_string()),
        (None, Some(u)) => (Some(u), format!("${USER_ENV}")),
        (None, None) => (None, String::new()),
    };
    let Some(username) = username else {
        if args.password_stdin {
            return Err(PushError::Usage(format!(
                "--password-stdin needs --username (or ${USER_ENV})"
            )));
        }
        if env(PASSWORD_ENV).is_some() {
            return Err(PushError::Usage(format!(
                "${PASSWORD_ENV} is set but no username is: pass --username or set ${USER_ENV}"
            )));
        }
        return Ok(None);
    };
    let password = if args.password_stdin {
        read_password(&mut std::io::stdin().lock())?
    } else if let Some(p) = env(PASSWORD_ENV) {
        p
    } else {
        return Err(PushError::Usage(format!(
            "{user_source} gives a username but no password: add --password-stdin (and pipe \
             the password in) or set ${PASSWORD_ENV}"
        )));
    };
    Ok(Some(Credentials {
        username,
        password,
        source: user_source,
    }))
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
