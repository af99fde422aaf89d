//! The union of an image's layers, so that no layer can silently replace what another put.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::paths;
use super::{DebError, describe};
use crate::layer::{Entry, EntryKind};

/// The union of an image's layers so far.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    merged_usr: bool,
    /// Every path of every layer added so far, with the entry that first put it there.
    union: BTreeMap<String, Entry>,
}

impl Tree {
    /// An empty image; `merged_usr` forbids anything but `usr/<name>` symlinks at `/bin`,
    /// `/sbin`, `/lib*`.
    pub fn new(merged_usr: bool) -> Tree {
        Tree {
            merged_usr,
            union: BTreeMap::new(),
        }
    }

    /// The entry at `path` (relative, normalised) in the layers so far.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.union.get(path)
    }

    /// Every entry of the layers so far, by path.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.union.values()
    }

    /// Merge a layer's candidate entries on top of the lower layers and return the layer's
    /// final entries, sorted by path (byte order), ready for the tar writer.
    /// `implied_mtime` is the mtime for directories the tree has to create.
    ///
    /// The layer holds its own new entries plus every ancestor directory of them (with the
    /// metadata of whichever layer first had it), so each layer extracts on its own.
    pub fn add_layer(
        &mut self,
        candidates: Vec<Entry>,
        implied_mtime: u64,
    ) -> Result<Vec<Entry>, DebError> {
        let mut layer: BTreeMap<String, Entry> = BTreeMap::new();
        for c in candidates {
            if !paths::is_normal(&c.path) {
                return Err(DebError::BadPath {
                    path: c.path,
                    origin: describe(&c.origin),
                });
            }
            if self.merged_usr {
                check_merged(&c)?;
            }
            if let Some(first) = layer.get(&c.path).or_else(|| self.union.get(&c.path)) {
                if same(first, &c) {
                    continue;
                }
                // A generator may regenerate its own file higher up (an ld.so.cache that
                // also lists the new layer's libraries); nothing else may replace a file.
                let regenerated = c.origin.starts_with("generated:")
                    && first.origin == c.origin
                    && !layer.contains_key(&c.path)
                    && !first.is_dir()
                    && !c.is_dir();
                if regenerated {
                    layer.insert(c.path.clone(), c);
                    continue;
                }
                return Err(DebError::Conflict {
                    path: c.abs_path(),
                    first: describe(&first.origin),
                    second: describe(&c.origin),
                });
            }
            layer.insert(c.path.clone(), c);
        }

        // Lower directories this layer writes into, copied so the layer stands alone.
        let mut carried: BTreeMap<String, Entry> = BTreeMap::new();
        let new_paths: Vec<String> = layer.keys().cloned().collect();
        for path in &new_paths {
            for ancestor in paths::ancestors(path) {
                if carried.contains_key(ancestor) {
                    continue;
                }
                let (found, lower) = match layer.get(ancestor) {
                    Some(e) => (Some(e), false),
                    None => (self.union.get(ancestor), true),
                };
                match found {
                    Some(dir) if dir.is_dir() => {
                        if lower {
                            carried.insert(ancestor.to_string(), dir.clone());
                        }
                    }
                    Some(other) => {
                        let origin = layer.get(path).map_or("", |e| e.origin.as_str());
                        return Err(DebError::ThroughNonDir {
                            path: format!("/{path}"),
                            origin: describe(origin),
                            parent: other.abs_path(),
                            parent_kind: match other.kind {
                                EntryKind::Symlink { .. } => "symlink",
                                _ => "file",
                            },
                            parent_origin: describe(&other.origin),
                        });
                    }
                    None => {
                        layer.insert(
                            ancestor.to_string(),
                            Entry::dir(ancestor, implied_mtime, "implied"),
                        );
                    }
                }
            }
        }

        // Later layers win for regenerated files, as they do when the layers are unpacked.
        self.union
            .extend(layer.iter().map(|(p, e)| (p.clone(), e.clone())));
        layer.append(&mut carried);
        Ok(layer.into_values().collect())
    }
}

/// Can one of these two entries stand in for the other?
fn same(a: &Entry, b: &Entry) -> bool {
    let owners = a.uid == b.uid && a.gid == b.gid;
    match (&a.kind, &b.kind) {
        (EntryKind::Dir, EntryKind::Dir) => true,
        (EntryKind::File { data: x, .. }, EntryKind::File { data: y, .. }) => {
            (Arc::ptr_eq(x, y) || x == y) && a.mode == b.mode && owners
        }
        (EntryKind::Symlink { target: x }, EntryKind::Symlink { target: y }) => x == y && owners,
        _ => false,
    }
}

/// With merged /usr, `bin`, `lib`, ... are the symlinks `usr/<name>` and nothing else.
fn check_merged(e: &Entry) -> Result<(), DebError> {
    let Some(top) = paths::merged_top(&e.path) else {
        return Ok(());
    };
    if e.path != top {
        return Err(DebError::UnderMergedDir {
            path: e.abs_path(),
            origin: describe(&e.origin),
            what: match e.kind {
                EntryKind::Dir => "a directory",
                EntryKind::File { .. } => "a real file",
                EntryKind::Symlink { .. } => "a symlink",
            },
            top,
        });
    }
    match &e.kind {
        EntryKind::Symlink { target } if paths::is_merged_link(top, target) => Ok(()),
        kind => Err(DebError::MergedDirNotLink {
            origin: describe(&e.origin),
            what: match kind {
                EntryKind::Dir => "a directory".to_string(),
                EntryKind::File { .. } => "a file".to_string(),
                EntryKind::Symlink { target } => format!("a symlink to {target}"),
            },
            top,
        }),
    }
}

/// The top-level merged-/usr symlinks (`bin -> usr/bin`) an image has so far. Each is added
/// by the first layer that ships something under its `/usr` directory, so an image has each
/// exactly once, in the layer that needs it.
#[derive(Debug, Clone, Default)]
pub struct MergedLinks {
    /// The top-level names (`bin`) linked by the layers so far.
    done: BTreeSet<&'static str>,
}

impl MergedLinks {
    /// The links a layer of `candidates` must add, now counted as made.
    pub fn add_for(&mut self, candidates: &[Entry], mtime: u64) -> Vec<Entry> {
        let mut out = Vec::new();
        for d in paths::MERGED_DIRS {
            if self.done.contains(d) {
                continue;
            }
            let usr = format!("usr/{d}");
            let prefix = format!("usr/{d}/");
            if candidates
                .iter()
                .any(|e| e.path == usr || e.path.starts_with(&prefix))
            {
                self.done.insert(d);
                out.push(Entry {
                    path: d.to_owned(),
                    kind: EntryKind::Symlink { target: usr },
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    mtime,
                    origin: "generated:merged-usr".to_owned(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_links_appear_once_where_usr_dirs_first_appear() {
        let mut links = MergedLinks::default();
        let first = links.add_for(&[Entry::dir("usr/lib", 0, "t")], 5);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].path, "lib");
        assert_eq!(
            first[0].kind,
            EntryKind::Symlink {
                target: "usr/lib".into()
            }
        );
        let again = links.add_for(
            &[
                Entry::dir("usr/lib/x", 0, "t"),
                Entry::dir("usr/bin", 0, "t"),
            ],
            5,
        );
        let paths: Vec<&str> = again.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["bin"]);
    }

    fn file(path: &str, data: &str, origin: &str) -> Entry {
        Entry {
            path: path.to_string(),
            kind: EntryKind::File {
                data: Arc::new(data.as_bytes().to_vec()),
                link_group: None,
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            origin: origin.to_string(),
        }
    }

    fn link(path: &str, target: &str, origin: &str) -> Entry {
        Entry {
            kind: EntryKind::Symlink {
                target: target.to_string(),
            },
            mode: 0o777,
            ..file(path, "", origin)
        }
    }

    fn dir(path: &str, mode: u32, origin: &str) -> Entry {
        Entry {
            mode,
            ..Entry::dir(path, 1, origin)
        }
    }

    /// `path origin` per entry, plus the mode for directories.
    fn summary(layer: &[Entry]) -> Vec<String> {
        layer
            .iter()
            .map(|e| match e.kind {
                EntryKind::Dir => format!("{} {} {:04o} @{}", e.path, e.origin, e.mode, e.mtime),
                _ => format!("{} {}", e.path, e.origin),
            })
            .collect()
    }

    #[test]
    fn missing_parents_are_implied_and_output_is_byte_sorted() {
        let mut tree = Tree::new(false);
        let layer = tree
            .add_layer(
                vec![
                    file("a/b", "1", "p"),
                    file("a.b", "2", "p"),
                    file("a-b", "3", "p"),
                ],
                42,
            )
            .unwrap();
        assert_eq!(
            summary(&layer),
            ["a implied 0755 @42", "a-b p", "a.b p", "a/b p"]
        );
    }

    #[test]
    fn same_layer_duplicates_merge_only_when_identical() {
        let mut tree = Tree::new(false);
        let layer = tree
            .add_layer(
                vec![
                    dir("etc", 0o755, "a"),
                    dir("etc", 0o700, "b"),
                    file("etc/x", "same", "a"),
                    file("etc/x", "same", "b"),
                    link("etc/l", "x", "a"),
                    link("etc/l", "x", "b"),
                ],
                0,
            )
            .unwrap();
        // The first given wins, directory metadata included.
        assert_eq!(summary(&layer), ["etc a 0755 @1", "etc/l a", "etc/x a"]);

        let err = Tree::new(false)
            .add_layer(
                vec![file("usr/lib/x", "1", "a"), file("usr/lib/x", "2", "b")],
                0,
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/usr/lib/x is shipped differently by package a and package b;"),
            "{err}"
        );

        let mut mode = file("x", "1", "b");
        mode.mode = 0o755;
        assert!(
            Tree::new(false)
                .add_layer(vec![file("x", "1", "a"), mode], 0)
                .is_err()
        );
        let err = Tree::new(false)
            .add_layer(
                vec![link("x", "y", "a"), link("x", "z", "generated:os-release")],
                0,
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("package a and generator os-release"),
            "{err}"
        );
        assert!(
            Tree::new(false)
                .add_layer(vec![dir("x", 0o755, "a"), file("x", "", "b")], 0)
                .is_err()
        );
    }

    #[test]
    fn upper_layers_reuse_lower_directories_and_drop_identical_entries() {
        let mut tree = Tree::new(false);
        tree.add_layer(
            vec![
                dir("usr", 0o700, "base"),
                file("usr/bin/sh", "dash", "dash"),
            ],
            7,
        )
        .unwrap();
        let layer = tree
            .add_layer(
                vec![
                    dir("usr", 0o755, "python"),
                    file("usr/bin/sh", "dash", "dash"),
                    file("usr/bin/python3", "py", "python"),
                ],
                9,
            )
            .unwrap();
        // /usr and /usr/bin come with the lower layer's metadata; sh is not repeated.
        assert_eq!(
            summary(&layer),
            [
                "usr base 0700 @1",
                "usr/bin implied 0755 @7",
                "usr/bin/python3 python"
            ]
        );

        // A directory that is already there and leads nowhere new is not repeated.
        let layer = tree.add_layer(vec![dir("usr", 0o755, "x")], 9).unwrap();
        assert!(layer.is_empty(), "{layer:?}");

        let err = tree
            .add_layer(vec![file("usr/bin/sh", "bash", "bash")], 9)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/usr/bin/sh is shipped differently by package dash and package bash"),
            "{err}"
        );
        let err = tree
            .add_layer(vec![file("usr/bin", "oops", "x")], 9)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("by an implied parent directory and package x"),
            "{err}"
        );
    }

    #[test]
    fn nothing_is_written_through_a_symlink_or_a_file() {
        let mut tree = Tree::new(false);
        tree.add_layer(vec![link("opt/x", "../srv", "q")], 0)
            .unwrap();
        let err = tree
            .add_layer(vec![file("opt/x/y", "1", "p")], 0)
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "package p writes /opt/x/y through the symlink /opt/x from package q;"
            ),
            "{err}"
        );

        let err = Tree::new(false)
            .add_layer(
                vec![
                    file("etc/passwd", "root", "gen"),
                    file("etc/passwd/x", "1", "p"),
                ],
                0,
            )
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "package p writes /etc/passwd/x through the file /etc/passwd from package gen;"
            ),
            "{err}"
        );
    }

    #[test]
    fn merged_usr_keeps_top_level_names_as_links_into_usr() {
        let mut tree = Tree::new(true);
        let layer = tree
            .add_layer(
                vec![
                    link("lib", "usr/lib", "base-files"),
                    file("usr/lib/x", "1", "p"),
                ],
                0,
            )
            .unwrap();
        assert_eq!(layer.len(), 4, "{layer:?}");

        let err = Tree::new(true)
            .add_layer(vec![file("lib/x", "1", "p")], 0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "package p would put a real file under the merged-/usr path /lib (/lib/x); with merged /usr it belongs under /usr/lib"
        );
        let err = Tree::new(true)
            .add_layer(vec![dir("sbin", 0o755, "p")], 0)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("package p would put a directory at the merged-/usr path /sbin;"),
            "{err}"
        );
        let err = Tree::new(true)
            .add_layer(vec![link("lib64", "usr/lib", "p")], 0)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("a symlink to usr/lib at the merged-/usr path /lib64"),
            "{err}"
        );

        // Without merged /usr these are ordinary paths.
        assert!(
            Tree::new(false)
                .add_layer(vec![file("lib/x", "1", "p")], 0)
                .is_ok()
        );
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in ["", "/etc/x", "./etc/x", "etc//x", "etc/x/", "etc/../x"] {
            let err = Tree::new(false)
                .add_layer(vec![file(bad, "", "generated:x")], 0)
                .unwrap_err();
            assert!(matches!(err, DebError::BadPath { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_deb_read_merges_into_a_layer() {
        use crate::deb::testdeb::PackageDir;
        use crate::deb::{ReadOptions, Selection, read_deb};
        let p = PackageDir::new("p");
        p.file("usr/bin/x", b"x", 0o755).file("bin/y", b"y", 0o755);
        let opts = ReadOptions {
            merged_usr: true,
            max_data_bytes: None,
        };
        let deb = read_deb(&p.build("zstd"), "p", &Selection::everything(), &opts).unwrap();
        let layer = Tree::new(true).add_layer(deb.entries, 5).unwrap();
        let paths: Vec<_> = layer.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["usr", "usr/bin", "usr/bin/x", "usr/bin/y"]);
    }
}
