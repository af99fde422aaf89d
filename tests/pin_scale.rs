//! A pin of a large signed index with wide Provides: it completes, and the
//! lock holds the closure. Resolving such an index grew faster than linear (quadratic in
//! the Provides) before; there is no timing assertion here (the hang guard is the suite's
//! own), `make bench` reports the time (`examples/bench/scale.rs`, the same shape), and
//! `src/resolve/tests.rs` bounds the size of an unmet chain's error.

mod common;

use std::fmt::Write as _;

use common::{Gpg, Project, Server, sha256, stderr, xz};

// 20,000 packages with 50 Provides each, the size the issue measured 18 s at: a debug
// build pins it in well under a minute. The 50,000-package case is `make bench`'s (release
// build, timed) and `examples/resolve_scale.rs`'s.
const PACKAGES: usize = 20_000;
const PROVIDES: usize = 50;
const VIRTUALS: usize = 2000;

/// The shape of `examples/resolve_scale.rs`'s index and the bench's scale case.
fn index() -> String {
    let mut s = String::with_capacity(PACKAGES * 600);
    for i in 0..PACKAGES {
        let provides: Vec<String> = (0..PROVIDES)
            .map(|k| format!("v{} (= 1)", (i * 7 + k * 101) % VIRTUALS))
            .collect();
        let next = (i + 1) % PACKAGES;
        let far = (i * 13 + 5) % PACKAGES;
        let _ = write!(
            s,
            "Package: p{i}\nVersion: 1.{}\nArchitecture: amd64\nDepends: p{next} (>= 1) | v{} , v{}, p{far}\nProvides: {}\nFilename: pool/main/p/p{i}_1_amd64.deb\nSize: 100\nSHA256: {:064x}\nInstalled-Size: 1\n\n",
            i % 3,
            i % VIRTUALS,
            (i * 3) % VIRTUALS,
            provides.join(", "),
            i
        );
    }
    s
}

#[test]
fn a_pin_of_a_large_index_with_wide_provides_completes() {
    let gpg = Gpg::new();
    let key = gpg.generate("Scale <scale@invalid>", "0", None);
    let root = tempfile::tempdir().unwrap();
    let dists = root.path().join("debian/dists/scale");
    std::fs::create_dir_all(dists.join("main/binary-amd64")).unwrap();
    let packages = xz(index().as_bytes());
    std::fs::write(dists.join("main/binary-amd64/Packages.xz"), &packages).unwrap();
    let release = format!(
        "Origin: Test\nSuite: scale\nCodename: scale\nDate: Sat, 21 Nov 2026 09:15:44 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages.xz\n",
        sha256(&packages),
        packages.len()
    );
    std::fs::write(dists.join("InRelease"), gpg.clearsign(&key, &release, None)).unwrap();
    let server = Server::serve(root.path());

    let project = Project::new();
    project.write("snapshots/keys/scale.asc", &gpg.export(&key));
    project.write(
        "snapshots/scale.toml",
        &format!(
            "distro = \"scale\"\ncodename = \"scale\"\narchitectures = [\"amd64\"]\n\n[[suites]]\narchive = \"debian\"\nsuite = \"scale\"\n\n[[keys]]\nfile = \"keys/scale.asc\"\nfingerprint = \"{key}\"\n"
        ),
    );
    project.write("rules/scale.toml", "distros = [\"scale\"]\n[packages.p0]\n");
    let cache = project.path().join("cache");
    let o = project.run(&[
        "pin",
        "--distro",
        "scale",
        "--mirror",
        &format!("{}debian", server.url()),
        "--cache-dir",
        cache.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lock =
        debless::snapshot::lock::Lock::read(&project.path().join("snapshots/scale.lock")).unwrap();
    // p0's closure runs through `next` and `far` links to most of the index.
    assert!(
        lock.packages.len() > PACKAGES / 2,
        "{}",
        lock.packages.len()
    );
    assert!(lock.packages.iter().any(|p| p.name == "p0"));
}
