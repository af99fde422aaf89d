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

/// The longest path an entry may have, in bytes: Linux's `PATH_MAX` (4096) less its NUL.
/// No system call takes a longer path, so dpkg could not unpack one either; and a bound on
/// the length bounds the parent directories a path implies (at most one per `/`).
pub const MAX_PATH_BYTES: usize = 4095;

/// The longest path component an entry may have: `NAME_MAX`, what every Linux filesystem an
/// image is unpacked onto allows.
pub const MAX_NAME_BYTES: usize = 255;

/// Why `path` cannot name an entry, or `None` if it is in the normal form [`Entry::path`]
/// describes (relative, no empty, `.` or `..` component, no NUL) and within
/// [`MAX_PATH_BYTES`] and [`MAX_NAME_BYTES`]. Package entries and generated ones are held to
/// the same rule.
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("it is empty");
    }
    if path.contains('\0') {
        return Some("it contains a NUL byte");
    }
    if path.starts_with('/') {
        return Some("it starts with '/'");
    }
    if path.len() > MAX_PATH_BYTES {
        return Some("it is longer than 4095 bytes (PATH_MAX)");
    }
    let mut longest = 0;
    for c in path.split('/') {
        if c.is_empty() || c == "." || c == ".." {
            return Some("it has an empty, '.' or '..' component or a trailing '/'");
        }
        longest = longest.max(c.len());
    }
    if longest > MAX_NAME_BYTES {
        return Some("a component is longer than 255 bytes (NAME_MAX)");
    }
    None
}

/// Why `target` cannot be the target of a symlink at `link` (a path in normal form), or
/// `None`: empty, NUL, longer than the kernel stores, or relative and resolving above the
/// image root.
pub fn link_target_problem(link: &str, target: &str) -> Option<&'static str> {
    if target.is_empty() {
        return Some("is empty");
    }
    if target.contains('\0') {
        return Some("contains a NUL byte");
    }
    if target.len() > MAX_PATH_BYTES {
        return Some("is longer than 4095 bytes (PATH_MAX)");
    }
    if escapes_root(link, target) {
        return Some("points above the image root");
    }
    None
}

/// Does the relative symlink `target`, placed at `link`, resolve above the image root?
/// Resolved lexically: intermediate symlinks could only make it point elsewhere inside the
/// image, because the image's own root is where resolution stops at runtime. An absolute
/// target is inside the image by definition.
pub fn escapes_root(link: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return false;
    }
    // The link's directory: every component of `link` but the last.
    let mut depth = link.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn paths_are_held_to_one_normal_form_and_the_kernels_limits() {
        assert_eq!(path_problem("usr/bin/x"), None);
        for bad in [
            "", "/etc/x", "./etc/x", "etc//x", "etc/x/", "etc/../x", "a\0b",
        ] {
            assert!(path_problem(bad).is_some(), "{bad:?}");
        }
        let name = "n".repeat(MAX_NAME_BYTES);
        assert_eq!(path_problem(&name), None);
        assert!(
            path_problem(&format!("{name}n"))
                .unwrap()
                .contains("NAME_MAX")
        );
        let deep = "a/".repeat(MAX_PATH_BYTES / 2) + "b";
        assert_eq!(deep.len(), MAX_PATH_BYTES);
        assert_eq!(path_problem(&deep), None);
        assert!(
            path_problem(&format!("{deep}b"))
                .unwrap()
                .contains("PATH_MAX")
        );
    }

    #[test]
    fn link_targets_stay_inside_the_root() {
        assert!(!escapes_root("usr/bin/x", "../lib/y"));
        assert!(!escapes_root("usr/bin/x", "../../etc/y"));
        assert!(escapes_root("usr/bin/x", "../../../etc/y"));
        assert!(escapes_root("x", "../y"));
        // Going down and back up is still inside.
        assert!(!escapes_root("x", "a/../b"));
        assert!(escapes_root("x", "a/../../b"));
        assert!(!escapes_root("x", "/../../etc"));
        assert_eq!(link_target_problem("usr/bin/x", "python3"), None);
        assert!(link_target_problem("x", "").is_some());
        assert!(link_target_problem("x", "a\0").is_some());
        assert!(link_target_problem("x", &"a".repeat(4096)).is_some());
        assert_eq!(
            link_target_problem("usr/x", "../../etc/shadow"),
            Some("points above the image root")
        );
    }
}
