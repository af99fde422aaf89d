//! `--json`: every command's one document on stdout, and the error object a failing
//! command prints instead. docs/json.md is the schema; a field renamed here breaks scripts,
//! so add fields, never rename or retype one.

use std::io::Write as _;
use std::path::Path;

use debless::build::rebuild::Rebuilt;
use debless::build::{BuildReport, Format};
use debless::fetch::debs::FetchReport;
use debless::registry::PushReport;
use debless::sign::provenance::DEBLESS_DEPENDENCY;
use serde::Serialize;
use serde_json::{Value, json};

/// Print `doc` as the command's one JSON document on stdout.
pub fn print<T: Serialize + ?Sized>(doc: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, doc)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The error object: `{"error": {"message": ..., "kind": ...}}`, `message` the same line
/// the text error prints.
pub fn error(e: &anyhow::Error) -> Value {
    json!({
        "error": {
            "message": debless::text::error_line(e.as_ref()),
            "kind": kind(e),
        }
    })
}

/// Which part of debless failed, from the outermost library error in the chain: a stable
/// short name for scripts to branch on (docs/json.md lists them; `other` is anything else,
/// such as an argument the command refused).
fn kind(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        macro_rules! is {
            ($($t:ty => $k:literal),* $(,)?) => {
                $(if cause.downcast_ref::<$t>().is_some() {
                    return $k;
                })*
            };
        }
        is! {
            debless::build::BuildError => "build",
            debless::fetch::debs::FetchError => "fetch",
            debless::pin::PinError => "pin",
            debless::pin::why::WhyError => "why",
            debless::snapshot::diff::DiffError => "diff",
            debless::snapshot::lock::LockError => "lock",
            debless::rules::RuleError => "rules",
            debless::inspect::InspectError => "inspect",
            debless::inspect::owners::OwnersError => "inspect",
            debless::build::prune::PruneError => "cache",
            debless::unpack::UnpackError => "unpack",
            debless::oci::OciError => "oci",
            debless::registry::PushError => "registry",
            debless::registry::VerifyError => "verify",
            debless::sign::SignError => "sign",
            std::io::Error => "io",
        }
    }
    "other"
}

/// A path as JSON: its text (lossy for non-UTF-8 names, which debless never writes).
fn path(p: &Path) -> Value {
    Value::String(p.display().to_string())
}

/// How referrers are listed: `api` or `tag_schema`.
pub fn via(v: debless::registry::referrers::Via) -> &'static str {
    match v {
        debless::registry::referrers::Via::Api => "api",
        debless::registry::referrers::Via::TagSchema => "tag_schema",
    }
}

/// `debless build --json`.
pub fn build(r: &BuildReport) -> Value {
    let images: Vec<Value> = r
        .tags
        .iter()
        .map(|t| {
            json!({
                "image": t.image,
                "repository": t.repository,
                "tag": t.tag,
                "arch": t.arch,
                "ref": format!("{}:{}-{}", t.repository, t.tag, t.arch),
                "digest": t.digest,
                "uncompressed_bytes": t.tar_bytes,
                "compressed_bytes": t.blob_bytes,
                "layers": t.layers,
            })
        })
        .collect();
    let tags: Vec<Value> = r
        .indexes
        .iter()
        .map(|x| {
            let repo = r.repositories.iter().find(|p| p.name == x.repository);
            let output = |f: Format| repo.and_then(|p| p.outputs.get(&f)).map(|p| path(p));
            let spdx = |name: &str| repo.map(|p| path(&p.sbom_dir.join(name)));
            let manifests: Vec<Value> =
                x.arches
                    .iter()
                    .map(|&arch| {
                        let row = r.tags.iter().find(|t| {
                            t.repository == x.repository && t.tag == x.tag && t.arch == arch
                        });
                        json!({
                            "arch": arch,
                            "platform": debless::oci::platform_for(arch).to_string(),
                            // Null for a member a partial build kept from the layout.
                            "digest": row.map(|t| t.digest),
                            "spdx": spdx(&format!("{}-{arch}.spdx.json", x.tag)),
                        })
                    })
                    .collect();
            json!({
                "image": x.image,
                "repository": x.repository,
                "tag": x.tag,
                "ref": format!("{}:{}", x.repository, x.tag),
                "index_digest": x.digest,
                "manifests": manifests,
                "layout": output(Format::Oci),
                "oci_archive": output(Format::OciArchive),
                "docker_archive": output(Format::DockerArchive),
                "spdx": spdx(&format!("{}.spdx.json", x.tag)),
            })
        })
        .collect();
    json!({
        "images": images,
        "tags": tags,
        "outputs": r.outputs.iter().map(|p| path(p)).collect::<Vec<_>>(),
        "up_to_date": r.up_to_date.iter().map(|p| path(p)).collect::<Vec<_>>(),
        "layers": {
            "total": r.layers,
            "made": r.layers_made,
            "cached": r.layers - r.layers_made,
            "shared": r.layers_shared,
        },
        "debs": { "needed": r.fetch.wanted, "downloaded": r.fetch.downloaded },
        "cache_registry": r.registry_cache.as_ref().map(|rc| json!({
            "repository": rc.repository,
            "fetched": rc.hits,
            "missing": rc.misses,
            "pushed": rc.pushed,
            "warnings": rc.warnings,
        })),
        "tag_changes": r.tag_changes.iter().map(|(repo, c)| (repo.clone(), json!({
            "added": c.added,
            "replaced": c.replaced,
            "removed": c.removed,
            "kept": c.kept,
        }))).collect::<serde_json::Map<_, _>>(),
    })
}

/// `debless pin --json`.
pub fn pin(r: &debless::pin::PinReport) -> Value {
    let c = &r.changes;
    json!({
        "lock": path(&r.lock_path),
        "packages": r.packages,
        "excluded": r.excluded,
        "changes": {
            "kept": c.kept,
            "added": c.added.iter().map(|(arch, name)| json!({"arch": arch, "name": name}))
                .collect::<Vec<_>>(),
            "changed": c.changed.iter().map(|(arch, name, old, new)| json!({
                "arch": arch, "name": name, "old": old, "new": new,
            })).collect::<Vec<_>>(),
            "removed": c.removed.iter().map(|(arch, name)| json!({"arch": arch, "name": name}))
                .collect::<Vec<_>>(),
            "gone": c.gone.iter().map(|(arch, name, version)| json!({
                "arch": arch, "name": name, "version": version,
            })).collect::<Vec<_>>(),
            "tarballs_hashed": c.tarballs_hashed.iter().map(|(arch, name, version)| json!({
                "arch": arch, "name": name, "version": version,
            })).collect::<Vec<_>>(),
            "kept_arches": c.kept_arches,
        },
        "stanzas": r.stanzas,
        "seconds": {
            "indices": r.fetch_secs,
            "parse_cpu": r.parse_secs,
            "resolve": r.resolve_secs,
        },
    })
}

/// `debless fetch --json`.
pub fn fetch(r: &FetchReport) -> Value {
    json!({
        "needed": r.wanted,
        "cached": r.cached,
        "downloaded": r.downloaded,
        "downloaded_bytes": r.bytes,
    })
}

/// `debless push --json` (and each push of `build --push --json`).
pub fn push(r: &PushReport) -> Value {
    let count = |c: &debless::registry::BlobCount| json!({"blobs": c.blobs, "bytes": c.bytes});
    json!({
        "repository": r.repository,
        "tags": r.tags.iter().map(|t| json!({
            "tag": t.tag,
            "ref": format!("{}:{}", r.repository, t.tag),
            "digest": t.digest,
            "media_type": t.media_type,
        })).collect::<Vec<_>>(),
        "blobs": {
            "uploaded": count(&r.uploaded),
            "mounted": count(&r.mounted),
            "already_there": count(&r.skipped),
            "chunked": r.chunked,
        },
        "manifests": r.manifests,
        "sboms": r.sboms,
        "signing": r.signing.as_ref().map(|s| json!({
            "signed": s.signed,
            "new_signatures": s.new_signatures,
            "attested": s.attested,
            "referrers": s.referrers.map(via),
            "envelopes": s.envelopes.iter().map(|p| path(p)).collect::<Vec<_>>(),
        })),
    })
}

/// `debless verify --json`: what verified, and the rebuild when `--rebuild` ran.
pub fn verify(v: &debless::registry::Verified, rebuilt: Option<&Rebuilt>) -> Value {
    let p = &v.provenance.predicate;
    let deps = &p.build_definition.resolved_dependencies;
    let builder = deps
        .iter()
        .find(|d| d.name.as_deref() == Some(DEBLESS_DEPENDENCY));
    let lock = &p.build_definition.external_parameters.lock;
    json!({
        "repository": v.repository,
        "digest": v.subject.digest,
        "media_type": v.subject.media_type,
        "signatures": v.signatures.iter().map(|s| json!({
            "docker_reference": s.payload.docker_reference,
            "layer": s.layer,
        })).collect::<Vec<_>>(),
        "provenance": {
            "from": v.provenance_from,
            "builder": p.run_details.builder.id,
            "debless": builder.map(|d| json!({
                "uri": d.uri,
                "sha256": d.sha256().map(|s| s.to_string()),
            })),
            "lock": {
                "name": lock.name,
                "sha256": lock.sha256().map(|s| s.to_string()),
            },
            "rules": p.build_definition.external_parameters.rules.len(),
            "debs": deps.iter().filter(|d| d.name.as_deref() != Some(DEBLESS_DEPENDENCY)).count(),
        },
        "images": v.images.iter().map(|i| json!({
            "digest": i.descriptor.digest,
            "platform": i.descriptor.platform.as_ref().map(|p| p.to_string()),
            "layers": i.layers.len(),
        })).collect::<Vec<_>>(),
        "blobs": { "count": v.blobs, "bytes": v.bytes },
        "rebuild": rebuilt.map(|r| json!({
            "name": r.name,
            "digest": r.digest,
            "images": r.images,
            "debs": { "needed": r.fetch.wanted, "downloaded": r.fetch.downloaded },
            "other_debless": r.other_debless,
        })),
    })
}
