//! `debless build` and `debless fetch`: their arguments, the options they make, and what
//! they print.

use std::path::PathBuf;

use debless::arch::Arch;
use debless::build::plan::Shard;
use debless::build::{BuildOptions, BuildReport, Format, RegistryCache, build, default_out, fetch};
use debless::fetch::cache::Cache;
use debless::fetch::mirror::{MIRRORS_ENV, SNAPSHOT_ENV};
use debless::layer::Compression;

use super::Global;

mod app;

/// The environment variable `--cache-registry` defaults to.
pub const CACHE_REGISTRY_ENV: &str = "DEBLESS_CACHE_REGISTRY";

/// The distro `build` and `fetch` use without --distro or --lock.
const DEFAULT_DISTRO: &str = "debian13";

/// Which images, and from where: shared by `build` and `fetch`.
#[derive(clap::Args)]
pub struct Selection {
    /// Images (rule names) to build; none means every image of the distro's family (not
    /// those under rules/extra/, which are built when named).
    pub images: Vec<String>,
    /// Distro whose lock (snapshots/<distro>.lock) to build from [default: debian13, or
    /// the distro of --lock].
    #[arg(long)]
    pub distro: Option<String>,
    /// Read the lock from PATH (e.g. one `pin -o` wrote) instead of
    /// snapshots/<distro>.lock; rules still come from the project.
    #[arg(long, value_name = "PATH")]
    pub lock: Option<PathBuf>,
    /// Tag to build (repeatable): `latest` or a variant under rules/variants/; none means
    /// `latest` plus every variant.
    #[arg(long = "variant", value_name = "V")]
    pub variants: Vec<String>,
    /// Architecture (repeatable); none means every architecture in the lock.
    #[arg(long = "arch", value_name = "ARCH")]
    pub arches: Vec<Arch>,
    /// Only the I-th of N slices of the selected images × tags × architectures
    /// (architecture first, cut so each slice reads about as many .deb bytes), for N
    /// runners building one family; `debless index` then writes the multi-architecture
    /// indexes.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Use only the cache; fail listing every .deb that is missing.
    #[arg(long)]
    pub offline: bool,
    /// Re-hash every cached .deb instead of trusting its size.
    #[arg(long)]
    pub verify: bool,
    /// Cache directory for .debs [default: $XDG_CACHE_HOME/debless].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Worker threads [default: the number of CPUs].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Mirror URL (repeatable); replaces the default mirror list (as for `pin`).
    #[arg(long = "mirror", value_name = "URL")]
    pub mirrors: Vec<String>,
    /// Snapshot service URL template, used for locks pinned with --date.
    #[arg(long, env = SNAPSHOT_ENV, value_name = "URL")]
    pub snapshot_service: Option<String>,
}

/// Arguments of `debless build`.
#[derive(clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub sel: Selection,
    /// Output directory [default: <project>/out].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// oci (a layout directory), oci-archive or docker-archive (tarballs); repeat or
    /// separate with commas to write several from one build (`--format oci,docker-archive`).
    #[arg(
        long = "format",
        value_name = "FORMAT",
        value_delimiter = ',',
        default_value = "oci"
    )]
    pub formats: Vec<Format>,
    /// The architecture a docker-archive's `<image>:<tag>` names (each image's `<tag>-<arch>`
    /// names are always there) [default: the host's where the image has it, else its first].
    #[arg(long, value_name = "ARCH")]
    pub archive_arch: Option<Arch>,
    /// Layer compression: gzip or zstd.
    #[arg(long, default_value = "gzip")]
    pub compression: Compression,
    /// Build everything twice from the .debs (never from the layer cache) with different
    /// thread counts and fail on any difference.
    #[arg(long)]
    pub check: bool,
    /// After writing, push every layout to PREFIX/<image>-<distro> (e.g.
    /// 127.0.0.1:5000/distroless); shared layers are mounted, not re-uploaded.
    /// Credentials as for `debless push` (environment and auth files).
    #[arg(long, value_name = "PREFIX")]
    pub push: Option<String>,
    /// Allow plain HTTP for --push and --cache-registry (loopback registries).
    #[arg(long)]
    pub insecure: bool,
    /// A registry repository shared by machines as a second layer cache, after
    /// --cache-dir's: layers missing locally are looked up there by key (verified, a bad
    /// entry is refused and made again); layers made, and local ones it lacks, are
    /// pushed there. Credentials as for `debless push`.
    #[arg(long, env = CACHE_REGISTRY_ENV, value_name = "REGISTRY/REPO")]
    pub cache_registry: Option<String>,
    /// Only read --cache-registry, never push to it (a job without push rights).
    #[arg(long, requires = "cache_registry")]
    pub cache_read_only: bool,
    /// Write the SPDX documents here (DIR/<image>-<distro>/) instead of next to each
    /// layout (OUT/<image>-<distro>.spdx/).
    #[arg(long, value_name = "DIR")]
    pub sbom_dir: Option<PathBuf>,
    /// Print the summary as JSON on stdout (docs/json.md): per tag its index digest,
    /// per architecture its manifest digest, sizes and layers, the layout, archive and
    /// SPDX paths; layers made, cached and shared; outputs left up to date.
    #[arg(long)]
    pub json: bool,
    /// Ignore `paths` and rules/defaults.toml: ship every file of every package, as Google
    /// distroless does (to compare sizes).
    #[arg(long)]
    pub whole_packages: bool,
    /// Value for the org.opencontainers.image.source annotation.
    #[arg(long, env = "DEBLESS_SOURCE_URL", value_name = "URL")]
    pub source_url: Option<String>,
    // ---- The application layer and image config overrides (src/cli/build/app.rs). ----
    /// `--add`, `--entrypoint`, `--cmd`, `--env`, `--user`, `--workdir`, `--label`,
    /// `--annotation` (boxed: clippy's large_enum_variant on `Command`).
    #[command(flatten)]
    pub app: Box<app::AppArgs>,
}

/// Arguments of `debless fetch`.
#[derive(clap::Args)]
pub struct FetchArgs {
    /// Which images, and from where.
    #[command(flatten)]
    pub sel: Selection,
    /// Print JSON on stdout: {needed, cached, downloaded, downloaded_bytes}.
    #[arg(long)]
    pub json: bool,
}

/// Run `debless build`: build, push if asked, print the summary (or JSON).
pub fn run(a: BuildArgs, g: &Global) -> anyhow::Result<()> {
    let BuildArgs {
        sel,
        out,
        formats,
        archive_arch,
        compression,
        check,
        push,
        insecure,
        cache_registry,
        cache_read_only,
        sbom_dir,
        json,
        whole_packages,
        source_url,
        app,
    } = a;
    let mut opts = build_options(&g.project, g.quiet, sel)?;
    opts.out = out.unwrap_or_else(|| default_out(&g.project));
    opts.formats = formats;
    opts.archive_arch = archive_arch;
    if let Some(a) = archive_arch {
        if !opts.formats.contains(&Format::DockerArchive) {
            anyhow::bail!("--archive-arch is for --format docker-archive; add that format");
        }
        if !opts.arches.is_empty() && !opts.arches.contains(&a) {
            anyhow::bail!(
                "--archive-arch {a} is not among the --arch values built; add --arch {a}"
            );
        }
    }
    opts.compression = compression;
    opts.check = check;
    opts.whole_packages = whole_packages;
    opts.sbom_dir = sbom_dir;
    opts.source_url = source_url;
    (*app).apply(&mut opts)?;
    if insecure && push.is_none() && cache_registry.is_none() {
        anyhow::bail!("--insecure is for --push or --cache-registry; give one of them");
    }
    opts.cache_registry = cache_registry.map(|repository| RegistryCache {
        repository,
        push: debless::registry::PushOptions {
            insecure,
            quiet: true,
            ..debless::registry::PushOptions::from_env()
        },
        read_only: cache_read_only,
    });
    if push.is_some() && !opts.formats.contains(&Format::Oci) {
        anyhow::bail!(
            "--push needs --format oci (the default, or among several): it pushes the layouts"
        );
    }
    let r = build(&opts)?;
    if let Some(rc) = &r.registry_cache {
        for w in &rc.warnings {
            eprintln!("warning: {w}");
        }
    }
    // What each push did, for --json.
    let mut pushed = Vec::new();
    if let Some(prefix) = push {
        let popts = debless::registry::PushOptions {
            insecure,
            quiet: g.quiet,
            ..debless::registry::PushOptions::from_env()
        };
        let mut report = |target: &str, pr: &debless::registry::PushReport| {
            pushed.push(super::json::push(pr));
            if !g.quiet {
                eprintln!(
                    "pushed {target}: {} tags; blobs {} uploaded, {} mounted, {} already there; {} SBOMs attached",
                    pr.tags.len(),
                    pr.uploaded.blobs,
                    pr.mounted.blobs,
                    pr.skipped.blobs,
                    pr.sboms
                );
            }
        };
        if opts.shard.is_none() {
            debless::registry::push_all(&r.layouts, &prefix, &popts, &mut report)?;
        } else {
            // A shard pushes its per-architecture tags only: the multi-architecture tags
            // are `debless index`'s, so no one pulls a tag holding one shard's part.
            for layout in &r.layouts {
                let tags: Vec<String> = r
                    .tags
                    .iter()
                    .filter(|t| layout.ends_with(format!("{}-{}", t.image, opts.distro)))
                    .map(|t| format!("{}-{}", t.tag, t.arch))
                    .collect();
                let popts = debless::registry::PushOptions {
                    tags,
                    ..popts.clone()
                };
                debless::registry::push_all(
                    std::slice::from_ref(layout),
                    &prefix,
                    &popts,
                    &mut report,
                )?;
            }
        }
    }
    if json {
        let mut doc = super::json::build(&r);
        doc["pushed"] = serde_json::Value::Array(pushed);
        super::json::print(&doc)?;
    } else if !g.quiet {
        print_summary(&r, check);
    }
    Ok(())
}

/// Run `debless fetch`.
pub fn run_fetch(a: FetchArgs, g: &Global) -> anyhow::Result<()> {
    let opts = build_options(&g.project, g.quiet, a.sel)?;
    let r = fetch(&opts)?;
    if a.json {
        super::json::print(&super::json::fetch(&r))?;
    } else if !g.quiet {
        eprintln!(
            "fetched: {} .debs needed, {} already cached, {} downloaded ({})",
            r.wanted,
            r.cached,
            r.downloaded,
            debless::text::bytes(r.bytes)
        );
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
    let distro = match (s.distro, &s.lock) {
        (Some(d), _) => d,
        // The lock says which distro it is; rules and generators follow it.
        (None, Some(lock)) => debless::snapshot::lock::Lock::read(lock)?.distro,
        (None, None) => DEFAULT_DISTRO.to_owned(),
    };
    Ok(BuildOptions {
        project: project.to_owned(),
        distro,
        lock: s.lock,
        images: s.images,
        variants: s.variants,
        arches: s.arches,
        shard: s.shard,
        cache_registry: None,
        out: default_out(project),
        formats: vec![Format::Oci],
        archive_arch: None,
        compression: Compression::Gzip,
        check: false,
        fresh: false,
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
        add: Vec::new(),
        config: Default::default(),
    })
}

/// Sizes and digests per image, tag and architecture, each tag's index digest (what
/// `FROM …@sha256:` pins), then where things went. Exact numbers: `--json`.
fn print_summary(r: &BuildReport, checked: bool) {
    eprintln!(
        "{:<36} {:<8} {:>12} {:>12}  digest",
        "image:tag", "arch", "uncompressed", "compressed"
    );
    for t in &r.tags {
        eprintln!(
            "{:<36} {:<8} {:>12} {:>12}  {}",
            format!("{}:{}", t.repository, t.tag),
            t.arch,
            debless::text::bytes(t.tar_bytes),
            debless::text::bytes(t.blob_bytes),
            t.digest
        );
    }
    for x in &r.indexes {
        eprintln!(
            "{:<36} {:<8} {:>12} {:>12}  {}",
            format!("{}:{}", x.repository, x.tag),
            "index",
            "",
            "",
            x.digest
        );
    }
    for p in &r.outputs {
        if r.up_to_date.contains(p) {
            eprintln!("up to date {}", p.display());
        } else {
            eprintln!("wrote {}", p.display());
        }
    }
    for (repo, c) in &r.tag_changes {
        let list = |what: &str, tags: &[String]| {
            (!tags.is_empty()).then(|| format!("{what} {}", tags.join(" ")))
        };
        let parts: Vec<String> = [
            list("added", &c.added),
            list("replaced", &c.replaced),
            list("removed", &c.removed),
            list("kept", &c.kept),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !parts.is_empty() {
            eprintln!("{repo}: {}", parts.join("; "));
        }
    }
    if let Some(rc) = &r.registry_cache {
        eprintln!(
            "cache registry {}: {} layers fetched, {} not there, {} pushed",
            rc.repository, rc.hits, rc.misses, rc.pushed
        );
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
