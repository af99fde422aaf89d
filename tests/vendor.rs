//! Hermetic tests of sources beyond Debian's archive: a vendor's own apt repository (real
//! .debs, its InRelease signed by a GnuPG key of its own) and upstream release tarballs
//! (tar.xz and tar.gz made here), all served on 127.0.0.1 next to a fake Debian archive
//! signed by another key. Pin records them in the lock, build ships their files, the SBOM
//! lists them; hostile cases each end in one `error:` line and leave the lock alone.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::{Archive, DebFile, Gpg, Pkg, Project, Server, SuiteOpts, build_deb, pkg, stderr};
use debless::deb::testdeb::{Raw, compress, raw_tar};
use debless::snapshot::lock::Lock;

const DEFAULTS: &str = r#"
[files]
exclude = ["/usr/share/doc/**"]
keep = ["/usr/share/doc/*/copyright"]
"#;

const STATIC: &str = "distros = ['test']\n[packages.base-files]\n";
const BASE: &str = "parent = 'static'\ndistros = ['test']\n[packages.libc6]\n";

/// An extra image whose root comes from the vendor repository.
const ACME: &str = r#"
description = "base + the vendor's runtime"
parent = "base"
distros = ["test"]
[packages.acme-runtime]
[config]
entrypoint = ["/opt/acme/bin/run"]
"#;

/// An extra image made of two upstream tarballs: node (tar.xz, one top directory) and
/// tool (tar.gz, no top directory).
const NODE: &str = r#"
description = "base + node and tool from their release tarballs"
parent = "base"
distros = ["test"]

[tarballs.node]
version = "1.2.3"
url = "URL/dist/v{version}/node-v{version}-linux-{arch_upstream}.tar.xz"
arch_upstream = ARCHES
strip = "node-v{version}-linux-{arch_upstream}"
prefix = "/nodejs"
paths = ["/nodejs/bin/node", "/nodejs/bin/npm", "/nodejs/lib/**"]
license_file = "/nodejs/LICENSE"
license = "MIT"
homepage = "https://nodejs.invalid/"

[tarballs.tool]
version = "0.9"
url = "URL/tool/tool-{version}-{arch}.tar.gz"
prefix = "/opt/tool"
license_file = "/opt/tool/COPYING"

[config]
entrypoint = ["/nodejs/bin/node"]
"#;

const ARCHES: &str = r#"{ amd64 = "x64", arm64 = "arm64" }"#;

fn triplet(arch: &str) -> &'static str {
    if arch == "amd64" {
        "x86_64-linux-gnu"
    } else {
        "aarch64-linux-gnu"
    }
}

fn with(mut p: Pkg, deb: Vec<u8>) -> Pkg {
    p.deb = Some(deb);
    p
}

fn file(s: &str, mode: u32) -> DebFile {
    DebFile::File(s.as_bytes().to_vec(), mode)
}

/// Debian's packages: base-files and libc6.
fn debian(arch: &str) -> Vec<Pkg> {
    let base_files = build_deb(
        "base-files",
        "13.8",
        arch,
        &[
            ("etc/debian_version", file("13.8\n", 0o644)),
            ("usr/share/doc/base-files/copyright", file("GPL\n", 0o644)),
        ],
        "gzip",
    );
    let libc = build_deb(
        "libc6",
        "2.41-12",
        arch,
        &[
            (
                &format!("lib/{}/libc.so.6", triplet(arch)),
                file(&format!("debian libc {arch}"), 0o755),
            ),
            ("usr/share/doc/libc6/copyright", file("LGPL\n", 0o644)),
        ],
        "xz",
    );
    vec![
        with(pkg("base-files", "13.8", arch, &[]), base_files),
        with(pkg("libc6", "2.41-12", arch, &[]), libc),
    ]
}

/// The vendor's packages: its runtime (a real .deb that needs Debian's libc6), and a
/// libc6 of its own with a higher version, which it may not supply (a placeholder that
/// would fail the build if it were ever taken).
fn vendor(arch: &str) -> Vec<Pkg> {
    let runtime = build_deb(
        "acme-runtime",
        "3.1-1",
        arch,
        &[
            ("opt/acme/bin/run", file(&format!("acme run {arch}"), 0o755)),
            (
                "usr/share/doc/acme-runtime/copyright",
                file("Acme\n", 0o644),
            ),
        ],
        "zstd",
    );
    vec![
        with(
            pkg(
                "acme-runtime",
                "3.1-1",
                arch,
                &[("Depends", "libc6 (>= 2.41)")],
            ),
            runtime,
        ),
        pkg("libc6", "99-1", arch, &[]),
    ]
}

/// node's release tarball for one upstream architecture name, as a real tar.xz: a top
/// directory, the binary, a relative symlink, a library, headers and the licence, owned
/// by the builder's uid 1000 as upstream tarballs are.
fn node_tarball(upstream: &str) -> Vec<u8> {
    let top = format!("node-v1.2.3-linux-{upstream}");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: &str| {
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("{top}{path}")).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        if !link.is_empty() {
            h.set_link_name(link).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    use tar::EntryType::{Directory, Regular, Symlink};
    add("/", Directory, 0o755, b"", "");
    add("/bin/", Directory, 0o755, b"", "");
    add(
        "/bin/node",
        Regular,
        0o755,
        format!("node {upstream}").as_bytes(),
        "",
    );
    add("/bin/npm", Symlink, 0o777, b"", "../lib/npm-cli.js");
    add("/lib/", Directory, 0o755, b"", "");
    add("/lib/npm-cli.js", Regular, 0o644, b"npm", "");
    add("/include/node.h", Regular, 0o644, b"header", "");
    add("/LICENSE", Regular, 0o644, b"MIT License\n", "");
    compress("xz", &b.into_inner().unwrap())
}

/// tool's release tarball: no top directory, gzip.
fn tool_tarball(arch: &str) -> Vec<u8> {
    let tar = raw_tar(&[
        Raw::dir("bin/"),
        Raw {
            mode: 0o755,
            ..Raw::file("bin/tool", format!("tool {arch}").leak().as_bytes())
        },
        Raw::file("COPYING", b"BSD\n"),
    ]);
    compress("gz", &tar)
}

/// How a fixture differs from the good one.
#[derive(Default)]
struct Setup {
    /// Sign the vendor's InRelease with Debian's key instead of the vendor's.
    vendor_signed_by_debian: bool,
    /// Sign Debian's InRelease with the vendor's key instead of Debian's.
    debian_signed_by_vendor: bool,
    /// Leave the vendor's fingerprint unset in the manifest.
    no_vendor_fingerprint: bool,
    /// Replace the amd64 node tarball with these bytes.
    node_amd64: Option<Vec<u8>>,
    /// node's arch_upstream table (default: amd64 and arm64).
    arches: Option<&'static str>,
}

struct Fixture {
    _gpg: Gpg,
    _root: tempfile::TempDir,
    root: PathBuf,
    project: Project,
    server: Server,
    vendor_fpr: String,
}

impl Fixture {
    fn new(setup: Setup) -> Fixture {
        let gpg = Gpg::new();
        let debian_fpr = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let vendor_fpr = gpg.generate("Acme Packages <packages@acme.invalid>", "0", None);
        let root = tempfile::tempdir().unwrap();
        let archive = Archive {
            root: root.path().to_owned(),
        };
        let arches = ["amd64", "arm64"];
        let per_arch = |f: fn(&str) -> Vec<Pkg>| -> Vec<(&str, Vec<Pkg>)> {
            arches.iter().map(|a| (*a, f(a))).collect()
        };
        let debian_signer = if setup.debian_signed_by_vendor {
            &vendor_fpr
        } else {
            &debian_fpr
        };
        archive.write_suite(
            "debian",
            "test",
            &per_arch(debian),
            &gpg,
            debian_signer,
            &SuiteOpts::default(),
        );
        let vendor_signer = if setup.vendor_signed_by_debian {
            &debian_fpr
        } else {
            &vendor_fpr
        };
        archive.write_suite(
            "acme",
            "stable",
            &per_arch(vendor),
            &gpg,
            vendor_signer,
            &SuiteOpts::default(),
        );
        for (arch, upstream) in [("amd64", "x64"), ("arm64", "arm64")] {
            let node = match (&setup.node_amd64, arch) {
                (Some(bytes), "amd64") => bytes.clone(),
                _ => node_tarball(upstream),
            };
            write(
                &root
                    .path()
                    .join(format!("dist/v1.2.3/node-v1.2.3-linux-{upstream}.tar.xz")),
                &node,
            );
            write(
                &root.path().join(format!("tool/tool-0.9-{arch}.tar.gz")),
                &tool_tarball(arch),
            );
        }
        let server = Server::serve(root.path());
        let url = server.url().trim_end_matches('/').to_owned();
        let project = Project::new();
        project.write("snapshots/keys/main.asc", &gpg.export(&debian_fpr));
        project.write("snapshots/keys/acme.asc", &gpg.export(&vendor_fpr));
        let vendor_pin = if setup.no_vendor_fingerprint {
            String::new()
        } else {
            vendor_fpr.clone()
        };
        project.write(
            "snapshots/test.toml",
            &format!(
                r#"
distro = "test"
codename = "test"
architectures = ["amd64", "arm64"]

[[suites]]
archive = "debian"
suite = "test"

[[keys]]
file = "keys/main.asc"
fingerprint = "{debian_fpr}"

[[vendors]]
name = "acme"
url = "{url}/acme"
suite = "stable"
packages = ["acme-*"]
key = {{ file = "keys/acme.asc", fingerprint = "{vendor_pin}" }}
"#
            ),
        );
        project.write("rules/defaults.toml", DEFAULTS);
        project.write("rules/static.toml", STATIC);
        project.write("rules/base.toml", BASE);
        project.write("rules/extra/acme.toml", ACME);
        project.write(
            "rules/extra/node.toml",
            &NODE
                .replace("URL", &url)
                .replace("ARCHES", setup.arches.unwrap_or(ARCHES)),
        );
        Fixture {
            _gpg: gpg,
            root: root.path().to_owned(),
            _root: root,
            project,
            server,
            vendor_fpr,
        }
    }

    fn cache(&self) -> PathBuf {
        self.project.path().join("cache")
    }

    /// Run debless with this fixture's Debian mirror and `cache`.
    fn run_with(&self, cache: &Path, args: &[&str]) -> std::process::Output {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--mirror".into(),
            self.server.url() + "debian",
            "--cache-dir".into(),
            cache.display().to_string(),
        ]);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        self.project.run(&refs)
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_with(&self.cache(), args)
    }

    fn pin(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["pin", "--distro", "test"];
        args.extend(extra);
        self.run(&args)
    }

    fn lock_path(&self) -> PathBuf {
        self.project.path().join("snapshots/test.lock")
    }

    fn lock(&self) -> Lock {
        Lock::read(&self.lock_path()).unwrap()
    }

    fn out(&self) -> PathBuf {
        self.project.path().join("out")
    }

    fn build(&self, images: &[&str]) -> std::process::Output {
        let out = self.out();
        let mut args = vec!["build", "--distro", "test", "--out", out.to_str().unwrap()];
        args.extend(images);
        self.run(&args)
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "failed: {}", stderr(o));
    stderr(o)
}

/// The end of a failed run's stderr, which must be its one `error:` line (and the
/// indented list some errors end with, such as `--offline`'s missing .debs).
fn error_line(o: &std::process::Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "should have failed; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    let list = lines
        .iter()
        .rev()
        .take_while(|l| l.starts_with("  "))
        .count();
    let last = lines[..lines.len() - list].last().copied().unwrap_or("");
    assert!(last.starts_with("error: "), "not one error line: {err}");
    lines[lines.len() - list - 1..].join("\n")
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// One file of an image, as its layers leave it.
#[derive(Debug)]
struct ImageFile {
    mode: u32,
    uid: u64,
    gid: u64,
    data: Vec<u8>,
    link: Option<String>,
}

/// Every entry of a tag's image (its gzip layers, bottom first, later ones winning).
fn image_files(layout: &Path, tag: &str) -> BTreeMap<String, ImageFile> {
    let blob = |digest: &str| {
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    };
    let index = json(&layout.join("index.json"));
    let manifest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag}"));
    let manifest = json(&blob(manifest["digest"].as_str().unwrap()));
    let mut out = BTreeMap::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let bytes = std::fs::read(blob(layer["digest"].as_str().unwrap())).unwrap();
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        for e in tar.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned();
            let h = e.header().clone();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.insert(
                format!("/{}", path.trim_start_matches("./")),
                ImageFile {
                    mode: h.mode().unwrap(),
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    data,
                    link: h
                        .link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into_owned()),
                },
            );
        }
    }
    out
}

#[test]
fn a_plain_pin_and_build_leave_vendors_and_extra_images_alone() {
    // No fingerprint yet, and the vendor's InRelease would not even verify: a pin of the
    // family never looks at the vendor, so neither matters.
    let f = Fixture::new(Setup {
        no_vendor_fingerprint: true,
        vendor_signed_by_debian: true,
        ..Setup::default()
    });
    ok(&f.pin(&[]));
    let lock = f.lock();
    assert_eq!(lock.lock_version, 1);
    assert!(lock.vendors.is_empty() && lock.tarballs.is_empty());
    let text = std::fs::read_to_string(f.lock_path()).unwrap();
    assert!(
        !text.contains("vendor") && !text.contains("tarball"),
        "{text}"
    );
    assert!(
        !f.server
            .paths()
            .iter()
            .any(|p| p.starts_with("/acme/") || p.starts_with("/dist/")),
        "a plain pin reached the vendor or a tarball site: {:?}",
        f.server.paths()
    );
    // Built without names: the family, not the extra images.
    ok(&f.build(&[]));
    assert!(f.out().join("base-test").is_dir());
    assert!(!f.out().join("node-test").exists() && !f.out().join("acme-test").exists());
    // Named, an extra image the lock lacks says how to pin it.
    let e = error_line(&f.build(&["node"]));
    assert!(
        e.contains("has nothing for rule node")
            && e.contains("run `debless pin --distro test --extra`"),
        "{e}"
    );
    // Pinning the extras needs the vendor's key: the error says how to set it up.
    let before = std::fs::read(f.lock_path()).unwrap();
    let e = error_line(&f.pin(&["--extra"]));
    assert!(
        e.contains("vendor acme: the key fingerprint is not set; fetch the vendor's public key"),
        "{e}"
    );
    assert_eq!(
        std::fs::read(f.lock_path()).unwrap(),
        before,
        "the lock moved"
    );
}

#[test]
fn extra_images_pin_their_vendor_and_tarballs_and_ship_them() {
    let f = Fixture::new(Setup::default());
    let log = ok(&f.pin(&["--extra"]));
    assert!(
        log.contains("tarball node 1.2.3 (amd64): downloaded and hashed"),
        "{log}"
    );
    let lock = f.lock();
    assert_eq!(lock.lock_version, 2);

    // The vendor: verified against its own key, recorded with its URL.
    assert_eq!(lock.vendors.len(), 1);
    let v = &lock.vendors[0];
    assert_eq!(v.archive, "acme");
    assert_eq!(v.suite, "stable");
    assert_eq!(v.signed_by, f.vendor_fpr);
    assert_eq!(
        v.url.as_deref(),
        Some(format!("{}acme/", f.server.url()).as_str())
    );
    assert!(
        v.indices
            .iter()
            .any(|i| i.path == "main/binary-arm64/Packages.xz")
    );
    // Its runtime comes from it; libc6 from Debian although the vendor offers a higher one.
    for arch in lock.architectures.clone() {
        let rt = lock.package(arch, "acme-runtime").unwrap();
        assert_eq!(rt.vendor.as_deref(), Some("acme"));
        assert_eq!(rt.rules, ["acme"]);
        let libc = lock.package(arch, "libc6").unwrap();
        assert_eq!(
            (libc.version.as_str(), libc.vendor.as_deref()),
            ("2.41-12", None)
        );
    }

    // The tarballs: URL per architecture, size and sha256 of what was served.
    assert_eq!(lock.tarballs.len(), 4);
    let node = lock
        .tarball("amd64".parse().unwrap(), "node", "1.2.3")
        .unwrap();
    let served = std::fs::read(f.root.join("dist/v1.2.3/node-v1.2.3-linux-x64.tar.xz")).unwrap();
    assert_eq!(
        node.url,
        format!("{}dist/v1.2.3/node-v1.2.3-linux-x64.tar.xz", f.server.url())
    );
    assert_eq!(node.size, served.len() as u64);
    assert_eq!(node.sha256.hex(), common::sha256(&served));
    assert_eq!(node.rules, ["node"]);
    let tool = lock
        .tarball("arm64".parse().unwrap(), "tool", "0.9")
        .unwrap();
    assert!(
        tool.url.ends_with("/tool/tool-0.9-arm64.tar.gz"),
        "{}",
        tool.url
    );

    // An unchanged rule keeps its hashes: nothing is downloaded again.
    let requests = f.server.paths().len();
    let log = ok(&f.pin(&["--extra"]));
    assert!(!log.contains("downloaded and hashed"), "{log}");
    assert!(
        !f.server.paths()[requests..]
            .iter()
            .any(|p| p.starts_with("/dist/") || p.starts_with("/tool/")),
        "{:?}",
        f.server.paths()
    );
    assert_eq!(f.lock(), lock);

    // The build takes the vendor's .deb from the vendor and the tarballs from their sites
    // (a fresh cache, so every file is downloaded and checked).
    let cache = f.project.path().join("build-cache");
    let out = f.out();
    ok(&f.run_with(
        &cache,
        &[
            "build",
            "acme",
            "node",
            "--distro",
            "test",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let acme = image_files(&out.join("acme-test"), "latest-amd64");
    assert_eq!(acme["/opt/acme/bin/run"].data, b"acme run amd64");
    assert_eq!(
        acme["/usr/lib/x86_64-linux-gnu/libc.so.6"].data,
        b"debian libc amd64"
    );

    let node = image_files(&out.join("node-test"), "latest-arm64");
    assert_eq!(node["/nodejs/bin/node"].data, b"node arm64");
    assert_eq!(node["/nodejs/bin/node"].mode & 0o7777, 0o755);
    assert_eq!(
        node["/nodejs/bin/npm"].link.as_deref(),
        Some("../lib/npm-cli.js")
    );
    assert_eq!(
        node["/nodejs/LICENSE"].data, b"MIT License\n",
        "the licence is kept"
    );
    assert!(
        !node.contains_key("/nodejs/include/node.h"),
        "not in `paths`"
    );
    assert_eq!(node["/opt/tool/bin/tool"].data, b"tool arm64");
    assert_eq!(node["/opt/tool/COPYING"].data, b"BSD\n");
    for (path, f) in node
        .iter()
        .filter(|(p, _)| p.starts_with("/nodejs") || p.starts_with("/opt"))
    {
        assert_eq!((f.uid, f.gid), (0, 0), "{path} keeps the builder's ids");
    }
    // The history names the tarballs of the layer.
    let config_of = |layout: &Path| {
        let index = json(&layout.join("index.json"));
        let m = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "latest-amd64")
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_owned();
        let blob = |d: &str| {
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        };
        let manifest = json(&blob(&m));
        json(&blob(manifest["config"]["digest"].as_str().unwrap()))
    };
    let config = config_of(&out.join("node-test"));
    let history = config["history"].to_string();
    assert!(
        history.contains("debless node: tarball:node@1.2.3 tarball:tool@0.9"),
        "{history}"
    );

    // The SPDX document lists each tarball with its generic purl, URL, hash and licence.
    let doc = json(&out.join("node-test.spdx/latest-amd64.spdx.json"));
    let packages = doc["packages"].as_array().unwrap();
    let find = |name: &str| packages.iter().find(|p| p["name"] == name).unwrap();
    let n = find("node");
    let url = format!("{}dist/v1.2.3/node-v1.2.3-linux-x64.tar.xz", f.server.url());
    let encoded: String = url
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    assert_eq!(
        n["externalRefs"][0]["referenceLocator"],
        format!("pkg:generic/node@1.2.3?download_url={encoded}")
    );
    assert_eq!(n["downloadLocation"], url);
    assert_eq!(n["licenseDeclared"], "MIT");
    assert_eq!(
        n["checksums"][0]["checksumValue"],
        lock.tarball("amd64".parse().unwrap(), "node", "1.2.3")
            .unwrap()
            .sha256
            .hex()
    );
    let files = doc["files"].to_string();
    assert!(
        files.contains("./nodejs/bin/node") && files.contains("./nodejs/LICENSE"),
        "{files}"
    );
    let t = find("tool");
    assert_eq!(t["licenseDeclared"], "NOASSERTION");
    assert!(
        t["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("pkg:generic/tool@0.9?download_url=")
    );
    // The vendor's package is a Debian package there, with its own purl.
    let acme_doc = json(&out.join("acme-test.spdx/latest-amd64.spdx.json"));
    let rt = acme_doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "acme-runtime")
        .unwrap();
    assert!(
        rt["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .starts_with("pkg:deb/")
    );

    // A plain pin afterwards drops the extras again, and the lock is format 1.
    ok(&f.pin(&[]));
    let plain = f.lock();
    assert_eq!(plain.lock_version, 1);
    assert!(plain.vendors.is_empty() && plain.tarballs.is_empty());
    assert!(
        plain
            .package("amd64".parse().unwrap(), "acme-runtime")
            .is_none()
    );
}

#[test]
fn extra_names_pin_only_those_images() {
    // The vendor has no key yet: pinning only the tarball image never needs it.
    let f = Fixture::new(Setup {
        no_vendor_fingerprint: true,
        ..Setup::default()
    });
    ok(&f.pin(&["--extra", "node"]));
    let lock = f.lock();
    assert!(lock.vendors.is_empty());
    assert_eq!(lock.tarballs.len(), 4);
    let e = error_line(&f.pin(&["--extra", "nodejs"]));
    assert!(
        e.contains(
            "--extra nodejs: there is no image of that name under rules/extra/ (there: acme, node)"
        ),
        "{e}"
    );
}

#[test]
fn a_vendor_repository_signed_by_another_key_is_refused() {
    let f = Fixture::new(Setup {
        vendor_signed_by_debian: true,
        ..Setup::default()
    });
    let e = error_line(&f.pin(&["--extra"]));
    assert!(
        e.contains("acme/dists/stable/InRelease: no valid signature by a trusted key")
            && e.contains(&format!("refusing to use vendor acme (its InRelease must be signed by the key the manifest pins for it, {})", f.vendor_fpr)),
        "{e}"
    );
    assert!(!f.lock_path().exists(), "a lock was written");
}

#[test]
fn a_vendor_key_cannot_sign_for_debian() {
    let f = Fixture::new(Setup {
        debian_signed_by_vendor: true,
        ..Setup::default()
    });
    let e = error_line(&f.pin(&["--extra"]));
    assert!(
        e.contains("debian/dists/test/InRelease: no valid signature by a trusted key")
            && e.contains("refusing to use this suite"),
        "{e}"
    );
    assert!(!f.lock_path().exists());
}

#[test]
fn a_vendor_key_file_that_is_not_the_pinned_key_is_refused() {
    let f = Fixture::new(Setup::default());
    let other = Gpg::new();
    let fpr = other.generate("Mallory <m@invalid>", "0", None);
    f.project
        .write("snapshots/keys/acme.asc", &other.export(&fpr));
    let e = error_line(&f.pin(&["--extra"]));
    assert!(
        e.contains("keys/acme.asc")
            && e.contains(&format!(
                "fingerprint is {fpr}, but the manifest pins {}",
                f.vendor_fpr
            )),
        "{e}"
    );
}

#[test]
fn a_tampered_tarball_fails_the_build_naming_it() {
    let f = Fixture::new(Setup::default());
    ok(&f.pin(&["--extra", "node"]));
    // The site now serves other bytes under the pinned URL; a build with an empty cache
    // downloads them and refuses them.
    let path = f.root.join("dist/v1.2.3/node-v1.2.3-linux-x64.tar.xz");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let cache = f.project.path().join("fresh-cache");
    let out = f.out();
    let o = f.run_with(
        &cache,
        &[
            "build",
            "node",
            "--distro",
            "test",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let e = error_line(&o);
    assert!(
        e.contains("node 1.2.3 (amd64): ")
            && e.contains(
                "node-v1.2.3-linux-x64.tar.xz did not deliver the file pinned by the lock"
            )
            && e.contains("served sha256 "),
        "{e}"
    );
    assert!(!out.join("node-test").exists());

    // A flipped bit in the cache is caught before the tarball is read.
    let lock = f.lock();
    let node = lock
        .tarball("amd64".parse().unwrap(), "node", "1.2.3")
        .unwrap();
    let cached = f.cache().join("sha256").join(node.sha256.hex());
    let mut bytes = std::fs::read(&cached).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&cached, &bytes).unwrap();
    let e = error_line(&f.run(&[
        "build",
        "node",
        "--distro",
        "test",
        "--out",
        out.to_str().unwrap(),
        "--offline",
    ]));
    assert!(
        e.contains("tarball node 1.2.3 (amd64): the cached file does not match the lock's sha256")
            || e.contains("offline: "),
        "{e}"
    );
}

#[test]
fn a_tarball_with_escaping_paths_or_links_fails_the_build() {
    for (entries, want) in [
        (
            vec![
                Raw::dir("node-v1.2.3-linux-x64/"),
                Raw::file("node-v1.2.3-linux-x64/../../etc/cron.d/x", b"x"),
            ],
            "tarball node: /node-v1.2.3-linux-x64/../../etc/cron.d/x: has a `..` component",
        ),
        (
            vec![
                Raw::dir("node-v1.2.3-linux-x64/"),
                Raw::file("node-v1.2.3-linux-x64/LICENSE", b"MIT"),
                Raw::link(
                    tar::EntryType::Symlink,
                    "node-v1.2.3-linux-x64/bin/node",
                    "../../../etc/shadow",
                ),
            ],
            "tarball node: /nodejs/bin/node: is a symlink to ../../../etc/shadow, which points outside the tarball's top directory",
        ),
        (
            vec![Raw::file("etc/passwd", b"root::0:0::/:/bin/sh\n")],
            "tarball node: /etc/passwd: is outside the tarball's top directory node-v1.2.3-linux-x64/",
        ),
    ] {
        let f = Fixture::new(Setup {
            node_amd64: Some(compress("xz", &raw_tar(&entries))),
            ..Setup::default()
        });
        // Pin only hashes a tarball; the entries are checked where they are read.
        ok(&f.pin(&["--extra", "node"]));
        let out = f.out();
        let e = error_line(&f.run(&[
            "build",
            "node",
            "--distro",
            "test",
            "--out",
            out.to_str().unwrap(),
        ]));
        assert!(
            e.contains("rules/extra/node.toml: tarball node 1.2.3 (amd64): "),
            "{e}"
        );
        assert!(e.contains(want), "{e}");
        assert!(!out.join("node-test").exists());
    }
}

#[test]
fn an_architecture_missing_from_the_url_map_fails_the_pin() {
    let f = Fixture::new(Setup {
        arches: Some(r#"{ amd64 = "x64" }"#),
        ..Setup::default()
    });
    ok(&f.pin(&[]));
    let before = std::fs::read(f.lock_path()).unwrap();
    let e = error_line(&f.pin(&["--extra", "node"]));
    assert!(
        e.contains("rules/extra/node.toml: tarball node for arm64: arch_upstream has no entry for arm64 (it has: amd64)"),
        "{e}"
    );
    assert_eq!(std::fs::read(f.lock_path()).unwrap(), before);
}

#[test]
fn a_page_that_is_not_a_tarball_is_not_pinned() {
    let f = Fixture::new(Setup {
        node_amd64: Some(b"<!DOCTYPE html><title>Moved</title>".to_vec()),
        ..Setup::default()
    });
    let e = error_line(&f.pin(&["--extra", "node"]));
    assert!(
        e.contains("tarball node 1.2.3 (amd64) is not a tar archive"),
        "{e}"
    );
    assert!(!f.lock_path().exists());
}
