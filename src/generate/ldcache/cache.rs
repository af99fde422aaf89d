//! The cache file itself: entries kept in the order the dynamic loader's binary search
//! needs, a tail-merged string table, and the extension directory, laid out byte for byte
//! as glibc 2.41's `elf/cache.c` and `elf/stringtable.c` write the new (1.1) format.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::arch::Arch;
use crate::generate::GenError;

const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// `struct cache_file_new`.
const HEADER_LEN: usize = 48;
/// `struct file_entry_new`.
const ENTRY_LEN: usize = 24;
const ENDIAN_LITTLE: u8 = 2;
const ENDIAN_BIG: u8 = 3;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const TAG_GENERATOR: u32 = 0;
const TAG_GLIBC_HWCAPS: u32 = 1;
/// Set in an entry's hwcap field when its low 32 bits index the glibc-hwcaps section.
const HWCAP_EXTENSION: u64 = 1 << 62;

/// One library in the cache.
#[derive(Debug)]
struct CacheEntry {
    /// What programs ask for: the SONAME.
    lib: Vec<u8>,
    /// Where it is.
    path: Vec<u8>,
    flags: u32,
    isa_level: u32,
    hwcaps: Option<String>,
}

/// The cache being built.
pub(super) struct Cache {
    arch: Arch,
    entries: Vec<CacheEntry>,
    strings: BTreeSet<Vec<u8>>,
}

impl Cache {
    /// An empty cache whose string table already holds the glibc-hwcaps names met while
    /// listing directories (ldconfig interns them as it finds them).
    pub(super) fn new(arch: Arch, hwcaps_names: &BTreeSet<String>) -> Cache {
        Cache {
            arch,
            entries: Vec::new(),
            strings: hwcaps_names.iter().map(|n| n.as_bytes().to_vec()).collect(),
        }
    }

    /// Add `dir/filename` under `soname`, keeping the list sorted; equal entries keep the
    /// order they came in, as ldconfig's insertion into its sorted list does.
    pub(super) fn add(
        &mut self,
        dir: &str,
        filename: &[u8],
        soname: &[u8],
        flags: u32,
        isa_level: u32,
        hwcaps: Option<&str>,
    ) {
        let mut path = Vec::with_capacity(dir.len() + 1 + filename.len());
        path.extend_from_slice(dir.as_bytes());
        path.push(b'/');
        path.extend_from_slice(filename);
        let entry = CacheEntry {
            lib: soname.to_vec(),
            path,
            flags,
            isa_level,
            hwcaps: hwcaps.map(str::to_string),
        };
        self.strings.insert(entry.lib.clone());
        self.strings.insert(entry.path.clone());
        let at = self
            .entries
            .iter()
            .position(|e| self.compare(e, &entry) == Ordering::Greater)
            .unwrap_or(self.entries.len());
        self.entries.insert(at, entry);
    }

    /// ldconfig's entry order: names by [`libcmp`] descending (higher versions first),
    /// then higher flags first, then glibc-hwcaps entries (by subdirectory name) before
    /// plain ones, which the loader's search relies on.
    fn compare(&self, a: &CacheEntry, b: &CacheEntry) -> Ordering {
        let by_name = libcmp(&b.lib, &a.lib, self.arch.signed_char()).cmp(&0);
        by_name
            .then_with(|| b.flags.cmp(&a.flags))
            .then_with(|| match (&a.hwcaps, &b.hwcaps) {
                (Some(x), Some(y)) => x.as_bytes().cmp(y.as_bytes()),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
    }

    /// The cache file, its extension naming `generator` as what wrote it.
    pub(super) fn write(self, generator: &[u8]) -> Result<Vec<u8>, GenError> {
        let too_big = || GenError {
            generator: super::NAME,
            what: "the ld.so.cache would exceed 4 GiB; the image has too many libraries"
                .to_string(),
        };
        let (table, offsets) = string_table(&self.strings);
        let entries_end = HEADER_LEN + ENTRY_LEN * self.entries.len();
        let base = u32::try_from(entries_end).map_err(|_| too_big())?;
        let offset = |s: &[u8]| -> Result<u32, GenError> {
            let at = offsets.get(s).copied().unwrap_or(0);
            base.checked_add(at).ok_or_else(too_big)
        };

        // glibc-hwcaps subdirectories that hold a library, numbered in name order.
        let used: BTreeSet<&str> = self
            .entries
            .iter()
            .filter_map(|e| e.hwcaps.as_deref())
            .collect();
        let hwcaps_index: BTreeMap<&str, u32> = used.iter().copied().zip(0..).collect();

        let strings_end = entries_end + table.len();
        let extension_at = strings_end.next_multiple_of(4);
        let mut out = Writer {
            bytes: Vec::new(),
            big_endian: self.arch.big_endian(),
        };
        out.bytes.extend_from_slice(MAGIC);
        out.u32(u32::try_from(self.entries.len()).map_err(|_| too_big())?);
        out.u32(u32::try_from(table.len()).map_err(|_| too_big())?);
        out.bytes.push(if self.arch.big_endian() {
            ENDIAN_BIG
        } else {
            ENDIAN_LITTLE
        });
        out.bytes.extend_from_slice(&[0; 3]);
        out.u32(u32::try_from(extension_at).map_err(|_| too_big())?);
        out.bytes.extend_from_slice(&[0; 12]);

        for entry in &self.entries {
            out.u32(entry.flags);
            out.u32(offset(&entry.lib)?);
            out.u32(offset(&entry.path)?);
            out.u32(0);
            let hwcap = match entry.hwcaps.as_deref().and_then(|h| hwcaps_index.get(h)) {
                Some(&index) => {
                    HWCAP_EXTENSION | (u64::from(entry.isa_level) << 32) | u64::from(index)
                }
                None => 0,
            };
            out.u64(hwcap);
        }
        out.bytes.extend_from_slice(&table);
        out.bytes.resize(extension_at, 0);

        let sections: u32 = if used.is_empty() { 1 } else { 2 };
        let hwcaps_at = extension_at + 8 + 16 * sections as usize;
        let generator_at = hwcaps_at + 4 * used.len();
        out.u32(EXTENSION_MAGIC);
        out.u32(sections);
        out.u32(TAG_GENERATOR);
        out.u32(0);
        out.u32(u32::try_from(generator_at).map_err(|_| too_big())?);
        out.u32(u32::try_from(generator.len()).map_err(|_| too_big())?);
        if !used.is_empty() {
            out.u32(TAG_GLIBC_HWCAPS);
            out.u32(0);
            out.u32(u32::try_from(hwcaps_at).map_err(|_| too_big())?);
            out.u32(u32::try_from(4 * used.len()).map_err(|_| too_big())?);
            for name in &used {
                out.u32(offset(name.as_bytes())?);
            }
        }
        out.bytes.extend_from_slice(generator);
        u32::try_from(out.bytes.len()).map_err(|_| too_big())?;
        Ok(out.bytes)
    }
}

/// Integers in the target's byte order.
struct Writer {
    bytes: Vec<u8>,
    big_endian: bool,
}

impl Writer {
    fn u32(&mut self, v: u32) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }

    fn u64(&mut self, v: u64) {
        let b = if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        self.bytes.extend_from_slice(&b);
    }
}

/// glibc's `_dl_cache_libcmp`: bytes compare as C `char`s, but runs of digits compare as
/// numbers, so `libfoo.so.10` > `libfoo.so.9`. Only the sign of the result matters. The
/// arithmetic wraps where C's `int` would overflow.
pub(super) fn libcmp(a: &[u8], b: &[u8], signed_char: bool) -> i32 {
    let ch = |s: &[u8], i: usize| -> i32 {
        let c = s.get(i).copied().unwrap_or(0);
        if signed_char {
            i32::from(c as i8)
        } else {
            i32::from(c)
        }
    };
    let digit = |s: &[u8], i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let number = |s: &[u8], i: &mut usize| {
        let mut v: i32 = 0;
        while let Some(&d) = s.get(*i).filter(|d| d.is_ascii_digit()) {
            v = v.wrapping_mul(10).wrapping_add(i32::from(d - b'0'));
            *i += 1;
        }
        v
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() {
        if digit(a, i) {
            if !digit(b, j) {
                return 1;
            }
            let x = number(a, &mut i);
            let y = number(b, &mut j);
            if x != y {
                return x.wrapping_sub(y);
            }
        } else if digit(b, j) {
            return -1;
        } else if ch(a, i) != ch(b, j) {
            return ch(a, i) - ch(b, j);
        } else {
            i += 1;
            j += 1;
        }
    }
    -ch(b, j)
}

/// glibc's string table: strings sorted so that each one that ends another comes right
/// after it and shares its bytes (tail merging). Returns the table and each string's offset.
fn string_table(strings: &BTreeSet<Vec<u8>>) -> (Vec<u8>, BTreeMap<&[u8], u32>) {
    let mut sorted: Vec<&[u8]> = strings.iter().map(Vec::as_slice).collect();
    // Reversed strings in descending order, a string before its own suffixes.
    sorted.sort_by(|a, b| b.iter().rev().cmp(a.iter().rev()));
    let mut offsets = BTreeMap::new();
    let mut table: Vec<u8> = Vec::new();
    let mut previous: Option<(&[u8], usize)> = None;
    for s in sorted {
        let at = match previous {
            Some((p, p_at)) if p.ends_with(s) => p_at + p.len() - s.len(),
            _ => {
                let at = table.len();
                table.extend_from_slice(s);
                table.push(0);
                at
            }
        };
        // Offsets beyond u32 are caught when the file is assembled.
        offsets.insert(s, u32::try_from(at).unwrap_or(u32::MAX));
        previous = Some((s, at));
    }
    (table, offsets)
}
