//! BENCHMARKS.md: the machine, the setup, every case, the peer, the compression levels
//! and the targets.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::Context;

use crate::cases::{Case, FAMILY, IMAGE, IMAGE_ARCH, ONE, PEER, SCALE, State};
use crate::measure::{Measured, Results};
use crate::peer::{self, Sizes};
use crate::seed::Seeded;
use crate::{Ctx, DISTRO, KEYRING, output, scale};

/// Everything the report is made from.
pub struct Inputs<'a> {
    /// The knobs and the local mirror.
    pub ctx: &'a Ctx<'a>,
    /// The lock and the peer's package set.
    pub seeded: &'a Seeded,
    /// The cases, in report order.
    pub cases: &'a [Case],
    /// Their results.
    pub results: &'a Results,
    /// The determinism verdict.
    pub determinism: &'a str,
    /// The compression_levels table.
    pub levels: &'a str,
    /// The peer's image sizes.
    pub peer: &'a Sizes,
}

fn secs(x: f64) -> String {
    format!("{x:.2} s")
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn ratio(a: f64, b: f64) -> String {
    format!("{:.1}", a / b)
}

/// A table row; an empty cell is written `| |`.
fn row(cells: &[String]) -> String {
    let mut s = String::from("|");
    for c in cells {
        if c.is_empty() {
            s.push_str(" |");
        } else {
            let _ = write!(s, " {c} |");
        }
    }
    s
}

fn result<'r>(
    results: &'r Results,
    target: &'static str,
    state: State,
) -> anyhow::Result<&'r Measured> {
    results
        .get(&(target, state))
        .with_context(|| format!("no result for {target} {}", state.name()))
}

/// One row of the targets table.
struct Goal {
    name: String,
    /// The value checked and the figure shown; None when the case did not run.
    measured: Option<(f64, String)>,
    /// `value <= limit` (else `value >= limit`).
    at_most: bool,
    limit: f64,
}

impl Goal {
    fn row(&self) -> String {
        match &self.measured {
            None => format!("| {} | not measured (BENCH_QUICK=1) | |", self.name),
            Some((value, figure)) => {
                let ok = if self.at_most {
                    *value <= self.limit
                } else {
                    *value >= self.limit
                };
                let verdict = if ok { "pass" } else { "**FAIL**" };
                format!("| {} | {figure} | {verdict} |", self.name)
            }
        }
    }
}

/// Write the report to `BENCH_REPORT`.
pub fn write(i: &Inputs) -> anyhow::Result<()> {
    let text = render(i)?;
    let path = &i.ctx.cfg.report;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn render(i: &Inputs) -> anyhow::Result<String> {
    let cfg = i.ctx.cfg;
    let get = |target: &'static str, state: State| result(i.results, target, state);
    let one_cold = get(ONE.key, State::Cold)?;
    let one_warm = get(ONE.key, State::Warm)?;
    let one_noop = get(ONE.key, State::NoOp)?;
    let peer = get(PEER.key, State::Cold)?;
    let family = |state| i.results.get(&(FAMILY.key, state));
    let image_bytes = |field: &str| {
        one_warm
            .summary
            .as_ref()
            .and_then(|s| s["images"][0][field].as_u64())
    };
    let one_args = ONE.args.join(" ");

    let mut r = String::new();
    let mut line = |s: &str| {
        r.push_str(s);
        r.push('\n');
    };
    line("# Benchmarks");
    line("");
    if let Some(note) = &cfg.note {
        line(&format!("> **{note}**"));
        line("");
    }
    if cfg.quick || cfg.runs < 3 {
        line(&format!(
            "> **Preliminary**: BENCH_RUNS={}, BENCH_QUICK={}; the full run is `make bench`.",
            cfg.runs,
            u8::from(cfg.quick)
        ));
        line("");
    }
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d");
    line(&format!(
        "Written by `make bench` (examples/bench/) on {today}. Every figure is"
    ));
    line(&format!(
        "the median of {} runs. Peak RSS is the largest process's maximum resident set",
        cfg.runs
    ));
    line("(its rusage from wait4, as GNU time reports it), the highest of the runs; *written*");
    line("is what the process tree wrote to file systems (the rusage's block outputs, temporary");
    line("files included); *output* is the size of --out; *cache* is how much the cache grew");
    line("(sizes from the last run).");
    line("");
    line("## Machine");
    line("");
    line("| | |");
    line("|---|---|");
    line(&format!("| CPU | {}, {} CPUs |", cpu_model(), cpus()));
    line(&format!("| RAM | {} |", ram()));
    line(&format!("| kernel | {} |", kernel()));
    line(&format!(
        "| rustc | {} |",
        output(Command::new("rustc").arg("--version")).unwrap_or_else(|_| "n/a".into())
    ));
    line(&format!(
        "| debless | {}, commit {} |",
        output(Command::new(&cfg.debless).arg("--version"))?,
        output(Command::new("git").args(["describe", "--always", "--dirty"]))
            .unwrap_or_else(|_| "unknown".into())
    ));
    let mmdebstrap = output(Command::new("mmdebstrap").arg("--version"))?;
    line(&format!(
        "| peer | mmdebstrap {}, {} |",
        mmdebstrap.split_whitespace().nth(1).unwrap_or(&mmdebstrap),
        output(Command::new("umoci").arg("--version"))?
    ));
    line(&format!(
        "| lock | {DISTRO} pinned fresh at {}, {} packages |",
        i.seeded.lock.timestamp,
        i.seeded.lock.packages.len()
    ));
    line("");
    line("## Setup");
    line("");
    line("Everything is served by a local mirror (the bench's own HTTP server on 127.0.0.1):");
    line("each suite's signed InRelease and Packages.xz, fetched from the host's Debian mirror");
    line("at pin time, and every .deb of the lock (plus those apt needs for the peer). debless");
    line("pins a scratch copy of rules/ and snapshots/ against it, so the committed lock stays.");
    line("");
    line("```sh");
    line(&format!(
        "# one image ({one_args}); the family is the same without image arguments"
    ));
    line(&format!(
        "debless -C PROJECT build --distro {DISTRO} --mirror http://127.0.0.1:PORT/ --cache-dir CACHE --out OUT --json {one_args}"
    ));
    line("# download: what a cold build must fetch");
    line(&format!(
        "debless -C PROJECT fetch --distro {DISTRO} --mirror http://127.0.0.1:PORT/ --cache-dir EMPTY {one_args}"
    ));
    line("```");
    line("");
    line("States: *download* is `debless fetch` into an empty cache; *cold* is an empty cache");
    line("and output; *warm-debs* has every .deb cached but an empty layer cache");
    line("(`CACHE/layers/` and `CACHE/sboms/` removed), so every layer is read and compressed;");
    line("*warm* has the full cache of a previous build and an empty output; *layers-only* has");
    line("the layer cache but not one .deb (a CI job that keeps only the layer cache), and an");
    line("empty output; *no-op* builds again into the output of the warm build.");
    line("");
    line(&format!(
        "*{}* pins a synthetic suite served by the same mirror: {} packages, each",
        SCALE.label,
        scale::PACKAGES
    ));
    line(&format!(
        "providing {} virtual names and depending on a few others, signed with a throwaway key;",
        scale::PROVIDES
    ));
    line("the closure of its one rule is most of the index. *cold* is an empty cache and no lock:");
    line("the InRelease is verified, the index downloaded and parsed, the closure resolved and");
    line("the lock written (`examples/resolve_scale.rs` times the resolver alone, in process).");
    line("");
    line("## Results");
    line("");
    line("| case | state | wall | peak RSS | written | output | cache | layers |");
    line("|---|---|---:|---:|---:|---:|---:|---|");
    for case in i.cases {
        let m = get(case.target.key, case.state)?;
        let mut label = case.target.label.to_owned();
        if case.target == FAMILY
            && let Some(images) = family(State::Warm)
                .and_then(|w| w.summary.as_ref())
                .and_then(|s| s["images"].as_array())
        {
            label = format!("{label} ({} manifests)", images.len());
        }
        line(&row(&[
            label,
            case.state.name().to_owned(),
            secs(m.wall),
            mib(m.rss_kib),
            mb(m.written as f64),
            mb(m.output as f64),
            m.cache_growth.map_or(String::new(), |c| mb(c as f64)),
            m.layers.clone(),
        ]));
    }
    line("");
    line(&format!(
        "Determinism: {} (no layer cache, so every layer is written twice).",
        i.determinism
    ));
    line("");
    for l in crate::fleet::section(i.results).unwrap_or_default() {
        line(&l);
    }
    line(&format!(
        "## Peer: mmdebstrap + umoci, {IMAGE} {IMAGE_ARCH}"
    ));
    line("");
    line(&format!(
        "The peer installs the Debian packages of debless's {IMAGE} image (from its SPDX"
    ));
    line("document, pinned to the same versions). apt cannot leave a dependency out, so it adds");
    line(&format!(
        "{}: {}.",
        i.seeded.peer_extra.len(),
        i.seeded.peer_extra.join(", ")
    ));
    line(
        "mmdebstrap has no cache, so every run downloads from the local mirror, like debless cold.",
    );
    line("");
    line(&format!(
        "Variant *{}*: `--variant=custom` runs the maintainer scripts with dpkg, and",
        peer::VARIANT
    ));
    line("those may use every Essential package (Debian policy): without them dpkg stops (no sh,");
    line("rm, diff), and with sh, coreutils and diffutils added base-files' postinst still needs");
    line("base-passwd's groups and dpkg's needs init-system-helpers. That is the whole Essential");
    line("set, a different image. *extract* unpacks the same packages without running scripts,");
    line("which is what debless does too (it generates the few files scripts would write).");
    line(&format!(
        "Signatures are checked with {KEYRING} (no `trusted=yes`)."
    ));
    line("");
    line("```sh");
    let script = peer::script(i.ctx, i.seeded).replace(&i.ctx.mirror_url, "http://127.0.0.1:PORT/");
    for l in script.lines().skip(2) {
        line(l);
    }
    line("```");
    line("");
    line("| | debless cold | debless warm | mmdebstrap + umoci |");
    line("|---|---:|---:|---:|");
    line(&format!(
        "| wall | {} | {} | {} |",
        secs(one_cold.wall),
        secs(one_warm.wall),
        secs(peer.wall)
    ));
    line(&format!(
        "| peer / debless | {}× | {}× | 1× |",
        ratio(peer.wall, one_cold.wall),
        ratio(peer.wall, one_warm.wall)
    ));
    line(&format!(
        "| peak RSS | {} | {} | {} |",
        mib(one_cold.rss_kib),
        mib(one_warm.rss_kib),
        mib(peer.rss_kib)
    ));
    line(&format!(
        "| written | {} | {} | {} |",
        mb(one_cold.written as f64),
        mb(one_warm.written as f64),
        mb(peer.written as f64)
    ));
    let opt_mb = |b: Option<u64>| b.map_or("n/a".into(), |b| mb(b as f64));
    line(&format!(
        "| image, uncompressed tar | {} | | {} |",
        opt_mb(image_bytes("uncompressed_bytes")),
        mb(i.peer.tar as f64)
    ));
    line(&format!(
        "| image, compressed layers | {} | | {} |",
        opt_mb(image_bytes("compressed_bytes")),
        mb(i.peer.layers as f64)
    ));
    line("");
    line("## Compression levels");
    line("");
    line(&format!(
        "The {IMAGE} {IMAGE_ARCH} image's layer tars through each level of the encoders a build uses"
    ));
    line("(`cargo run --release --example compression_levels -- LAYER.tar...`; gzip is cut into");
    line("1 MiB pieces compressed in parallel, zstd has one worker per thread). Builds use gzip 6");
    line("(zlib's and Go's default, what registries and runtimes expect) and zstd 3 (libzstd's).");
    line("");
    line(i.levels);
    line("");
    line("## Targets");
    line("");
    line("| target | figure | |");
    line("|---|---|---|");
    for goal in goals(i, one_cold, one_warm, one_noop, peer) {
        line(&goal.row());
    }
    line("");
    line("The download target is met when the layer cache survives (the .debs are then not");
    line("needed at all). Made from nothing, the family is CPU-bound: every layer's .debs are");
    line("xz-decoded and every layer deflated (about 50 CPU-seconds for debian13), against a");
    line("download from 127.0.0.1 that takes about a second, so that row compares computing");
    line("with copying; `perf` profiles are in DEVELOPERS.md (*Speed and memory*).");
    Ok(r)
}

/// The targets table: what the figures are held against.
fn goals(
    i: &Inputs,
    one_cold: &Measured,
    one_warm: &Measured,
    one_noop: &Measured,
    peer: &Measured,
) -> Vec<Goal> {
    let family = |state| i.results.get(&(FAMILY.key, state));
    let wall = |m: &Measured| (m.wall, secs(m.wall));
    // A ratio is checked as shown, to one decimal.
    let shown = |r: String| r.parse::<f64>().unwrap_or(f64::NAN);
    let vs_download = |state| {
        let (m, download) = (family(state)?, family(State::Download)?);
        let r = ratio(m.wall, download.wall);
        Some((
            shown(r.clone()),
            format!("{} vs download {}: {r}×", secs(m.wall), secs(download.wall)),
        ))
    };
    let peer_ratio = ratio(peer.wall, one_cold.wall);
    let family_peak = [
        State::Download,
        State::Cold,
        State::WarmDebs,
        State::Warm,
        State::LayersOnly,
        State::NoOp,
    ]
    .into_iter()
    .filter_map(family)
    .map(|m| m.rss_kib)
    .max();
    let noop = match family(State::NoOp) {
        Some(m) => ("no-op ≤ 1 s (family)".to_owned(), m),
        None => (format!("no-op ≤ 1 s ({IMAGE})"), one_noop),
    };
    vec![
        Goal {
            name: "warm whole family ≤ 20 s".into(),
            measured: family(State::Warm).map(wall),
            at_most: true,
            limit: 20.0,
        },
        Goal {
            name: format!("warm {IMAGE} ≤ 1.5 s"),
            measured: Some(wall(one_warm)),
            at_most: true,
            limit: 1.5,
        },
        Goal {
            name: noop.0,
            measured: Some(wall(noop.1)),
            at_most: true,
            limit: 1.0,
        },
        Goal {
            name: format!("≥ 5× faster than mmdebstrap + umoci ({IMAGE}, both cold)"),
            measured: Some((
                shown(peer_ratio.clone()),
                format!(
                    "{peer_ratio}× ({} vs {})",
                    secs(peer.wall),
                    secs(one_cold.wall)
                ),
            )),
            at_most: false,
            limit: 5.0,
        },
        Goal {
            name: "peak RSS ≤ 512 MiB (whole family)".into(),
            measured: family_peak.map(|kib| (kib as f64, mib(kib))),
            at_most: true,
            limit: 512.0 * 1024.0,
        },
        Goal {
            name: "cold family ≤ download + 20 % (empty .deb cache, layer cache kept)".into(),
            measured: vs_download(State::LayersOnly),
            at_most: true,
            limit: 1.2,
        },
        Goal {
            name: "cold family ≤ download + 20 % (empty cache: every layer made)".into(),
            measured: vs_download(State::Cold),
            at_most: true,
            limit: 1.2,
        },
    ]
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(": "))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn ram() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB", kib / 1048576.0))
        })
        .unwrap_or_else(|| "n/a".into())
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "n/a".into())
}
