//! Opening an image wherever `debless build --format` put it: a layout directory as it is,
//! an `oci-archive` or a `docker-archive` tar unpacked into a temporary layout, so that
//! `inspect` and `push` read all three through the one [`LayoutReader`].
//!
//! An archive is input like a layout: only regular files are taken from it, each under a
//! name this module chooses (never the member's own path), and everything read back goes
//! through [`LayoutReader`]'s digest and size checks.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::json;

use super::read::{LayoutReader, MAX_DOCUMENT, ReadError};
use super::{
    CONFIG_MEDIA_TYPE, Descriptor, LAYER_TAR_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, Platform,
    REF_NAME_ANNOTATION,
};
use crate::digest::Digest;
use crate::layer::Compression;

/// What kind of thing an image was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceFormat {
    /// An OCI image layout directory.
    Oci,
    /// An OCI layout in a tar (`build --format oci-archive`).
    OciArchive,
    /// A `docker save` tar (`build --format docker-archive`).
    DockerArchive,
}

impl SourceFormat {
    /// The name `--format` uses.
    pub fn name(self) -> &'static str {
        match self {
            SourceFormat::Oci => "oci",
            SourceFormat::OciArchive => "oci-archive",
            SourceFormat::DockerArchive => "docker-archive",
        }
    }
}

/// An image opened for reading: a layout, or an archive unpacked into a temporary one
/// (removed when this is dropped).
#[derive(Debug)]
pub struct OpenedImage {
    /// The layout to read.
    pub reader: LayoutReader,
    /// What `path` was.
    pub format: SourceFormat,
    /// Holds the unpacked archive while `reader` reads it.
    _unpacked: Option<tempfile::TempDir>,
}

/// Why an archive could not be read as an image.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Neither a layout directory nor a readable file.
    #[error(
        "{}: {source}; pass a layout directory or an archive `debless build --format` wrote",
        path.display()
    )]
    Unreadable {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A tar member could not be read or unpacked.
    #[error("{}: not a readable tar archive ({source}); pass a layout directory or an archive `debless build --format` wrote", path.display())]
    BadTar {
        /// The archive.
        path: PathBuf,
        /// The tar reader's or file system's error.
        #[source]
        source: io::Error,
    },
    /// The tar holds neither an OCI layout nor a docker `manifest.json`.
    #[error(
        "{}: neither an oci-archive (no oci-layout member) nor a docker-archive (no \
         manifest.json member)",
        path.display()
    )]
    NotAnImageArchive {
        /// The archive.
        path: PathBuf,
    },
    /// A docker archive's `manifest.json` is malformed or names a member it lacks.
    #[error("{}: docker-archive {what}", path.display())]
    BadDockerArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong, naming the member.
        what: String,
    },
    /// The layout (or the one unpacked from the archive) does not read.
    #[error(transparent)]
    Layout(#[from] ReadError),
}

/// One image of a docker archive's `manifest.json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerItem {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// Open `path`: a layout directory, or an oci-archive or docker-archive file (told apart
/// by their members, not their names). A docker archive has no manifests of its own: each
/// image gets an OCI manifest made here over its config and layers as stored (so its
/// digest is not a registry's), tagged by the part after `:` of each of its RepoTags.
pub fn open_image(path: &Path) -> Result<OpenedImage, OpenError> {
    let meta = std::fs::metadata(path).map_err(|source| OpenError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        return Ok(OpenedImage {
            reader: LayoutReader::open(path)?,
            format: SourceFormat::Oci,
            _unpacked: None,
        });
    }
    let tmp = tempfile::Builder::new()
        .prefix("debless-archive-")
        .tempdir()
        .map_err(|source| OpenError::Unreadable {
            path: std::env::temp_dir(),
            source,
        })?;
    let members = unpack(path, tmp.path())?;
    let format = if members.contains_key("oci-layout") {
        SourceFormat::OciArchive
    } else if let Some(manifest) = members.get("manifest.json") {
        docker_to_layout(path, tmp.path(), manifest, &members)?;
        SourceFormat::DockerArchive
    } else {
        return Err(OpenError::NotAnImageArchive {
            path: path.to_owned(),
        });
    };
    Ok(OpenedImage {
        reader: LayoutReader::open(tmp.path())?,
        format,
        _unpacked: Some(tmp),
    })
}

/// Where the SPDX and provenance directories of the image at `path` are named from: the
/// layout itself, or an archive's path without `.tar` / `.docker.tar` (the build writes
/// `out/base-debian13.tar` next to `out/base-debian13.spdx/`).
pub fn documents_base(path: &Path, format: SourceFormat) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = match format {
        SourceFormat::Oci => None,
        _ => name
            .strip_suffix(".docker.tar")
            .or_else(|| name.strip_suffix(".tar")),
    };
    match stem {
        Some(stem) => path.with_file_name(stem),
        None => path.to_owned(),
    }
}

/// Unpack the regular files of the tar at `path` into `dir`: `oci-layout`, `index.json`
/// and `blobs/sha256/<hex>` where a layout has them, every other member under
/// `dir/members/<n>`. Returns member name → where it went.
fn unpack(path: &Path, dir: &Path) -> Result<BTreeMap<String, PathBuf>, OpenError> {
    let bad = |source| OpenError::BadTar {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(|source| OpenError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(bad)?;
    std::fs::create_dir_all(dir.join("members")).map_err(bad)?;
    let mut archive = tar::Archive::new(io::BufReader::new(file));
    let mut members = BTreeMap::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(bad)?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        // Only names this module makes: a digest cannot climb out of blobs/sha256.
        let dest = match name.as_str() {
            "oci-layout" | "index.json" => dir.join(&name),
            _ => match name
                .strip_prefix("blobs/sha256/")
                .and_then(|hex| Digest::from_hex(hex).ok())
            {
                Some(d) => dir.join(d.blob_path()),
                None => dir.join("members").join(members.len().to_string()),
            },
        };
        let mut out = std::fs::File::create(&dest).map_err(bad)?;
        io::copy(&mut entry, &mut out).map_err(bad)?;
        out.flush().map_err(bad)?;
        members.insert(name, dest);
    }
    Ok(members)
}

/// Write an OCI layout in `dir` for the docker archive whose members were unpacked to
/// `members`: each config and layer as a blob, a manifest per image, `index.json` tags.
fn docker_to_layout(
    path: &Path,
    dir: &Path,
    manifest: &Path,
    members: &BTreeMap<String, PathBuf>,
) -> Result<(), OpenError> {
    let bad = |what: String| OpenError::BadDockerArchive {
        path: path.to_owned(),
        what,
    };
    let io_bad = |source| OpenError::BadTar {
        path: path.to_owned(),
        source,
    };
    let text = read_bounded(manifest).map_err(io_bad)?;
    let items: Vec<DockerItem> = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("manifest.json is not a docker manifest list: {e}")))?;
    let mut blobs: BTreeMap<String, Descriptor> = BTreeMap::new();
    let mut index = Vec::new();
    let mut tagged = std::collections::BTreeSet::new();
    for item in items {
        let config_path = members.get(&item.config).ok_or_else(|| {
            bad(format!(
                "manifest.json names config {:?}, which is not in it",
                item.config
            ))
        })?;
        let config_bytes = read_bounded(config_path).map_err(io_bad)?;
        let platform: Platform = serde_json::from_slice(&config_bytes).map_err(|e| {
            bad(format!(
                "config {:?} is not an image config: {e}",
                item.config
            ))
        })?;
        let config = store(dir, &config_bytes, CONFIG_MEDIA_TYPE).map_err(io_bad)?;
        let mut layers = Vec::new();
        for name in &item.layers {
            if let Some(d) = blobs.get(name) {
                layers.push(d.clone());
                continue;
            }
            let member = members.get(name).ok_or_else(|| {
                bad(format!(
                    "manifest.json names layer {name:?}, which is not in it"
                ))
            })?;
            let d = store_file(dir, member).map_err(io_bad)?;
            blobs.insert(name.clone(), d.clone());
            layers.push(d);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config,
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest).map_err(|e| bad(e.to_string()))?;
        let mut desc = store(dir, &bytes, MANIFEST_MEDIA_TYPE).map_err(io_bad)?;
        desc.platform = Some(platform);
        for repo_tag in item.repo_tags.iter().flatten() {
            // `name:tag` (a registry port's colon comes before the last slash).
            let tag = match repo_tag.rsplit_once(':') {
                Some((_, t)) if !t.contains('/') => t,
                _ => "latest",
            };
            // The first image a tag names wins, as `docker load` keeps one per name.
            if tagged.insert(tag.to_owned()) {
                let mut d = desc.clone();
                d.annotations
                    .insert(REF_NAME_ANNOTATION.to_owned(), tag.to_owned());
                index.push(d);
            }
        }
    }
    let index = json!({ "schemaVersion": 2, "manifests": index });
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).map_err(io_bad);
    write(
        "index.json",
        &serde_json::to_vec(&index).map_err(|e| bad(e.to_string()))?,
    )?;
    write("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
}

/// Read a document member, at most [`MAX_DOCUMENT`] bytes of it.
fn read_bounded(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_DOCUMENT)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Write `bytes` as a blob of the layout in `dir`.
fn store(dir: &Path, bytes: &[u8], media_type: &str) -> io::Result<Descriptor> {
    let digest = Digest::of(bytes);
    std::fs::write(dir.join(digest.blob_path()), bytes)?;
    Ok(descriptor(media_type, digest, bytes.len() as u64))
}

/// Move the unpacked layer `member` into the blobs of `dir`, its media type told by its
/// first bytes (docker archives hold plain tars; other tools' may be compressed).
fn store_file(dir: &Path, member: &Path) -> io::Result<Descriptor> {
    let (digest, size) = Digest::of_reader(std::fs::File::open(member)?)?;
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(member)?.read(&mut magic)?;
    let media_type = match &magic[..n] {
        [0x1f, 0x8b, ..] => Compression::Gzip.media_type(),
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd.media_type(),
        _ => LAYER_TAR_MEDIA_TYPE,
    };
    std::fs::rename(member, dir.join(digest.blob_path()))?;
    Ok(descriptor(media_type, digest, size))
}

fn descriptor(media_type: &str, digest: Digest, size: u64) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw tar header for `name` of `kind` (b'0' file, b'2' symlink to `link`).
    fn member(tar: &mut Vec<u8>, name: &str, kind: u8, link: &str, body: &[u8]) {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[124..135].copy_from_slice(format!("{:011o}", body.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        tar.extend_from_slice(&h);
        tar.extend_from_slice(body);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }

    #[test]
    fn an_archive_member_cannot_write_outside_the_temporary_layout() {
        let root = tempfile::tempdir().unwrap();
        let mut tar = Vec::new();
        member(&mut tar, "../../escaped", b'0', "", b"evil");
        member(
            &mut tar,
            "blobs/sha256/../../../escaped2",
            b'0',
            "",
            b"evil",
        );
        member(&mut tar, "index.json", b'2', "/etc/passwd", b"");
        member(&mut tar, "oci-layout", b'0', "", b"{}");
        tar.extend_from_slice(&[0u8; 1024]);
        let path = root.path().join("hostile.tar");
        std::fs::write(&path, &tar).unwrap();
        let dir = root.path().join("a/b/layout");
        std::fs::create_dir_all(&dir).unwrap();

        let members = unpack(&path, &dir).unwrap();
        // The symlink is not taken; the regular files land under names chosen here.
        assert!(!members.contains_key("index.json"));
        assert!(!dir.join("index.json").exists());
        for (name, at) in &members {
            assert!(at.starts_with(&dir), "{name} went to {}", at.display());
        }
        assert_eq!(members.len(), 3);
        for escaped in ["escaped", "escaped2", "a/escaped", "a/escaped2"] {
            assert!(!root.path().join(escaped).exists(), "{escaped}");
        }
        assert_eq!(std::fs::read(dir.join("oci-layout")).unwrap(), b"{}");
    }
}
