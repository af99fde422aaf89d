//! The command line: one file per subcommand, each turning its arguments into library
//! options, calling the library and printing the result. The library itself knows
//! nothing of clap or of what gets printed.

pub mod build;
pub mod cache;
pub mod diff;
pub mod index;
pub mod inspect;
pub mod json;
pub mod keygen;
pub mod list;
pub mod pin;
pub mod push;
pub mod sign;
pub mod unpack;
pub mod verify;
pub mod why;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Build distroless OCI images from pinned, signature-verified Debian snapshots.
#[derive(Parser)]
#[command(name = "debless", version, about, long_about = None)]
pub struct Cli {
    /// Options every subcommand takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(clap::Args)]
pub struct Global {
    /// Project directory holding rules/ and snapshots/.
    #[arg(short = 'C', long, global = true, default_value = ".")]
    pub project: PathBuf,
    /// Print only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more on stderr: each phase as it starts and ends (also when stderr is not a
    /// terminal, or CI is set), layers made and found in the cache.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

/// The subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Verify a distro's suites and resolve every rule into snapshots/<distro>.lock.
    ///
    /// Mirrors: --mirror (repeatable) replaces the default list, which is
    /// $DEBLESS_MIRRORS, then the host's apt sources, then (for dated pins) the snapshot
    /// service. A mirror URL may contain {archive} and {timestamp}.
    Pin(pin::PinArgs),
    /// Build OCI images from the lock: fetch the .debs, extract only the declared files,
    /// write one deterministic layer per rule level.
    ///
    /// Output: out/<image>-<distro>/ (an OCI layout) with tags latest, nonroot, debug...
    /// pointing at multi-arch indexes and <tag>-<arch> at per-architecture manifests.
    /// Times (mtimes of generated files, `created`) come from the layers' own content;
    /// SOURCE_DATE_EPOCH, if set, replaces them all.
    ///
    /// Layers whose inputs are unchanged (debless binary, rule files, .deb SHA256s, the
    /// layers below...) come from the layer cache (CACHE/layers/) without reading a .deb;
    /// outputs already holding exactly this build are left alone. --check bypasses the
    /// cache.
    Build(build::BuildArgs),
    /// Download every .deb a build would need into the cache (for a later --offline build).
    Fetch(build::FetchArgs),
    /// What an image holds: config, layers and what each adds, Debian packages, largest files;
    /// with --file which package ships a file, with --package which files a package ships.
    ///
    /// Reads a layout directory, an oci-archive or a docker-archive. File ownership comes
    /// from the SPDX document next to a layout, else the image's dpkg status.d entries.
    Inspect(inspect::InspectArgs),
    /// What a snapshot bump changes: packages added, removed, upgraded per architecture,
    /// and which images and variants they reach.
    Diff(diff::DiffArgs),
    /// What the project defines: distros (with codename and architectures), images (with
    /// their parent, architectures and description; rules/extra/ ones marked), variants and
    /// architectures, one line each.
    ///
    /// `debless list images` prints only image names, one a line (likewise distros,
    /// variants, arches); --json prints all of it as one document.
    List(list::ListArgs),
    /// Push an image layout (or an oci-archive) to a registry: blobs (skipped if there,
    /// mounted, or uploaded in parallel), then per-architecture manifests, then every tag
    /// (or the ones named); `push LAYOUT:TAG REGISTRY/REPO:NEWTAG` pushes one tag renamed.
    ///
    /// Credentials: --username with --password-stdin, else $DEBLESS_REGISTRY_USER and
    /// $DEBLESS_REGISTRY_PASSWORD, else $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json,
    /// ~/.docker/config.json.
    Push(push::PushArgs),
    /// Write each tag's multi-architecture index in the registry from the
    /// per-architecture manifests (<tag>-<arch>) that `build --shard I/N --push` runs
    /// pushed; the index digests equal a single build's of the same lock.
    Index(index::IndexArgs),
    /// Unpack an image into a directory: its root filesystem, or with --bundle a runc
    /// bundle (`runc run --bundle DIR NAME`).
    ///
    /// Reads gzip, zstd and plain layers, applies whiteouts, modes, owners (when run as
    /// root), times and links; no entry can write outside DIR. A multi-arch tag unpacks
    /// the host's platform unless --platform names another. DIR must be new or empty;
    /// it appears whole or not at all.
    Unpack(unpack::UnpackArgs),
    /// Make an ECDSA P-256 key pair for signing, in cosign's formats (cosign.key,
    /// cosign.pub).
    ///
    /// With COSIGN_PASSWORD set (even to nothing) the private key is encrypted as
    /// `cosign generate-key-pair` writes it; without, it is unencrypted PKCS#8.
    Keygen(keygen::KeygenArgs),
    /// Sign an image already in a registry as `cosign sign --key` does (sha256-<hex>.sig),
    /// and optionally attach a signed provenance statement.
    Sign(sign::SignArgs),
    /// Verify an image in a registry: its signature with a public key, its provenance
    /// (subject, lock, every .deb), and every blob it reaches.
    Verify(verify::VerifyArgs),
    /// Show the dependency path(s) that put PKG into an image, or why it is absent.
    Why(why::WhyArgs),
    /// What the cache holds by kind (`cache size`), and pruning it by age and by the
    /// locks still in use (`cache prune`).
    Cache(cache::CacheArgs),
}

impl Cli {
    /// Whether the command prints JSON (`--json`): its error is then a JSON object too.
    pub fn json(&self) -> bool {
        match &self.command {
            Command::Pin(a) => a.json,
            Command::Build(a) => a.json,
            Command::Fetch(a) => a.json,
            Command::Inspect(a) => a.json,
            Command::Diff(a) => a.json,
            Command::List(a) => a.json,
            Command::Push(a) => a.json,
            Command::Index(a) => a.json,
            Command::Unpack(a) => a.json,
            Command::Keygen(a) => a.json,
            Command::Sign(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Why(a) => a.json,
            Command::Cache(a) => a.json(),
        }
    }

    /// The exit status of a failure: 1, except `diff --exit-code`'s 2 (1 says "differ").
    pub fn failure(&self) -> ExitCode {
        match &self.command {
            Command::Diff(a) if a.exit_code => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

/// Run the subcommand; its exit status when it did not fail.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    debless::progress::set_level(match (g.quiet, g.verbose) {
        (true, _) => debless::progress::Level::Quiet,
        (false, true) => debless::progress::Level::Verbose,
        (false, false) => debless::progress::Level::Normal,
    });
    let done = match cli.command {
        Command::Diff(a) => return diff::run(a),
        Command::Pin(a) => pin::run(a, g),
        Command::Build(a) => build::run(a, g),
        Command::Fetch(a) => build::run_fetch(a, g),
        Command::Inspect(a) => inspect::run(a),
        Command::List(a) => list::run(a, g),
        Command::Push(a) => push::run(a, g.quiet),
        Command::Index(a) => index::run(a, g),
        Command::Unpack(a) => unpack::run(a, g),
        Command::Keygen(a) => keygen::run(a, g.quiet),
        Command::Sign(a) => sign::run(a, g.quiet),
        Command::Verify(a) => verify::run(a, g.quiet),
        Command::Why(a) => why::run(a, g),
        Command::Cache(a) => cache::run(a, g.quiet),
    };
    done.map(|()| ExitCode::SUCCESS)
}
