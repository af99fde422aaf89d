//! Debian architectures: the one table that says what `amd64` or `armhf` means to every
//! stage of the pipeline: the OCI platform an image is published under, the multiarch
//! triplet naming library directories, and what the architecture's ELF files and
//! `ldconfig` look like.
//!
//! Pin, the lock, the plan, the ld.so.cache generator and the OCI writer all take an
//! [`Arch`], so an architecture one of them knows is known to all of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Debian architecture debless can build images for.
///
/// Declared in the alphabetical order of the Debian names, so the derived `Ord` sorts
/// exactly as the names do (the lock and every output list architectures in that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// 64-bit Arm (AArch64).
    Arm64,
    /// 32-bit Arm EABI, soft float.
    Armel,
    /// 32-bit Arm EABI, hard float (ARMv7).
    Armhf,
    /// 32-bit x86.
    I386,
    /// 64-bit LoongArch.
    Loong64,
    /// 64-bit little-endian MIPS.
    Mips64el,
    /// 64-bit little-endian POWER.
    Ppc64el,
    /// 64-bit RISC-V.
    Riscv64,
    /// 64-bit IBM Z.
    S390x,
}

/// Which glibc port's `ldconfig` rules an architecture follows (its
/// `sysdeps/unix/sysv/linux/*/readelflib.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdFamily {
    /// x86-64, x32 and i386.
    X86,
    /// 32-bit Arm and AArch64.
    Arm,
    /// 32- and 64-bit POWER.
    PowerPc,
    /// 31- and 64-bit IBM Z.
    S390,
    /// RISC-V.
    RiscV,
    /// MIPS.
    Mips,
    /// LoongArch.
    LoongArch,
}

/// Everything debless knows about one architecture.
struct Info {
    name: &'static str,
    oci_architecture: &'static str,
    oci_variant: Option<&'static str>,
    triplet: &'static str,
    elf_machine: u16,
    lp64: bool,
    big_endian: bool,
    signed_char: bool,
    ld_family: LdFamily,
}

impl Arch {
    /// Every architecture, in order.
    pub const ALL: [Arch; 10] = [
        Arch::Amd64,
        Arch::Arm64,
        Arch::Armel,
        Arch::Armhf,
        Arch::I386,
        Arch::Loong64,
        Arch::Mips64el,
        Arch::Ppc64el,
        Arch::Riscv64,
        Arch::S390x,
    ];

    fn info(self) -> Info {
        // ELF machine numbers from the System V ABI registry (elf.h `EM_*`); char
        // signedness from each psABI; OCI names from the image-spec's list of Go values.
        let i = |name,
                 oci_architecture,
                 oci_variant,
                 triplet,
                 elf_machine,
                 lp64,
                 big_endian,
                 signed_char,
                 ld_family| Info {
            name,
            oci_architecture,
            oci_variant,
            triplet,
            elf_machine,
            lp64,
            big_endian,
            signed_char,
            ld_family,
        };
        use LdFamily as F;
        match self {
            Arch::Amd64 => i(
                "amd64",
                "amd64",
                None,
                "x86_64-linux-gnu",
                62,
                true,
                false,
                true,
                F::X86,
            ),
            // containerd normalises linux/arm64 to variant v8; say it explicitly so an
            // index matches the same way everywhere.
            Arch::Arm64 => i(
                "arm64",
                "arm64",
                Some("v8"),
                "aarch64-linux-gnu",
                183,
                true,
                false,
                false,
                F::Arm,
            ),
            Arch::Armel => i(
                "armel",
                "arm",
                Some("v5"),
                "arm-linux-gnueabi",
                40,
                false,
                false,
                false,
                F::Arm,
            ),
            Arch::Armhf => i(
                "armhf",
                "arm",
                Some("v7"),
                "arm-linux-gnueabihf",
                40,
                false,
                false,
                false,
                F::Arm,
            ),
            Arch::I386 => i(
                "i386",
                "386",
                None,
                "i386-linux-gnu",
                3,
                false,
                false,
                true,
                F::X86,
            ),
            Arch::Loong64 => i(
                "loong64",
                "loong64",
                None,
                "loongarch64-linux-gnu",
                258,
                true,
                false,
                true,
                F::LoongArch,
            ),
            Arch::Mips64el => i(
                "mips64el",
                "mips64le",
                None,
                "mips64el-linux-gnuabi64",
                8,
                true,
                false,
                true,
                F::Mips,
            ),
            Arch::Ppc64el => i(
                "ppc64el",
                "ppc64le",
                None,
                "powerpc64le-linux-gnu",
                21,
                true,
                false,
                false,
                F::PowerPc,
            ),
            Arch::Riscv64 => i(
                "riscv64",
                "riscv64",
                None,
                "riscv64-linux-gnu",
                243,
                true,
                false,
                false,
                F::RiscV,
            ),
            Arch::S390x => i(
                "s390x",
                "s390x",
                None,
                "s390x-linux-gnu",
                22,
                true,
                true,
                false,
                F::S390,
            ),
        }
    }

    /// The Debian name (`amd64`, `armhf`...).
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The OCI platform `architecture`, in Go's spelling (`amd64`, `arm`, `ppc64le`...).
    pub fn oci_architecture(self) -> &'static str {
        self.info().oci_architecture
    }

    /// The OCI platform `variant` (`v8`, `v7`...), for architectures that have one.
    pub fn oci_variant(self) -> Option<&'static str> {
        self.info().oci_variant
    }

    /// The multiarch triplet (`x86_64-linux-gnu`), naming the library directories.
    pub fn triplet(self) -> &'static str {
        self.info().triplet
    }

    /// The `e_machine` of the architecture's native ELF files.
    pub fn elf_machine(self) -> u16 {
        self.info().elf_machine
    }

    /// Are native ELF files 64-bit (`ELFCLASS64`)?
    pub fn lp64(self) -> bool {
        self.info().lp64
    }

    /// Is the architecture big-endian?
    pub fn big_endian(self) -> bool {
        self.info().big_endian
    }

    /// Is C's `char` signed? (ldconfig compares names by subtracting `char`s, so bytes
    /// above 0x7f sort differently on x86 than on Arm.)
    pub fn signed_char(self) -> bool {
        self.info().signed_char
    }

    /// Which glibc port's ldconfig rules apply.
    pub fn ld_family(self) -> LdFamily {
        self.info().ld_family
    }

    /// The architecture an OCI platform names (`arm` with variant `v7` is armhf), if
    /// debless knows it. A missing variant is accepted where only one architecture has
    /// that OCI name (linux/arm64 without `v8`).
    pub fn from_oci(architecture: &str, variant: Option<&str>) -> Option<Arch> {
        let named: Vec<Arch> = Arch::ALL
            .into_iter()
            .filter(|a| a.oci_architecture() == architecture)
            .collect();
        match variant {
            Some(v) => named.into_iter().find(|a| a.oci_variant() == Some(v)),
            None if named.len() == 1 => named.first().copied(),
            None => None,
        }
    }

    /// The architecture this debless binary runs on, if debless knows it (a 32-bit arm
    /// host counts as armhf, the hard-float port every current arm board runs).
    pub fn host() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::Amd64),
            "aarch64" => Some(Arch::Arm64),
            "arm" => Some(Arch::Armhf),
            "x86" => Some(Arch::I386),
            "loongarch64" => Some(Arch::Loong64),
            "mips64" if cfg!(target_endian = "little") => Some(Arch::Mips64el),
            "powerpc64" if cfg!(target_endian = "little") => Some(Arch::Ppc64el),
            "riscv64" => Some(Arch::Riscv64),
            "s390x" => Some(Arch::S390x),
            _ => None,
        }
    }

    /// The Debian names of every architecture, for error messages.
    pub fn known() -> String {
        Arch::ALL.map(Arch::name).join(", ")
    }
}

/// `amd64, arm64`: architectures for a message.
pub fn join(arches: &[Arch]) -> String {
    arches
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An architecture name debless does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {name:?}; known: {known}", known = Arch::known())]
pub struct UnknownArch {
    /// The name given.
    pub name: String,
}

impl FromStr for Arch {
    type Err = UnknownArch;
    fn from_str(s: &str) -> Result<Arch, UnknownArch> {
        Arch::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownArch { name: s.to_owned() })
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl AsRef<str> for Arch {
    fn as_ref(&self) -> &str {
        self.name()
    }
}

impl PartialEq<str> for Arch {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl PartialEq<&str> for Arch {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl PartialEq<String> for Arch {
    fn eq(&self, other: &String) -> bool {
        self.name() == other
    }
}

impl Serialize for Arch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_as_strings() {
        let mut names: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
        for n in &names {
            assert_eq!(n.parse::<Arch>().map(Arch::name), Ok(*n));
        }
        let before = names.clone();
        names.sort();
        assert_eq!(names, before, "Arch::ALL must be in name order");
        let mut arches = Arch::ALL.to_vec();
        arches.reverse();
        arches.sort();
        assert_eq!(arches, Arch::ALL.to_vec(), "Ord must follow the names");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let e = "hurd-i386".parse::<Arch>().unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown architecture \"hurd-i386\"; known: amd64, arm64, armel, armhf, i386, loong64, mips64el, ppc64el, riscv64, s390x"
        );
        assert!("all".parse::<Arch>().is_err());
        assert!("AMD64".parse::<Arch>().is_err());
    }

    #[test]
    fn the_table_agrees_with_the_toolchains() {
        // (arch, OCI platform, triplet, e_machine, 64-bit, big-endian, signed char)
        let cases = [
            (
                Arch::Amd64,
                "amd64",
                None,
                "x86_64-linux-gnu",
                62,
                true,
                false,
                true,
            ),
            (
                Arch::Arm64,
                "arm64",
                Some("v8"),
                "aarch64-linux-gnu",
                183,
                true,
                false,
                false,
            ),
            (
                Arch::Armhf,
                "arm",
                Some("v7"),
                "arm-linux-gnueabihf",
                40,
                false,
                false,
                false,
            ),
            (
                Arch::Ppc64el,
                "ppc64le",
                None,
                "powerpc64le-linux-gnu",
                21,
                true,
                false,
                false,
            ),
            (
                Arch::S390x,
                "s390x",
                None,
                "s390x-linux-gnu",
                22,
                true,
                true,
                false,
            ),
            (
                Arch::Riscv64,
                "riscv64",
                None,
                "riscv64-linux-gnu",
                243,
                true,
                false,
                false,
            ),
        ];
        for (a, oci, variant, triplet, machine, lp64, be, signed) in cases {
            assert_eq!(a.oci_architecture(), oci, "{a}");
            assert_eq!(a.oci_variant(), variant, "{a}");
            assert_eq!(a.triplet(), triplet, "{a}");
            assert_eq!(a.elf_machine(), machine, "{a}");
            assert_eq!(a.lp64(), lp64, "{a}");
            assert_eq!(a.big_endian(), be, "{a}");
            assert_eq!(a.signed_char(), signed, "{a}");
        }
    }

    #[test]
    fn oci_platforms_map_back() {
        for a in Arch::ALL {
            assert_eq!(
                Arch::from_oci(a.oci_architecture(), a.oci_variant()),
                Some(a)
            );
        }
        assert_eq!(Arch::from_oci("arm64", None), Some(Arch::Arm64));
        assert_eq!(Arch::from_oci("arm", None), None, "armel or armhf?");
        assert_eq!(Arch::from_oci("sparc", None), None);
    }

    #[test]
    fn serde_uses_the_debian_name() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct T {
            a: Arch,
        }
        let t: T = toml::from_str("a = \"riscv64\"").unwrap();
        assert_eq!(t.a, Arch::Riscv64);
        assert_eq!(toml::to_string(&t).unwrap().trim(), "a = \"riscv64\"");
        let e = toml::from_str::<T>("a = \"sparc\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown architecture \"sparc\""), "{e}");
    }
}
