//! `make bench`: how fast debless builds images, and how that compares with the usual
//! alternative (mmdebstrap + umoci), both fed by a local mirror on 127.0.0.1 so that the
//! network does not decide the figures. Writes BENCHMARKS.md.
//!
//! 1. Seed, once, kept in `$BENCH_DIR` (`seed.rs`): a scratch project (copies of rules/
//!    and the snapshot manifests, so the committed lock is never touched); every suite's
//!    signed InRelease and Packages.xz from the host's Debian mirror into a local mirror
//!    tree (`server.rs` serves it); a fresh pin against that local mirror, so lock and
//!    indices agree by construction; every .deb of the family from the host's mirror,
//!    hard-linked into the local pool; the peer's package set and the .debs apt adds.
//! 2. The cases (`cases.rs`, a list of data): one image (python3, latest, amd64) and the
//!    whole family, each in every state (download, cold, warm-debs, warm, layers-only,
//!    no-op), a pin of a synthetic 50,000-package signed suite with wide Provides
//!    (`scale.rs`), then the peer (mmdebstrap + umoci, `peer.rs`); `BENCH_RUNS` runs each:
//!    median wall time, peak RSS, bytes written (`measure.rs`).
//!    Then the fleet cases: the family on a second runner whose only cache is a registry
//!    layer cache another runner filled (`registry.rs` runs docker-registry), and each of
//!    two shards (`--shard 1/2`, `2/2`) from scratch.
//! 3. Determinism: the family (the one image with `BENCH_QUICK=1`) built with -j 1 and
//!    -j 2 gives identical index.json files (`determinism.rs`).
//! 4. Compression levels on the one image's layer tars (`levels.rs`).
//! 5. The report (`report.rs`).
//!
//! Environment:
//!   BENCH_DIR     work directory; the seed is kept here between runs (default target/bench)
//!   BENCH_RUNS    runs per measurement; the median is reported (default 3)
//!   BENCH_QUICK   1: skip the family; determinism is then checked on the one image
//!   BENCH_RESEED  1: pin and download again instead of reusing the seed
//!   BENCH_REPORT  the report to write (default BENCHMARKS.md)
//!   BENCH_NOTE    a line for the top of the report, e.g. "preliminary: noisy machine"
//!   APT_SOURCES   the host's apt sources, read for the Debian mirror's URIs
//!                 (default /etc/apt/sources.list.d/debian.sources)
//!
//! Run as `make bench` (builds debless, installs the peer's tools, then
//! `cargo run --release --locked --example bench`).

/// A progress line on stderr.
macro_rules! say {
    ($($arg:tt)*) => { eprintln!("bench: {}", format_args!($($arg)*)) };
}

mod cases;
mod determinism;
mod files;
mod fleet;
mod host;
mod levels;
mod measure;
mod peer;
mod registry;
mod report;
mod scale;
mod seed;
mod server;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

/// The distro every case builds.
const DISTRO: &str = "debian13";
/// The keyring the peer's apt checks the local mirror's signatures with.
const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// The knobs, from the environment.
pub struct Config {
    /// The repository (the bench runs from there, like `make`).
    pub root: PathBuf,
    /// `target/release/debless`.
    pub debless: PathBuf,
    /// `$BENCH_DIR`, absolute.
    pub bench_dir: PathBuf,
    /// `$BENCH_RUNS`.
    pub runs: usize,
    /// `$BENCH_QUICK=1`.
    pub quick: bool,
    /// `$BENCH_RESEED=1`.
    pub reseed: bool,
    /// `$BENCH_REPORT`.
    pub report: PathBuf,
    /// `$BENCH_NOTE`.
    pub note: Option<String>,
    /// `$APT_SOURCES`.
    pub apt_sources: PathBuf,
}

impl Config {
    /// Read the environment; relative paths are relative to the repository, as in `make`.
    fn from_env() -> anyhow::Result<Config> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        std::env::set_current_dir(&root)
            .with_context(|| format!("cannot enter the repository {}", root.display()))?;
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let runs = match var("BENCH_RUNS") {
            None => 3,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => bail!("BENCH_RUNS={v:?}: expected a number of runs, 1 or more"),
            },
        };
        Ok(Config {
            debless: root.join("target/release/debless"),
            bench_dir: root.join(var("BENCH_DIR").unwrap_or_else(|| "target/bench".into())),
            runs,
            quick: var("BENCH_QUICK").as_deref() == Some("1"),
            reseed: var("BENCH_RESEED").as_deref() == Some("1"),
            report: root.join(var("BENCH_REPORT").unwrap_or_else(|| "BENCHMARKS.md".into())),
            note: var("BENCH_NOTE"),
            apt_sources: root.join(
                var("APT_SOURCES")
                    .unwrap_or_else(|| "/etc/apt/sources.list.d/debian.sources".into()),
            ),
            root,
        })
    }

    /// The scratch project: rules/, snapshots/ and its own lock.
    pub fn project(&self) -> PathBuf {
        self.bench_dir.join("project")
    }

    /// `<archive>/dists/...` and `<archive>/pool/...`, served over HTTP.
    pub fn mirror(&self) -> PathBuf {
        self.bench_dir.join("mirror")
    }

    /// The cache the seed's pin and fetch fill; the pool links to its .debs.
    pub fn seed_cache(&self) -> PathBuf {
        self.bench_dir.join("seed-cache")
    }

    /// The scratch project's lock.
    pub fn lock(&self) -> PathBuf {
        self.project().join(format!("snapshots/{DISTRO}.lock"))
    }

    /// Where the runs' caches and outputs go (removed at the end).
    pub fn run_dir(&self) -> PathBuf {
        self.bench_dir.join("run")
    }
}

/// What every case and check runs against.
pub struct Ctx<'a> {
    /// The knobs.
    pub cfg: &'a Config,
    /// The local mirror, `http://127.0.0.1:PORT/`.
    pub mirror_url: String,
    /// The peer pipeline as a script of its own (`peer.rs`).
    pub peer_script: PathBuf,
    /// Scratch files that do not outlive the bench (a run's stdout and stderr).
    pub tmp: PathBuf,
    /// The fleet cases' registry, `127.0.0.1:PORT` (none with `BENCH_QUICK=1`).
    pub registry: Option<String>,
}

impl Ctx<'_> {
    /// `debless -q -C PROJECT SUBCOMMAND --distro D --mirror URL`: how every timed debless
    /// run starts.
    pub fn debless_args(&self, subcommand: &str) -> Vec<OsString> {
        let mut argv: Vec<OsString> = vec![
            self.cfg.debless.clone().into(),
            "-q".into(),
            "-C".into(),
            self.cfg.project().into(),
        ];
        argv.extend(
            [subcommand, "--distro", DISTRO, "--mirror", &self.mirror_url].map(OsString::from),
        );
        argv
    }

    /// `--cache-registry REGISTRY/bench-layer-cache --insecure`.
    pub fn cache_registry_args(&self) -> Vec<OsString> {
        let host = self.registry.as_deref().unwrap_or("127.0.0.1:1");
        vec![
            "--cache-registry".into(),
            format!("{host}/bench-layer-cache").into(),
            "--insecure".into(),
        ]
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == measure::TIMER) {
        measure::timer_main(&args[1..]);
    }
    if let Err(e) = run() {
        eprintln!("bench: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let cfg = Config::from_env()?;
    check_tools(&cfg)?;
    std::fs::create_dir_all(&cfg.bench_dir)
        .with_context(|| format!("cannot create {}", cfg.bench_dir.display()))?;
    let tmp = tempfile::tempdir().context("cannot create a temporary directory")?;

    let seeded = seed::seed(&cfg, tmp.path())?;
    let registry = match cfg.quick {
        true => None,
        false => Some(registry::Registry::start(&cfg.bench_dir.join("registry"))?),
    };
    let ctx = Ctx {
        cfg: &cfg,
        mirror_url: seeded.server.url().to_owned(),
        peer_script: cfg.bench_dir.join("peer.sh"),
        tmp: tmp.path().to_owned(),
        registry: registry.as_ref().map(|r| r.host.clone()),
    };
    peer::write_script(&ctx, &seeded)?;
    scale::seed(&cfg, tmp.path())?;

    files::remove(&cfg.run_dir())?;
    let list = cases::cases(cfg.quick);
    let results = measure::measure_all(&ctx, &list)?;
    let determinism = determinism::check(&ctx, cases::determinism_target(&list))?;
    let levels = levels::measure(&ctx)?;
    let peer = peer::sizes(&ctx)?;

    report::write(&report::Inputs {
        ctx: &ctx,
        seeded: &seeded,
        cases: &list,
        results: &results,
        determinism: &determinism,
        levels: &levels,
        peer: &peer,
    })?;
    say!("wrote {}", cfg.report.display());
    files::remove(&cfg.run_dir())?;
    drop(registry);
    files::remove(&cfg.bench_dir.join("registry"))?;
    say!("done in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Everything the bench runs besides debless, checked before an hour is spent.
fn check_tools(cfg: &Config) -> anyhow::Result<()> {
    if !cfg.debless.is_file() {
        bail!(
            "{} is missing: run make build (make bench does)",
            cfg.debless.display()
        );
    }
    for (tool, package) in [
        ("apt-get", "apt"),
        ("bash", "bash"),
        ("gpg", "gnupg"),
        ("mmdebstrap", "mmdebstrap"),
        ("umoci", "umoci"),
    ] {
        if !on_path(tool) {
            bail!("{tool} is missing: install {package} (make bench installs it)");
        }
    }
    if !cfg.quick && !Path::new(registry::BINARY).is_file() {
        bail!(
            "{} is missing: install docker-registry (make bench installs it)",
            registry::BINARY
        );
    }
    if !Path::new(KEYRING).is_file() {
        bail!("{KEYRING} is missing: install debian-archive-keyring (make bench installs it)");
    }
    if !cfg.apt_sources.is_file() {
        bail!(
            "{} is missing: set APT_SOURCES to the apt sources naming the Debian mirror",
            cfg.apt_sources.display()
        );
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("mmdebstrap (the peer) needs root: run as root");
    }
    Ok(())
}

/// `command -v TOOL` succeeds.
fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(tool).is_file()))
}

/// The stdout of a command that must succeed, trimmed.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let what = format!("{cmd:?}");
    let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Run a command that must succeed, its output going to the terminal.
pub fn run_checked(cmd: &mut Command) -> anyhow::Result<()> {
    let what = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
