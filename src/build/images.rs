//! The images on the finished layers: per image, tag and architecture a config (runtime
//! settings, history) and a manifest; per tag a multi-arch index; the docker-archive
//! entries; the SPDX documents; and the report rows.
//!
//! Digests are a contract with whoever pins an image: every byte here comes from the
//! image's own layers, settings and packages. `created` is the newest of the layers'
//! times (each derived from its own content, see `walk`), annotations name the distro
//! and a digest of the image's own package set, never the lock as a whole, so re-pinning
//! against a newer archive, or adding an unrelated image, moves no digest that did not
//! change content.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use super::layer_cache::{BuiltLayer, KeyHasher, tool_digest};
use super::plan::{ImagePlan, LayerKey, TagPlan};
use super::previous::{Previous, TagChanges, tag_changes};
use super::template::expand_versions;
use super::{BuildError, BuiltIndex, BuiltTag, Ctx, Format, sbom};
use crate::arch::Arch;
use crate::digest::Digest;
use crate::oci::{self, Descriptor, Layout};
use crate::rules::ImageSettings;

/// One image repository ready to write (`base-debian13`).
pub(super) struct Repository {
    /// `<image>-<distro>`.
    pub name: String,
    /// The image (rule) name.
    pub image: String,
    /// Its layout: every tag's manifests and indexes.
    pub layout: Layout,
    /// For a docker archive: the repository tags of each per-architecture manifest.
    pub docker: Vec<(Vec<String>, Descriptor)>,
}

/// One file to write into a directory next to a repository's layout: an SPDX document
/// (`<repo>.spdx/`) or a provenance statement (`<repo>.provenance/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NamedFile {
    /// The file name (`latest-amd64.spdx.json`, `latest.intoto.json`).
    pub name: String,
    /// The JSON.
    pub bytes: Vec<u8>,
}

/// Everything a build writes besides the layer blobs.
pub(super) struct Images {
    /// One row per image, tag and architecture.
    pub tags: Vec<BuiltTag>,
    /// One row per image and tag: its multi-architecture index.
    pub indexes: Vec<BuiltIndex>,
    /// The repositories, by image name.
    pub repositories: Vec<Repository>,
    /// SPDX documents by repository name.
    pub sboms: BTreeMap<String, Vec<NamedFile>>,
    /// Provenance statements by repository name.
    pub provenance: BTreeMap<String, Vec<NamedFile>>,
    /// By repository name, how its tags change against the layout already at `--out`.
    pub changes: BTreeMap<String, TagChanges>,
}

/// An image document to write: where, and what it describes.
pub(super) struct ImageDoc {
    pub repo: String,
    /// The SPDX document's file name.
    pub file: String,
    /// `<repo>:<tag>-<arch>`.
    pub name: String,
    pub digest: Digest,
    pub platform: String,
    pub layers: Vec<LayerKey>,
    /// RFC 3339.
    pub created: String,
    /// The image (rule) name.
    pub image: String,
    /// The tag (`latest` or a variant).
    pub tag: String,
    pub arch: Arch,
}

/// An index document: where, and which image documents it refers to.
pub(super) struct IndexDoc {
    pub repo: String,
    /// The SPDX document's file name.
    pub file: String,
    /// `<repo>:<tag>`.
    pub name: String,
    pub digest: Digest,
    /// Positions in the image documents.
    pub members: Vec<usize>,
    /// Members a partial build kept from the previous layout, with their documents.
    pub kept_members: Vec<crate::sbom::IndexMember>,
    /// RFC 3339.
    pub created: String,
    /// The image (rule) name.
    pub image: String,
    /// The tag.
    pub tag: String,
    /// Every member's architecture, kept members' too.
    pub arches: Vec<Arch>,
}

impl Ctx<'_> {
    /// Give one of a tag's per-architecture docker-archive entries the tag's own name, so
    /// `docker load` then `FROM <repo>:<tag>` works as it does against a registry's
    /// multi-arch tag: `--archive-arch`'s image, else the host's (what a registry would
    /// hand this machine), else the first built. A docker archive holds no index, so one
    /// architecture must be chosen.
    fn name_docker_tag(
        &self,
        entries: &mut [(Vec<String>, Descriptor, Arch)],
        repo: &str,
        tag: &str,
    ) {
        let wanted = [self.opts.archive_arch, Arch::host()];
        let chosen = wanted
            .iter()
            .flatten()
            .find_map(|a| entries.iter().position(|e| e.2 == *a))
            .or((!entries.is_empty()).then_some(0));
        if let Some(i) = chosen {
            entries[i].0.push(format!("{repo}:{tag}"));
        }
    }

    /// Configs, manifests and indexes per image, and their SPDX documents (from the
    /// document cache when `use_cache` and their inputs are unchanged).
    pub(super) fn images(
        &self,
        layers: &BTreeMap<LayerKey, BuiltLayer>,
        use_cache: bool,
    ) -> Result<Images, BuildError> {
        let mut by_image: BTreeMap<&str, Vec<&ImagePlan>> = BTreeMap::new();
        for ip in &self.plan.images {
            by_image.entry(ip.image.as_str()).or_default().push(ip);
        }
        let mut tags = Vec::new();
        let mut indexes = Vec::new();
        let mut repositories = Vec::new();
        let mut image_docs: Vec<ImageDoc> = Vec::new();
        let mut index_docs: Vec<IndexDoc> = Vec::new();
        let mut changes = BTreeMap::new();
        let mut kept_sboms: BTreeMap<String, Vec<NamedFile>> = BTreeMap::new();
        let mut kept_provenance: BTreeMap<String, Vec<NamedFile>> = BTreeMap::new();
        for (image, plans) in by_image {
            let mut layout = Layout::new();
            let mut docker = Vec::new();
            let repo = super::destinations::repository_name(image, &self.l.lock.distro);
            let previous = self.previous(&repo);
            // A build of some tags or architectures keeps the rest of the layout.
            let keep = if self.partial() {
                previous.as_ref()
            } else {
                None
            };
            let built_arches: BTreeSet<Arch> = plans.iter().map(|p| p.arch).collect();
            // Every architecture has the same tags, except in a shard (`--shard`).
            let mut tag_names: Vec<&str> = Vec::new();
            for t in plans.iter().flat_map(|p| &p.tags) {
                if !tag_names.contains(&t.tag.as_str()) {
                    tag_names.push(&t.tag);
                }
            }
            for tag in tag_names {
                let mut per_arch = Vec::new();
                let mut members = Vec::new();
                let docker_first = docker.len();
                for ip in &plans {
                    let Some(tp) = ip.tags.iter().find(|t| t.tag == tag) else {
                        continue;
                    };
                    let arch_tag = format!("{tag}-{}", ip.arch);
                    let time = tp.layers.iter().map(|k| layers[k].time).max().unwrap_or(0);
                    let created = rfc3339(time)?;
                    let packages = self.package_set(&tp.layers);
                    let mut annotations = self.annotations(&repo, &created, &packages);
                    // The rules' and the command line's own; `created` and the package set
                    // stay debless's (indexes and `debless index` read them).
                    for (k, v) in &tp.settings.annotations {
                        if k != CREATED && k != PACKAGES {
                            annotations.insert(k.clone(), v.clone());
                        }
                    }
                    for k in &tp.layers {
                        let layer = &layers[k].info;
                        layout.add_file_blob(
                            layer.digest,
                            self.layer_cache.blob_path(&layer.digest),
                            layer.size,
                        );
                    }
                    let img = oci::Image {
                        platform: oci::platform_for(ip.arch),
                        config: self.config(image, ip.arch, &tp.settings)?,
                        created: created.clone(),
                        layers: tp.layers.iter().map(|k| layer_ref(&layers[k])).collect(),
                        history: tp.layers.iter().map(|k| self.history(k)).collect(),
                        annotations: annotations.clone(),
                    };
                    let desc = layout.add_image(&img).map_err(|source| BuildError::Image {
                        image: format!("{repo}:{arch_tag}"),
                        source: Box::new(source),
                    })?;
                    layout.tag(&desc, &arch_tag);
                    members.push(image_docs.len());
                    image_docs.push(ImageDoc {
                        repo: repo.clone(),
                        file: format!("{arch_tag}.spdx.json"),
                        name: format!("{repo}:{arch_tag}"),
                        digest: desc.digest,
                        platform: desc
                            .platform
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                        layers: tp.layers.clone(),
                        created,
                        image: image.to_owned(),
                        tag: tag.to_owned(),
                        arch: ip.arch,
                    });
                    docker.push((vec![format!("{repo}:{arch_tag}")], desc.clone(), ip.arch));
                    tags.push(built_tag(image, &repo, ip.arch, tp, &desc, layers));
                    per_arch.push(desc);
                }
                self.name_docker_tag(&mut docker[docker_first..], &repo, tag);
                let mut kept_members = Vec::new();
                if let Some(prev) = keep {
                    for m in prev.other_members(tag, &built_arches, &mut layout)? {
                        let platform = m.platform.as_ref().map(|p| p.to_string());
                        if let (Some(platform), Some(arch)) = (platform, member_arch(&m))
                            && let Some(bytes) = prev.spdx(&format!("{tag}-{arch}"))
                        {
                            kept_members.push(kept_member(platform, bytes));
                        }
                        per_arch.push(m);
                    }
                    per_arch.sort_by_key(member_arch);
                }
                let annotations = self.index_annotations(&repo, &per_arch)?;
                let created = annotations.get(CREATED).cloned().unwrap_or_default();
                let index = layout.add_index(&per_arch, annotations);
                layout.tag(&index, tag);
                indexes.push(BuiltIndex {
                    image: image.to_owned(),
                    repository: repo.clone(),
                    tag: tag.to_owned(),
                    digest: index.digest,
                    arches: per_arch.iter().filter_map(member_arch).collect(),
                });
                index_docs.push(IndexDoc {
                    repo: repo.clone(),
                    file: format!("{tag}.spdx.json"),
                    name: format!("{repo}:{tag}"),
                    digest: index.digest,
                    members,
                    kept_members,
                    created,
                    image: image.to_owned(),
                    tag: tag.to_owned(),
                    arches: per_arch.iter().filter_map(member_arch).collect(),
                });
            }
            let mut kept = Vec::new();
            if let Some(prev) = keep {
                for (tag, d) in prev.tags() {
                    if layout.tags().contains_key(tag) {
                        continue;
                    }
                    prev.copy_into(d, &mut layout)?;
                    layout.tag(d, tag);
                    kept.push(tag.clone());
                    if let Some(bytes) = prev.spdx(tag) {
                        kept_sboms.entry(repo.clone()).or_default().push(NamedFile {
                            name: format!("{tag}.spdx.json"),
                            bytes,
                        });
                    }
                    if let Some(bytes) = prev.provenance(tag) {
                        kept_provenance
                            .entry(repo.clone())
                            .or_default()
                            .push(NamedFile {
                                name: crate::sign::provenance::statement_file(tag),
                                bytes,
                            });
                    }
                }
            }
            changes.insert(
                repo.clone(),
                tag_changes(previous.as_ref().map(Previous::tags), layout.tags(), kept),
            );
            repositories.push(Repository {
                name: repo,
                image: image.to_owned(),
                layout,
                docker: docker.into_iter().map(|(t, d, _)| (t, d)).collect(),
            });
        }
        let mut sboms = self.sboms(&image_docs, &index_docs, layers, use_cache);
        for (repo, files) in kept_sboms {
            sboms.entry(repo).or_default().extend(files);
        }
        for files in sboms.values_mut() {
            files.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let mut provenance = self.provenance(&image_docs, &index_docs, &sboms)?;
        for (repo, files) in kept_provenance {
            provenance.entry(repo).or_default().extend(files);
        }
        for files in provenance.values_mut() {
            files.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Ok(Images {
            tags,
            indexes,
            repositories,
            sboms,
            provenance,
            changes,
        })
    }

    /// Is this a build of some tags or architectures only (`--variant`, `--arch`,
    /// `--shard`)? Such a
    /// build keeps what it does not make of a layout already at `--out`.
    fn partial(&self) -> bool {
        !self.opts.arches.is_empty() || !self.opts.variants.is_empty() || self.opts.shard.is_some()
    }

    /// The layout (and SPDX directory) a previous build left for `repo` at `--out`.
    fn previous(&self, repo: &str) -> Option<Previous> {
        if !self.opts.formats.contains(&Format::Oci) {
            return None;
        }
        Previous::open(&self.opts.out.join(repo), self.sbom_dir(repo))
    }

    /// An index's annotations: see [`index_annotations`].
    fn index_annotations(
        &self,
        repo: &str,
        members: &[Descriptor],
    ) -> Result<BTreeMap<String, String>, BuildError> {
        Ok(index_annotations(
            &self.l.lock.distro,
            self.opts.source_url.as_deref(),
            repo,
            members,
        ))
    }

    /// A manifest's annotations: see [`annotations`].
    fn annotations(
        &self,
        repo: &str,
        created: &str,
        packages: &Digest,
    ) -> BTreeMap<String, String> {
        annotations(
            &self.l.lock.distro,
            self.opts.source_url.as_deref(),
            repo,
            created,
            packages,
        )
    }

    /// The digest of an image's package set: one line per package of its layers,
    /// `name version arch sha256`, sorted. Two images with it equal hold the same .debs.
    fn package_set(&self, layer_keys: &[LayerKey]) -> Digest {
        let mut lines: Vec<String> = layer_keys
            .iter()
            .flat_map(|k| self.plan.layers[k].packages.iter())
            .map(|p| {
                let l = p.locked;
                format!("{} {} {} {}\n", l.name, l.version, l.arch, l.sha256.hex())
            })
            // Only an image with tarballs has these lines, so no other digest moves.
            .chain(
                layer_keys
                    .iter()
                    .flat_map(|k| self.plan.layers[k].tarballs.iter())
                    .map(|t| {
                        let l = t.locked;
                        format!(
                            "tarball:{} {} {} {}\n",
                            l.name,
                            l.version,
                            l.arch,
                            l.sha256.hex()
                        )
                    }),
            )
            .collect();
        lines.sort();
        lines.dedup();
        Digest::of(lines.concat().as_bytes())
    }

    /// The runtime config of `image` on `arch`: its merged settings, with `env`
    /// templates filled in from the lock.
    fn config(
        &self,
        image: &str,
        arch: Arch,
        s: &ImageSettings,
    ) -> Result<oci::Config, BuildError> {
        let mut env = Vec::new();
        for (name, v) in &s.env {
            let v = expand_versions(v, &self.l.lock, arch).map_err(|source| BuildError::Env {
                image: image.to_owned(),
                name: name.clone(),
                source,
            })?;
            env.push(format!("{name}={v}"));
        }
        Ok(oci::Config {
            env,
            user: s.user.clone(),
            working_dir: s.workdir.clone(),
            entrypoint: s.entrypoint.clone(),
            cmd: s.cmd.clone(),
            labels: s.labels.clone(),
        })
    }

    /// A layer's history entry: the rule that adds it, its packages and its tarballs.
    fn history(&self, k: &LayerKey) -> oci::History {
        let lp = &self.plan.layers[k];
        let mut names: Vec<String> = lp.packages.iter().map(|p| p.locked.name.clone()).collect();
        // Only a layer with tarballs says more, so no other history moves.
        names.extend(
            lp.tarballs
                .iter()
                .map(|t| format!("tarball:{}@{}", t.name, t.locked.version)),
        );
        // Likewise only a layer with added host files.
        names.extend(lp.rule.add.iter().map(|a| format!("add:{}", a.dest)));
        oci::History {
            created_by: format!("debless {}: {}", lp.rule.name, names.join(" ")),
            comment: Some(lp.rule.description.clone()).filter(|d| !d.is_empty()),
            empty_layer: false,
        }
    }

    /// Every SPDX document, in parallel: per image and platform (from the document cache
    /// when its inputs are unchanged), then per index over those.
    fn sboms(
        &self,
        image_docs: &[ImageDoc],
        index_docs: &[IndexDoc],
        layers: &BTreeMap<LayerKey, BuiltLayer>,
        use_cache: bool,
    ) -> BTreeMap<String, Vec<NamedFile>> {
        let tool = env!("CARGO_PKG_VERSION");
        let written: Vec<Vec<u8>> = image_docs
            .par_iter()
            .map(|d| {
                let key = self.sbom_key(d);
                if let Some(bytes) = key
                    .as_deref()
                    .filter(|_| use_cache)
                    .and_then(|k| self.layer_cache.get_sbom(k))
                {
                    return bytes;
                }
                let doc = crate::sbom::to_json(&crate::sbom::image_sbom(
                    &sbom::image_input(
                        &d.name,
                        &d.digest,
                        &d.created,
                        &d.layers,
                        &sbom::Sources {
                            lock: &self.l.lock,
                            layers,
                        },
                    ),
                    tool,
                ));
                if let Some(k) = key {
                    self.layer_cache.put_sbom(&k, &doc);
                }
                doc
            })
            .collect();
        let indexes: Vec<Vec<u8>> = index_docs
            .par_iter()
            .map(|x| {
                let members: Vec<crate::sbom::IndexMember> = x
                    .members
                    .iter()
                    .map(|&i| crate::sbom::IndexMember {
                        platform: image_docs[i].platform.clone(),
                        namespace: crate::sbom::image_namespace(
                            &image_docs[i].name,
                            &image_docs[i].digest,
                        ),
                        bytes: written[i].clone(),
                    })
                    .chain(x.kept_members.iter().cloned())
                    .collect();
                crate::sbom::to_json(&crate::sbom::index_sbom_of(
                    &x.name, &x.digest, &x.created, &members, tool,
                ))
            })
            .collect();
        let mut out: BTreeMap<String, Vec<NamedFile>> = BTreeMap::new();
        for (d, bytes) in image_docs.iter().zip(written) {
            out.entry(d.repo.clone()).or_default().push(NamedFile {
                name: d.file.clone(),
                bytes,
            });
        }
        for (x, bytes) in index_docs.iter().zip(indexes) {
            out.entry(x.repo.clone()).or_default().push(NamedFile {
                name: x.file.clone(),
                bytes,
            });
        }
        out
    }

    /// The document cache's key for an image document: everything it is made from (the
    /// layers' keys cover their packages and the facts the layers recorded of them).
    fn sbom_key(&self, d: &ImageDoc) -> Option<String> {
        let mut key = KeyHasher::new("sbom-2");
        key.line("tool", tool_digest()?);
        key.line("name", &d.name);
        key.line("digest", &d.digest.to_string());
        key.line("created", &d.created);
        key.line("distro", &self.l.lock.distro);
        for k in &d.layers {
            key.line("layer", self.keys.get(k)?);
        }
        Some(key.finish())
    }
}

/// An index's annotations, from its members' alone: the newest of their `created`,
/// and a digest over their architectures' package sets. A multi-arch index made by
/// one build, by a partial build keeping older members, or assembled from members
/// built elsewhere (`debless index`) is byte for byte the same when its members are.
pub(super) fn index_annotations(
    distro: &str,
    source_url: Option<&str>,
    repo: &str,
    members: &[Descriptor],
) -> BTreeMap<String, String> {
    let created = members
        .iter()
        .filter_map(|m| m.annotations.get(CREATED))
        .max()
        .cloned()
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    let lines: String = members
        .iter()
        .map(|m| {
            let arch = member_arch(m).map_or("?", Arch::name);
            let packages = m.annotations.get(PACKAGES).map_or("-", String::as_str);
            format!("{arch} {packages}\n")
        })
        .collect();
    let packages = Digest::of(lines.as_bytes());
    annotations(distro, source_url, repo, &created, &packages)
}

/// A manifest's or index's annotations: its `created`, the repository, the distro and
/// the digest of its own package set (see [`Ctx::package_set`]).
fn annotations(
    distro: &str,
    source_url: Option<&str>,
    repo: &str,
    created: &str,
    packages: &Digest,
) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(CREATED.to_owned(), created.to_owned());
    a.insert("org.opencontainers.image.title".to_owned(), repo.to_owned());
    a.insert("dev.debless.distro".to_owned(), distro.to_owned());
    a.insert(PACKAGES.to_owned(), packages.to_string());
    if let Some(src) = source_url {
        a.insert(SOURCE.to_owned(), src.to_owned());
    }
    a
}

/// The annotation with the project's source URL (`--source-url`).
pub(super) const SOURCE: &str = "org.opencontainers.image.source";
/// The annotation every manifest and index carries its `created` in.
const CREATED: &str = "org.opencontainers.image.created";
/// The annotation with the digest of an image's package set.
const PACKAGES: &str = "dev.debless.packages";

/// The architecture of an index member, from its platform.
fn member_arch(m: &Descriptor) -> Option<Arch> {
    let p = m.platform.as_ref()?;
    Arch::from_oci(&p.architecture, p.variant.as_deref())
}

/// An index document's member taken from a previous build's SPDX document.
fn kept_member(platform: String, bytes: Vec<u8>) -> crate::sbom::IndexMember {
    let namespace = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["documentNamespace"].as_str().map(str::to_owned))
        .unwrap_or_default();
    crate::sbom::IndexMember {
        platform,
        namespace,
        bytes,
    }
}

/// `secs` as RFC 3339, as `created` is written.
fn rfc3339(secs: u64) -> Result<String, BuildError> {
    jiff::Timestamp::from_second(secs as i64)
        .map(|t| t.to_string())
        .map_err(|source| BuildError::Epoch {
            epoch: secs as i64,
            source,
        })
}

/// How a manifest refers to a layer.
fn layer_ref(layer: &BuiltLayer) -> oci::LayerRef {
    let layer = &layer.info;
    oci::LayerRef {
        digest: layer.digest,
        diff_id: layer.diff_id,
        size: layer.size,
        media_type: layer.compression.media_type().to_owned(),
    }
}

/// The report row of one image, tag and architecture.
fn built_tag(
    image: &str,
    repository: &str,
    arch: Arch,
    tp: &TagPlan,
    manifest: &Descriptor,
    layers: &BTreeMap<LayerKey, BuiltLayer>,
) -> BuiltTag {
    let infos = || tp.layers.iter().map(|k| &layers[k].info);
    BuiltTag {
        image: image.to_owned(),
        repository: repository.to_owned(),
        tag: tp.tag.clone(),
        arch,
        digest: manifest.digest,
        layers: infos().map(|l| l.digest).collect(),
        tar_bytes: infos().map(|l| l.tar_size).sum(),
        blob_bytes: infos().map(|l| l.size).sum(),
    }
}
