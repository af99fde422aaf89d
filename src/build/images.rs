//! The images on the finished layers: per image, tag and architecture a config (runtime
//! settings, history) and a manifest; per tag a multi-arch index; annotations naming the
//! distro, snapshot and lock; the docker-archive entries; the SPDX documents; and the
//! report rows.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::layer_cache::{BuiltLayer, KeyHasher, tool_digest};
use super::plan::{ImagePlan, LayerKey, TagPlan};
use super::template::expand_versions;
use super::{BuildError, BuiltTag, Ctx, sbom};
use crate::arch::Arch;
use crate::digest::Digest;
use crate::oci::{self, Descriptor, Layout};
use crate::rules::ImageSettings;

/// One image repository ready to write (`base-debian13`).
pub(super) struct Repository {
    /// `<image>-<distro>`.
    pub name: String,
    /// Its layout: every tag's manifests and indexes.
    pub layout: Layout,
    /// For a docker archive: the repository tags of each per-architecture manifest.
    pub docker: Vec<(Vec<String>, Descriptor)>,
}

/// One SPDX document to write into a repository's SBOM directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SpdxFile {
    /// The file name (`latest-amd64.spdx.json`).
    pub name: String,
    /// The JSON.
    pub bytes: Vec<u8>,
}

/// Everything a build writes besides the layer blobs.
pub(super) struct Images {
    /// One row per image, tag and architecture.
    pub tags: Vec<BuiltTag>,
    /// The repositories, by image name.
    pub repositories: Vec<Repository>,
    /// SPDX documents by repository name.
    pub sboms: BTreeMap<String, Vec<SpdxFile>>,
}

/// An image document to write: where, and what it describes.
struct ImageDoc {
    repo: String,
    file: String,
    name: String,
    digest: Digest,
    platform: String,
    layers: Vec<LayerKey>,
}

/// An index document: where, and which image documents it refers to.
struct IndexDoc {
    repo: String,
    file: String,
    name: String,
    digest: Digest,
    /// Positions in the image documents.
    members: Vec<usize>,
}

impl Ctx<'_> {
    /// Configs, manifests and indexes per image, and their SPDX documents (from the
    /// document cache when `use_cache` and their inputs are unchanged).
    pub(super) fn images(
        &self,
        layers: &BTreeMap<LayerKey, BuiltLayer>,
        use_cache: bool,
    ) -> Result<Images, BuildError> {
        let created = jiff::Timestamp::from_second(self.epoch as i64)
            .map(|t| t.to_string())
            .map_err(|source| BuildError::Epoch {
                epoch: self.epoch as i64,
                source,
            })?;
        let mut by_image: BTreeMap<&str, Vec<&ImagePlan>> = BTreeMap::new();
        for ip in &self.plan.images {
            by_image.entry(ip.image.as_str()).or_default().push(ip);
        }
        let mut tags = Vec::new();
        let mut repositories = Vec::new();
        let mut image_docs: Vec<ImageDoc> = Vec::new();
        let mut index_docs: Vec<IndexDoc> = Vec::new();
        for (image, plans) in by_image {
            let mut layout = Layout::new();
            let mut docker = Vec::new();
            let repo = format!("{image}-{}", self.l.lock.distro);
            let annotations = self.annotations(&repo, &created);
            let tag_names: Vec<&str> = plans[0].tags.iter().map(|t| t.tag.as_str()).collect();
            for tag in tag_names {
                let mut per_arch = Vec::new();
                let mut members = Vec::new();
                for ip in &plans {
                    let Some(tp) = ip.tags.iter().find(|t| t.tag == tag) else {
                        continue;
                    };
                    let arch_tag = format!("{tag}-{}", ip.arch);
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
                    });
                    docker.push((vec![format!("{repo}:{arch_tag}")], desc.clone()));
                    tags.push(built_tag(image, ip.arch, tp, &desc, layers));
                    per_arch.push(desc);
                }
                let index = layout.add_index(&per_arch, annotations.clone());
                layout.tag(&index, tag);
                index_docs.push(IndexDoc {
                    repo: repo.clone(),
                    file: format!("{tag}.spdx.json"),
                    name: format!("{repo}:{tag}"),
                    digest: index.digest,
                    members,
                });
            }
            repositories.push(Repository {
                name: repo,
                layout,
                docker,
            });
        }
        let sboms = self.sboms(&image_docs, &index_docs, layers, &created, use_cache);
        Ok(Images {
            tags,
            repositories,
            sboms,
        })
    }

    /// The annotations of every manifest and index of a repository.
    fn annotations(&self, repo: &str, created: &str) -> BTreeMap<String, String> {
        let lock = &self.l.lock;
        let mut a = BTreeMap::new();
        a.insert(
            "org.opencontainers.image.created".to_owned(),
            created.to_owned(),
        );
        a.insert("org.opencontainers.image.title".to_owned(), repo.to_owned());
        a.insert("dev.debless.distro".to_owned(), lock.distro.clone());
        a.insert(
            "dev.debless.snapshot".to_owned(),
            lock.snapshot
                .clone()
                .unwrap_or_else(|| lock.timestamp.clone()),
        );
        a.insert(
            "dev.debless.lock.digest".to_owned(),
            self.l.lock_digest.to_string(),
        );
        if let Some(src) = &self.opts.source_url {
            a.insert("org.opencontainers.image.source".to_owned(), src.clone());
        }
        a
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
        created: &str,
        use_cache: bool,
    ) -> BTreeMap<String, Vec<SpdxFile>> {
        let tool = env!("CARGO_PKG_VERSION");
        let written: Vec<Vec<u8>> = image_docs
            .par_iter()
            .map(|d| {
                let key = self.sbom_key(d, created);
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
                        created,
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
                    .collect();
                crate::sbom::to_json(&crate::sbom::index_sbom_of(
                    &x.name, &x.digest, created, &members, tool,
                ))
            })
            .collect();
        let mut out: BTreeMap<String, Vec<SpdxFile>> = BTreeMap::new();
        for (d, bytes) in image_docs.iter().zip(written) {
            out.entry(d.repo.clone()).or_default().push(SpdxFile {
                name: d.file.clone(),
                bytes,
            });
        }
        for (x, bytes) in index_docs.iter().zip(indexes) {
            out.entry(x.repo.clone()).or_default().push(SpdxFile {
                name: x.file.clone(),
                bytes,
            });
        }
        out
    }

    /// The document cache's key for an image document: everything it is made from (the
    /// layers' keys cover their packages' .debs; the lock covers the rest of the fields).
    fn sbom_key(&self, d: &ImageDoc, created: &str) -> Option<String> {
        let mut key = KeyHasher::new("sbom-1");
        key.line("tool", tool_digest()?);
        key.line("name", &d.name);
        key.line("digest", &d.digest.to_string());
        key.line("created", created);
        key.line("lock", &self.l.lock_digest.to_string());
        for k in &d.layers {
            key.line("layer", self.keys.get(k)?);
        }
        Some(key.finish())
    }
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
    arch: Arch,
    tp: &TagPlan,
    manifest: &Descriptor,
    layers: &BTreeMap<LayerKey, BuiltLayer>,
) -> BuiltTag {
    let infos = || tp.layers.iter().map(|k| &layers[k].info);
    BuiltTag {
        image: image.to_owned(),
        tag: tp.tag.clone(),
        arch,
        digest: manifest.digest,
        layers: infos().map(|l| l.digest).collect(),
        tar_bytes: infos().map(|l| l.tar_size).sum(),
        blob_bytes: infos().map(|l| l.size).sum(),
    }
}
