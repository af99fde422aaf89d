//! Temporary files and directories that a killed debless leaves nothing behind with.
//!
//! Every output (a lock, a layout, an archive, a cache entry) is written to a temporary
//! next to its final path and renamed into place, so readers never see half a file. A
//! process killed with SIGKILL cannot delete its temporaries, so their names say whose
//! they are: `.<name>.debless-<pid>-<random>.tmp`. [`sweep`] removes those whose process
//! is gone, and every writer sweeps before it writes, so the next run cleans up after a
//! killed one, however soon it starts. A temporary is created exclusively and never
//! through a symlink.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The marker between a temporary's name and its owner's process id.
const MARK: &str = ".debless-";

/// A temporary file; removed when dropped unless [`TempFile::persist`]ed.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Create `.<name>.debless-<pid>-<n>.tmp` in `dir` (exclusively, not following a link)
    /// with `mode`.
    pub fn new_in(dir: &Path, name: &str, mode: u32) -> io::Result<TempFile> {
        for _ in 0..64 {
            let path = dir.join(temp_name(name));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary file name",
        ))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        self.file
            .as_ref()
            .expect("a TempFile holds its file until persisted")
    }

    /// Flush it to disk and rename it to `to`, replacing what is there.
    pub fn persist(mut self, to: &Path) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        std::fs::rename(&self.path, to)?;
        // Renamed: nothing left to delete on drop.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A temporary directory; removed (with its contents) when dropped unless
/// [`TempDir::keep`] is called.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Create `.<name>.debless-<pid>-<n>.tmp/` in `dir` with mode 0755.
    pub fn new_in(dir: &Path, name: &str) -> io::Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        for _ in 0..64 {
            let path = dir.join(temp_name(name));
            match std::fs::DirBuilder::new().mode(0o755).create(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free temporary directory name",
        ))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop owning it (it was renamed into place).
    pub fn keep(mut self) -> PathBuf {
        std::mem::take(&mut self.path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn temp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".{name}{MARK}{}-{n}{nanos:x}.tmp", std::process::id())
}

/// The owner's process id if `file_name` is one of debless's temporaries for `name`
/// (every name when `name` is `None`).
fn owner(file_name: &str, name: Option<&str>) -> Option<u32> {
    let rest = file_name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (base, tail) = rest.rsplit_once(MARK)?;
    if name.is_some_and(|n| n != base) {
        return None;
    }
    tail.split_once('-')?.0.parse().ok()
}

/// Is process `pid` gone? (A process we may not signal still exists.)
fn is_dead(pid: u32) -> bool {
    if pid == std::process::id() {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Remove, in `dir`, every debless temporary for `name` (or for any name) whose process
/// is gone; returns how many were removed. Errors only cost a leftover, so they are
/// ignored.
pub fn sweep(dir: &Path, name: Option<&str>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| owner(n, name)) else {
            continue;
        };
        if !is_dead(pid) {
            continue;
        }
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn names_say_whose_they_are() {
        let n = temp_name("debian13.lock");
        assert_eq!(owner(&n, Some("debian13.lock")), Some(std::process::id()));
        assert_eq!(owner(&n, None), Some(std::process::id()));
        assert_eq!(owner(&n, Some("debian12.lock")), None);
        assert_eq!(owner("debian13.lock", None), None);
        assert_eq!(owner(".x.tmp", None), None);
        assert_eq!(owner(".x.debless-abc-1.tmp", None), None);
    }

    #[test]
    fn a_dead_processs_temporaries_are_swept_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A process that has exited: its pid is free (reaped), so it counts as dead.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".x.lock{MARK}{dead}-7.tmp"));
        std::fs::write(&stale, b"half a lock").unwrap();
        let stale_dir = dir.path().join(format!(".out{MARK}{dead}-8.tmp"));
        std::fs::create_dir_all(stale_dir.join("blobs")).unwrap();
        let mine = TempFile::new_in(dir.path(), "x.lock", 0o644).unwrap();
        let user = dir.path().join("x.lock.tmp");
        std::fs::write(&user, b"the user's").unwrap();
        assert_eq!(sweep(dir.path(), None), 2);
        assert!(!stale.exists() && !stale_dir.exists());
        assert!(mine.path().exists(), "a live process's temporary stays");
        assert!(
            user.exists(),
            "a file debless did not name is never touched"
        );
    }

    #[test]
    fn persist_renames_and_drop_removes() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempFile::new_in(dir.path(), "a", 0o640).unwrap();
        let tmp_path = t.path().to_owned();
        t.file().write_all(b"x").unwrap();
        t.persist(&dir.path().join("a")).unwrap();
        assert!(!tmp_path.exists());
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"x");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("a"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        let t = TempFile::new_in(dir.path(), "b", 0o644).unwrap();
        let p = t.path().to_owned();
        drop(t);
        assert!(!p.exists());
        let d = TempDir::new_in(dir.path(), "c").unwrap();
        let p = d.path().to_owned();
        std::fs::write(p.join("f"), b"").unwrap();
        drop(d);
        assert!(!p.exists());
    }

    #[test]
    fn a_planted_link_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        // Whatever name comes next, creation is exclusive and does not follow links: plant
        // links under many plausible names and check none is used.
        let t = TempFile::new_in(dir.path(), "n", 0o644).unwrap();
        let taken = t.path().to_owned();
        drop(t);
        std::os::unix::fs::symlink(&target, &taken).unwrap();
        let t = TempFile::new_in(dir.path(), "n", 0o644).unwrap();
        assert_ne!(t.path(), taken);
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
