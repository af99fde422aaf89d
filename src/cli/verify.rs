//! `debless verify`: check an image in a registry against a public key: its signature,
//! its provenance and the lock it names, and every byte it reaches; with `--rebuild`, make
//! it again from what the provenance records and compare.

use std::path::PathBuf;

use debless::build::rebuild::{RebuildOptions, Rebuilt, rebuild};
use debless::fetch::cache::Cache;
use debless::fetch::mirror::{MIRRORS_ENV, SNAPSHOT_ENV};
use debless::registry::{Access, ImageReference, Repository, Verified, verify_image};
use debless::sign::PublicKey;
use debless::sign::provenance::DEBLESS_DEPENDENCY;

use super::push::RegistryArgs;

/// Arguments of `debless verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The image: REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:HEX.
    pub image: String,
    /// The signer's public key (cosign.pub).
    #[arg(long, value_name = "PUB")]
    pub key: PathBuf,
    /// A lock you trust (e.g. your snapshots/debian13.lock): the image must have been
    /// built from exactly it, and every .deb its provenance lists must be in it.
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
    /// Then rebuild the image from what its provenance records (lock, rules, parameters;
    /// the .debs from the cache, the mirrors, or the mirrors the provenance names) and
    /// require the same digest; a difference names the first differing layer and file.
    #[arg(long)]
    pub rebuild: bool,
    /// Cache directory for .debs [default: $XDG_CACHE_HOME/debless] (--rebuild).
    #[arg(long, value_name = "DIR", requires = "rebuild")]
    pub cache_dir: Option<PathBuf>,
    /// Mirror URL (repeatable; replaces the default list, as for `build`) (--rebuild).
    #[arg(long = "mirror", value_name = "URL", requires = "rebuild")]
    pub mirrors: Vec<String>,
    /// Snapshot service URL template, for locks pinned with --date (--rebuild).
    #[arg(long, env = SNAPSHOT_ENV, value_name = "URL")]
    pub snapshot_service: Option<String>,
    /// Use only the .debs in the cache (--rebuild).
    #[arg(long, requires = "rebuild")]
    pub offline: bool,
    /// Worker threads for the rebuild [default: the number of CPUs].
    #[arg(long, short = 'j', requires = "rebuild")]
    pub jobs: Option<usize>,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print JSON on stdout (docs/json.md) instead of the lines, once everything verified.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless verify`: what verified, on stdout; the first failure is the error.
pub fn run(args: VerifyArgs, quiet: bool) -> anyhow::Result<()> {
    let reference = ImageReference::parse(&args.image)?;
    let key = PublicKey::read(&args.key)?;
    let opts = args.registry.options(quiet)?;
    let inputs = tempfile::tempdir()?;
    let v = verify_image(&reference, &key, &opts, inputs.path(), args.lock.as_deref())?;
    if !quiet && !args.json {
        print(&v, &args.key);
    }
    let mut rebuilt = None;
    if args.rebuild {
        let jobs = args.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        if jobs == 0 {
            anyhow::bail!("--jobs must be at least 1");
        }
        let repo = Repository::open(&reference.target, Access::Pull, &opts)?;
        let r = rebuild(
            &v.provenance,
            &v.subject.digest,
            inputs.path(),
            &repo,
            &v.images,
            &RebuildOptions {
                cache_dir: args.cache_dir.unwrap_or_else(Cache::default_dir),
                mirrors: args.mirrors,
                env_mirrors: std::env::var(MIRRORS_ENV)
                    .ok()
                    .filter(|v| !v.trim().is_empty()),
                snapshot_service: args.snapshot_service,
                etc_apt: PathBuf::from("/etc/apt"),
                offline: args.offline,
                jobs,
                quiet: true,
            },
        )?;
        if !quiet && !args.json {
            print_rebuilt(&r);
        }
        rebuilt = Some(r);
    }
    if args.json {
        super::json::print(&super::json::verify(&v, rebuilt.as_ref()))?;
    }
    Ok(())
}

fn print_rebuilt(r: &Rebuilt) {
    println!(
        "rebuild: identical: {} is {} again ({} image manifest(s); .debs: {} needed, {} \
         downloaded)",
        r.name, r.digest, r.images, r.fetch.wanted, r.fetch.downloaded
    );
    if let Some(other) = &r.other_debless {
        println!("rebuild: note: made with another debless than the provenance names ({other})");
    }
}

fn print(v: &Verified, key: &std::path::Path) {
    let p = &v.provenance.predicate;
    let external = &p.build_definition.external_parameters;
    let debs = p
        .build_definition
        .resolved_dependencies
        .iter()
        .filter(|d| d.name.as_deref() != Some(DEBLESS_DEPENDENCY))
        .count();
    let builder = p
        .build_definition
        .resolved_dependencies
        .iter()
        .find(|d| d.name.as_deref() == Some(DEBLESS_DEPENDENCY))
        .map(|d| {
            format!(
                "{} {}",
                d.uri.as_deref().unwrap_or("debless"),
                d.sha256().map(|s| s.to_string()).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    println!("verified {}@{}", v.repository, v.subject.digest);
    println!(
        "signature: {} signature(s) by {} (signed for {})",
        v.signatures.len(),
        key.display(),
        v.signatures
            .first()
            .map(|s| s.payload.docker_reference.as_str())
            .unwrap_or_default()
    );
    println!(
        "provenance: SLSA v1 from {}, builder {}, {builder}",
        v.provenance_from, p.run_details.builder.id
    );
    println!(
        "inputs: lock {} {}, {} rule files; {debs} .debs, each the lock's",
        external.lock.name.as_deref().unwrap_or("(unnamed)"),
        external
            .lock
            .sha256()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        external.rules.len()
    );
    println!(
        "content: {} image manifest(s), {} blobs ({}) downloaded and re-hashed",
        v.images.len(),
        v.blobs,
        debless::text::bytes(v.bytes)
    );
}
