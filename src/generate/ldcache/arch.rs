//! What each Debian architecture's ldconfig accepts into the cache and how it flags it
//! (glibc's `sysdeps/unix/sysv/linux/*/readelflib.c` and `dl-cache.h`). The architectures
//! themselves (triplet, byte order, `char` signedness) are [`crate::arch`]'s.

pub(super) use crate::arch::Arch;
use crate::arch::LdFamily as Family;

/// An ELF library for glibc 2.x: the only type modern ldconfig writes.
pub(super) const FLAG_ELF_LIBC6: u32 = 0x0003;
const FLAG_X8664_LIB64: u32 = 0x0300;
const FLAG_S390_LIB64: u32 = 0x0400;
const FLAG_POWERPC_LIB64: u32 = 0x0500;
const FLAG_MIPS64_LIBN32: u32 = 0x0600;
const FLAG_MIPS64_LIBN64: u32 = 0x0700;
const FLAG_X8664_LIBX32: u32 = 0x0800;
const FLAG_ARM_LIBHF: u32 = 0x0900;
const FLAG_AARCH64_LIB64: u32 = 0x0a00;
const FLAG_ARM_LIBSF: u32 = 0x0b00;
const FLAG_MIPS_LIB32_NAN2008: u32 = 0x0c00;
const FLAG_MIPS64_LIBN32_NAN2008: u32 = 0x0d00;
const FLAG_MIPS64_LIBN64_NAN2008: u32 = 0x0e00;
const FLAG_RISCV_FLOAT_ABI_SOFT: u32 = 0x0f00;
const FLAG_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x1000;
const FLAG_LARCH_FLOAT_ABI_SOFT: u32 = 0x1100;
const FLAG_LARCH_FLOAT_ABI_DOUBLE: u32 = 0x1200;

const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC: u16 = 20;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

const EF_ARM_EABIMASK: u32 = 0xff00_0000;
const EF_ARM_EABI_VER5: u32 = 0x0500_0000;
const EF_ARM_ABI_FLOAT_SOFT: u32 = 0x200;
const EF_ARM_ABI_FLOAT_HARD: u32 = 0x400;
const EF_MIPS_ABI2: u32 = 0x20;
const EF_MIPS_NAN2008: u32 = 0x400;
const EF_RISCV_RVC: u32 = 0x1;
const EF_RISCV_FLOAT_ABI: u32 = 0x6;
const EF_RISCV_FLOAT_ABI_SOFT: u32 = 0x0;
const EF_RISCV_FLOAT_ABI_DOUBLE: u32 = 0x4;
const EF_LARCH_ABI_SOFT_FLOAT: u32 = 0x1;
const EF_LARCH_ABI_DOUBLE_FLOAT: u32 = 0x3;
const EF_LARCH_OBJABI_V1: u32 = 0x40;

/// ldconfig's view of an architecture: the shared [`crate::arch::Arch`] plus the rules its
/// glibc port applies to libraries.
pub(super) trait LdRules {
    /// The smallest file ldconfig will look at: the size of its native ELF header.
    fn min_file_len(self) -> usize;
    /// Does this ldconfig read the x86 ISA level from `PT_GNU_PROPERTY`?
    fn reads_isa_level(self) -> bool;
    /// The cache flags for a shared object with this ELF class, machine and `e_flags`, or
    /// `None` if this ldconfig would not cache it.
    fn flags(self, class64: bool, machine: u16, e_flags: u32) -> Option<u32>;
}

impl LdRules for Arch {
    fn min_file_len(self) -> usize {
        // ldconfig's own word size: files shorter than its `ElfW(Ehdr)` are never read.
        if self.lp64() { 64 } else { 52 }
    }

    fn reads_isa_level(self) -> bool {
        // Only x86 has a `read_gnu_property` that does anything.
        self.ld_family() == Family::X86
    }

    /// ldconfig itself checks the machine only on x86; elsewhere it trusts the class (an
    /// x86-64 library in an arm64 image would be cached as AArch64 and then fail to load).
    /// Here every family also requires its own machines, so such a file is skipped.
    fn flags(self, class64: bool, machine: u16, e_flags: u32) -> Option<u32> {
        let required = match (self.ld_family(), class64, machine) {
            (Family::X86, true, EM_X86_64) => FLAG_X8664_LIB64,
            (Family::X86, false, EM_X86_64) => FLAG_X8664_LIBX32,
            (Family::X86, false, EM_386) => 0,
            (Family::Arm, false, EM_ARM) => {
                if e_flags & EF_ARM_EABIMASK != EF_ARM_EABI_VER5 {
                    0
                } else if e_flags & EF_ARM_ABI_FLOAT_HARD != 0 {
                    FLAG_ARM_LIBHF
                } else if e_flags & EF_ARM_ABI_FLOAT_SOFT != 0 {
                    FLAG_ARM_LIBSF
                } else {
                    // Unmarked objects predate the ABI tags and suit either float ABI.
                    0
                }
            }
            (Family::Arm, true, EM_AARCH64) => FLAG_AARCH64_LIB64,
            (Family::PowerPc, false, EM_PPC) => 0,
            (Family::PowerPc, true, EM_PPC64) => FLAG_POWERPC_LIB64,
            (Family::S390, false, EM_S390) => 0,
            (Family::S390, true, EM_S390) => FLAG_S390_LIB64,
            (Family::RiscV, _, EM_RISCV) => {
                // glibc supports the soft and double float ABIs, with or without RVC;
                // any other e_flags bit means a library it cannot load.
                if e_flags & !(EF_RISCV_FLOAT_ABI | EF_RISCV_RVC) != 0 {
                    return None;
                }
                match e_flags & EF_RISCV_FLOAT_ABI {
                    EF_RISCV_FLOAT_ABI_SOFT => FLAG_RISCV_FLOAT_ABI_SOFT,
                    EF_RISCV_FLOAT_ABI_DOUBLE => FLAG_RISCV_FLOAT_ABI_DOUBLE,
                    _ => return None,
                }
            }
            (Family::Mips, false, EM_MIPS) => {
                let nan2008 = e_flags & EF_MIPS_NAN2008 != 0;
                match (e_flags & EF_MIPS_ABI2 != 0, nan2008) {
                    (true, true) => FLAG_MIPS64_LIBN32_NAN2008,
                    (true, false) => FLAG_MIPS64_LIBN32,
                    (false, true) => FLAG_MIPS_LIB32_NAN2008,
                    (false, false) => 0,
                }
            }
            (Family::Mips, true, EM_MIPS) => {
                if e_flags & EF_MIPS_NAN2008 != 0 {
                    FLAG_MIPS64_LIBN64_NAN2008
                } else {
                    FLAG_MIPS64_LIBN64
                }
            }
            (Family::LoongArch, true, EM_LOONGARCH) => {
                // Some binutils mark shared objects with the static-relocation ABI
                // version; it says nothing about loading, so glibc ignores it.
                let e_flags = e_flags & !EF_LARCH_OBJABI_V1;
                let float = EF_LARCH_ABI_SOFT_FLOAT | EF_LARCH_ABI_DOUBLE_FLOAT;
                if e_flags & !float != 0 {
                    return None;
                }
                match e_flags & float {
                    EF_LARCH_ABI_SOFT_FLOAT => FLAG_LARCH_FLOAT_ABI_SOFT,
                    EF_LARCH_ABI_DOUBLE_FLOAT => FLAG_LARCH_FLOAT_ABI_DOUBLE,
                    _ => return None,
                }
            }
            _ => return None,
        };
        Some(required | FLAG_ELF_LIBC6)
    }
}
