//! What a push sends, read from an image layout directory: the tags chosen, the manifests
//! they reach (children before parents) and every layer and config blob, each once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::PushError;
use super::reference::valid_tag;
use crate::oci::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, REF_NAME_ANNOTATION};

/// Docker's names for an index and an image manifest, accepted so that a layout written by
/// another tool pushes too.
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A layer or config blob to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Blob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Length, as the manifest declares it (and the file has).
    pub size: u64,
    /// The file under `blobs/sha256/`.
    pub path: PathBuf,
}

/// A manifest or index, with the exact bytes of the layout (so its digest cannot change).
#[derive(Debug, Clone)]
pub(super) struct Document {
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
    /// The Content-Type to send.
    pub media_type: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// Everything one push sends, in the order it must arrive.
#[derive(Debug)]
pub(super) struct Plan {
    /// Layers and configs of every manifest reached, by digest.
    pub blobs: Vec<Blob>,
    /// Manifests to put by digest before any tag (the children of indexes), children first.
    pub by_digest: Vec<Document>,
    /// Tags to put, in the layout's tag order.
    pub tags: Vec<(String, Document)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// The parts of an index (or `index.json`) and a manifest a push needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentJson {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    manifests: Vec<DescriptorJson>,
    config: Option<DescriptorJson>,
    #[serde(default)]
    layers: Vec<DescriptorJson>,
}

fn read_index(dir: &Path) -> Result<BTreeMap<String, DescriptorJson>, PushError> {
    let layout_err = |what: String| PushError::Layout {
        path: dir.to_path_buf(),
        what,
    };
    if !dir.join("oci-layout").is_file() {
        return Err(layout_err(
            "is not an OCI image layout (no oci-layout file); pass a directory `debless \
             build` wrote, e.g. out/base-debian13"
                .to_string(),
        ));
    }
    let path = dir.join("index.json");
    let text = std::fs::read(&path).map_err(|e| PushError::Layout {
        path: path.clone(),
        what: format!("cannot read it ({e})"),
    })?;
    let index: DocumentJson = serde_json::from_slice(&text).map_err(|e| PushError::Layout {
        path: path.clone(),
        what: format!("is not an image index ({e}); rebuild the layout"),
    })?;
    let mut tags = BTreeMap::new();
    for d in index.manifests {
        // Entries without a name are content, not tags.
        if let Some(name) = d.annotations.get(REF_NAME_ANNOTATION).cloned() {
            tags.insert(name, d);
        }
    }
    Ok(tags)
}

/// Read the layout at `dir` and plan the push of `wanted` tags (none: every tag). Asking
/// for a tag also pushes its per-architecture tags: the layout's tags `<tag>-<suffix>`
/// that name a manifest of `<tag>`'s index (`latest` brings `latest-amd64`).
pub(super) fn plan(dir: &Path, wanted: &[String]) -> Result<Plan, PushError> {
    let index = read_index(dir)?;
    if index.is_empty() {
        return Err(PushError::Layout {
            path: dir.join("index.json"),
            what: "names no tags (no org.opencontainers.image.ref.name annotations); \
                   rebuild the layout"
                .to_string(),
        });
    }
    let mut reader = Reader {
        dir,
        docs: BTreeMap::new(),
        blobs: BTreeMap::new(),
        by_digest: Vec::new(),
    };
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    for t in wanted {
        if !index.contains_key(t) {
            return Err(PushError::NoSuchTag {
                path: dir.to_path_buf(),
                tag: t.clone(),
                available: index.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        chosen.insert(t.clone());
    }
    if wanted.is_empty() {
        chosen.extend(index.keys().cloned());
    }
    for name in &chosen {
        if !valid_tag(name) {
            return Err(PushError::Layout {
                path: dir.join("index.json"),
                what: format!(
                    "tag {name:?} is not a valid registry tag ([A-Za-z0-9_][A-Za-z0-9_.-]*, \
                     at most 128); push the other tags with --tag"
                ),
            });
        }
    }

    // The per-architecture tags of a chosen index come with it.
    let mut names = chosen.clone();
    for name in &chosen {
        let (_, children) = reader.document(&index[name], &format!("tag {name}"))?;
        let prefix = format!("{name}-");
        names.extend(
            index
                .iter()
                .filter(|(other, d)| {
                    other.starts_with(&prefix) && children.contains(&d.digest) && valid_tag(other)
                })
                .map(|(other, _)| other.clone()),
        );
    }
    let mut tags = Vec::new();
    for name in names {
        let (doc, _) = reader.document(&index[&name], &format!("tag {name}"))?;
        tags.push((name, doc));
    }
    Ok(Plan {
        blobs: reader.blobs.into_values().collect(),
        by_digest: reader.by_digest,
        tags,
    })
}

struct Reader<'a> {
    dir: &'a Path,
    /// Documents already read, with the digests of their child manifests.
    docs: BTreeMap<String, (Document, Vec<String>)>,
    blobs: BTreeMap<String, Blob>,
    /// Child manifests of indexes, children first.
    by_digest: Vec<Document>,
}

impl Reader<'_> {
    /// Read and verify the manifest or index `d`; queue its blobs and child manifests.
    /// Returns the document and the digests of its child manifests.
    fn document(
        &mut self,
        d: &DescriptorJson,
        what: &str,
    ) -> Result<(Document, Vec<String>), PushError> {
        if let Some(done) = self.docs.get(&d.digest) {
            return Ok(done.clone());
        }
        let path = self.blob_path(&d.digest, what)?;
        let bytes = std::fs::read(&path).map_err(|e| PushError::Layout {
            path: path.clone(),
            what: format!(
                "{what} ({}): cannot read it ({e}); rebuild the layout",
                d.digest
            ),
        })?;
        let actual = crate::digest::Digest::of(&bytes).to_string();
        if actual != d.digest || bytes.len() as u64 != d.size {
            return Err(PushError::Layout {
                path,
                what: format!(
                    "{what}: expected {} ({} bytes) but the file is {actual} ({} bytes); the \
                     layout is corrupt, rebuild it",
                    d.digest,
                    d.size,
                    bytes.len()
                ),
            });
        }
        let json: DocumentJson = serde_json::from_slice(&bytes).map_err(|e| PushError::Layout {
            path: path.clone(),
            what: format!("{what} ({}) is not a manifest or index ({e})", d.digest),
        })?;
        let media_type = if d.media_type.is_empty() {
            json.media_type.clone()
        } else {
            d.media_type.clone()
        };
        let mut children = Vec::new();
        match media_type.as_str() {
            INDEX_MEDIA_TYPE | DOCKER_LIST => {
                for c in &json.manifests {
                    let (child, _) = self.document(c, &format!("{what} -> {}", c.digest))?;
                    if !self.by_digest.iter().any(|x| x.digest == child.digest) {
                        self.by_digest.push(child);
                    }
                    children.push(c.digest.clone());
                }
            }
            MANIFEST_MEDIA_TYPE | DOCKER_MANIFEST => {
                let Some(config) = &json.config else {
                    return Err(PushError::Layout {
                        path,
                        what: format!("{what} ({}) has no config", d.digest),
                    });
                };
                for b in std::iter::once(config).chain(&json.layers) {
                    self.blob(b, what)?;
                }
            }
            other => {
                return Err(PushError::Layout {
                    path,
                    what: format!(
                        "{what} ({}) has media type {other:?}, which is neither an image \
                         manifest nor an index",
                        d.digest
                    ),
                });
            }
        }
        let doc = Document {
            digest: d.digest.clone(),
            media_type,
            bytes,
        };
        self.docs
            .insert(d.digest.clone(), (doc.clone(), children.clone()));
        Ok((doc, children))
    }

    /// Queue a layer or config blob, checking that the file is there with the right size
    /// (its hash is checked by the registry, which computes it as the bytes arrive).
    fn blob(&mut self, d: &DescriptorJson, what: &str) -> Result<(), PushError> {
        if self.blobs.contains_key(&d.digest) {
            return Ok(());
        }
        let path = self.blob_path(&d.digest, what)?;
        let len = std::fs::metadata(&path)
            .map_err(|e| PushError::Layout {
                path: path.clone(),
                what: format!(
                    "{what}: blob {} is missing ({e}); rebuild the layout",
                    d.digest
                ),
            })?
            .len();
        if len != d.size {
            return Err(PushError::Layout {
                path,
                what: format!(
                    "{what}: blob {} should be {} bytes but is {len}; the layout is corrupt, \
                     rebuild it",
                    d.digest, d.size
                ),
            });
        }
        self.blobs.insert(
            d.digest.clone(),
            Blob {
                digest: d.digest.clone(),
                size: d.size,
                path,
            },
        );
        Ok(())
    }

    /// `blobs/sha256/<hex>`, after checking the digest cannot escape the directory.
    fn blob_path(&self, digest: &str, what: &str) -> Result<PathBuf, PushError> {
        let hex = digest.strip_prefix("sha256:").filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        match hex {
            Some(h) => Ok(self.dir.join("blobs/sha256").join(h)),
            None => Err(PushError::Layout {
                path: self.dir.join("index.json"),
                what: format!(
                    "{what}: digest {digest:?} is not sha256 and 64 lower-case hex digits"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Config, Image, LayerRef, Layout, platform_for};
    use std::sync::Arc;

    /// amd64 + arm64 sharing one layer, tags latest/nonroot on indexes and per-arch tags.
    fn layout(dir: &Path) -> Layout {
        let mut l = Layout::new();
        let layer = l.add_blob(Arc::new(b"layer".to_vec()));
        for (variant, user) in [("latest", "0"), ("nonroot", "65532")] {
            let mut per_arch = Vec::new();
            for arch in ["amd64", "arm64"] {
                let d = l
                    .add_image(&Image {
                        platform: platform_for(arch.parse().unwrap()),
                        config: Config {
                            user: Some(user.to_string()),
                            ..Config::default()
                        },
                        created: "1970-01-01T00:00:00Z".to_string(),
                        layers: vec![LayerRef {
                            digest: layer,
                            diff_id: layer,
                            size: 5,
                            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                        }],
                        history: Vec::new(),
                        annotations: BTreeMap::new(),
                    })
                    .unwrap();
                l.tag(&d, &format!("{variant}-{arch}"));
                per_arch.push(d);
            }
            let i = l.add_index(&per_arch, BTreeMap::new());
            l.tag(&i, variant);
        }
        l.write_dir(dir).unwrap();
        l
    }

    fn names(p: &Plan) -> Vec<&str> {
        p.tags.iter().map(|(t, _)| t.as_str()).collect()
    }

    #[test]
    fn every_tag_each_blob_once_children_before_parents() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("l");
        let l = layout(&dir);
        let p = plan(&dir, &[]).unwrap();
        assert_eq!(
            names(&p),
            [
                "latest",
                "latest-amd64",
                "latest-arm64",
                "nonroot",
                "nonroot-amd64",
                "nonroot-arm64"
            ]
        );
        // One layer and four configs; four per-arch manifests by digest.
        assert_eq!(p.blobs.len(), 5);
        assert_eq!(p.by_digest.len(), 4);
        for (_, d) in &p.tags {
            assert_eq!(
                &d.bytes[..],
                &l.blob(&d.digest.parse().unwrap()).unwrap()[..]
            );
        }
        assert_eq!(p.tags[0].1.media_type, INDEX_MEDIA_TYPE);
        assert_eq!(p.tags[1].1.media_type, MANIFEST_MEDIA_TYPE);
    }

    #[test]
    fn a_tag_brings_its_per_arch_tags_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("l");
        layout(&dir);
        let p = plan(&dir, &["nonroot".to_string()]).unwrap();
        assert_eq!(names(&p), ["nonroot", "nonroot-amd64", "nonroot-arm64"]);
        assert_eq!(p.blobs.len(), 3);
        let p = plan(&dir, &["latest-arm64".to_string()]).unwrap();
        assert_eq!(names(&p), ["latest-arm64"]);
        assert!(p.by_digest.is_empty());
        let e = plan(&dir, &["debug".to_string()]).unwrap_err().to_string();
        assert!(e.contains("latest, latest-amd64"), "{e}");
    }

    #[test]
    fn corrupt_missing_and_hostile_layouts_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("l");
        let l = layout(&dir);
        let index = std::fs::read_to_string(dir.join("index.json")).unwrap();

        // A manifest whose bytes changed.
        let amd = plan(&dir, &["latest-amd64".to_string()]).unwrap().tags[0]
            .1
            .digest
            .clone();
        let path = dir.join(blob_rel(&amd));
        std::fs::write(&path, b"{}").unwrap();
        let e = plan(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains(&amd), "{e}");
        std::fs::write(&path, &l.blob(&amd.parse().unwrap()).unwrap()[..]).unwrap();

        // A missing layer.
        let blob = plan(&dir, &[]).unwrap().blobs[0].path.clone();
        let bytes = std::fs::read(&blob).unwrap();
        std::fs::remove_file(&blob).unwrap();
        let e = plan(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("rebuild"), "{e}");
        std::fs::write(&blob, bytes).unwrap();

        // A digest that would climb out of the layout.
        let bad = index.replacen(&amd.replace("sha256:", ""), "../../../../etc/passwd", 1);
        std::fs::write(dir.join("index.json"), bad).unwrap();
        let e = plan(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("64 lower-case hex"), "{e}");

        assert!(
            plan(tmp.path(), &[])
                .unwrap_err()
                .to_string()
                .contains("oci-layout")
        );
    }

    fn blob_rel(digest: &str) -> String {
        format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
    }
}
