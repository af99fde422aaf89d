//! The content-addressed cache: `<dir>/sha256/<hex>`, written atomically.
//!
//! Nothing is written, or read, through a link planted inside the cache: its
//! subdirectories must be real directories (a link there is refused, naming it), entries
//! and lock files are opened with `O_NOFOLLOW` (a link is removed and the entry fetched
//! again), partial downloads are replaced when they are not lone regular files, and new
//! files are temporaries created exclusively ([`crate::tmp`]) and renamed into place.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// Why a blob could not be read back from the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The blob is absent or unreadable.
    #[error("cannot read {}", path.display())]
    Read {
        /// Where the blob should be.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the blob asked for (damaged, or cut short); it was removed.
    #[error("{} is not the {size} bytes with {digest} asked for; it was removed", path.display())]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The digest asked for.
        digest: Digest,
        /// The size asked for.
        size: u64,
    },
}

/// A content-addressed blob store.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache at `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/debless`, else `~/.cache/debless`.
    pub fn default_dir() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("debless");
        }
        match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".cache/debless"),
            None => PathBuf::from(".cache/debless"),
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a blob with this digest lives.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("sha256").join(digest.hex())
    }

    /// The blob's bytes if present, of the right size and hash; a corrupt entry is removed.
    pub fn get_verified(&self, digest: &Digest, size: u64) -> Option<Vec<u8>> {
        self.read_verified(digest, size).ok()
    }

    /// The blob's bytes, checked against its size and hash: what comes out of the cache
    /// is what went in, even after a flipped bit on disk. A blob that does not match, or
    /// that is a link or anything but a regular file, is removed (the next fetch downloads
    /// it again).
    pub fn read_verified(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, CacheError> {
        use std::io::Read;
        let path = self.path(digest);
        let read = |source| CacheError::Read {
            path: path.clone(),
            source,
        };
        let file = match open_entry(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(read(e)),
            Err(_) => None,
        };
        if let Some(file) = file {
            // The size is checked first so that a wrong file is never read whole.
            let meta = file.metadata().map_err(read)?;
            if meta.is_file() && meta.len() == size {
                let mut bytes = Vec::with_capacity(size as usize);
                file.take(size.saturating_add(1))
                    .read_to_end(&mut bytes)
                    .map_err(read)?;
                if bytes.len() as u64 == size && Digest::of(&bytes) == *digest {
                    return Ok(bytes);
                }
            }
        }
        remove_entry(&path);
        Err(CacheError::Mismatch {
            path,
            digest: *digest,
            size,
        })
    }

    /// `<cache>/<name>/`, created if missing. Anything there but a real directory (a
    /// symlink to elsewhere, say) is refused: debless writes only into directories it made.
    pub fn subdir(&self, name: &str) -> io::Result<PathBuf> {
        let dir = self.dir.join(name);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => return Ok(dir),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} is a link or not a directory; debless writes only into directories it made inside the cache: remove it",
                        dir.display()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&self.dir)?;
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            // Another build made it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => self.subdir(name),
            Err(e) => Err(e),
        }
    }

    /// Store bytes already verified to hash to `digest` (a temporary under `partial/`,
    /// then a rename).
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> io::Result<()> {
        let dir = self.subdir("sha256")?;
        let partial = self.subdir("partial")?;
        crate::tmp::sweep(&partial, None);
        let tmp = crate::tmp::TempFile::new_in(&partial, "blob", 0o644)?;
        tmp.file().write_all(bytes)?;
        crate::tmp::kill_point("cache-put");
        tmp.persist(&dir.join(digest.hex()))
    }

    /// Remove what killed processes left under `partial/`: their temporaries always, and
    /// a resumable download when no process is downloading it (its lock is free) and it
    /// is not in `keep`. A download worth resuming is one a build still needs, and such a
    /// build resumes it before it gets here.
    pub fn sweep_partial(&self, keep: &std::collections::BTreeSet<Digest>) {
        let partial = self.dir.join("partial");
        // Never through a link: a planted one is refused when something is written.
        if !std::fs::symlink_metadata(&partial).is_ok_and(|m| m.is_dir()) {
            return;
        }
        crate::tmp::sweep(&partial, None);
        let Ok(entries) = std::fs::read_dir(&partial) else {
            return;
        };
        for e in entries.flatten() {
            let Some(digest) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            else {
                continue;
            };
            if keep.contains(&digest) {
                continue;
            }
            let Ok(lock) = self.open_lock(&digest) else {
                continue;
            };
            if lock.try_lock().is_ok() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

impl Cache {
    /// Take the exclusive lock for one digest (blocking), so that two builds sharing the
    /// cache never download or promote the same blob at once. Released on drop.
    pub fn lock(&self, digest: &Digest) -> std::io::Result<std::fs::File> {
        let f = self.open_lock(digest)?;
        f.lock()?;
        Ok(f)
    }

    /// The lock file of one digest, opened (created if missing) without following a link.
    fn open_lock(&self, digest: &Digest) -> io::Result<File> {
        self.subdir("locks")?;
        crate::tmp::open_owned(&self.lock_path(digest))
    }

    /// The lock file of one digest.
    pub fn lock_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("locks").join(digest.hex())
    }

    /// Where an interrupted download of this digest is kept for resuming.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("partial").join(digest.hex())
    }

    /// Is a blob of this size present? (`verify`: also re-hash it.) A bad blob, or a link
    /// or anything but a regular file in its place, is removed.
    pub fn has(&self, digest: &Digest, size: u64, verify: bool) -> bool {
        let p = self.path(digest);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() && m.len() == size => {
                touch(&p);
                if !verify {
                    return true;
                }
                let hashed = open_entry(&p).and_then(|f| Digest::of_reader(f).map(|(d, _)| d));
                match hashed {
                    Ok(h) if h == *digest => true,
                    _ => {
                        remove_entry(&p);
                        false
                    }
                }
            }
            Ok(_) => {
                remove_entry(&p);
                false
            }
            Err(_) => false,
        }
    }

    /// Move a finished download into place after checking its hash; a mismatching file
    /// is deleted and its actual hash returned as the error.
    pub fn promote(&self, partial: &Path, digest: &Digest) -> std::io::Result<Result<(), Digest>> {
        let file = open_entry(partial)?;
        file.sync_all()?;
        let (got, _) = Digest::of_reader(file)?;
        if got != *digest {
            std::fs::remove_file(partial)?;
            return Ok(Err(got));
        }
        let dir = self.subdir("sha256")?;
        std::fs::rename(partial, dir.join(digest.hex()))?;
        Ok(Ok(()))
    }
}

/// Record that a cache entry was just used: its mtime becomes now, which `debless cache
/// prune --older-than` reads as its last use (atime is not kept on every file system).
/// Best effort: an entry that cannot be touched only looks older.
pub fn touch(path: &Path) {
    if let Ok(f) = open_entry(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Open a cache file for reading without following a link at its name (`ELOOP` then).
fn open_entry(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Remove a cache entry's name (never a directory, never what a link points at).
fn remove_entry(path: &Path) {
    if std::fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_rejects_corrupt_entries() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path());
        let h = Digest::of(b"hello");
        c.put(&h, b"hello").unwrap();
        assert_eq!(c.get_verified(&h, 5).unwrap(), b"hello");
        std::fs::write(c.path(&h), b"jello").unwrap();
        assert!(c.get_verified(&h, 5).is_none());
        assert!(!c.path(&h).exists(), "corrupt entry must be removed");
        assert!(matches!(
            c.read_verified(&h, 5),
            Err(CacheError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound
        ));
        c.put(&h, b"hello").unwrap();
        assert!(matches!(
            c.read_verified(&h, 6),
            Err(CacheError::Mismatch { size: 6, .. })
        ));
        assert!(
            !c.path(&h).exists(),
            "a blob of the wrong size must be removed"
        );
    }
}
