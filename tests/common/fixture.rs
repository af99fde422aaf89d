//! The fixture of the build tests: a signed fake archive on 127.0.0.1 serving real .debs
//! (made by dpkg-deb, in every compression) for two architectures, a project with images
//! static -> base -> tools and variants debug, nonroot and debug-nonroot, pinned; and
//! helpers that read the layouts a build writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    Archive, DebFile, Gpg, Pkg, Project, Server, SuiteOpts, build_deb, pkg, run_ok, stderr,
};

pub const MANIFEST: &str = r#"
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

pub const DEFAULTS: &str = r#"
[files]
exclude = ["/usr/share/doc/**", "/usr/share/man/**", "/usr/share/locale/**"]
keep = ["/usr/share/doc/*/copyright"]
"#;

pub const STATIC: &str = r#"
distros = ["test"]
[config]
env = { PATH = "/usr/sbin:/usr/bin" }
[packages.base-files]
"#;

pub const BASE: &str = r#"
parent = "static"
distros = ["test"]
[packages.libc6]
paths = [
    "/usr/lib/*/lib*.so*",
    "/usr/lib/*/ld-linux*",
    "/usr/lib/*/gconv/**",
    "?/usr/lib64/*",
    "?/usr/lib/ld-linux*",
    "/usr/share/doc/libc6/copyright",
]
"#;

pub const TOOLS: &str = r#"
parent = "base"
distros = ["test"]
[config]
entrypoint = ["/usr/bin/tool"]
[packages.tools]
allow_setuid = ["/usr/sbin/suidtool"]
"#;

/// A name longer than ustar's 100-byte name field.
pub fn long_name() -> String {
    format!("gconv/{}.so", "x".repeat(150))
}

pub fn triplet(arch: &str) -> &'static str {
    match arch {
        "amd64" => "x86_64-linux-gnu",
        _ => "aarch64-linux-gnu",
    }
}

pub fn debs(arch: &str) -> Vec<Pkg> {
    let t = triplet(arch);
    let file = |s: &str, mode| DebFile::File(s.as_bytes().to_vec(), mode);
    let base_files = build_deb(
        "base-files",
        "13.8",
        arch,
        &[
            ("etc/debian_version", file("13.8\n", 0o644)),
            ("usr/lib/os-release", file("NAME=\"Debian\"\n", 0o644)),
            (
                "etc/os-release",
                DebFile::Symlink("../usr/lib/os-release".into()),
            ),
            ("tmp", DebFile::Dir(0o1777)),
            ("root", DebFile::Dir(0o700)),
            ("var/cache", DebFile::Dir(0o755)),
            ("usr/share/doc/base-files/copyright", file("GPL\n", 0o644)),
            ("usr/share/doc/base-files/changelog.gz", file("log", 0o644)),
            ("usr/share/man/man5/os-release.5.gz", file("man", 0o644)),
            ("usr/share/locale/de/LC_MESSAGES/b.mo", file("mo", 0o644)),
        ],
        "gzip",
    );
    let mut libc_files = vec![
        (
            format!("lib/{t}/libc.so.6"),
            file(&format!("libc {arch}"), 0o755),
        ),
        (
            format!("lib/{t}/libm.so.6"),
            file(&format!("libm {arch}"), 0o644),
        ),
        (format!("usr/lib/{t}/{}", long_name()), file("gconv", 0o644)),
        (
            "usr/share/doc/libc6/copyright".into(),
            file("LGPL\n", 0o644),
        ),
        ("usr/share/i18n/SUPPORTED".into(), file("all\n", 0o644)),
    ];
    if arch == "amd64" {
        libc_files.push((format!("lib/{t}/ld-linux-x86-64.so.2"), file("ld", 0o755)));
        libc_files.push((
            "lib64/ld-linux-x86-64.so.2".into(),
            DebFile::Symlink(format!("/lib/{t}/ld-linux-x86-64.so.2")),
        ));
    } else {
        libc_files.push((format!("lib/{t}/ld-linux-aarch64.so.1"), file("ld", 0o755)));
        libc_files.push((
            "lib/ld-linux-aarch64.so.1".into(),
            DebFile::Symlink(format!("{t}/ld-linux-aarch64.so.1")),
        ));
    }
    let libc_refs: Vec<(&str, DebFile)> = libc_files
        .iter()
        .map(|(p, f)| (p.as_str(), f.clone()))
        .collect();
    let libc = build_deb("libc6", "2.41-12", arch, &libc_refs, "zstd");
    let tools = build_deb(
        "tools",
        "1.0",
        arch,
        &[
            ("usr/bin/tool", file("#!tool\n", 0o755)),
            (
                "usr/bin/tool-link",
                DebFile::Hardlink("usr/bin/tool".into()),
            ),
            ("usr/sbin/suidtool", file("suid\n", 0o4755)),
        ],
        "xz",
    );
    let busybox = build_deb(
        "busybox-static",
        "1.37",
        arch,
        &[("bin/busybox", file("busybox\n", 0o755))],
        "none",
    );
    let with = |mut p: Pkg, deb: Vec<u8>| {
        p.deb = Some(deb);
        p
    };
    vec![
        with(pkg("base-files", "13.8", arch, &[]), base_files),
        with(pkg("libc6", "2.41-12", arch, &[]), libc),
        with(pkg("tools", "1.0", arch, &[("Depends", "libc6")]), tools),
        with(pkg("busybox-static", "1.37", arch, &[]), busybox),
    ]
}

pub struct Fixture {
    pub _gpg: Gpg,
    pub _root: tempfile::TempDir,
    pub archive: Archive,
    pub project: Project,
    pub server: Server,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_packages(&|a| debs(a))
    }

    pub fn with_packages(packages: &dyn Fn(&str) -> Vec<Pkg>) -> Fixture {
        Fixture::with_rules(
            packages,
            &[
                ("rules/defaults.toml", DEFAULTS),
                ("rules/static.toml", STATIC),
                ("rules/base.toml", BASE),
                ("rules/tools.toml", TOOLS),
                (
                    "rules/variants/debug.toml",
                    "distros = ['test']\n[config]\nentrypoint = ['/usr/bin/busybox', 'sh']\nenv_append = { PATH = ':/busybox' }\n[packages.busybox-static]\n",
                ),
                (
                    "rules/variants/nonroot.toml",
                    "distros = ['test']\n[config]\nuser = '65532'\nworkdir = '/home/nonroot'\n",
                ),
                (
                    "rules/variants/debug-nonroot.toml",
                    "distros = ['test']\ncombines = ['debug', 'nonroot']\n",
                ),
            ],
        )
    }

    /// A project with these rule files (path, text) on a signed archive of `packages`
    /// for amd64 and arm64, served and pinned.
    pub fn with_rules(packages: &dyn Fn(&str) -> Vec<Pkg>, rules: &[(&str, &str)]) -> Fixture {
        let gpg = Gpg::new();
        let key = gpg.generate("Test Archive <archive@invalid>", "0", None);
        let root = tempfile::tempdir().unwrap();
        let archive = Archive {
            root: root.path().to_owned(),
        };
        let per_arch: Vec<(&str, Vec<Pkg>)> = ["amd64", "arm64"]
            .iter()
            .map(|a| (*a, packages(a)))
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
        for (path, text) in rules {
            project.write(path, text);
        }
        let server = Server::serve(root.path());
        let f = Fixture {
            _gpg: gpg,
            _root: root,
            archive,
            project,
            server,
        };
        let o = f.run(&["pin", "--distro", "test"]);
        assert!(o.status.success(), "pin failed: {}", stderr(&o));
        f
    }

    pub fn cache(&self) -> PathBuf {
        self.project.path().join("cache")
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.project.path().join(name)
    }

    /// Run debless with this fixture's mirror and cache.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--mirror".into(),
            self.server.url() + "debian",
            "--cache-dir".into(),
            self.cache().display().to_string(),
        ]);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        self.project.run(&refs)
    }

    pub fn build(&self, out: &str, extra: &[&str]) -> std::process::Output {
        let o = self.out(out);
        let mut args = vec!["build", "--distro", "test", "--out", o.to_str().unwrap()];
        args.extend(extra);
        self.run(&args)
    }

    pub fn build_ok(&self, out: &str, extra: &[&str]) -> PathBuf {
        let o = self.build(out, extra);
        assert!(o.status.success(), "build failed: {}", stderr(&o));
        self.out(out)
    }

    /// A successful build's `--json` summary.
    pub fn build_json(&self, out: &str, extra: &[&str]) -> serde_json::Value {
        let mut args = extra.to_vec();
        args.push("--json");
        let o = self.build(out, &args);
        assert!(o.status.success(), "build failed: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// Empty the layer and document caches (the .debs stay).
    pub fn forget_layers(&self) {
        for d in ["layers", "sboms"] {
            let _ = std::fs::remove_dir_all(self.cache().join(d));
        }
    }
}

pub fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// ref.name -> digest from an OCI layout's index.json.
pub fn tags(layout: &Path) -> BTreeMap<String, String> {
    let idx = json(&layout.join("index.json"));
    idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub fn blob(layout: &Path, digest: &str) -> serde_json::Value {
    json(
        &layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
}

pub fn layer_digests(layout: &Path, tag: &str) -> Vec<String> {
    let m = blob(layout, &tags(layout)[tag]);
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect()
}

/// Every file under a directory, relative path -> bytes.
pub fn tree_bytes(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

pub fn unpack(layout: &Path, tag: &str, bundle: &Path) -> PathBuf {
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(bundle),
    );
    bundle.join("rootfs")
}
