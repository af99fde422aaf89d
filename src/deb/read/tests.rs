//! `read_deb` on real .debs in every compression, and on hostile and damaged ones.

use super::*;
use crate::deb::testdeb::{EPOCH, PackageDir, Raw, compress, deb_with, hostile, raw_ar, raw_tar};
use tar::EntryType;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

const FLAT: ReadOptions = ReadOptions {
    merged_usr: false,
    max_data_bytes: None,
};
const MERGED: ReadOptions = ReadOptions {
    merged_usr: true,
    max_data_bytes: None,
};

/// One line per entry: kind, mode, path and what it holds or points to.
fn summary(deb: &Deb) -> Vec<String> {
    deb.entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::Dir => format!("d {:04o} {}", e.mode, e.path),
            EntryKind::File { data, link_group } => format!(
                "f {:04o} {} {:?}{}",
                e.mode,
                e.path,
                String::from_utf8_lossy(data),
                link_group
                    .as_ref()
                    .map(|g| format!(" [{g}]"))
                    .unwrap_or_default()
            ),
            EntryKind::Symlink { target } => format!("l {} -> {target}", e.path),
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

const LONG_DIR: &str =
    "usr/share/a-directory-name-that-is-quite-long/and-another-one-that-is-long-too";
const LONG_FILE: &str = "a-file-name-that-pushes-the-whole-path-well-past-one-hundred-bytes.txt";

/// A package using everything dpkg-deb can put in data.tar that an image may hold.
fn sample() -> PackageDir {
    let p = PackageDir::new("hello");
    p.dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file("usr/bin/hello", b"hi", 0o755)
        .hardlink("usr/bin/hello2", "usr/bin/hello")
        .symlink("usr/bin/hi", "hello")
        .file("usr/bin/su", b"root", 0o4755)
        .file(&format!("{LONG_DIR}/{LONG_FILE}"), b"long", 0o644)
        .dir("var/cache", 0o700);
    p
}

fn sample_expected() -> Vec<String> {
    let mut v = strings(&[
        "d 0755 usr",
        "d 0755 usr/bin",
        "f 0755 usr/bin/hello \"hi\" [hello:usr/bin/hello]",
        "f 0755 usr/bin/hello2 \"hi\" [hello:usr/bin/hello]",
        "l usr/bin/hi -> hello",
        "f 4755 usr/bin/su \"root\"",
        "d 0755 usr/share",
        "d 0755 var",
        "d 0700 var/cache",
    ]);
    v.push(format!("d 0755 {}", LONG_DIR.rsplit_once('/').unwrap().0));
    v.push(format!("d 0755 {LONG_DIR}"));
    v.push(format!("f 0644 {LONG_DIR}/{LONG_FILE} \"long\""));
    sorted(v)
}

#[test]
fn every_compression_yields_the_same_entries() {
    let p = sample();
    let sel = Selection::new(None, &[], &[], &strings(&["/usr/bin/su"])).unwrap();
    for z in ["none", "gzip", "xz", "zstd"] {
        let deb = read_deb(&p.build(z), "hello", &sel, &FLAT).unwrap();
        assert_eq!(sorted(summary(&deb)), sample_expected(), "-Z{z}");
        assert!(deb.control.starts_with("Package: hello\n"), "-Z{z}");
        assert_eq!(deb.md5sums, None);
        assert!(
            deb.entries
                .iter()
                .all(|e| e.origin == "hello" && e.uid == 0 && e.gid == 0)
        );
        assert!(deb.entries.iter().all(|e| e.mtime == EPOCH), "-Z{z}");
        assert!(deb.unmatched.is_empty());
        // Hard links share one buffer, so the layer writer can store it once.
        let data = |path: &str| match &deb.entries.iter().find(|e| e.path == path).unwrap().kind {
            EntryKind::File { data, .. } => data.clone(),
            other => panic!("{path} is {other:?}"),
        };
        assert!(Arc::ptr_eq(&data("usr/bin/hello"), &data("usr/bin/hello2")));
    }
}

#[test]
fn md5sums_come_from_control_tar() {
    let p = PackageDir::new("m");
    p.file("usr/bin/x", b"x", 0o755)
        .control_file("md5sums", "9dd4e461268c8034f5c8564e155c67a6  usr/bin/x\n");
    let deb = read_deb(&p.build("xz"), "m", &Selection::everything(), &FLAT).unwrap();
    assert_eq!(
        deb.md5sums.as_deref(),
        Some("9dd4e461268c8034f5c8564e155c67a6  usr/bin/x\n")
    );
    assert!(deb.control.contains("Version: 1.0-1\n"));
}

#[test]
fn entries_keep_archive_order() {
    let deb = hostile(&[
        Raw::file("./z", b"1"),
        Raw::dir("./a/"),
        Raw::file("./a/b", b"2"),
    ]);
    let deb = read_deb(&deb, "p", &Selection::everything(), &FLAT).unwrap();
    let paths: Vec<_> = deb.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["z", "a", "a/b"]);
}

#[test]
fn include_selects_files_their_shipped_parents_and_matching_dirs() {
    let p = sample();
    p.dir("tmp", 0o1777);
    let inc = strings(&["/usr/bin/hello", "/tmp", "/usr/lib/typo"]);
    let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
    let deb = read_deb(&p.build("zstd"), "hello", &sel, &FLAT).unwrap();
    assert_eq!(
        sorted(summary(&deb)),
        strings(&[
            "d 0755 usr",
            "d 0755 usr/bin",
            "d 1777 tmp",
            // The group stays though hello2 is left out: it is the package's inode.
            "f 0755 usr/bin/hello \"hi\" [hello:usr/bin/hello]",
        ])
    );
    assert_eq!(deb.unmatched, ["/usr/lib/typo"]);
}

#[test]
fn exclude_drops_docs_and_keep_brings_copyright_back() {
    let p = PackageDir::new("doc");
    p.file("usr/bin/x", b"x", 0o755)
        .file("usr/share/doc/doc/copyright", b"(c)", 0o644)
        .file("usr/share/doc/doc/README", b"read me", 0o644)
        .file("usr/share/man/man1/x.1.gz", b"man", 0o644)
        .dir("usr/share/man/man8", 0o755)
        .dir("var/cache", 0o755);
    let exclude = strings(&["/usr/share/doc/**", "/usr/share/man", "/usr/share/man/**"]);
    let keep = strings(&["/usr/share/doc/*/copyright"]);
    let sel = Selection::new(None, &exclude, &keep, &[]).unwrap();
    let deb = read_deb(&p.build("gzip"), "doc", &sel, &FLAT).unwrap();
    assert_eq!(
        sorted(summary(&deb)),
        strings(&[
            "d 0755 usr",
            "d 0755 usr/bin",
            "d 0755 usr/share",
            "d 0755 usr/share/doc",
            "d 0755 usr/share/doc/doc",
            "d 0755 var",
            "d 0755 var/cache",
            "f 0644 usr/share/doc/doc/copyright \"(c)\"",
            "f 0755 usr/bin/x \"x\"",
        ])
    );
}

#[test]
fn a_link_whose_target_is_left_out_still_carries_the_bytes() {
    let p = sample();
    let inc = strings(&["/usr/bin/hello2"]);
    let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
    let deb = read_deb(&p.build("xz"), "hello", &sel, &FLAT).unwrap();
    assert_eq!(
        summary(&deb),
        strings(&[
            "d 0755 usr",
            "d 0755 usr/bin",
            "f 0755 usr/bin/hello2 \"hi\" [hello:usr/bin/hello]",
        ])
    );
}

#[test]
fn setuid_needs_an_allowance_unless_left_out() {
    let p = sample();
    let bytes = p.build("none");
    let err = read_deb(&bytes, "hello", &Selection::everything(), &FLAT).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("package hello: /usr/bin/su: is setuid/setgid (mode 4755)"),
        "{msg}"
    );
    assert!(
        msg.contains("`allow_setuid`") && msg.contains("`paths`"),
        "{msg}"
    );

    let inc = strings(&["/usr/bin/hello"]);
    let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
    assert!(read_deb(&bytes, "hello", &sel, &FLAT).is_ok());
}

#[test]
fn merged_usr_moves_top_level_directories_under_usr() {
    let p = PackageDir::new("libc");
    p.dir("lib", 0o755)
        .file("lib/x86_64-linux-gnu/libc.so.6", b"libc", 0o755)
        .file("sbin/ldconfig", b"ldconfig", 0o755)
        .file("usr/lib/x86_64-linux-gnu/libm.so.6", b"libm", 0o644)
        .symlink("lib64", "usr/lib64");
    let bytes = p.build("xz");
    let inc = strings(&["/usr/lib/*/libc.so.6", "/lib64"]);
    let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();

    let deb = read_deb(&bytes, "libc", &sel, &MERGED).unwrap();
    assert_eq!(
        sorted(summary(&deb)),
        strings(&[
            "d 0755 usr",
            "d 0755 usr/lib",
            "d 0755 usr/lib/x86_64-linux-gnu",
            "f 0755 usr/lib/x86_64-linux-gnu/libc.so.6 \"libc\"",
            // Already the merged link: kept where it is.
            "l lib64 -> usr/lib64",
        ])
    );
    assert!(deb.unmatched.is_empty());

    let deb = read_deb(&bytes, "libc", &Selection::everything(), &MERGED).unwrap();
    let paths: Vec<_> = deb.entries.iter().map(|e| e.path.as_str()).collect();
    assert!(paths.contains(&"usr/sbin/ldconfig"), "{paths:?}");
    // /lib and /usr/lib are one directory once merged.
    assert_eq!(
        paths.iter().filter(|p| **p == "usr/lib").count(),
        1,
        "{paths:?}"
    );
    assert!(
        paths
            .iter()
            .all(|p| !p.starts_with("lib/") && !p.starts_with("sbin"))
    );

    // Without merged /usr nothing moves, so the glob finds nothing.
    let deb = read_deb(&bytes, "libc", &sel, &FLAT).unwrap();
    assert_eq!(summary(&deb), ["l lib64 -> usr/lib64"]);
    assert_eq!(deb.unmatched, ["/usr/lib/*/libc.so.6"]);
}

#[test]
fn merged_usr_rejects_other_objects_at_top_level_names() {
    for (raw, what) in [
        (Raw::file("./lib", b"x"), "is a file"),
        (
            Raw::link(EntryType::Symlink, "./bin", "usr/sbin"),
            "is a symlink to usr/sbin",
        ),
    ] {
        let err = read_deb(&hostile(&[raw]), "p", &Selection::everything(), &MERGED)
            .unwrap_err()
            .to_string();
        assert!(err.contains("package p: /") && err.contains(what), "{err}");
        assert!(err.contains("merged /usr"), "{err}");
    }
}

#[test]
fn merged_usr_rejects_a_path_shipped_twice() {
    let deb = hostile(&[Raw::file("./bin/x", b"1"), Raw::file("./usr/bin/x", b"2")]);
    let err = read_deb(&deb, "p", &Selection::everything(), &MERGED).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("package p: /usr/bin/x: appears twice"),
        "{err}"
    );
    assert!(read_deb(&deb, "p", &Selection::everything(), &FLAT).is_ok());
}

fn hostile_error(entries: &[Raw]) -> String {
    read_deb(&hostile(entries), "evil", &Selection::everything(), &FLAT)
        .unwrap_err()
        .to_string()
}

#[test]
fn unsafe_paths_are_rejected_with_package_and_path() {
    let err = hostile_error(&[Raw::file("/etc/passwd", b"x")]);
    assert_eq!(
        err,
        "package evil: /etc/passwd: is an absolute path inside the archive; debless will not unpack such a package, so leave it out of the rule or pin another version"
    );
    let err = hostile_error(&[Raw::file("./usr/../../etc/shadow", b"x")]);
    assert_eq!(
        err,
        "package evil: /usr/../../etc/shadow: has a `..` component; debless will not unpack such a package, so leave it out of the rule or pin another version"
    );
}

#[test]
fn device_nodes_and_fifos_are_rejected() {
    for (kind, what) in [
        (EntryType::Char, "a device node"),
        (EntryType::Block, "a device node"),
        (EntryType::Fifo, "a FIFO"),
    ] {
        let raw = Raw {
            kind,
            ..Raw::file("./dev/null", b"")
        };
        let err = hostile_error(&[raw]);
        assert!(
            err.starts_with(&format!("package evil: /dev/null: is {what}")),
            "{err}"
        );
    }
}

#[test]
fn symlinks_may_not_climb_above_the_root() {
    let escaping = Raw::link(EntryType::Symlink, "./usr/lib/x", "../../../etc/shadow");
    let err = hostile_error(&[escaping]);
    assert!(
        err.starts_with("package evil: /usr/lib/x: is a symlink to ../../../etc/shadow"),
        "{err}"
    );

    // Absolute targets are inside the image by definition; two levels up is the root.
    let fine = [
        Raw::link(EntryType::Symlink, "./usr/lib/y", "/etc/shadow"),
        Raw::link(EntryType::Symlink, "./usr/lib/z", "../../etc/shadow"),
    ];
    let deb = read_deb(&hostile(&fine), "p", &Selection::everything(), &FLAT).unwrap();
    assert_eq!(
        summary(&deb),
        [
            "l usr/lib/y -> /etc/shadow",
            "l usr/lib/z -> ../../etc/shadow"
        ]
    );

    // Left out of the image, it cannot do harm.
    let escaping = Raw::link(EntryType::Symlink, "./usr/lib/x", "../../../etc/shadow");
    let inc = strings(&["/usr/bin/*"]);
    let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
    assert!(read_deb(&hostile(&[escaping]), "p", &sel, &FLAT).is_ok());
}

#[test]
fn hard_links_must_point_back_into_the_package() {
    let err = hostile_error(&[Raw::link(EntryType::Link, "./usr/bin/a", "./usr/bin/b")]);
    assert_eq!(
        err,
        "package evil: /usr/bin/a: is a hard link to /usr/bin/b, which does not appear earlier in the package; debless will not unpack such a package, so leave it out of the rule or pin another version"
    );
    let err = hostile_error(&[Raw::link(EntryType::Link, "./usr/bin/a", "/etc/shadow")]);
    assert!(
        err.starts_with(
            "package evil: /usr/bin/a: is a hard link to /etc/shadow, which is outside"
        ),
        "{err}"
    );
    let err = hostile_error(&[Raw::link(EntryType::Link, "./usr/bin/a", "../etc/shadow")]);
    assert!(err.contains("outside the package"), "{err}");
    let err = hostile_error(&[
        Raw::dir("./usr/"),
        Raw::link(EntryType::Link, "./usr/bin/a", "./usr"),
    ]);
    assert!(err.contains("which is not a regular file"), "{err}");
}

#[test]
fn a_link_to_a_link_joins_the_first_files_group() {
    let deb = hostile(&[
        Raw::file("./a", b"data"),
        Raw::link(EntryType::Link, "./b", "./a"),
        Raw::link(EntryType::Link, "./c", "./b"),
    ]);
    let inc = strings(&["/c"]);
    let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
    let deb = read_deb(&deb, "p", &sel, &FLAT).unwrap();
    assert_eq!(summary(&deb), ["f 0644 c \"data\" [p:a]"]);
}

#[test]
fn data_tar_beyond_the_bound_is_refused_without_reading_it_all() {
    // 64 MiB of zeros compress to a few KiB: a bomb next to a 4 KiB Installed-Size.
    let p = PackageDir::new("bomb");
    p.file("usr/share/zeros", &vec![0u8; 64 << 20], 0o644);
    let deb = p.build("xz");
    assert!(deb.len() < 1 << 20, "the bomb is small on the wire");
    for sel in [
        Selection::everything(),
        Selection::new(Some(&strings(&["/usr/bin/*"])), &[], &[], &[]).unwrap(),
    ] {
        let opts = ReadOptions {
            merged_usr: true,
            max_data_bytes: Some(1 << 20),
        };
        let err = read_deb(&deb, "bomb", &sel, &opts).unwrap_err();
        assert!(
            matches!(err, DebError::TooLarge { limit, .. } if limit == 1 << 20),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("package bomb: data.tar.xz decompresses to more than 1048576 bytes"),
            "{err}"
        );
    }
    // The same package within its bound reads; control.tar does not count against it.
    let small = PackageDir::new("small");
    small.file("usr/share/a", &[1u8; 1000], 0o644);
    let deb = small.build("gzip");
    let opts = ReadOptions {
        merged_usr: true,
        max_data_bytes: Some(10 << 10),
    };
    read_deb(&deb, "small", &Selection::everything(), &opts).unwrap();
}

#[test]
fn unknown_compression_is_named() {
    let deb = deb_with("data.tar.bz2", b"BZh9");
    let err = read_deb(&deb, "old", &Selection::everything(), &FLAT).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("package old: member data.tar.bz2 uses a compression"),
        "{msg}"
    );
    assert!(matches!(err, DebError::Unsupported { .. }));
}

#[test]
fn only_format_2_is_read() {
    let control = raw_tar(&[Raw::file("./control", b"Package: x\n")]);
    let data = raw_tar(&[]);
    let deb = raw_ar(&[
        ("debian-binary", b"3.0\n"),
        ("control.tar", &control),
        ("data.tar", &data),
    ]);
    let err = read_deb(&deb, "x", &Selection::everything(), &FLAT).unwrap_err();
    assert!(err.to_string().contains("format \"3.0\""), "{err}");
    // Members dpkg reserves for extensions are skipped.
    let deb = raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("_gpgorigin", b"sig"),
        ("control.tar", &control),
        ("data.tar", &data),
    ]);
    assert!(read_deb(&deb, "x", &Selection::everything(), &FLAT).is_ok());
}

#[test]
fn missing_members_and_control_are_corrupt() {
    let control = raw_tar(&[Raw::file("./control", b"Package: x\n")]);
    let data = raw_tar(&[]);
    let cases: [(Vec<u8>, &str); 3] = [
        (
            raw_ar(&[("debian-binary", b"2.0\n"), ("control.tar", &control)]),
            "no data.tar member",
        ),
        (
            raw_ar(&[
                ("debian-binary", b"2.0\n"),
                ("data.tar", &data),
                ("control.tar", &control),
            ]),
            "unexpected ar member \"data.tar\"",
        ),
        (
            raw_ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar", &data),
                ("data.tar", &data),
            ]),
            "control.tar has no control file",
        ),
    ];
    for (deb, what) in cases {
        let err = read_deb(&deb, "x", &Selection::everything(), &FLAT).unwrap_err();
        assert!(matches!(err, DebError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

fn assert_corrupt(bytes: &[u8], why: &str) {
    match read_deb(bytes, "hello", &Selection::everything(), &FLAT) {
        Err(e @ DebError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with("package hello: "), "{why}: {msg}");
            assert!(
                msg.ends_with("re-fetch it with `debless fetch --verify`"),
                "{why}: {msg}"
            );
            assert!(!msg.contains('\n'), "{why}: {msg}");
        }
        other => panic!("{why}: expected a corrupt-package error, got {other:?}"),
    }
}

#[test]
fn garbage_and_truncated_debs_are_corrupt() {
    assert_corrupt(b"", "empty");
    assert_corrupt(b"this is not a deb at all", "garbage");
    assert_corrupt(b"!<arch>\nshort", "short header");
    let p = PackageDir::new("hello");
    p.file("usr/bin/hello", b"hi", 0o755);
    let bytes = p.build("xz");
    // Cutting at least two bytes always loses real data, even after an odd member's pad.
    for cut in 0..bytes.len() - 1 {
        assert_corrupt(&bytes[..cut], &format!("cut at {cut}"));
    }
}

#[test]
fn truncated_streams_inside_whole_members_are_corrupt() {
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let tar = raw_tar(&[Raw::file("./usr/share/big", &big)]);
    for ext in ["gz", "xz", "zst"] {
        let packed = compress(ext, &tar);
        for cut in [packed.len() / 2, packed.len() - 4, packed.len() - 1] {
            let deb = deb_with(&format!("data.tar.{ext}"), &packed[..cut]);
            assert_corrupt(&deb, &format!("{ext} cut at {cut}"));
        }
        // Whole, it reads.
        let deb = deb_with(&format!("data.tar.{ext}"), &packed);
        assert!(
            read_deb(&deb, "hello", &Selection::everything(), &FLAT).is_ok(),
            "{ext}"
        );
    }
    // An uncompressed tar cut inside the file's data.
    assert_corrupt(&deb_with("data.tar", &tar[..100_000]), "tar cut in data");
    assert_corrupt(&deb_with("data.tar", &tar[..300]), "tar cut in header");
}

#[test]
fn damaged_bytes_never_panic() {
    let p = sample();
    let sel = Selection::new(None, &[], &[], &strings(&["/usr/bin/su"])).unwrap();
    for z in ["none", "gzip", "xz", "zstd"] {
        let bytes = p.build(z);
        // A cheap deterministic generator: every position class gets hit, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..300 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut damaged = bytes.clone();
            let at = (state % damaged.len() as u64) as usize;
            damaged[at] ^= (state >> 32) as u8 | 1;
            let _ = read_deb(&damaged, "hello", &sel, &MERGED);
        }
    }
}
