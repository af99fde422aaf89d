//! Real .debs for tests: `dpkg-deb --build` for well-formed ones, `ar` + `tar` by hand for
//! the hostile ones dpkg-deb refuses to make.
//!
//! Unit tests use it under `cfg(test)`; integration tests through the `test-support`
//! feature, which `cargo test` turns on (Cargo.toml's self dev-dependency).

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::PathBuf;
use std::process::Command;

/// The mtime every built entry gets: dpkg-deb clamps to `SOURCE_DATE_EPOCH`.
pub const EPOCH: u64 = 1_700_000_000;

/// A package's root tree, built into a .deb with dpkg-deb.
pub struct PackageDir {
    dir: tempfile::TempDir,
}

impl PackageDir {
    /// An empty package `name` with a minimal control file.
    pub fn new(name: &str) -> PackageDir {
        let dir = tempfile::tempdir().unwrap();
        let debian = dir.path().join("root/DEBIAN");
        fs::create_dir_all(&debian).unwrap();
        fs::set_permissions(&debian, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            debian.join("control"),
            format!(
                "Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: T <t@example.org>\nDescription: test package\n"
            ),
        )
        .unwrap();
        PackageDir { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn at(&self, path: &str) -> PathBuf {
        let p = self.root().join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        p
    }

    /// A control-area file next to `control` (e.g. `md5sums`).
    pub fn control_file(&self, name: &str, text: &str) -> &Self {
        fs::write(self.root().join("DEBIAN").join(name), text).unwrap();
        self
    }

    /// A directory with `mode`.
    pub fn dir(&self, path: &str, mode: u32) -> &Self {
        let p = self.at(path);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// A regular file with `mode`.
    pub fn file(&self, path: &str, data: &[u8], mode: u32) -> &Self {
        let p = self.at(path);
        fs::write(&p, data).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        self
    }

    /// A symlink.
    pub fn symlink(&self, path: &str, target: &str) -> &Self {
        symlink(target, self.at(path)).unwrap();
        self
    }

    /// A hard link to an existing file of the package.
    pub fn hardlink(&self, path: &str, existing: &str) -> &Self {
        fs::hard_link(self.root().join(existing), self.at(path)).unwrap();
        self
    }

    /// Build with `dpkg-deb -Z<compression>` (`none`, `gzip`, `xz`, `zstd`).
    pub fn build(&self, compression: &str) -> Vec<u8> {
        // The package root itself ends up as `./` in data.tar; give it a normal mode.
        fs::set_permissions(self.root(), fs::Permissions::from_mode(0o755)).unwrap();
        let out = self.dir.path().join("out.deb");
        let status = Command::new("dpkg-deb")
            .env("SOURCE_DATE_EPOCH", EPOCH.to_string())
            .args(["--root-owner-group", &format!("-Z{compression}"), "--build"])
            .arg(self.root())
            .arg(&out)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("dpkg-deb must be installed to run these tests");
        assert!(status.success(), "dpkg-deb failed");
        fs::read(out).unwrap()
    }
}

/// One handcrafted tar member, with any path bytes (tar's builder refuses unsafe ones).
pub struct Raw<'a> {
    /// The member name as stored, unchecked (`./../etc/x` is fine).
    pub path: &'a [u8],
    /// Regular, directory, symlink, hard link, FIFO, device...
    pub kind: tar::EntryType,
    /// The link target, for links.
    pub link: &'a [u8],
    /// The content, for regular files.
    pub data: &'a [u8],
    /// Permission bits, setuid/setgid included.
    pub mode: u32,
}

impl<'a> Raw<'a> {
    /// A regular file.
    pub fn file(path: &'a str, data: &'a [u8]) -> Raw<'a> {
        Raw {
            path: path.as_bytes(),
            kind: tar::EntryType::Regular,
            link: b"",
            data,
            mode: 0o644,
        }
    }

    /// A directory.
    pub fn dir(path: &'a str) -> Raw<'a> {
        Raw {
            kind: tar::EntryType::Directory,
            mode: 0o755,
            ..Raw::file(path, b"")
        }
    }

    /// A symlink or hard link (`kind`) to `link`.
    pub fn link(kind: tar::EntryType, path: &'a str, link: &'a str) -> Raw<'a> {
        Raw {
            kind,
            link: link.as_bytes(),
            mode: 0o777,
            ..Raw::file(path, b"")
        }
    }
}

/// A tar stream of `entries`, written with raw GNU headers; a path or link over 100
/// bytes goes in a GNU long-name (`L`) or long-link (`K`) record first, as GNU tar and
/// dpkg-deb write them.
pub fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        for (value, kind) in [
            (e.path, tar::EntryType::GNULongName),
            (e.link, tar::EntryType::GNULongLink),
        ] {
            if value.len() > 100 {
                let mut long = value.to_vec();
                long.push(0);
                let mut h = tar::Header::new_gnu();
                h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
                h.set_entry_type(kind);
                h.set_size(long.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append(&h, &long[..]).unwrap();
            }
        }
        let mut h = tar::Header::new_gnu();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..e.path.len().min(100)].copy_from_slice(&e.path[..e.path.len().min(100)]);
        gnu.linkname[..e.link.len().min(100)].copy_from_slice(&e.link[..e.link.len().min(100)]);
        h.set_entry_type(e.kind);
        h.set_size(e.data.len() as u64);
        h.set_mode(e.mode);
        h.set_mtime(EPOCH);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append(&h, e.data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A tar stream holding one GNU sparse file at `path` that stores 512 bytes and unpacks
/// to `real_size` (all zeros but its last 512): the shape of an entry that expands when
/// read.
pub fn sparse_tar(path: &str, real_size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..path.len()].copy_from_slice(path.as_bytes());
    gnu.sparse[0].set_offset(real_size - 512);
    gnu.sparse[0].set_length(512);
    gnu.set_real_size(real_size);
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_size(512);
    h.set_mode(0o644);
    h.set_mtime(EPOCH);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &[7u8; 512][..]).unwrap();
    b.into_inner().unwrap()
}

/// An ar archive of `members`, as dpkg-deb lays them out.
pub fn raw_ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = ar::Builder::new(Vec::new());
    for (name, data) in members {
        b.append(
            &ar::Header::new(name.as_bytes().to_vec(), data.len() as u64),
            *data,
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

/// A .deb with a valid control.tar and `data` stored as member `data_name`.
pub fn deb_with(data_name: &str, data: &[u8]) -> Vec<u8> {
    let control = b"Package: evil\nVersion: 1\n";
    let control_tar = raw_tar(&[Raw::file("./control", control)]);
    raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", &control_tar),
        (data_name, data),
    ])
}

/// A .deb whose uncompressed data.tar holds `entries`.
pub fn hostile(entries: &[Raw]) -> Vec<u8> {
    deb_with("data.tar", &raw_tar(entries))
}

/// Compress `data` as dpkg would for member suffix `ext` (`gz`, `xz`, `zst`).
pub fn compress(ext: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match ext {
        "gz" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "xz" => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zst" => zstd::encode_all(data, 3).unwrap(),
        other => panic!("no compressor for {other}"),
    }
}
