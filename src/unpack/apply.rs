//! Applying one layer's tar to a root filesystem, as the OCI image spec's "applying
//! changesets" says: entries in order, whiteouts (`.wh.NAME`, `.wh..wh..opq`) removing
//! what lower layers put there, an entry replacing whatever was at its path.
//!
//! Safety: every path is resolved component by component under the root; a symlink met
//! on the way is followed as if the root were `/` (an absolute target restarts at the
//! root, `..` stops there), so neither an entry nor a hard-link target can reach outside
//! the root, whatever links lower entries made. The last component is never followed: an
//! entry replaces a symlink, it does not write through it. Entries naming `..` are refused.

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::UnpackError;
use crate::digest::Digest;
use crate::oci::Descriptor;

/// The most symlinks one path may pass through (Linux's own limit).
const MAX_LINKS: usize = 40;

/// The OCI whiteout prefix.
const WHITEOUT: &str = ".wh.";
/// The opaque-directory whiteout.
const OPAQUE: &str = ".wh..wh..opq";

/// Applies layers, bottom first, to one root filesystem.
pub(super) struct Applier {
    root: PathBuf,
    /// Set owners (only root may give files away).
    chown: bool,
    /// Directories and their (mode, mtime), set once everything is in them: a read-only
    /// directory would refuse its children, and adding one moves its mtime.
    dirs: Vec<(PathBuf, u32, i64)>,
    /// Entries applied.
    pub(super) entries: u64,
    /// Device nodes left out.
    pub(super) skipped_devices: u64,
}

impl Applier {
    /// An applier writing under `root` (an existing, empty directory).
    pub(super) fn new(root: &Path) -> Applier {
        Applier {
            root: root.to_owned(),
            // SAFETY: geteuid has no preconditions and cannot fail.
            chown: unsafe { libc::geteuid() } == 0,
            dirs: Vec::new(),
            entries: 0,
            skipped_devices: 0,
        }
    }

    /// Apply the layer `l`, whose (verified) blob is at `blob`.
    pub(super) fn apply(&mut self, blob: &Path, l: &Descriptor) -> Result<(), UnpackError> {
        let d = l.digest;
        let bad = |what: &'static str| {
            move |source| UnpackError::Layer {
                digest: d,
                what,
                source,
            }
        };
        let file = File::open(blob).map_err(bad("cannot open the blob"))?;
        let file = io::BufReader::new(file);
        let mt = l.media_type.as_str();
        let reader: Box<dyn Read> = if mt.ends_with("+gzip") || mt.ends_with(".gzip") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else if mt.ends_with("+zstd") || mt.ends_with(".zstd") {
            Box::new(zstd::stream::read::Decoder::new(file).map_err(bad("cannot start zstd"))?)
        } else if mt.ends_with(".tar") || mt.ends_with(".tar.v1") || mt.ends_with("rootfs.diff.tar")
        {
            Box::new(file)
        } else {
            return Err(UnpackError::MediaType {
                digest: d,
                media_type: l.media_type.clone(),
            });
        };
        let mut archive = tar::Archive::new(reader);
        // Paths made by this layer: an opaque whiteout removes only what lower layers made.
        let mut made: BTreeSet<PathBuf> = BTreeSet::new();
        for entry in archive.entries().map_err(bad("not a tar"))? {
            let mut entry = entry.map_err(bad("bad tar entry"))?;
            self.entries += 1;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            let unsafe_entry = |why: &str| UnpackError::Unsafe {
                digest: d,
                path: name.clone(),
                why: why.to_owned(),
            };
            let parts = components(&raw).ok_or_else(|| unsafe_entry("climbs out with `..`"))?;
            let Some((last, parents)) = parts.split_last() else {
                // The root itself: its mode and time.
                if entry.header().entry_type().is_dir() {
                    let (mode, mtime) = mode_time(&entry);
                    self.dirs.push((self.root.clone(), mode, mtime));
                }
                continue;
            };
            let dir = self
                .resolve(parents, true)
                .map_err(|e| unsafe_entry(&format!("has no directory to go in ({e})")))?;
            let last_str = last.to_string_lossy();
            if last_str == OPAQUE {
                self.opaque(&dir, &made)
                    .map_err(|e| unsafe_entry(&format!("cannot be applied ({e})")))?;
                continue;
            }
            if let Some(hidden) = last_str.strip_prefix(WHITEOUT) {
                if hidden.is_empty() || hidden == "." || hidden == ".." {
                    return Err(unsafe_entry("is a whiteout of nothing"));
                }
                remove_any(&dir.join(hidden))
                    .map_err(|e| unsafe_entry(&format!("cannot be applied ({e})")))?;
                continue;
            }
            let path = dir.join(last);
            self.write_entry(&mut entry, &path, d, &name)?;
            made.insert(path);
        }
        Ok(())
    }

    /// Set every directory's mode, owner and time, deepest first.
    pub(super) fn finish(&mut self) -> Result<(), UnpackError> {
        let mut dirs = std::mem::take(&mut self.dirs);
        // Deepest first, and the last entry for a directory wins (a later layer's).
        dirs.reverse();
        dirs.sort_by_key(|(p, _, _)| std::cmp::Reverse(p.components().count()));
        let mut done = BTreeSet::new();
        for (path, mode, mtime) in dirs {
            if !done.insert(path.clone()) {
                continue;
            }
            // A later layer may have replaced the directory with something else.
            if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let io = |what| {
                let path = path.clone();
                move |source| UnpackError::Io { path, what, source }
            };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(io("set the mode of"))?;
            set_mtime(&path, mtime).map_err(io("set the time of"))?;
        }
        Ok(())
    }

    /// Write one entry at `path` (its parent resolved under the root).
    fn write_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        d: Digest,
        name: &str,
    ) -> Result<(), UnpackError> {
        let io = |what| {
            let path = path.to_owned();
            move |source| UnpackError::Io { path, what, source }
        };
        let header = entry.header().clone();
        let kind = header.entry_type();
        let (mode, mtime) = mode_time(entry);
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        let existing = std::fs::symlink_metadata(path).ok();
        // A directory over a directory merges; anything else replaces what is there.
        if let Some(m) = &existing
            && !(kind.is_dir() && m.is_dir())
        {
            remove_any(path).map_err(io("replace"))?;
        }
        match kind {
            tar::EntryType::Directory => {
                if !existing.as_ref().is_some_and(|m| m.is_dir()) {
                    std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(path)
                        .map_err(io("create the directory"))?;
                }
                self.owner(path, uid, gid)?;
                self.dirs.push((path.to_owned(), mode, mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(io("create the file"))?;
                io::copy(entry, &mut f).map_err(|source| UnpackError::Layer {
                    digest: d,
                    what: "cannot read an entry's content",
                    source,
                })?;
                drop(f);
                // chown before chmod: chown clears setuid and setgid bits.
                self.owner(path, uid, gid)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(io("set the mode of"))?;
                set_mtime(path, mtime).map_err(io("set the time of"))?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| OsStr::from_bytes(&b).to_owned())
                    .unwrap_or_default();
                // Stored as written: a symlink is only ever followed under the root.
                std::os::unix::fs::symlink(&target, path).map_err(io("create the symlink"))?;
                self.owner(path, uid, gid)?;
                set_mtime(path, mtime).map_err(io("set the time of"))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let unsafe_entry = |why: String| UnpackError::Unsafe {
                    digest: d,
                    path: name.to_owned(),
                    why,
                };
                let parts = components(&target)
                    .ok_or_else(|| unsafe_entry("links to a path climbing out with `..`".into()))?;
                let Some((last, parents)) = parts.split_last() else {
                    return Err(unsafe_entry("is a hard link to the root".into()));
                };
                let source = self
                    .resolve(parents, false)
                    .map_err(|e| unsafe_entry(format!("links to a missing path ({e})")))?
                    .join(last);
                match std::fs::symlink_metadata(&source) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(unsafe_entry(format!(
                            "links to {:?}, which is not a file an earlier entry made",
                            String::from_utf8_lossy(&target)
                        )));
                    }
                }
                // link(2) does not follow a symlink at `source`: it links the symlink.
                std::fs::hard_link(&source, path).map_err(io("create the hard link"))?;
            }
            tar::EntryType::Fifo => {
                let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
                    io("create the fifo")(io::Error::from(io::ErrorKind::InvalidInput))
                })?;
                // SAFETY: `c` is a valid NUL-terminated path.
                if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
                    return Err(io("create the fifo")(io::Error::last_os_error()));
                }
                self.owner(path, uid, gid)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(io("set the mode of"))?;
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                self.skipped_devices += 1;
            }
            // PAX and GNU long-name headers are read by the tar crate; anything else
            // (sparse files, volume labels) is not part of an image layer.
            other => {
                return Err(UnpackError::Unsafe {
                    digest: d,
                    path: name.to_owned(),
                    why: format!("has entry type {other:?}, which no image layer holds"),
                });
            }
        }
        Ok(())
    }

    /// Give `path` (not following a symlink) to `uid`:`gid`, when running as root.
    fn owner(&self, path: &Path, uid: u32, gid: u32) -> Result<(), UnpackError> {
        if !self.chown {
            return Ok(());
        }
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(|source| UnpackError::Io {
            path: path.to_owned(),
            what: "set the owner of",
            source,
        })
    }

    /// Remove what lower layers put in `dir`: everything but the paths this layer made.
    fn opaque(&self, dir: &Path, made: &BTreeSet<PathBuf>) -> io::Result<()> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in entries {
            let p = e?.path();
            if !made.contains(&p) {
                remove_any(&p)?;
            }
        }
        Ok(())
    }

    /// The directory `parts` names under the root, following symlinks as if the root were
    /// `/`. With `create`, missing directories are made (mode 0755, as tar does).
    fn resolve(&self, parts: &[OsString], create: bool) -> io::Result<PathBuf> {
        let mut pending: std::collections::VecDeque<OsString> = parts.iter().cloned().collect();
        let mut at: Vec<OsString> = Vec::new();
        let mut links = 0;
        while let Some(c) = pending.pop_front() {
            if c == ".." {
                at.pop();
                continue;
            }
            if c == "." || c.is_empty() {
                continue;
            }
            let here = self.root.join(at.iter().collect::<PathBuf>()).join(&c);
            match std::fs::symlink_metadata(&here) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(io::Error::other("too many levels of symbolic links"));
                    }
                    let target = std::fs::read_link(&here)?;
                    if target.is_absolute() {
                        at.clear();
                    }
                    for (i, t) in link_components(&target).into_iter().enumerate() {
                        pending.insert(i, t);
                    }
                }
                Ok(m) if m.is_dir() => at.push(c),
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "{} is not a directory",
                        here.strip_prefix(&self.root).unwrap_or(&here).display()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    std::fs::DirBuilder::new().mode(0o755).create(&here)?;
                    at.push(c);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(self.root.join(at.iter().collect::<PathBuf>()))
    }
}

/// An entry's path as components, with `.`, empty parts and a leading `/` dropped;
/// `None` if any is `..`.
fn components(raw: &[u8]) -> Option<Vec<OsString>> {
    let mut out = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return None,
            p => out.push(OsStr::from_bytes(p).to_owned()),
        }
    }
    Some(out)
}

/// A symlink target's components (`..` kept: it is clamped at the root when followed).
fn link_components(target: &Path) -> Vec<OsString> {
    target
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Remove whatever is at `path` (not following a symlink); nothing there is fine.
fn remove_any(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// An entry's permission bits (with setuid, setgid and sticky) and mtime.
fn mode_time<R: Read>(entry: &tar::Entry<'_, R>) -> (u32, i64) {
    let h = entry.header();
    let mode = h.mode().unwrap_or(0o644) & 0o7777;
    let mtime = h.mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
    (mode, mtime)
}

/// Set `path`'s mtime (and atime) without following a symlink.
fn set_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let t = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `c` is a valid NUL-terminated path and `times` two valid timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
