//! What is measured, as data: a case is a target (what is built), a state (how the cache
//! and output look when a run starts) and a command (what is run and timed). A new case is
//! a new entry in [`cases`]; a new kind of start or run is a new [`State`] or [`Command`].

use std::ffi::OsString;
use std::path::PathBuf;

use crate::files::{self, Without};
use crate::{Ctx, scale};

/// The one-image case, and the peer's image: one image, one tag, one architecture.
pub const IMAGE: &str = "python3";
/// The architecture of the one-image case and of the peer.
pub const IMAGE_ARCH: &str = "amd64";

/// What a case builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// Its directory under `BENCH_DIR/run/` and its name in runs.tsv.
    pub key: &'static str,
    /// How the report names it.
    pub label: &'static str,
    /// The image selection passed to `debless build` and `debless fetch` (none: every
    /// image, tag and architecture).
    pub args: &'static [&'static str],
}

/// One image.
pub const ONE: Target = Target {
    key: "one",
    label: IMAGE,
    args: &[IMAGE, "--variant", "latest", "--arch", IMAGE_ARCH],
};

/// The whole family.
pub const FAMILY: Target = Target {
    key: "family",
    label: "the family",
    args: &[],
};

/// The resolver at scale: `debless pin` of a synthetic signed suite of 50,000 packages
/// with wide Provides (`scale.rs`), most of it in one closure.
pub const SCALE: Target = Target {
    key: "scale",
    label: "pin: 50,000-package index",
    args: &[],
};

/// The family on a second runner: an empty cache, every layer in the registry cache.
pub const RUNNER_B: Target = Target {
    key: "runner-b",
    label: "the family, runner B",
    args: &[],
};

/// The first of two shards of the family (`--shard 1/2`).
pub const SHARD_1: Target = Target {
    key: "shard-1",
    label: "the family, shard 1/2",
    args: &["--shard", "1/2"],
};

/// The second of two shards of the family.
pub const SHARD_2: Target = Target {
    key: "shard-2",
    label: "the family, shard 2/2",
    args: &["--shard", "2/2"],
};

/// The peer's image, built by mmdebstrap + umoci from the one image's package set.
pub const PEER: Target = Target {
    key: "peer",
    label: "peer (python3)",
    args: &[],
};

/// How the cache and the output look when a run starts. Each state starts from what the
/// one before it left: the last cold run's cache is the filled cache, the last warm run's
/// output is the no-op's; so a target's states run in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    /// An empty cache (with `debless fetch`: what a cold build must download).
    Download,
    /// An empty cache and output.
    Cold,
    /// Every .deb cached, the layer and document caches removed: every layer is made.
    WarmDebs,
    /// The full cache of a previous build, an empty output.
    Warm,
    /// The layer cache but not one .deb (a CI job that keeps only the layer cache).
    LayersOnly,
    /// Again into the output of the warm build.
    NoOp,
    /// An empty cache and output; the registry layer cache holds every layer (filled
    /// once, untimed, by a build from the cold run's .debs).
    RegistryWarm,
}

/// Where one run keeps its cache and writes its output.
pub struct Dirs {
    /// `--cache-dir`.
    pub cache: PathBuf,
    /// `--out`.
    pub out: PathBuf,
}

impl State {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            State::Download => "download",
            State::Cold => "cold",
            State::WarmDebs => "warm-debs",
            State::Warm => "warm",
            State::LayersOnly => "layers-only",
            State::NoOp => "no-op",
            State::RegistryWarm => "registry-warm",
        }
    }

    /// Set up the cache and output of one run of `target` in this state.
    pub fn prepare(self, ctx: &Ctx, target: &Target) -> anyhow::Result<Dirs> {
        let runs = ctx.cfg.run_dir().join(target.key);
        let dir = runs.join(self.name());
        let fresh = |dir: PathBuf| Dirs {
            cache: dir.join("cache"),
            out: dir.join("out"),
        };
        let from_cold = |without: Without| -> anyhow::Result<Dirs> {
            files::remove(&dir)?;
            let dirs = fresh(dir.clone());
            let cold = fresh(runs.join(State::Cold.name()));
            files::clone_cache(&cold.cache, &dirs.cache, without)?;
            Ok(dirs)
        };
        match self {
            State::Download | State::Cold => {
                files::remove(&dir)?;
                let dirs = fresh(dir.clone());
                files::create_dir(&dirs.cache)?;
                Ok(dirs)
            }
            State::WarmDebs => from_cold(Without::Layers),
            State::Warm => from_cold(Without::Nothing),
            State::LayersOnly => from_cold(Without::Debs),
            State::NoOp => Ok(fresh(runs.join(State::Warm.name()))),
            State::RegistryWarm => {
                fill_registry(ctx)?;
                files::remove(&dir)?;
                let dirs = fresh(dir.clone());
                files::create_dir(&dirs.cache)?;
                Ok(dirs)
            }
        }
    }
}

/// Fill the registry layer cache once: a build of the family from the family's cold
/// cache without its layers, so every layer is made and pushed.
fn fill_registry(ctx: &Ctx) -> anyhow::Result<()> {
    let runs = ctx.cfg.run_dir();
    let marker = runs.join("registry-filled");
    if marker.exists() {
        return Ok(());
    }
    let fill = runs.join("registry-fill");
    files::remove(&fill)?;
    let cache = fill.join("cache");
    let cold = runs.join(FAMILY.key).join(State::Cold.name()).join("cache");
    files::clone_cache(&cold, &cache, Without::Layers)?;
    let mut argv = Command::Build.argv(
        ctx,
        &FAMILY,
        &Dirs {
            cache,
            out: fill.join("out"),
        },
    );
    argv.extend(ctx.cache_registry_args());
    say!("filling the registry layer cache (untimed)");
    crate::run_checked(
        std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(std::process::Stdio::null()),
    )?;
    files::remove(&fill)?;
    files::create_dir(&runs)?;
    std::fs::write(&marker, b"")?;
    Ok(())
}

/// What a case runs and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `debless fetch`: the download a cold build is held against.
    Fetch,
    /// `debless build --json`.
    Build,
    /// The peer script, `bash peer.sh OUT` (`peer.rs`).
    Peer,
    /// `debless pin` of the synthetic suite, from no lock.
    Pin,
    /// `debless build --json --cache-registry REGISTRY/bench-layer-cache`.
    BuildFromRegistry,
}

impl Command {
    /// The command line of one run.
    pub fn argv(self, ctx: &Ctx, target: &Target, dirs: &Dirs) -> Vec<OsString> {
        let mut argv = match self {
            Command::Fetch => {
                let mut a = ctx.debless_args("fetch");
                a.extend(["--cache-dir".into(), dirs.cache.clone().into()]);
                a
            }
            Command::Build | Command::BuildFromRegistry => {
                let mut a = ctx.debless_args("build");
                a.extend([
                    "--cache-dir".into(),
                    dirs.cache.clone().into(),
                    "--out".into(),
                    dirs.out.clone().into(),
                    "--json".into(),
                ]);
                if self == Command::BuildFromRegistry {
                    a.extend(ctx.cache_registry_args());
                }
                a
            }
            Command::Peer => vec![
                "bash".into(),
                ctx.peer_script.clone().into(),
                dirs.out.clone().into(),
            ],
            Command::Pin => vec![
                ctx.cfg.debless.clone().into(),
                "-q".into(),
                "-C".into(),
                scale::project(ctx.cfg).into(),
                "pin".into(),
                "--distro".into(),
                scale::DISTRO.into(),
                "--mirror".into(),
                ctx.mirror_url.clone().into(),
                "--cache-dir".into(),
                dirs.cache.clone().into(),
            ],
        };
        argv.extend(target.args.iter().map(OsString::from));
        argv
    }

    /// Whether the command reads and fills `--cache-dir` (its growth is reported).
    pub fn uses_cache(self) -> bool {
        matches!(
            self,
            Command::Fetch | Command::Build | Command::Pin | Command::BuildFromRegistry
        )
    }

    /// Whether the command writes an output whose size is reported.
    pub fn has_output(self) -> bool {
        matches!(
            self,
            Command::Build | Command::BuildFromRegistry | Command::Peer
        )
    }

    /// What must exist before the run: the peer writes into its output directory; a pin
    /// starts from no lock (with one, it would keep what is locked and resolve nothing).
    pub fn setup(self, ctx: &Ctx, dirs: &Dirs) -> anyhow::Result<()> {
        match self {
            Command::Peer => files::create_dir(&dirs.out),
            Command::Pin => files::remove(
                &scale::project(ctx.cfg).join(format!("snapshots/{}.lock", scale::DISTRO)),
            ),
            Command::Fetch | Command::Build | Command::BuildFromRegistry => Ok(()),
        }
    }
}

/// One row of the results table.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// What is built.
    pub target: Target,
    /// How the cache and output start.
    pub state: State,
    /// What is run.
    pub command: Command,
}

/// Every case, in the order they run and are reported: each debless target in every
/// state, the fleet cases, then the peer. `quick` skips the family and the fleet.
pub fn cases(quick: bool) -> Vec<Case> {
    let targets: &[Target] = if quick { &[ONE] } else { &[ONE, FAMILY] };
    let mut list = Vec::new();
    for &target in targets {
        let case = |state, command| Case {
            target,
            state,
            command,
        };
        list.extend([
            case(State::Download, Command::Fetch),
            case(State::Cold, Command::Build),
            case(State::WarmDebs, Command::Build),
            case(State::Warm, Command::Build),
            case(State::LayersOnly, Command::Build),
            case(State::NoOp, Command::Build),
        ]);
    }
    // The resolver on an index of Debian's size, pinned from an empty cache.
    list.push(Case {
        target: SCALE,
        state: State::Cold,
        command: Command::Pin,
    });
    if !quick {
        // Beyond one machine: a second runner with only the registry cache, and each of
        // two shards from scratch (on two runners they run at once).
        list.extend([
            Case {
                target: RUNNER_B,
                state: State::RegistryWarm,
                command: Command::BuildFromRegistry,
            },
            Case {
                target: SHARD_1,
                state: State::Cold,
                command: Command::Build,
            },
            Case {
                target: SHARD_2,
                state: State::Cold,
                command: Command::Build,
            },
        ]);
    }
    // mmdebstrap has no cache: every run downloads from the local mirror, like cold.
    list.push(Case {
        target: PEER,
        state: State::Cold,
        command: Command::Peer,
    });
    list
}

/// The target the determinism check builds: the last one with a warm .deb cache (the
/// family, or the one image with `BENCH_QUICK=1`).
pub fn determinism_target(list: &[Case]) -> Target {
    list.iter()
        .rev()
        .find(|c| c.state == State::WarmDebs && c.command == Command::Build)
        .map_or(ONE, |c| c.target)
}
