//! Streaming a .deb: ar members → decompressor → tar entries → selection → [`Entry`].
//!
//! This file checks the ar layout and reads control.tar; `decompress` opens the tar
//! members, `scan` takes data.tar's entries one by one.

use std::cell::Cell;
use std::collections::BTreeSet;
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

pub use decompress::max_data_bytes;

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
    let reader = Reader { package, sel, opts };
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

/// What [`Reader::data`] selected from data.tar.
struct Selected {
    entries: Vec<Entry>,
    unmatched: Vec<String>,
    unmatched_excludes: Vec<String>,
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

#[cfg(test)]
mod tests;
