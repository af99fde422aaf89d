//! Every gzip and zstd level on the layer tars of the one-image case, with the encoders a
//! build uses (`examples/compression_levels.rs`): why GZIP_LEVEL and ZSTD_LEVEL.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::cases::{IMAGE, IMAGE_ARCH, ONE, State};
use crate::{Ctx, DISTRO, files, output, run_checked};

/// The compression_levels table for the one image's layers, as that example prints it.
pub fn measure(ctx: &Ctx) -> anyhow::Result<String> {
    let layout = ctx
        .cfg
        .run_dir()
        .join(ONE.key)
        .join(State::Warm.name())
        .join("out")
        .join(format!("{IMAGE}-{DISTRO}"));
    let dir = ctx.cfg.run_dir().join("levels");
    files::remove(&dir)?;
    files::create_dir(&dir)?;
    let tars = layer_tars(&layout, &format!("latest-{IMAGE_ARCH}"), &dir)?;
    // Inside `cargo run`, $CARGO is the cargo that runs us.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_checked(Command::new(cargo).args([
        "build",
        "-q",
        "--release",
        "--locked",
        "--example",
        "compression_levels",
    ]))?;
    let table = output(
        Command::new(
            ctx.cfg
                .root
                .join("target/release/examples/compression_levels"),
        )
        .args(&tars),
    )?;
    say!("compression levels measured");
    Ok(table)
}

/// The uncompressed layers of `tag` in the layout, bottom first, as `DIR/<n>.tar`.
fn layer_tars(layout: &Path, tag: &str, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let inspection = debless::inspect::inspect(layout, tag, 0)?;
    let [image] = &inspection.images[..] else {
        bail!("{}:{tag} is not one image", layout.display());
    };
    let mut tars = Vec::new();
    for (i, layer) in image.layers.iter().enumerate() {
        let blob = layout.join(layer.digest.blob_path());
        let file = File::open(&blob).with_context(|| format!("cannot read {}", blob.display()))?;
        let mut reader: Box<dyn Read> = if layer.media_type.ends_with("+zstd") {
            Box::new(zstd::stream::read::Decoder::new(file)?)
        } else {
            Box::new(flate2::read::GzDecoder::new(file))
        };
        let tar = dir.join(format!("{i}.tar"));
        let mut out =
            File::create(&tar).with_context(|| format!("cannot create {}", tar.display()))?;
        std::io::copy(&mut reader, &mut out)
            .with_context(|| format!("cannot decompress {}", blob.display()))?;
        tars.push(tar);
    }
    Ok(tars)
}
