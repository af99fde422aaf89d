//! Which directories ldconfig scans, in its order: those named by `/etc/ld.so.conf` and
//! the files it `include`s, then the built-in list; a directory reached a second time
//! (through a symlink, say) is dropped, and `glibc-hwcaps/*` subdirectories follow their
//! parent (glibc's `elf/ldconfig.c`: `parse_conf`, `add_dir_1`, `add_glibc_hwcaps_*`).

use std::collections::BTreeSet;

use super::tree::{Node, Tree, join};

/// Where ldconfig reads its configuration.
const LD_SO_CONF: &str = "/etc/ld.so.conf";

/// Debian's /etc/ld.so.conf (shipped by libc-bin). Distroless images have no libc-bin,
/// but the cache should be the one Debian's configuration gives, so its absence means
/// this, not an empty file.
const DEBIAN_LD_SO_CONF: &[u8] = b"include /etc/ld.so.conf.d/*.conf\n";

/// How deep `include`s may nest: ldconfig has no limit and recurses until it crashes on
/// a file that includes itself.
const MAX_INCLUDE_DEPTH: usize = 16;

/// One directory to scan.
#[derive(Debug)]
pub(super) struct Dir {
    /// The path as configured, trailing `/` removed: cache entries are `path/soname`.
    pub(super) path: String,
    /// Where it really is, which identifies it (ldconfig compares device and inode).
    pub(super) canon: String,
    /// The glibc-hwcaps subdirectory name (`x86-64-v3`) if this is one.
    pub(super) hwcaps: Option<String>,
}

/// The directories to scan and every glibc-hwcaps name seen on the way.
#[derive(Debug, Default)]
pub(super) struct Dirs {
    /// In scanning order.
    pub(super) list: Vec<Dir>,
    /// ldconfig interns each glibc-hwcaps subdirectory name in the cache's string table
    /// when it finds it, even if no library ends up there, so these shape the output.
    pub(super) hwcaps_names: BTreeSet<String>,
}

/// The directories Debian's ldconfig scans in `tree` for the multiarch `triplet`.
pub(super) fn directories(tree: &Tree, triplet: &str) -> Dirs {
    let mut dirs = Dirs::default();
    match tree.resolve(LD_SO_CONF) {
        Some((_, Node::File(data))) => dirs.parse_conf(tree, LD_SO_CONF, data, 0),
        // Something that is not a file: ldconfig opens it and reads no line.
        Some(_) => {}
        None => dirs.parse_conf(tree, LD_SO_CONF, DEBIAN_LD_SO_CONF, 0),
    }
    // Debian's ldconfig adds the loader's own search list, multiarch first (Debian's
    // local-ldconfig-multiarch patch), where upstream adds only its slibdir and libdir.
    for dir in [
        format!("/lib/{triplet}"),
        format!("/usr/lib/{triplet}"),
        "/lib".to_string(),
        "/usr/lib".to_string(),
    ] {
        dirs.add(tree, &dir);
    }
    dirs
}

impl Dirs {
    /// Read one configuration file's lines: comments, `include`, `hwcap`, directories.
    fn parse_conf(&mut self, tree: &Tree, name: &str, data: &[u8], depth: usize) {
        for line in data.split(|&b| b == b'\n') {
            // The format has no quoting: `#` ends the line, as does a NUL for C.
            let end = line
                .iter()
                .position(|&b| b == b'#' || b == 0)
                .unwrap_or(line.len());
            let start = line[..end]
                .iter()
                .position(|&b| !is_space(b))
                .unwrap_or(end);
            let line = &line[start..end];
            if line.is_empty() {
                continue;
            }
            if line.starts_with(b"include") && line.get(7).is_some_and(|&b| is_blank(b)) {
                for pattern in line[8..].split(|&b| is_blank(b)) {
                    if !pattern.is_empty() {
                        self.include(tree, name, &String::from_utf8_lossy(pattern), depth);
                    }
                }
            } else if line.len() > 5
                && line[..5].eq_ignore_ascii_case(b"hwcap")
                && is_blank(line[5])
            {
                // Legacy hwcap lines are ignored by glibc since 2.37.
            } else {
                self.add(tree, &String::from_utf8_lossy(line));
            }
        }
    }

    /// Read every file `pattern` matches, in sorted order; a relative pattern is relative
    /// to the including file's directory.
    fn include(&mut self, tree: &Tree, from: &str, pattern: &str, depth: usize) {
        if depth >= MAX_INCLUDE_DEPTH {
            return;
        }
        let pattern = match from.rfind('/') {
            Some(slash) if !pattern.starts_with('/') => {
                format!("{}/{pattern}", if slash == 0 { "" } else { &from[..slash] })
            }
            _ => pattern.to_string(),
        };
        for path in glob(tree, &pattern) {
            if let Some((_, Node::File(data))) = tree.resolve(&path) {
                self.parse_conf(tree, &path, data, depth + 1);
            }
        }
    }

    /// Add one configured directory unless it is already listed under another name.
    fn add(&mut self, tree: &Tree, line: &str) {
        let path = line.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return;
        }
        let Some((canon, Node::Dir)) = tree.resolve(path) else {
            return;
        };
        if self.list.iter().any(|d| d.canon == canon) {
            return;
        }
        self.list.push(Dir {
            path: path.to_string(),
            canon: canon.clone(),
            hwcaps: None,
        });
        self.add_hwcaps(tree, path, &canon);
    }

    /// Queue the subdirectories of `canon/glibc-hwcaps`, each for its hwcaps name.
    fn add_hwcaps(&mut self, tree: &Tree, path: &str, canon: &str) {
        let Some((hwcaps_dir, Node::Dir)) = tree.resolve(&join(canon, "glibc-hwcaps")) else {
            return;
        };
        for name in tree.list(&hwcaps_dir) {
            // Hidden entries and regular files are skipped, and the loader cannot look
            // up a name with a `:`.
            if name.starts_with('.') || name.contains(':') {
                continue;
            }
            let full = join(&hwcaps_dir, name);
            if matches!(tree.node(&full), Some(Node::File(_))) {
                continue;
            }
            let Some((sub_canon, Node::Dir)) = tree.resolve(&full) else {
                continue;
            };
            self.hwcaps_names.insert(name.to_string());
            if self.list.iter().any(|d| d.canon == sub_canon) {
                continue;
            }
            self.list.push(Dir {
                path: format!("{path}/glibc-hwcaps/{name}"),
                canon: sub_canon,
                hwcaps: Some(name.to_string()),
            });
        }
    }
}

/// C's `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// C's `isblank`.
fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t')
}

/// The existing paths `pattern` matches, sorted (glob(3) without flags: `*`, `?`, `[...]`
/// and `\` escapes within one component; a leading `.` must be matched literally).
fn glob(tree: &Tree, pattern: &str) -> Vec<String> {
    let absolute = pattern.starts_with('/');
    let mut found = vec![String::new()];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for base in &found {
            let prefix = |name: &str| {
                if absolute || !base.is_empty() {
                    format!("{base}/{name}")
                } else {
                    name.to_string()
                }
            };
            if part.contains(['*', '?', '[']) {
                if let Some((dir, Node::Dir)) = tree.resolve(base) {
                    for name in tree.list(&dir) {
                        if fnmatch(part.as_bytes(), name.as_bytes()) {
                            next.push(prefix(name));
                        }
                    }
                }
            } else {
                next.push(prefix(&unescape(part)));
            }
        }
        found = next;
    }
    found.retain(|path| !path.is_empty() && tree.resolve(path).is_some());
    found.sort();
    found.dedup();
    found
}

/// A pattern component without wildcards, its `\` escapes removed.
fn unescape(part: &str) -> String {
    let mut out = String::new();
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap_or('\\')),
            c => out.push(c),
        }
    }
    out
}

/// fnmatch(3) with FNM_PERIOD for one path component.
fn fnmatch(pattern: &[u8], name: &[u8]) -> bool {
    // A hidden name is matched only by a pattern that spells out its dot.
    if name.first() == Some(&b'.') && !(pattern.starts_with(b".") || pattern.starts_with(b"\\.")) {
        return false;
    }
    let (mut p, mut n) = (0, 0);
    // Where the last `*` was and how much of the name it has swallowed: on a mismatch it
    // takes one more byte.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if let Some(&c) = pattern.get(p) {
            let step = match c {
                b'*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                b'?' => name.get(n).map(|_| 1),
                b'[' => name.get(n).and_then(|&b| match bracket(pattern, p, b) {
                    Some((matched, len)) => matched.then_some(len),
                    // Never closed: an ordinary character.
                    None => (b == b'[').then_some(1),
                }),
                b'\\' if p + 1 < pattern.len() => (name.get(n) == pattern.get(p + 1)).then_some(2),
                c => (name.get(n) == Some(&c)).then_some(1),
            };
            if let Some(len) = step {
                p += len;
                n += 1;
                continue;
            }
        } else if n == name.len() {
            return true;
        }
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                p = sp + 1;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

/// Does the bracket expression at `pattern[start]` (`[a-z]`, `[!.]`, `[]x]`) match `b`, and
/// how long is it? `None` if it is never closed.
fn bracket(pattern: &[u8], start: usize, b: u8) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let mut lo = *pattern.get(i)?;
        if lo == b']' && !first {
            break;
        }
        first = false;
        if lo == b'\\' {
            i += 1;
            lo = *pattern.get(i)?;
        }
        let mut hi = lo;
        if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&c| c != b']') {
            i += 2;
            hi = *pattern.get(i)?;
            if hi == b'\\' {
                i += 1;
                hi = *pattern.get(i)?;
            }
        }
        matched |= lo <= b && b <= hi;
        i += 1;
    }
    Some((matched != negate, i + 1 - start))
}
