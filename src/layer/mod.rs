//! Deterministic tar layers: entries in, a compressed blob with its diff_id and digest out.
//!
//! Every byte is a function of the entries, the clamp time and the compression choice:
//! members are sorted by path bytes, headers are plain ustar (PAX only for values ustar cannot
//! hold), owners are numeric with empty names, and the compressor's backend, level and
//! framing are fixed because they are part of the digest.

pub mod entry;
pub mod pargz;
pub(crate) mod tar;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;
use std::sync::Arc;

use crate::digest::{Digest, Hasher};

pub use entry::{
    Entry, EntryKind, MAX_NAME_BYTES, MAX_PATH_BYTES, link_target_problem, path_problem,
};

/// gzip level (zlib-rs backend): zlib's default trade-off; changing it changes every digest.
pub const GZIP_LEVEL: u32 = 6;

/// zstd level (libzstd, checksummed frames, one worker): libzstd's default; changing it
/// changes every digest.
pub const ZSTD_LEVEL: i32 = 3;

/// gzip header OS byte: 255 ("unknown"), what Go-built layers carry, so the build host's OS
/// never reaches the digest.
const GZIP_OS_UNKNOWN: u8 = 255;

/// How layer blobs are compressed (part of every digest: backend and level are fixed).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip, level [`GZIP_LEVEL`]: what every runtime reads.
    #[default]
    Gzip,
    /// zstd, level [`ZSTD_LEVEL`]: smaller and faster, needs containerd >= 1.5.
    Zstd,
}

impl Compression {
    /// The OCI media type of a layer compressed this way.
    pub fn media_type(&self) -> &'static str {
        match self {
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The name used on the command line and in rule files.
    pub fn name(&self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Compression {
    type Err = LayerError;

    fn from_str(s: &str) -> Result<Compression, LayerError> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(LayerError::UnknownCompression {
                name: s.to_string(),
            }),
        }
    }
}

/// What identifies a written layer blob, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerInfo {
    /// Digest of the blob.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Length of the blob.
    pub size: u64,
    /// Length of the uncompressed tar.
    pub tar_size: u64,
    /// How the blob is compressed.
    pub compression: Compression,
}

/// A finished layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The compressed bytes.
    pub blob: Arc<Vec<u8>>,
    /// Digest of `blob`.
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Length of `blob`.
    pub size: u64,
    /// Length of the uncompressed tar.
    pub tar_size: u64,
    /// How `blob` is compressed.
    pub compression: Compression,
}

/// Why a layer could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Two entries claim the same path.
    #[error(
        "/{path} is in the layer twice (from {first} and from {second}); keep it in only one \
         package selection or generator"
    )]
    DuplicatePath {
        /// The path.
        path: String,
        /// Origin of the first entry.
        first: String,
        /// Origin of the second entry.
        second: String,
    },
    /// A path that is not normalised (the extractor or generator should have fixed it).
    #[error("{origin}: path {path:?} cannot go into a layer: {why}; normalise it before layering")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Who contributed it.
        origin: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A symlink target that no tar can carry.
    #[error("{origin}: symlink /{path} has target {target:?}, which {why}; fix the entry")]
    InvalidLinkTarget {
        /// The symlink's path.
        path: String,
        /// The target.
        target: String,
        /// Who contributed it.
        origin: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Entries of one hard-link group carry different bytes, so they cannot be one inode.
    #[error(
        "hard-link group {group}: /{first} and /{other} have different contents; every link \
         of one inode must carry the same bytes (check the extractor's link handling)"
    )]
    LinkGroupMismatch {
        /// The `link_group` value.
        group: String,
        /// The path written as the file.
        first: String,
        /// The path whose bytes differ.
        other: String,
    },
    /// A compression name that is neither `gzip` nor `zstd`.
    #[error("unknown compression {name:?}: use \"gzip\" or \"zstd\"")]
    UnknownCompression {
        /// The name given.
        name: String,
    },
    /// The tar stream or the compressor failed.
    #[error("{context}: {source}")]
    Write {
        /// What was being written.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Write `entries` (any order; sorted here by path bytes) as a tar, compress it, and hash both
/// streams while they are written.
///
/// Entries sharing a `link_group` become one file (under the first path in order) plus hard
/// links to it. `mtime` is clamped to `clamp_mtime` (`SOURCE_DATE_EPOCH`).
pub fn write_layer(
    entries: &[Entry],
    compression: Compression,
    clamp_mtime: u64,
) -> Result<Layer, LayerError> {
    let (blob, info) = write_layer_to(entries, compression, clamp_mtime, Vec::new())?;
    Ok(Layer {
        blob: Arc::new(blob),
        digest: info.digest,
        diff_id: info.diff_id,
        size: info.size,
        tar_size: info.tar_size,
        compression,
    })
}

/// [`write_layer`] streaming the blob into `out` (a file: the blob never sits in memory).
pub fn write_layer_to<W: Write>(
    entries: &[Entry],
    compression: Compression,
    clamp_mtime: u64,
    out: W,
) -> Result<(W, LayerInfo), LayerError> {
    let write_err = |source| LayerError::Write {
        context: format!("compressing the layer with {compression}"),
        source,
    };
    let blob_sink = HashWriter::new(out);
    let encoder = Encoder::new(compression, blob_sink).map_err(write_err)?;
    // Large writes: the tar writer hands over headers and file data piecemeal.
    let buffered = io::BufWriter::with_capacity(1 << 16, HashWriter::new(encoder));
    let tar_sink = write_tar(entries, clamp_mtime, buffered)?;
    let (encoder, diff_id, tar_size) = tar_sink
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?
        .finish();
    let (out, digest, size) = encoder.finish().map_err(write_err)?.finish();
    Ok((
        out,
        LayerInfo {
            digest,
            diff_id,
            size,
            tar_size,
            compression,
        },
    ))
}

/// Write `entries` as an uncompressed deterministic tar to `out` (same rules as
/// [`write_layer`]) and return `out`.
pub fn write_tar<W: Write>(entries: &[Entry], clamp_mtime: u64, out: W) -> Result<W, LayerError> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    for pair in sorted.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(LayerError::DuplicatePath {
                path: pair[0].path.clone(),
                first: pair[0].origin.clone(),
                second: pair[1].origin.clone(),
            });
        }
    }
    for e in &sorted {
        check_entry(e)?;
    }

    let write_err = |source| LayerError::Write {
        context: "writing the layer tar".to_string(),
        source,
    };
    let mut tar = tar::TarWriter::new(out);
    // First member of each hard-link group in path order: it carries the content.
    let mut group_heads: BTreeMap<&str, &Entry> = BTreeMap::new();
    for e in sorted {
        let mut h = tar::Header {
            path: &e.path,
            kind: tar::Kind::Dir,
            link: "",
            size: 0,
            mode: e.mode & 0o7777,
            uid: u64::from(e.uid),
            gid: u64::from(e.gid),
            mtime: e.mtime.min(clamp_mtime),
        };
        let mut data: &[u8] = &[];
        match &e.kind {
            EntryKind::Dir => {}
            EntryKind::Symlink { target } => {
                h.kind = tar::Kind::Symlink;
                h.link = target;
            }
            EntryKind::File {
                data: bytes,
                link_group,
            } => {
                h.kind = tar::Kind::File;
                data = bytes;
                if let Some(group) = link_group {
                    match group_heads.get(group.as_str()) {
                        None => {
                            group_heads.insert(group, e);
                        }
                        Some(head) => {
                            if !same_data(head, bytes) {
                                return Err(LayerError::LinkGroupMismatch {
                                    group: group.clone(),
                                    first: head.path.clone(),
                                    other: e.path.clone(),
                                });
                            }
                            h.kind = tar::Kind::HardLink;
                            h.link = &head.path;
                            data = &[];
                        }
                    }
                }
            }
        }
        tar.append_bytes(&h, data).map_err(write_err)?;
    }
    tar.finish().map_err(write_err)
}

/// Reject entries whose path or target a tar (or a runtime unpacking it) would mangle.
fn check_entry(e: &Entry) -> Result<(), LayerError> {
    if let Some(why) = path_problem(&e.path) {
        return Err(LayerError::InvalidPath {
            path: e.path.clone(),
            origin: e.origin.clone(),
            why,
        });
    }
    if let EntryKind::Symlink { target } = &e.kind {
        let why = if target.is_empty() {
            Some("is empty")
        } else if target.contains('\0') {
            Some("contains a NUL byte")
        } else if target.len() > MAX_PATH_BYTES {
            Some("is longer than 4095 bytes (PATH_MAX)")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(LayerError::InvalidLinkTarget {
                path: e.path.clone(),
                target: target.clone(),
                origin: e.origin.clone(),
                why,
            });
        }
    }
    Ok(())
}

/// Does `head` (a file entry) carry exactly `bytes`?
fn same_data(head: &Entry, bytes: &Arc<Vec<u8>>) -> bool {
    match &head.kind {
        EntryKind::File { data, .. } => Arc::ptr_eq(data, bytes) || data == bytes,
        _ => false,
    }
}

/// The compressor a layer's tar stream goes through.
enum Encoder<W: Write> {
    Gzip(pargz::ParGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// A compressor with every digest-relevant knob pinned.
    fn new(compression: Compression, out: W) -> io::Result<Encoder<W>> {
        Ok(match compression {
            // Cut into fixed pieces compressed in parallel: the same bytes for any
            // number of threads.
            Compression::Gzip => {
                Encoder::Gzip(pargz::ParGzEncoder::new(out, GZIP_LEVEL, GZIP_OS_UNKNOWN))
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                // Multithreaded framing gives the same bytes for any worker count >= 1, but
                // different bytes from single-threaded mode: never let it drop to 0 workers.
                let workers = rayon::current_num_threads().max(1) as u32;
                enc.multithread(workers)?;
                enc.include_checksum(true)?;
                Encoder::Zstd(enc)
            }
        })
    }

    /// Flush the final frame and return the inner writer (explicitly: `Drop` hides errors).
    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// A writer that hashes and counts everything that passes through it.
struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W> HashWriter<W> {
    fn new(inner: W) -> HashWriter<W> {
        HashWriter {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// The inner writer, the digest of what was written, and its length.
    fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests;
