//! The resolver-scale case's input: a synthetic suite of [`PACKAGES`] packages, each
//! providing [`PROVIDES`] virtual names and depending on a few others (the shape
//! `examples/resolve_scale.rs` times in-process), whose closure from `p0` is most of the
//! index. Its Release is signed with a throwaway GnuPG key and it is served by the local
//! mirror beside the real suites, so `debless pin` reads it as it reads Debian's: verify,
//! download, parse, resolve, write the lock. Made afresh every run (seconds).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::{Config, output, run_checked};

/// Packages in the synthetic index: the size of Debian's main index for one architecture.
pub const PACKAGES: usize = 50_000;
/// Virtual names each package provides (wide Provides are what made resolving quadratic).
pub const PROVIDES: usize = 50;
/// Distinct virtual names.
const VIRTUALS: usize = 5000;
/// The synthetic distro and suite.
pub const DISTRO: &str = "scale";

/// The project the case pins: its own manifest, key and one rule naming `p0`.
pub fn project(cfg: &Config) -> PathBuf {
    cfg.bench_dir.join("scale-project")
}

/// The Packages text.
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

/// Write the signed suite into the local mirror and the project that pins it.
pub fn seed(cfg: &Config, tmp: &Path) -> anyhow::Result<()> {
    say!("synthetic index: {PACKAGES} packages, {PROVIDES} Provides each");
    let gpg_home = tmp.join("scale-gnupg");
    std::fs::create_dir_all(&gpg_home)?;
    let gpg = || {
        let mut c = Command::new("gpg");
        c.arg("--homedir").arg(&gpg_home).args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        c
    };
    let uid = "debless bench <bench@invalid>";
    run_checked(gpg().args(["--quick-gen-key", uid, "ed25519", "sign", "0"]))?;
    let fingerprint = output(gpg().args(["--with-colons", "--list-keys", uid]))?
        .lines()
        .find(|l| l.starts_with("fpr:"))
        .and_then(|l| l.split(':').nth(9))
        .map(str::to_owned)
        .context("gpg listed no fingerprint")?;

    let text = index();
    let xz = {
        use std::io::Write;
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(text.as_bytes())?;
        e.finish()?
    };
    let dists = cfg.mirror().join("debian/dists").join(DISTRO);
    let bin = dists.join("main/binary-amd64");
    std::fs::create_dir_all(&bin)?;
    std::fs::write(bin.join("Packages.xz"), &xz)?;
    let release = format!(
        "Origin: Bench\nLabel: Bench\nSuite: {DISTRO}\nCodename: {DISTRO}\nDate: {}\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages.xz\n",
        jiff::Timestamp::now().strftime("%a, %d %b %Y %H:%M:%S UTC"),
        debless::digest::Digest::of(&xz).hex(),
        xz.len()
    );
    std::fs::write(dists.join("Release"), &release)?;
    run_checked(
        gpg()
            .args([
                "--yes",
                "--digest-algo",
                "SHA256",
                "--local-user",
                &fingerprint,
            ])
            .arg("--clearsign")
            .arg("-o")
            .arg(dists.join("InRelease"))
            .arg(dists.join("Release")),
    )?;

    let project = project(cfg);
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(project.join("snapshots/keys"))?;
    std::fs::create_dir_all(project.join("rules"))?;
    let key = output(gpg().args(["--armor", "--export", &fingerprint]))?;
    std::fs::write(project.join("snapshots/keys/scale.asc"), key + "\n")?;
    std::fs::write(
        project.join(format!("snapshots/{DISTRO}.toml")),
        format!(
            "distro = \"{DISTRO}\"\ncodename = \"{DISTRO}\"\narchitectures = [\"amd64\"]\n\n[[suites]]\narchive = \"debian\"\nsuite = \"{DISTRO}\"\n\n[[keys]]\nfile = \"keys/scale.asc\"\nfingerprint = \"{fingerprint}\"\n"
        ),
    )?;
    std::fs::write(
        project.join("rules/scale.toml"),
        format!("distros = [\"{DISTRO}\"]\n[packages.p0]\n"),
    )?;
    Ok(())
}
