//! `debless verify --rebuild`: make an image again from what its (verified) provenance
//! records and compare digests. The provenance's lock, manifest and rule files are written
//! into an empty project; the build runs there with the recorded image, tag,
//! architectures, compression and settings, every layer made from the .debs (never from
//! the layer cache, which could hold the very blob being checked); .debs come from the
//! cache, then the mirrors, then the mirrors the provenance names, each checked against the
//! lock. A rebuild that differs names the first differing layer and file, as `--check`
//! does, by reading the registry's layer and the rebuilt one side by side.

use std::path::{Path, PathBuf};

use super::check::{blob_listing, first_difference};
use super::{BuildError, BuildOptions, Format, build};
use crate::arch::Arch;
use crate::digest::Digest;
use crate::fetch::debs::FetchReport;
use crate::layer::Compression;
use crate::oci::{Descriptor, LayoutReader};
use crate::registry::{RemoteImage, Repository};
use crate::sign::provenance::{DEBLESS_DEPENDENCY, Provenance, Statement};

/// The largest config read to say how two configs differ.
const MAX_CONFIG: u64 = 4 << 20;

/// Where a rebuild finds its .debs, and how it runs.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The cache directory: .debs are taken from it (checked), layers never.
    pub cache_dir: PathBuf,
    /// `--mirror` flags (replace the default list, as for `build`).
    pub mirrors: Vec<String>,
    /// `$DEBLESS_MIRRORS`.
    pub env_mirrors: Option<String>,
    /// Snapshot service for dated locks (else the recorded manifest's).
    pub snapshot_service: Option<String>,
    /// Host apt configuration.
    pub etc_apt: PathBuf,
    /// Use the cache only.
    pub offline: bool,
    /// Worker threads.
    pub jobs: usize,
    /// No progress output.
    pub quiet: bool,
}

/// A rebuild that came out identical.
#[derive(Debug, Clone)]
pub struct Rebuilt {
    /// The subject's name (`base-debian13:latest`).
    pub name: String,
    /// Its digest, made again.
    pub digest: Digest,
    /// Image manifests compared (one for a manifest).
    pub images: usize,
    /// What fetching the .debs did.
    pub fetch: FetchReport,
    /// The debless the provenance names, when it is not the one that rebuilt
    /// (`pkg:generic/debless@V sha256:...`).
    pub other_debless: Option<String>,
}

/// Rebuild `subject` from `statement` (verified: its signature, subject and inputs already
/// checked) in `project`, where the provenance's inputs were written, and compare with
/// what `remote` serves (`images`: the subject's image manifests, as read there).
pub fn rebuild(
    statement: &Statement<Provenance>,
    subject: &Digest,
    project: &Path,
    remote: &Repository,
    images: &[RemoteImage],
    opts: &RebuildOptions,
) -> Result<Rebuilt, BuildError> {
    let name = statement
        .subject
        .iter()
        .find(|s| s.sha256() == Some(*subject))
        .and_then(|s| s.name.clone())
        .unwrap_or_default();
    let recorded = |what: String| BuildError::Recorded { what };
    let (repo, tag) = name.rsplit_once(':').ok_or_else(|| {
        recorded(format!(
            "subject name {name:?} is not <image>-<distro>:<tag>"
        ))
    })?;
    let p = &statement.predicate;
    let ext = &p.build_definition.external_parameters;
    let arches = ext
        .architectures
        .iter()
        .map(|a| a.parse::<Arch>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| recorded(format!("architectures: {e}")))?;
    let compression: Compression = ext
        .compression
        .parse()
        .map_err(|e| recorded(format!("compression: {e}")))?;

    if !ext.command_line.is_empty() {
        return Err(recorded(format!(
            "command-line additions ({}) whose host files it does not carry",
            ext.command_line.join(" ")
        )));
    }
    // The mirrors the provenance names come after the user's own (a flag replaces both).
    let recorded_roots: Vec<String> = p
        .build_definition
        .resolved_dependencies
        .iter()
        .filter_map(|d| {
            let (uri, name) = (d.uri.as_deref()?, d.name.as_deref()?);
            let root = uri.strip_suffix(name)?;
            (root.starts_with("http://") || root.starts_with("https://")).then(|| root.to_owned())
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let env_mirrors = match (&opts.env_mirrors, recorded_roots.is_empty()) {
        (Some(env), false) => Some(format!("{env} {}", recorded_roots.join(" "))),
        (None, false) => Some(recorded_roots.join(" ")),
        (env, true) => env.clone(),
    };

    let out = project.join("out");
    let options = BuildOptions {
        project: project.to_path_buf(),
        distro: ext.distro.clone(),
        images: ext.images.clone(),
        variants: ext.variants.clone(),
        arches,
        out: out.clone(),
        lock: None,
        formats: vec![Format::Oci],
        archive_arch: None,
        compression,
        check: false,
        fresh: true,
        cache_registry: None,
        shard: None,
        sbom_dir: None,
        whole_packages: ext.whole_packages,
        offline: opts.offline,
        verify: false,
        cache_dir: opts.cache_dir.clone(),
        jobs: opts.jobs.max(1),
        mirrors: opts.mirrors.clone(),
        env_mirrors,
        snapshot_service: opts.snapshot_service.clone(),
        etc_apt: opts.etc_apt.clone(),
        source_date_epoch: ext.source_date_epoch,
        source_url: ext.source_url.clone(),
        quiet: opts.quiet,
        // The provenance does not record `--add` or the command line's config overrides.
        add: Vec::new(),
        config: Default::default(),
    };
    let report = build(&options)?;

    let other_debless = p
        .build_definition
        .resolved_dependencies
        .iter()
        .find(|d| d.name.as_deref() == Some(DEBLESS_DEPENDENCY))
        .filter(|d| {
            let ours = super::layer_cache::tool_digest();
            d.sha256().map(|x| x.to_string()).as_deref() != ours
        })
        .map(|d| {
            format!(
                "{} {}",
                d.uri.as_deref().unwrap_or("debless"),
                d.sha256().map(|x| x.to_string()).unwrap_or_default()
            )
        });
    let reader = LayoutReader::open(&out.join(repo))?;
    let rebuilt = reader.tag(tag)?.digest;
    if rebuilt == *subject {
        return Ok(Rebuilt {
            name,
            digest: rebuilt,
            images: images.len(),
            fetch: report.fetch,
            other_debless,
        });
    }
    let mut detail = explain(&reader, tag, remote, images, project);
    if let Some(other) = &other_debless {
        detail.push_str(&format!(
            "; note: the provenance names {other}, and this is another debless"
        ));
    }
    Err(BuildError::RebuildDiffers {
        name,
        expected: *subject,
        rebuilt,
        detail,
    })
}

/// Why the rebuilt `tag` is not the registry's image: the first image, layer and file that
/// differ, else the config, the manifest or the index.
fn explain(
    reader: &LayoutReader,
    tag: &str,
    remote: &Repository,
    images: &[RemoteImage],
    scratch: &Path,
) -> String {
    let ours = match reader.resolve(tag) {
        Ok(r) => r.images,
        Err(e) => return format!("the rebuilt layout cannot be read ({e})"),
    };
    if ours.len() != images.len() {
        return format!(
            "the registry's {} image manifests against {} rebuilt",
            images.len(),
            ours.len()
        );
    }
    let platform = |d: &Descriptor| d.platform.as_ref().map(|p| p.to_string());
    for theirs in images {
        let mine = if images.len() == 1 {
            ours.first()
        } else {
            ours.iter()
                .find(|o| platform(&o.descriptor) == platform(&theirs.descriptor))
        };
        let Some(mine) = mine else {
            return format!(
                "the registry's image for {} has no rebuilt counterpart",
                platform(&theirs.descriptor).unwrap_or_default()
            );
        };
        if mine.descriptor.digest == theirs.descriptor.digest {
            continue;
        }
        let what = platform(&theirs.descriptor)
            .or_else(|| platform(&mine.descriptor))
            .map(|p| format!("the {p} image"))
            .unwrap_or_else(|| "the image".to_owned());
        if mine.layers.len() != theirs.layers.len() {
            return format!(
                "{what} has {} layers in the registry but {} rebuilt",
                theirs.layers.len(),
                mine.layers.len()
            );
        }
        let history = history(reader, &mine.config);
        for (i, (t, m)) in theirs.layers.iter().zip(&mine.layers).enumerate() {
            if t.digest == m.digest {
                continue;
            }
            let label = history
                .get(i)
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            let first = layer_difference(reader, remote, t, m, scratch);
            return format!(
                "layer {} of {what}{label} is {} in the registry but {} rebuilt; {first}",
                i + 1,
                t.digest,
                m.digest
            );
        }
        if mine.config.digest != theirs.config.digest {
            return format!(
                "the config of {what} is {} in the registry but {} rebuilt (its layers agree){}",
                theirs.config.digest,
                mine.config.digest,
                config_difference(reader, remote, &theirs.config, &mine.config)
            );
        }
        return format!(
            "the manifest of {what} is {} in the registry but {} rebuilt; its config and layers \
             agree, so its annotations differ",
            theirs.descriptor.digest, mine.descriptor.digest
        );
    }
    "every image manifest agrees, so the index differs (its annotations or platforms)".to_owned()
}

/// The layer's history entry (`debless base: libc6 ...`), up to the package list.
fn history(reader: &LayoutReader, config: &Descriptor) -> Vec<String> {
    let Ok(json) = reader.read_json::<serde_json::Value>(config, "config") else {
        return Vec::new();
    };
    json["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
        .map(|h| {
            let by = h["created_by"].as_str().unwrap_or_default();
            by.split(':').next().unwrap_or(by).to_owned()
        })
        .collect()
}

/// The first differing file of two layers: the registry's `theirs` (downloaded into
/// `scratch`) against the rebuilt `mine`.
fn layer_difference(
    reader: &LayoutReader,
    remote: &Repository,
    theirs: &Descriptor,
    mine: &Descriptor,
    scratch: &Path,
) -> String {
    let path = scratch.join(format!("registry-layer-{}", theirs.digest.hex()));
    let got = match remote.download_blob(theirs, &path) {
        Ok(true) => std::fs::File::open(&path).map_err(|e| e.to_string()),
        Ok(false) => Err("the registry does not have it".to_owned()),
        Err(e) => Err(crate::text::error_line(&e)),
    };
    let listing = |file: std::fs::File, media_type: &str| {
        blob_listing(std::io::BufReader::new(file), media_type).map_err(|e| e.to_string())
    };
    let theirs_listing = got.and_then(|f| listing(f, &theirs.media_type));
    let mine_listing = std::fs::File::open(reader.blob_path(&mine.digest))
        .map_err(|e| e.to_string())
        .and_then(|f| listing(f, &mine.media_type));
    let _ = std::fs::remove_file(&path);
    match (theirs_listing, mine_listing) {
        (Ok(a), Ok(b)) => format!("{} (registry vs rebuilt)", first_difference(&a, &b)),
        (Err(e), _) => format!("the registry's layer cannot be listed ({e})"),
        (_, Err(e)) => format!("the rebuilt layer cannot be listed ({e})"),
    }
}

/// `: field X differs` for two configs, if both can be read.
fn config_difference(
    reader: &LayoutReader,
    remote: &Repository,
    theirs: &Descriptor,
    mine: &Descriptor,
) -> String {
    let a: Option<serde_json::Value> = remote
        .blob(&theirs.digest, MAX_CONFIG)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let b: Option<serde_json::Value> = reader.read_json(mine, "config").ok();
    let (Some(a), Some(b)) = (a, b) else {
        return String::new();
    };
    for section in [None, Some("config")] {
        let (x, y) = match section {
            None => (&a, &b),
            Some(s) => (&a[s], &b[s]),
        };
        let keys: std::collections::BTreeSet<&String> = x
            .as_object()
            .into_iter()
            .chain(y.as_object())
            .flat_map(|m| m.keys())
            .collect();
        for k in keys {
            if section.is_none() && k == "config" {
                continue;
            }
            if x.get(k) != y.get(k) {
                let field = section.map_or(k.clone(), |s| format!("{s}.{k}"));
                return format!(
                    ": field {field} is {} in the registry but {} rebuilt",
                    x.get(k).unwrap_or(&serde_json::Value::Null),
                    y.get(k).unwrap_or(&serde_json::Value::Null)
                );
            }
        }
    }
    String::new()
}
