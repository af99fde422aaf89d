//! Temporary files and directories that a killed debless leaves nothing behind with.
//!
//! Every output (a lock, a layout, an archive, an SPDX directory, a cache entry) is written
//! to a temporary next to its final path and renamed into place, so readers never see half
//! a file. A process killed with SIGKILL cannot delete its temporaries, so their names say
//! whose they are: `.<name>.debless-<pid>-<random>.tmp`. [`sweep`] removes those whose
//! process is gone, and every writer sweeps before it writes, so the next run cleans up
//! after a killed one, however soon it starts. A temporary is created exclusively and never
//! through a symlink.
//!
//! A directory is replaced by [`replace_dir`]: an atomic exchange where the filesystem has
//! one, so at every moment the final path holds the old directory or the new one. Where it
//! has none, the old directory is first moved aside under a name that says so
//! (`.<name>.debless-<pid>-<random>.old`), and a sweep that finds one whose owner died
//! before the new directory arrived puts it back.

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
    temp_name_with(name, TEMP)
}

/// The suffix of a temporary being written.
const TEMP: &str = ".tmp";

/// The suffix of a replaced directory moved aside (only where no atomic exchange exists).
const ASIDE: &str = ".old";

fn temp_name_with(name: &str, suffix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".{name}{MARK}{}-{n}{nanos:x}{suffix}", std::process::id())
}

/// The owner's process id if `file_name` is one of debless's temporaries for `name`
/// (every name when `name` is `None`).
#[cfg(test)]
fn owner(file_name: &str, name: Option<&str>) -> Option<u32> {
    parse(file_name, name).map(|(pid, _, _)| pid)
}

/// A temporary's owner, the final name it is for, and whether it is a directory moved
/// aside (`.old`) rather than one being written (`.tmp`).
fn parse<'n>(file_name: &'n str, name: Option<&str>) -> Option<(u32, &'n str, bool)> {
    let rest = file_name.strip_prefix('.')?;
    let (rest, aside) = match rest.strip_suffix(TEMP) {
        Some(r) => (r, false),
        None => (rest.strip_suffix(ASIDE)?, true),
    };
    let (base, tail) = rest.rsplit_once(MARK)?;
    if name.is_some_and(|n| n != base) {
        return None;
    }
    Some((tail.split_once('-')?.0.parse().ok()?, base, aside))
}

/// Replace the directory `dir` with `new`, a [`TempDir`] in the same parent directory:
/// afterwards `dir` holds what `new` held, and the old directory is gone. At no moment is
/// `dir` missing, even for a process killed half-way: the two are exchanged in one
/// `renameat2(RENAME_EXCHANGE)`, or, on a filesystem without it, the old one is moved
/// aside under a name [`sweep`] restores from.
pub fn replace_dir(new: TempDir, dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::rename(new.path(), dir)?;
            new.keep();
            return Ok(());
        }
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    match exchange(new.path(), dir) {
        Ok(()) => {
            kill_point("dir-exchanged");
            // `new` now names the old directory, and its drop removes it.
            drop(new);
            Ok(())
        }
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP)
            ) =>
        {
            let parent = dir.parent().unwrap_or(Path::new("."));
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("output");
            let aside = TempDir {
                path: parent.join(temp_name_with(name, ASIDE)),
            };
            std::fs::rename(dir, aside.path())?;
            kill_point("dir-aside");
            if let Err(e) = std::fs::rename(new.path(), dir) {
                // Put the old one back; the rename error is the one to report.
                let _ = std::fs::rename(aside.path(), dir);
                aside.keep();
                return Err(e);
            }
            new.keep();
            drop(aside);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Swap two paths in one step (Linux 3.15 and later, on most local filesystems).
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: both are NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Open (creating it if missing) a file this process keeps at a path it owns, such as a
/// resumable partial download: read and write, never through a symlink, and never a file
/// that is not a lone regular file. A link, hard link, FIFO or device planted at `path` is
/// removed (the name only: whatever it points at is untouched) and a fresh file made.
pub fn open_owned(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;
    for _ in 0..4 {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path);
        let file = match opened {
            Ok(f) => f,
            // A symlink at the final component.
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                std::fs::remove_file(path)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let meta = file.metadata()?;
        if meta.is_file() && meta.nlink() == 1 {
            return Ok(file);
        }
        drop(file);
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a directory is in the way",
            ));
        }
        std::fs::remove_file(path)?;
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "something keeps replacing the file",
    ))
}

/// For the kill tests: with the `test-support` feature (which `cargo test` turns on) and
/// `DEBLESS_TEST_KILL_AT` naming this point, the process sends itself SIGKILL here, so a
/// test can stop a build at an exact moment. A normal build compiles it to nothing.
pub fn kill_point(name: &str) {
    #[cfg(any(test, feature = "test-support"))]
    if std::env::var_os("DEBLESS_TEST_KILL_AT").is_some_and(|v| v == name) {
        // SAFETY: signalling ourselves; SIGKILL does not return.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(any(test, feature = "test-support")))]
    let _ = name;
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
/// is gone; returns how many were removed. A directory moved aside by [`replace_dir`]
/// whose final path is missing (its owner died between the two renames) is put back
/// instead. Errors only cost a leftover, so they are ignored.
pub fn sweep(dir: &Path, name: Option<&str>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((pid, base, aside)) = file_name.to_str().and_then(|n| parse(n, name)) else {
            continue;
        };
        if !is_dead(pid) {
            continue;
        }
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if aside && is_dir {
            let fin = dir.join(base);
            if std::fs::symlink_metadata(&fin).is_err_and(|e| e.kind() == io::ErrorKind::NotFound)
                && std::fs::rename(&path, &fin).is_ok()
            {
                continue;
            }
        }
        let gone = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
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
    fn a_directory_is_replaced_without_a_moment_of_absence() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let fill = |text: &str| {
            let t = TempDir::new_in(dir.path(), "out").unwrap();
            std::fs::write(t.path().join("f"), text).unwrap();
            t
        };
        replace_dir(fill("one"), &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "one");
        replace_dir(fill("two"), &out).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("f")).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(
            names.len(),
            1,
            "the old directory and the temporary are gone"
        );
    }

    #[test]
    fn a_directory_moved_aside_by_a_dead_process_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // Killed after moving the old layout aside, before the new one arrived.
        let aside = dir.path().join(format!(".out{MARK}{dead}-3.old"));
        std::fs::create_dir(&aside).unwrap();
        std::fs::write(aside.join("f"), "old").unwrap();
        // Killed after both renames: the old one is only waiting to be deleted.
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        let stale = dir.path().join(format!(".kept{MARK}{dead}-4.old"));
        std::fs::create_dir(&stale).unwrap();
        sweep(dir.path(), None);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out/f")).unwrap(),
            "old"
        );
        assert!(!aside.exists() && !stale.exists());
        assert!(dir.path().join("kept").is_dir());
    }

    #[test]
    fn an_owned_file_replaces_planted_links_and_keeps_its_own_bytes() {
        use std::io::{Read, Seek};
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let path = dir.path().join("partial");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        open_owned(&path).unwrap().write_all(b"mine").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"mine");
        // A hard link shares the victim's inode: writing into it would change the victim.
        std::fs::remove_file(&path).unwrap();
        std::fs::hard_link(&victim, &path).unwrap();
        open_owned(&path).unwrap().write_all(b"mine").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        // Its own file is reopened as it is, for resuming.
        let mut f = open_owned(&path).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        assert_eq!(text, "mine");
        f.seek(std::io::SeekFrom::End(0)).unwrap();
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
