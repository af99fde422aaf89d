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

/// Is `path` already in [`Entry`](crate::layer::Entry)'s normal form?
pub(crate) fn is_normal(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(|p| !matches!(p, "" | "." | ".."))
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

/// Does the relative symlink `target`, placed at `link`, resolve above the image root?
/// Resolved lexically: intermediate symlinks could only make it point elsewhere inside the
/// image, because the image's own root is where resolution stops at runtime.
pub(crate) fn escapes_root(link: &str, target: &str) -> bool {
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

/// Every proper ancestor of a normalised path, shortest first (`a`, `a/b` for `a/b/c`).
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
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
    fn escape_is_judged_from_the_links_directory() {
        assert!(!escapes_root("usr/bin/x", "../lib/y"));
        assert!(!escapes_root("usr/bin/x", "../../etc/y"));
        assert!(escapes_root("usr/bin/x", "../../../etc/y"));
        assert!(escapes_root("x", "../y"));
        // Going down and back up is still inside.
        assert!(!escapes_root("x", "a/../b"));
        assert!(escapes_root("x", "a/../../b"));
        assert!(!escapes_root("x", "/../../etc"));
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
    }
}
