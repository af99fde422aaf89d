//! One filesystem object on its way from a .deb (or a generator) into a layer.

use std::sync::Arc;

/// What kind of object an entry is. Hard links are regular files that share a `link_group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file. Entries with the same `link_group` are hard links of one inode: the
    /// layer writer stores the content once, under the first path in layer order, and links
    /// the others to it.
    File {
        /// The file's bytes.
        data: Arc<Vec<u8>>,
        /// Same value = same inode (e.g. `"<package>:<first path>"`); `None` for a lone file.
        link_group: Option<String>,
    },
    /// A symbolic link with its target exactly as the package ships it.
    Symlink {
        /// Link target (relative or absolute; absolute means inside the image root).
        target: String,
    },
}

/// One object in an image's root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the image root, normalised: no leading `/` or `./`, no trailing
    /// `/`, no `.`/`..`/empty components (`usr/lib/x86_64-linux-gnu/libc.so.6`).
    pub path: String,
    /// Directory, file or symlink.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Modification time (seconds since the epoch), before clamping.
    pub mtime: u64,
    /// Who contributed it, for error messages: a package name or `generated:<feature>`.
    pub origin: String,
}

impl Entry {
    /// The path as it appears inside the image (`/usr/lib/...`).
    pub fn abs_path(&self) -> String {
        format!("/{}", self.path)
    }

    /// Is this a directory?
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Dir)
    }

    /// A directory with the usual defaults (0755, root), as implied parents get.
    pub fn dir(path: impl Into<String>, mtime: u64, origin: impl Into<String>) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime,
            origin: origin.into(),
        }
    }
}
