//! The seed, made once and kept in `BENCH_DIR`: a scratch project, a local mirror holding
//! every suite's signed InRelease and Packages.xz and every .deb the cases and the peer
//! need, and a lock pinned against that mirror.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, anyhow, bail};
use debless::archive::release::Release;
use debless::archive::trust::{Keyring, ValidAt};
use debless::digest::Digest;
use debless::fetch::cache::Cache;
use debless::http::Http;
use debless::snapshot::lock::Lock;
use debless::snapshot::manifest::Manifest;

use crate::cases::{IMAGE, IMAGE_ARCH, ONE};
use crate::files;
use crate::host::HostMirrors;
use crate::server::{Server, percent_decode};
use crate::{Config, DISTRO, output, run_checked};

/// The largest index (InRelease, Packages.xz) the seed downloads into memory.
const MAX_INDEX: u64 = 512 << 20;

/// `name=version` of the one image's packages, one a line, in `BENCH_DIR`.
const PEER_PACKAGES: &str = "peer-packages.txt";
/// The package names apt adds to them, one a line, in `BENCH_DIR`.
const PEER_EXTRA: &str = "peer-extra.txt";

/// What the cases and the report need from the seed.
pub struct Seeded {
    /// The local mirror, serving `Config::mirror`.
    pub server: Server,
    /// The source manifest of the scratch project.
    pub manifest: Manifest,
    /// The lock pinned against the local mirror.
    pub lock: Lock,
    /// `name=version` of every Debian package in the one image (the peer installs these).
    pub peer_packages: Vec<String>,
    /// The packages apt adds to them, in apt's order.
    pub peer_extra: Vec<String>,
}

/// The seed in `BENCH_DIR`, made anew when the rules, manifests or keys changed since it
/// was made (or `BENCH_RESEED=1`), and its mirror served.
pub fn seed(cfg: &Config, tmp: &Path) -> anyhow::Result<Seeded> {
    let inputs = inputs_digest(&cfg.root)?;
    let done = cfg.bench_dir.join("seed.done");
    let server_log = cfg.bench_dir.join("server.log");
    let reuse = !cfg.reseed && std::fs::read_to_string(&done).ok().as_deref() == Some(&inputs);
    let server = if reuse {
        say!(
            "reusing the seed in {} (BENCH_RESEED=1 to pin and download again)",
            cfg.bench_dir.display()
        );
        start_mirror(cfg, &server_log)?
    } else {
        Fresh::make(cfg, tmp, &server_log, &inputs)?
    };
    Ok(Seeded {
        server,
        manifest: Manifest::load(&cfg.project().join("snapshots"), DISTRO)?,
        lock: read_lock(cfg)?,
        peer_packages: read_lines(&cfg.bench_dir.join(PEER_PACKAGES))?,
        peer_extra: read_lines(&cfg.bench_dir.join(PEER_EXTRA))?,
    })
}

fn start_mirror(cfg: &Config, log: &Path) -> anyhow::Result<Server> {
    let server = Server::start(&cfg.mirror(), log)?;
    say!(
        "local mirror at {} (serving {})",
        server.url(),
        cfg.mirror().display()
    );
    Ok(server)
}

fn read_lock(cfg: &Config) -> anyhow::Result<Lock> {
    Ok(Lock::read(&cfg.lock())?)
}

fn lines(items: &[String]) -> String {
    items.iter().map(|s| format!("{s}\n")).collect()
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {}; BENCH_RESEED=1 makes the seed again",
            path.display()
        )
    })?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// `snapshots/*.toml`, sorted.
fn manifests(snapshots: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(snapshots)
        .with_context(|| format!("cannot read {}", snapshots.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// What the seed's lock was pinned from (rules/, the manifests, the keys): when that
/// changes the seed is made again, so the bench never builds stale rules.
fn inputs_digest(root: &Path) -> anyhow::Result<String> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut paths = manifests(&root.join("snapshots"))?;
    walk(&root.join("rules"), &mut paths)?;
    walk(&root.join("snapshots/keys"), &mut paths)?;
    let mut listing = BTreeMap::new();
    for path in paths {
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let digest = Digest::of_file(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .hex();
        listing.insert(name, digest);
    }
    let text: String = listing
        .iter()
        .map(|(name, digest)| format!("{digest}  {name}\n"))
        .collect();
    Ok(Digest::of(text.as_bytes()).hex())
}

/// A seed being made: what its steps share.
struct Fresh<'a> {
    cfg: &'a Config,
    /// The scratch project's source manifest.
    manifest: Manifest,
    /// The host's Debian mirror, where everything comes from.
    host: HostMirrors,
    /// debless's own HTTP client (retries, resumes).
    http: Http,
    /// Scratch space (apt's state for the peer's package set).
    tmp: &'a Path,
}

impl<'a> Fresh<'a> {
    /// Make the seed from nothing: project, indices, pin, .debs, the peer's package set.
    /// Returns the running local mirror.
    fn make(cfg: &'a Config, tmp: &'a Path, log: &Path, inputs: &str) -> anyhow::Result<Server> {
        let done = cfg.bench_dir.join("seed.done");
        for stale in [cfg.project(), cfg.mirror(), cfg.seed_cache(), done.clone()] {
            files::remove(&stale)?;
        }
        let project = cfg.project();
        files::copy_tree(&cfg.root.join("rules"), &project.join("rules"))?;
        files::copy_tree(
            &cfg.root.join("snapshots/keys"),
            &project.join("snapshots/keys"),
        )?;
        for manifest in manifests(&cfg.root.join("snapshots"))? {
            let name = manifest.file_name().unwrap_or_default();
            files::copy_tree(&manifest, &project.join("snapshots").join(name))?;
        }
        let manifest = Manifest::load(&project.join("snapshots"), DISTRO)?;
        let archives: Vec<&str> = manifest.suites.iter().map(|s| s.archive.as_str()).collect();
        let host = HostMirrors::read(&cfg.apt_sources, &archives, tmp)?;
        let fresh = Fresh {
            cfg,
            manifest,
            host,
            http: Http::new().map_err(|e| anyhow!(e))?,
            tmp,
        };
        fresh.fetch_indices()?;
        let server = start_mirror(cfg, log)?;
        fresh.pin(&server)?;
        fresh.fetch_debs()?;
        let lock = read_lock(cfg)?;
        fresh.link_pool(&lock)?;
        let packages = fresh.peer_packages()?;
        std::fs::write(cfg.bench_dir.join(PEER_PACKAGES), lines(&packages))?;
        let extra = fresh.peer_pool(&lock, &server, &packages)?;
        std::fs::write(cfg.bench_dir.join(PEER_EXTRA), lines(&extra))?;
        std::fs::write(&done, inputs)?;
        Ok(server)
    }

    /// `debless -q -C PROJECT SUBCOMMAND --distro D --cache-dir SEED_CACHE`.
    fn debless(&self, subcommand: &str) -> Command {
        let mut c = Command::new(&self.cfg.debless);
        c.arg("-q")
            .arg("-C")
            .arg(self.cfg.project())
            .args([subcommand, "--distro", DISTRO, "--cache-dir"])
            .arg(self.cfg.seed_cache());
        c
    }

    /// Each suite's InRelease (signature verified against the manifest's keys) and
    /// Packages.xz per component and architecture, from the host's mirror, laid out under
    /// both the plain and the by-hash path (apt asks for the latter). Packages.xz is
    /// fetched by hash, so it matches the InRelease fetched just before even if the mirror
    /// updates in between.
    fn fetch_indices(&self) -> anyhow::Result<()> {
        let keyring = Keyring::load(&self.manifest.key_files())?;
        let now = jiff::Timestamp::now().as_second();
        for suite in &self.manifest.suites {
            let from = format!("{}dists/{}", self.host.root(&suite.archive)?, suite.suite);
            let to = self
                .cfg
                .mirror()
                .join(&suite.archive)
                .join("dists")
                .join(&suite.suite);
            say!("indices: {from}");
            let inrelease = self.http.get(&format!("{from}/InRelease"), MAX_INDEX)?;
            let text = std::str::from_utf8(&inrelease)
                .with_context(|| format!("{from}/InRelease is not UTF-8"))?;
            let verified = keyring
                .verify_inrelease(text, ValidAt::Time(now), &suite.signed_by)
                .with_context(|| format!("{from}/InRelease"))?;
            let release =
                Release::parse(&verified.text).with_context(|| format!("{from}/InRelease"))?;
            files::create_dir(&to)?;
            std::fs::write(to.join("InRelease"), &inrelease)?;
            for comp in &self.manifest.components {
                for arch in &self.manifest.architectures {
                    let dir = format!("{comp}/binary-{arch}");
                    let path = format!("{dir}/Packages.xz");
                    let Some(entry) = release.sha256.get(&path) else {
                        bail!("{from}/InRelease lists no {path}");
                    };
                    let by_hash = format!("{dir}/by-hash/SHA256/{}", entry.sha256.hex());
                    let body = self
                        .http
                        .get(&format!("{from}/{by_hash}"), MAX_INDEX)
                        .or_else(|_| self.http.get(&format!("{from}/{path}"), MAX_INDEX))?;
                    if Digest::of(&body) != entry.sha256 {
                        bail!(
                            "{from}/{path} does not match its InRelease (the mirror is updating? \
                             run again)"
                        );
                    }
                    files::create_dir(&to.join(&dir))?;
                    std::fs::write(to.join(&path), &body)?;
                    files::hard_link(&to.join(&path), &to.join(&by_hash))?;
                }
            }
        }
        Ok(())
    }

    /// A fresh pin against the local mirror, so lock and indices agree by construction.
    fn pin(&self, server: &Server) -> anyhow::Result<()> {
        say!("pin: {DISTRO} against the local mirror");
        run_checked(self.debless("pin").args(["--mirror", server.url()]))
    }

    /// Every .deb of the family from the host's mirror into the seed cache.
    fn fetch_debs(&self) -> anyhow::Result<()> {
        say!("fetch: every .deb of the family from the host's mirror");
        let mut fetch = self.debless("fetch");
        let mut roots: Vec<String> = Vec::new();
        for suite in &self.manifest.suites {
            let root = self.host.root(&suite.archive)?;
            if !roots.contains(&root) {
                fetch.args(["--mirror", &root]);
                roots.push(root);
            }
        }
        run_checked(&mut fetch)
    }

    /// Every .deb in the lock, hard-linked from the seed cache to where the lock says the
    /// archive keeps it.
    fn link_pool(&self, lock: &Lock) -> anyhow::Result<()> {
        let archive_of: BTreeMap<&str, &str> = lock
            .suites
            .iter()
            .map(|s| (s.suite.as_str(), s.archive.as_str()))
            .collect();
        let cache = Cache::new(self.cfg.seed_cache());
        for p in &lock.packages {
            let blob = cache.path(&p.sha256);
            if !blob.is_file() {
                bail!(
                    "{} ({}) is not in {} after debless fetch",
                    p.filename,
                    p.sha256,
                    self.cfg.seed_cache().display()
                );
            }
            let archive = archive_of
                .get(p.suite.as_str())
                .with_context(|| format!("{}: suite {} is not in the lock", p.name, p.suite))?;
            files::hard_link(&blob, &self.cfg.mirror().join(archive).join(&p.filename))?;
        }
        say!("local mirror: {} .debs in the pool", lock.packages.len());
        Ok(())
    }

    /// The Debian packages (`name=version`) in debless's one image, from its SPDX
    /// document: the peer installs exactly these.
    fn peer_packages(&self) -> anyhow::Result<Vec<String>> {
        say!("peer: the package set of {IMAGE}, from debless's SBOM");
        let out = self.cfg.bench_dir.join("seed-out");
        files::remove(&out)?;
        run_checked(
            self.debless("build")
                .args(ONE.args)
                .arg("--offline")
                .arg("--out")
                .arg(&out),
        )?;
        let path = out.join(format!(
            "{IMAGE}-{DISTRO}.spdx/latest-{IMAGE_ARCH}.spdx.json"
        ));
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?,
        )
        .with_context(|| format!("{} is not JSON", path.display()))?;
        let mut packages = Vec::new();
        for p in doc["packages"].as_array().into_iter().flatten() {
            let is_deb = p["externalRefs"].as_array().into_iter().flatten().any(|r| {
                r["referenceLocator"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("pkg:deb/"))
            });
            if let (true, Some(name), Some(version)) =
                (is_deb, p["name"].as_str(), p["versionInfo"].as_str())
            {
                packages.push(format!("{name}={version}"));
            }
        }
        if packages.is_empty() {
            bail!(
                "no Debian packages in the SBOM of {IMAGE} ({})",
                path.display()
            );
        }
        Ok(packages)
    }

    /// apt resolves the peer's package set itself and cannot leave out what debless
    /// excludes (dpkg, debconf, ...). Ask apt, against the local mirror, which .debs it
    /// would download; fetch those the pool lacks from the host's mirror, checked against
    /// the SHA256 of the signed index. Returns the names apt adds, for the report.
    fn peer_pool(
        &self,
        lock: &Lock,
        server: &Server,
        packages: &[String],
    ) -> anyhow::Result<Vec<String>> {
        let d = self.tmp.join("apt");
        for sub in [
            "etc/apt/apt.conf.d",
            "etc/apt/preferences.d",
            "lists/partial",
            "cache",
        ] {
            files::create_dir(&d.join(sub))?;
        }
        std::fs::write(d.join("status"), "")?;
        let sources = crate::peer::apt_sources(server.url(), &self.manifest, lock);
        std::fs::write(d.join("etc/apt/sources.list"), lines(&sources))?;
        let dir = d.display();
        std::fs::write(
            d.join("apt.conf"),
            format!(
                "Dir \"{dir}/\";\n\
                 Dir::State::status \"{dir}/status\";\n\
                 Dir::State::Lists \"{dir}/lists/\";\n\
                 Dir::Cache \"{dir}/cache/\";\n\
                 APT::Architecture \"{IMAGE_ARCH}\";\n\
                 APT::Architectures {{ \"{IMAGE_ARCH}\"; }};\n\
                 APT::Install-Recommends \"false\";\n\
                 Acquire::Languages \"none\";\n\
                 Acquire::ForceHash \"SHA256\";\n\
                 APT::Sandbox::User \"root\";\n"
            ),
        )?;
        let apt = || {
            let mut c = Command::new("apt-get");
            c.env("APT_CONFIG", d.join("apt.conf")).arg("-qq");
            c
        };
        run_checked(apt().arg("update"))?;
        let uris = output(apt().args(["--print-uris", "install"]).args(packages))?;
        let names: Vec<&str> = packages
            .iter()
            .map(|p| p.split_once('=').map_or(p.as_str(), |(n, _)| n))
            .collect();
        let mut extra = Vec::new();
        let mut downloaded = 0;
        for line in uris.lines() {
            // 'URL' FILE SIZE SHA256:HASH
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [url, file, size, hash] = fields[..] else {
                bail!("apt-get --print-uris: unexpected line {line:?}");
            };
            let url = url.trim_matches('\'');
            let name = file.split('_').next().unwrap_or(file);
            if !names.contains(&name) {
                extra.push(name.to_owned());
            }
            // apt's URIs are percent-encoded.
            let path = url
                .strip_prefix(server.url())
                .and_then(percent_decode)
                .and_then(|p| String::from_utf8(p).ok())
                .with_context(|| format!("apt wants {url}, which is not on the local mirror"))?;
            let dest = self.cfg.mirror().join(&path);
            if dest.is_file() {
                continue;
            }
            let (archive, rest) = path
                .split_once('/')
                .with_context(|| format!("apt wants {url}, outside every archive"))?;
            let size: u64 = size
                .parse()
                .with_context(|| format!("apt-get --print-uris: bad size in {line:?}"))?;
            let sha256 = hash.strip_prefix("SHA256:").unwrap_or(hash);
            let partial = dest.with_extension("partial");
            if let Some(parent) = dest.parent() {
                files::create_dir(parent)?;
            }
            let from = format!("{}{rest}", self.host.root(archive)?);
            self.http
                .download(&from, &partial, size, &|_| {})
                .with_context(|| {
                    format!("cannot download {path} ({size} bytes) from the host's mirror")
                })?;
            if Digest::of_file(&partial)?.hex() != sha256 {
                files::remove(&partial)?;
                bail!("{path} does not match the signed index");
            }
            std::fs::rename(&partial, &dest)?;
            downloaded += 1;
        }
        say!(
            "peer: apt adds {} packages; {downloaded} .debs downloaded for them",
            extra.len()
        );
        Ok(extra)
    }
}
