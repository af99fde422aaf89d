//! `debless verify`: check an image in a registry against a public key: its signature,
//! its provenance and the lock it names, and every byte it reaches.

use std::path::PathBuf;

use debless::registry::{ImageReference, Verified, verify_image};
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
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
}

/// Run `debless verify`: what verified, on stdout; the first failure is the error.
pub fn run(args: VerifyArgs, quiet: bool) -> anyhow::Result<()> {
    let reference = ImageReference::parse(&args.image)?;
    let key = PublicKey::read(&args.key)?;
    let opts = args.registry.options(quiet)?;
    let inputs = tempfile::tempdir()?;
    let v = verify_image(&reference, &key, &opts, inputs.path(), args.lock.as_deref())?;
    if !quiet {
        print(&v, &args.key);
    }
    Ok(())
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
        "content: {} image manifest(s), {} blobs ({} bytes) downloaded and re-hashed",
        v.images.len(),
        v.blobs,
        v.bytes
    );
}
