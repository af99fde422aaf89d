//! OCI image layouts, configs, manifests, indexes and archives.
//!
//! Layers arrive as finished blobs (see [`crate::layer`]); this module wraps them in configs,
//! manifests and indexes, keeps every blob in an in-memory [`Layout`], and writes that out as
//! an image layout directory, an `oci-archive` tar, or a `docker save` tar. [`LayoutReader`]
//! reads a layout directory back; [`open_image`] reads any of the three.

mod archive;
mod image;
mod layout;
mod open;
mod platform;
mod read;

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

pub use archive::may_replace_archive;
pub use image::{
    CONFIG_MEDIA_TYPE, Config, Descriptor, History, INDEX_MEDIA_TYPE, Image, LAYER_TAR_MEDIA_TYPE,
    LayerRef, MANIFEST_MEDIA_TYPE, REF_NAME_ANNOTATION,
};
pub use layout::{Blob, Layout, holds_only_a_layout, index_bytes, replace_dir};
pub use open::{OpenError, OpenedImage, SourceFormat, documents_base, open_image};
pub use platform::{Platform, platform_for};
pub use read::{
    Content, DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, Document, DocumentError, ImageRef,
    LayoutReader, MAX_DOCUMENT, ReadError, Resolved,
};

/// Why an image could not be assembled or written.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// An image refers to a layer whose blob was never added.
    #[error(
        "image {image}: layer {digest} is not in the layout; add its blob with \
         Layout::add_blob before adding the image"
    )]
    MissingBlob {
        /// The image's platform.
        image: String,
        /// The layer digest.
        digest: Digest,
    },
    /// An image declares a layer size that differs from the stored blob.
    #[error(
        "image {image}: layer {digest} is declared as {declared} bytes but the blob has \
         {actual}; take the LayerRef from the Layer that produced the blob"
    )]
    BlobSizeMismatch {
        /// The image's platform.
        image: String,
        /// The layer digest.
        digest: Digest,
        /// Size in the LayerRef.
        declared: u64,
        /// Size of the stored blob.
        actual: u64,
    },
    /// History entries and layers do not pair up.
    #[error(
        "image {image}: {history} history entries make layers but the image has {layers} \
         layers; give one non-empty_layer history entry per layer (or no history)"
    )]
    HistoryMismatch {
        /// The image's platform.
        image: String,
        /// History entries without `empty_layer`.
        history: usize,
        /// Layers in the image.
        layers: usize,
    },
    /// `created` is not an RFC 3339 timestamp.
    #[error(
        "image {image}: created {created:?} is not an RFC 3339 timestamp; use e.g. \
         1970-01-01T00:00:00Z"
    )]
    InvalidCreated {
        /// The image's platform.
        image: String,
        /// The bad value.
        created: String,
    },
    /// A docker archive was asked for something that is not an image manifest of this layout.
    #[error(
        "{digest} is not an image manifest added to this layout; docker archives hold \
         per-platform images, so pass the descriptors add_image returned, not an index"
    )]
    NotAnImage {
        /// The descriptor's digest.
        digest: Digest,
    },
    /// A layer media type this module cannot decompress.
    #[error(
        "layer {digest} has media type {media_type:?}, which cannot be decompressed for a \
         docker archive; use gzip or zstd layers"
    )]
    UnsupportedLayer {
        /// The layer digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A layer blob failed to decompress.
    #[error("layer {digest} does not decompress ({source}); the blob is corrupt, rebuild it")]
    CorruptLayer {
        /// The layer digest.
        digest: Digest,
        /// The decoder's error.
        #[source]
        source: io::Error,
    },
    /// A layer blob decompresses to something other than its diff_id.
    #[error(
        "layer {digest} decompresses to {actual}, but the image says its diff_id is \
         {expected}; take the LayerRef from the Layer that produced the blob"
    )]
    DiffIdMismatch {
        /// The layer digest.
        digest: Digest,
        /// The diff_id in the image.
        expected: Digest,
        /// sha256 of the decompressed blob.
        actual: Digest,
    },
    /// The output directory exists and holds something other than an image layout.
    #[error(
        "{} exists and is not an OCI image layout (no oci-layout file); remove it or \
         choose another output directory",
        path.display()
    )]
    NotALayout {
        /// The output directory.
        path: PathBuf,
    },
    /// The output path holds a file (or link, or directory) that is not an archive debless
    /// wrote.
    #[error(
        "{} exists and is not an image archive debless wrote; remove it or choose another \
         output directory",
        path.display()
    )]
    NotOurArchive {
        /// The output path.
        path: PathBuf,
    },
    /// A cached blob no longer hashes to its digest (it was removed).
    #[error(
        "{}: cached blob {digest} hashes to {actual}; it was removed: run the build again to remake it",
        path.display()
    )]
    CorruptBlob {
        /// The file.
        path: PathBuf,
        /// What it should hash to.
        digest: Digest,
        /// What it hashes to.
        actual: Digest,
    },
    /// Writing an archive's tar stream failed.
    #[error("{}: {source}", path.display())]
    Tar {
        /// The archive being written.
        path: PathBuf,
        /// The tar writer's error.
        #[source]
        source: crate::layer::LayerError,
    },
    /// Reading or writing the filesystem failed.
    #[error("{}: {what}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Map an I/O error to [`OciError::Io`] for `path`.
fn io_err(path: &std::path::Path, what: &'static str) -> impl FnOnce(io::Error) -> OciError {
    let path = path.to_path_buf();
    move |source| OciError::Io { path, what, source }
}

#[cfg(test)]
mod tests;
