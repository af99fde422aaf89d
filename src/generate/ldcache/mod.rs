//! `/etc/ld.so.cache` as Debian's glibc 2.41 `ldconfig` would write it for an image, made
//! without running ldconfig: images have none, and it could only run for the build host's
//! architecture. Programs that look libraries up by name without the loader (Python's
//! `ctypes.util.find_library`) need the cache; the loader itself works without it.
//!
//! The pipe follows ldconfig's: the directories the configuration and the built-in list
//! name ([`conf`]) → each shared object in them by SONAME ([`elf`], with the architecture's
//! rules in [`arch`]) → entries sorted for the loader's binary search, written in the new
//! format ([`cache`]). The output is a function of the entries' paths, kinds and bytes.

mod arch;
mod cache;
mod conf;
mod elf;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::generate::GenError;
use crate::layer::Entry;

use arch::Arch;
use cache::{Cache, libcmp};
use conf::Dir;
use tree::{Node, Tree, join};

/// This generator's name in errors and rules.
const NAME: &str = "ld-cache";

/// What the cache's generator extension says wrote it, where ldconfig names its glibc
/// build. Fixed, so the cache's bytes do not change with debless's version.
pub const GENERATOR: &str = "debless ld-cache (glibc 2.41 ldconfig format)";

/// The /etc/ld.so.cache ldconfig would write for an image whose root filesystem is
/// `entries`, for Debian architecture `arch` (amd64, arm64, armhf, armel, i386, ppc64el,
/// s390x, riscv64, mips64el, loong64).
pub fn ld_so_cache(entries: &[Entry], arch: Arch) -> Result<Vec<u8>, GenError> {
    build(entries, arch, GENERATOR.as_bytes())
}

/// [`ld_so_cache`] with the generator string chosen, so tests can match ldconfig's bytes.
fn build(entries: &[Entry], arch: Arch, generator: &[u8]) -> Result<Vec<u8>, GenError> {
    let tree = Tree::new(entries);
    let dirs = conf::directories(&tree, arch.triplet());
    let mut cache = Cache::new(arch, &dirs.hwcaps_names);
    let mut seen = Inspected::new();
    for dir in &dirs.list {
        search_dir(&tree, arch, dir, &mut cache, &mut seen);
    }
    cache.write(generator)
}

/// One SONAME found in a directory and the file chosen for it.
struct Found<'a> {
    name: &'a str,
    soname: Vec<u8>,
    flags: u32,
    is_link: bool,
    isa_level: u32,
}

/// What [`elf::inspect`] said of each file's bytes, by their address: hard links and
/// symlinks share one buffer, and a package can point thousands of each at one large
/// file for the price of a tar header apiece, so each buffer is read once.
type Inspected = std::collections::HashMap<(usize, usize), Option<elf::Library>>;

/// Add the libraries in one directory to the cache (ldconfig's `search_dir`).
fn search_dir(tree: &Tree, arch: Arch, dir: &Dir, cache: &mut Cache, seen: &mut Inspected) {
    let mut found: Vec<Found> = Vec::new();
    let mut by_soname: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for name in tree.list(&dir.canon) {
        let Some(node) = tree.node(&join(&dir.canon, name)) else {
            continue;
        };
        // In a glibc-hwcaps subdirectory a symlink may have any name.
        if !is_dso(name) && (matches!(node, Node::File(_)) || dir.hwcaps.is_none()) {
            continue;
        }
        if is_temporary(name) {
            continue;
        }
        let (data, mut is_link) = match node {
            Node::File(data) => (data, false),
            Node::Symlink(_) => match tree.resolve(&format!("{}/{name}", dir.path)) {
                Some((_, Node::File(data))) => (data, true),
                // Dangling, looping, or a directory: not a library.
                _ => continue,
            },
            Node::Dir => continue,
        };
        let Some(lib) = seen
            .entry((data.as_ptr() as usize, data.len()))
            .or_insert_with(|| elf::inspect(data, arch))
            .clone()
        else {
            continue;
        };
        let mut soname = lib.soname.unwrap_or_else(|| name.as_bytes().to_vec());
        if is_link && soname != name.as_bytes() {
            // A symlink counts as one only if it is the SONAME link or the `.so`
            // development link; any other is treated as another copy of the library.
            let dev_link = name.ends_with(".so") && soname.starts_with(name.as_bytes());
            is_link = dev_link;
        }
        if is_link {
            // Both links are cached under their own name: `libfoo.so` is a key too.
            soname = name.as_bytes().to_vec();
        }
        match by_soname.get(&soname).and_then(|&i| found.get_mut(i)) {
            Some(f) => {
                // A file beats a link; between equals the higher version wins. The flags
                // stay those of the first one seen, as in ldconfig.
                let newer = (!is_link && f.is_link)
                    || (is_link == f.is_link
                        && libcmp(f.name.as_bytes(), name.as_bytes(), arch.signed_char()) < 0);
                if newer {
                    f.name = name;
                    f.is_link = is_link;
                    f.isa_level = lib.isa_level;
                }
            }
            None => {
                by_soname.insert(soname.clone(), found.len());
                found.push(Found {
                    name,
                    soname,
                    flags: lib.flags,
                    is_link,
                    isa_level: lib.isa_level,
                });
            }
        }
    }
    // ldconfig prepends to its list and then walks it, so the last found comes first.
    for f in found.iter().rev() {
        // The cache names the SONAME link (which survives library upgrades), except in
        // glibc-hwcaps subdirectories, where ldconfig makes no links.
        let filename = match dir.hwcaps {
            None => f.soname.as_slice(),
            Some(_) => f.name.as_bytes(),
        };
        cache.add(
            &dir.path,
            filename,
            &f.soname,
            f.flags,
            f.isa_level,
            dir.hwcaps.as_deref(),
        );
    }
}

/// Does the name look like a shared library or the dynamic loader (glibc's `_dl_is_dso`)?
fn is_dso(name: &str) -> bool {
    ((name.starts_with("lib") || name.starts_with("ld-")) && name.contains(".so"))
        || name.starts_with("ld.so.")
        || name.starts_with("ld64.so.")
}

/// Is this a half-written file from prelink, RPM or dpkg, which ldconfig skips?
fn is_temporary(name: &str) -> bool {
    // prelink's mkstemp names: `.#prelink#.` and six random characters.
    let prelink_tmp = name
        .len()
        .checked_sub(".#prelink#.XXXXXX".len())
        .and_then(|start| name.get(start..))
        .is_some_and(|tail| tail.starts_with(".#prelink#."));
    name.ends_with(".#prelink#")
        || prelink_tmp
        || name.contains(';')
        || name.ends_with(".dpkg-new")
        || name.ends_with(".dpkg-tmp")
}
