//! An upstream release tarball (Node.js's, say) read like a .deb's data.tar: the same
//! entry checks (no absolute or `..` paths, no device nodes, no setuid file, no hard link
//! to outside), the same selection, and the same decompression bound, with its top
//! directory moved under the rule's prefix and every file owned by root.

use std::cell::Cell;
use std::rc::Rc;

use super::decompress::{Compression, TarMember};
use super::{ReadOptions, Reader, Selected};
use crate::deb::paths;
use crate::deb::{DebError, Selection};
use crate::layer::Entry;

/// Where a tarball's tree goes: its top directory `strip` becomes the image directory
/// `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    /// The top directory as the tarball names it (`node-v22.11.0-linux-x64`); empty when
    /// the tarball has none.
    pub strip: String,
    /// The image directory it becomes, without leading or trailing `/` (`nodejs`);
    /// empty for the image root.
    pub prefix: String,
}

impl Relocation {
    /// `strip` and `prefix` as a rule writes them (`./node-v22/`, `/nodejs/`).
    pub fn new(strip: &str, prefix: &str) -> Relocation {
        let strip = strip.trim_start_matches("./").trim_matches('/');
        Relocation {
            strip: strip.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    /// The path of a tarball path below the top directory (empty for the top directory
    /// itself), or `None` when it is outside it.
    fn rest<'p>(&self, shipped: &'p str) -> Option<&'p str> {
        if self.strip.is_empty() {
            return Some(shipped);
        }
        if shipped == self.strip {
            return Some("");
        }
        shipped.strip_prefix(&self.strip)?.strip_prefix('/')
    }

    /// Where a (normalised) tarball path goes in the image, before the merged-/usr
    /// rewrite; `None` when it is outside the top directory.
    pub(super) fn place(&self, shipped: &str) -> Option<String> {
        let rest = self.rest(shipped)?;
        Some(match (self.prefix.is_empty(), rest.is_empty()) {
            (true, _) => rest.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rest}", self.prefix),
        })
    }

    /// A symlink of a tarball must stay inside the tarball's own tree: the tree moves to
    /// `prefix`, so an absolute target, or one climbing above the top directory, would
    /// point at whatever the image has there instead.
    pub(super) fn check_symlink(&self, shipped: &str, target: &str) -> Result<(), String> {
        if target.starts_with('/') {
            return Err(
                "is absolute: the tarball's tree moves, so it would point into the image instead"
                    .to_owned(),
            );
        }
        let rest = self.rest(shipped).unwrap_or(shipped);
        if rest.is_empty() || paths::escapes_root(rest, target) {
            return Err(format!(
                "points outside the tarball's top directory (which goes to /{})",
                self.prefix
            ));
        }
        Ok(())
    }
}

/// What a tarball contributes.
#[derive(Debug, Clone)]
pub struct Tarball {
    /// Selected entries, in archive order, origin = `tarball:<name>`.
    pub entries: Vec<Entry>,
    /// Include patterns that matched no path.
    pub unmatched: Vec<String>,
}

/// The most a tarball of `size` compressed bytes may decompress to. A tarball has no
/// Installed-Size, so the bound comes from the size the lock pins: xz compresses a Node.js
/// or JDK tree about 6:1 and gzip about 3:1; 40:1 plus 64 MiB leaves room for any real
/// release and still stops a decompression bomb long before it fills memory.
pub fn max_tarball_bytes(size: u64) -> u64 {
    size.saturating_mul(40).saturating_add(64 << 20)
}

/// Read an upstream tarball held in memory (gzip, xz, zstd or plain tar, told apart by
/// their magic numbers) and keep the entries `sel` selects, at their relocated paths.
/// `origin` is `tarball:<name>`; `file` (the tarball's file name) names it in messages.
pub fn read_tarball(
    bytes: &[u8],
    origin: &str,
    file: &str,
    sel: &Selection,
    relocation: &Relocation,
    opts: &ReadOptions,
) -> Result<Tarball, DebError> {
    let reader = Reader {
        package: origin,
        sel,
        opts,
        left: Cell::new(opts.max_data_bytes),
        relocation: Some(relocation),
    };
    let compression = compression(bytes).ok_or_else(|| {
        reader.unsupported(format!(
            "{file} is not a tar archive debless reads: it reads plain tar, gzip, xz and zstd"
        ))
    })?;
    let member = TarMember {
        name: file.to_owned(),
        data: bytes,
        compression,
        limit: opts.max_data_bytes,
        hit: Rc::new(Cell::new(false)),
    };
    let Selected {
        entries, unmatched, ..
    } = reader.data(&member)?;
    Ok(Tarball { entries, unmatched })
}

/// The compression of a tarball by its magic number, or a plain tar by its ustar magic.
fn compression(bytes: &[u8]) -> Option<Compression> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        Some(Compression::Gzip)
    } else if bytes.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some(Compression::Xz)
    } else if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some(Compression::Zstd)
    } else if bytes.get(257..262) == Some(b"ustar") {
        Some(Compression::None)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deb::testdeb::{Raw, compress, raw_tar};
    use crate::layer::EntryKind;
    use tar::EntryType;

    fn read(bytes: &[u8], paths: Option<&[&str]>) -> Result<Tarball, DebError> {
        let include: Option<Vec<String>> = paths.map(|p| p.iter().map(|s| s.to_string()).collect());
        let sel = Selection::new(include.as_deref(), &[], &[], &[]).unwrap();
        read_tarball(
            bytes,
            "tarball:node",
            "node.tar",
            &sel,
            &Relocation::new("node-v1", "/nodejs"),
            &ReadOptions {
                merged_usr: true,
                max_data_bytes: Some(max_tarball_bytes(bytes.len() as u64)),
            },
        )
    }

    fn entry_error(e: DebError) -> (String, String) {
        match e {
            DebError::Entry {
                package,
                path,
                what,
            } => {
                assert_eq!(package, "tarball:node");
                (path, what)
            }
            other => panic!("not an entry error: {other}"),
        }
    }

    #[test]
    fn selected_files_land_under_the_prefix_owned_by_root() {
        let mut owned = raw_tar(&[
            Raw::dir("node-v1/"),
            Raw::dir("node-v1/bin/"),
            Raw {
                mode: 0o755,
                ..Raw::file("node-v1/bin/node", b"ELF")
            },
            Raw::file("node-v1/LICENSE", b"MIT"),
            Raw::file("node-v1/include/node.h", b"h"),
            Raw::link(EntryType::Symlink, "node-v1/bin/npm", "../lib/npm.js"),
        ]);
        // The builder's uid, as upstream tarballs carry it, in the first header.
        owned[108..115].copy_from_slice(b"0001750");
        let mut h = tar::Header::from_byte_slice(&owned[..512]).clone();
        h.set_cksum();
        owned[..512].copy_from_slice(h.as_bytes());
        for (ext, bytes) in [
            ("tar", owned.clone()),
            ("gz", compress("gz", &owned)),
            ("xz", compress("xz", &owned)),
            ("zst", compress("zst", &owned)),
        ] {
            let t = read(&bytes, Some(&["/nodejs/bin/node", "/nodejs/LICENSE"]))
                .unwrap_or_else(|e| panic!("{ext}: {e}"));
            let paths: Vec<&str> = t.entries.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(
                paths,
                ["nodejs", "nodejs/bin", "nodejs/bin/node", "nodejs/LICENSE"],
                "{ext}"
            );
            assert!(
                t.entries
                    .iter()
                    .all(|e| e.uid == 0 && e.gid == 0 && e.origin == "tarball:node")
            );
            assert!(
                matches!(&t.entries[2].kind, EntryKind::File { data, .. } if data.as_slice() == b"ELF")
            );
            assert_eq!(t.entries[2].mode, 0o755);
            assert!(t.unmatched.is_empty());
        }
    }

    #[test]
    fn hostile_entries_are_refused_as_in_a_deb() {
        let dotdot = raw_tar(&[Raw::file("node-v1/../../etc/passwd", b"x")]);
        let (path, what) = entry_error(read(&dotdot, None).unwrap_err());
        assert_eq!(path, "/node-v1/../../etc/passwd");
        assert!(what.contains("has a `..` component"), "{what}");

        let outside = raw_tar(&[Raw::file("etc/cron.d/x", b"x")]);
        let e = read(&outside, None).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "tarball node: /etc/cron.d/x: is outside the tarball's top directory node-v1/"
            ),
            "{e}"
        );

        let escape = raw_tar(&[Raw::link(
            EntryType::Symlink,
            "node-v1/bin/x",
            "../../../etc/shadow",
        )]);
        let (path, what) = entry_error(read(&escape, None).unwrap_err());
        assert_eq!(path, "/nodejs/bin/x");
        assert!(
            what.contains("outside the tarball's top directory"),
            "{what}"
        );

        let absolute = raw_tar(&[Raw::link(EntryType::Symlink, "node-v1/bin/sh", "/bin/sh")]);
        let (_, what) = entry_error(read(&absolute, None).unwrap_err());
        assert!(what.contains("is absolute"), "{what}");

        let hard = raw_tar(&[Raw::link(EntryType::Link, "node-v1/bin/x", "etc/passwd")]);
        assert!(
            read(&hard, None)
                .unwrap_err()
                .to_string()
                .contains("outside the tarball's top directory")
        );

        let suid = raw_tar(&[Raw {
            mode: 0o4755,
            ..Raw::file("node-v1/bin/node", b"x")
        }]);
        let (_, what) = entry_error(read(&suid, None).unwrap_err());
        assert!(what.contains("setuid"), "{what}");

        let device = raw_tar(&[Raw {
            kind: EntryType::Char,
            ..Raw::file("node-v1/dev/mem", b"")
        }]);
        let (_, what) = entry_error(read(&device, None).unwrap_err());
        assert!(what.contains("device node"), "{what}");
    }

    #[test]
    fn a_decompression_bomb_and_a_non_tarball_are_refused() {
        let big = vec![0u8; 80 << 20];
        let tar = raw_tar(&[Raw::dir("node-v1/"), Raw::file("node-v1/zeros", &big)]);
        let bomb = compress("xz", &tar);
        assert!(bomb.len() < 1 << 20);
        let e = read(&bomb, None).unwrap_err();
        assert!(matches!(e, DebError::TooLarge { .. }), "{e}");
        assert!(
            e.to_string().contains("far beyond its compressed size"),
            "{e}"
        );

        let html = b"<!DOCTYPE html><p>moved</p>";
        let e = read(html, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tarball node: node.tar is not a tar archive debless reads: it reads plain tar, gzip, xz and zstd"
        );
    }

    #[test]
    fn paths_move_from_the_top_directory_to_the_prefix() {
        let r = Relocation::new("./node-v22/", "/nodejs/");
        assert_eq!(r.place("node-v22").as_deref(), Some("nodejs"));
        assert_eq!(
            r.place("node-v22/bin/node").as_deref(),
            Some("nodejs/bin/node")
        );
        assert_eq!(r.place("node-v220/bin/node"), None);
        assert_eq!(r.place("etc/passwd"), None);
        let root = Relocation::new("", "/");
        assert_eq!(root.place("usr/bin/x").as_deref(), Some("usr/bin/x"));
        let top = Relocation::new("jdk", "/");
        assert_eq!(top.place("jdk").as_deref(), Some(""));
    }

    #[test]
    fn symlinks_stay_inside_the_tarball() {
        let r = Relocation::new("node", "/nodejs");
        assert!(
            r.check_symlink("node/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js")
                .is_ok()
        );
        assert!(
            r.check_symlink("node/bin/x", "../../etc/passwd")
                .unwrap_err()
                .contains("outside the tarball's top directory (which goes to /nodejs)")
        );
        assert!(
            r.check_symlink("node/bin/x", "/bin/sh")
                .unwrap_err()
                .starts_with("is absolute")
        );
    }

    #[test]
    fn a_bomb_is_bounded_by_the_locked_size() {
        assert_eq!(max_tarball_bytes(1 << 20), (40 << 20) + (64 << 20));
        assert_eq!(max_tarball_bytes(u64::MAX), u64::MAX);
    }
}
