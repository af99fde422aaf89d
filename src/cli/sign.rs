//! `debless sign`: sign an image already in a registry, as `cosign sign --key` does, and
//! optionally attach a provenance statement signed with the same key.

use std::path::PathBuf;

use debless::oci::{Content, Document};
use debless::registry::{Access, ImageReference, Repository, attest_provenance, sign_digest};
use debless::sign::provenance::{Provenance, Statement};

use super::push::{RegistryArgs, read_private_key};

/// Arguments of `debless sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The image: REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@sha256:HEX.
    pub image: String,
    /// Private key (cosign.key, or any P-256 PEM key); COSIGN_PASSWORD opens an encrypted
    /// one.
    #[arg(long, value_name = "KEY")]
    pub key: PathBuf,
    /// For an index, also sign every manifest it lists (as `cosign sign --recursive`).
    #[arg(long)]
    pub recursive: bool,
    /// Also sign this in-toto provenance statement (a <tag>.intoto.json `debless build`
    /// wrote) and attach it to the image (sha256-<hex>.att and an OCI referrer).
    #[arg(long, value_name = "FILE")]
    pub provenance: Option<PathBuf>,
    /// How to reach the registry.
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Print JSON on stdout: {repository, signed: [{digest, new}], attested}.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless sign`: one line per digest signed.
pub fn run(args: SignArgs, quiet: bool) -> anyhow::Result<()> {
    let reference = ImageReference::parse(&args.image)?;
    let key = read_private_key(&args.key)?;
    let statement = match &args.provenance {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("{}: cannot read the statement: {e}", path.display())
            })?;
            Some(Statement::<Provenance>::from_json(&bytes)?)
        }
        None => None,
    };
    let opts = args.registry.options(quiet)?;
    let repo = Repository::open(&reference.target, Access::Push, &opts)?;
    let Some(image) = repo.manifest(&reference.reference())? else {
        anyhow::bail!(
            "{reference}: no such manifest in {}; check the tag or digest",
            repo.name()
        );
    };
    let mut digests = vec![image.digest];
    if args.recursive {
        let doc = Document::parse(&image.descriptor(), image.bytes.clone())?;
        if let Content::Index(children) = doc.content {
            digests.extend(children.iter().map(|c| c.digest));
        }
    }
    let mut signed = Vec::new();
    for digest in &digests {
        let new = sign_digest(&repo, &key, digest)?;
        signed.push(serde_json::json!({"digest": digest, "new": new}));
        if !quiet && !args.json {
            println!(
                "signed {}@{digest}{}",
                repo.name(),
                if new {
                    ""
                } else {
                    " (already signed with this key)"
                }
            );
        }
    }
    let mut attested = None;
    if let Some(statement) = statement {
        let (_, via) = attest_provenance(&repo, &key, &statement, &image.descriptor())?;
        attested = Some(serde_json::json!({
            "digest": image.digest,
            "referrers": super::json::via(via),
        }));
        if !quiet && !args.json {
            println!(
                "attested {}@{} (provenance as {}.att and a referrer listed through {via})",
                repo.name(),
                image.digest,
                image.digest.to_string().replace(':', "-")
            );
        }
    }
    if args.json {
        super::json::print(&serde_json::json!({
            "repository": repo.name(),
            "signed": signed,
            "attested": attested,
        }))?;
    }
    Ok(())
}
