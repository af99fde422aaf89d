//! The `debless` command line: parse arguments, call the library, print, map errors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use debless::fetch::cache::Cache;
use debless::fetch::mirror::{MIRRORS_ENV, SNAPSHOT_ENV};
use debless::rules::RuleSet;
use debless::snapshot::lock::Lock;
use debless::snapshot::pin::{PinOptions, pin};
use debless::snapshot::why::{Why, why};

/// Build distroless OCI images from pinned, signature-verified Debian snapshots.
#[derive(Parser)]
#[command(name = "debless", version, about, long_about = None)]
struct Cli {
    /// Project directory holding rules/ and snapshots/.
    #[arg(short = 'C', long, global = true, default_value = ".")]
    project: PathBuf,
    /// Print only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a distro's suites and resolve every rule into snapshots/<distro>.lock.
    ///
    /// Mirrors: --mirror (repeatable) replaces the default list, which is
    /// $DEBLESS_MIRRORS, then the host's apt sources, then (for dated pins) the snapshot
    /// service. A mirror URL may contain {archive} and {timestamp}.
    Pin {
        /// Distro to pin (a manifest snapshots/<distro>.toml must exist).
        #[arg(long, default_value = "debian13")]
        distro: String,
        /// Snapshot date (RFC 3339, e.g. 2026-11-20T00:00:00Z): pin the archive as it was then.
        #[arg(long)]
        date: Option<String>,
        /// Mirror URL (repeatable); replaces the default mirror list.
        #[arg(long = "mirror", value_name = "URL")]
        mirrors: Vec<String>,
        /// Architecture (repeatable); replaces the manifest's list.
        #[arg(long = "arch", value_name = "ARCH")]
        arches: Vec<String>,
        /// Snapshot service URL template for dated pins.
        #[arg(long, env = SNAPSHOT_ENV, value_name = "URL")]
        snapshot_service: Option<String>,
        /// Write the lock here instead of snapshots/<distro>.lock.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Cache directory for downloaded indices [default: $XDG_CACHE_HOME/debless].
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Show the dependency path(s) that put PKG into an image, or why it is absent.
    Why {
        /// Package name.
        package: String,
        /// Image (rule name).
        #[arg(long)]
        image: String,
        /// Distro whose lock to read.
        #[arg(long, default_value = "debian13")]
        distro: String,
        /// Architecture [default: the lock's first].
        #[arg(long)]
        arch: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pin {
            distro,
            date,
            mirrors,
            arches,
            snapshot_service,
            output,
            cache_dir,
        } => {
            let opts = PinOptions {
                project: cli.project.clone(),
                distro,
                date,
                mirrors,
                arches,
                snapshot_service,
                output,
                cache_dir: cache_dir.unwrap_or_else(Cache::default_dir),
                etc_apt: PathBuf::from("/etc/apt"),
                env_mirrors: std::env::var(MIRRORS_ENV)
                    .ok()
                    .filter(|s| !s.trim().is_empty()),
                quiet: cli.quiet,
            };
            let r = pin(&opts)?;
            let counts: Vec<String> = r.packages.iter().map(|(a, n)| format!("{a} {n}")).collect();
            if !cli.quiet {
                eprintln!(
                    "pinned {}: packages {}; {} exclusions; indices {:.2}s wall ({} stanzas parsed in {:.2}s CPU); resolve {:.3}s",
                    r.lock_path.display(),
                    counts.join(", "),
                    r.excluded,
                    r.fetch_secs,
                    r.stanzas,
                    r.parse_secs,
                    r.resolve_secs
                );
            }
        }
        Command::Why {
            package,
            image,
            distro,
            arch,
        } => {
            let lock = Lock::read(&cli.project.join("snapshots").join(format!("{distro}.lock")))?;
            let rules = RuleSet::load(&cli.project.join("rules"))?;
            let arch =
                arch.unwrap_or_else(|| lock.architectures.first().cloned().unwrap_or_default());
            match why(&lock, &rules, &image, &arch, &package).map_err(anyhow::Error::msg)? {
                Why::Paths(paths) => {
                    for p in paths {
                        println!("{}", p.join(" -> "));
                    }
                }
                Why::Absent(msg) => {
                    println!("{msg}");
                }
            }
        }
    }
    Ok(())
}
