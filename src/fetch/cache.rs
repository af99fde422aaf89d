//! The content-addressed cache: `<dir>/sha256/<hex>`, written atomically.

use std::io::Write;
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
    /// is what went in, even after a flipped bit on disk. A blob that does not match is
    /// removed (the next fetch downloads it again).
    pub fn read_verified(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, CacheError> {
        let path = self.path(digest);
        let read = |source| CacheError::Read {
            path: path.clone(),
            source,
        };
        // The size is checked first so that a wrong file is never read whole.
        let meta = std::fs::metadata(&path).map_err(read)?;
        if meta.len() == size {
            let bytes = std::fs::read(&path).map_err(read)?;
            if bytes.len() as u64 == size && Digest::of(&bytes) == *digest {
                return Ok(bytes);
            }
        }
        let _ = std::fs::remove_file(&path);
        Err(CacheError::Mismatch {
            path,
            digest: *digest,
            size,
        })
    }

    /// Store bytes already verified to hash to `digest` (temp file + rename).
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join("sha256");
        std::fs::create_dir_all(&dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(dir.join(digest.hex())).map_err(|e| e.error)?;
        Ok(())
    }
}

impl Cache {
    /// Take the exclusive lock for one digest (blocking), so that two builds sharing the
    /// cache never download or promote the same blob at once. Released on drop.
    pub fn lock(&self, digest: &Digest) -> std::io::Result<std::fs::File> {
        let path = self.lock_path(digest);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        f.lock()?;
        Ok(f)
    }

    /// The lock file of one digest.
    pub fn lock_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("locks").join(digest.hex())
    }

    /// Where an interrupted download of this digest is kept for resuming.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("partial").join(digest.hex())
    }

    /// Is a blob of this size present? (`verify`: also re-hash it; a bad blob is removed.)
    pub fn has(&self, digest: &Digest, size: u64, verify: bool) -> bool {
        let p = self.path(digest);
        match std::fs::metadata(&p) {
            Ok(m) if m.len() == size => {
                if !verify {
                    return true;
                }
                match Digest::of_file(&p) {
                    Ok(h) if h == *digest => true,
                    _ => {
                        let _ = std::fs::remove_file(&p);
                        false
                    }
                }
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&p);
                false
            }
            Err(_) => false,
        }
    }

    /// Move a finished download into place after checking its hash; a mismatching file
    /// is deleted and its actual hash returned as the error.
    pub fn promote(&self, partial: &Path, digest: &Digest) -> std::io::Result<Result<(), Digest>> {
        let got = Digest::of_file(partial)?;
        if got != *digest {
            std::fs::remove_file(partial)?;
            return Ok(Err(got));
        }
        std::fs::File::open(partial)?.sync_all()?;
        let dir = self.dir.join("sha256");
        std::fs::create_dir_all(&dir)?;
        std::fs::rename(partial, dir.join(digest.hex()))?;
        Ok(Ok(()))
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
