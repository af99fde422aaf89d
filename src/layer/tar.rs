//! A tar encoder that emits exactly the bytes we choose: POSIX ustar headers, a PAX extended
//! header only for a value ustar cannot hold, no user or group names, members in the order
//! they are appended.
//!
//! Hand-written rather than through `tar::Builder` because the crate writes GNU long-name
//! records instead of PAX (`././@LongLink`, in `prepare_header_path` of the tar 0.4 crate's
//! `src/builder.rs`) and fills fields we want to control; `pax_headers_appear_only_where_needed`
//! in `src/layer/tests.rs` pins what we write instead.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

/// Tar block size; every header and every data area is a multiple of it.
pub(crate) const BLOCK: usize = 512;

/// Largest value of an 11-digit octal field (size, mtime): 8 GiB - 1.
const MAX_OCTAL_11: u64 = 0o777_7777_7777;

/// Largest value of a 7-digit octal field (uid, gid).
const MAX_OCTAL_7: u64 = 0o777_7777;

/// Widths of the ustar name, prefix and linkname fields.
const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const LINK_LEN: usize = 100;

/// Name of every PAX extended header. Fixed (Python's choice) so the bytes never depend on
/// the process or on how the member's name happens to be split.
pub(crate) const PAX_HEADER_NAME: &str = "././@PaxHeader";

/// What a tar member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file with `size` bytes of data.
    File,
    /// A hard link to an earlier member named by `link`.
    HardLink,
    /// A symbolic link to `link`.
    Symlink,
    /// A directory; its name is written with a trailing `/`.
    Dir,
}

impl Kind {
    /// The ustar typeflag byte.
    fn typeflag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Dir => b'5',
        }
    }
}

/// One member's header fields before encoding.
#[derive(Debug, Clone)]
pub(crate) struct Header<'a> {
    /// Member path without a trailing `/` (directories get one added).
    pub path: &'a str,
    /// Member type.
    pub kind: Kind,
    /// Link target for hard and symbolic links, empty otherwise.
    pub link: &'a str,
    /// Data length; 0 for anything but a file.
    pub size: u64,
    /// Permission bits (already masked to 0o7777).
    pub mode: u32,
    /// Numeric owner.
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
    /// Modification time, already clamped.
    pub mtime: u64,
}

/// Encode a member's header blocks: a PAX header with its records when needed, then the
/// ustar header. The data (for files) and its padding follow separately.
pub(crate) fn encode_header(h: &Header<'_>) -> Vec<u8> {
    let mut name = h.path.as_bytes().to_vec();
    if h.kind == Kind::Dir {
        name.push(b'/');
    }
    let size = if h.kind == Kind::File { h.size } else { 0 };

    // Sorted keys make the record order a function of the values alone.
    let mut pax: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    let (prefix, short) = match split_name(&name) {
        Some(split) => split,
        None => {
            pax.insert("path", name.clone());
            // The ustar field only matters to readers that ignore PAX; give them a prefix.
            (&[][..], &name[..NAME_LEN.min(name.len())])
        }
    };
    let link = h.link.as_bytes();
    let link_field = if link.len() > LINK_LEN {
        pax.insert("linkpath", link.to_vec());
        &link[..LINK_LEN]
    } else {
        link
    };
    let size_field = fit(&mut pax, "size", size, MAX_OCTAL_11);
    let mtime_field = fit(&mut pax, "mtime", h.mtime, MAX_OCTAL_11);
    let uid_field = fit(&mut pax, "uid", h.uid, MAX_OCTAL_7);
    let gid_field = fit(&mut pax, "gid", h.gid, MAX_OCTAL_7);

    let mut out = Vec::with_capacity(3 * BLOCK);
    if !pax.is_empty() {
        let mut records = Vec::new();
        for (key, value) in &pax {
            records.extend_from_slice(&pax_record(key, value));
        }
        out.extend_from_slice(&ustar(&UstarFields {
            prefix: b"",
            name: PAX_HEADER_NAME.as_bytes(),
            typeflag: b'x',
            link: b"",
            size: records.len() as u64,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }));
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend_from_slice(&ustar(&UstarFields {
        prefix,
        name: short,
        typeflag: h.kind.typeflag(),
        link: link_field,
        size: size_field,
        mode: h.mode & 0o7777,
        uid: uid_field,
        gid: gid_field,
        mtime: mtime_field,
    }));
    out
}

/// `value` if it fits an octal field of this capacity; otherwise record it in PAX and write 0.
fn fit<'k>(pax: &mut BTreeMap<&'k str, Vec<u8>>, key: &'k str, value: u64, max: u64) -> u64 {
    if value > max {
        pax.insert(key, value.to_string().into_bytes());
        0
    } else {
        value
    }
}

/// Split a member name into ustar (prefix, name), or `None` if it needs PAX.
///
/// Like GNU tar, cut at the last `/` that leaves a prefix of at most 155 bytes: the longest
/// prefix gives the shortest remaining name, so if that one is over 100 bytes nothing fits.
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= NAME_LEN {
        return Some((&[], name));
    }
    // Never cut at a directory's trailing slash: the name part would be empty.
    let last = name.len().saturating_sub(2).min(PREFIX_LEN);
    let cut = (1..=last).rev().find(|&i| name[i] == b'/')?;
    let rest = &name[cut + 1..];
    (rest.len() <= NAME_LEN).then_some((&name[..cut], rest))
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole record itself.
pub(crate) fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=' and '\n'
    let mut total = body + 1;
    while total != body + total.to_string().len() {
        total = body + total.to_string().len();
    }
    let mut rec = format!("{total} {key}=").into_bytes();
    rec.extend_from_slice(value);
    rec.push(b'\n');
    rec
}

/// Zero bytes needed after `len` data bytes to reach a block boundary.
pub(crate) fn padding(len: u64) -> usize {
    let rem = (len % BLOCK as u64) as usize;
    if rem == 0 { 0 } else { BLOCK - rem }
}

/// The fields of one raw ustar header block, every value already known to fit.
struct UstarFields<'a> {
    prefix: &'a [u8],
    name: &'a [u8],
    typeflag: u8,
    link: &'a [u8],
    size: u64,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
}

/// Encode one ustar header block. uname and gname stay empty so that readers use the
/// numeric ids and no build-host user database leaks into the image.
fn ustar(f: &UstarFields<'_>) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    b[..f.name.len()].copy_from_slice(f.name);
    octal(&mut b[100..108], u64::from(f.mode));
    octal(&mut b[108..116], f.uid);
    octal(&mut b[116..124], f.gid);
    octal(&mut b[124..136], f.size);
    octal(&mut b[136..148], f.mtime);
    b[156] = f.typeflag;
    b[157..157 + f.link.len()].copy_from_slice(f.link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    octal(&mut b[329..337], 0);
    octal(&mut b[337..345], 0);
    b[345..345 + f.prefix.len()].copy_from_slice(f.prefix);
    // The checksum is computed with its own field read as spaces.
    b[148..156].copy_from_slice(b"        ");
    let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
    octal(&mut b[148..155], u64::from(sum));
    b[155] = b' ';
    b
}

/// Zero-padded octal filling all but the last byte of `field`, then a NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let s = format!("{value:0width$o}");
    field[..width].copy_from_slice(&s.as_bytes()[s.len() - width..]);
    field[width] = 0;
}

/// Writes tar members one after another, then the end-of-archive marker.
pub(crate) struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    /// A writer that appends to `out`.
    pub(crate) fn new(out: W) -> TarWriter<W> {
        TarWriter { out }
    }

    /// Append a member whose data (for files) is in memory.
    pub(crate) fn append_bytes(&mut self, h: &Header<'_>, data: &[u8]) -> io::Result<()> {
        let mut h = h.clone();
        if h.kind == Kind::File {
            h.size = data.len() as u64;
        }
        self.append(&h, &mut &data[..])
    }

    /// Append a member, copying exactly `h.size` bytes from `data` for a file.
    pub(crate) fn append(&mut self, h: &Header<'_>, data: &mut dyn Read) -> io::Result<()> {
        self.out.write_all(&encode_header(h))?;
        if h.kind != Kind::File {
            return Ok(());
        }
        let copied = io::copy(&mut data.take(h.size), &mut self.out)?;
        if copied != h.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: expected {} bytes of data, got {copied}",
                    h.path, h.size
                ),
            ));
        }
        self.out.write_all(&[0u8; BLOCK][..padding(h.size)])
    }

    /// Write the two zero blocks that end an archive and return the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &str, kind: Kind) -> Header<'_> {
        Header {
            path,
            kind,
            link: "",
            size: 0,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    /// The PAX records of an encoded header, if it has a PAX header.
    fn pax_of(bytes: &[u8]) -> Option<String> {
        if bytes[156] != b'x' {
            return None;
        }
        let size =
            usize::from_str_radix(std::str::from_utf8(&bytes[124..135]).unwrap_or_default(), 8)
                .unwrap_or_default();
        Some(String::from_utf8_lossy(&bytes[BLOCK..BLOCK + size]).into_owned())
    }

    #[test]
    fn pax_record_length_counts_itself() {
        // 98 bytes of body: 99 would need 2 digits (=100), so the length is 101.
        let value = vec![b'a'; 98 - "path".len() - 3];
        let rec = pax_record("path", &value);
        assert_eq!(rec.len(), 101);
        assert!(rec.starts_with(b"101 path="));
        assert_eq!(pax_record("size", b"1"), b"9 size=1\n".to_vec());
    }

    #[test]
    fn names_split_at_the_longest_prefix_that_fits() {
        let dir = "d".repeat(60);
        let path = format!("{dir}/{dir}/{}", "f".repeat(50));
        let (prefix, name) = split_name(path.as_bytes()).unwrap_or_default();
        assert_eq!(prefix, format!("{dir}/{dir}").as_bytes());
        assert_eq!(name, "f".repeat(50).as_bytes());
        // A single component over 100 bytes cannot be split.
        assert_eq!(split_name("x".repeat(101).as_bytes()), None);
        // A directory's trailing slash is never the cut point.
        let d = format!("{}/", "y".repeat(120));
        assert_eq!(split_name(d.as_bytes()), None);
    }

    #[test]
    fn short_members_have_no_pax_header() {
        let bytes = encode_header(&header("usr/bin/env", Kind::File));
        assert_eq!(bytes.len(), BLOCK);
        assert_eq!(&bytes[257..265], b"ustar\x0000");
        assert_eq!(
            &bytes[265..329],
            &[0u8; 64][..],
            "uname and gname stay empty"
        );
    }

    #[test]
    fn only_unrepresentable_values_go_to_pax() {
        let long = "n".repeat(150);
        let bytes = encode_header(&header(&long, Kind::File));
        let expected = String::from_utf8(pax_record("path", long.as_bytes())).unwrap_or_default();
        assert_eq!(pax_of(&bytes), Some(expected));
        assert_eq!(&bytes[..PAX_HEADER_NAME.len()], PAX_HEADER_NAME.as_bytes());

        let mut h = header("big", Kind::File);
        h.size = 8 << 30;
        h.uid = 1 << 22;
        h.mtime = MAX_OCTAL_11;
        let bytes = encode_header(&h);
        let pax = pax_of(&bytes).unwrap_or_default();
        assert_eq!(pax, "19 size=8589934592\n15 uid=4194304\n");
        let main = &bytes[bytes.len() - BLOCK..];
        assert_eq!(
            &main[124..136],
            b"00000000000\0",
            "size field is 0 when PAX has it"
        );
        assert_eq!(
            &main[136..148],
            b"77777777777\0",
            "the largest octal mtime fits"
        );

        let target = "t".repeat(101);
        let mut h = header("link", Kind::Symlink);
        h.link = &target;
        let pax = pax_of(&encode_header(&h)).unwrap_or_default();
        assert!(pax.starts_with("115 linkpath=ttt"), "{pax}");
    }

    #[test]
    fn checksum_matches_the_ustar_definition() {
        let b = encode_header(&header("etc/passwd", Kind::File));
        let mut copy = b.clone();
        copy[148..156].copy_from_slice(b"        ");
        let sum: u32 = copy.iter().map(|&x| u32::from(x)).sum();
        assert_eq!(&b[148..156], format!("{sum:06o}\0 ").as_bytes());
    }
}
