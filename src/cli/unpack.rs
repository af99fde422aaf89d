//! `debless unpack`: an image as a root filesystem or a runc bundle.

use std::path::PathBuf;

use debless::unpack::{UnpackOptions, unpack};

use super::Global;

/// Arguments of `debless unpack`.
#[derive(clap::Args)]
pub struct UnpackArgs {
    /// OUT/IMAGE[:TAG], e.g. out/python3-debian13:nonroot (default tag: latest).
    pub target: String,
    /// Directory to write (new, or empty): the root filesystem, or with --bundle a runc
    /// bundle (DIR/rootfs and DIR/config.json).
    pub dir: PathBuf,
    /// Platform to pick from a multi-arch tag, e.g. linux/arm64 [default: the host's].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Also write config.json from the image's config (Entrypoint, Cmd, Env, User,
    /// WorkingDir), without rlimits or cgroup settings, for `runc run --bundle DIR`.
    #[arg(long)]
    pub bundle: bool,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --bundle: the program (and arguments) to run instead of the image's
    /// Entrypoint and Cmd, after `--` (needed for images with neither, such as base).
    #[arg(last = true, value_name = "COMMAND", requires = "bundle")]
    pub command: Vec<String>,
}

/// Run `debless unpack`.
pub fn run(a: UnpackArgs, g: &Global) -> anyhow::Result<()> {
    let (layout, tag) = debless::inspect::parse_target(&a.target);
    let r = unpack(&UnpackOptions {
        layout,
        tag,
        dest: a.dir.clone(),
        platform: a.platform,
        bundle: a.bundle,
        command: a.command,
    })?;
    if a.json {
        super::json::print(&r)?;
    } else if !g.quiet {
        eprintln!(
            "unpacked {} ({}, {}) into {}: {} layers, {} entries{}",
            a.target,
            r.platform,
            r.manifest,
            r.rootfs.display(),
            r.layers,
            r.entries,
            if r.skipped_devices > 0 {
                format!("; {} device nodes left to the runtime", r.skipped_devices)
            } else {
                String::new()
            }
        );
        if a.bundle {
            eprintln!("run it: runc run --bundle {} NAME", a.dir.display());
        }
    }
    Ok(())
}
