//! The `debless` command line: parse arguments, call the library, print, map errors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use debless::arch::Arch;
use debless::build::{BuildOptions, BuildReport, Format, build, default_out, fetch};
use debless::layer::Compression;

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

/// Which images, and from where: shared by `build` and `fetch`.
#[derive(Args)]
struct Selection {
    /// Images (rule names) to build; none means every image the distro defines.
    images: Vec<String>,
    /// Distro whose lock (snapshots/<distro>.lock) to build from.
    #[arg(long, default_value = "debian13")]
    distro: String,
    /// Tag to build (repeatable): `latest` or a variant under rules/variants/; none means
    /// `latest` plus every variant.
    #[arg(long = "variant", value_name = "V")]
    variants: Vec<String>,
    /// Architecture (repeatable); none means every architecture in the lock.
    #[arg(long = "arch", value_name = "ARCH")]
    arches: Vec<Arch>,
    /// Use only the cache; fail listing every .deb that is missing.
    #[arg(long)]
    offline: bool,
    /// Re-hash every cached .deb instead of trusting its size.
    #[arg(long)]
    verify: bool,
    /// Cache directory for .debs [default: $XDG_CACHE_HOME/debless].
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Worker threads [default: the number of CPUs].
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Mirror URL (repeatable); replaces the default mirror list (as for `pin`).
    #[arg(long = "mirror", value_name = "URL")]
    mirrors: Vec<String>,
    /// Snapshot service URL template, used for locks pinned with --date.
    #[arg(long, env = SNAPSHOT_ENV, value_name = "URL")]
    snapshot_service: Option<String>,
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
        arches: Vec<Arch>,
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
    /// Build OCI images from the lock: fetch the .debs, extract only the declared files,
    /// write one deterministic layer per rule level.
    ///
    /// Output: out/<image>-<distro>/ (an OCI layout) with tags latest, nonroot, debug...
    /// pointing at multi-arch indexes and <tag>-<arch> at per-architecture manifests.
    /// SOURCE_DATE_EPOCH, if set, replaces the lock's timestamp for mtimes and `created`.
    ///
    /// Layers whose inputs are unchanged (debless binary, rule files, .deb SHA256s, the
    /// layers below...) come from the layer cache (CACHE/layers/) without reading a .deb;
    /// outputs already holding exactly this build are left alone. --check bypasses the
    /// cache.
    Build {
        #[command(flatten)]
        sel: Selection,
        /// Output directory [default: <project>/out].
        #[arg(long)]
        out: Option<PathBuf>,
        /// oci (a layout directory), oci-archive or docker-archive (tarballs).
        #[arg(long, default_value = "oci")]
        format: Format,
        /// Layer compression: gzip or zstd.
        #[arg(long, default_value = "gzip")]
        compression: Compression,
        /// Build everything twice from the .debs (never from the layer cache) with different
        /// thread counts and fail on any difference.
        #[arg(long)]
        check: bool,
        /// After writing, push every layout to PREFIX/<image>-<distro> (e.g.
        /// 127.0.0.1:5000/distroless); shared layers are mounted, not re-uploaded.
        /// Credentials as for `debless push` (environment and auth files).
        #[arg(long, value_name = "PREFIX")]
        push: Option<String>,
        /// Allow plain HTTP for --push (loopback registries).
        #[arg(long, requires = "push")]
        insecure: bool,
        /// Write the SPDX documents here (DIR/<image>-<distro>/) instead of next to each
        /// layout (OUT/<image>-<distro>.spdx/).
        #[arg(long, value_name = "DIR")]
        sbom_dir: Option<PathBuf>,
        /// Print the summary as JSON on stdout (image, tag, arch, digest, sizes, layers;
        /// layers made, cached and shared; outputs left up to date).
        #[arg(long)]
        json: bool,
        /// Ignore `paths` and rules/defaults.toml: ship every file of every package, as Google
        /// distroless does (to compare sizes).
        #[arg(long)]
        whole_packages: bool,
        /// Value for the org.opencontainers.image.source annotation.
        #[arg(long, env = "DEBLESS_SOURCE_URL", value_name = "URL")]
        source_url: Option<String>,
    },
    /// Download every .deb a build would need into the cache (for a later --offline build).
    Fetch {
        #[command(flatten)]
        sel: Selection,
    },
    /// What an image holds: config, layers and what each adds, Debian packages, largest files.
    Inspect {
        /// OUT/IMAGE[:TAG], e.g. out/python3-debian13:nonroot (default tag: latest).
        target: String,
        /// How many of the largest files to list.
        #[arg(long, default_value_t = 10)]
        largest: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a snapshot bump changes: packages added, removed, upgraded per architecture,
    /// and which images and variants they reach.
    Diff {
        /// The old lock (e.g. from `git show HEAD:snapshots/debian13.lock > old.lock`).
        old: PathBuf,
        /// The new lock.
        new: PathBuf,
        /// Print JSON.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print a Markdown table for a pull-request comment.
        #[arg(long)]
        markdown: bool,
    },
    /// Push an image layout to a registry: blobs (skipped if there, mounted, or uploaded in
    /// parallel), then per-architecture manifests, then every tag (or the ones named).
    ///
    /// Credentials: --username with --password-stdin, else $DEBLESS_REGISTRY_USER and
    /// $DEBLESS_REGISTRY_PASSWORD, else $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json,
    /// ~/.docker/config.json.
    Push(debless::registry::cli::PushArgs),
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
        arch: Option<Arch>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", debless::text::error_line(e.as_ref()));
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
        Command::Build {
            sel,
            out,
            format,
            compression,
            check,
            push,
            insecure,
            sbom_dir,
            json,
            whole_packages,
            source_url,
        } => {
            let mut opts = build_options(&cli.project, cli.quiet, sel)?;
            opts.out = out.unwrap_or_else(|| default_out(&cli.project));
            opts.format = format;
            opts.compression = compression;
            opts.check = check;
            opts.whole_packages = whole_packages;
            opts.sbom_dir = sbom_dir;
            opts.source_url = source_url;
            if push.is_some() && format != Format::Oci {
                anyhow::bail!("--push needs --format oci (the default): it pushes the layouts");
            }
            let r = build(&opts)?;
            if let Some(prefix) = push {
                let mut popts = debless::registry::PushOptions::from_env()?;
                popts.insecure = insecure;
                popts.quiet = cli.quiet;
                for layout in &r.outputs {
                    let name = layout
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let target = format!("{}/{name}", prefix.trim_end_matches('/'));
                    let pr = debless::registry::push_layout(layout, &target, &popts)?;
                    if !cli.quiet {
                        eprintln!(
                            "pushed {target}: {} tags; blobs {} uploaded, {} mounted, {} already there; {} SBOMs attached",
                            pr.tags.len(),
                            pr.uploaded.blobs,
                            pr.mounted.blobs,
                            pr.skipped.blobs,
                            pr.sboms
                        );
                    }
                }
            }
            if json {
                print_json(&r)?;
            } else if !cli.quiet {
                print_summary(&r, check);
            }
        }
        Command::Fetch { sel } => {
            let opts = build_options(&cli.project, cli.quiet, sel)?;
            let r = fetch(&opts)?;
            if !cli.quiet {
                eprintln!(
                    "fetched: {} .debs needed, {} already cached, {} downloaded ({} bytes)",
                    r.wanted, r.cached, r.downloaded, r.bytes
                );
            }
        }
        Command::Inspect {
            target,
            largest,
            json,
        } => {
            let (dir, tag) = debless::inspect::parse_target(&target);
            let r = debless::inspect::inspect(&dir, &tag, largest)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                print!("{}", r.to_text());
            }
        }
        Command::Diff {
            old,
            new,
            json,
            markdown,
        } => {
            let d = debless::snapshot::diff::diff(&Lock::read(&old)?, &Lock::read(&new)?)
                .map_err(anyhow::Error::msg)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else if markdown {
                print!("{}", d.to_markdown());
            } else {
                print!("{}", d.to_text());
            }
        }
        Command::Push(args) => debless::registry::cli::run(args, cli.quiet)?,
        Command::Why {
            package,
            image,
            distro,
            arch,
        } => {
            let lock = Lock::read(&cli.project.join("snapshots").join(format!("{distro}.lock")))?;
            let rules = RuleSet::load(&cli.project.join("rules"))?;
            let Some(arch) = arch.or_else(|| lock.architectures.first().copied()) else {
                anyhow::bail!(
                    "the {distro} lock has no architectures; run `debless pin --distro {distro}`"
                );
            };
            match why(&lock, &rules, &image, arch, &package).map_err(anyhow::Error::msg)? {
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

fn build_options(
    project: &std::path::Path,
    quiet: bool,
    s: Selection,
) -> anyhow::Result<BuildOptions> {
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => Some(v.trim().parse::<i64>().map_err(|_| {
            anyhow::anyhow!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds; unset it or fix it"
            )
        })?),
        _ => None,
    };
    let jobs = s.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    if jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    Ok(BuildOptions {
        project: project.to_owned(),
        distro: s.distro,
        images: s.images,
        variants: s.variants,
        arches: s.arches,
        out: default_out(project),
        format: Format::Oci,
        compression: Compression::Gzip,
        check: false,
        whole_packages: false,
        sbom_dir: None,
        offline: s.offline,
        verify: s.verify,
        cache_dir: s.cache_dir.unwrap_or_else(Cache::default_dir),
        jobs,
        mirrors: s.mirrors,
        env_mirrors: std::env::var(MIRRORS_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty()),
        snapshot_service: s.snapshot_service,
        etc_apt: PathBuf::from("/etc/apt"),
        source_date_epoch,
        source_url: None,
        quiet,
    })
}

/// Sizes per image and architecture (the `latest` tag), then where things went.
fn print_summary(r: &BuildReport, checked: bool) {
    eprintln!(
        "{:<28} {:<8} {:>14} {:>14}  digest",
        "image:tag", "arch", "uncompressed", "compressed"
    );
    for t in &r.tags {
        eprintln!(
            "{:<28} {:<8} {:>14} {:>14}  {}",
            format!("{}:{}", t.image, t.tag),
            t.arch,
            t.tar_bytes,
            t.blob_bytes,
            t.digest
        );
    }
    for p in &r.outputs {
        if r.up_to_date.contains(p) {
            eprintln!("up to date {}", p.display());
        } else {
            eprintln!("wrote {}", p.display());
        }
    }
    eprintln!(
        "{} layers ({} made, {} from the layer cache; {} shared by several images); .debs: {} needed, {} downloaded{}",
        r.layers,
        r.layers_made,
        r.layers - r.layers_made,
        r.layers_shared,
        r.fetch.wanted,
        r.fetch.downloaded,
        if checked {
            "; --check: two builds with different thread counts are identical"
        } else {
            ""
        }
    );
}

/// The summary as one JSON document on stdout, for scripts and CI.
fn print_json(r: &BuildReport) -> anyhow::Result<()> {
    let images: Vec<serde_json::Value> = r
        .tags
        .iter()
        .map(|t| {
            serde_json::json!({
                "image": t.image,
                "tag": t.tag,
                "arch": t.arch,
                "digest": t.digest,
                "uncompressed_bytes": t.tar_bytes,
                "compressed_bytes": t.blob_bytes,
                "layers": t.layers,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "images": images,
        "outputs": r.outputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "up_to_date": r.up_to_date.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "layers": {
            "total": r.layers,
            "made": r.layers_made,
            "cached": r.layers - r.layers_made,
            "shared": r.layers_shared,
        },
        "debs": { "needed": r.fetch.wanted, "downloaded": r.fetch.downloaded },
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
