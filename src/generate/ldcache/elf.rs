//! Reading what ldconfig reads from a shared object: class, machine and flags from the ELF
//! header, `DT_SONAME` through `PT_DYNAMIC`, and the x86 ISA level from `PT_GNU_PROPERTY`
//! (glibc's `elf/readlib.c` and `elf/readelflib.c`).
//!
//! The bytes come from packages and are untrusted: every offset is bounds-checked and any
//! inconsistency makes the file "not a library" (`None`), never a panic. Where ldconfig
//! itself would read past the end of a damaged file, the file is skipped.

use super::arch::{Arch, LdRules};

const ELFMAG: &[u8; 4] = b"\x7fELF";
const ELFCLASS32: u8 = 1;
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const ELFDATA2MSB: u8 = 2;
const ET_DYN: u16 = 3;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_SONAME: u64 = 14;
const NT_GNU_PROPERTY_TYPE_0: u32 = 5;
const GNU_PROPERTY_X86_ISA_1_NEEDED: u32 = 0xc000_8002;
/// Size of `ElfW(Nhdr)`, the same for both classes.
const NHDR_LEN: u64 = 12;

/// What ldconfig learns from a file it accepts as a shared library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Library {
    /// Cache flags: `FLAG_ELF_LIBC6` plus the architecture's ABI bits.
    pub(super) flags: u32,
    /// `DT_SONAME`, if the object has one (without it ldconfig uses the file name).
    pub(super) soname: Option<Vec<u8>>,
    /// x86 ISA level (`x86-64-v3` needs 3), for entries in glibc-hwcaps subdirectories.
    pub(super) isa_level: u32,
}

/// The library `data` is to `arch`'s ldconfig, or `None` if it would not cache it (not
/// ELF, not a shared object, another machine or byte order, damaged).
pub(super) fn inspect(data: &[u8], arch: Arch) -> Option<Library> {
    if data.len() < arch.min_file_len() || !data.starts_with(ELFMAG) {
        return None;
    }
    let class64 = match data[4] {
        ELFCLASS32 => false,
        ELFCLASS64 => true,
        _ => return None,
    };
    // ldconfig reads headers in its own byte order, so a foreign-endian file never looks
    // like ET_DYN to it; saying so directly keeps the rest of the reading simple.
    let big_endian = match data[5] {
        ELFDATA2LSB => false,
        ELFDATA2MSB => true,
        _ => return None,
    };
    if big_endian != arch.big_endian() {
        return None;
    }
    let elf = Elf {
        data,
        class64,
        big_endian,
    };
    if elf.u16(16)? != ET_DYN {
        return None;
    }
    let machine = elf.u16(18)?;
    let e_flags = elf.u32(if class64 { 48 } else { 36 })?;
    let flags = arch.flags(class64, machine, e_flags)?;
    let (soname, isa_level) = elf.soname_and_isa_level(arch.reads_isa_level())?;
    Some(Library {
        flags,
        soname,
        isa_level,
    })
}

/// One ELF file of a known class and byte order; every read is bounds-checked.
struct Elf<'a> {
    data: &'a [u8],
    class64: bool,
    big_endian: bool,
}

/// The fields of a program header ldconfig looks at.
struct Segment {
    p_type: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    align: u64,
}

impl Elf<'_> {
    fn bytes<const N: usize>(&self, at: u64) -> Option<[u8; N]> {
        let start = usize::try_from(at).ok()?;
        let end = start.checked_add(N)?;
        self.data.get(start..end)?.try_into().ok()
    }

    fn u16(&self, at: u64) -> Option<u16> {
        let b = self.bytes::<2>(at)?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&self, at: u64) -> Option<u32> {
        let b = self.bytes::<4>(at)?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u64(&self, at: u64) -> Option<u64> {
        let b = self.bytes::<8>(at)?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }

    /// An address-sized field (`ElfW(Addr)`, `ElfW(Off)`, `d_val`...).
    fn word(&self, at: u64) -> Option<u64> {
        if self.class64 {
            self.u64(at)
        } else {
            self.u32(at).map(u64::from)
        }
    }

    fn word_len(&self) -> u64 {
        if self.class64 { 8 } else { 4 }
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// ldconfig's `check_ptr`: an offset may point at the end of the file, not past it.
    fn within(&self, offset: u64) -> Option<u64> {
        (offset <= self.len()).then_some(offset)
    }

    /// The program headers. ldconfig steps by `sizeof (ElfW(Phdr))`, not `e_phentsize`.
    fn segments(&self) -> Option<Vec<Segment>> {
        let (phoff, phnum, phsize) = if self.class64 {
            (self.u64(32)?, self.u16(56)?, 56u64)
        } else {
            (u64::from(self.u32(28)?), self.u16(44)?, 32u64)
        };
        self.within(phoff)?;
        (0..u64::from(phnum))
            .map(|i| {
                let at = phoff.checked_add(i.checked_mul(phsize)?)?;
                let p_type = self.u32(at)?;
                Some(if self.class64 {
                    Segment {
                        p_type,
                        offset: self.u64(at + 8)?,
                        vaddr: self.u64(at + 16)?,
                        filesz: self.u64(at + 32)?,
                        align: self.u64(at + 48)?,
                    }
                } else {
                    Segment {
                        p_type,
                        offset: u64::from(self.u32(at + 4)?),
                        vaddr: u64::from(self.u32(at + 8)?),
                        filesz: u64::from(self.u32(at + 16)?),
                        align: u64::from(self.u32(at + 28)?),
                    }
                })
            })
            .collect()
    }

    /// `DT_SONAME` (if any) and the ISA level, or `None` where ldconfig rejects the file.
    fn soname_and_isa_level(&self, read_isa: bool) -> Option<(Option<Vec<u8>>, u32)> {
        let segments = self.segments()?;
        let mut dynamic = None;
        let mut isa_level = 0;
        for seg in &segments {
            match seg.p_type {
                // With several PT_DYNAMIC segments ldconfig keeps the last.
                PT_DYNAMIC => dynamic = Some((seg.offset, seg.filesz)),
                // ldconfig only checks that the interpreter string starts inside the file.
                PT_INTERP => {
                    self.within(seg.offset)?;
                }
                PT_GNU_PROPERTY if read_isa && seg.align == self.word_len() => {
                    if let Some(level) = self.isa_level(seg) {
                        isa_level = level;
                    }
                }
                _ => {}
            }
        }
        let (dyn_offset, dyn_size) = dynamic?;
        if dyn_size == 0 {
            return None;
        }
        self.within(dyn_offset)?;
        let strtab = self.dynamic_value(dyn_offset, DT_STRTAB)??;
        // DT_STRTAB is an address: map it to a file offset through the PT_LOAD holding it.
        let load_bias = segments
            .iter()
            .find(|s| {
                s.p_type == PT_LOAD && strtab >= s.vaddr && strtab.wrapping_sub(s.vaddr) < s.filesz
            })
            .map_or(0, |s| s.vaddr.wrapping_sub(s.offset));
        let strings = self.within(strtab.wrapping_sub(load_bias))?;
        let Some(name) = self.dynamic_value(dyn_offset, DT_SONAME)? else {
            return Some((None, isa_level));
        };
        let start = usize::try_from(self.within(strings.checked_add(name)?)?).ok()?;
        let rest = self.data.get(start..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some((Some(rest[..end].to_vec()), isa_level))
    }

    /// The value of the first `tag` in the dynamic array at `offset`: `Some(None)` if the
    /// array ends (DT_NULL) first, `None` if it runs off the end of the file. Like
    /// ldconfig, the array's end is its DT_NULL, not the segment's size.
    fn dynamic_value(&self, offset: u64, tag: u64) -> Option<Option<u64>> {
        let mut at = offset;
        loop {
            match self.word(at)? {
                DT_NULL => return Some(None),
                t if t == tag => return Some(Some(self.word(at.checked_add(self.word_len())?)?)),
                _ => at = at.checked_add(2 * self.word_len())?,
            }
        }
    }

    /// The level in a `GNU_PROPERTY_X86_ISA_1_NEEDED` property (its highest bit), read the
    /// way ldconfig does: only the first `NT_GNU_PROPERTY_TYPE_0` note counts, properties
    /// must ascend, and anything malformed ends the search.
    fn isa_level(&self, seg: &Segment) -> Option<u32> {
        let align = seg.align;
        let mut note = 0u64;
        while note.checked_add(NHDR_LEN)? < seg.filesz {
            let at = seg.offset.checked_add(note)?;
            let namesz = u64::from(self.u32(at)?);
            let descsz = u64::from(self.u32(at + 4)?);
            let n_type = self.u32(at + 8)?;
            if namesz == 4
                && n_type == NT_GNU_PROPERTY_TYPE_0
                && &self.bytes::<4>(at + NHDR_LEN)? == b"GNU\0"
            {
                return self.isa_property(at + NHDR_LEN + 4, descsz);
            }
            let desc_at = align_up(NHDR_LEN.checked_add(namesz)?, align)?;
            note = note.checked_add(align_up(desc_at.checked_add(descsz)?, align)?)?;
        }
        None
    }

    /// Walk the properties of one `NT_GNU_PROPERTY_TYPE_0` descriptor.
    fn isa_property(&self, desc: u64, descsz: u64) -> Option<u32> {
        let word = self.word_len();
        if descsz < 8 || !descsz.is_multiple_of(word) {
            return None;
        }
        let end = desc.checked_add(descsz)?;
        let mut at = desc;
        let mut last_type = 0;
        loop {
            let pr_type = self.u32(at)?;
            let datasz = u64::from(self.u32(at + 4)?);
            if pr_type < last_type {
                return None;
            }
            at = at.checked_add(8)?;
            if at.checked_add(datasz)? > end {
                return None;
            }
            last_type = pr_type;
            if pr_type > GNU_PROPERTY_X86_ISA_1_NEEDED {
                return None;
            }
            if pr_type == GNU_PROPERTY_X86_ISA_1_NEEDED {
                if datasz != 4 {
                    return None;
                }
                let needed = self.u32(at)?;
                return (needed != 0).then(|| 31 - needed.leading_zeros());
            }
            at = at.checked_add(align_up(datasz, word)?)?;
            if at > end || end - at < 8 {
                return None;
            }
        }
    }
}

/// Round `value` up to a multiple of `align` (ldconfig's `ALIGN_UP`; 0 and 1 mean none).
fn align_up(value: u64, align: u64) -> Option<u64> {
    if align <= 1 {
        return Some(value);
    }
    Some(value.checked_add(align - 1)? / align * align)
}
