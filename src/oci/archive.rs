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
/// readers never see a half-written archive and a failure leaves no file behind. A file
/// already at `path` is replaced only if it is an archive debless wrote.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<&fs::File>) -> Result<(), OciError>,
) -> Result<(), OciError> {
    let (parent, name) = split_output(path)?;
    // A build killed while writing this archive left its temporary here.
    crate::tmp::sweep(&parent, Some(&name));
    if !may_replace_archive(path) {
        return Err(OciError::NotOurArchive {
            path: path.to_path_buf(),
        });
    }
    let tmp = crate::tmp::TempFile::new_in(&parent, &name, 0o644)
        .map_err(io_err(&parent, "cannot create a temporary file"))?;
    {
        let mut out = BufWriter::new(tmp.file());
        fill(&mut out)?;
        out.flush()
            .map_err(io_err(path, "cannot write the archive"))?;
    }
    // Created 0644 less the umask; an archive is meant to be shared.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
        .map_err(io_err(tmp.path(), "cannot set permissions"))?;
    crate::tmp::kill_point("archive-staged");
    tmp.persist(path)
        .map_err(io_err(path, "cannot move the archive into place"))?;
    Ok(())
}

/// May an archive be written at `path`: nothing is there, or a regular file (not a link)
/// whose first tar header is one [`Layout::write_oci_archive`] or
/// [`Layout::write_docker_archive`] writes (ustar, mtime 0, no owner names, `blobs/` or
/// a member named by a digest or `manifest.json`)? Anything else may be someone's data.
pub fn may_replace_archive(path: &Path) -> bool {
    use std::io::Read as _;
    match fs::symlink_metadata(path) {
        Err(e) => return e.kind() == io::ErrorKind::NotFound,
        Ok(m) if !m.is_file() => return false,
        Ok(_) => {}
    }
    let mut block = [0u8; 512];
    let read = fs::File::open(path).and_then(|mut f| f.read_exact(&mut block));
    if read.is_err() {
        return false;
    }
    let field = |r: std::ops::Range<usize>| &block[r];
    let name_end = block[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = &block[..name_end];
    let ustar = field(257..265) == b"ustar\x0000";
    let epoch = field(136..148) == b"00000000000\0";
    let no_owner_names = field(265..329).iter().all(|&b| b == 0);
    let digest_named = |ext: &[u8]| {
        name.len() == 64 + ext.len()
            && name.ends_with(ext)
            && name[..64]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let first = match block[156] {
        b'5' => name == b"blobs/",
        b'0' => digest_named(b".json") || digest_named(b".tar") || name == b"manifest.json",
        _ => false,
    };
    ustar && epoch && no_owner_names && first
}
