//! The push itself: blobs in parallel, then manifests by digest, then tags.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::client::{Client, Mount};
use super::plan::{self, Blob, BlobData, Document};
use super::{PushError, PushOptions, PushReport, PushedTag, Target};
use crate::digest::Digest;
use crate::http::{Http, RetryPolicy};

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
pub(super) enum Outcome {
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
    let http = Http::new().map_err(PushError::HttpClient)?;
    push_with(&http, layout, target, opts)
}

/// Push every layout to `PREFIX/<its directory name>` (what `debless build --push` does),
/// in order, sharing `opts.sources` so that a layer one image pushed is mounted into the
/// next. `pushed` hears of each push as it finishes.
pub fn push_all(
    layouts: &[PathBuf],
    prefix: &str,
    opts: &PushOptions,
    pushed: &mut dyn FnMut(&str, &PushReport),
) -> Result<Vec<PushReport>, PushError> {
    let http = Http::new().map_err(PushError::HttpClient)?;
    let mut reports = Vec::new();
    for layout in layouts {
        let name = layout
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = format!("{}/{name}", prefix.trim_end_matches('/'));
        let report = push_with(&http, layout, &target, opts)?;
        pushed(&target, &report);
        reports.push(report);
    }
    Ok(reports)
}

/// [`push_layout`] over `http` (whose retry delays it keeps; `opts.retries` says how many).
pub(super) fn push_with(
    http: &Http,
    layout: &Path,
    target: &str,
    opts: &PushOptions,
) -> Result<PushReport, PushError> {
    if opts.chunk_size == 0 {
        return Err(PushError::ZeroChunkSize);
    }
    let target = Target::parse(target)?;
    let mut wanted: Vec<String> = target.tag.iter().cloned().collect();
    for t in &opts.tags {
        if !wanted.contains(t) {
            wanted.push(t.clone());
        }
    }
    let plan = plan::plan(layout, &wanted)?;

    let (client, retry) = connect_with(http, &target, opts)?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(PushError::Threads)?;
    let bar = progress_bar(opts.quiet, &plan.blobs);
    let outcomes: Vec<Outcome> = pool.install(|| {
        plan.blobs
            .par_iter()
            .map(|b| {
                let r = retry.run(|| push_blob(&client, b, opts));
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
        retry.run(|| client.put_manifest(&doc.digest.to_string(), doc))?;
        report.manifests += 1;
    }
    for (tag, doc) in &plan.tags {
        retry.run(|| client.put_manifest(tag, doc))?;
        report.manifests += 1;
        report.tags.push(PushedTag {
            tag: tag.clone(),
            digest: doc.digest,
            media_type: doc.media_type.clone(),
        });
    }
    report.sboms = attach_sboms(&client, layout, &plan.tags, opts, &retry)?;
    Ok(report)
}

/// A client for `target` with credentials and retries as `opts` say, that has checked the
/// registry answers.
pub(super) fn connect(
    target: &Target,
    opts: &PushOptions,
) -> Result<(Client, RetryPolicy), PushError> {
    let http = Http::new().map_err(PushError::HttpClient)?;
    connect_with(&http, target, opts)
}

fn connect_with(
    http: &Http,
    target: &Target,
    opts: &PushOptions,
) -> Result<(Client, RetryPolicy), PushError> {
    let credentials = match &opts.credentials {
        Some(c) => Some(c.clone()),
        None => opts.login.credentials(&target.host)?,
    };
    let retry = RetryPolicy {
        retries: opts.retries,
        ..http.retry_policy()
    };
    let client = Client::new(
        http.clone(),
        target,
        opts.insecure,
        credentials,
        opts.login.searched(),
    )?;
    retry.run(|| client.ping())?;

    Ok((client, retry))
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
    tags: &[(String, Document)],
    opts: &PushOptions,
    retry: &RetryPolicy,
) -> Result<usize, PushError> {
    let Some(name) = layout.file_name() else {
        return Ok(0);
    };
    let dir = layout.with_file_name(format!("{}.spdx", name.to_string_lossy()));
    if !dir.is_dir() {
        return Ok(0);
    }
    let empty = Blob {
        digest: Digest::of(b"{}"),
        size: 2,
        data: BlobData::Bytes(b"{}".to_vec()),
    };
    let mut attached = 0;
    for (tag, doc) in tags {
        let path = dir.join(format!("{tag}.spdx.json"));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let sbom = Blob {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            data: BlobData::File(path.clone()),
        };
        for b in [&empty, &sbom] {
            retry.run(|| push_blob(client, b, opts))?;
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
        // A Value of strings and numbers: serde_json has no failure path for it.
        let bytes = serde_json::to_vec(&manifest).expect("a JSON value always serialises");
        let artifact = Document {
            digest: Digest::of(&bytes),
            media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
            bytes,
            content: crate::oci::Content::Manifest {
                config: descriptor(EMPTY_MEDIA_TYPE, &empty),
                layers: vec![descriptor(SPDX_MEDIA_TYPE, &sbom)],
            },
        };
        let fallback = format!("{}.sbom", doc.digest.to_string().replace(':', "-"));
        retry.run(|| client.put_manifest(&artifact.digest.to_string(), &artifact))?;
        retry.run(|| client.put_manifest(&fallback, &artifact))?;
        attached += 1;
    }
    Ok(attached)
}

/// A descriptor of `blob` (for the artifact document's record of what it points at).
fn descriptor(media_type: &str, blob: &Blob) -> crate::oci::Descriptor {
    crate::oci::Descriptor {
        media_type: media_type.to_owned(),
        digest: blob.digest,
        size: blob.size,
        platform: None,
        annotations: Default::default(),
    }
}

/// One blob: skip it if the repository has it, mount it if a sibling does, else upload.
/// Called again from the start on a retry: a lost answer to a finished upload then
/// shows up as "already there".
pub(super) fn push_blob(
    client: &Client,
    blob: &Blob,
    opts: &PushOptions,
) -> Result<Outcome, PushError> {
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
