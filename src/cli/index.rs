//! `debless index`: each tag's multi-architecture index, written in the registry from the
//! per-architecture manifests the shards of a build pushed.

use debless::build::{AssembleOptions, assemble};
use debless::registry::{DEFAULT_JOBS, Login, PushOptions, read_password};

use super::Global;

/// Arguments of `debless index`.
#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// Where the shards pushed: REGISTRY/PREFIX, as given to `build --push` (image I is
    /// in PREFIX/I-<distro>).
    pub prefix: String,
    /// Images (rule names); none means every image the distro defines.
    pub images: Vec<String>,
    /// Distro whose lock the shards built.
    #[arg(long, default_value = "debian13")]
    pub distro: String,
    /// Tag to assemble (repeatable); none means `latest` plus every variant.
    #[arg(long = "variant", value_name = "V")]
    pub variants: Vec<String>,
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
    /// Print JSON: [{repository, tag, ref, digest, architectures}].
    #[arg(long)]
    pub json: bool,
}

/// Run `debless index`: one line per index on stdout.
pub fn run(args: IndexArgs, g: &Global) -> anyhow::Result<()> {
    let password = match args.password_stdin {
        true => Some(read_password(&mut std::io::stdin().lock())?),
        false => None,
    };
    let opts = AssembleOptions {
        project: g.project.clone(),
        distro: args.distro,
        images: args.images,
        variants: args.variants,
        prefix: args.prefix,
        push: PushOptions {
            login: Login {
                username: args.username,
                password,
                ..Login::from_env()
            },
            insecure: args.insecure,
            jobs: DEFAULT_JOBS,
            quiet: g.quiet,
            ..PushOptions::default()
        },
    };
    let written = assemble(&opts)?;
    if args.json {
        let doc: Vec<serde_json::Value> = written
            .iter()
            .map(|t| {
                serde_json::json!({
                    "repository": t.repository,
                    "tag": t.tag,
                    "ref": format!("{}:{}", t.repository, t.tag),
                    "digest": t.digest,
                    "architectures": t.members,
                })
            })
            .collect();
        super::json::print(&doc)?;
    } else if !g.quiet {
        for t in &written {
            println!(
                "indexed {}:{} {} ({} architectures)",
                t.repository, t.tag, t.digest, t.members
            );
        }
    }
    Ok(())
}
