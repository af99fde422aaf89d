//! The content-addressed cache: `<dir>/sha256/<hex>`, written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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
    pub fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join("sha256").join(sha256)
    }

    /// The blob's bytes if present, of the right size and hash; a corrupt entry is removed.
    pub fn get_verified(&self, sha256: &str, size: u64) -> Option<Vec<u8>> {
        let p = self.path(sha256);
        let meta = std::fs::metadata(&p).ok()?;
        if meta.len() != size {
            let _ = std::fs::remove_file(&p);
            return None;
        }
        let bytes = std::fs::read(&p).ok()?;
        if sha256_hex(&bytes) != sha256 {
            let _ = std::fs::remove_file(&p);
            return None;
        }
        Some(bytes)
    }

    /// Store bytes already verified to hash to `sha256` (temp file + rename).
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join("sha256");
        std::fs::create_dir_all(&dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
        tmp.write_all(bytes)?;
        tmp.as_file().sync_all()?;
        tmp.persist(dir.join(sha256)).map_err(|e| e.error)?;
        Ok(())
    }
}

impl Cache {
    /// Take the exclusive lock for one digest (blocking), so that two builds sharing the
    /// cache never download or promote the same blob at once. Released on drop.
    pub fn lock(&self, sha256: &str) -> std::io::Result<std::fs::File> {
        let dir = self.dir.join("locks");
        std::fs::create_dir_all(&dir)?;
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(sha256))?;
        f.lock()?;
        Ok(f)
    }

    /// Where an interrupted download of this digest is kept for resuming.
    pub fn partial_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("partial").join(sha256)
    }

    /// Is a blob of this size present? (`verify`: also re-hash it; a bad blob is removed.)
    pub fn has(&self, sha256: &str, size: u64, verify: bool) -> bool {
        let p = self.path(sha256);
        match std::fs::metadata(&p) {
            Ok(m) if m.len() == size => {
                if !verify {
                    return true;
                }
                match hash_file(&p) {
                    Ok(h) if h == sha256 => true,
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
    pub fn promote(&self, partial: &Path, sha256: &str) -> std::io::Result<Result<(), String>> {
        let got = hash_file(partial)?;
        if got != sha256 {
            std::fs::remove_file(partial)?;
            return Ok(Err(got));
        }
        std::fs::File::open(partial)?.sync_all()?;
        let dir = self.dir.join("sha256");
        std::fs::create_dir_all(&dir)?;
        std::fs::rename(partial, dir.join(sha256))?;
        Ok(Ok(()))
    }
}

/// SHA256 of a file, streamed.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(h.finalize()));
        }
        h.update(&buf[..n]);
    }
}

/// Lower-case hex SHA256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_rejects_corrupt_entries() {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path());
        let h = sha256_hex(b"hello");
        c.put(&h, b"hello").unwrap();
        assert_eq!(c.get_verified(&h, 5).unwrap(), b"hello");
        std::fs::write(c.path(&h), b"jello").unwrap();
        assert!(c.get_verified(&h, 5).is_none());
        assert!(!c.path(&h).exists(), "corrupt entry must be removed");
    }
}
