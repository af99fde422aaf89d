//! Hermetic: the project's own static, base-nossl, base and cc rules built for ppc64el and
//! s390x (the two Google distroless architectures this machine's Debian mirror has no
//! .debs for, so the live family test cannot build them) from a fake archive of .debs
//! whose libraries are real ELF shared objects of those machines. Also: an image's
//! `architectures` honoured by pin and build, and a child rule adding `paths` of a package
//! its parent level ships.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Archive, DebFile, Gpg, Pkg, Project, Server, SuiteOpts, build_deb, pkg, run_ok, stderr,
};

const MANIFEST: &str = r#"
distro = "debian13"
codename = "trixie"
architectures = ["ppc64el", "s390x"]
merged_usr = true

[[suites]]
archive = "debian"
suite = "trixie"

[[keys]]
file = "keys/main.asc"
fingerprint = "MAIN_FPR"
"#;

/// Test-only: an image built for s390x alone, whose root package only s390x has.
const S390X_ONLY: &str = r#"
description = "static + a tool that exists for s390x only"
parent = "static"
distros = ["debian13"]
architectures = ["s390x"]
[packages.s390x-tool]
"#;

/// Test-only: glibc's gconv modules on top of base-nossl, which leaves them out.
const WITH_GCONV: &str = r#"
description = "base-nossl + the gconv modules"
parent = "base-nossl"
distros = ["debian13"]
[packages.libc6]
paths = ["/usr/lib/*/gconv/**"]
"#;

/// What each architecture looks like to glibc: triplet, e_machine, big-endian, the
/// loader (file name, and the compatibility link the ABI names), ld.so.cache flags
/// (FLAG_ELF_LIBC6 | FLAG_S390_LIB64 or FLAG_POWERPC_LIB64) and the OCI platform.
struct Machine {
    arch: &'static str,
    triplet: &'static str,
    e_machine: u16,
    big_endian: bool,
    loader: &'static str,
    loader_link: &'static str,
    cache_flags: i32,
    platform: &'static str,
}

const MACHINES: [Machine; 2] = [
    Machine {
        arch: "ppc64el",
        triplet: "powerpc64le-linux-gnu",
        e_machine: 21,
        big_endian: false,
        loader: "ld64.so.2",
        loader_link: "usr/lib64/ld64.so.2",
        cache_flags: 0x0503,
        platform: "linux/ppc64le",
    },
    Machine {
        arch: "s390x",
        triplet: "s390x-linux-gnu",
        e_machine: 22,
        big_endian: true,
        loader: "ld64.so.1",
        loader_link: "usr/lib/ld64.so.1",
        cache_flags: 0x0403,
        platform: "linux/s390x",
    },
];

fn machine(arch: &str) -> &'static Machine {
    MACHINES.iter().find(|m| m.arch == arch).unwrap()
}

/// A minimal 64-bit ELF shared object for `m` with DT_SONAME `soname`: ELF header, one
/// PT_LOAD over the whole file, PT_DYNAMIC, a string table and DT_STRTAB/DT_STRSZ/DT_SONAME.
fn elf_so(m: &Machine, soname: &str) -> Vec<u8> {
    const BASE: u64 = 0x10000;
    let (ehdr, phsize, phnum) = (64usize, 56usize, 2usize);
    let strtab_off = ehdr + phnum * phsize;
    let mut strtab = vec![0u8];
    strtab.extend_from_slice(soname.as_bytes());
    strtab.push(0);
    let dyn_off = (strtab_off + strtab.len()).next_multiple_of(8);
    let dynamic = [
        (5u64, BASE + strtab_off as u64),
        (10, strtab.len() as u64),
        (14, 1),
        (0, 0),
    ];
    let total = dyn_off + dynamic.len() * 16;
    let mut out = vec![0u8; total];
    let put = |out: &mut Vec<u8>, at: usize, len: usize, v: u64| {
        let b = if m.big_endian {
            v.to_be_bytes()[8 - len..].to_vec()
        } else {
            v.to_le_bytes()[..len].to_vec()
        };
        out[at..at + len].copy_from_slice(&b);
    };
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // ELFCLASS64
    out[5] = if m.big_endian { 2 } else { 1 };
    out[6] = 1;
    put(&mut out, 16, 2, 3); // ET_DYN
    put(&mut out, 18, 2, u64::from(m.e_machine));
    put(&mut out, 20, 4, 1);
    put(&mut out, 32, 8, ehdr as u64);
    // ppc64el's ELFv2 ABI is e_flags 2; s390x has none.
    put(&mut out, 48, 4, if m.arch == "ppc64el" { 2 } else { 0 });
    put(&mut out, 52, 2, ehdr as u64);
    put(&mut out, 54, 2, phsize as u64);
    put(&mut out, 56, 2, phnum as u64);
    for (i, (p_type, offset, size, align)) in [
        (1u32, 0, total, 0x1000u64),
        (2, dyn_off, dynamic.len() * 16, 8),
    ]
    .into_iter()
    .enumerate()
    {
        let at = ehdr + i * phsize;
        put(&mut out, at, 4, u64::from(p_type));
        put(&mut out, at + 8, 8, offset as u64);
        put(&mut out, at + 16, 8, BASE + offset as u64);
        put(&mut out, at + 24, 8, BASE + offset as u64);
        put(&mut out, at + 32, 8, size as u64);
        put(&mut out, at + 40, 8, size as u64);
        put(&mut out, at + 48, 8, align);
    }
    out[strtab_off..strtab_off + strtab.len()].copy_from_slice(&strtab);
    for (i, (tag, val)) in dynamic.into_iter().enumerate() {
        put(&mut out, dyn_off + i * 16, 8, tag);
        put(&mut out, dyn_off + i * 16 + 8, 8, val);
    }
    out
}

fn test_cert(dir: &Path) -> String {
    let crt = dir.join("ca.crt");
    run_ok(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "3650"])
            .args(["-subj", "/CN=debless arches test CA", "-keyout"])
            .arg(dir.join("ca.key"))
            .arg("-out")
            .arg(&crt),
    );
    std::fs::read_to_string(crt).unwrap()
}

/// Every root package of the project's static, base-nossl, base and cc rules (and of the
/// debug variant), with the files those rules select, for one architecture.
fn debs(arch: &str, cert: &str) -> Vec<Pkg> {
    let m = machine(arch);
    let t = m.triplet;
    let text = |s: &str| DebFile::File(s.as_bytes().to_vec(), 0o644);
    let so = |name: &str| DebFile::File(elf_so(m, name), 0o644);
    let copyright = |p: &str| {
        (
            format!("usr/share/doc/{p}/copyright"),
            text("Public domain.\n"),
        )
    };
    let lib = |name: &str| (format!("usr/lib/{t}/{name}"), so(name));
    let mut packages: Vec<(&str, Vec<(String, DebFile)>)> = vec![
        (
            "base-files",
            vec![
                (
                    "usr/lib/os-release".into(),
                    text(
                        "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\n\
                         VERSION_ID=\"13\"\nVERSION=\"13 (trixie)\"\nID=debian\n\
                         HOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\n\
                         BUG_REPORT_URL=\"https://bugs.debian.org/\"\n",
                    ),
                ),
                (
                    "etc/os-release".into(),
                    DebFile::Symlink("../usr/lib/os-release".into()),
                ),
                ("tmp".into(), DebFile::Dir(0o1777)),
                copyright("base-files"),
            ],
        ),
        (
            "netbase",
            vec![("etc/services".into(), text("ssh 22/tcp\n"))],
        ),
        (
            "tzdata",
            vec![("usr/share/zoneinfo/Etc/UTC".into(), text("TZif"))],
        ),
        (
            "tzdata-legacy",
            vec![
                ("usr/share/zoneinfo/US/Eastern".into(), text("TZif")),
                // What static.toml drops: its drop globs must match (a typo is an error).
                ("usr/share/zoneinfo/right/UTC".into(), text("TZif")),
            ],
        ),
        (
            "media-types",
            vec![("etc/mime.types".into(), text("text/plain txt\n"))],
        ),
        (
            "ca-certificates",
            vec![
                ("usr/share/ca-certificates/test/test.crt".into(), text(cert)),
                (
                    "usr/sbin/update-ca-certificates".into(),
                    text("#!/bin/sh\n"),
                ),
                copyright("ca-certificates"),
            ],
        ),
        (
            "libc6",
            vec![
                lib("libc.so.6"),
                lib("libm.so.6"),
                lib(m.loader),
                (
                    m.loader_link.into(),
                    DebFile::Symlink(format!("/usr/lib/{t}/{}", m.loader)),
                ),
                (
                    format!("etc/ld.so.conf.d/{t}.conf"),
                    text(&format!("/usr/lib/{t}\n")),
                ),
                (format!("usr/lib/{t}/gconv/CP1252.so"), so("CP1252.so")),
                (
                    format!("usr/lib/{t}/gconv/gconv-modules"),
                    text("module CP1252// INTERNAL CP1252 1\n"),
                ),
                copyright("libc6"),
            ],
        ),
        (
            "libc-bin",
            vec![
                ("usr/lib/locale/C.utf8/LC_CTYPE".into(), text("ctype")),
                (
                    "usr/sbin/ldconfig".into(),
                    DebFile::File(b"ldconfig".to_vec(), 0o755),
                ),
                copyright("libc-bin"),
            ],
        ),
        (
            "libssl3t64",
            vec![
                lib("libssl.so.3"),
                lib("libcrypto.so.3"),
                (format!("usr/lib/{t}/engines-3/afalg.so"), so("afalg.so")),
                copyright("libssl3t64"),
            ],
        ),
        ("libzstd1", vec![lib("libzstd.so.1")]),
        ("zlib1g", vec![lib("libz.so.1")]),
        ("libgcc-s1", vec![lib("libgcc_s.so.1")]),
        (
            "libstdc++6",
            vec![
                lib("libstdc++.so.6"),
                (
                    "usr/share/gdb/auto-load/printers.py".into(),
                    text("# gdb\n"),
                ),
                (
                    "usr/share/gcc/python/libstdcxx/__init__.py".into(),
                    text("# printers\n"),
                ),
            ],
        ),
        ("libgomp1", vec![lib("libgomp.so.1")]),
        ("gcc-14-base", vec![copyright("gcc-14-base")]),
        (
            "busybox-static",
            vec![(
                "bin/busybox".into(),
                DebFile::File(b"busybox".to_vec(), 0o755),
            )],
        ),
    ];
    if arch == "s390x" {
        packages.push((
            "s390x-tool",
            vec![(
                "usr/bin/s390x-tool".into(),
                DebFile::File(elf_so(m, ""), 0o755),
            )],
        ));
    }
    packages
        .into_iter()
        .map(|(name, files)| {
            let refs: Vec<(&str, DebFile)> =
                files.iter().map(|(p, f)| (p.as_str(), f.clone())).collect();
            let mut p = pkg(name, "1.0", arch, &[]);
            p.deb = Some(build_deb(name, "1.0", arch, &refs, "xz"));
            p
        })
        .collect()
}

struct Fixture {
    _gpg: Gpg,
    _archive: tempfile::TempDir,
    project: Project,
    server: Server,
}

impl Fixture {
    fn new() -> Fixture {
        let gpg = Gpg::new();
        let key = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let archive_dir = tempfile::tempdir().unwrap();
        let cert = test_cert(archive_dir.path());
        let per_arch: Vec<(&str, Vec<Pkg>)> = MACHINES
            .iter()
            .map(|m| (m.arch, debs(m.arch, &cert)))
            .collect();
        Archive {
            root: archive_dir.path().to_owned(),
        }
        .write_suite(
            "debian",
            "trixie",
            &per_arch,
            &gpg,
            &key,
            &SuiteOpts {
                architectures: "all ppc64el s390x".into(),
                ..SuiteOpts::default()
            },
        );
        let project = Project::new();
        project.write("snapshots/keys/main.asc", &gpg.export(&key));
        project.write(
            "snapshots/debian13.toml",
            &MANIFEST.replace("MAIN_FPR", &key),
        );
        // The project's own rules for the images every Google architecture has.
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        for f in [
            "defaults.toml",
            "static.toml",
            "base-nossl.toml",
            "base.toml",
            "cc.toml",
            "variants/debug.toml",
            "variants/nonroot.toml",
            "variants/debug-nonroot.toml",
        ] {
            project.write(
                &format!("rules/{f}"),
                &std::fs::read_to_string(src.join(f)).unwrap(),
            );
        }
        project.write("rules/s390x-only.toml", S390X_ONLY);
        project.write("rules/with-gconv.toml", WITH_GCONV);
        let server = Server::serve(archive_dir.path());
        Fixture {
            _gpg: gpg,
            _archive: archive_dir,
            project,
            server,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let cache = self.project.path().join("cache");
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if matches!(args[0], "pin" | "build") {
            a.extend([
                "--mirror".into(),
                self.server.url() + "debian",
                "--cache-dir".into(),
                cache.display().to_string(),
            ]);
        }
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        self.project.run(&refs)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(o.status.success(), "debless {args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The descriptor a tag names in a layout's index.json.
fn tag(layout: &Path, name: &str) -> Option<serde_json::Value> {
    json(&layout.join("index.json"))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == name)
        .cloned()
}

/// `os/architecture` of every manifest in the multi-arch index a tag names.
fn platforms(layout: &Path, name: &str) -> BTreeSet<String> {
    let index = tag(layout, name).unwrap_or_else(|| panic!("{}: no {name}", layout.display()));
    json(&blob_path(layout, index["digest"].as_str().unwrap()))["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            format!(
                "{}/{}",
                p["os"].as_str().unwrap(),
                p["architecture"].as_str().unwrap()
            )
        })
        .collect()
}

/// One image's files as its layers leave them: path -> (symlink target or content).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    File(Vec<u8>),
    Link(String),
    Dir,
}

fn layers(layout: &Path, name: &str) -> Vec<BTreeMap<String, Node>> {
    let desc = tag(layout, name).unwrap_or_else(|| panic!("{}: no {name}", layout.display()));
    let manifest = json(&blob_path(layout, desc["digest"].as_str().unwrap()));
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let gz = std::fs::File::open(blob_path(layout, l["digest"].as_str().unwrap())).unwrap();
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
            let mut files = BTreeMap::new();
            for e in tar.entries().unwrap() {
                let mut e = e.unwrap();
                let path = e
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_start_matches("./")
                    .to_owned();
                let node = match e.header().entry_type() {
                    tar::EntryType::Symlink => Node::Link(
                        e.link_name()
                            .unwrap()
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    ),
                    tar::EntryType::Directory => Node::Dir,
                    _ => {
                        let mut data = Vec::new();
                        e.read_to_end(&mut data).unwrap();
                        Node::File(data)
                    }
                };
                files.insert(path.trim_end_matches('/').to_owned(), node);
            }
            files
        })
        .collect()
}

fn files(layout: &Path, name: &str) -> BTreeMap<String, Node> {
    layers(layout, name).into_iter().flatten().collect()
}

fn text(files: &BTreeMap<String, Node>, path: &str) -> String {
    match files.get(path) {
        Some(Node::File(d)) => String::from_utf8_lossy(d).into_owned(),
        other => panic!("{path}: {other:?}"),
    }
}

/// (soname, flags, path) of each entry of a new-format ld.so.cache in `m`'s byte order.
fn ld_cache(data: &[u8], m: &Machine) -> Vec<(String, i32, String)> {
    const MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
    assert!(data.starts_with(MAGIC), "not a new-format cache");
    let u32_at = |o: usize| {
        let b: [u8; 4] = data[o..o + 4].try_into().unwrap();
        if m.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let string = |o: u32| {
        let s = &data[o as usize..];
        String::from_utf8_lossy(&s[..s.iter().position(|&b| b == 0).unwrap()]).into_owned()
    };
    (0..u32_at(20) as usize)
        .map(|i| {
            let o = 48 + 24 * i;
            (
                string(u32_at(o + 4)),
                u32_at(o) as i32,
                string(u32_at(o + 8)),
            )
        })
        .collect()
}

#[test]
fn ppc64el_and_s390x_images_from_the_projects_rules() {
    if !common::require_tool("openssl", "make deps (apt-get install openssl)") {
        return;
    }
    let f = Fixture::new();
    f.ok(&["pin", "--distro", "debian13"]);
    let out = f.project.path().join("out");
    let out_s = out.to_str().unwrap();
    f.ok(&[
        "build",
        "--distro",
        "debian13",
        "--variant",
        "latest",
        "--variant",
        "nonroot",
        "--out",
        out_s,
    ]);

    for image in ["static", "base-nossl", "base", "cc", "with-gconv"] {
        let lay = out.join(format!("{image}-debian13"));
        for t in ["latest", "nonroot"] {
            assert_eq!(
                platforms(&lay, t),
                BTreeSet::from(["linux/ppc64le".to_owned(), "linux/s390x".to_owned()]),
                "{image}:{t}"
            );
        }
    }
    for m in &MACHINES {
        let lay = out.join("base-debian13");
        let fs = files(&lay, &format!("latest-{}", m.arch));
        // The loader under its ABI name and in the multiarch directory.
        let loader = format!("usr/lib/{}/{}", m.triplet, m.loader);
        assert!(
            matches!(fs.get(&loader), Some(Node::File(_))),
            "{}: {loader}",
            m.arch
        );
        assert!(
            matches!(fs.get(m.loader_link), Some(Node::Link(_))),
            "{}: {}",
            m.arch,
            m.loader_link
        );
        // C.UTF-8 from libc-bin, and only that of it.
        assert!(
            fs.contains_key("usr/lib/locale/C.utf8/LC_CTYPE"),
            "{}",
            m.arch
        );
        assert!(!fs.contains_key("usr/sbin/ldconfig"), "{}", m.arch);
        assert!(!fs.keys().any(|p| p.contains("/gconv/")), "{}", m.arch);
        // The cache lists every library with the machine's flags.
        let Some(Node::File(cache)) = fs.get("etc/ld.so.cache") else {
            panic!("{}: no ld.so.cache", m.arch)
        };
        let entries = ld_cache(cache, m);
        let sonames: BTreeSet<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        for want in [
            "libc.so.6",
            "libssl.so.3",
            "libcrypto.so.3",
            "libz.so.1",
            "libzstd.so.1",
            m.loader,
        ] {
            assert!(
                sonames.contains(want),
                "{}: ld.so.cache has no {want}: {sonames:?}",
                m.arch
            );
        }
        for (soname, flags, path) in &entries {
            assert_eq!(*flags, m.cache_flags, "{}: {soname} -> {path}", m.arch);
            // Through the merged-/usr links, the entry names a file of the image.
            let rel = path.trim_start_matches('/');
            let rel = if rel.starts_with("usr/") {
                rel.to_owned()
            } else {
                format!("usr/{rel}")
            };
            assert!(
                fs.contains_key(&rel),
                "{}: {soname} -> {path}, not in the image",
                m.arch
            );
        }
        let config = json(&blob_path(
            &lay,
            json(&blob_path(
                &lay,
                tag(&lay, &format!("latest-{}", m.arch)).unwrap()["digest"]
                    .as_str()
                    .unwrap(),
            ))["config"]["digest"]
                .as_str()
                .unwrap(),
        ));
        assert_eq!(
            format!(
                "{}/{}",
                config["os"].as_str().unwrap(),
                config["architecture"].as_str().unwrap()
            ),
            m.platform
        );
        // Every ELF file is the machine's, in its byte order.
        for (path, node) in &fs {
            if let Node::File(d) = node
                && d.starts_with(b"\x7fELF")
            {
                let e = [d[18], d[19]];
                let got = if d[5] == 2 {
                    u16::from_be_bytes(e)
                } else {
                    u16::from_le_bytes(e)
                };
                assert_eq!(got, m.e_machine, "{}: {path}", m.arch);
            }
        }
    }
}

#[test]
fn an_images_architectures_bound_what_pin_resolves_and_build_makes() {
    if !common::require_tool("openssl", "make deps (apt-get install openssl)") {
        return;
    }
    let f = Fixture::new();
    // s390x-tool exists for s390x only: pinning resolves s390x-only there and nowhere else.
    f.ok(&["pin", "--distro", "debian13"]);
    let lock =
        debless::snapshot::lock::Lock::read(&f.project.path().join("snapshots/debian13.lock"))
            .unwrap();
    let where_: Vec<String> = lock
        .packages
        .iter()
        .filter(|p| p.rules.iter().any(|r| r == "s390x-only"))
        .map(|p| format!("{} {}", p.name, p.arch))
        .filter(|s| s.starts_with("s390x-tool"))
        .collect();
    assert_eq!(where_, ["s390x-tool s390x"]);
    assert!(
        !lock
            .packages
            .iter()
            .any(|p| p.arch == "ppc64el" && p.rules.iter().any(|r| r == "s390x-only")),
        "s390x-only must not be resolved for ppc64el"
    );

    let out = f.project.path().join("out");
    let out_s = out.to_str().unwrap();
    f.ok(&[
        "build",
        "--distro",
        "debian13",
        "--variant",
        "latest",
        "--out",
        out_s,
    ]);
    let lay = out.join("s390x-only-debian13");
    assert_eq!(
        platforms(&lay, "latest"),
        BTreeSet::from(["linux/s390x".to_owned()])
    );
    assert!(tag(&lay, "latest-ppc64el").is_none());
    assert!(tag(&lay, "latest-s390x").is_some());
    assert_eq!(platforms(&out.join("static-debian13"), "latest").len(), 2);

    // Asking for it on an architecture it is not built for says so.
    let o = f.run(&[
        "build",
        "s390x-only",
        "--distro",
        "debian13",
        "--arch",
        "ppc64el",
        "--out",
        out_s,
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("image s390x-only is not built for ppc64el (its architectures: s390x)"),
        "{e}"
    );
    // Without naming it, other images build for ppc64el and it is left out.
    f.ok(&[
        "build",
        "--distro",
        "debian13",
        "--arch",
        "ppc64el",
        "--variant",
        "latest",
        "--out",
        out_s,
    ]);
    let why = f.ok(&[
        "why",
        "s390x-tool",
        "--image",
        "s390x-only",
        "--arch",
        "ppc64el",
    ]);
    assert!(why.contains("s390x-only is not built for ppc64el"), "{why}");
}

#[test]
fn a_child_rule_adds_paths_of_a_package_its_parent_ships() {
    if !common::require_tool("openssl", "make deps (apt-get install openssl)") {
        return;
    }
    let f = Fixture::new();
    f.ok(&["pin", "--distro", "debian13"]);
    let out = f.project.path().join("out");
    let out_s = out.to_str().unwrap();
    f.ok(&[
        "build",
        "base-nossl",
        "with-gconv",
        "--distro",
        "debian13",
        "--arch",
        "s390x",
        "--variant",
        "latest",
        "--out",
        out_s,
    ]);
    let t = "usr/lib/s390x-linux-gnu";
    let parent = layers(&out.join("base-nossl-debian13"), "latest-s390x");
    let child = layers(&out.join("with-gconv-debian13"), "latest-s390x");
    // The parent's layers are shared; the child's own layer holds the gconv files only.
    assert_eq!(child.len(), parent.len() + 1);
    assert_eq!(child[..parent.len()], parent[..]);
    let own = child.last().unwrap();
    let own_files: BTreeSet<&str> = own
        .iter()
        .filter(|(_, n)| !matches!(n, Node::Dir))
        .map(|(p, _)| p.as_str())
        .collect();
    assert!(
        own_files.contains(format!("{t}/gconv/CP1252.so").as_str()),
        "{own_files:?}"
    );
    assert!(
        !own_files.contains(format!("{t}/libc.so.6").as_str()),
        "{own_files:?}"
    );
    // dpkg's view: libc6's md5sums lists the files of both layers in the child image, the
    // parent's only in the parent image.
    let sums = |fs: &BTreeMap<String, Node>| text(fs, "var/lib/dpkg/status.d/libc6.md5sums");
    let child_sums = sums(
        &child
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    let parent_sums = sums(
        &parent
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    assert!(
        child_sums.contains("/gconv/CP1252.so") && child_sums.contains("/libc.so.6"),
        "{child_sums}"
    );
    assert!(
        !parent_sums.contains("gconv") && parent_sums.contains("/libc.so.6"),
        "{parent_sums}"
    );
    // The SBOM has libc6 once, with the files of both layers.
    let sbom = json(&out.join("with-gconv-debian13.spdx/latest-s390x.spdx.json"));
    let libc6: Vec<&serde_json::Value> = sbom["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "libc6")
        .collect();
    assert_eq!(libc6.len(), 1, "libc6 in the SBOM: {libc6:?}");
    let id = libc6[0]["SPDXID"].as_str().unwrap();
    let contained: BTreeSet<&str> = sbom["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["spdxElementId"] == id && r["relationshipType"] == "CONTAINS")
        .map(|r| r["relatedSpdxElement"].as_str().unwrap())
        .collect();
    let names: BTreeSet<&str> = sbom["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| contained.contains(f["SPDXID"].as_str().unwrap()))
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    for want in [format!("./{t}/gconv/CP1252.so"), format!("./{t}/libc.so.6")] {
        assert!(
            names.contains(want.as_str()),
            "{want} not in libc6's SBOM files: {names:?}"
        );
    }
}
