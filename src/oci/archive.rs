//! Single-file outputs: an `oci-archive` (the layout as a tar) and a `docker save` tar.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::layout::{digest_of, split_output, to_json};
use super::{Blob, Descriptor, LAYER_TAR_MEDIA_TYPE, LayerRef, Layout, OciError, io_err};
use crate::digest::Digest;
use crate::layer::tar::{Header, Kind, TarWriter};
use crate::layer::{Compression, Entry, EntryKind, write_tar};

/// One image of a docker archive's `manifest.json`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest<'a> {
    config: String,
    repo_tags: &'a [String],
    layers: Vec<String>,
}

/// A member of a docker archive.
enum Member<'a> {
    /// Bytes stored as they are (configs, manifest.json).
    Bytes(Arc<Vec<u8>>),
    /// A layer blob, stored uncompressed.
    Layer(&'a LayerRef, Arc<Vec<u8>>),
}

impl Layout {
    /// Write the layout as an `oci-archive` tar at `path` (deterministic; written to a
    /// temporary file and renamed into place).
    pub fn write_oci_archive(&self, path: &Path) -> Result<(), OciError> {
        let origin = "oci layout";
        let mut entries = vec![
            Entry::dir("blobs", 0, origin),
            Entry::dir("blobs/sha256", 0, origin),
        ];
        for (rel, blob) in self.files() {
            // File blobs are checked as they are read.
            let data = match (&blob, digest_of(&rel)) {
                (Blob::Bytes(bytes), _) => Arc::clone(bytes),
                (Blob::File { .. }, Some(digest)) => blob.load(&digest)?,
                (Blob::File { path, .. }, None) => {
                    return Err(OciError::Io {
                        path: path.clone(),
                        what: "a file blob outside blobs/sha256 (a bug in debless)",
                        source: io::ErrorKind::InvalidInput.into(),
                    });
                }
            };
            entries.push(Entry {
                path: rel,
                kind: EntryKind::File {
                    data,
                    link_group: None,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                origin: origin.to_string(),
            });
        }
        write_atomically(path, |out| {
            write_tar(&entries, 0, out)
                .map(drop)
                .map_err(|source| OciError::Tar {
                    path: path.to_path_buf(),
                    source,
                })
        })
    }

    /// Write a `docker save` tar at `path`: `manifest.json` with one entry per
    /// (RepoTags, image manifest), config blobs, and layers decompressed so `docker load`
    /// and skopeo accept them.
    pub fn write_docker_archive(
        &self,
        path: &Path,
        images: &[(Vec<String>, Descriptor)],
    ) -> Result<(), OciError> {
        let mut members: BTreeMap<String, Member<'_>> = BTreeMap::new();
        let mut manifest = Vec::new();
        for (tags, desc) in images {
            let Some(record) = self.images.get(&desc.digest) else {
                return Err(OciError::NotAnImage {
                    digest: desc.digest,
                });
            };
            // add_image stored the config and checked every layer, so these lookups hold
            // for any record; a miss would be a bug here, reported rather than panicking.
            let config = self.stored(&record.config)?;
            let config_name = format!("{}.json", record.config.hex());
            members.insert(config_name.clone(), Member::Bytes(config.clone()));
            let mut layers = Vec::new();
            for l in &record.layers {
                // Named by diff_id: the file is the uncompressed tar, which docker checks
                // against rootfs.diff_ids.
                let name = format!("{}.tar", l.diff_id.hex());
                members.insert(name.clone(), Member::Layer(l, self.stored(&l.digest)?));
                layers.push(name);
            }
            manifest.push(DockerManifest {
                config: config_name,
                repo_tags: tags,
                layers,
            });
        }
        members.insert(
            "manifest.json".to_string(),
            Member::Bytes(Arc::new(to_json(&manifest))),
        );

        write_atomically(path, |out| {
            let mut tar = TarWriter::new(out);
            for (name, member) in &members {
                let mut h = Header {
                    path: name,
                    kind: Kind::File,
                    link: "",
                    size: 0,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                };
                let result = match member {
                    Member::Bytes(bytes) => tar.append_bytes(&h, bytes),
                    Member::Layer(layer, blob) => {
                        // Decompress twice rather than hold a whole uncompressed layer in
                        // memory: the tar header needs the size before the data.
                        h.size = check_layer(layer, blob)?;
                        let mut reader = decoder(layer, blob)?;
                        tar.append(&h, &mut reader)
                    }
                };
                result.map_err(io_err(path, "cannot write the archive"))?;
            }
            tar.finish()
                .map(drop)
                .map_err(io_err(path, "cannot write the archive"))
        })
    }

    /// A blob that the layout's own bookkeeping says is present.
    fn stored(&self, digest: &Digest) -> Result<Arc<Vec<u8>>, OciError> {
        self.blobs
            .get(digest)
            .ok_or(OciError::NotAnImage { digest: *digest })?
            .load(digest)
    }
}

/// Decompress `blob` once to learn its tar size and check it against the layer's diff_id.
fn check_layer(layer: &LayerRef, blob: &[u8]) -> Result<u64, OciError> {
    let mut reader = decoder(layer, blob)?;
    let (actual, len) =
        Digest::of_reader(&mut reader).map_err(|source| OciError::CorruptLayer {
            digest: layer.digest,
            source,
        })?;
    if actual != layer.diff_id {
        return Err(OciError::DiffIdMismatch {
            digest: layer.digest,
            expected: layer.diff_id,
            actual,
        });
    }
    Ok(len)
}

/// A reader of the uncompressed tar inside a layer blob, chosen by media type.
fn decoder<'a>(layer: &LayerRef, blob: &'a [u8]) -> Result<Box<dyn Read + 'a>, OciError> {
    let mt = layer.media_type.as_str();
    if mt == Compression::Gzip.media_type()
        || mt == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    {
        // Multi-member: concatenated gzip streams are one valid layer.
        Ok(Box::new(flate2::read::MultiGzDecoder::new(blob)))
    } else if mt == Compression::Zstd.media_type() {
        let d =
            zstd::stream::read::Decoder::new(blob).map_err(|source| OciError::CorruptLayer {
                digest: layer.digest,
                source,
            })?;
        Ok(Box::new(d))
    } else if mt == LAYER_TAR_MEDIA_TYPE {
        Ok(Box::new(blob))
    } else {
        Err(OciError::UnsupportedLayer {
            digest: layer.digest,
            media_type: layer.media_type.clone(),
        })
    }
}

/// Write a file through `fill` into a sibling temporary file, then rename it to `path`, so
/// readers never see a half-written archive and a failure leaves no file behind.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&fs::File>) -> Result<(), OciError>,
) -> Result<(), OciError> {
    let (parent, name) = split_output(path)?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(io_err(&parent, "cannot create a temporary file"))?;
    {
        let mut out = BufWriter::new(tmp.as_file());
        fill(&mut out)?;
        out.flush()
            .map_err(io_err(path, "cannot write the archive"))?;
    }
    // NamedTempFile creates 0600; an archive is meant to be shared.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(io_err(tmp.path(), "cannot set permissions"))?;
    tmp.persist(path)
        .map_err(|e| io_err(path, "cannot move the archive into place")(e.error))?;
    Ok(())
}
