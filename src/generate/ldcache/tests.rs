//! The oracle is the host's own ldconfig (Debian 12's glibc 2.36 on amd64): the same tree
//! on disk and as entries must give the same cache. The format and sort order did not
//! change between 2.36 and 2.41; what did (legacy hwcap subdirectories, `dir=type` lines,
//! `.dpkg-new` files) is kept out of the shared trees and tested on its own.
//!
//! Over 600 lines: the cache is compared byte for byte against ldconfig on many small
//! trees, one test each, with the ELF builder they share.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use super::arch::Arch;
use super::cache::libcmp;
use super::*;
use crate::layer::EntryKind;

// ---------------------------------------------------------------------------------------
// Building trees.

fn file(path: &str, data: Vec<u8>) -> Entry {
    Entry {
        path: path.to_string(),
        kind: EntryKind::File {
            data: Arc::new(data),
            link_group: None,
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
        origin: "test".to_string(),
    }
}

fn link(path: &str, target: &str) -> Entry {
    Entry {
        kind: EntryKind::Symlink {
            target: target.to_string(),
        },
        mode: 0o777,
        ..file(path, Vec::new())
    }
}

/// A minimal shared object: ELF header, PT_LOAD + PT_DYNAMIC (+ PT_GNU_PROPERTY), a
/// string table and a dynamic array with DT_STRTAB and DT_SONAME. The load address is not
/// the file offset, so DT_STRTAB must be mapped through PT_LOAD.
#[derive(Clone, Copy)]
struct So {
    class64: bool,
    big_endian: bool,
    machine: u16,
    e_flags: u32,
    soname: Option<&'static str>,
    isa_needed: Option<u32>,
}

const BASE: u64 = 0x10000;

impl So {
    fn x86_64(soname: &'static str) -> So {
        So {
            class64: true,
            big_endian: false,
            machine: 62,
            e_flags: 0,
            soname: Some(soname),
            isa_needed: None,
        }
    }

    fn machine(self, class64: bool, machine: u16, e_flags: u32) -> So {
        So {
            class64,
            machine,
            e_flags,
            ..self
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let w = if self.class64 { 8 } else { 4 };
        let ehdr = if self.class64 { 64 } else { 52 };
        let phsize = if self.class64 { 56 } else { 32 };
        let phnum = 2 + usize::from(self.isa_needed.is_some());
        let strtab_off = ehdr + phnum * phsize;
        let mut strtab = vec![0u8];
        strtab.extend_from_slice(self.soname.unwrap_or("").as_bytes());
        strtab.push(0);
        let dyn_off = (strtab_off + strtab.len()).next_multiple_of(w);
        let mut dynamic = vec![(5u64, BASE + strtab_off as u64), (10, strtab.len() as u64)];
        if self.soname.is_some() {
            dynamic.push((14, 1));
        }
        dynamic.push((0, 0));
        let dyn_len = dynamic.len() * 2 * w;
        let note_off = (dyn_off + dyn_len).next_multiple_of(w);
        let note_len = if self.isa_needed.is_some() {
            16 + 8 + w
        } else {
            0
        };
        let total = note_off + note_len;

        let mut out = vec![0u8; total];
        let big = self.big_endian;
        let put = |out: &mut Vec<u8>, at: usize, len: usize, v: u64| {
            let bytes = if big {
                v.to_be_bytes()[8 - len..].to_vec()
            } else {
                v.to_le_bytes()[..len].to_vec()
            };
            out[at..at + len].copy_from_slice(&bytes);
        };
        out[..4].copy_from_slice(b"\x7fELF");
        out[4] = if self.class64 { 2 } else { 1 };
        out[5] = if big { 2 } else { 1 };
        out[6] = 1;
        put(&mut out, 16, 2, 3);
        put(&mut out, 18, 2, u64::from(self.machine));
        put(&mut out, 20, 4, 1);
        if self.class64 {
            put(&mut out, 32, 8, ehdr as u64);
            put(&mut out, 48, 4, u64::from(self.e_flags));
            put(&mut out, 52, 2, ehdr as u64);
            put(&mut out, 54, 2, phsize as u64);
            put(&mut out, 56, 2, phnum as u64);
        } else {
            put(&mut out, 28, 4, ehdr as u64);
            put(&mut out, 36, 4, u64::from(self.e_flags));
            put(&mut out, 40, 2, ehdr as u64);
            put(&mut out, 42, 2, phsize as u64);
            put(&mut out, 44, 2, phnum as u64);
        }
        let mut phdrs = vec![
            (1u32, 0usize, total, 0x1000u64),
            (2, dyn_off, dyn_len, w as u64),
        ];
        if self.isa_needed.is_some() {
            phdrs.push((0x6474_e553, note_off, note_len, w as u64));
        }
        for (i, (p_type, offset, size, align)) in phdrs.into_iter().enumerate() {
            let at = ehdr + i * phsize;
            let vaddr = BASE + offset as u64;
            put(&mut out, at, 4, u64::from(p_type));
            if self.class64 {
                put(&mut out, at + 8, 8, offset as u64);
                put(&mut out, at + 16, 8, vaddr);
                put(&mut out, at + 24, 8, vaddr);
                put(&mut out, at + 32, 8, size as u64);
                put(&mut out, at + 40, 8, size as u64);
                put(&mut out, at + 48, 8, align);
            } else {
                put(&mut out, at + 4, 4, offset as u64);
                put(&mut out, at + 8, 4, vaddr);
                put(&mut out, at + 12, 4, vaddr);
                put(&mut out, at + 16, 4, size as u64);
                put(&mut out, at + 20, 4, size as u64);
                put(&mut out, at + 28, 4, align);
            }
        }
        out[strtab_off..strtab_off + strtab.len()].copy_from_slice(&strtab);
        for (i, (tag, val)) in dynamic.into_iter().enumerate() {
            let at = dyn_off + i * 2 * w;
            put(&mut out, at, w, tag);
            put(&mut out, at + w, w, val);
        }
        if let Some(isa) = self.isa_needed {
            // One NT_GNU_PROPERTY_TYPE_0 note holding GNU_PROPERTY_X86_ISA_1_NEEDED.
            put(&mut out, note_off, 4, 4);
            put(&mut out, note_off + 4, 4, (8 + w) as u64);
            put(&mut out, note_off + 8, 4, 5);
            out[note_off + 12..note_off + 16].copy_from_slice(b"GNU\0");
            put(&mut out, note_off + 16, 4, 0xc000_8002);
            put(&mut out, note_off + 20, 4, 4);
            put(&mut out, note_off + 24, 4, u64::from(isa));
        }
        out
    }
}

/// Every object under `root` as entries, the way the layer code would see the image.
fn entries_from_disk(root: &Path) -> Vec<Entry> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for path in names {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push(link(&rel, target.to_str().unwrap()));
            } else if meta.is_dir() {
                out.push(Entry::dir(rel, 0, "test"));
                walk(root, &path, out);
            } else {
                out.push(file(&rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

fn write_tree(root: &Path, entries: &[Entry]) {
    for e in entries {
        let path = root.join(&e.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        match &e.kind {
            EntryKind::Dir => std::fs::create_dir_all(&path).unwrap(),
            EntryKind::File { data, .. } => std::fs::write(&path, data.as_slice()).unwrap(),
            EntryKind::Symlink { target } => std::os::unix::fs::symlink(target, &path).unwrap(),
        }
    }
}

/// Write `entries` to disk, run the host's ldconfig on them and require the same bytes,
/// so trees built for one case double as oracle comparisons. No-op without the oracle.
fn assert_matches_host(entries: &[Entry]) {
    let Some(ldconfig) = host_ldconfig() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path(), entries);
    std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
    let real = run_ldconfig(ldconfig, tmp.path());
    let ours = build(entries, Arch::Amd64, &generator_of(&real)).unwrap();
    if ours != real {
        let path = tmp.path().join("ours.cache");
        std::fs::write(&path, &ours).unwrap();
        assert_eq!(
            print_cache(ldconfig, &path),
            print_cache(ldconfig, &tmp.path().join("etc/ld.so.cache"))
        );
        panic!("same entries, different bytes");
    }
}

// ---------------------------------------------------------------------------------------
// Reading caches.

#[derive(Debug, PartialEq)]
struct Lib {
    flags: u32,
    key: String,
    value: String,
    hwcap: u64,
}

#[derive(Debug)]
struct Parsed {
    endian_flag: u8,
    libs: Vec<Lib>,
    hwcaps: Vec<String>,
    generator: Vec<u8>,
}

/// An independent reader of the format, for architectures the host's ldconfig refuses.
fn parse(bytes: &[u8]) -> Parsed {
    assert_eq!(&bytes[..20], b"glibc-ld.so.cache1.1");
    let big = bytes[28] == 3;
    let u32_at = |at: usize| {
        let b: [u8; 4] = bytes[at..at + 4].try_into().unwrap();
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let u64_at = |at: usize| {
        let b: [u8; 8] = bytes[at..at + 8].try_into().unwrap();
        if big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        }
    };
    let string = |at: u32| {
        let rest = &bytes[at as usize..];
        String::from_utf8(rest[..rest.iter().position(|&b| b == 0).unwrap()].to_vec()).unwrap()
    };
    let nlibs = u32_at(20) as usize;
    let len_strings = u32_at(24) as usize;
    let ext = u32_at(32) as usize;
    assert_eq!(ext, (48 + 24 * nlibs + len_strings).next_multiple_of(4));
    let libs = (0..nlibs)
        .map(|i| {
            let at = 48 + 24 * i;
            assert_eq!(u32_at(at + 12), 0, "osversion");
            Lib {
                flags: u32_at(at),
                key: string(u32_at(at + 4)),
                value: string(u32_at(at + 8)),
                hwcap: u64_at(at + 16),
            }
        })
        .collect();
    assert_eq!(u32_at(ext), 0xeaa4_2174);
    let mut hwcaps = Vec::new();
    let mut generator = Vec::new();
    for s in 0..u32_at(ext + 4) as usize {
        let at = ext + 8 + 16 * s;
        let (offset, size) = (u32_at(at + 8) as usize, u32_at(at + 12) as usize);
        match u32_at(at) {
            0 => generator = bytes[offset..offset + size].to_vec(),
            1 => {
                hwcaps = (0..size / 4)
                    .map(|i| string(u32_at(offset + 4 * i)))
                    .collect()
            }
            tag => panic!("unknown tag {tag}"),
        }
    }
    Parsed {
        endian_flag: bytes[28],
        libs,
        hwcaps,
        generator,
    }
}

// ---------------------------------------------------------------------------------------
// The host's ldconfig.

/// The host's ldconfig, if this is the amd64 Debian host the oracle tests are written for.
fn host_ldconfig() -> Option<&'static str> {
    let path = "/sbin/ldconfig";
    if !cfg!(target_arch = "x86_64") {
        // No package makes another architecture's host the amd64 oracle: skip, even on CI.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: ldconfig oracle comparison: the host is not amd64"
        );
        return None;
    }
    crate::testing::require_tool(path, "apt-get install libc-bin").then_some(path)
}

/// `ldconfig -p` of a cache file, its own file name taken out.
fn print_cache(ldconfig: &str, cache: &Path) -> String {
    let out = Command::new(ldconfig)
        .arg("-p")
        .arg("-C")
        .arg(cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ldconfig -p: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .replace(cache.to_str().unwrap(), "CACHE")
}

/// Run the host's ldconfig on `root` as if inside it; its cache bytes.
fn run_ldconfig(ldconfig: &str, root: &Path) -> Vec<u8> {
    // -X: make no symlinks (the tree stays as the entries say); -i: no aux cache.
    let out = Command::new(ldconfig)
        .arg("-X")
        .arg("-i")
        .arg("-r")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ldconfig: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(root.join("etc/ld.so.cache")).unwrap()
}

/// The generator string a cache carries, to make ours byte-comparable with it.
fn generator_of(cache: &[u8]) -> Vec<u8> {
    parse(cache).generator
}

/// Copy a host library (following its links) into `dir` under its real name; the name.
fn copy_host_lib(host: &str, dir: &Path) -> Option<String> {
    let real = std::fs::canonicalize(host).ok()?;
    let name = real.file_name()?.to_str()?.to_string();
    std::fs::copy(&real, dir.join(&name)).ok()?;
    Some(name)
}

// ---------------------------------------------------------------------------------------
// Oracle comparisons.

#[test]
fn matches_host_ldconfig_byte_for_byte() {
    let Some(ldconfig) = host_ldconfig() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let multi = root.join("usr/lib/x86_64-linux-gnu");
    std::fs::create_dir_all(&multi).unwrap();
    let copied: Vec<String> = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    ]
    .iter()
    .filter_map(|lib| copy_host_lib(lib, &multi))
    .collect();
    assert_eq!(copied.len(), 3, "the host's libc is where Debian puts it");
    let symlink =
        |target: &str, at: &str| std::os::unix::fs::symlink(target, root.join(at)).unwrap();
    // libz with its SONAME and development links, as zlib1g and zlib1g-dev ship them.
    let libz = copy_host_lib("/lib/x86_64-linux-gnu/libz.so.1", &multi).unwrap();
    symlink(&libz, "usr/lib/x86_64-linux-gnu/libz.so.1");
    symlink("libz.so.1", "usr/lib/x86_64-linux-gnu/libz.so");
    // A symlink named neither the SONAME nor the .so link counts as another copy.
    symlink(&libz, "usr/lib/x86_64-linux-gnu/libalias.so.7");
    // Something from /usr/lib/x86_64-linux-gnu with its own SONAME link.
    let usr = ["libstdc++.so.6", "libffi.so.8", "libgcc_s.so.1"]
        .iter()
        .find_map(|soname| {
            let real = copy_host_lib(&format!("/usr/lib/x86_64-linux-gnu/{soname}"), &multi)?;
            if real != *soname {
                symlink(&real, &format!("usr/lib/x86_64-linux-gnu/{soname}"));
            }
            Some(soname)
        })
        .unwrap();
    let crafted = [
        (
            "usr/lib/x86_64-linux-gnu/liblonely.so.2",
            So {
                soname: None,
                ..So::x86_64("")
            },
        ),
        (
            "usr/lib/x86_64-linux-gnu/libversion.so.9",
            So::x86_64("libversion.so.9"),
        ),
        (
            "usr/lib/x86_64-linux-gnu/libversion.so.10",
            So::x86_64("libversion.so.10"),
        ),
        (
            "usr/lib/x86_64-linux-gnu/libcraft.so.1",
            So::x86_64("libcraft.so.1"),
        ),
        (
            "usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libcraft.so.1.0",
            So {
                isa_needed: Some(0b1011),
                ..So::x86_64("libcraft.so.1")
            },
        ),
        ("usr/local/lib/libz.so.1", So::x86_64("libz.so.1")),
        ("opt/one/libone.so.1", So::x86_64("libone.so.1")),
    ];
    for (path, so) in crafted {
        std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
        std::fs::write(root.join(path), so.bytes()).unwrap();
    }
    // Found but empty: its name still enters the string table.
    std::fs::create_dir_all(multi.join("glibc-hwcaps/x86-64-v2")).unwrap();
    std::fs::write(
        multi.join("libc.so"),
        "/* GNU ld script */\nGROUP ( libc.so.6 )\n",
    )
    .unwrap();
    std::fs::write(
        multi.join("libjunk.so.1"),
        "not a library at all\n".repeat(8),
    )
    .unwrap();
    symlink("libnothere.so.3", "usr/lib/x86_64-linux-gnu/libgone.so.3");
    symlink("usr/lib", "lib");
    std::fs::create_dir_all(root.join("usr/lib64")).unwrap();
    symlink("usr/lib64", "lib64");
    symlink(
        "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "usr/lib64/ld-linux-x86-64.so.2",
    );
    // /opt/alias is /opt/one again, listed later: dropped, the first name stays.
    symlink("/opt/one", "opt/alias");
    std::fs::create_dir_all(root.join("etc/ld.so.conf.d/extra.d")).unwrap();
    let conf = [
        ("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n"),
        (
            "etc/ld.so.conf.d/libc.conf",
            "# libc default configuration\n/usr/local/lib\n",
        ),
        (
            "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
            "# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n\
             /usr/lib/x86_64-linux-gnu\n",
        ),
        (
            "etc/ld.so.conf.d/00-opt.conf",
            "  /opt/one/ # comment\ninclude\t/etc/ld.so.conf.d/extra.d/*.conf\n",
        ),
        ("etc/ld.so.conf.d/extra.d/alias.conf", "/opt/alias\n"),
    ];
    for (path, text) in conf {
        std::fs::write(root.join(path), text).unwrap();
    }

    let entries = entries_from_disk(root);
    let real = run_ldconfig(ldconfig, root);
    let ours = build(&entries, Arch::Amd64, &generator_of(&real)).unwrap();
    let ours_path = root.join("ours.cache");
    std::fs::write(&ours_path, &ours).unwrap();
    let real_path = root.join("etc/ld.so.cache");
    let printed = print_cache(ldconfig, &ours_path);
    assert_eq!(printed, print_cache(ldconfig, &real_path));
    assert_eq!(ours, real, "byte-for-byte");

    // And the cases the tree is there for.
    let libs = parse(&ours).libs;
    let keys: Vec<&str> = libs.iter().map(|l| l.key.as_str()).collect();
    let at = |key: &str| keys.iter().position(|k| *k == key).unwrap();
    assert!(at("libversion.so.10") < at("libversion.so.9"));
    assert!(at("libz.so.1") < at("libz.so"));
    for key in ["libc.so", "libjunk.so.1", "libgone.so.3", "libalias.so.7"] {
        assert!(!keys.contains(&key), "{key} is not a library");
    }
    assert!(keys.contains(&"liblonely.so.2") && keys.contains(usr));
    let by_key = |key: &str| libs.iter().filter(|l| l.key == key).collect::<Vec<_>>();
    let z = by_key("libz.so.1");
    assert_eq!(z[0].value, "/usr/local/lib/libz.so.1");
    assert_eq!(z[1].value, "/lib/x86_64-linux-gnu/libz.so.1");
    assert_eq!(by_key("libone.so.1")[0].value, "/opt/one/libone.so.1");
    let craft = by_key("libcraft.so.1");
    assert_eq!(
        craft[0].value,
        "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libcraft.so.1.0"
    );
    assert_eq!(craft[0].hwcap, 1 << 62 | 3 << 32);
    assert_eq!(craft[1].hwcap, 0);
    assert!(libs.iter().all(|l| l.flags == 0x303));
    assert!(printed.contains("ld-linux-x86-64.so.2 (libc6,x86-64) => /lib/x86_64-linux-gnu/"));
}

#[test]
fn empty_image_matches_host_ldconfig() {
    let Some(ldconfig) = host_ldconfig() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("etc")).unwrap();
    let real = run_ldconfig(ldconfig, tmp.path());
    let ours = build(
        &[Entry::dir("etc", 0, "test")],
        Arch::Amd64,
        &generator_of(&real),
    )
    .unwrap();
    assert_eq!(ours, real);
}

#[test]
fn arm_family_caches_read_by_host_ldconfig_show_their_abi() {
    let Some(ldconfig) = host_ldconfig() else {
        return;
    };
    let cases = [
        (
            "arm64",
            "aarch64-linux-gnu",
            So::x86_64("").machine(true, 183, 0),
            "AArch64",
        ),
        (
            "armhf",
            "arm-linux-gnueabihf",
            So::x86_64("").machine(false, 40, 0x0500_0400),
            "hard-float",
        ),
        (
            "armel",
            "arm-linux-gnueabi",
            So::x86_64("").machine(false, 40, 0x0500_0200),
            "soft-float",
        ),
        (
            "riscv64",
            "riscv64-linux-gnu",
            So::x86_64("").machine(true, 243, 0x5),
            "double-float",
        ),
        (
            "ppc64el",
            "powerpc64le-linux-gnu",
            So::x86_64("").machine(true, 21, 2),
            "64bit",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (arch, triplet, so, abi) in cases {
        let dir = format!("usr/lib/{triplet}");
        let entries = vec![
            link("lib", "usr/lib"),
            file(
                &format!("etc/ld.so.conf.d/{triplet}.conf"),
                format!("# Multiarch support\n/usr/local/lib/{triplet}\n/lib/{triplet}\n/usr/lib/{triplet}\n")
                    .into_bytes(),
            ),
            file(&format!("{dir}/libfoo.so.1.2"), So { soname: Some("libfoo.so.1"), ..so }.bytes()),
            link(&format!("{dir}/libfoo.so.1"), "libfoo.so.1.2"),
            // The build host's own libraries are not this architecture's.
            file(&format!("{dir}/libhost.so.1"), So::x86_64("libhost.so.1").bytes()),
        ];
        let cache = ld_so_cache(&entries, arch.parse().unwrap()).unwrap();
        let path = tmp.path().join(arch);
        std::fs::write(&path, &cache).unwrap();
        let printed = print_cache(ldconfig, &path);
        let expected = format!(
            "1 libs found in cache `CACHE'\n\tlibfoo.so.1 (libc6,{abi}) => /lib/{triplet}/libfoo.so.1\n\
             Cache generated by: {GENERATOR}\n"
        );
        assert_eq!(printed, expected, "{arch}");
    }
}

#[test]
fn s390x_cache_is_big_endian_and_host_ldconfig_refuses_it() {
    let so = So {
        big_endian: true,
        ..So::x86_64("libfoo.so.1").machine(true, 22, 0)
    };
    let entries = vec![
        file("usr/lib/s390x-linux-gnu/libfoo.so.1", so.bytes()),
        // Same machine, other byte order: not loadable there.
        file(
            "usr/lib/s390x-linux-gnu/libbar.so.1",
            So::x86_64("libbar.so.1").machine(true, 22, 0).bytes(),
        ),
        // 31-bit s390 gets no 64-bit flag.
        file(
            "usr/lib/s390x-linux-gnu/libold.so.1",
            So {
                big_endian: true,
                ..So::x86_64("libold.so.1").machine(false, 22, 0)
            }
            .bytes(),
        ),
    ];
    let cache = ld_so_cache(&entries, "s390x".parse().unwrap()).unwrap();
    let parsed = parse(&cache);
    assert_eq!(parsed.endian_flag, 3);
    assert_eq!(
        parsed.libs,
        [
            Lib {
                flags: 0x003,
                key: "libold.so.1".into(),
                value: "/usr/lib/s390x-linux-gnu/libold.so.1".into(),
                hwcap: 0
            },
            Lib {
                flags: 0x403,
                key: "libfoo.so.1".into(),
                value: "/usr/lib/s390x-linux-gnu/libfoo.so.1".into(),
                hwcap: 0
            },
        ]
    );
    assert_eq!(parsed.generator, GENERATOR.as_bytes());
    if let Some(ldconfig) = host_ldconfig() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s390x");
        std::fs::write(&path, &cache).unwrap();
        let out = Command::new(ldconfig)
            .arg("-p")
            .arg("-C")
            .arg(&path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("wrong endianness"));
    }
}

// ---------------------------------------------------------------------------------------
// Untrusted bytes.

#[test]
fn truncated_and_corrupted_elf_files_are_skipped_without_panicking() {
    let amd64 = "amd64".parse::<Arch>().unwrap();
    let s390x = "s390x".parse::<Arch>().unwrap();
    let shapes = [
        (
            So {
                isa_needed: Some(4),
                ..So::x86_64("libfoo.so.1")
            },
            amd64,
        ),
        (So::x86_64("libfoo.so.1").machine(false, 3, 0), amd64),
        (
            So {
                big_endian: true,
                ..So::x86_64("libfoo.so.1").machine(true, 22, 0)
            },
            s390x,
        ),
    ];
    let mut seed = 0x2545_f491_u64;
    let mut random = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize
    };
    for (so, arch) in shapes {
        let good = so.bytes();
        assert!(elf::inspect(&good, arch).is_some());
        let soname_end = good
            .windows(12)
            .position(|w| w == b"libfoo.so.1\0")
            .unwrap()
            + 12;
        for len in 0..good.len() {
            let lib = elf::inspect(&good[..len], arch);
            if len < soname_end {
                assert_eq!(lib, None, "prefix of {len} bytes");
            }
        }
        for at in 0..good.len() {
            for value in [0x00, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[at] = value;
                let _ = elf::inspect(&bad, arch);
            }
        }
        for _ in 0..5000 {
            let mut bad = good.clone();
            for _ in 0..1 + random() % 4 {
                let at = random() % bad.len();
                bad[at] = random() as u8;
            }
            bad.truncate(random() % (bad.len() + 1) + bad.len() / 2);
            let _ = elf::inspect(&bad, arch);
        }
    }
    // And through the whole generator, next to a good library.
    let mut bad = So::x86_64("libbad.so.1").bytes();
    bad.truncate(bad.len() - 40);
    let entries = vec![
        file("usr/lib/x86_64-linux-gnu/libbad.so.1", bad),
        file("usr/lib/x86_64-linux-gnu/libempty.so.1", Vec::new()),
        file(
            "usr/lib/x86_64-linux-gnu/libshort.so.1",
            b"\x7fELF\x02\x01\x01".to_vec(),
        ),
        file(
            "usr/lib/x86_64-linux-gnu/libgood.so.1",
            So::x86_64("libgood.so.1").bytes(),
        ),
    ];
    let keys: Vec<String> = parse(&ld_so_cache(&entries, "amd64".parse().unwrap()).unwrap())
        .libs
        .into_iter()
        .map(|l| l.key)
        .collect();
    assert_eq!(keys, ["libgood.so.1"]);
    // ldconfig reads on past the end of libbad into the zeroed rest of its last page,
    // finds a DT_NULL there and caches it under its file name; here it is skipped. The
    // rest it rejects too.
    assert_matches_host(&entries[1..]);
}

#[test]
fn dynamic_arrays_and_pointers_out_of_range_are_rejected() {
    let amd64 = "amd64".parse::<Arch>().unwrap();
    let good = So::x86_64("libfoo.so.1").bytes();
    let phdr_dyn = 64 + 56;
    let set = |at: usize, v: u64| {
        let mut b = good.clone();
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        b
    };
    // PT_DYNAMIC past the end, of size zero, and a DT_STRTAB no PT_LOAD maps that lands
    // outside the file.
    assert_eq!(elf::inspect(&set(phdr_dyn + 8, 1 << 40), amd64), None);
    assert_eq!(elf::inspect(&set(phdr_dyn + 32, 0), amd64), None);
    assert_eq!(
        elf::inspect(&set(64 + 32, 0), amd64),
        None,
        "PT_LOAD of size 0"
    );
    // e_phoff beyond the file, and e_phnum so large the headers run off its end.
    assert_eq!(elf::inspect(&set(32, u64::MAX), amd64), None);
    let mut many = good.clone();
    many[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
    assert_eq!(elf::inspect(&many, amd64), None);
    // Not a shared object.
    let mut exec = good.clone();
    exec[16] = 2;
    assert_eq!(elf::inspect(&exec, amd64), None);
}

#[test]
fn machines_classes_and_float_abis_follow_each_architectures_ldconfig() {
    let flags = |arch: &str, so: So| {
        elf::inspect(&so.bytes(), arch.parse::<Arch>().unwrap()).map(|l| l.flags)
    };
    let x = So::x86_64("libx.so.1");
    assert_eq!(flags("amd64", x), Some(0x303));
    assert_eq!(flags("amd64", x.machine(false, 62, 0)), Some(0x803), "x32");
    assert_eq!(flags("amd64", x.machine(false, 3, 0)), Some(0x003), "i386");
    assert_eq!(flags("i386", x.machine(false, 3, 0)), Some(0x003));
    assert_eq!(flags("amd64", x.machine(true, 3, 0)), None, "64-bit i386");
    assert_eq!(flags("amd64", x.machine(true, 183, 0)), None, "aarch64");
    assert_eq!(flags("arm64", x), None, "x86-64 in arm64");
    assert_eq!(
        flags("arm64", x.machine(false, 40, 0x0500_0400)),
        Some(0x903)
    );
    assert_eq!(
        flags("armhf", x.machine(false, 40, 0x0400_0400)),
        Some(0x003),
        "EABI4"
    );
    assert_eq!(
        flags("armhf", x.machine(false, 40, 0x0500_0000)),
        Some(0x003),
        "unmarked"
    );
    assert_eq!(
        flags("riscv64", x.machine(true, 243, 0x1)),
        Some(0xf03),
        "soft float"
    );
    assert_eq!(
        flags("riscv64", x.machine(true, 243, 0x3)),
        None,
        "single float"
    );
    assert_eq!(flags("riscv64", x.machine(true, 243, 0x15)), None, "RVE");
    assert_eq!(flags("ppc64el", x.machine(true, 21, 2)), Some(0x503));
    assert_eq!(flags("mips64el", x.machine(true, 8, 0)), Some(0x703));
    assert_eq!(flags("mips64el", x.machine(true, 8, 0x400)), Some(0xe03));
    assert_eq!(
        flags("mips64el", x.machine(false, 8, 0x20)),
        Some(0x603),
        "n32"
    );
    assert_eq!(flags("loong64", x.machine(true, 258, 0x43)), Some(0x1203));
    assert_eq!(flags("loong64", x.machine(true, 258, 0x1)), Some(0x1103));
    assert_eq!(flags("loong64", x.machine(true, 258, 0x2)), None);
    // Only x86's ldconfig reads the ISA level.
    let isa = So {
        isa_needed: Some(0b110),
        ..x
    };
    let level = |arch: &str, so: So| {
        elf::inspect(&so.bytes(), arch.parse::<Arch>().unwrap()).map(|l| l.isa_level)
    };
    assert_eq!(level("amd64", isa), Some(2));
    assert_eq!(
        level(
            "arm64",
            So {
                isa_needed: Some(0b110),
                ..x.machine(true, 183, 0)
            }
        ),
        Some(0)
    );
}

// ---------------------------------------------------------------------------------------
// Directories, names and order.

/// The cache's (key, value) pairs for `entries` on amd64.
fn listing(entries: &[Entry]) -> Vec<(String, String)> {
    parse(&ld_so_cache(entries, "amd64".parse().unwrap()).unwrap())
        .libs
        .into_iter()
        .map(|l| (l.key, l.value))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn without_ld_so_conf_the_debian_configuration_and_builtin_dirs_apply() {
    let lib = |path: &str, soname: &'static str| file(path, So::x86_64(soname).bytes());
    // No /etc at all: the built-in list, multiarch first, finds both.
    let bare = [
        lib("usr/lib/x86_64-linux-gnu/libb.so.1", "libb.so.1"),
        lib("usr/lib/liba.so.1", "liba.so.1"),
        lib("opt/x/libx.so.1", "libx.so.1"),
    ];
    assert_eq!(
        listing(&bare),
        pairs(&[
            ("libb.so.1", "/usr/lib/x86_64-linux-gnu/libb.so.1"),
            ("liba.so.1", "/usr/lib/liba.so.1"),
        ])
    );
    assert_matches_host(&bare);
    // libc6's ld.so.conf.d file is read as libc-bin's ld.so.conf would include it.
    let mut with_conf = bare.to_vec();
    with_conf.push(file("etc/ld.so.conf.d/x.conf", b"/opt/x\n".to_vec()));
    assert_eq!(listing(&with_conf).len(), 3);
    // An ld.so.conf that includes nothing means nothing is included.
    with_conf.push(file("etc/ld.so.conf", b"# empty\n".to_vec()));
    assert_eq!(listing(&with_conf).len(), 2);
    assert_matches_host(&with_conf);
}

#[test]
fn configuration_syntax_includes_and_duplicates() {
    let lib = |path: &str, soname: &'static str| file(path, So::x86_64(soname).bytes());
    let conf: &[u8] = b"include ld.so.conf.d/*.conf /etc/extra/?.conf\n\
              hwcap 1 nosegneg\n\
              \t/srv/a//  # a comment\n\
              /\n";
    let mut entries = vec![
        file("etc/ld.so.conf", conf.to_vec()),
        file("etc/ld.so.conf.d/b.conf", b"/srv/b\n".to_vec()),
        file("etc/ld.so.conf.d/.hidden.conf", b"/srv/hidden\n".to_vec()),
        file(
            "etc/ld.so.conf.d/a.conf",
            b"/srv/c\r\n/srv/via-link\n".to_vec(),
        ),
        file("etc/extra/1.conf", b"/srv/d\n".to_vec()),
        file("etc/extra/10.conf", b"/srv/hidden\n".to_vec()),
        lib("srv/a/liba.so.1", "liba.so.1"),
        lib("srv/b/libb.so.1", "libb.so.1"),
        lib("srv/c/libc1.so.1", "libc1.so.1"),
        lib("srv/d/libd.so.1", "libd.so.1"),
        lib("srv/hidden/libh.so.1", "libh.so.1"),
        link("srv/via-link", "a"),
    ];
    // Sorted include order (a.conf, b.conf, then extra), `#` and `\r` handled, trailing
    // slashes dropped, `/` alone ignored, and /srv/a cached under the name that reached
    // it first.
    let expected = pairs(&[
        ("libd.so.1", "/srv/d/libd.so.1"),
        ("libc1.so.1", "/srv/c/libc1.so.1"),
        ("libb.so.1", "/srv/b/libb.so.1"),
        ("liba.so.1", "/srv/via-link/liba.so.1"),
    ]);
    assert_eq!(listing(&entries), expected);
    assert_matches_host(&entries);
    // A file that includes itself would crash ldconfig; here it changes nothing.
    entries[0] = file(
        "etc/ld.so.conf",
        [conf, b"include /etc/ld.so.conf\n"].concat(),
    );
    assert_eq!(listing(&entries), expected);
}

#[test]
fn links_copies_and_hwcaps_subdirectories_choose_names_like_ldconfig() {
    let dir = "usr/lib/x86_64-linux-gnu";
    let so = |soname: &'static str| So::x86_64(soname).bytes();
    let entries = [
        file(&format!("{dir}/libfoo.so.1.2.3"), so("libfoo.so.1")),
        file(&format!("{dir}/libfoo.so.1.2.10"), so("libfoo.so.1")),
        link(&format!("{dir}/libfoo.so.1"), "libfoo.so.1.2.10"),
        link(&format!("{dir}/libfoo.so"), "libfoo.so.1"),
        file(
            &format!("{dir}/libfoo.so.1.2.11.dpkg-new"),
            so("libfoo.so.1"),
        ),
        link(&format!("{dir}/libloop.so.1"), "libloop.so.1"),
        file(
            &format!("{dir}/glibc-hwcaps/x86-64-v4/libfoo.so.1.2.10"),
            so("libfoo.so.1"),
        ),
        file(
            &format!("{dir}/glibc-hwcaps/x86-64-v4/libfoo.so.1.2.11.dpkg-tmp"),
            so("libfoo.so.1"),
        ),
        link(
            &format!("{dir}/glibc-hwcaps/x86-64-v2/any-name"),
            "../../libfoo.so.1.2.3",
        ),
        file(
            &format!("{dir}/glibc-hwcaps/x86-64-v2/plain-file"),
            so("libplain.so.1"),
        ),
        file(&format!("{dir}/glibc-hwcaps/not-a-dir"), so("libnot.so.1")),
        file(
            &format!("{dir}/glibc-hwcaps/a:b/libcolon.so.1"),
            so("libcolon.so.1"),
        ),
    ];
    let cache = ld_so_cache(&entries, "amd64".parse().unwrap()).unwrap();
    let parsed = parse(&cache);
    let got: Vec<(&str, &str, u64)> = parsed
        .libs
        .iter()
        .map(|l| (l.key.as_str(), l.value.as_str(), l.hwcap))
        .collect();
    let d = "/usr/lib/x86_64-linux-gnu";
    assert_eq!(
        got,
        [
            (
                "libfoo.so.1",
                &*format!("{d}/glibc-hwcaps/x86-64-v2/any-name"),
                1 << 62
            ),
            (
                "libfoo.so.1",
                &*format!("{d}/glibc-hwcaps/x86-64-v4/libfoo.so.1.2.10"),
                1 << 62 | 1
            ),
            ("libfoo.so.1", &*format!("{d}/libfoo.so.1"), 0),
            ("libfoo.so", &*format!("{d}/libfoo.so"), 0),
        ]
    );
    assert_eq!(parsed.hwcaps, ["x86-64-v2", "x86-64-v4"]);
    // glibc 2.36 does not skip dpkg's temporary files yet.
    let without_dpkg: Vec<Entry> = entries
        .into_iter()
        .filter(|e| !e.path.contains(".dpkg-"))
        .collect();
    assert_matches_host(&without_dpkg);
}

#[test]
fn libcmp_compares_digit_runs_as_numbers() {
    let cmp = |a: &str, b: &str| libcmp(a.as_bytes(), b.as_bytes(), true).signum();
    assert_eq!(cmp("libfoo.so.10", "libfoo.so.9"), 1);
    assert_eq!(cmp("libfoo.so.1", "libfoo.so"), 1);
    assert_eq!(cmp("libfoo.so", "libfoo.so"), 0);
    assert_eq!(cmp("libfoo.so.01", "libfoo.so.1"), 0);
    assert_eq!(cmp("lib2", "liba"), 1, "digits sort after letters");
    assert_eq!(cmp("liba", "lib2"), -1);
    // Bytes above 0x7f are negative as x86's signed char, large as Arm's unsigned one.
    assert_eq!(cmp("lib\u{e9}", "libz"), -1);
    assert_eq!(libcmp("lib\u{e9}".as_bytes(), b"libz", false).signum(), 1);
}

#[test]
fn string_table_shares_suffixes_between_keys_and_values() {
    let entries = [file(
        "usr/lib/libfoo.so.1",
        So::x86_64("libfoo.so.1").bytes(),
    )];
    let cache = ld_so_cache(&entries, "amd64".parse().unwrap()).unwrap();
    let key = u32::from_le_bytes(cache[52..56].try_into().unwrap());
    let value = u32::from_le_bytes(cache[56..60].try_into().unwrap());
    assert_eq!(key - value, "/usr/lib/".len() as u32);
    assert_eq!(u32::from_le_bytes(cache[24..28].try_into().unwrap()), 21);
    assert_matches_host(&entries);
}

#[test]
fn output_is_deterministic_and_independent_of_entry_order() {
    let mut entries = vec![
        link("lib", "usr/lib"),
        file(
            "usr/lib/x86_64-linux-gnu/libb.so.2",
            So::x86_64("libb.so.2").bytes(),
        ),
        file(
            "usr/lib/x86_64-linux-gnu/liba.so.1",
            So::x86_64("liba.so.1").bytes(),
        ),
        file(
            "usr/lib/x86_64-linux-gnu/libc.so.6",
            So::x86_64("libc.so.6").bytes(),
        ),
        link("usr/lib/x86_64-linux-gnu/liba.so", "liba.so.1"),
    ];
    let first = ld_so_cache(&entries, "amd64".parse().unwrap()).unwrap();
    entries.reverse();
    assert_eq!(
        ld_so_cache(&entries, "amd64".parse().unwrap()).unwrap(),
        first
    );
    let keys: Vec<String> = parse(&first).libs.into_iter().map(|l| l.key).collect();
    assert_eq!(keys, ["libc.so.6", "libb.so.2", "liba.so.1", "liba.so"]);
    assert_matches_host(&entries);
}

#[test]
fn symlink_loops_and_dangling_configuration_are_harmless() {
    let entries = [
        link("etc/ld.so.conf", "ld.so.conf"),
        link("usr/lib/x86_64-linux-gnu", "../lib/x86_64-linux-gnu"),
        link("a", "b"),
        link("b", "a"),
        link("usr/lib/liba.so.1", "/a"),
        file("usr/lib/libz.so.1", So::x86_64("libz.so.1").bytes()),
    ];
    assert_eq!(
        listing(&entries),
        pairs(&[("libz.so.1", "/usr/lib/libz.so.1")])
    );
    assert_matches_host(&entries);
}

#[test]
fn every_architecture_writes_an_empty_cache_for_an_empty_tree() {
    for arch in Arch::ALL {
        let cache = ld_so_cache(&[], arch).unwrap();
        assert_eq!(parse(&cache).libs, [], "{arch}");
    }
}

#[test]
fn every_entry_flags_match_the_architecture_default() {
    // What each architecture's loader accepts (its _DL_CACHE_DEFAULT_ID or check).
    let expected = [
        ("amd64", (62, true, 0, 0x303)),
        ("arm64", (183, true, 0, 0xa03)),
        ("armhf", (40, false, 0x0500_0400, 0x903)),
        ("ppc64el", (21, true, 2, 0x503)),
        ("riscv64", (243, true, 0x5, 0x1003)),
        ("mips64el", (8, true, 0x7, 0x703)),
        ("loong64", (258, true, 0x3, 0x1203)),
        ("i386", (3, false, 0, 0x003)),
    ];
    for (arch, (machine, class64, e_flags, flags)) in expected {
        let triplet = arch.parse::<Arch>().unwrap().triplet();
        let so = So::x86_64("libq.so.1").machine(class64, machine, e_flags);
        let entries = [file(&format!("usr/lib/{triplet}/libq.so.1"), so.bytes())];
        let libs = parse(&ld_so_cache(&entries, arch.parse().unwrap()).unwrap()).libs;
        assert_eq!(libs.len(), 1, "{arch}");
        assert_eq!(libs[0].flags, flags, "{arch}");
    }
}
