//! The peer: debless's one image built the usual way, mmdebstrap then umoci, from the
//! same local mirror. It runs as a script of its own, timed as one command and quoted
//! verbatim in the report.

use anyhow::Context;
use debless::snapshot::lock::Lock;
use debless::snapshot::manifest::Manifest;

use crate::cases::{IMAGE, IMAGE_ARCH, PEER, State};
use crate::seed::Seeded;
use crate::{Ctx, KEYRING};

/// The peer's variant. `custom` runs maintainer scripts, which (Debian policy) may use
/// every Essential package (sh, rm, diff, base-passwd's groups, init-system-helpers...),
/// so it needs the whole Essential set, a different image. `extract` unpacks the same
/// packages without scripts, as debless does. BENCHMARKS.md says so.
pub const VARIANT: &str = "extract";

/// Paths dpkg leaves out, as debless's `rules/defaults.toml` drops them.
const PATH_EXCLUDES: &[&str] = &["doc", "man", "locale", "info", "lintian", "linda"];

/// One apt source line per suite of the lock, each served by the local mirror.
pub fn apt_sources(mirror_url: &str, manifest: &Manifest, lock: &Lock) -> Vec<String> {
    let components = manifest.components.join(" ");
    lock.suites
        .iter()
        .map(|s| {
            format!(
                "deb [signed-by={KEYRING}] {mirror_url}{} {} {components}",
                s.archive, s.suite
            )
        })
        .collect()
}

/// The peer pipeline as a script: mmdebstrap → rootfs.tar → umoci layout.
pub fn script(ctx: &Ctx, seeded: &Seeded) -> String {
    let mut s = String::new();
    s.push_str("#!/usr/bin/env bash\n");
    s.push_str(&format!(
        "# The peer: the {IMAGE} image with mmdebstrap, then an OCI layout with umoci.\n"
    ));
    s.push_str("set -euo pipefail\n");
    s.push_str("out=$1\n");
    s.push_str(&format!(
        "mmdebstrap --mode=root --variant={VARIANT} --architectures={IMAGE_ARCH} \\\n"
    ));
    s.push_str(&format!(
        "    --include='{}' \\\n",
        seeded.peer_packages.join(",")
    ));
    s.push_str("    --aptopt='Acquire::Languages \"none\"' \\\n");
    for p in PATH_EXCLUDES {
        s.push_str(&format!(
            "    --dpkgopt='path-exclude=/usr/share/{p}/*' \\\n"
        ));
    }
    s.push_str(&format!(
        "    {} \"$out/rootfs.tar\"",
        seeded.manifest.codename
    ));
    for line in apt_sources(&ctx.mirror_url, &seeded.manifest, &seeded.lock) {
        s.push_str(&format!(" \\\n    '{line}'"));
    }
    s.push('\n');
    s.push_str("umoci init --layout \"$out/oci\"\n");
    s.push_str("umoci new --image \"$out/oci:latest\"\n");
    s.push_str("umoci raw add-layer --image \"$out/oci:latest\" \"$out/rootfs.tar\"\n");
    s
}

/// Write [`script`] to `ctx.peer_script`.
pub fn write_script(ctx: &Ctx, seeded: &Seeded) -> anyhow::Result<()> {
    std::fs::write(&ctx.peer_script, script(ctx, seeded))
        .with_context(|| format!("cannot write {}", ctx.peer_script.display()))
}

/// The peer's image, from its last run.
pub struct Sizes {
    /// The root file system tar (what debless's uncompressed layer tars add up to).
    pub tar: u64,
    /// The layout's compressed layers.
    pub layers: u64,
}

/// The sizes of the peer's last image.
pub fn sizes(ctx: &Ctx) -> anyhow::Result<Sizes> {
    let out = ctx
        .cfg
        .run_dir()
        .join(PEER.key)
        .join(State::Cold.name())
        .join("out");
    let tar = out.join("rootfs.tar");
    let tar = std::fs::metadata(&tar)
        .with_context(|| format!("cannot read {}", tar.display()))?
        .len();
    let inspection = debless::inspect::inspect(&out.join("oci"), "latest", 0)?;
    let layers = inspection.images.iter().map(|i| i.blob_bytes).sum();
    Ok(Sizes { tar, layers })
}
