//! `debless inspect OUT/IMAGE[:TAG]`: what an image in an OCI layout, oci-archive or
//! docker-archive holds — its config, its layers and what each adds, its Debian packages,
//! and its largest files; [`owners`] answers which package ships a file and which files a
//! package ships.

pub mod owners;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::digest::Digest;
use crate::oci::{ImageRef, LayoutReader, OpenError, ReadError, SourceFormat, open_image};

/// An inspect failure, naming the layout, tag or blob.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The layout, a tag or a blob cannot be read.
    #[error(transparent)]
    Layout(#[from] ReadError),
    /// The path is neither a layout nor an image archive.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A layer blob does not unpack.
    #[error("layer {digest}: {what}; the layout is damaged, rebuild it with `debless build`")]
    Layer {
        /// The layer.
        digest: Digest,
        /// What failed (`not a tar`...).
        what: &'static str,
        /// The decoder's or tar reader's error.
        #[source]
        source: std::io::Error,
    },
}

/// One layer of an image.
#[derive(Debug, Clone, Serialize)]
pub struct LayerInfo {
    /// Compressed digest.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// Compressed size.
    pub size: u64,
    /// Uncompressed (tar) size.
    pub tar_size: u64,
    /// Entries in the tar.
    pub entries: usize,
    /// Bytes of regular file content.
    pub file_bytes: u64,
    /// What made it (the history entry).
    pub created_by: String,
    /// Debian packages whose dpkg status entry this layer carries.
    pub packages: Vec<String>,
}

/// One Debian package, from its `/var/lib/dpkg/status.d` entry.
#[derive(Debug, Clone, Serialize)]
pub struct PackageInfo {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Architecture.
    pub architecture: String,
}

/// One platform's image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Manifest digest.
    pub digest: Digest,
    /// The image config's `config` object (Env, User, Entrypoint...).
    pub config: Value,
    /// `created`.
    pub created: String,
    /// Layers, bottom first.
    pub layers: Vec<LayerInfo>,
    /// Debian packages, by name.
    pub packages: Vec<PackageInfo>,
    /// The largest regular files (path, bytes), largest first.
    pub largest_files: Vec<(String, u64)>,
    /// Sum of the layers' tar sizes.
    pub tar_bytes: u64,
    /// Sum of the layers' compressed sizes.
    pub blob_bytes: u64,
}

/// Everything `inspect` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The layout directory or archive.
    pub layout: String,
    /// What it is: `oci`, `oci-archive` or `docker-archive` (whose manifests debless makes
    /// when reading it, over its uncompressed layers: their digests are not a registry's).
    pub format: SourceFormat,
    /// The tag.
    pub tag: String,
    /// The tag's digest (an index or a manifest).
    pub digest: Digest,
    /// One entry per platform.
    pub images: Vec<ImageInfo>,
}

/// Split `out/python3-debian13:nonroot` into the layout and the tag (default `latest`).
pub fn parse_target(target: &str) -> (PathBuf, String) {
    // A colon after the last slash separates the tag (paths may contain colons earlier).
    let slash = target.rfind('/').map_or(0, |i| i + 1);
    match target[slash..].rfind(':') {
        Some(i) => (
            PathBuf::from(&target[..slash + i]),
            target[slash + i + 1..].to_owned(),
        ),
        None => (PathBuf::from(target), "latest".to_owned()),
    }
}

/// Inspect `tag` of the layout or archive at `dir`; `largest` is how many files to list.
pub fn inspect(dir: &Path, tag: &str, largest: usize) -> Result<Inspection, InspectError> {
    let opened = open_image(dir)?;
    let layout = &opened.reader;
    let resolved = layout.resolve(tag)?;
    let images = resolved
        .images
        .iter()
        .map(|i| image(layout, i, largest))
        .collect::<Result<_, _>>()?;
    Ok(Inspection {
        layout: dir.display().to_string(),
        format: opened.format,
        tag: tag.to_owned(),
        digest: resolved.descriptor.digest,
        images,
    })
}

/// `os/architecture[/variant]` of a config.
fn config_platform(config: &Value) -> String {
    let mut p = format!(
        "{}/{}",
        config["os"].as_str().unwrap_or("?"),
        config["architecture"].as_str().unwrap_or("?")
    );
    if let Some(v) = config["variant"].as_str() {
        p = format!("{p}/{v}");
    }
    p
}

/// One image's config, its platform and the `created_by` of each of its layers, in order.
struct Described {
    config: Value,
    platform: String,
    history: Vec<String>,
}

/// Read `i`'s config and what it says of the image.
fn describe(layout: &LayoutReader, i: &ImageRef) -> Result<Described, InspectError> {
    let config: Value = layout.read_json(&i.config, "config")?;
    // The index (or index.json) says the platform; a manifest tagged without one has its
    // config say it.
    let platform = match &i.descriptor.platform {
        Some(p) => p.to_string(),
        None => config_platform(&config),
    };
    // History entries marked empty_layer have no layer; the others are the layers' own.
    let history: Vec<String> = config["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| !h["empty_layer"].as_bool().unwrap_or(false))
        .map(|h| h["created_by"].as_str().unwrap_or_default().to_owned())
        .collect();
    Ok(Described {
        config,
        platform,
        history,
    })
}

fn image(layout: &LayoutReader, i: &ImageRef, largest: usize) -> Result<ImageInfo, InspectError> {
    let Described {
        config,
        platform,
        history,
    } = describe(layout, i)?;
    let mut layers = Vec::new();
    let mut files: BTreeMap<String, u64> = BTreeMap::new();
    let mut packages: BTreeMap<String, PackageInfo> = BTreeMap::new();
    for (n, l) in i.layers.iter().enumerate() {
        let d = l.digest;
        let bad = |what: &'static str| {
            move |source| InspectError::Layer {
                digest: d,
                what,
                source,
            }
        };
        let media_type = l.media_type.clone();
        let blob = layout.read_blob(l)?;
        let reader = layer_reader(l, &blob)?;
        let mut counter = CountingReader {
            inner: reader,
            count: 0,
        };
        let mut info = LayerInfo {
            digest: d,
            media_type,
            size: blob.len() as u64,
            tar_size: 0,
            entries: 0,
            file_bytes: 0,
            created_by: history.get(n).cloned().unwrap_or_default(),
            packages: Vec::new(),
        };
        {
            let mut archive = tar::Archive::new(&mut counter);
            let entries = archive.entries().map_err(bad("not a tar"))?;
            for entry in entries {
                let mut entry = entry.map_err(bad("bad tar entry"))?;
                info.entries += 1;
                let path = entry
                    .path()
                    .map(|p| p.to_string_lossy().trim_start_matches("./").to_owned())
                    .unwrap_or_default();
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let size = entry.header().size().unwrap_or(0);
                info.file_bytes += size;
                files.insert(format!("/{path}"), size);
                if let Some(name) = path.strip_prefix("var/lib/dpkg/status.d/")
                    && !name.ends_with(".md5sums")
                    && !name.is_empty()
                {
                    let mut text = String::new();
                    let _ = entry.read_to_string(&mut text);
                    let field = |k: &str| {
                        text.lines()
                            .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                            .unwrap_or_default()
                            .to_owned()
                    };
                    info.packages.push(name.to_owned());
                    packages.insert(
                        name.to_owned(),
                        PackageInfo {
                            name: name.to_owned(),
                            version: field("Version"),
                            architecture: field("Architecture"),
                        },
                    );
                }
            }
        }
        // Read to the end so the tar size counts the end-of-archive blocks.
        let _ = std::io::copy(&mut counter, &mut std::io::sink());
        info.tar_size = counter.count;
        layers.push(info);
    }
    let mut largest_files: Vec<(String, u64)> = files.into_iter().collect();
    largest_files.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    largest_files.truncate(largest);
    Ok(ImageInfo {
        platform,
        digest: i.descriptor.digest,
        config: config["config"].clone(),
        created: config["created"].as_str().unwrap_or_default().to_owned(),
        tar_bytes: layers.iter().map(|l| l.tar_size).sum(),
        blob_bytes: layers.iter().map(|l| l.size).sum(),
        layers,
        packages: packages.into_values().collect(),
        largest_files,
    })
}

/// The uncompressed tar of a layer blob, by its media type.
pub(crate) fn layer_reader<'a>(
    l: &crate::oci::Descriptor,
    blob: &'a [u8],
) -> Result<Box<dyn Read + 'a>, InspectError> {
    let media_type = l.media_type.as_str();
    Ok(if media_type.ends_with("+gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(blob))
    } else if media_type.ends_with("+zstd") {
        Box::new(
            zstd::stream::read::Decoder::new(blob).map_err(|source| InspectError::Layer {
                digest: l.digest,
                what: "cannot start zstd",
                source,
            })?,
        )
    } else {
        Box::new(blob)
    })
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl Inspection {
    /// A terminal report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = format!("{}:{} {}\n", self.layout, self.tag, self.digest);
        for i in &self.images {
            let _ = writeln!(
                s,
                "\n{}  {}  created {}\n  size: {} bytes uncompressed, {} compressed",
                i.platform, i.digest, i.created, i.tar_bytes, i.blob_bytes
            );
            for key in ["User", "WorkingDir", "Entrypoint", "Cmd", "Env"] {
                if !i.config[key].is_null() {
                    let _ = writeln!(s, "  {key}: {}", i.config[key]);
                }
            }
            let _ = writeln!(s, "  layers:");
            for l in &i.layers {
                let digest = l.digest.to_string();
                let _ = writeln!(
                    s,
                    "    {}  {:>10} compressed {:>11} tar  {:>5} entries  {}",
                    &digest[..19],
                    l.size,
                    l.tar_size,
                    l.entries,
                    l.created_by
                );
            }
            let _ = writeln!(s, "  packages ({}):", i.packages.len());
            for p in &i.packages {
                let _ = writeln!(s, "    {} {} {}", p.name, p.version, p.architecture);
            }
            let _ = writeln!(s, "  largest files:");
            for (p, n) in &i.largest_files {
                let _ = writeln!(s, "    {n:>10}  {p}");
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_at_the_last_colon_after_the_last_slash() {
        assert_eq!(
            parse_target("out/python3-debian13:nonroot"),
            (PathBuf::from("out/python3-debian13"), "nonroot".to_owned())
        );
        assert_eq!(
            parse_target("/a:b/out/static-debian13"),
            (
                PathBuf::from("/a:b/out/static-debian13"),
                "latest".to_owned()
            )
        );
    }
}
