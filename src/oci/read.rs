//! Reading an image layout directory back: the one reader behind `inspect`, `push` and the
//! "already written" check of [`super::Layout::write_dir`]. A layout on disk is input like
//! any other, so every digest is parsed before it names a file (none climbs out of
//! `blobs/sha256/`), every document is checked against its descriptor's digest and size
//! before it is believed, and documents are read only up to a bound.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Descriptor, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, REF_NAME_ANNOTATION};
use crate::digest::Digest;

/// Docker's name for an index, accepted so that a layout written by another tool reads too.
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's name for an image manifest.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The largest manifest, index or config read: registries need accept no larger manifest
/// (distribution spec), and ours are a few KiB.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// Why a layout could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The directory has no `oci-layout` file.
    #[error(
        "{} is not an OCI image layout (no oci-layout file); pass a directory `debless \
         build` wrote, e.g. out/base-debian13",
        dir.display()
    )]
    NotALayout {
        /// The directory.
        dir: PathBuf,
    },
    /// `index.json` cannot be read.
    #[error("{}: cannot read it", path.display())]
    Index {
        /// `index.json`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `index.json` is not an index (a malformed digest lands here too).
    #[error("{}: not an image index; rebuild the layout", path.display())]
    BadIndex {
        /// `index.json`.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A tag asked for is not in `index.json`.
    #[error("{}: no tag {tag:?}; tags: {available}", dir.display())]
    NoSuchTag {
        /// The layout.
        dir: PathBuf,
        /// The tag asked for.
        tag: String,
        /// The layout's tags, comma-separated.
        available: String,
    },
    /// A blob a descriptor names is missing or unreadable.
    #[error("{}: blob {digest} is missing or unreadable; rebuild the layout", path.display())]
    MissingBlob {
        /// The file.
        path: PathBuf,
        /// Its digest.
        digest: Digest,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A blob has another size than its descriptor says.
    #[error(
        "{}: blob {digest} should be {expected} bytes but is {actual}; the layout is corrupt, \
         rebuild it",
        path.display()
    )]
    WrongSize {
        /// The file.
        path: PathBuf,
        /// Its digest.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// The file's.
        actual: u64,
    },
    /// A blob's bytes hash to something else than its name.
    #[error(
        "{}: expected {digest} but the file is {actual}; the layout is corrupt, rebuild it",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The digest it should have.
        digest: Digest,
        /// The digest it has.
        actual: Digest,
    },
    /// A manifest, index or config is larger than [`MAX_DOCUMENT`].
    #[error("{}: document {digest} is {size} bytes, more than the {MAX_DOCUMENT} a registry must accept", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its digest.
        digest: Digest,
        /// Its declared size.
        size: u64,
    },
    /// A document is not JSON of the expected shape.
    #[error("{}: {digest} is not a {what}", path.display())]
    BadDocument {
        /// The file.
        path: PathBuf,
        /// Its digest.
        digest: Digest,
        /// What it should be (`manifest or index`, `config`).
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A document's media type is neither an image manifest nor an index.
    #[error(
        "{}: {digest} has media type {media_type:?}, which is neither an image manifest nor \
         an index",
        path.display()
    )]
    UnknownMediaType {
        /// The file.
        path: PathBuf,
        /// Its digest.
        digest: Digest,
        /// The media type.
        media_type: String,
    },
    /// An image manifest without a config.
    #[error("{}: manifest {digest} has no config", path.display())]
    NoConfig {
        /// The file.
        path: PathBuf,
        /// Its digest.
        digest: Digest,
    },
}

/// `index.json`, an index or a manifest: the fields a reader needs.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocumentJson {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// A manifest or index as the layout holds it: its exact bytes (so its digest cannot change
/// on the way to a registry) and what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Its digest.
    pub digest: Digest,
    /// Its media type: the descriptor's, else the document's own `mediaType`.
    pub media_type: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// What it points at.
    pub content: Content,
}

/// Why bytes (whose digest was checked) are not an image manifest or index.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON of the expected shape.
    #[error("{digest} is not a {what}")]
    BadJson {
        /// Its digest.
        digest: Digest,
        /// What it should be.
        what: &'static str,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Neither an image manifest nor an index.
    #[error(
        "{digest} has media type {media_type:?}, which is neither an image manifest nor an index"
    )]
    UnknownMediaType {
        /// Its digest.
        digest: Digest,
        /// The media type.
        media_type: String,
    },
    /// An image manifest without a config.
    #[error("manifest {digest} has no config")]
    NoConfig {
        /// Its digest.
        digest: Digest,
    },
}

impl Document {
    /// Read `bytes`, the content `d` names (already checked against `d`'s digest), as a
    /// manifest or index: its media type is `d`'s, else the document's own `mediaType`.
    pub fn parse(d: &Descriptor, bytes: Vec<u8>) -> Result<Document, DocumentError> {
        let json: DocumentJson =
            serde_json::from_slice(&bytes).map_err(|source| DocumentError::BadJson {
                digest: d.digest,
                what: "manifest or index",
                source,
            })?;
        let media_type = if d.media_type.is_empty() {
            json.media_type
        } else {
            d.media_type.clone()
        };
        let content = match media_type.as_str() {
            INDEX_MEDIA_TYPE | DOCKER_LIST_MEDIA_TYPE => Content::Index(json.manifests),
            MANIFEST_MEDIA_TYPE | DOCKER_MANIFEST_MEDIA_TYPE => Content::Manifest {
                config: json
                    .config
                    .ok_or(DocumentError::NoConfig { digest: d.digest })?,
                layers: json.layers,
            },
            _ => {
                return Err(DocumentError::UnknownMediaType {
                    digest: d.digest,
                    media_type,
                });
            }
        };
        Ok(Document {
            digest: d.digest,
            media_type,
            bytes,
            content,
        })
    }
}

/// What a [`Document`] points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// An index: manifests (or further indexes), each with its platform if it has one.
    Index(Vec<Descriptor>),
    /// An image manifest: its config and layers, bottom first.
    Manifest {
        /// The config blob.
        config: Descriptor,
        /// The layer blobs, bottom first.
        layers: Vec<Descriptor>,
    },
}

/// One platform's image a tag reaches.
#[derive(Debug, Clone)]
pub struct ImageRef {
    /// The manifest's descriptor (with the platform an index or `index.json` gave it).
    pub descriptor: Descriptor,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
}

/// A tag resolved down to its images.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The tag's entry in `index.json`.
    pub descriptor: Descriptor,
    /// The images it reaches, in index order (one for a tag on a manifest).
    pub images: Vec<ImageRef>,
}

/// An image layout directory opened for reading.
#[derive(Debug, Clone)]
pub struct LayoutReader {
    dir: PathBuf,
    /// `index.json` entries that name a tag, by tag.
    tags: BTreeMap<String, Descriptor>,
}

impl LayoutReader {
    /// Open the layout at `dir`: it must have an `oci-layout` file and an `index.json`
    /// whose digests are all well-formed.
    pub fn open(dir: &Path) -> Result<LayoutReader, ReadError> {
        if !dir.join("oci-layout").is_file() {
            return Err(ReadError::NotALayout {
                dir: dir.to_path_buf(),
            });
        }
        let path = dir.join("index.json");
        let text = std::fs::read(&path).map_err(|source| ReadError::Index {
            path: path.clone(),
            source,
        })?;
        let index: DocumentJson =
            serde_json::from_slice(&text).map_err(|source| ReadError::BadIndex {
                path: path.clone(),
                source,
            })?;
        let mut tags = BTreeMap::new();
        for d in index.manifests {
            // Entries without a name are content, not tags.
            if let Some(name) = d.annotations.get(REF_NAME_ANNOTATION).cloned() {
                tags.insert(name, d);
            }
        }
        Ok(LayoutReader {
            dir: dir.to_path_buf(),
            tags,
        })
    }

    /// The layout directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `index.json`'s tagged entries, by tag.
    pub fn tags(&self) -> &BTreeMap<String, Descriptor> {
        &self.tags
    }

    /// The tags, comma-separated, for messages.
    pub fn tag_list(&self) -> String {
        self.tags.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// The entry for `tag`.
    pub fn tag(&self, tag: &str) -> Result<&Descriptor, ReadError> {
        self.tags.get(tag).ok_or_else(|| ReadError::NoSuchTag {
            dir: self.dir.clone(),
            tag: tag.to_owned(),
            available: self.tag_list(),
        })
    }

    /// Where a blob lives: `blobs/sha256/<hex>` (a [`Digest`] cannot name anything else).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.blob_path())
    }

    /// The blob `d` names, checked to be there with `d`'s size but not hashed (for a blob
    /// that is streamed elsewhere and checked there, as a registry does).
    pub fn check_blob(&self, d: &Descriptor) -> Result<PathBuf, ReadError> {
        let path = self.blob_path(&d.digest);
        let actual = std::fs::metadata(&path)
            .map_err(|source| ReadError::MissingBlob {
                path: path.clone(),
                digest: d.digest,
                source,
            })?
            .len();
        if actual != d.size {
            return Err(ReadError::WrongSize {
                path,
                digest: d.digest,
                expected: d.size,
                actual,
            });
        }
        Ok(path)
    }

    /// The blob `d` names, read whole and checked against its size and digest.
    pub fn read_blob(&self, d: &Descriptor) -> Result<Vec<u8>, ReadError> {
        self.read_bounded(d, u64::MAX)
    }

    /// Re-hash the blob `digest` names, streaming: is it there, `size` bytes long, with
    /// that digest?
    pub fn verify_blob(&self, digest: &Digest, size: u64) -> Result<(), ReadError> {
        let path = self.blob_path(digest);
        let missing = |source| ReadError::MissingBlob {
            path: path.clone(),
            digest: *digest,
            source,
        };
        let file = std::fs::File::open(&path).map_err(missing)?;
        let (actual, len) = Digest::of_reader(file).map_err(missing)?;
        if len != size {
            return Err(ReadError::WrongSize {
                path,
                digest: *digest,
                expected: size,
                actual: len,
            });
        }
        if actual != *digest {
            return Err(ReadError::Corrupt {
                path,
                digest: *digest,
                actual,
            });
        }
        Ok(())
    }

    /// The digests of the files in `blobs/sha256/`; `None` if the directory cannot be
    /// listed or holds a file whose name is not a digest.
    pub fn blob_digests(&self) -> Option<std::collections::BTreeSet<Digest>> {
        std::fs::read_dir(self.dir.join("blobs/sha256"))
            .ok()?
            .map(|entry| {
                let name = entry.ok()?.file_name();
                Digest::from_hex(name.to_str()?).ok()
            })
            .collect()
    }

    /// A JSON document (a config) `d` names, checked and parsed.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        d: &Descriptor,
        what: &'static str,
    ) -> Result<T, ReadError> {
        let bytes = self.read_bounded(d, MAX_DOCUMENT)?;
        serde_json::from_slice(&bytes).map_err(|source| ReadError::BadDocument {
            path: self.blob_path(&d.digest),
            digest: d.digest,
            what,
            source,
        })
    }

    /// The manifest or index `d` names, checked and parsed.
    pub fn document(&self, d: &Descriptor) -> Result<Document, ReadError> {
        let path = self.blob_path(&d.digest);
        let bytes = self.read_bounded(d, MAX_DOCUMENT)?;
        Document::parse(d, bytes).map_err(|e| match e {
            DocumentError::BadJson {
                digest,
                what,
                source,
            } => ReadError::BadDocument {
                path,
                digest,
                what,
                source,
            },
            DocumentError::UnknownMediaType { digest, media_type } => ReadError::UnknownMediaType {
                path,
                digest,
                media_type,
            },
            DocumentError::NoConfig { digest } => ReadError::NoConfig { path, digest },
        })
    }

    /// `tag` down to its images: through an index (and any index inside it) to each
    /// image manifest, its config and its layers.
    pub fn resolve(&self, tag: &str) -> Result<Resolved, ReadError> {
        let descriptor = self.tag(tag)?.clone();
        let mut images = Vec::new();
        // Depth-first in index order. Content addressing rules out cycles, but a hostile
        // layout could list one index many times over: each is expanded once.
        let mut expanded = std::collections::BTreeSet::new();
        let mut stack = vec![descriptor.clone()];
        while let Some(d) = stack.pop() {
            match self.document(&d)?.content {
                Content::Index(children) => {
                    if expanded.insert(d.digest) {
                        stack.extend(children.into_iter().rev());
                    }
                }
                Content::Manifest { config, layers } => images.push(ImageRef {
                    descriptor: d,
                    config,
                    layers,
                }),
            }
        }
        Ok(Resolved { descriptor, images })
    }

    /// Read the blob `d` names, refusing more than `limit` bytes, and check it.
    fn read_bounded(&self, d: &Descriptor, limit: u64) -> Result<Vec<u8>, ReadError> {
        let path = self.blob_path(&d.digest);
        if d.size > limit {
            return Err(ReadError::TooLarge {
                path,
                digest: d.digest,
                size: d.size,
            });
        }
        let missing = |source| ReadError::MissingBlob {
            path: path.clone(),
            digest: d.digest,
            source,
        };
        let file = std::fs::File::open(&path).map_err(missing)?;
        // One byte more than declared tells a longer file from an exact one.
        let mut bytes = Vec::with_capacity(d.size.min(MAX_DOCUMENT) as usize);
        file.take(d.size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(missing)?;
        if bytes.len() as u64 != d.size {
            let actual = std::fs::metadata(&path).map_or(bytes.len() as u64, |m| m.len());
            return Err(ReadError::WrongSize {
                path,
                digest: d.digest,
                expected: d.size,
                actual,
            });
        }
        let actual = Digest::of(&bytes);
        if actual != d.digest {
            return Err(ReadError::Corrupt {
                path,
                digest: d.digest,
                actual,
            });
        }
        Ok(bytes)
    }
}
