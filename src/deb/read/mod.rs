//! Streaming a .deb: ar members → decompressor → tar entries → selection → [`Entry`].
//!
//! This file checks the ar layout and reads control.tar; `decompress` opens the tar
//! members, `scan` takes data.tar's entries one by one.
//!
//! Everything a package can make debless hold is bounded by `max_data_bytes` before it is
//! held: each tar member's decompressed stream (control.tar as well as data.tar), and what
//! the package yields for the image, counted as a layer tar would spend it (a header and
//! the path per entry, the bytes of each file as read, and the parent directories its
//! paths imply that it does not ship). The second bound is what catches entries that
//! expand when read (a GNU sparse file is refused outright; a long path implying a
//! thousand parents pays for each), so memory and output stay linear in the input.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;

use super::ar;
use super::paths;
use super::{DebError, Selection};
use crate::layer::{Entry, EntryKind};
use decompress::{Compression, TarMember};
use scan::{Kind, Scan};

mod decompress;
mod scan;
pub mod tarball;

pub use decompress::max_data_bytes;

/// Options that depend on the distro, not the package.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// Move `/bin`, `/sbin`, `/lib*` contents under `/usr` (Debian 12 and later).
    pub merged_usr: bool,
    /// Stop with [`DebError::TooLarge`] once control.tar or data.tar decompresses to more
    /// than this many bytes (a decompression bomb), and with [`DebError::Expands`] once the
    /// package would yield more than this for the image; `None` reads any size.
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
    /// Exclude patterns that matched no path of the package.
    pub unmatched_excludes: Vec<String>,
}

/// Read a .deb held in memory and keep the entries `sel` selects.
pub fn read_deb(
    bytes: &[u8],
    package: &str,
    sel: &Selection,
    opts: &ReadOptions,
) -> Result<Deb, DebError> {
    let reader = Reader {
        package,
        sel,
        opts,
        left: Cell::new(opts.max_data_bytes),
        relocation: None,
    };
    let (control_tar, data_tar) = reader.members(bytes)?;
    let (control, md5sums) = reader.control(&control_tar)?;
    let Selected {
        entries,
        unmatched,
        unmatched_excludes,
    } = reader.data(&data_tar)?;
    Ok(Deb {
        control,
        md5sums,
        entries,
        unmatched,
        unmatched_excludes,
    })
}

/// One `read_deb` (or `read_tarball`) call's context.
struct Reader<'r> {
    /// The package, or `tarball:<name>`: messages name it, entries carry it as origin.
    package: &'r str,
    sel: &'r Selection,
    opts: &'r ReadOptions,
    /// What the package may still yield for the image (`None`: no bound).
    left: Cell<Option<u64>>,
    /// An upstream tarball's top directory and where it goes; `None` for a .deb.
    relocation: Option<&'r tarball::Relocation>,
}

/// What a layer tar spends on an entry besides its path and data: one header block.
pub(super) const ENTRY_COST: u64 = 512;

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

    /// Count `bytes` against what the package may yield for the image, failing once the
    /// bound is passed.
    fn charge(&self, member: &str, bytes: u64) -> Result<(), DebError> {
        let Some(left) = self.left.get() else {
            return Ok(());
        };
        match left.checked_sub(bytes) {
            Some(rest) => {
                self.left.set(Some(rest));
                Ok(())
            }
            None => Err(self.expands(member)),
        }
    }

    fn expands(&self, member: &str) -> DebError {
        DebError::Expands {
            package: self.package.to_string(),
            member: member.to_string(),
            limit: self.opts.max_data_bytes.unwrap_or(u64::MAX),
        }
    }

    /// A tar entry's whole content, held only as far as the package's bound allows.
    fn read_file(
        &self,
        member: &str,
        entry: &mut tar::Entry<'_, impl Read>,
    ) -> Result<Vec<u8>, DebError> {
        // A file its member's whole bound could not hold is a decompression bomb, whatever
        // is left of the yield.
        let bomb = self.opts.max_data_bytes.is_some_and(|b| entry.size() > b);
        let data = read_all(entry, self.left.get()).map_err(|e| match e {
            ReadFail::Over if bomb => DebError::TooLarge {
                package: self.package.to_string(),
                member: member.to_string(),
                limit: self.opts.max_data_bytes.unwrap_or(u64::MAX),
            },
            ReadFail::Over => self.expands(member),
            ReadFail::Io(e) => self.corrupt(format!("{member}: {e}")),
        })?;
        self.charge(member, data.len() as u64)?;
        Ok(data)
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
        let members = ar::members(bytes).map_err(|e| self.corrupt(e.to_string()))?;
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
                // control.tar too: its md5sums lists each file of data.tar in fewer bytes
                // than data.tar spends on the file's header, and its scripts fit the 1 MiB.
                limit: self.opts.max_data_bytes,
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
            // Held apart from what the package yields for the image: bounded by the
            // member's own bound (a file cannot be larger than its member).
            let data = read_all(entry, self.opts.max_data_bytes).map_err(|e| match e {
                ReadFail::Over => DebError::TooLarge {
                    package: self.package.to_string(),
                    member: member.name.clone(),
                    limit: self.opts.max_data_bytes.unwrap_or(u64::MAX),
                },
                ReadFail::Io(e) => self.corrupt(format!("{}: {e}", member.name)),
            })?;
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
    /// An upstream tarball's paths are first moved from its top directory to the rule's
    /// prefix (the image root itself comes back empty).
    fn image_path(&self, shipped: &str, kind: &Kind) -> Result<String, DebError> {
        let relocated;
        let shipped = match self.relocation {
            None => shipped,
            Some(r) => {
                relocated = r.place(shipped).ok_or_else(|| {
                    self.bad_entry(
                        &format!("/{shipped}"),
                        format!(
                            "is outside the tarball's top directory {}/; an upstream tarball keeps everything under one directory (`strip` in the rule names it)",
                            r.strip
                        ),
                    )
                })?;
                relocated.as_str()
            }
        };
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

    /// Select data.tar's entries, in archive order, and say which patterns matched nothing.
    fn data(&self, member: &TarMember) -> Result<Selected, DebError> {
        let mut scan = Scan::new(self, &member.name);
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
                let data = Arc::new(self.read_file(&member.name, entry)?);
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
        // when they lead to something selected. Each path is walked up only to the first
        // ancestor already known, and an ancestor the package does not ship is one the
        // image tree will imply: both keep a deep path from costing its depth squared.
        let mut ancestors = BTreeSet::new();
        for c in scan.out.iter().filter(|c| c.selected) {
            for a in paths::ancestors(&c.entry.path).rev() {
                if ancestors.contains(a) {
                    break;
                }
                if !scan.ships(a) {
                    self.charge(&member.name, ENTRY_COST + a.len() as u64)?;
                }
                ancestors.insert(a.to_string());
            }
        }
        // A hard link is written as a link to its group's first path in layer order: each
        // link pays for that path too, or a thousand one-byte links to a 4 KB path would
        // make a layer ten times what they cost.
        let mut heads: BTreeMap<&str, &str> = BTreeMap::new();
        for c in scan.out.iter().filter(|c| c.selected) {
            if let EntryKind::File {
                link_group: Some(g),
                ..
            } = &c.entry.kind
            {
                let head = heads.entry(g).or_insert(&c.entry.path);
                if c.entry.path.as_bytes() < head.as_bytes() {
                    *head = &c.entry.path;
                }
            }
        }
        let mut cost = Vec::with_capacity(scan.out.len());
        for c in &scan.out {
            let target = match &c.entry.kind {
                EntryKind::Symlink { target } => target.len(),
                EntryKind::File {
                    link_group: Some(g),
                    ..
                } => heads
                    .get(g.as_str())
                    .filter(|h| **h != c.entry.path)
                    .map_or(0, |h| h.len()),
                _ => 0,
            };
            cost.push(ENTRY_COST + (c.entry.path.len() + target) as u64);
        }
        let mut entries = Vec::new();
        for (c, cost) in scan.out.into_iter().zip(cost) {
            if c.selected || ancestors.contains(&c.entry.path) {
                self.charge(&member.name, cost)?;
                entries.push(c.entry);
            }
        }
        let unmatched = self
            .sel
            .include_patterns()
            .iter()
            .zip(&scan.matched)
            .filter(|(_, m)| !**m)
            .map(|(p, _)| p.clone())
            .collect();
        let unmatched_excludes = self
            .sel
            .exclude_patterns()
            .iter()
            .zip(&scan.excluded)
            .filter(|(_, m)| !**m)
            .map(|(p, _)| p.clone())
            .collect();
        Ok(Selected {
            entries,
            unmatched,
            unmatched_excludes,
        })
    }
}

/// Why [`read_all`] gave up.
pub(super) enum ReadFail {
    /// The entry holds more than the cap allowed.
    Over,
    /// The stream failed or ended early.
    Io(io::Error),
}

/// What [`Reader::data`] selected from data.tar.
struct Selected {
    entries: Vec<Entry>,
    unmatched: Vec<String>,
    unmatched_excludes: Vec<String>,
}

/// A tar entry's whole content, checking none is missing: the tar reader hands out short
/// data without complaint when the stream ends early. With a `cap`, no more than one byte
/// beyond it is ever read or reserved, whatever size the header (or a PAX record, or a
/// sparse map) claims.
pub(super) fn read_all(
    entry: &mut tar::Entry<'_, impl Read>,
    cap: Option<u64>,
) -> Result<Vec<u8>, ReadFail> {
    let size = entry.size();
    if cap.is_some_and(|cap| size > cap) {
        return Err(ReadFail::Over);
    }
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
    entry
        .take(size.saturating_add(1))
        .read_to_end(&mut data)
        .map_err(ReadFail::Io)?;
    if data.len() as u64 != size {
        return Err(ReadFail::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file data ends after {} of {size} bytes", data.len()),
        )));
    }
    Ok(data)
}

#[cfg(test)]
mod tests;
