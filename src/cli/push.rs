//! `debless push`: its arguments, the options they make, and what it prints.

use std::path::{Path, PathBuf};

use debless::registry::{
    DEFAULT_CHUNK_SIZE, DEFAULT_JOBS, Login, PushOptions, PushReport, push_layout, read_password,
};
use debless::sign::PrivateKey;
use debless::sign::keys::password_from_env;
use debless::text::bytes;

/// How to reach a registry: shared by `push`, `sign` and `verify`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Use plain HTTP instead of HTTPS (a local test registry).
    #[arg(long)]
    pub insecure: bool,
    /// Registry username [default: $DEBLESS_REGISTRY_USER, else the auth files].
    #[arg(long, short = 'u', value_name = "U")]
    pub username: Option<String>,
    /// Read the password (or token) from the first line of stdin
    /// [default: $DEBLESS_REGISTRY_PASSWORD].
    #[arg(long)]
    pub password_stdin: bool,
}

impl RegistryArgs {
    /// The options these make (the rest default).
    pub fn options(self, quiet: bool) -> anyhow::Result<PushOptions> {
        let password = match self.password_stdin {
            true => Some(read_password(&mut std::io::stdin().lock())?),
            false => None,
        };
        Ok(PushOptions {
            login: Login {
                username: self.username,
                password,
                ..Login::from_env()
            },
            insecure: self.insecure,
            quiet,
            ..PushOptions::default()
        })
    }
}

/// Read a private key, opening cosign's encrypted form with `$COSIGN_PASSWORD`.
pub fn read_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let password = password_from_env();
    Ok(PrivateKey::read(
        path,
        password.as_ref().map(|p| p.as_slice()),
    )?)
}

/// Arguments of `debless push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// What to push: an image layout directory written by `debless build` (e.g.
    /// out/base-debian13) or an oci-archive (out/base-debian13.tar), optionally with
    /// :TAG to push that one tag under the name TARGET gives it (out/base-debian13:latest).
    pub source: String,
    /// Where to push: REGISTRY/REPOSITORY[:TAG]. Without a tag on SOURCE, a :TAG pushes
    /// that layout tag only (with its per-architecture tags); without one, every tag. With
    /// SOURCE:TAG, the tag pushed is named :TAG here (`latest` as `v1.2.3`, its
    /// `latest-amd64` as `v1.2.3-amd64`), or keeps its name without one.
    pub target: String,
    /// Push this layout tag (repeatable; besides a :TAG in TARGET), with its
    /// per-architecture tags.
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Parallel blob uploads.
    #[arg(long, short = 'j', default_value_t = DEFAULT_JOBS)]
    pub jobs: usize,
    /// Blobs larger than this many bytes go in chunks of this size.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u64,
    /// Sign every pushed manifest and index with this private key as cosign does
    /// (sha256-<hex>.sig), and attach each tag's provenance (from <layout>.provenance/)
    /// signed with it: as sha256-<hex>.att and as an OCI referrer. COSIGN_PASSWORD opens
    /// an encrypted key.
    #[arg(long, value_name = "KEY")]
    pub sign_key: Option<PathBuf>,
    /// Print JSON on stdout (docs/json.md) instead of the lines.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless push`: one line per tag on stdout, a summary on stderr.
pub fn run(args: PushArgs, quiet: bool) -> anyhow::Result<()> {
    if args.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    if args.chunk_size == 0 {
        anyhow::bail!("--chunk-size must be at least 1");
    }
    let sign_key = match &args.sign_key {
        Some(path) => Some(read_private_key(path)?),
        None => None,
    };
    let (layout, source_tag) = split_source(&args.source);
    let opts = PushOptions {
        tags: args.tags,
        source_tag,
        jobs: args.jobs,
        chunk_size: args.chunk_size,
        sign_key,
        ..args.registry.options(quiet)?
    };
    let report = push_layout(&layout, &args.target, &opts)?;
    if args.json {
        super::json::print(&super::json::push(&report))?;
    } else if !quiet {
        print(&report);
    }
    Ok(())
}

/// `out/base-debian13:latest` into the layout and the tag; a path that exists as given
/// (even with a colon in its name) has no tag.
fn split_source(source: &str) -> (PathBuf, Option<String>) {
    if Path::new(source).exists() {
        return (PathBuf::from(source), None);
    }
    let slash = source.rfind('/').map_or(0, |i| i + 1);
    match source[slash..].rfind(':') {
        Some(i) => (
            PathBuf::from(&source[..slash + i]),
            Some(source[slash + i + 1..].to_owned()),
        ),
        None => (PathBuf::from(source), None),
    }
}

fn print(r: &PushReport) {
    for t in &r.tags {
        println!("pushed {}:{} {}", r.repository, t.tag, t.digest);
    }
    eprintln!(
        "blobs: {} uploaded ({}, {} in chunks), {} mounted ({}), {} already there ({}); {} \
         manifests; {} SBOMs attached",
        r.uploaded.blobs,
        bytes(r.uploaded.bytes),
        r.chunked,
        r.mounted.blobs,
        bytes(r.mounted.bytes),
        r.skipped.blobs,
        bytes(r.skipped.bytes),
        r.manifests,
        r.sboms
    );
    if let Some(s) = &r.signing {
        let via = s
            .referrers
            .map(|v| format!(", listed through {v}"))
            .unwrap_or_default();
        eprintln!(
            "signed {} manifests and indexes ({} new signatures); {} provenance statements \
             attached{via}",
            s.signed, s.new_signatures, s.attested
        );
        for path in &s.envelopes {
            eprintln!("wrote {}", path.display());
        }
    }
}
