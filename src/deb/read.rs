//! Streaming a .deb: ar members → decompressor → tar entries → selection → [`Entry`].

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

use super::ar;
use super::paths::{self, PathProblem};
use super::{DebError, Selection};
use crate::layer::{Entry, EntryKind};

/// Options that depend on the distro, not the package.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Move `/bin`, `/sbin`, `/lib*` contents under `/usr` (Debian 12 and later).
    pub merged_usr: bool,
    /// Stop with [`DebError::TooLarge`] once data.tar decompresses to more than this many
    /// bytes (a decompression bomb); `None` reads any size.
    pub max_data_bytes: Option<u64>,
}

/// What a .deb contributes.
#[derive(Debug, Clone)]
pub struct Deb {
    /// The control file (stanza) text from control.tar.
    pub control: String,
    /// The md5sums file from control.tar, if any.
    pub md5sums: Option<String>,
    /// Selected entries, in archive order, origin = package name.
    pub entries: Vec<Entry>,
    /// Include patterns that matched no path of the package (excluded paths count as
    /// matched: the pattern is not a typo, the exclude list just wins).
    pub unmatched: Vec<String>,
}

/// Read a .deb held in memory and keep the entries `sel` selects.
pub fn read_deb(
    bytes: &[u8],
    package: &str,
    sel: &Selection,
    opts: &ReadOptions,
) -> Result<Deb, DebError> {
    let reader = Reader { package, sel, opts };
    let (control_tar, data_tar) = reader.members(bytes)?;
    let (control, md5sums) = reader.control(&control_tar)?;
    let (entries, unmatched) = reader.data(&data_tar)?;
    Ok(Deb {
        control,
        md5sums,
        entries,
        unmatched,
    })
}

/// How a tar member of the .deb is compressed.
#[derive(Debug, Clone, Copy)]
enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

/// `control.tar*` or `data.tar*`, still compressed.
struct TarMember<'a> {
    name: String,
    data: &'a [u8],
    compression: Compression,
    /// At most this many decompressed bytes (data.tar only).
    limit: Option<u64>,
    /// Set when `limit` was exceeded.
    hit: Rc<Cell<bool>>,
}

impl<'a> TarMember<'a> {
    /// A reader of the uncompressed tar stream, straight from the .deb's bytes.
    fn open(&self) -> io::Result<Box<dyn Read + 'a>> {
        let raw: Box<dyn Read + 'a> = match self.compression {
            Compression::None => Box::new(self.data),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(self.data)),
            Compression::Xz if self.data.len() >= XZ_PARALLEL_FROM => {
                Box::new(XzParallel::new(self.data)?)
            }
            Compression::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(self.data)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(self.data)?),
        };
        Ok(match self.limit {
            Some(limit) => Box::new(Bounded {
                inner: raw,
                left: limit,
                hit: self.hit.clone(),
            }),
            None => raw,
        })
    }
}

/// Compressed size from which an xz member is decoded on several threads: Debian's
/// large packages are multi-block (dpkg-deb compresses them on threads), and one JRE
/// takes 4.6 s to decode on one core, 2.7 s on two.
const XZ_PARALLEL_FROM: usize = 8 << 20;

/// xz decoding on every thread of the pool, block by block, one stream after another
/// (like the single-threaded decoder's concatenated mode): the multithreaded decoder
/// stops at the end of a stream, so the next stream, after any null padding, gets a
/// decoder of its own.
struct XzParallel<'a> {
    current: liblzma::bufread::XzDecoder<&'a [u8]>,
}

impl<'a> XzParallel<'a> {
    fn new(data: &'a [u8]) -> io::Result<XzParallel<'a>> {
        Ok(XzParallel {
            current: Self::decoder(data)?,
        })
    }

    fn decoder(data: &'a [u8]) -> io::Result<liblzma::bufread::XzDecoder<&'a [u8]>> {
        let threads = rayon::current_num_threads().clamp(1, 16) as u32;
        let stream = liblzma::stream::MtStreamBuilder::new()
            .threads(threads)
            .memlimit_stop(u64::MAX)
            .decoder()
            .map_err(io::Error::other)?;
        Ok(liblzma::bufread::XzDecoder::new_stream(data, stream))
    }
}

impl Read for XzParallel<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let rest: &[u8] = self.current.get_ref();
            let rest = &rest[rest.iter().take_while(|b| **b == 0).count()..];
            if rest.is_empty() {
                return Ok(0);
            }
            self.current = Self::decoder(rest)?;
        }
    }
}

/// A decompressed stream that fails once it has yielded more than its budget. The tar
/// reader may wrap or reword the I/O error, so the flag, not the error, tells the caller
/// that the bound was hit.
struct Bounded<'a> {
    inner: Box<dyn Read + 'a>,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl Read for Bounded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Ask for one byte more than the budget so that a stream of exactly the budget
        // passes and one byte beyond it fails.
        let want = buf
            .len()
            .min(usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            self.hit.set(true);
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// What a tar entry is, once debless has decided it may be in an image.
enum Kind {
    Dir,
    File,
    Symlink(String),
    HardLink(Vec<u8>),
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
        /// Mode, uid, gid, mtime of the inode.
        meta: (u32, u32, u32, u64),
    },
}

/// An entry found in data.tar, before directories are decided.
struct Candidate {
    entry: Entry,
    /// Selected itself; otherwise a directory kept only if it is an ancestor of one that is.
    selected: bool,
}

/// One `read_deb` call's context.
struct Reader<'r> {
    package: &'r str,
    sel: &'r Selection,
    opts: &'r ReadOptions,
}

impl Reader<'_> {
    fn corrupt(&self, what: impl Into<String>) -> DebError {
        DebError::Corrupt {
            package: self.package.to_string(),
            what: what.into(),
        }
    }

    fn unsupported(&self, what: impl Into<String>) -> DebError {
        DebError::Unsupported {
            package: self.package.to_string(),
            what: what.into(),
        }
    }

    fn bad_entry(&self, path: &str, what: impl Into<String>) -> DebError {
        DebError::Entry {
            package: self.package.to_string(),
            path: path.to_string(),
            what: what.into(),
        }
    }

    /// An entry no sane package has: naming the way out once here keeps each message short.
    fn malformed(&self, path: &str, what: impl std::fmt::Display) -> DebError {
        self.bad_entry(
            path,
            format!("{what}; debless will not unpack such a package, so leave it out of the rule or pin another version"),
        )
    }

    /// Check the ar layout (`debian-binary`, `control.tar*`, `data.tar*`) and return the two
    /// tar members.
    fn members<'a>(&self, bytes: &'a [u8]) -> Result<(TarMember<'a>, TarMember<'a>), DebError> {
        let members = ar::members(bytes).map_err(|what| self.corrupt(what))?;
        let mut members = members.into_iter();
        match members.next() {
            Some(m) if m.name == "debian-binary" => {
                let version = String::from_utf8_lossy(m.data);
                let version = version.trim_end();
                if !version.starts_with("2.") {
                    return Err(self.unsupported(format!(
                        "debian-binary says format {version:?}; debless reads format 2.x .debs only"
                    )));
                }
            }
            Some(m) => {
                return Err(self.corrupt(format!(
                    "the first ar member is {:?}, not debian-binary, so this is not a .deb",
                    m.name
                )));
            }
            None => return Err(self.corrupt("the ar archive is empty")),
        }
        let mut control = None;
        for m in members {
            // dpkg reserves `_`-prefixed members for additions older readers must ignore.
            if m.name.starts_with('_') {
                continue;
            }
            let (stem, compression) = self.split_member(&m.name)?;
            let member = TarMember {
                name: m.name,
                data: m.data,
                compression,
                limit: if stem == "data.tar" {
                    self.opts.max_data_bytes
                } else {
                    None
                },
                hit: Rc::new(Cell::new(false)),
            };
            match (stem, control.is_some()) {
                ("control.tar", false) => control = Some(member),
                ("data.tar", true) => {
                    if let Some(control) = control {
                        return Ok((control, member));
                    }
                }
                _ => {
                    return Err(self.corrupt(format!(
                        "unexpected ar member {:?} (a .deb has debian-binary, control.tar, data.tar in that order)",
                        member.name
                    )));
                }
            }
        }
        Err(self.corrupt(match control {
            None => "it has no control.tar member",
            Some(_) => "it has no data.tar member",
        }))
    }

    /// `data.tar.xz` → (`data.tar`, xz); an unknown compression is an error.
    fn split_member(&self, name: &str) -> Result<(&'static str, Compression), DebError> {
        for stem in ["control.tar", "data.tar"] {
            let Some(ext) = name.strip_prefix(stem) else {
                continue;
            };
            let compression = match ext {
                "" => Compression::None,
                ".gz" => Compression::Gzip,
                ".xz" => Compression::Xz,
                ".zst" => Compression::Zstd,
                _ => {
                    return Err(self.unsupported(format!(
                        "member {name} uses a compression debless cannot read; it reads {stem}, {stem}.gz, {stem}.xz and {stem}.zst"
                    )));
                }
            };
            return Ok((stem, compression));
        }
        Err(self.corrupt(format!(
            "unexpected ar member {name:?} (a .deb has debian-binary, control.tar, data.tar in that order)"
        )))
    }

    /// Run `f` on every entry of a tar member, then read the stream to its end.
    fn walk<'a>(
        &self,
        member: &TarMember<'a>,
        mut f: impl FnMut(&mut tar::Entry<'_, Box<dyn Read + 'a>>) -> Result<(), DebError>,
    ) -> Result<(), DebError> {
        let name = &member.name;
        let too_large = || match member.limit {
            Some(limit) if member.hit.get() => Some(DebError::TooLarge {
                package: self.package.to_string(),
                member: name.clone(),
                limit,
            }),
            _ => None,
        };
        let broken =
            |e: io::Error| too_large().unwrap_or_else(|| self.corrupt(format!("{name}: {e}")));
        let mut archive = tar::Archive::new(member.open().map_err(broken)?);
        for entry in archive.entries().map_err(broken)? {
            // `f` reads file data and words its own errors; the bound wins over them.
            f(&mut entry.map_err(broken)?).map_err(|e| too_large().unwrap_or(e))?;
        }
        // A tar reader stops at the end-of-archive blocks, before the decompressor has seen
        // its trailer; reading on makes it check the trailer (CRC, sizes) and so catches a
        // truncated member.
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(broken)?;
        Ok(())
    }

    /// The control stanza and md5sums from control.tar.
    fn control(&self, member: &TarMember) -> Result<(String, Option<String>), DebError> {
        let mut control = None;
        let mut md5sums = None;
        self.walk(member, |entry| {
            if !entry.header().entry_type().is_file() {
                return Ok(());
            }
            let slot = match paths::normalise(&entry.path_bytes()).ok().flatten() {
                Some(p) if p == "control" => &mut control,
                Some(p) if p == "md5sums" => &mut md5sums,
                _ => return Ok(()),
            };
            let data =
                read_all(entry).map_err(|e| self.corrupt(format!("{}: {e}", member.name)))?;
            let text = String::from_utf8(data).map_err(|_| {
                self.corrupt(format!("{}: a control file is not UTF-8", member.name))
            })?;
            *slot = Some(text);
            Ok(())
        })?;
        let control =
            control.ok_or_else(|| self.corrupt(format!("{} has no control file", member.name)))?;
        Ok((control, md5sums))
    }

    /// The path an archive path gets in the image, or an error if it may not be in one.
    fn image_path(&self, shipped: &str, kind: &Kind) -> Result<String, DebError> {
        if !self.opts.merged_usr {
            return Ok(shipped.to_string());
        }
        match paths::merged_top(shipped) {
            Some(top) if top == shipped => match kind {
                Kind::Dir => Ok(format!("usr/{top}")),
                Kind::Symlink(target) if paths::is_merged_link(top, target) => {
                    Ok(shipped.to_string())
                }
                other => {
                    let what = match other {
                        Kind::Symlink(target) => format!("a symlink to {target}"),
                        _ => "a file".to_string(),
                    };
                    Err(self.bad_entry(
                        &format!("/{shipped}"),
                        format!(
                            "is {what}, but with merged /usr it may only be a directory (merged into /usr/{top}) or the symlink {top} -> usr/{top}; check the distro's merged_usr setting"
                        ),
                    ))
                }
            },
            _ => Ok(paths::merge_usr(shipped)),
        }
    }

    /// Select data.tar's entries; returns them in archive order and the unmatched includes.
    fn data(&self, member: &TarMember) -> Result<(Vec<Entry>, Vec<String>), DebError> {
        let mut scan = Scan {
            reader: self,
            member_name: &member.name,
            out: Vec::new(),
            seen: BTreeMap::new(),
            missing: BTreeMap::new(),
            matched: vec![false; self.sel.include_patterns().len()],
        };
        self.walk(member, |entry| scan.entry(entry))?;

        // Hard links whose first path was not selected still need the inode's bytes, which
        // the first pass skipped; such links are rare, so a second pass beats buffering
        // every unselected file.
        if !scan.missing.is_empty() {
            let mut missing = std::mem::take(&mut scan.missing);
            self.walk(member, |entry| {
                if !entry.header().entry_type().is_file() {
                    return Ok(());
                }
                let Ok(Some(shipped)) = paths::normalise(&entry.path_bytes()) else {
                    return Ok(());
                };
                let image = self.image_path(&shipped, &Kind::File)?;
                let Some(outs) = missing.remove(&image) else {
                    return Ok(());
                };
                let data = Arc::new(
                    read_all(entry).map_err(|e| self.corrupt(format!("{}: {e}", member.name)))?,
                );
                for i in outs {
                    if let Some(EntryKind::File { data: d, .. }) =
                        scan.out.get_mut(i).map(|c| &mut c.entry.kind)
                    {
                        *d = data.clone();
                    }
                }
                Ok(())
            })?;
            if let Some(path) = missing.keys().next() {
                return Err(self.corrupt(format!(
                    "{}: /{path} changed between two reads",
                    member.name
                )));
            }
        }

        // Directories the package ships are kept, with their own metadata, when selected or
        // when they lead to something selected.
        let mut ancestors = BTreeSet::new();
        for c in scan.out.iter().filter(|c| c.selected) {
            ancestors.extend(paths::ancestors(&c.entry.path).map(str::to_string));
        }
        let entries = scan
            .out
            .into_iter()
            .filter(|c| c.selected || ancestors.contains(&c.entry.path))
            .map(|c| c.entry)
            .collect();
        let unmatched = self
            .sel
            .include_patterns()
            .iter()
            .zip(&scan.matched)
            .filter(|(_, m)| !**m)
            .map(|(p, _)| p.clone())
            .collect();
        Ok((entries, unmatched))
    }
}

/// The first pass over data.tar.
struct Scan<'s> {
    reader: &'s Reader<'s>,
    member_name: &'s str,
    out: Vec<Candidate>,
    /// Every image path seen so far, selected or not.
    seen: BTreeMap<String, Seen>,
    /// Hard-link roots (image paths) whose bytes a second pass must read, with the output
    /// indices that need them.
    missing: BTreeMap<String, Vec<usize>>,
    /// Which include patterns matched some path.
    matched: Vec<bool>,
}

impl Scan<'_> {
    fn entry(&mut self, entry: &mut tar::Entry<'_, impl Read>) -> Result<(), DebError> {
        let r = self.reader;
        let member_name = self.member_name;
        let broken = |e: io::Error| r.corrupt(format!("{member_name}: {e}"));
        let header = entry.header();
        let entry_type = header.entry_type();
        if entry_type.is_pax_global_extensions() {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let shown = || {
            let raw = String::from_utf8_lossy(&raw_path);
            match raw.strip_prefix('/') {
                Some(_) => raw.into_owned(),
                None => format!("/{}", raw.trim_start_matches("./")),
            }
        };
        let shipped = match paths::normalise(&raw_path) {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(()),
            Err(problem) => return Err(r.malformed(&shown(), problem.describe())),
        };

        let kind = if entry_type.is_dir() || (entry_type.is_file() && raw_path.ends_with(b"/")) {
            Kind::Dir
        } else if entry_type.is_file() || entry_type.is_contiguous() || entry_type.is_gnu_sparse() {
            Kind::File
        } else if entry_type.is_symlink() {
            let target = entry.link_name_bytes().unwrap_or_default();
            let target = String::from_utf8(target.into_owned())
                .map_err(|_| r.malformed(&shown(), "is a symlink whose target is not UTF-8"))?;
            if target.is_empty() {
                return Err(r.malformed(&shown(), "is a symlink with an empty target"));
            }
            Kind::Symlink(target)
        } else if entry_type.is_hard_link() {
            Kind::HardLink(entry.link_name_bytes().unwrap_or_default().into_owned())
        } else if entry_type.is_character_special()
            || entry_type.is_block_special()
            || entry_type.is_fifo()
        {
            let what = if entry_type.is_fifo() {
                "a FIFO"
            } else {
                "a device node"
            };
            return Err(r.malformed(
                &shown(),
                format!("is {what}, and images hold only files, directories and symlinks"),
            ));
        } else {
            return Err(r.unsupported(format!(
                "{}: {} has tar entry type {:?}, which debless does not read; leave the package out of the rule or pin another version",
                self.member_name,
                shown(),
                entry_type.as_byte() as char
            )));
        };

        let path = r.image_path(&shipped, &kind)?;
        let abs = format!("/{path}");
        r.sel.note_include_matches(&abs, &mut self.matched);

        let mode = header.mode().map_err(broken)? & 0o7777;
        let uid = id(header.uid().map_err(broken)?, &abs, r)?;
        let gid = id(header.gid().map_err(broken)?, &abs, r)?;
        let mtime = match pax_mtime(entry).map_err(broken)? {
            Some(t) => t,
            None => entry.header().mtime().map_err(broken)?,
        };

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
        let origin = r.package.to_string();
        let make = |kind: EntryKind, meta: (u32, u32, u32, u64)| Entry {
            path: path.clone(),
            kind,
            mode: meta.0,
            uid: meta.1,
            gid: meta.2,
            mtime: meta.3,
            origin: origin.clone(),
        };
        let meta = (mode, uid, gid, mtime);
        let next = self.out.len();
        let seen = match kind {
            Kind::Dir => {
                self.out.push(Candidate {
                    entry: make(EntryKind::Dir, meta),
                    selected,
                });
                Seen::Dir
            }
            Kind::Symlink(target) => {
                if selected {
                    if paths::escapes_root(&path, &target) {
                        return Err(r.bad_entry(
                            &abs,
                            format!("is a symlink to {target}, which points above the image root; leave it out of `paths`"),
                        ));
                    }
                    self.out.push(Candidate {
                        entry: make(EntryKind::Symlink { target }, meta),
                        selected,
                    });
                }
                Seen::Symlink
            }
            Kind::File => {
                let mut data = None;
                if selected {
                    self.check_setuid(&abs, mode)?;
                    let bytes = Arc::new(read_all(entry).map_err(broken)?);
                    data = Some(bytes.clone());
                    self.out.push(Candidate {
                        entry: make(
                            EntryKind::File {
                                data: bytes,
                                link_group: None,
                            },
                            meta,
                        ),
                        selected,
                    });
                }
                Seen::File {
                    root: path.clone(),
                    out: selected.then_some(next),
                    data,
                    meta,
                }
            }
            Kind::HardLink(raw_target) => {
                let outside = || {
                    r.malformed(
                        &abs,
                        format!(
                            "is a hard link to {}, which is outside the package",
                            String::from_utf8_lossy(&raw_target)
                        ),
                    )
                };
                let target = match paths::normalise(&raw_target) {
                    Ok(Some(t)) => t,
                    Ok(None) | Err(PathProblem::Absolute | PathProblem::DotDot) => {
                        return Err(outside());
                    }
                    Err(PathProblem::NotUtf8) => {
                        return Err(r.malformed(&abs, "is a hard link whose target is not UTF-8"));
                    }
                };
                let target = r.image_path(&target, &Kind::File)?;
                let root = match self.seen.get(&target) {
                    Some(Seen::File { root, .. }) => root.clone(),
                    Some(_) => {
                        return Err(r.malformed(
                            &abs,
                            format!("is a hard link to /{target}, which is not a regular file"),
                        ));
                    }
                    None => {
                        return Err(r.malformed(
                            &abs,
                            format!("is a hard link to /{target}, which does not appear earlier in the package"),
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
                // The group is a property of the package's inode, whichever paths are
                // selected, so the first path carries it even if this link is left out.
                let group = format!("{}:{root}", r.package);
                if let Some(EntryKind::File { link_group, .. }) = root_out
                    .and_then(|i| self.out.get_mut(i))
                    .map(|c| &mut c.entry.kind)
                {
                    *link_group = Some(group.clone());
                }
                let mut out = None;
                if selected {
                    self.check_setuid(&abs, root_meta.0)?;
                    let data = match &root_data {
                        Some(d) => d.clone(),
                        None => {
                            self.missing.entry(root.clone()).or_default().push(next);
                            Arc::default()
                        }
                    };
                    // A hard link is the same inode, so it carries the first path's metadata.
                    self.out.push(Candidate {
                        entry: make(
                            EntryKind::File {
                                data,
                                link_group: Some(group),
                            },
                            root_meta,
                        ),
                        selected,
                    });
                    out = Some(next);
                }
                Seen::File {
                    root,
                    out,
                    data: root_data,
                    meta: root_meta,
                }
            }
        };
        self.seen.insert(path, seen);
        Ok(())
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

/// A numeric owner that fits the image's 32-bit ids.
fn id(value: u64, abs: &str, r: &Reader) -> Result<u32, DebError> {
    u32::try_from(value)
        .map_err(|_| r.malformed(abs, format!("has owner/group id {value}, above 2^32")))
}

/// A tar entry's whole content, checking none is missing: the tar reader hands out short
/// data without complaint when the stream ends early.
fn read_all(entry: &mut tar::Entry<'_, impl Read>) -> io::Result<Vec<u8>> {
    let size = entry.size();
    // Reserved exactly, so a big file is never copied while it grows (a JRE's 130 MB
    // `modules` would otherwise be reallocated a dozen times). A lying header costs only
    // address space: pages are not resident until written. Beyond 512 MiB, or when the
    // system refuses the reservation, the buffer grows from 1 MiB as the data arrives.
    let mut data = Vec::new();
    if usize::try_from(size)
        .ok()
        .filter(|n| *n <= 512 << 20)
        .and_then(|n| data.try_reserve_exact(n).ok())
        .is_none()
    {
        data.reserve(size.min(1 << 20) as usize);
    }
    entry.read_to_end(&mut data)?;
    if data.len() as u64 != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file data ends after {} of {size} bytes", data.len()),
        ));
    }
    Ok(data)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::testdeb::{
        EPOCH, PackageDir, Raw, compress, deb_with, hostile, raw_ar, raw_tar,
    };
    use tar::EntryType;

    fn xz(data: &[u8], block_size: u64) -> Vec<u8> {
        let stream = liblzma::stream::MtStreamBuilder::new()
            .threads(2)
            .block_size(block_size)
            .preset(1)
            .encoder()
            .unwrap();
        let mut e = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn parallel_xz_reads_multi_block_and_concatenated_streams() {
        let a: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let b = b"the second stream".repeat(1000);
        // Four blocks, then null stream padding, then a second stream.
        let mut data = xz(&a, a.len() as u64 / 4);
        data.extend_from_slice(&[0; 8]);
        data.extend_from_slice(&xz(&b, 1 << 20));
        let mut out = Vec::new();
        XzParallel::new(&data)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), a.len() + b.len());
        assert!(out[..a.len()] == a[..] && out[a.len()..] == b[..]);
        // Garbage after a stream is an error, not silently ignored.
        let mut bad = xz(&a, 1 << 20);
        bad.extend_from_slice(b"junk");
        let mut sink = Vec::new();
        assert!(
            XzParallel::new(&bad)
                .unwrap()
                .read_to_end(&mut sink)
                .is_err()
        );
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const FLAT: ReadOptions = ReadOptions {
        merged_usr: false,
        max_data_bytes: None,
    };
    const MERGED: ReadOptions = ReadOptions {
        merged_usr: true,
        max_data_bytes: None,
    };

    /// One line per entry: kind, mode, path and what it holds or points to.
    fn summary(deb: &Deb) -> Vec<String> {
        deb.entries
            .iter()
            .map(|e| match &e.kind {
                EntryKind::Dir => format!("d {:04o} {}", e.mode, e.path),
                EntryKind::File { data, link_group } => format!(
                    "f {:04o} {} {:?}{}",
                    e.mode,
                    e.path,
                    String::from_utf8_lossy(data),
                    link_group
                        .as_ref()
                        .map(|g| format!(" [{g}]"))
                        .unwrap_or_default()
                ),
                EntryKind::Symlink { target } => format!("l {} -> {target}", e.path),
            })
            .collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    const LONG_DIR: &str =
        "usr/share/a-directory-name-that-is-quite-long/and-another-one-that-is-long-too";
    const LONG_FILE: &str =
        "a-file-name-that-pushes-the-whole-path-well-past-one-hundred-bytes.txt";

    /// A package using everything dpkg-deb can put in data.tar that an image may hold.
    fn sample() -> PackageDir {
        let p = PackageDir::new("hello");
        p.dir("usr", 0o755)
            .dir("usr/bin", 0o755)
            .file("usr/bin/hello", b"hi", 0o755)
            .hardlink("usr/bin/hello2", "usr/bin/hello")
            .symlink("usr/bin/hi", "hello")
            .file("usr/bin/su", b"root", 0o4755)
            .file(&format!("{LONG_DIR}/{LONG_FILE}"), b"long", 0o644)
            .dir("var/cache", 0o700);
        p
    }

    fn sample_expected() -> Vec<String> {
        let mut v = strings(&[
            "d 0755 usr",
            "d 0755 usr/bin",
            "f 0755 usr/bin/hello \"hi\" [hello:usr/bin/hello]",
            "f 0755 usr/bin/hello2 \"hi\" [hello:usr/bin/hello]",
            "l usr/bin/hi -> hello",
            "f 4755 usr/bin/su \"root\"",
            "d 0755 usr/share",
            "d 0755 var",
            "d 0700 var/cache",
        ]);
        v.push(format!("d 0755 {}", LONG_DIR.rsplit_once('/').unwrap().0));
        v.push(format!("d 0755 {LONG_DIR}"));
        v.push(format!("f 0644 {LONG_DIR}/{LONG_FILE} \"long\""));
        sorted(v)
    }

    #[test]
    fn every_compression_yields_the_same_entries() {
        let p = sample();
        let sel = Selection::new(None, &[], &[], &strings(&["/usr/bin/su"])).unwrap();
        for z in ["none", "gzip", "xz", "zstd"] {
            let deb = read_deb(&p.build(z), "hello", &sel, &FLAT).unwrap();
            assert_eq!(sorted(summary(&deb)), sample_expected(), "-Z{z}");
            assert!(deb.control.starts_with("Package: hello\n"), "-Z{z}");
            assert_eq!(deb.md5sums, None);
            assert!(
                deb.entries
                    .iter()
                    .all(|e| e.origin == "hello" && e.uid == 0 && e.gid == 0)
            );
            assert!(deb.entries.iter().all(|e| e.mtime == EPOCH), "-Z{z}");
            assert!(deb.unmatched.is_empty());
            // Hard links share one buffer, so the layer writer can store it once.
            let data = |path: &str| match &deb.entries.iter().find(|e| e.path == path).unwrap().kind
            {
                EntryKind::File { data, .. } => data.clone(),
                other => panic!("{path} is {other:?}"),
            };
            assert!(Arc::ptr_eq(&data("usr/bin/hello"), &data("usr/bin/hello2")));
        }
    }

    #[test]
    fn md5sums_come_from_control_tar() {
        let p = PackageDir::new("m");
        p.file("usr/bin/x", b"x", 0o755)
            .control_file("md5sums", "9dd4e461268c8034f5c8564e155c67a6  usr/bin/x\n");
        let deb = read_deb(&p.build("xz"), "m", &Selection::everything(), &FLAT).unwrap();
        assert_eq!(
            deb.md5sums.as_deref(),
            Some("9dd4e461268c8034f5c8564e155c67a6  usr/bin/x\n")
        );
        assert!(deb.control.contains("Version: 1.0-1\n"));
    }

    #[test]
    fn entries_keep_archive_order() {
        let deb = hostile(&[
            Raw::file("./z", b"1"),
            Raw::dir("./a/"),
            Raw::file("./a/b", b"2"),
        ]);
        let deb = read_deb(&deb, "p", &Selection::everything(), &FLAT).unwrap();
        let paths: Vec<_> = deb.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["z", "a", "a/b"]);
    }

    #[test]
    fn include_selects_files_their_shipped_parents_and_matching_dirs() {
        let p = sample();
        p.dir("tmp", 0o1777);
        let inc = strings(&["/usr/bin/hello", "/tmp", "/usr/lib/typo"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
        let deb = read_deb(&p.build("zstd"), "hello", &sel, &FLAT).unwrap();
        assert_eq!(
            sorted(summary(&deb)),
            strings(&[
                "d 0755 usr",
                "d 0755 usr/bin",
                "d 1777 tmp",
                // The group stays though hello2 is left out: it is the package's inode.
                "f 0755 usr/bin/hello \"hi\" [hello:usr/bin/hello]",
            ])
        );
        assert_eq!(deb.unmatched, ["/usr/lib/typo"]);
    }

    #[test]
    fn exclude_drops_docs_and_keep_brings_copyright_back() {
        let p = PackageDir::new("doc");
        p.file("usr/bin/x", b"x", 0o755)
            .file("usr/share/doc/doc/copyright", b"(c)", 0o644)
            .file("usr/share/doc/doc/README", b"read me", 0o644)
            .file("usr/share/man/man1/x.1.gz", b"man", 0o644)
            .dir("usr/share/man/man8", 0o755)
            .dir("var/cache", 0o755);
        let exclude = strings(&["/usr/share/doc/**", "/usr/share/man", "/usr/share/man/**"]);
        let keep = strings(&["/usr/share/doc/*/copyright"]);
        let sel = Selection::new(None, &exclude, &keep, &[]).unwrap();
        let deb = read_deb(&p.build("gzip"), "doc", &sel, &FLAT).unwrap();
        assert_eq!(
            sorted(summary(&deb)),
            strings(&[
                "d 0755 usr",
                "d 0755 usr/bin",
                "d 0755 usr/share",
                "d 0755 usr/share/doc",
                "d 0755 usr/share/doc/doc",
                "d 0755 var",
                "d 0755 var/cache",
                "f 0644 usr/share/doc/doc/copyright \"(c)\"",
                "f 0755 usr/bin/x \"x\"",
            ])
        );
    }

    #[test]
    fn a_link_whose_target_is_left_out_still_carries_the_bytes() {
        let p = sample();
        let inc = strings(&["/usr/bin/hello2"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
        let deb = read_deb(&p.build("xz"), "hello", &sel, &FLAT).unwrap();
        assert_eq!(
            summary(&deb),
            strings(&[
                "d 0755 usr",
                "d 0755 usr/bin",
                "f 0755 usr/bin/hello2 \"hi\" [hello:usr/bin/hello]",
            ])
        );
    }

    #[test]
    fn setuid_needs_an_allowance_unless_left_out() {
        let p = sample();
        let bytes = p.build("none");
        let err = read_deb(&bytes, "hello", &Selection::everything(), &FLAT).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("package hello: /usr/bin/su: is setuid/setgid (mode 4755)"),
            "{msg}"
        );
        assert!(
            msg.contains("`allow_setuid`") && msg.contains("`paths`"),
            "{msg}"
        );

        let inc = strings(&["/usr/bin/hello"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
        assert!(read_deb(&bytes, "hello", &sel, &FLAT).is_ok());
    }

    #[test]
    fn merged_usr_moves_top_level_directories_under_usr() {
        let p = PackageDir::new("libc");
        p.dir("lib", 0o755)
            .file("lib/x86_64-linux-gnu/libc.so.6", b"libc", 0o755)
            .file("sbin/ldconfig", b"ldconfig", 0o755)
            .file("usr/lib/x86_64-linux-gnu/libm.so.6", b"libm", 0o644)
            .symlink("lib64", "usr/lib64");
        let bytes = p.build("xz");
        let inc = strings(&["/usr/lib/*/libc.so.6", "/lib64"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();

        let deb = read_deb(&bytes, "libc", &sel, &MERGED).unwrap();
        assert_eq!(
            sorted(summary(&deb)),
            strings(&[
                "d 0755 usr",
                "d 0755 usr/lib",
                "d 0755 usr/lib/x86_64-linux-gnu",
                "f 0755 usr/lib/x86_64-linux-gnu/libc.so.6 \"libc\"",
                // Already the merged link: kept where it is.
                "l lib64 -> usr/lib64",
            ])
        );
        assert!(deb.unmatched.is_empty());

        let deb = read_deb(&bytes, "libc", &Selection::everything(), &MERGED).unwrap();
        let paths: Vec<_> = deb.entries.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"usr/sbin/ldconfig"), "{paths:?}");
        // /lib and /usr/lib are one directory once merged.
        assert_eq!(
            paths.iter().filter(|p| **p == "usr/lib").count(),
            1,
            "{paths:?}"
        );
        assert!(
            paths
                .iter()
                .all(|p| !p.starts_with("lib/") && !p.starts_with("sbin"))
        );

        // Without merged /usr nothing moves, so the glob finds nothing.
        let deb = read_deb(&bytes, "libc", &sel, &FLAT).unwrap();
        assert_eq!(summary(&deb), ["l lib64 -> usr/lib64"]);
        assert_eq!(deb.unmatched, ["/usr/lib/*/libc.so.6"]);
    }

    #[test]
    fn merged_usr_rejects_other_objects_at_top_level_names() {
        for (raw, what) in [
            (Raw::file("./lib", b"x"), "is a file"),
            (
                Raw::link(EntryType::Symlink, "./bin", "usr/sbin"),
                "is a symlink to usr/sbin",
            ),
        ] {
            let err = read_deb(&hostile(&[raw]), "p", &Selection::everything(), &MERGED)
                .unwrap_err()
                .to_string();
            assert!(err.contains("package p: /") && err.contains(what), "{err}");
            assert!(err.contains("merged /usr"), "{err}");
        }
    }

    #[test]
    fn merged_usr_rejects_a_path_shipped_twice() {
        let deb = hostile(&[Raw::file("./bin/x", b"1"), Raw::file("./usr/bin/x", b"2")]);
        let err = read_deb(&deb, "p", &Selection::everything(), &MERGED).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("package p: /usr/bin/x: appears twice"),
            "{err}"
        );
        assert!(read_deb(&deb, "p", &Selection::everything(), &FLAT).is_ok());
    }

    fn hostile_error(entries: &[Raw]) -> String {
        read_deb(&hostile(entries), "evil", &Selection::everything(), &FLAT)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unsafe_paths_are_rejected_with_package_and_path() {
        let err = hostile_error(&[Raw::file("/etc/passwd", b"x")]);
        assert_eq!(
            err,
            "package evil: /etc/passwd: is an absolute path inside the archive; debless will not unpack such a package, so leave it out of the rule or pin another version"
        );
        let err = hostile_error(&[Raw::file("./usr/../../etc/shadow", b"x")]);
        assert_eq!(
            err,
            "package evil: /usr/../../etc/shadow: has a `..` component; debless will not unpack such a package, so leave it out of the rule or pin another version"
        );
    }

    #[test]
    fn device_nodes_and_fifos_are_rejected() {
        for (kind, what) in [
            (EntryType::Char, "a device node"),
            (EntryType::Block, "a device node"),
            (EntryType::Fifo, "a FIFO"),
        ] {
            let raw = Raw {
                kind,
                ..Raw::file("./dev/null", b"")
            };
            let err = hostile_error(&[raw]);
            assert!(
                err.starts_with(&format!("package evil: /dev/null: is {what}")),
                "{err}"
            );
        }
    }

    #[test]
    fn symlinks_may_not_climb_above_the_root() {
        let escaping = Raw::link(EntryType::Symlink, "./usr/lib/x", "../../../etc/shadow");
        let err = hostile_error(&[escaping]);
        assert!(
            err.starts_with("package evil: /usr/lib/x: is a symlink to ../../../etc/shadow"),
            "{err}"
        );

        // Absolute targets are inside the image by definition; two levels up is the root.
        let fine = [
            Raw::link(EntryType::Symlink, "./usr/lib/y", "/etc/shadow"),
            Raw::link(EntryType::Symlink, "./usr/lib/z", "../../etc/shadow"),
        ];
        let deb = read_deb(&hostile(&fine), "p", &Selection::everything(), &FLAT).unwrap();
        assert_eq!(
            summary(&deb),
            [
                "l usr/lib/y -> /etc/shadow",
                "l usr/lib/z -> ../../etc/shadow"
            ]
        );

        // Left out of the image, it cannot do harm.
        let escaping = Raw::link(EntryType::Symlink, "./usr/lib/x", "../../../etc/shadow");
        let inc = strings(&["/usr/bin/*"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
        assert!(read_deb(&hostile(&[escaping]), "p", &sel, &FLAT).is_ok());
    }

    #[test]
    fn hard_links_must_point_back_into_the_package() {
        let err = hostile_error(&[Raw::link(EntryType::Link, "./usr/bin/a", "./usr/bin/b")]);
        assert_eq!(
            err,
            "package evil: /usr/bin/a: is a hard link to /usr/bin/b, which does not appear earlier in the package; debless will not unpack such a package, so leave it out of the rule or pin another version"
        );
        let err = hostile_error(&[Raw::link(EntryType::Link, "./usr/bin/a", "/etc/shadow")]);
        assert!(
            err.starts_with(
                "package evil: /usr/bin/a: is a hard link to /etc/shadow, which is outside"
            ),
            "{err}"
        );
        let err = hostile_error(&[Raw::link(EntryType::Link, "./usr/bin/a", "../etc/shadow")]);
        assert!(err.contains("outside the package"), "{err}");
        let err = hostile_error(&[
            Raw::dir("./usr/"),
            Raw::link(EntryType::Link, "./usr/bin/a", "./usr"),
        ]);
        assert!(err.contains("which is not a regular file"), "{err}");
    }

    #[test]
    fn a_link_to_a_link_joins_the_first_files_group() {
        let deb = hostile(&[
            Raw::file("./a", b"data"),
            Raw::link(EntryType::Link, "./b", "./a"),
            Raw::link(EntryType::Link, "./c", "./b"),
        ]);
        let inc = strings(&["/c"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
        let deb = read_deb(&deb, "p", &sel, &FLAT).unwrap();
        assert_eq!(summary(&deb), ["f 0644 c \"data\" [p:a]"]);
    }

    #[test]
    fn data_tar_beyond_the_bound_is_refused_without_reading_it_all() {
        // 64 MiB of zeros compress to a few KiB: a bomb next to a 4 KiB Installed-Size.
        let p = PackageDir::new("bomb");
        p.file("usr/share/zeros", &vec![0u8; 64 << 20], 0o644);
        let deb = p.build("xz");
        assert!(deb.len() < 1 << 20, "the bomb is small on the wire");
        for sel in [
            Selection::everything(),
            Selection::new(Some(&strings(&["/usr/bin/*"])), &[], &[], &[]).unwrap(),
        ] {
            let opts = ReadOptions {
                merged_usr: true,
                max_data_bytes: Some(1 << 20),
            };
            let err = read_deb(&deb, "bomb", &sel, &opts).unwrap_err();
            assert!(
                matches!(err, DebError::TooLarge { limit, .. } if limit == 1 << 20),
                "{err}"
            );
            assert!(
                err.to_string().starts_with(
                    "package bomb: data.tar.xz decompresses to more than 1048576 bytes"
                ),
                "{err}"
            );
        }
        // The same package within its bound reads; control.tar does not count against it.
        let small = PackageDir::new("small");
        small.file("usr/share/a", &[1u8; 1000], 0o644);
        let deb = small.build("gzip");
        let opts = ReadOptions {
            merged_usr: true,
            max_data_bytes: Some(10 << 10),
        };
        read_deb(&deb, "small", &Selection::everything(), &opts).unwrap();
    }

    #[test]
    fn unknown_compression_is_named() {
        let deb = deb_with("data.tar.bz2", b"BZh9");
        let err = read_deb(&deb, "old", &Selection::everything(), &FLAT).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("package old: member data.tar.bz2 uses a compression"),
            "{msg}"
        );
        assert!(matches!(err, DebError::Unsupported { .. }));
    }

    #[test]
    fn only_format_2_is_read() {
        let control = raw_tar(&[Raw::file("./control", b"Package: x\n")]);
        let data = raw_tar(&[]);
        let deb = raw_ar(&[
            ("debian-binary", b"3.0\n"),
            ("control.tar", &control),
            ("data.tar", &data),
        ]);
        let err = read_deb(&deb, "x", &Selection::everything(), &FLAT).unwrap_err();
        assert!(err.to_string().contains("format \"3.0\""), "{err}");
        // Members dpkg reserves for extensions are skipped.
        let deb = raw_ar(&[
            ("debian-binary", b"2.0\n"),
            ("_gpgorigin", b"sig"),
            ("control.tar", &control),
            ("data.tar", &data),
        ]);
        assert!(read_deb(&deb, "x", &Selection::everything(), &FLAT).is_ok());
    }

    #[test]
    fn missing_members_and_control_are_corrupt() {
        let control = raw_tar(&[Raw::file("./control", b"Package: x\n")]);
        let data = raw_tar(&[]);
        let cases: [(Vec<u8>, &str); 3] = [
            (
                raw_ar(&[("debian-binary", b"2.0\n"), ("control.tar", &control)]),
                "no data.tar member",
            ),
            (
                raw_ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("data.tar", &data),
                    ("control.tar", &control),
                ]),
                "unexpected ar member \"data.tar\"",
            ),
            (
                raw_ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar", &data),
                    ("data.tar", &data),
                ]),
                "control.tar has no control file",
            ),
        ];
        for (deb, what) in cases {
            let err = read_deb(&deb, "x", &Selection::everything(), &FLAT).unwrap_err();
            assert!(matches!(err, DebError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains(what), "{err}");
        }
    }

    fn assert_corrupt(bytes: &[u8], why: &str) {
        match read_deb(bytes, "hello", &Selection::everything(), &FLAT) {
            Err(e @ DebError::Corrupt { .. }) => {
                let msg = e.to_string();
                assert!(msg.starts_with("package hello: "), "{why}: {msg}");
                assert!(
                    msg.ends_with("re-fetch it with `debless fetch --verify`"),
                    "{why}: {msg}"
                );
                assert!(!msg.contains('\n'), "{why}: {msg}");
            }
            other => panic!("{why}: expected a corrupt-package error, got {other:?}"),
        }
    }

    #[test]
    fn garbage_and_truncated_debs_are_corrupt() {
        assert_corrupt(b"", "empty");
        assert_corrupt(b"this is not a deb at all", "garbage");
        assert_corrupt(b"!<arch>\nshort", "short header");
        let p = PackageDir::new("hello");
        p.file("usr/bin/hello", b"hi", 0o755);
        let bytes = p.build("xz");
        // Cutting at least two bytes always loses real data, even after an odd member's pad.
        for cut in 0..bytes.len() - 1 {
            assert_corrupt(&bytes[..cut], &format!("cut at {cut}"));
        }
    }

    #[test]
    fn truncated_streams_inside_whole_members_are_corrupt() {
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let tar = raw_tar(&[Raw::file("./usr/share/big", &big)]);
        for ext in ["gz", "xz", "zst"] {
            let packed = compress(ext, &tar);
            for cut in [packed.len() / 2, packed.len() - 4, packed.len() - 1] {
                let deb = deb_with(&format!("data.tar.{ext}"), &packed[..cut]);
                assert_corrupt(&deb, &format!("{ext} cut at {cut}"));
            }
            // Whole, it reads.
            let deb = deb_with(&format!("data.tar.{ext}"), &packed);
            assert!(
                read_deb(&deb, "hello", &Selection::everything(), &FLAT).is_ok(),
                "{ext}"
            );
        }
        // An uncompressed tar cut inside the file's data.
        assert_corrupt(&deb_with("data.tar", &tar[..100_000]), "tar cut in data");
        assert_corrupt(&deb_with("data.tar", &tar[..300]), "tar cut in header");
    }

    #[test]
    fn damaged_bytes_never_panic() {
        let p = sample();
        let sel = Selection::new(None, &[], &[], &strings(&["/usr/bin/su"])).unwrap();
        for z in ["none", "gzip", "xz", "zstd"] {
            let bytes = p.build(z);
            // A cheap deterministic generator: every position class gets hit, no dependency.
            let mut state = 0x2545_f491_4f6c_dd1du64;
            for _ in 0..300 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let mut damaged = bytes.clone();
                let at = (state % damaged.len() as u64) as usize;
                damaged[at] ^= (state >> 32) as u8 | 1;
                let _ = read_deb(&damaged, "hello", &sel, &MERGED);
            }
        }
    }
}
