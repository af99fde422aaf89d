//! The first pass over data.tar: each tar entry is classified, checked (path, type, owner,
//! setuid, symlink escape, hard-link target) and, when selected, kept as a candidate.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use super::{Reader, read_all};
use crate::deb::DebError;
use crate::deb::paths::{self, PathProblem};
use crate::layer::{Entry, EntryKind};

/// What a tar entry is, once debless has decided it may be in an image.
pub(super) enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symlink, with its target.
    Symlink(String),
    /// A hard link, with its target as the archive writes it.
    HardLink(Vec<u8>),
}

/// Mode, owner and mtime: what an inode carries besides its content.
#[derive(Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u64,
}

/// What is known about a path already seen in data.tar.
enum Seen {
    Dir,
    Symlink,
    /// A regular file or a hard link to one.
    File {
        /// The first path of its inode (itself unless it is a hard link).
        root: String,
        /// Its index in the scan's output, if selected.
        out: Option<usize>,
        /// Its bytes, if they were read (only selected files are read).
        data: Option<Arc<Vec<u8>>>,
        /// The inode's metadata.
        meta: Meta,
    },
}

/// An entry found in data.tar, before directories are decided.
pub(super) struct Candidate {
    /// The entry as the image would have it.
    pub entry: Entry,
    /// Selected itself; otherwise a directory kept only if it is an ancestor of one that is.
    pub selected: bool,
}

/// One entry under scan: where it goes in the image and whether the rule wants it.
struct Place<'p> {
    /// Image path (merged-/usr rewrite applied), without the leading `/`.
    path: &'p str,
    /// The same with its leading `/`, for messages and globs.
    abs: &'p str,
    selected: bool,
}

/// The first pass over data.tar.
pub(super) struct Scan<'s> {
    reader: &'s Reader<'s>,
    member_name: &'s str,
    /// Every entry kept so far, in archive order.
    pub out: Vec<Candidate>,
    /// Every image path seen so far, selected or not.
    seen: BTreeMap<String, Seen>,
    /// Hard-link roots (image paths) whose bytes a second pass must read, with the output
    /// indices that need them.
    pub missing: BTreeMap<String, Vec<usize>>,
    /// Which include patterns matched some path.
    pub matched: Vec<bool>,
    /// Which exclude patterns matched some path of the package, selected or not.
    pub excluded: Vec<bool>,
}

impl<'s> Scan<'s> {
    /// A scan of the data.tar member `member_name`.
    pub fn new(reader: &'s Reader<'s>, member_name: &'s str) -> Scan<'s> {
        Scan {
            reader,
            member_name,
            out: Vec::new(),
            seen: BTreeMap::new(),
            missing: BTreeMap::new(),
            matched: vec![false; reader.sel.include_patterns().len()],
            excluded: vec![false; reader.sel.exclude_patterns().len()],
        }
    }

    fn broken(&self, e: io::Error) -> DebError {
        self.reader.corrupt(format!("{}: {e}", self.member_name))
    }

    /// Take in one tar entry.
    pub fn entry(&mut self, entry: &mut tar::Entry<'_, impl Read>) -> Result<(), DebError> {
        let r = self.reader;
        if entry.header().entry_type().is_pax_global_extensions() {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = shown(&raw_path);
        let shipped = match paths::normalise(&raw_path) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(problem) => return Err(r.malformed(&shown, problem.describe())),
        };
        let kind = self.kind(entry, &raw_path, &shown)?;

        let path = r.image_path(&shipped, &kind)?;
        let abs = format!("/{path}");
        r.sel.note_include_matches(&abs, &mut self.matched);
        r.sel.note_exclude_matches(&abs, &mut self.excluded);
        let meta = self.meta(entry, &abs)?;

        if let Some(previous) = self.seen.get(&path) {
            // A package may ship both /lib and /usr/lib as directories; merged they are one.
            if matches!((previous, &kind), (Seen::Dir, Kind::Dir)) {
                return Ok(());
            }
            return Err(r.malformed(
                &abs,
                "appears twice in the package (counting /bin, /lib... as /usr/bin, /usr/lib...)",
            ));
        }

        let selected = if matches!(kind, Kind::Dir) {
            r.sel.selects_dir(&abs)
        } else {
            r.sel.selects(&abs)
        };
        let at = Place {
            path: &path,
            abs: &abs,
            selected,
        };
        let seen = match kind {
            Kind::Dir => self.dir(&at, meta),
            Kind::Symlink(target) => self.symlink(&at, target, meta)?,
            Kind::File => self.file(&at, entry, meta)?,
            Kind::HardLink(target) => self.hard_link(&at, &target)?,
        };
        self.seen.insert(path, seen);
        Ok(())
    }

    /// What the entry is, or why an image cannot hold it.
    fn kind(
        &self,
        entry: &tar::Entry<'_, impl Read>,
        raw_path: &[u8],
        shown: &str,
    ) -> Result<Kind, DebError> {
        let r = self.reader;
        let t = entry.header().entry_type();
        if t.is_dir() || (t.is_file() && raw_path.ends_with(b"/")) {
            Ok(Kind::Dir)
        } else if t.is_file() || t.is_contiguous() || t.is_gnu_sparse() {
            Ok(Kind::File)
        } else if t.is_symlink() {
            let target = entry.link_name_bytes().unwrap_or_default();
            let target = String::from_utf8(target.into_owned())
                .map_err(|_| r.malformed(shown, "is a symlink whose target is not UTF-8"))?;
            if target.is_empty() {
                return Err(r.malformed(shown, "is a symlink with an empty target"));
            }
            Ok(Kind::Symlink(target))
        } else if t.is_hard_link() {
            Ok(Kind::HardLink(
                entry.link_name_bytes().unwrap_or_default().into_owned(),
            ))
        } else if t.is_character_special() || t.is_block_special() || t.is_fifo() {
            let what = if t.is_fifo() {
                "a FIFO"
            } else {
                "a device node"
            };
            Err(r.malformed(
                shown,
                format!("is {what}, and images hold only files, directories and symlinks"),
            ))
        } else {
            Err(r.unsupported(format!(
                "{}: {shown} has tar entry type {:?}, which debless does not read; leave the package out of the rule or pin another version",
                self.member_name,
                t.as_byte() as char
            )))
        }
    }

    /// The entry's mode, owner and mtime (the PAX record's, when there is one).
    fn meta(&self, entry: &mut tar::Entry<'_, impl Read>, abs: &str) -> Result<Meta, DebError> {
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.broken(e))? & 0o7777;
        let uid = self.id(header.uid().map_err(|e| self.broken(e))?, abs)?;
        let gid = self.id(header.gid().map_err(|e| self.broken(e))?, abs)?;
        let mtime = match pax_mtime(entry).map_err(|e| self.broken(e))? {
            Some(t) => t,
            None => entry.header().mtime().map_err(|e| self.broken(e))?,
        };
        Ok(Meta {
            mode,
            uid,
            gid,
            mtime,
        })
    }

    /// A numeric owner that fits the image's 32-bit ids.
    fn id(&self, value: u64, abs: &str) -> Result<u32, DebError> {
        u32::try_from(value).map_err(|_| {
            self.reader
                .malformed(abs, format!("has owner/group id {value}, above 2^32"))
        })
    }

    /// Keep `kind` at `at` as the next candidate.
    fn push(&mut self, at: &Place<'_>, kind: EntryKind, meta: Meta) {
        self.out.push(Candidate {
            entry: Entry {
                path: at.path.to_owned(),
                kind,
                mode: meta.mode,
                uid: meta.uid,
                gid: meta.gid,
                mtime: meta.mtime,
                origin: self.reader.package.to_string(),
            },
            selected: at.selected,
        });
    }

    /// Directories are all kept for now: whether an unselected one stays depends on what
    /// is selected under it, which only the end of the scan knows.
    fn dir(&mut self, at: &Place<'_>, meta: Meta) -> Seen {
        self.push(at, EntryKind::Dir, meta);
        Seen::Dir
    }

    fn symlink(&mut self, at: &Place<'_>, target: String, meta: Meta) -> Result<Seen, DebError> {
        if at.selected {
            if paths::escapes_root(at.path, &target) {
                return Err(self.reader.bad_entry(
                    at.abs,
                    format!("is a symlink to {target}, which points above the image root; leave it out of `paths`"),
                ));
            }
            self.push(at, EntryKind::Symlink { target }, meta);
        }
        Ok(Seen::Symlink)
    }

    /// A regular file: its bytes are read only when it is selected.
    fn file(
        &mut self,
        at: &Place<'_>,
        entry: &mut tar::Entry<'_, impl Read>,
        meta: Meta,
    ) -> Result<Seen, DebError> {
        let next = self.out.len();
        let mut data = None;
        if at.selected {
            self.check_setuid(at.abs, meta.mode)?;
            let bytes = Arc::new(read_all(entry).map_err(|e| self.broken(e))?);
            data = Some(bytes.clone());
            self.push(
                at,
                EntryKind::File {
                    data: bytes,
                    link_group: None,
                },
                meta,
            );
        }
        Ok(Seen::File {
            root: at.path.to_owned(),
            out: at.selected.then_some(next),
            data,
            meta,
        })
    }

    /// A hard link: the same inode as a regular file earlier in the package, so it takes
    /// that file's bytes and metadata, and both join one link group.
    fn hard_link(&mut self, at: &Place<'_>, raw_target: &[u8]) -> Result<Seen, DebError> {
        let r = self.reader;
        let abs = at.abs;
        let outside = || {
            r.malformed(
                abs,
                format!(
                    "is a hard link to {}, which is outside the package",
                    String::from_utf8_lossy(raw_target)
                ),
            )
        };
        let target = match paths::normalise(raw_target) {
            Ok(Some(t)) => t,
            Ok(None) | Err(PathProblem::Absolute | PathProblem::DotDot) => {
                return Err(outside());
            }
            Err(PathProblem::NotUtf8) => {
                return Err(r.malformed(abs, "is a hard link whose target is not UTF-8"));
            }
        };
        let target = r.image_path(&target, &Kind::File)?;
        let root = match self.seen.get(&target) {
            Some(Seen::File { root, .. }) => root.clone(),
            Some(_) => {
                return Err(r.malformed(
                    abs,
                    format!("is a hard link to /{target}, which is not a regular file"),
                ));
            }
            None => {
                return Err(r.malformed(
                    abs,
                    format!(
                        "is a hard link to /{target}, which does not appear earlier in the package"
                    ),
                ));
            }
        };
        let Some(Seen::File {
            out: root_out,
            data: root_data,
            meta: root_meta,
            ..
        }) = self.seen.get(&root)
        else {
            return Err(outside());
        };
        let (root_out, root_data, root_meta) = (*root_out, root_data.clone(), *root_meta);
        // The group is a property of the package's inode, whichever paths are selected, so
        // the first path carries it even if this link is left out.
        let group = format!("{}:{root}", r.package);
        if let Some(EntryKind::File { link_group, .. }) = root_out
            .and_then(|i| self.out.get_mut(i))
            .map(|c| &mut c.entry.kind)
        {
            *link_group = Some(group.clone());
        }
        let mut out = None;
        if at.selected {
            self.check_setuid(abs, root_meta.mode)?;
            let next = self.out.len();
            let data = match &root_data {
                Some(d) => d.clone(),
                None => {
                    self.missing.entry(root.clone()).or_default().push(next);
                    Arc::default()
                }
            };
            // A hard link is the same inode, so it carries the first path's metadata.
            self.push(
                at,
                EntryKind::File {
                    data,
                    link_group: Some(group),
                },
                root_meta,
            );
            out = Some(next);
        }
        Ok(Seen::File {
            root,
            out,
            data: root_data,
            meta: root_meta,
        })
    }

    fn check_setuid(&self, abs: &str, mode: u32) -> Result<(), DebError> {
        if mode & 0o6000 != 0 && !self.reader.sel.allows_setuid(abs) {
            return Err(self.reader.bad_entry(
                abs,
                format!("is setuid/setgid (mode {mode:04o}); add it to `allow_setuid` in the rule if the image needs it, or leave it out of `paths`"),
            ));
        }
        Ok(())
    }
}

/// A raw archive path as messages show it: with one leading `/`.
fn shown(raw_path: &[u8]) -> String {
    let raw = String::from_utf8_lossy(raw_path);
    match raw.strip_prefix('/') {
        Some(_) => raw.into_owned(),
        None => format!("/{}", raw.trim_start_matches("./")),
    }
}

/// The PAX `mtime` record, which overrides the header's when it has more range or precision.
fn pax_mtime(entry: &mut tar::Entry<'_, impl Read>) -> io::Result<Option<u64>> {
    let Some(extensions) = entry.pax_extensions()? else {
        return Ok(None);
    };
    for ext in extensions {
        let ext = ext?;
        if ext.key_bytes() == b"mtime" {
            let value = String::from_utf8_lossy(ext.value_bytes());
            let seconds = value.split('.').next().unwrap_or_default();
            // Times before 1970 are clamped like the layer writer clamps everything else.
            return Ok(Some(seconds.parse::<i64>().map_or(0, |s| s.max(0) as u64)));
        }
    }
    Ok(None)
}
