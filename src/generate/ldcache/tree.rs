//! The image's root filesystem as ldconfig sees it from inside: lookups that follow
//! symlinks (absolute targets stay inside the image), and sorted directory listings.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::layer::{Entry, EntryKind};

/// How many symlinks one lookup may follow, as Linux's ELOOP limit: a loop in an image
/// makes the path unusable, not the generator hang.
const MAX_LINKS: usize = 40;

/// What is at a path.
#[derive(Debug, Clone, Copy)]
pub(super) enum Node<'a> {
    /// A directory, listed or implied by the paths below it.
    Dir,
    /// A regular file and its bytes.
    File(&'a [u8]),
    /// A symbolic link and its target.
    Symlink(&'a str),
}

/// All entries by path, and the names in each directory.
pub(super) struct Tree<'a> {
    kinds: BTreeMap<&'a str, &'a EntryKind>,
    children: BTreeMap<&'a str, BTreeSet<&'a str>>,
}

impl<'a> Tree<'a> {
    /// Index `entries`; a path given twice is what the later entry says, as with layers.
    pub(super) fn new(entries: &'a [Entry]) -> Tree<'a> {
        let mut kinds = BTreeMap::new();
        let mut children: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for entry in entries {
            let path = entry.path.trim_matches('/');
            if path.is_empty() {
                continue;
            }
            kinds.insert(path, &entry.kind);
            // Register the path in its parent and every ancestor in its own parent, so
            // directories a layer implies without listing them can be walked.
            let mut rest = path;
            loop {
                let (parent, name) = match rest.rfind('/') {
                    Some(i) => (&rest[..i], &rest[i + 1..]),
                    None => ("", rest),
                };
                let fresh = children.entry(parent).or_default().insert(name);
                if !fresh || parent.is_empty() {
                    break;
                }
                rest = parent;
            }
        }
        Tree { kinds, children }
    }

    /// What is at the canonical `path` (no symlinks followed; `""` is the root).
    pub(super) fn node(&self, path: &str) -> Option<Node<'a>> {
        if path.is_empty() {
            return Some(Node::Dir);
        }
        match self.kinds.get(path) {
            Some(EntryKind::Dir) => Some(Node::Dir),
            Some(EntryKind::File { data, .. }) => Some(Node::File(data.as_slice())),
            Some(EntryKind::Symlink { target }) => Some(Node::Symlink(target)),
            None => self.children.contains_key(path).then_some(Node::Dir),
        }
    }

    /// The names in the canonical directory `dir`, in byte order (ldconfig reads them in
    /// the filesystem's order, which only matters for names it considers equal).
    pub(super) fn list(&self, dir: &str) -> impl Iterator<Item = &'a str> + '_ {
        self.children.get(dir).into_iter().flatten().copied()
    }

    /// Follow `path` (absolute or relative to the root) through every symlink to the
    /// canonical path of what it names and what is there; `None` if it does not exist.
    pub(super) fn resolve(&self, path: &str) -> Option<(String, Node<'a>)> {
        let mut pending: VecDeque<String> = path.split('/').map(str::to_string).collect();
        let mut dest: Vec<String> = Vec::new();
        let mut node = Node::Dir;
        let mut links = 0;
        while let Some(part) = pending.pop_front() {
            if part.is_empty() {
                continue;
            }
            // Like the kernel: nothing, not even `.` or `..`, may follow a file.
            if !matches!(node, Node::Dir) {
                return None;
            }
            match part.as_str() {
                "." => continue,
                ".." => {
                    dest.pop();
                    continue;
                }
                _ => {}
            }
            dest.push(part);
            node = self.node(&dest.join("/"))?;
            if let Node::Symlink(target) = node {
                links += 1;
                if links > MAX_LINKS || target.is_empty() {
                    return None;
                }
                dest.pop();
                if target.starts_with('/') {
                    dest.clear();
                }
                for part in target.split('/').rev() {
                    pending.push_front(part.to_string());
                }
                node = Node::Dir;
            }
        }
        Some((dest.join("/"), node))
    }
}

/// `dir/name` for a canonical directory (`""` is the root).
pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}
