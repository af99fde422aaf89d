//! The push itself: blobs in parallel, then manifests by digest, then tags.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::client::{Client, Mount};
use super::plan::{self, Blob, Document};
use super::remote::Repository;
use super::{Access, PushError, PushOptions, PushReport, PushedTag, Target};
use crate::http::{Http, RetryPolicy};
use crate::progress::{Phase, Unit};

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
    let mut rename = None;
    if let Some(source) = &opts.source_tag {
        let new = target.tag.clone().unwrap_or_else(|| source.clone());
        if let Some(extra) = opts.tags.iter().find(|t| **t != *source) {
            return Err(PushError::RetagWithTags {
                source_tag: source.clone(),
                target: new,
                extra: extra.clone(),
            });
        }
        wanted = vec![source.clone()];
        rename = Some((source.clone(), new));
    }
    for t in &opts.tags {
        if !wanted.contains(t) {
            wanted.push(t.clone());
        }
    }
    // An archive is read through a layout unpacked from it; its SPDX and provenance
    // directories sit next to it as next to a layout (`out/base-debian13.spdx/`).
    let opened = crate::oci::open_image(layout)?;
    if opened.format == crate::oci::SourceFormat::DockerArchive {
        return Err(PushError::DockerArchive {
            path: layout.to_owned(),
        });
    }
    let docs = crate::oci::documents_base(layout, opened.format);
    let mut plan = plan::plan(opened.reader.dir(), &wanted)?;
    if let Some((from, to)) = &rename {
        plan.rename(from, to, layout)?;
    }
    let layout = docs.as_path();

    let repo = Repository::connect(http, &target, Access::Push, opts)?;
    let (client, retry) = (&repo.client, repo.retry);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(PushError::Threads)?;
    // Blobs already there count too, as they finish at once.
    let phase = Phase::start(
        &format!("push {} blobs to {}", plan.blobs.len(), target.repository),
        plan.blobs.iter().map(|b| b.size).sum(),
        Unit::Bytes,
        opts.quiet,
    );
    let outcomes: Vec<Outcome> = pool.install(|| {
        plan.blobs
            .par_iter()
            .map(|b| {
                let r = retry.run(|| push_blob(client, b, opts));
                phase.inc(b.size);
                if let Ok(outcome) = &r {
                    phase.detail(|| {
                        let what = match outcome {
                            Outcome::Skipped => "already there",
                            Outcome::Mounted => "mounted",
                            Outcome::Uploaded(_) => "uploaded",
                        };
                        format!("{} ({}) {what}", b.digest, crate::text::bytes(b.size))
                    });
                }
                r
            })
            .collect::<Result<_, _>>()
    })?;
    phase.finish();

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
        let tag = plan.pushed_name(tag);
        retry.run(|| client.put_manifest(&tag, doc))?;
        report.manifests += 1;
        report.tags.push(PushedTag {
            tag,
            digest: doc.digest,
            media_type: doc.media_type.clone(),
        });
    }
    report.sboms = attach_sboms(client, layout, &plan.tags, opts, &retry)?;
    if let Some(key) = &opts.sign_key {
        report.signing = Some(super::signatures::sign_pushed(
            &repo, key, layout, &plan.tags,
        )?);
    }
    Ok(report)
}

/// A client for `target` with credentials and retries as `opts` say, for `access`, that
/// has checked the registry answers.
pub(super) fn connect(
    target: &Target,
    access: Access,
    opts: &PushOptions,
) -> Result<(Client, RetryPolicy), PushError> {
    let repo = Repository::open(target, access, opts)?;
    Ok((repo.client, repo.retry))
}

/// The media type of an SPDX JSON document.
const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// The suffix of the tag-based SBOM convention.
const SBOM_SUFFIX: &str = "sbom";

/// Attach each pushed tag's SPDX document (from `<layout>.spdx/<tag>.spdx.json`, as
/// `debless build` writes them) as an OCI artifact whose `subject` is the tag's manifest or
/// index, listed by the referrers API or, where the registry has none, in the referrers tag
/// schema's index ([`super::referrers`]). The same manifest is also tagged
/// `sha256-<hex>.sbom`: cosign's tag-based SBOM convention (`cosign download sbom`, and
/// scanners that follow it, look there and nowhere else), which a referrers list does not
/// replace for them; one more tag on the same manifest costs nothing.
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
    let mut attached = 0;
    for (tag, doc) in tags {
        let path = dir.join(format!("{tag}.spdx.json"));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(PushError::File {
                    path,
                    what: "cannot read the SPDX document",
                    source,
                });
            }
        };
        let layer = crate::sign::Layer::of(
            SPDX_MEDIA_TYPE,
            &bytes,
            std::collections::BTreeMap::from([(
                "org.opencontainers.image.title".to_owned(),
                format!("{tag}.spdx.json"),
            )]),
        );
        let subject = crate::oci::Descriptor {
            media_type: doc.media_type.clone(),
            digest: doc.digest,
            size: doc.bytes.len() as u64,
            platform: None,
            annotations: Default::default(),
        };
        let artifact = crate::sign::artifact::referrer_manifest(
            SPDX_MEDIA_TYPE,
            vec![(layer, bytes)],
            &subject,
        )?;
        super::referrers::attach(client, retry, opts, &artifact, &doc.digest)?;
        let tag = crate::sign::artifact::tag_for(&doc.digest, SBOM_SUFFIX);
        super::referrers::put_tagged(client, retry, opts, &artifact, &tag)?;
        attached += 1;
    }
    Ok(attached)
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
