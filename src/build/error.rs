//! Why a build failed. Each variant names the file, package, layer or image, keeps the
//! error under it as its `source()`, and says what to do; its own message does not repeat
//! the source's, so the chain reads as one line (`error: {e}: {source}: ...`).

use std::path::{Path, PathBuf};

use super::layer_cache::LayerCacheError;
use super::plan::{LayerKey, PlanError};
use super::read::PackageError;
use super::tarball::TarballError;
use super::template::TemplateError;
use crate::arch::Arch;
use crate::deb::DebError;
use crate::digest::Digest;
use crate::fetch::debs::FetchError;
use crate::generate::GenError;
use crate::oci::OciError;
use crate::rules::RuleError;
use crate::snapshot::lock::LockError;

/// A build failure: one line naming the file, package or image and what to do.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The lock file cannot be read: the distro was never pinned.
    #[error("{}: cannot read; run `debless pin --distro {distro}` first", path.display())]
    NoLock {
        /// The lock file.
        path: PathBuf,
        /// The distro.
        distro: String,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// `--lock` names a lock of another distro than the one asked for.
    #[error("{}: is the lock of distro {locked}, not {distro}; pass --distro {locked} or another --lock", path.display())]
    LockDistro {
        /// The lock file.
        path: PathBuf,
        /// The distro the lock says.
        locked: String,
        /// The distro asked for.
        distro: String,
    },
    /// The lock is not a lock this debless reads.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A time (`SOURCE_DATE_EPOCH`, or a package file's mtime) is outside the range of a
    /// timestamp.
    #[error("time {epoch} (seconds since 1970) is out of range; check SOURCE_DATE_EPOCH")]
    Epoch {
        /// The value.
        epoch: i64,
        /// The range error.
        #[source]
        source: jiff::Error,
    },
    /// The rule files are unusable.
    #[error(transparent)]
    Rules(#[from] RuleError),
    /// The rules and the lock do not make a plan.
    #[error(transparent)]
    Plan(Box<PlanError>),
    /// A locked package names a suite the lock does not list.
    #[error(
        "{lock}: package {package} names suite {suite}, which the lock does not list; run `debless pin`"
    )]
    UnknownSuite {
        /// The lock's name.
        lock: String,
        /// The package.
        package: String,
        /// The suite it names.
        suite: String,
    },
    /// The mirror list cannot be made (a bad `--mirror` or `$DEBLESS_MIRRORS`).
    #[error(transparent)]
    Mirrors(#[from] crate::fetch::mirror::MirrorError),
    /// The HTTP client cannot start.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
    /// Downloading failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A glob in a package's `paths`, `drop` or `allow_setuid`, or in the defaults' lists,
    /// is unusable.
    #[error("{}: package {package}", file.display())]
    Pattern {
        /// The rule file declaring the package (`rules/defaults.toml` for a dependency no
        /// rule declares).
        file: PathBuf,
        /// The package.
        package: String,
        /// The pattern and what is wrong with it.
        #[source]
        source: Box<DebError>,
    },
    /// A required `paths` or `drop` pattern matches nothing in the package: a typo, or a
    /// path the package does not ship on this architecture.
    #[error(
        "{}: package {package}: {key} {pattern} matches nothing in {package} {version} ({arch}); fix or remove the pattern, or write it ?{pattern} if only some architectures or versions ship it",
        file.display()
    )]
    Unmatched {
        /// The rule file declaring the package.
        file: PathBuf,
        /// The package.
        package: String,
        /// Which list the pattern is in: `path` or `drop`.
        key: &'static str,
        /// The pattern as written.
        pattern: String,
        /// The locked version.
        version: String,
        /// The architecture.
        arch: Arch,
    },
    /// A locked package's .deb could not be read, or holds what an image must not.
    #[error("{package} {version} ({arch}{})", dependency_hint(.package, .dependency_of.as_deref()))]
    Package {
        /// The package.
        package: String,
        /// The locked version.
        version: String,
        /// The architecture.
        arch: Arch,
        /// For a dependency no rule declares, the rule file that brings it in (where it
        /// can be declared).
        dependency_of: Option<PathBuf>,
        /// What went wrong.
        #[source]
        source: Box<PackageError>,
    },
    /// A locked upstream tarball could not be read, or holds what an image must not.
    #[error("{}: tarball {name} {version} ({arch})", file.display())]
    Tarball {
        /// The rule file that takes it.
        file: PathBuf,
        /// The tarball's name.
        name: String,
        /// The locked version.
        version: String,
        /// The architecture.
        arch: Arch,
        /// What went wrong.
        #[source]
        source: Box<TarballError>,
    },
    /// A host file, directory or tarball of `[[add]]` or `--add` could not be added.
    #[error("{}: add {src} -> {dest}", file.display())]
    Add {
        /// The rule file (or `command line --add`).
        file: PathBuf,
        /// The `src` as written.
        src: String,
        /// The `dest` as written.
        dest: String,
        /// What went wrong.
        #[source]
        source: Box<super::add::AddError>,
    },
    /// A generator of a layer failed.
    #[error("{layer} ({})", file.display())]
    Generate {
        /// The layer.
        layer: LayerKey,
        /// The rule file that adds it.
        file: PathBuf,
        /// The generator's error.
        #[source]
        source: GenError,
    },
    /// A layer's files clash with each other or with the layers below.
    #[error("{layer} ({})", file.display())]
    Merge {
        /// The layer.
        layer: LayerKey,
        /// The rule file that adds it.
        file: PathBuf,
        /// The clash.
        #[source]
        source: Box<DebError>,
    },
    /// A finished layer could not be stored.
    #[error("{layer}")]
    Store {
        /// The layer.
        layer: LayerKey,
        /// Why.
        #[source]
        source: Box<LayerCacheError>,
    },
    /// `--cache-registry` names a registry that cannot be used.
    #[error(
        "--cache-registry {repository}: the layer cache registry cannot be used; fix the name or credentials, or drop the option to build without it"
    )]
    CacheRegistry {
        /// What was given.
        repository: String,
        /// Why not.
        #[source]
        source: Box<crate::registry::PushError>,
    },
    /// `debless index` could not read or write a repository.
    #[error("{repository}: cannot assemble the indexes")]
    Assemble {
        /// `REGISTRY/REPOSITORY`.
        repository: String,
        /// Why.
        #[source]
        source: Box<crate::registry::PushError>,
    },
    /// `debless index` found no manifest for one architecture of a tag.
    #[error(
        "{repository}: no tag {tag}; build and push the shard that has it (debless build --shard I/N --push PREFIX) before debless index"
    )]
    MissingMember {
        /// `REGISTRY/REPOSITORY`.
        repository: String,
        /// The per-architecture tag.
        tag: String,
    },
    /// The worker threads could not be started.
    #[error("cannot start {threads} threads")]
    Threads {
        /// How many were asked for.
        threads: usize,
        /// Why not.
        #[source]
        source: rayon::ThreadPoolBuildError,
    },
    /// An `env` value of an image's rules is a template that cannot be filled in.
    #[error("{image}: env {name}")]
    Env {
        /// The image.
        image: String,
        /// The variable.
        name: String,
        /// What is wrong with the template.
        #[source]
        source: TemplateError,
    },
    /// An image (`base-debian13:latest-amd64`) could not be assembled.
    #[error("{image}")]
    Image {
        /// The image reference.
        image: String,
        /// Why.
        #[source]
        source: Box<OciError>,
    },
    /// The layout a partial build merges into could not be read.
    #[error("{}: cannot read the layout a partial build keeps tags of; rebuild every tag and architecture (no --arch/--variant) or write elsewhere with --out", path.display())]
    Previous {
        /// The layout.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<crate::oci::ReadError>,
    },
    /// A partial build would replace an archive holding more than it builds.
    #[error("{}: a build of some tags or architectures (--arch/--variant) would replace this archive with fewer; build every tag and architecture, or write elsewhere with --out", path.display())]
    PartialArchive {
        /// The archive.
        path: PathBuf,
    },
    /// A layout, archive or SPDX directory could not be written.
    #[error("{}", path.display())]
    Output {
        /// The output.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<OciError>,
    },
    /// An output could not be put in place.
    #[error(transparent)]
    Oci(Box<OciError>),
    /// An output path clashes with another or holds something debless did not write;
    /// found before any work.
    #[error("{}: {what}", path.display())]
    Destination {
        /// The output path.
        path: PathBuf,
        /// What is wrong and what to do.
        what: String,
    },
    /// An output directory could not be created or written.
    #[error("{}: {what}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// What was being done (`cannot create`).
        what: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--check` found a difference.
    #[error("{0}")]
    NotReproducible(String),
    /// The running executable cannot be hashed, so the provenance cannot name it.
    #[error(
        "cannot hash the running debless executable for the provenance; run debless from a \
         readable file"
    )]
    NoToolDigest,
    /// A rule file changed between being read for the build and for the provenance.
    #[error("{}: changed while the build ran; build again", path.display())]
    ChangedDuringBuild {
        /// The file.
        path: PathBuf,
    },
    /// A provenance statement could not be made.
    #[error("cannot make the provenance statement")]
    Provenance(#[source] crate::sign::SignError),
    /// A value the provenance records cannot drive a rebuild.
    #[error("the provenance records {what}, which this debless cannot rebuild with")]
    Recorded {
        /// The value and why.
        what: String,
    },
    /// The rebuilt layout cannot be read back.
    #[error(transparent)]
    ReadBack(#[from] crate::oci::ReadError),
    /// A rebuild made other bytes than the image it should reproduce.
    #[error("rebuilt {name} is {rebuilt}, not {expected}: {detail}")]
    RebuildDiffers {
        /// The subject (`base-debian13:latest`).
        name: String,
        /// The digest verified in the registry.
        expected: Digest,
        /// The digest the rebuild made.
        rebuilt: Digest,
        /// The first image, layer and file that differ.
        detail: String,
    },
}

// The big errors below are boxed, so that every `Result<_, BuildError>` stays small.
impl From<PlanError> for BuildError {
    fn from(e: PlanError) -> BuildError {
        BuildError::Plan(Box::new(e))
    }
}

impl From<OciError> for BuildError {
    fn from(e: OciError) -> BuildError {
        BuildError::Oci(Box::new(e))
    }
}

/// `; a dependency of <file> ...`: where a package no rule declares can be declared.
fn dependency_hint(package: &str, dependency_of: Option<&Path>) -> String {
    match dependency_of {
        None => String::new(),
        Some(file) => format!(
            "; a dependency in {}: declare it there under [packages.{package}] with `paths`/`allow_setuid`, or exclude it",
            file.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::fetch::cache::CacheError;
    use crate::text::error_line;

    fn package(dependency_of: Option<&str>, source: PackageError) -> BuildError {
        BuildError::Package {
            package: "libx".into(),
            version: "1.0-1".into(),
            arch: Arch::Amd64,
            dependency_of: dependency_of.map(PathBuf::from),
            source: Box::new(source),
        }
    }

    #[test]
    fn a_package_error_names_the_package_then_what_the_deb_holds() {
        let setuid = || {
            PackageError::Deb(DebError::Entry {
                package: "libx".into(),
                path: "/usr/bin/su".into(),
                what: "is setuid/setgid (mode 4755)".into(),
            })
        };
        assert_eq!(
            error_line(&package(None, setuid())),
            "libx 1.0-1 (amd64): package libx: /usr/bin/su: is setuid/setgid (mode 4755)"
        );
        // A dependency no rule declares: where to declare it.
        assert_eq!(
            error_line(&package(Some("rules/base.toml"), setuid())),
            "libx 1.0-1 (amd64; a dependency in rules/base.toml: declare it there under [packages.libx] with `paths`/`allow_setuid`, or exclude it): package libx: /usr/bin/su: is setuid/setgid (mode 4755)"
        );
        let e = package(None, setuid());
        let source = std::error::Error::source(&e).unwrap();
        assert!(source.to_string().starts_with("package libx: "), "{source}");
    }

    #[test]
    fn a_cache_error_says_what_to_run() {
        let missing = CacheError::Read {
            path: "/c/sha256/ab".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let line = error_line(&package(None, missing.into()));
        assert!(
            line.starts_with(
                "libx 1.0-1 (amd64): its .deb is not in the cache; run `debless fetch`: cannot read /c/sha256/ab: "
            ),
            "{line}"
        );
        let damaged = CacheError::Mismatch {
            path: "/c/sha256/ab".into(),
            digest: Digest::of(b""),
            size: 3,
        };
        let e = package(None, damaged.into());
        assert!(matches!(
            &e,
            BuildError::Package { source, .. } if matches!(**source, PackageError::Damaged(_))
        ));
        assert!(
            error_line(&e).starts_with("libx 1.0-1 (amd64): the cached .deb does not match"),
            "{}",
            error_line(&e)
        );
    }
}
