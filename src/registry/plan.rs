//! What a push sends, read from an image layout directory: the tags chosen, the manifests
//! they reach (children before parents) and every layer and config blob, each once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::PushError;
use super::reference::valid_tag;
use crate::digest::Digest;
use crate::oci::{Content, Descriptor, LayoutReader};

pub(super) use crate::oci::Document;

/// A layer or config blob to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Blob {
    /// Its digest.
    pub digest: Digest,
    /// Length, as the manifest declares it (and the file has).
    pub size: u64,
    /// Where its bytes are.
    pub data: BlobData,
}

/// Where a blob's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum BlobData {
    /// The file under `blobs/sha256/` (or an SPDX document): streamed, never loaded whole.
    File(PathBuf),
    /// Bytes made for the push (an artifact's empty config).
    Bytes(Vec<u8>),
}

/// Everything one push sends, in the order it must arrive.
#[derive(Debug)]
pub(super) struct Plan {
    /// Layers and configs of every manifest reached, by digest.
    pub blobs: Vec<Blob>,
    /// Manifests to put by digest before any tag (the children of indexes), children first.
    pub by_digest: Vec<Document>,
    /// Tags to put, in the layout's tag order, by their names in the layout.
    pub tags: Vec<(String, Document)>,
    /// Push the layout's tag `.0` (and its `.0-<arch>` tags) as `.1` (`.1-<arch>`).
    pub rename: Option<(String, String)>,
}

impl Plan {
    /// Push the tag `from` as `to`, its per-architecture tags `<from>-<arch>` as
    /// `<to>-<arch>`; every name made must be a valid tag.
    pub(super) fn rename(&mut self, from: &str, to: &str, path: &Path) -> Result<(), PushError> {
        self.rename = Some((from.to_owned(), to.to_owned()));
        for (tag, _) in &self.tags {
            let name = self.pushed_name(tag);
            if !valid_tag(&name) {
                return Err(PushError::InvalidTag {
                    path: path.to_owned(),
                    tag: name,
                });
            }
        }
        Ok(())
    }

    /// The name the layout's `tag` gets in the registry.
    pub(super) fn pushed_name(&self, tag: &str) -> String {
        match &self.rename {
            Some((from, to)) if tag == from => to.clone(),
            Some((from, to)) => match tag
                .strip_prefix(from.as_str())
                .and_then(|s| s.strip_prefix('-'))
            {
                Some(arch) => format!("{to}-{arch}"),
                None => tag.to_owned(),
            },
            None => tag.to_owned(),
        }
    }
}

/// Read the layout at `dir` and plan the push of `wanted` tags (none: every tag). Asking
/// for a tag also pushes its per-architecture tags: the layout's tags `<tag>-<suffix>`
/// that name a manifest of `<tag>`'s index (`latest` brings `latest-amd64`).
pub(super) fn plan(dir: &Path, wanted: &[String]) -> Result<Plan, PushError> {
    let reader = LayoutReader::open(dir)?;
    let index = reader.tags();
    if index.is_empty() {
        return Err(PushError::NoTags {
            path: dir.join("index.json"),
        });
    }
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    for t in wanted {
        if !index.contains_key(t) {
            return Err(PushError::NoSuchTag {
                path: dir.to_path_buf(),
                tag: t.clone(),
                available: reader.tag_list(),
            });
        }
        chosen.insert(t.clone());
    }
    if wanted.is_empty() {
        chosen.extend(index.keys().cloned());
    }
    if let Some(bad) = chosen.iter().find(|name| !valid_tag(name)) {
        return Err(PushError::InvalidTag {
            path: dir.join("index.json"),
            tag: bad.clone(),
        });
    }

    let mut walk = Walk {
        reader: &reader,
        docs: BTreeMap::new(),
        blobs: BTreeMap::new(),
        by_digest: Vec::new(),
    };
    // The per-architecture tags of a chosen index come with it.
    let mut names = chosen.clone();
    for name in &chosen {
        let (_, children) = walk.document(&index[name])?;
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
        let (doc, _) = walk.document(&index[&name])?;
        tags.push((name, doc));
    }
    Ok(Plan {
        blobs: walk.blobs.into_values().collect(),
        by_digest: walk.by_digest,
        tags,
        rename: None,
    })
}

/// The documents and blobs reached so far.
struct Walk<'a> {
    reader: &'a LayoutReader,
    /// Documents already read, with the digests of their child manifests.
    docs: BTreeMap<Digest, (Document, Vec<Digest>)>,
    blobs: BTreeMap<Digest, Blob>,
    /// Child manifests of indexes, children first.
    by_digest: Vec<Document>,
}

impl Walk<'_> {
    /// Read and verify the manifest or index `d`; queue its blobs and child manifests.
    /// Returns the document and the digests of its child manifests.
    fn document(&mut self, d: &Descriptor) -> Result<(Document, Vec<Digest>), PushError> {
        if let Some(done) = self.docs.get(&d.digest) {
            return Ok(done.clone());
        }
        let doc = self.reader.document(d)?;
        let mut children = Vec::new();
        match &doc.content {
            Content::Index(manifests) => {
                for c in manifests {
                    let (child, _) = self.document(c)?;
                    if !self.by_digest.iter().any(|x| x.digest == child.digest) {
                        self.by_digest.push(child);
                    }
                    children.push(c.digest);
                }
            }
            Content::Manifest { config, layers } => {
                for b in std::iter::once(config).chain(layers) {
                    self.blob(b)?;
                }
            }
        }
        self.docs.insert(d.digest, (doc.clone(), children.clone()));
        Ok((doc, children))
    }

    /// Queue a layer or config blob, checking that the file is there with the right size
    /// (its hash is checked by the registry, which computes it as the bytes arrive).
    fn blob(&mut self, d: &Descriptor) -> Result<(), PushError> {
        if self.blobs.contains_key(&d.digest) {
            return Ok(());
        }
        let path = self.reader.check_blob(d)?;
        self.blobs.insert(
            d.digest,
            Blob {
                digest: d.digest,
                size: d.size,
                data: BlobData::File(path),
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{
        Config, INDEX_MEDIA_TYPE, Image, LayerRef, Layout, MANIFEST_MEDIA_TYPE, ReadError,
        platform_for,
    };
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
            assert_eq!(&d.bytes[..], &l.blob(&d.digest).unwrap()[..]);
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
            .digest;
        let path = dir.join(amd.blob_path());
        let good = l.blob(&amd).unwrap().to_vec();
        // Same length, other bytes: only the hash tells.
        let mut evil = good.clone();
        evil[0] ^= 1;
        std::fs::write(&path, &evil).unwrap();
        let e = plan(&dir, &[]).unwrap_err();
        assert!(
            matches!(&e, PushError::Layout(ReadError::Corrupt { digest, .. }) if *digest == amd),
            "{e}"
        );
        assert!(e.to_string().contains("corrupt"), "{e}");
        std::fs::write(&path, b"{}").unwrap();
        let e = plan(&dir, &[]).unwrap_err();
        assert!(
            matches!(&e, PushError::Layout(ReadError::WrongSize { .. })),
            "{e}"
        );
        std::fs::write(&path, &good).unwrap();

        // A missing layer.
        let BlobData::File(blob) = plan(&dir, &[]).unwrap().blobs[0].data.clone() else {
            panic!("layout blobs are files");
        };
        let bytes = std::fs::read(&blob).unwrap();
        std::fs::remove_file(&blob).unwrap();
        let e = plan(&dir, &[]).unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("rebuild"), "{e}");
        std::fs::write(&blob, bytes).unwrap();

        // A digest that would climb out of the layout is not even a digest.
        let bad = index.replacen(&amd.hex(), "../../../../etc/passwd", 1);
        std::fs::write(dir.join("index.json"), bad).unwrap();
        let e = plan(&dir, &[]).unwrap_err();
        assert!(
            matches!(&e, PushError::Layout(ReadError::BadIndex { .. })),
            "{e}"
        );
        assert!(
            crate::text::error_line(&e).contains("64 lower-case hex"),
            "{e}"
        );

        let e = plan(tmp.path(), &[]).unwrap_err();
        assert!(
            matches!(&e, PushError::Layout(ReadError::NotALayout { .. })),
            "{e}"
        );
    }
}
