//! Layer writer tests: determinism, tar rules, and read-back by GNU tar and Python's tarfile.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::*;

const CLAMP: u64 = 1_700_000_000;

fn file(path: &str, body: &[u8], mode: u32) -> Entry {
    Entry {
        path: path.to_string(),
        kind: EntryKind::File {
            data: Arc::new(body.to_vec()),
            link_group: None,
        },
        mode,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        origin: "test".to_string(),
    }
}

fn symlink(path: &str, target: &str) -> Entry {
    Entry {
        path: path.to_string(),
        kind: EntryKind::Symlink {
            target: target.to_string(),
        },
        mode: 0o777,
        uid: 0,
        gid: 0,
        mtime: 1_600_000_000,
        origin: "test".to_string(),
    }
}

fn linked(path: &str, body: &Arc<Vec<u8>>, group: &str) -> Entry {
    Entry {
        kind: EntryKind::File {
            data: body.clone(),
            link_group: Some(group.to_string()),
        },
        ..file(path, b"", 0o755)
    }
}

/// Paths of the sample layer that exercise the ustar limits.
fn split_name() -> String {
    format!("usr/share/{}/{}", "a".repeat(60), "b".repeat(60))
}
fn very_long_name() -> String {
    format!("usr/lib/{}file", format!("{}/", "c".repeat(50)).repeat(5))
}
fn long_component() -> String {
    format!("usr/share/{}", "z".repeat(120))
}
fn long_dir() -> String {
    format!("usr/share/{}", "d".repeat(95))
}
fn long_target() -> String {
    format!("/{}", "t".repeat(150))
}

/// A layer with every kind of member and every ustar corner the writer handles.
fn sample() -> Vec<Entry> {
    let perl = Arc::new(b"#!perl\n".repeat(100));
    let mut owned = file("home/nonroot/.profile", b"PATH=/bin\n", 0o644);
    owned.uid = 65532;
    owned.gid = 65532;
    let mut shadow = file("etc/shadow", b"root:*:1::::::\n", 0o640);
    shadow.gid = 42;
    let mut future = file("etc/future", b"from the future\n", 0o644);
    future.mtime = CLAMP + 1000;
    let mut sticky = Entry::dir("tmp", 5, "test");
    sticky.mode = 0o1777;
    vec![
        Entry::dir("etc", 0, "test"),
        Entry::dir("usr", 0, "test"),
        Entry::dir("usr/bin", 0, "test"),
        Entry::dir(long_dir(), 0, "test"),
        sticky,
        file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/sbin/nologin\n",
            0o644,
        ),
        shadow,
        future,
        owned,
        file("usr/bin/su", b"\x7fELF su", 0o4755),
        file("usr/bin/wall", b"\x7fELF wall", 0o2755),
        linked("usr/bin/perl5.36.0", &perl, "perl-base:usr/bin/perl"),
        linked("usr/bin/perl", &perl, "perl-base:usr/bin/perl"),
        file(&split_name(), b"split\n", 0o644),
        file(&very_long_name(), b"very long\n", 0o644),
        file(&long_component(), b"long component\n", 0o600),
        symlink("bin", "usr/bin"),
        symlink("usr/lib/long", &long_target()),
    ]
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn decompress(layer: &Layer) -> Vec<u8> {
    let mut out = Vec::new();
    match layer.compression {
        Compression::Gzip => {
            flate2::read::MultiGzDecoder::new(&layer.blob[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => out = zstd::stream::decode_all(&layer.blob[..]).unwrap(),
    }
    out
}

/// Typeflags of every header in an uncompressed tar, in order.
fn typeflags(tar: &[u8]) -> Vec<u8> {
    let mut flags = Vec::new();
    let mut off = 0;
    while off + 512 <= tar.len() && tar[off..off + 512] != [0u8; 512] {
        let h = &tar[off..off + 512];
        flags.push(h[156]);
        let size_str = std::str::from_utf8(&h[124..135]).unwrap();
        let size = u64::from_str_radix(size_str, 8).unwrap();
        let data = if matches!(h[156], b'0' | b'x') {
            size
        } else {
            0
        };
        off += 512 + data.div_ceil(512) as usize * 512;
    }
    flags
}

fn tool_present(tool: &str) -> bool {
    crate::testing::require_tool(tool, &format!("apt-get install {tool}"))
}

#[test]
fn digests_describe_the_blob_and_the_tar() {
    for c in [Compression::Gzip, Compression::Zstd] {
        let layer = write_layer(&sample(), c, CLAMP).unwrap();
        let tar = decompress(&layer);
        assert_eq!(layer.digest.to_string(), sha256(&layer.blob));
        assert_eq!(layer.diff_id.to_string(), sha256(&tar));
        assert_eq!(layer.size, layer.blob.len() as u64);
        assert_eq!(layer.tar_size, tar.len() as u64);
        assert_eq!(layer.compression, c);
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(
            &tar[tar.len() - 1024..],
            &[0u8; 1024][..],
            "two zero blocks end it"
        );
        assert_eq!(write_tar(&sample(), CLAMP, Vec::new()).unwrap(), tar);
    }
}

#[test]
fn compressed_framing_is_pinned() {
    let gz = write_layer(&sample(), Compression::Gzip, CLAMP).unwrap();
    // magic, deflate, no flags, mtime 0, xfl 0 (level 6), OS 255.
    assert_eq!(&gz.blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let zst = write_layer(&sample(), Compression::Zstd, CLAMP).unwrap();
    assert_eq!(&zst.blob[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    // Frame header descriptor: bit 2 = content checksum.
    assert_ne!(zst.blob[4] & 0b100, 0, "zstd frames carry a checksum");
}

#[test]
fn output_is_identical_across_runs_and_thread_pools() {
    for c in [Compression::Gzip, Compression::Zstd] {
        let reference = write_layer(&sample(), c, CLAMP).unwrap();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let layers: Vec<Layer> = pool.install(|| {
                (0..4)
                    .into_par_iter()
                    .map(|_| write_layer(&sample(), c, CLAMP).unwrap())
                    .collect()
            });
            for l in layers {
                assert_eq!(l, reference, "{c} with {threads} threads");
            }
        }
    }
}

#[test]
fn input_order_does_not_matter() {
    let mut entries = sample();
    let sorted = write_layer(&entries, Compression::Gzip, CLAMP).unwrap();
    entries.reverse();
    let reversed = write_layer(&entries, Compression::Gzip, CLAMP).unwrap();
    entries.rotate_left(7);
    entries.swap(1, 12);
    let shuffled = write_layer(&entries, Compression::Gzip, CLAMP).unwrap();
    assert_eq!(sorted.digest, reversed.digest);
    assert_eq!(sorted.digest, shuffled.digest);
}

#[test]
fn members_are_sorted_by_path_bytes_with_clamped_mtimes() {
    let tar = write_tar(&sample(), CLAMP, Vec::new()).unwrap();
    let mut archive = ::tar::Archive::new(&tar[..]);
    let mut seen = Vec::new();
    for member in archive.entries().unwrap() {
        let member = member.unwrap();
        let path = member.path_bytes().into_owned();
        let h = member.header();
        let mtime = h.mtime().unwrap();
        let expected = match &path[..] {
            b"etc/future" => CLAMP,
            b"tmp/" => 5,
            p if p.ends_with(b"/") => 0,
            _ => 1_600_000_000,
        };
        assert_eq!(mtime, expected, "{}", String::from_utf8_lossy(&path));
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        seen.push(path);
    }
    let mut sorted = seen.clone();
    // Directories carry a trailing '/', which must not change the order (sort by entry path).
    sorted.sort_by_key(|p| p.strip_suffix(b"/").unwrap_or(p).to_vec());
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), sample().len());
}

#[test]
fn later_mtimes_are_clamped_and_earlier_ones_kept() {
    let mut f = file("a", b"x", 0o644);
    f.mtime = 10;
    let mut g = file("b", b"y", 0o644);
    g.mtime = 30;
    let tar = write_tar(&[f, g], 20, Vec::new()).unwrap();
    let mut archive = ::tar::Archive::new(&tar[..]);
    let mtimes: Vec<u64> = archive
        .entries()
        .unwrap()
        .map(|m| m.unwrap().header().mtime().unwrap())
        .collect();
    assert_eq!(mtimes, vec![10, 20]);
}

#[test]
fn hard_link_groups_store_content_once_under_the_first_path() {
    let tar = write_tar(&sample(), CLAMP, Vec::new()).unwrap();
    let mut archive = ::tar::Archive::new(&tar[..]);
    let mut found = 0;
    for member in archive.entries().unwrap() {
        let mut member = member.unwrap();
        let path = member.path().unwrap().into_owned();
        if path == Path::new("usr/bin/perl") {
            assert_eq!(member.header().entry_type(), ::tar::EntryType::Regular);
            let mut body = Vec::new();
            member.read_to_end(&mut body).unwrap();
            assert_eq!(body, b"#!perl\n".repeat(100));
            found += 1;
        }
        if path == Path::new("usr/bin/perl5.36.0") {
            assert_eq!(member.header().entry_type(), ::tar::EntryType::Link);
            assert_eq!(member.header().size().unwrap(), 0);
            assert_eq!(
                member.link_name().unwrap().unwrap(),
                Path::new("usr/bin/perl")
            );
            found += 1;
        }
    }
    assert_eq!(found, 2);
}

#[test]
fn a_link_group_with_different_contents_is_an_error() {
    let a = Arc::new(b"one".to_vec());
    let b = Arc::new(b"two".to_vec());
    let err = write_tar(&[linked("x", &a, "g"), linked("y", &b, "g")], 0, Vec::new()).unwrap_err();
    assert!(
        matches!(&err, LayerError::LinkGroupMismatch { first, other, .. } if first == "x" && other == "y"),
        "{err}"
    );
    // Equal bytes in different allocations are still one inode.
    let c = Arc::new(b"one".to_vec());
    assert!(write_tar(&[linked("x", &a, "g"), linked("y", &c, "g")], 0, Vec::new()).is_ok());
}

#[test]
fn duplicate_and_unnormalised_paths_are_errors() {
    let mut second = file("etc/passwd", b"b", 0o644);
    second.origin = "generated:passwd".to_string();
    let err = write_layer(
        &[file("etc/passwd", b"a", 0o644), second],
        Compression::Gzip,
        0,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LayerError::DuplicatePath { .. }), "{msg}");
    assert!(
        msg.contains("/etc/passwd") && msg.contains("generated:passwd"),
        "{msg}"
    );

    for bad in ["", "/etc", "etc/", "a//b", "a/./b", "../x", "a\0b"] {
        let err = write_tar(&[file(bad, b"", 0o644)], 0, Vec::new()).unwrap_err();
        assert!(
            matches!(err, LayerError::InvalidPath { .. }),
            "{bad:?}: {err}"
        );
    }
    let err = write_tar(&[symlink("x", "")], 0, Vec::new()).unwrap_err();
    assert!(matches!(err, LayerError::InvalidLinkTarget { .. }), "{err}");
}

#[test]
fn pax_headers_appear_only_where_needed() {
    let short = vec![
        Entry::dir("usr", 0, "t"),
        file("usr/x", b"x", 0o644),
        file(&split_name(), b"split", 0o644),
        symlink("usr/y", &"t".repeat(100)),
    ];
    let tar = write_tar(&short, CLAMP, Vec::new()).unwrap();
    assert!(!typeflags(&tar).contains(&b'x'), "{:?}", typeflags(&tar));

    let tar = write_tar(&sample(), CLAMP, Vec::new()).unwrap();
    let flags = typeflags(&tar);
    // Exactly three members need PAX: a >255-byte path, a >100-byte component, a >100-byte
    // symlink target; the split-able long name and long directory do not.
    assert_eq!(flags.iter().filter(|&&f| f == b'x').count(), 3, "{flags:?}");
    assert_eq!(flags.len(), sample().len() + 3);
}

#[test]
fn compression_names_round_trip() {
    for c in [Compression::Gzip, Compression::Zstd] {
        assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
    }
    assert_eq!(
        Compression::Zstd.media_type(),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    assert_eq!(
        Compression::Gzip.media_type(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let err = "xz".parse::<Compression>().unwrap_err();
    assert!(
        err.to_string().contains("use \"gzip\" or \"zstd\""),
        "{err}"
    );
}

#[test]
fn gnu_tar_lists_and_extracts_exactly_what_was_written() {
    if !tool_present("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layer = write_layer(&sample(), Compression::Gzip, CLAMP).unwrap();
    let blob = dir.path().join("layer.tar.gz");
    std::fs::write(&blob, &*layer.blob).unwrap();

    let list = Command::new("tar")
        .args(["--numeric-owner", "-tvzf"])
        .arg(&blob)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&list.stderr);
    assert!(list.status.success() && stderr.is_empty(), "{stderr}");
    let listing = String::from_utf8(list.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), sample().len(), "{listing}");
    let line = |suffix: &str| {
        *lines
            .iter()
            .find(|l| l.contains(&format!(" {suffix}")))
            .unwrap_or_else(|| panic!("{suffix} missing from\n{listing}"))
    };
    assert!(
        line("usr/bin/su").starts_with("-rwsr-xr-x 0/0"),
        "{listing}"
    );
    assert!(
        line("usr/bin/wall").starts_with("-rwxr-sr-x 0/0"),
        "{listing}"
    );
    assert!(line("tmp/").starts_with("drwxrwxrwt 0/0"), "{listing}");
    assert!(
        line("etc/shadow").starts_with("-rw-r----- 0/42"),
        "{listing}"
    );
    assert!(line("home/nonroot/.profile").starts_with("-rw-r--r-- 65532/65532"));
    assert!(line("usr/bin/perl5.36.0").starts_with("hrwxr-xr-x"));
    assert!(line("usr/bin/perl5.36.0").ends_with("link to usr/bin/perl"));
    assert!(line("bin").ends_with("bin -> usr/bin"), "{listing}");
    assert!(line("usr/lib/long").ends_with(&format!("-> {}", long_target())));
    assert!(line(&very_long_name()).starts_with("-rw-r--r--"));
    assert!(line(&long_component()).starts_with("-rw-------"));
    assert!(line(&format!("{}/", long_dir())).starts_with("drwxr-xr-x"));

    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let x = Command::new("tar")
        .args(["--numeric-owner", "-p", "-xzf"])
        .arg(&blob)
        .arg("-C")
        .arg(&root)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
    let meta = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    let perl = meta("usr/bin/perl");
    let perl5 = meta("usr/bin/perl5.36.0");
    assert_eq!(perl.ino(), perl5.ino(), "hard link shares the inode");
    assert_eq!(perl.nlink(), 2);
    assert_eq!(
        std::fs::read(root.join("usr/bin/perl5.36.0")).unwrap(),
        b"#!perl\n".repeat(100)
    );
    assert_eq!(
        std::fs::read(root.join(very_long_name())).unwrap(),
        b"very long\n"
    );
    assert_eq!(
        std::fs::read_link(root.join("usr/lib/long")).unwrap(),
        Path::new(&long_target())
    );
    assert_eq!(meta("etc/future").mtime() as u64, CLAMP);
    // Only root keeps setuid bits and foreign owners on extraction.
    if meta(".").uid() == 0 {
        assert_eq!(meta("usr/bin/su").mode() & 0o7777, 0o4755);
        assert_eq!(meta("tmp").mode() & 0o7777, 0o1777);
        assert_eq!(meta("home/nonroot/.profile").uid(), 65532);
        assert_eq!(meta("etc/shadow").gid(), 42);
    }
}

#[test]
fn python_tarfile_reads_back_every_field() {
    if !tool_present("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layer = write_layer(&sample(), Compression::Gzip, CLAMP).unwrap();
    let blob = dir.path().join("layer.tar.gz");
    std::fs::write(&blob, &*layer.blob).unwrap();
    let script = r#"
import sys, tarfile
with tarfile.open(sys.argv[1], "r:gz") as t:
    for m in t.getmembers():
        body = t.extractfile(m).read().decode() if m.isreg() else ""
        print(m.name, m.type.decode(), oct(m.mode), m.uid, m.gid, repr(m.uname), repr(m.gname),
              m.mtime, m.linkname or "-", m.size, repr(body), sorted(m.pax_headers), sep="|")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&blob)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows: BTreeMap<&str, Vec<&str>> = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f[0], f)
        })
        .collect();
    assert_eq!(rows.len(), sample().len(), "{text}");
    let row = |name: &str| {
        rows.get(name)
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
            .clone()
    };
    for r in rows.values() {
        assert_eq!((r[5], r[6]), ("''", "''"), "empty uname/gname: {r:?}");
    }
    assert_eq!(row("usr/bin/su")[1..5], ["0", "0o4755", "0", "0"]);
    assert_eq!(row("tmp")[1..3], ["5", "0o1777"]);
    assert_eq!(row("etc/shadow")[3..5], ["0", "42"]);
    assert_eq!(row("etc/future")[7], CLAMP.to_string());
    assert_eq!(row("usr/bin/perl")[9], "700");
    assert!(row("usr/bin/perl")[10].starts_with("'#!perl\\n#!perl"));
    assert_eq!(row("usr/bin/perl5.36.0")[1], "1");
    assert_eq!(row("usr/bin/perl5.36.0")[8], "usr/bin/perl");
    assert_eq!(row("bin")[1..3], ["2", "0o777"]);
    assert_eq!(row("usr/lib/long")[8], long_target());
    assert_eq!(row("usr/lib/long")[11], "['linkpath']");
    assert_eq!(row(&very_long_name())[10], "'very long\\n'");
    assert_eq!(row(&very_long_name())[11], "['path']");
    assert_eq!(row(&long_component())[2], "0o600");
    assert_eq!(row(&split_name())[11], "[]", "split names need no PAX");
    assert_eq!(row(&long_dir())[1], "5");
}
