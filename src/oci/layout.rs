//! The in-memory image layout: content-addressed blobs plus the tags of `index.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::{Digest, Hasher};
use rayon::prelude::*;
use serde::Serialize;

use super::image::{ConfigJson, IndexJson, ManifestJson};
use super::{
    CONFIG_MEDIA_TYPE, Descriptor, INDEX_MEDIA_TYPE, Image, LayerRef, LayoutReader,
    MANIFEST_MEDIA_TYPE, OciError, REF_NAME_ANNOTATION, io_err,
};

/// Content of the `oci-layout` file.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Where a blob's bytes are: in memory, or in a file (a cached layer, never loaded whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    /// The bytes themselves.
    Bytes(Arc<Vec<u8>>),
    /// A file holding them (content-addressed: its name is trusted only after hashing).
    File {
        /// Where it is.
        path: PathBuf,
        /// Its length.
        size: u64,
    },
}

impl Blob {
    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        match self {
            Blob::Bytes(b) => b.len() as u64,
            Blob::File { size, .. } => *size,
        }
    }

    /// The bytes, read and checked against `digest` if they live in a file.
    pub fn load(&self, digest: &Digest) -> Result<Arc<Vec<u8>>, OciError> {
        match self {
            Blob::Bytes(b) => Ok(Arc::clone(b)),
            Blob::File { path, .. } => {
                let bytes = fs::read(path).map_err(io_err(path, "cannot read the blob"))?;
                check_file_digest(path, digest, &Digest::of(&bytes))?;
                Ok(Arc::new(bytes))
            }
        }
    }
}

/// A cached blob whose bytes no longer hash to its name is removed, so the next build
/// makes it again.
fn check_file_digest(path: &Path, want: &Digest, got: &Digest) -> Result<(), OciError> {
    if want == got {
        return Ok(());
    }
    let _ = fs::remove_file(path);
    Err(OciError::CorruptBlob {
        path: path.to_path_buf(),
        digest: *want,
        actual: *got,
    })
}

/// An in-memory OCI image layout being assembled.
#[derive(Clone, Default)]
pub struct Layout {
    /// Blobs by digest.
    pub(super) blobs: BTreeMap<Digest, Blob>,
    /// What each image manifest added here refers to, by manifest digest; docker archives
    /// need it and re-parsing our own JSON would be a detour.
    pub(super) images: BTreeMap<Digest, ImageRecord>,
    /// `index.json` entries by tag; the map keeps them in tag order.
    tags: BTreeMap<String, Descriptor>,
}

impl std::fmt::Debug for Layout {
    /// Digests and tags only: the derived form would print every blob byte by byte.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layout")
            .field("blobs", &self.blobs.keys().collect::<Vec<_>>())
            .field("tags", &self.tags)
            .finish()
    }
}

/// The blobs one image manifest points at.
#[derive(Debug, Clone)]
pub(super) struct ImageRecord {
    /// Digest of the config blob.
    pub config: Digest,
    /// The layers, bottom first.
    pub layers: Vec<LayerRef>,
}

impl Layout {
    /// An empty layout.
    pub fn new() -> Layout {
        Layout::default()
    }

    /// Store a blob; returns its digest. Adding the same bytes twice stores them once.
    pub fn add_blob(&mut self, bytes: Arc<Vec<u8>>) -> Digest {
        let digest = Digest::of(&bytes);
        self.blobs.entry(digest).or_insert(Blob::Bytes(bytes));
        digest
    }

    /// Store a blob kept in a file, by the digest its writer computed (checked when the
    /// layout is written).
    pub fn add_file_blob(&mut self, digest: Digest, path: PathBuf, size: u64) {
        self.blobs
            .entry(digest)
            .or_insert(Blob::File { path, size });
    }

    /// A stored in-memory blob by digest (configs and manifests are always in memory).
    pub fn blob(&self, digest: &Digest) -> Option<&Arc<Vec<u8>>> {
        match self.blobs.get(digest) {
            Some(Blob::Bytes(b)) => Some(b),
            _ => None,
        }
    }

    /// Add an image's config and manifest blobs (its layer blobs must already be here).
    /// The descriptor carries the platform and the manifest's annotations.
    pub fn add_image(&mut self, image: &Image) -> Result<Descriptor, OciError> {
        let name = image.platform.to_string();
        if image.created.parse::<jiff::Timestamp>().is_err() {
            return Err(OciError::InvalidCreated {
                image: name,
                created: image.created.clone(),
            });
        }
        for l in &image.layers {
            let Some(blob) = self.blobs.get(&l.digest) else {
                return Err(OciError::MissingBlob {
                    image: name,
                    digest: l.digest,
                });
            };
            if blob.size() != l.size {
                return Err(OciError::BlobSizeMismatch {
                    image: name,
                    digest: l.digest,
                    declared: l.size,
                    actual: blob.size(),
                });
            }
        }
        // Docker pairs non-empty history entries with layers by position.
        let made_layers = image.history.iter().filter(|h| !h.empty_layer).count();
        if !image.history.is_empty() && made_layers != image.layers.len() {
            return Err(OciError::HistoryMismatch {
                image: name,
                history: made_layers,
                layers: image.layers.len(),
            });
        }

        let config = self.add_json(&ConfigJson::new(image), CONFIG_MEDIA_TYPE);
        let manifest = ManifestJson {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE,
            config: config.clone(),
            layers: image
                .layers
                .iter()
                .map(|l| Descriptor {
                    media_type: l.media_type.clone(),
                    digest: l.digest,
                    size: l.size,
                    platform: None,
                    annotations: BTreeMap::new(),
                })
                .collect(),
            annotations: &image.annotations,
        };
        let mut desc = self.add_json(&manifest, MANIFEST_MEDIA_TYPE);
        desc.platform = Some(image.platform.clone());
        desc.annotations = image.annotations.clone();
        self.images.insert(
            desc.digest,
            ImageRecord {
                config: config.digest,
                layers: image.layers.clone(),
            },
        );
        Ok(desc)
    }

    /// Add an image index over `manifests` (each should carry its platform).
    pub fn add_index(
        &mut self,
        manifests: &[Descriptor],
        annotations: BTreeMap<String, String>,
    ) -> Descriptor {
        let bytes = index_bytes(manifests, &annotations);
        let size = bytes.len() as u64;
        let digest = self.add_blob(Arc::new(bytes));
        Descriptor {
            media_type: INDEX_MEDIA_TYPE.to_string(),
            digest,
            size,
            platform: None,
            annotations,
        }
    }

    /// `index.json`'s entries so far, by tag.
    pub fn tags(&self) -> &BTreeMap<String, Descriptor> {
        &self.tags
    }

    /// Name `desc` in `index.json` (annotation `org.opencontainers.image.ref.name`); tagging
    /// the same name again moves the tag.
    pub fn tag(&mut self, desc: &Descriptor, name: &str) {
        let mut entry = desc.clone();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_string(), name.to_string());
        self.tags.insert(name.to_string(), entry);
    }

    /// Write the layout into directory `dir`, replacing a previous layout there atomically:
    /// the new tree is built in a sibling temporary directory and renamed into place, so a
    /// failure leaves the old layout intact and no temporary directory behind. A layout
    /// already there with exactly these files (every blob re-hashed) is left alone:
    /// returns whether anything was written.
    pub fn write_dir(&self, dir: &Path) -> Result<bool, OciError> {
        let (parent, name) = split_output(dir)?;
        // A build killed while writing this layout left its temporaries here.
        crate::tmp::sweep(&parent, Some(&name));
        let existing = match fs::symlink_metadata(dir) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(dir, "cannot inspect the output directory")(e)),
        };
        // Never swap away a directory that is not a layout: it could be anyone's data.
        if existing.is_some() && !holds_only_a_layout(dir)? {
            return Err(OciError::NotALayout {
                path: dir.to_path_buf(),
            });
        }
        let files = self.files();
        if existing.is_some() && is_written_at(&files, dir) {
            return Ok(false);
        }

        let staging = crate::tmp::TempDir::new_in(&parent, &name)
            .map_err(io_err(&parent, "cannot create a temporary directory"))?;
        let blobs_dir = staging.path().join("blobs/sha256");
        fs::create_dir_all(&blobs_dir)
            .map_err(io_err(&blobs_dir, "cannot create the blob directory"))?;
        let written: Vec<Result<(), OciError>> = files
            .par_iter()
            .map(|(rel, blob)| {
                let path = staging.path().join(rel);
                match blob {
                    Blob::Bytes(bytes) => {
                        fs::write(&path, &**bytes).map_err(io_err(&path, "cannot write"))
                    }
                    Blob::File { path: from, .. } => match digest_of(rel) {
                        Some(digest) => copy_checked(from, &path, &digest),
                        None => unreachable_blob(rel),
                    },
                }
            })
            .collect();
        written.into_iter().collect::<Result<(), OciError>>()?;
        // Created 0755 less the umask; a layout is meant to be read by other tools and users.
        fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o755))
            .map_err(io_err(staging.path(), "cannot set permissions"))?;
        crate::tmp::kill_point("layout-staged");
        replace_dir(staging, dir)?;
        Ok(true)
    }

    /// Every file of the layout as (relative path, blob): `oci-layout`, `index.json`,
    /// `blobs/sha256/<hex>`, in path order.
    pub(super) fn files(&self) -> Vec<(String, Blob)> {
        let manifests: Vec<Descriptor> = self.tags.values().cloned().collect();
        let index = to_json(&IndexJson {
            schema_version: 2,
            media_type: INDEX_MEDIA_TYPE,
            manifests: &manifests,
            annotations: &BTreeMap::new(),
        });
        let mut files: Vec<(String, Blob)> = self
            .blobs
            .iter()
            .map(|(digest, blob)| (digest.blob_path(), blob.clone()))
            .collect();
        files.push(("index.json".to_string(), Blob::Bytes(Arc::new(index))));
        files.push((
            "oci-layout".to_string(),
            Blob::Bytes(Arc::new(OCI_LAYOUT.to_vec())),
        ));
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files
    }

    /// Serialise `value`, store it, and describe it.
    fn add_json(&mut self, value: &impl Serialize, media_type: &str) -> Descriptor {
        let bytes = Arc::new(to_json(value));
        let size = bytes.len() as u64;
        let digest = self.add_blob(bytes);
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// The bytes of an image index over `manifests`, as [`Layout::add_index`] writes it (and
/// `debless index` puts it in a registry).
pub fn index_bytes(manifests: &[Descriptor], annotations: &BTreeMap<String, String>) -> Vec<u8> {
    to_json(&IndexJson {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests,
        annotations,
    })
}

/// Compact JSON of one of this module's documents.
pub(super) fn to_json(value: &impl Serialize) -> Vec<u8> {
    // The documents are structs of strings, numbers and string-keyed BTreeMaps written to a
    // Vec: serde_json has no failure path for them, whatever the values.
    serde_json::to_vec(value).expect("OCI documents always serialise")
}

/// The directory an output goes into and the output's file name.
pub(super) fn split_output(path: &Path) -> Result<(PathBuf, String), OciError> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(OciError::Io {
            path: path.to_path_buf(),
            what: "output path has no usable file name",
            source: std::io::ErrorKind::InvalidInput.into(),
        });
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_err(&parent, "cannot create the directory"))?;
    Ok((parent, name.to_string()))
}

/// Put directory `new` (a temporary in `dir`'s parent) at `dir`, replacing what is there
/// in one step ([`crate::tmp::replace_dir`]): `dir` is never missing, even if the process
/// is killed, and a failure leaves the old one.
pub fn replace_dir(new: crate::tmp::TempDir, dir: &Path) -> Result<(), OciError> {
    crate::tmp::replace_dir(new, dir).map_err(io_err(dir, "cannot move the new layout into place"))
}

/// The digest a layout path `blobs/sha256/<hex>` names (`None` for other files).
pub(super) fn digest_of(rel: &str) -> Option<Digest> {
    rel.strip_prefix("blobs/sha256/")
        .and_then(|h| Digest::from_hex(h).ok())
}

/// Only blobs are kept in files, and [`Layout::files`] names each by its digest.
fn unreachable_blob(rel: &str) -> Result<(), OciError> {
    Err(OciError::Io {
        path: PathBuf::from(rel),
        what: "a file blob outside blobs/sha256 (a bug in debless)",
        source: std::io::ErrorKind::InvalidInput.into(),
    })
}

/// Copy a file blob, hashing it on the way: a cached blob that does not hash to its
/// digest never reaches an image (and is removed from the cache).
fn copy_checked(from: &Path, to: &Path, digest: &Digest) -> Result<(), OciError> {
    use std::io::{Read, Write};
    let mut src = fs::File::open(from).map_err(io_err(from, "cannot read the blob"))?;
    let mut dst = fs::File::create(to).map_err(io_err(to, "cannot write"))?;
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = src
            .read(&mut buf)
            .map_err(io_err(from, "cannot read the blob"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])
            .map_err(io_err(to, "cannot write"))?;
    }
    check_file_digest(from, digest, &hasher.finish())
}

/// Does `dir` already hold exactly `files`? Every blob is re-hashed (in parallel), so a
/// damaged output is rewritten rather than trusted; any doubt answers no.
fn is_written_at(files: &[(String, Blob)], dir: &Path) -> bool {
    let Ok(reader) = LayoutReader::open(dir) else {
        return false;
    };
    let wanted: BTreeSet<Digest> = files.iter().filter_map(|(rel, _)| digest_of(rel)).collect();
    if reader.blob_digests() != Some(wanted) {
        return false;
    }
    files.par_iter().all(|(rel, blob)| match blob {
        Blob::Bytes(bytes) => fs::read(dir.join(rel)).is_ok_and(|b| b == **bytes),
        Blob::File { size, .. } => {
            digest_of(rel).is_some_and(|d| reader.verify_blob(&d, *size).is_ok())
        }
    })
}

/// Is `dir` a real directory (not a link) that is empty or holds an image layout and
/// nothing else: `oci-layout` and `index.json` as regular files, and `blobs/sha256/`
/// holding only regular files named by a digest? Replacing such a directory loses no
/// file a layout would not have.
pub fn holds_only_a_layout(dir: &Path) -> Result<bool, OciError> {
    let read = |d: &Path| -> Result<Vec<(String, fs::FileType)>, OciError> {
        let mut out = Vec::new();
        for e in fs::read_dir(d).map_err(io_err(d, "cannot read the directory"))? {
            let e = e.map_err(io_err(d, "cannot read the directory"))?;
            let t = e
                .file_type()
                .map_err(io_err(d, "cannot read the directory"))?;
            out.push((e.file_name().to_string_lossy().into_owned(), t));
        }
        Ok(out)
    };
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    let top = read(dir)?;
    if top.is_empty() {
        return Ok(true);
    }
    let mut has_layout_file = false;
    for (name, t) in &top {
        match name.as_str() {
            "oci-layout" if t.is_file() => has_layout_file = true,
            "index.json" if t.is_file() => {}
            "blobs" if t.is_dir() => {}
            _ => return Ok(false),
        }
    }
    let blobs = dir.join("blobs");
    if !has_layout_file {
        return Ok(false);
    }
    if !blobs.exists() {
        return Ok(true);
    }
    for (name, t) in read(&blobs)? {
        if name != "sha256" || !t.is_dir() {
            return Ok(false);
        }
        for (hex, t) in read(&blobs.join("sha256"))? {
            if !t.is_file() || Digest::from_hex(&hex).is_err() {
                return Ok(false);
            }
        }
    }
    Ok(true)
}
