//! `debless index`: after shards (`--shard`, `--arch`) pushed their per-architecture
//! manifests (`<tag>-<arch>`), write each tag's multi-architecture index in the registry.
//! The index is made as a single build makes it (same members in the same order, same
//! annotations from the members alone, same bytes), so its digest is the one a build of
//! every architecture on one machine would have pushed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::images::{SOURCE, index_annotations};
use super::plan::{self, ImagePlan};
use super::{BuildError, load_project};
use crate::digest::Digest;
use crate::oci::{index_bytes, platform_for};
use crate::registry::PushOptions;
use crate::registry::index::IndexRepo;

/// What `debless index` assembles, and where.
#[derive(Debug, Clone)]
pub struct AssembleOptions {
    /// Project root holding `rules/` and `snapshots/`.
    pub project: PathBuf,
    /// Distro whose lock the shards built.
    pub distro: String,
    /// Images; empty = all the distro defines.
    pub images: Vec<String>,
    /// Tags; empty = `latest` plus every variant.
    pub variants: Vec<String>,
    /// `REGISTRY/PREFIX`: image `I` is in `PREFIX/I-<distro>`, as `build --push` puts it.
    pub prefix: String,
    /// Credentials, `--insecure`, retries.
    pub push: PushOptions,
}

/// One index written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledTag {
    /// `host/repository`.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The index's digest.
    pub digest: Digest,
    /// Its members (architectures).
    pub members: usize,
}

/// Write every selected tag's index over every architecture of the lock.
pub fn assemble(opts: &AssembleOptions) -> Result<Vec<AssembledTag>, BuildError> {
    let l = load_project(&opts.project, &opts.distro, None)?;
    // Every architecture: an index holds them all, as a single build's does.
    let p = plan::plan(
        &l.lock,
        &l.lock_name,
        &l.rules,
        &opts.images,
        &opts.variants,
        &[],
    )?;
    // The plan is in (image, arch) order: members come in the order a build lists them.
    let mut by_image: BTreeMap<&str, Vec<&ImagePlan>> = BTreeMap::new();
    for ip in &p.images {
        by_image.entry(ip.image.as_str()).or_default().push(ip);
    }
    let mut out = Vec::new();
    for (image, plans) in by_image {
        let repo_name = format!("{image}-{}", l.lock.distro);
        let target = format!("{}/{repo_name}", opts.prefix.trim_end_matches('/'));
        let registry_error = |source| BuildError::Assemble {
            repository: target.clone(),
            source: Box::new(source),
        };
        let repo = IndexRepo::open(&target, &opts.push).map_err(&registry_error)?;
        let mut tags: Vec<&str> = Vec::new();
        for t in plans.iter().flat_map(|p| &p.tags) {
            if !tags.contains(&t.tag.as_str()) {
                tags.push(&t.tag);
            }
        }
        for tag in tags {
            let mut members = Vec::new();
            for ip in plans
                .iter()
                .filter(|ip| ip.tags.iter().any(|t| t.tag == tag))
            {
                let arch_tag = format!("{tag}-{}", ip.arch);
                let Some(mut m) = repo.member(&arch_tag).map_err(&registry_error)? else {
                    return Err(BuildError::MissingMember {
                        repository: target.clone(),
                        tag: arch_tag,
                    });
                };
                m.platform = Some(platform_for(ip.arch));
                members.push(m);
            }
            // The source URL the shards were built with, which every member carries.
            let source = members
                .first()
                .and_then(|m| m.annotations.get(SOURCE))
                .cloned();
            let annotations =
                index_annotations(&l.lock.distro, source.as_deref(), &repo_name, &members);
            let bytes = index_bytes(&members, &annotations);
            let n = members.len();
            let digest = repo
                .put_index(tag, bytes, members)
                .map_err(&registry_error)?;
            out.push(AssembledTag {
                repository: repo.name.clone(),
                tag: tag.to_owned(),
                digest,
                members: n,
            });
        }
    }
    Ok(out)
}
