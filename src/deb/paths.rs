//! Path rules shared by reading and merging: normalisation, merged /usr, symlink escape.

/// Top-level directories that merged /usr turns into symlinks to `usr/<name>`.
pub(crate) const MERGED_DIRS: [&str; 7] =
    ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// Why a path from an archive cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// Starts with `/`.
    Absolute,
    /// Has a `..` component.
    DotDot,
    /// Not UTF-8, so it cannot be matched by globs or written reliably.
    NotUtf8,
}

impl PathProblem {
    /// The problem as a sentence fragment for an error message.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            PathProblem::Absolute => "is an absolute path inside the archive",
            PathProblem::DotDot => "has a `..` component",
            PathProblem::NotUtf8 => "is not valid UTF-8",
        }
    }
}

/// Normalise a tar member path (`./usr/bin/x`, `usr/bin/x/`) to `usr/bin/x`; `None` for the
/// root itself (`./`).
pub(crate) fn normalise(raw: &[u8]) -> Result<Option<String>, PathProblem> {
    let raw = std::str::from_utf8(raw).map_err(|_| PathProblem::NotUtf8)?;
    if raw.starts_with('/') {
        return Err(PathProblem::Absolute);
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(PathProblem::DotDot),
            _ => parts.push(part),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// The merged-/usr directory name `path` starts with, if any (`lib` for `lib/x`).
pub(crate) fn merged_top(path: &str) -> Option<&'static str> {
    let top = path.split('/').next()?;
    MERGED_DIRS.into_iter().find(|&d| d == top)
}

/// Is `target` the symlink target merged /usr expects at the top-level `name`?
pub(crate) fn is_merged_link(name: &str, target: &str) -> bool {
    let target = target.strip_prefix('/').unwrap_or(target);
    target.strip_prefix("usr/") == Some(name)
}

/// Move a path under a merged-/usr top-level directory to its home under `usr/`.
pub(crate) fn merge_usr(path: &str) -> String {
    match merged_top(path) {
        Some(_) => format!("usr/{path}"),
        None => path.to_string(),
    }
}

pub(crate) use crate::layer::entry::escapes_root;

/// Every proper ancestor of a normalised path, shortest first (`a`, `a/b` for `a/b/c`);
/// `.rev()` gives them deepest first, which lets a walk stop at the first one it has seen.
pub(crate) fn ancestors(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_strips_dot_slash_and_rejects_escapes() {
        assert_eq!(normalise(b"./usr/bin/x"), Ok(Some("usr/bin/x".into())));
        assert_eq!(normalise(b"./usr/share/"), Ok(Some("usr/share".into())));
        assert_eq!(normalise(b"./"), Ok(None));
        assert_eq!(normalise(b"/etc/passwd"), Err(PathProblem::Absolute));
        assert_eq!(normalise(b"./usr/../../x"), Err(PathProblem::DotDot));
        assert_eq!(normalise(b"./\xff"), Err(PathProblem::NotUtf8));
    }

    #[test]
    fn merged_usr_helpers() {
        assert_eq!(
            merge_usr("lib/x86_64-linux-gnu/libc.so.6"),
            "usr/lib/x86_64-linux-gnu/libc.so.6"
        );
        assert_eq!(merge_usr("libexec/x"), "libexec/x");
        assert_eq!(merge_usr("usr/lib/x"), "usr/lib/x");
        assert!(is_merged_link("lib64", "usr/lib64"));
        assert!(is_merged_link("bin", "/usr/bin"));
        assert!(!is_merged_link("bin", "usr/sbin"));
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert_eq!(ancestors("a").count(), 0);
        assert_eq!(ancestors("a/b/c").rev().collect::<Vec<_>>(), ["a/b", "a"]);
    }
}
