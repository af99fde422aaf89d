//! The push itself: blobs in parallel, then manifests by digest, then tags.

use std::path::Path;
use std::time::Duration;

use rayon::prelude::*;

use super::client::{Client, Mount};
use super::plan::{self, Blob};
use super::{PushError, PushOptions, PushReport, PushedTag, Target, auth};

/// A byte bar over the blobs when stderr is a terminal (blobs already there count too,
/// as they finish at once).
fn progress_bar(quiet: bool, blobs: &[Blob]) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let total: u64 = blobs.iter().map(|b| b.size).sum();
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "push {} blobs [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}}",
        blobs.len()
    )) {
        bar.set_style(style);
    }
    Some(bar)
}

/// What happened to one blob.
enum Outcome {
    Skipped,
    Mounted,
    /// Uploaded in this many requests.
    Uploaded(usize),
}

/// Push the layout directory `layout` to `target` (`REGISTRY/REPOSITORY[:TAG]`): the tag
/// given there and in `opts.tags`, or every tag of the layout, each with its
/// per-architecture tags.
pub fn push_layout(
    layout: &Path,
    target: &str,
    opts: &PushOptions,
) -> Result<PushReport, PushError> {
    let target = Target::parse(target)?;
    let mut wanted: Vec<String> = target.tag.iter().cloned().collect();
    for t in &opts.tags {
        if !wanted.contains(t) {
            wanted.push(t.clone());
        }
    }
    let plan = plan::plan(layout, &wanted)?;

    let credentials = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => auth::lookup(&opts.auth_files, &target.host)?,
    };
    let searched = if opts.auth_files.is_empty() {
        "no auth files".to_string()
    } else {
        opts.auth_files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let client = Client::new(&target, opts.insecure, credentials, searched)?;
    client.ping()?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| PushError::Local(format!("cannot start the upload threads: {e}")))?;
    let bar = progress_bar(opts.quiet, &plan.blobs);
    let outcomes: Vec<Outcome> = pool.install(|| {
        plan.blobs
            .par_iter()
            .map(|b| {
                let r = retry(opts.retries, || push_blob(&client, b, opts));
                if let Some(bar) = &bar {
                    bar.inc(b.size);
                }
                r
            })
            .collect::<Result<_, _>>()
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let mut report = PushReport {
        repository: format!("{}/{}", target.host, target.repository),
        ..PushReport::default()
    };
    for (blob, outcome) in plan.blobs.iter().zip(&outcomes) {
        let count = match outcome {
            Outcome::Skipped => &mut report.skipped,
            Outcome::Mounted => &mut report.mounted,
            Outcome::Uploaded(requests) => {
                if *requests > 1 {
                    report.chunked += 1;
                }
                &mut report.uploaded
            }
        };
        count.blobs += 1;
        count.bytes += blob.size;
    }

    // Children before the indexes that list them: a registry may refuse an index whose
    // manifests it does not have.
    for doc in &plan.by_digest {
        retry(opts.retries, || client.put_manifest(&doc.digest, doc))?;
        report.manifests += 1;
    }
    for (tag, doc) in &plan.tags {
        retry(opts.retries, || client.put_manifest(tag, doc))?;
        report.manifests += 1;
        report.tags.push(PushedTag {
            tag: tag.clone(),
            digest: doc.digest.clone(),
            media_type: doc.media_type.clone(),
        });
    }
    report.sboms = attach_sboms(&client, layout, &plan.tags, opts)?;
    Ok(report)
}

/// The media type of an SPDX JSON document.
const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// OCI's empty config for artifacts.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// Attach each pushed tag's SPDX document (from `<layout>.spdx/<tag>.spdx.json`, as
/// `debless build` writes them) as an OCI artifact whose `subject` is the tag's manifest or
/// index, so registries with the referrers API list it; it is also tagged
/// `sha256-<hex>.sbom`, the convention tools use where that API is missing.
fn attach_sboms(
    client: &Client,
    layout: &Path,
    tags: &[(String, plan::Document)],
    opts: &PushOptions,
) -> Result<usize, PushError> {
    let Some(name) = layout.file_name() else {
        return Ok(0);
    };
    let dir = layout.with_file_name(format!("{}.spdx", name.to_string_lossy()));
    if !dir.is_dir() {
        return Ok(0);
    }
    let local = |what: String| PushError::Local(what);
    let scratch = tempfile::tempdir()
        .map_err(|e| local(format!("cannot create a temporary directory: {e}")))?;
    let empty_path = scratch.path().join("empty.json");
    std::fs::write(&empty_path, b"{}")
        .map_err(|e| local(format!("{}: {e}", empty_path.display())))?;
    let empty = Blob {
        digest: crate::digest::Digest::of(b"{}").to_string(),
        size: 2,
        path: empty_path,
    };
    let mut attached = 0;
    for (tag, doc) in tags {
        let path = dir.join(format!("{tag}.spdx.json"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let sbom = Blob {
            digest: crate::digest::Digest::of(&bytes).to_string(),
            size: bytes.len() as u64,
            path: path.clone(),
        };
        for b in [&empty, &sbom] {
            retry(opts.retries, || push_blob(client, b, opts))?;
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": SPDX_MEDIA_TYPE,
            "config": { "mediaType": EMPTY_MEDIA_TYPE, "digest": empty.digest, "size": 2 },
            "layers": [{
                "mediaType": SPDX_MEDIA_TYPE,
                "digest": sbom.digest,
                "size": sbom.size,
                "annotations": { "org.opencontainers.image.title": format!("{tag}.spdx.json") },
            }],
            "subject": { "mediaType": doc.media_type, "digest": doc.digest, "size": doc.bytes.len() },
        });
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| local(format!("cannot encode the SBOM manifest: {e}")))?;
        let artifact = plan::Document {
            digest: crate::digest::Digest::of(&bytes).to_string(),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            bytes,
        };
        let fallback = format!("{}.sbom", doc.digest.replace(':', "-"));
        retry(opts.retries, || {
            client.put_manifest(&artifact.digest, &artifact)
        })?;
        retry(opts.retries, || client.put_manifest(&fallback, &artifact))?;
        attached += 1;
    }
    Ok(attached)
}

/// One blob: skip it if the repository has it, mount it if a sibling does, else upload.
/// Called again from the start on a retry: a lost answer to a finished upload then
/// shows up as "already there".
fn push_blob(client: &Client, blob: &Blob, opts: &PushOptions) -> Result<Outcome, PushError> {
    let record = || {
        opts.sources
            .record(&client.host, &blob.digest, &client.repository)
    };
    if client.blob_exists(&blob.digest)? {
        record();
        return Ok(Outcome::Skipped);
    }
    let from = opts
        .sources
        .get(&client.host, &blob.digest)
        .filter(|r| *r != client.repository);
    let session = match from {
        Some(from) => match client.mount(&blob.digest, &from)? {
            Mount::Mounted => {
                record();
                return Ok(Outcome::Mounted);
            }
            Mount::Session(url) => url,
        },
        None => client.start_upload(&blob.digest)?,
    };
    let requests = client.upload(session, blob, opts.chunk_size)?;
    record();
    Ok(Outcome::Uploaded(requests))
}

/// Run `f`, again after 0.4 s, 0.8 s, 1.6 s... while it fails with a retryable error.
fn retry<T>(retries: u32, f: impl Fn() -> Result<T, PushError>) -> Result<T, PushError> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if attempt < retries && e.is_retryable() => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            r => return r,
        }
    }
}
