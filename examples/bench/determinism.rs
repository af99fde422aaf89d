//! Determinism: a target built with 1 and 2 worker threads from the filled .deb cache (no
//! layer cache, so every layer is really written twice) gives identical index.json files.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use debless::digest::Digest;

use crate::cases::{State, Target};
use crate::{Ctx, run_checked};

/// Build `target` with -j 1 and -j 2 and compare; the verdict for the report, or an error
/// naming the layouts that differ.
pub fn check(ctx: &Ctx, target: Target) -> anyhow::Result<String> {
    let dir = ctx.cfg.run_dir().join(target.key);
    let mut sums = Vec::new();
    for jobs in ["1", "2"] {
        let dirs = State::WarmDebs.prepare(ctx, &target)?;
        let out = dir.join(format!("j{jobs}"));
        let mut argv = ctx.debless_args("build");
        argv.extend(["-j", jobs, "--cache-dir"].map(OsString::from));
        argv.push(dirs.cache.into());
        argv.push("--out".into());
        argv.push(out.clone().into());
        argv.extend(target.args.iter().map(OsString::from));
        run_checked(
            Command::new(&argv[0])
                .args(&argv[1..])
                .stdout(Stdio::null()),
        )?;
        sums.push(index_sums(&out)?);
    }
    if sums[0] != sums[1] {
        for (layout, digest) in &sums[0] {
            if sums[1].get(layout) != Some(digest) {
                eprintln!("bench: {layout}/index.json differs between -j 1 and -j 2");
            }
        }
        bail!(
            "not deterministic: {} built with -j 1 and -j 2 differs (index.json above)",
            target.label
        );
    }
    let verdict = format!(
        "identical: {} built with -j 1 and -j 2, {} index.json files",
        target.label,
        sums[0].len()
    );
    say!("determinism: {verdict}");
    Ok(verdict)
}

/// The SHA256 of each layout's index.json under `out`, by layout.
fn index_sums(out: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut sums = BTreeMap::new();
    for entry in std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))? {
        let layout = entry?.path();
        let index = layout.join("index.json");
        if index.is_file() {
            let name = layout.file_name().unwrap_or_default().to_string_lossy();
            let digest = Digest::of_file(&index)
                .with_context(|| format!("cannot read {}", index.display()))?
                .hex();
            sums.insert(name.into_owned(), digest);
        }
    }
    Ok(sums)
}
