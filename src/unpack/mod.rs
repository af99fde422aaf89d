//! `debless unpack`: one platform's image of a layout tag as a root filesystem, or (with
//! `bundle`) as an OCI runtime bundle runc can run. Layers are applied bottom first
//! (gzip, zstd or plain tar; OCI whiteouts; modes, owners, times and links), each checked
//! against its digest before it is read. A layer is input like any other: no entry can
//! write outside the destination (see [`apply`]), and the destination appears whole or
//! not at all (built in a sibling temporary directory, then renamed).

mod apply;
mod bundle;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::oci::{ImageRef, LayoutReader, ReadError};

pub use bundle::runtime_config;

/// What to unpack, and where.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// The image layout directory.
    pub layout: PathBuf,
    /// The tag (an index or a manifest).
    pub tag: String,
    /// Where to write: the root filesystem, or with `bundle` the bundle directory. It must
    /// not exist, or be an empty directory.
    pub dest: PathBuf,
    /// `os/arch[/variant]` to pick from a multi-platform tag; `None` means the host's.
    pub platform: Option<String>,
    /// Write `dest/rootfs` and `dest/config.json` (an OCI runtime bundle).
    pub bundle: bool,
    /// With `bundle`: the program and arguments to run instead of Entrypoint + Cmd.
    pub command: Vec<String>,
}

/// What an unpack wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnpackReport {
    /// The platform unpacked (`linux/amd64`).
    pub platform: String,
    /// The image manifest's digest.
    pub manifest: Digest,
    /// The root filesystem.
    pub rootfs: PathBuf,
    /// The runtime config, with `bundle`.
    pub config: Option<PathBuf>,
    /// Layers applied.
    pub layers: usize,
    /// Tar entries applied (whiteouts included).
    pub entries: u64,
    /// Device nodes left out: a runtime provides /dev (runc mounts its own).
    pub skipped_devices: u64,
}

/// Why an unpack failed; nothing is left at the destination.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layout, tag or a document in it cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The destination exists and is not an empty directory.
    #[error("{}: exists and is not an empty directory; unpack into a new directory", dest.display())]
    DestExists {
        /// The destination.
        dest: PathBuf,
    },
    /// No image of the tag has the platform asked for.
    #[error("{tag}: no image for {platform}; platforms: {available} (pass --platform)")]
    NoPlatform {
        /// The tag.
        tag: String,
        /// The platform asked for (or the host's).
        platform: String,
        /// What the tag has.
        available: String,
    },
    /// A layer's media type is not a tar, tar+gzip or tar+zstd layer.
    #[error("layer {digest}: media type {media_type:?} is not a tar layer (gzip, zstd or plain)")]
    MediaType {
        /// The layer.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A layer cannot be decompressed or is not a tar.
    #[error("layer {digest}: {what}; the layout is damaged, rebuild it")]
    Layer {
        /// The layer.
        digest: Digest,
        /// What failed.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An entry would write outside the destination, or over what it may not.
    #[error("layer {digest}: entry {path:?} {why}; refusing to unpack this image")]
    Unsafe {
        /// The layer.
        digest: Digest,
        /// The entry's path as the tar names it.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// Writing the root filesystem failed.
    #[error("{}: cannot {what}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The image's config cannot become a runtime config.
    #[error("image config: {what}")]
    Config {
        /// What is wrong and what to do.
        what: String,
    },
}

/// Unpack `opts.tag` of `opts.layout` (the platform asked for, else the host's) into
/// `opts.dest`.
pub fn unpack(opts: &UnpackOptions) -> Result<UnpackReport, UnpackError> {
    let layout = LayoutReader::open(&opts.layout)?;
    let resolved = layout.resolve(&opts.tag)?;
    let (image, platform, config) = pick(&layout, &opts.tag, &resolved.images, opts)?;
    check_dest(&opts.dest)?;

    let parent = match opts.dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let io = |path: &Path, what| {
        let path = path.to_owned();
        move |source| UnpackError::Io { path, what, source }
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent, "create the parent directory"))?;
    crate::tmp::sweep(&parent, Some("unpack"));
    // Built beside the destination and renamed into place: a failure (or a kill) leaves
    // no half-written root filesystem, only a temporary the next run's sweep removes.
    let staging = crate::tmp::TempDir::new_in(&parent, "unpack")
        .map_err(io(&parent, "create a temporary directory"))?;
    let rootfs = if opts.bundle {
        staging.path().join("rootfs")
    } else {
        staging.path().to_owned()
    };
    if opts.bundle {
        std::fs::create_dir(&rootfs).map_err(io(&rootfs, "create"))?;
    }
    let mut applier = apply::Applier::new(&rootfs);
    for l in &image.layers {
        layout.verify_blob(&l.digest, l.size)?;
        applier.apply(&layout.blob_path(&l.digest), l)?;
    }
    applier.finish()?;
    let config_path = if opts.bundle {
        let doc = bundle::runtime_config(&config, &rootfs, &opts.command)?;
        let p = staging.path().join("config.json");
        let bytes = serde_json::to_vec_pretty(&doc).map_err(|e| UnpackError::Config {
            what: e.to_string(),
        })?;
        std::fs::write(&p, bytes).map_err(io(&p, "write"))?;
        Some(opts.dest.join("config.json"))
    } else {
        None
    };
    // An empty directory the user made is replaced; anything else was refused above.
    if opts.dest.exists() {
        std::fs::remove_dir(&opts.dest).map_err(io(&opts.dest, "replace the empty directory"))?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, &opts.dest).map_err(io(&opts.dest, "rename into place"))?;
    Ok(UnpackReport {
        platform,
        manifest: image.descriptor.digest,
        rootfs: if opts.bundle {
            opts.dest.join("rootfs")
        } else {
            opts.dest.clone()
        },
        config: config_path,
        layers: image.layers.len(),
        entries: applier.entries,
        skipped_devices: applier.skipped_devices,
    })
}

/// The destination must be new, or an empty directory.
fn check_dest(dest: &Path) -> Result<(), UnpackError> {
    match std::fs::symlink_metadata(dest) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            let empty = std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_none());
            if empty {
                Ok(())
            } else {
                Err(UnpackError::DestExists {
                    dest: dest.to_owned(),
                })
            }
        }
        Ok(_) => Err(UnpackError::DestExists {
            dest: dest.to_owned(),
        }),
    }
}

/// The host's platform as OCI spells it (`linux/amd64`, `linux/arm64/v8`).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64/v8",
        "arm" => "arm/v7",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// Does `have` (`linux/arm64/v8`) satisfy `want` (`linux/arm64` or `linux/arm64/v8`)? A
/// variant asked for must match; one not asked for matches any.
fn platform_matches(have: &str, want: &str) -> bool {
    let h: Vec<&str> = have.split('/').collect();
    let w: Vec<&str> = want.split('/').collect();
    match (h.as_slice(), w.as_slice()) {
        ([ho, ha, ..], [wo, wa]) => ho == wo && ha == wa,
        ([ho, ha], [wo, wa, wv]) => ho == wo && ha == wa && (*wv == "v8" && *ha == "arm64"),
        ([ho, ha, hv], [wo, wa, wv]) => ho == wo && ha == wa && hv == wv,
        _ => false,
    }
}

/// `os/architecture[/variant]` a config says.
fn config_platform(config: &serde_json::Value) -> String {
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

/// The image of `images` for the platform asked for (else the host's), its platform and
/// its config.
fn pick<'a>(
    layout: &LayoutReader,
    tag: &str,
    images: &'a [ImageRef],
    opts: &UnpackOptions,
) -> Result<(&'a ImageRef, String, serde_json::Value), UnpackError> {
    // A tag on one image is that image, unless a platform was asked for explicitly.
    if let ([only], None) = (images, &opts.platform) {
        let config: serde_json::Value = layout.read_json(&only.config, "config")?;
        let have = match &only.descriptor.platform {
            Some(p) => p.to_string(),
            None => config_platform(&config),
        };
        return Ok((only, have, config));
    }
    let want = opts.platform.clone().unwrap_or_else(host_platform);
    let mut seen = Vec::new();
    for i in images {
        let config: serde_json::Value = layout.read_json(&i.config, "config")?;
        let have = match &i.descriptor.platform {
            Some(p) => p.to_string(),
            None => config_platform(&config),
        };
        if platform_matches(&have, &want) {
            return Ok((i, have, config));
        }
        seen.push(have);
    }
    Err(UnpackError::NoPlatform {
        tag: tag.to_owned(),
        platform: want,
        available: seen.join(", "),
    })
}
