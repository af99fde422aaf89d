//! Reading a .deb: ar, control.tar, data.tar; selecting declared files while streaming.
//! An upstream release tarball goes through the same tar entry checks and selection
//! (`read::tarball`), its top directory relocated under the rule's prefix.
//!
//! `read` turns one package's bytes into selected [`Entry`](crate::layer::Entry) values,
//! `select` decides which paths a rule wants, and `tree` merges the entries of many packages
//! into layers that cannot silently overwrite each other.

// Our own ar reader, hand-written for hostile input; the `ar` crate is a test-only writer.
mod ar;
mod paths;
pub mod read;
pub mod select;
pub mod tree;

#[cfg(any(test, feature = "test-support"))]
pub mod testdeb;

pub(crate) use paths::merge_usr;
pub use read::tarball::{Relocation, Tarball, max_tarball_bytes, read_tarball};
pub use read::{Deb, ReadOptions, max_data_bytes, read_deb};
pub use select::Selection;
pub use tree::{MergedLinks, Tree};

/// Why a package could not be read, selected from or merged into an image.
#[derive(Debug, thiserror::Error)]
pub enum DebError {
    /// A glob in a rule's `paths`, exclude, keep or `allow_setuid` list is unusable.
    #[error("pattern {pattern:?} in `{list}`: {what}")]
    Pattern {
        /// Which list the pattern came from (`paths`, `exclude`, `keep`, `allow_setuid`).
        list: &'static str,
        /// The pattern as written.
        pattern: String,
        /// What is wrong and how to write it instead.
        what: String,
    },
    /// The bytes are not a readable .deb (or tarball): bad ar, bad compression stream,
    /// truncated tar.
    #[error("{}: {what}; {}", describe(package), damaged(package))]
    Corrupt {
        /// The package being read (`tarball:<name>` for an upstream tarball).
        package: String,
        /// What could not be read.
        what: String,
    },
    /// A well-formed .deb in a format debless does not read (compression, format version).
    #[error("{}: {what}", describe(package))]
    Unsupported {
        /// The package being read (`tarball:<name>` for an upstream tarball).
        package: String,
        /// What is unsupported and what debless does read.
        what: String,
    },
    /// An entry that must not reach an image: unsafe path, device node, escaping symlink,
    /// unknown hard-link target or an unapproved setuid/setgid file.
    #[error("{}: {path}: {what}", describe(package))]
    Entry {
        /// The package being read (`tarball:<name>` for an upstream tarball).
        package: String,
        /// The path as the package ships it (with a leading `/`).
        path: String,
        /// What is wrong and what to do.
        what: String,
    },
    /// control.tar or data.tar decompresses to more than the package's Installed-Size allows
    /// (a tarball, more than its size allows).
    #[error(
        "{}: {member} decompresses to more than {limit} bytes, {}; debless stopped reading it (a decompression bomb{}); leave the package out or pin another version",
        describe(package),
        if is_tarball(package) { "far beyond its compressed size" } else { "far beyond its Installed-Size" },
        if is_tarball(package) { "" } else { " or a lying Packages index" }
    )]
    TooLarge {
        /// The package being read (`tarball:<name>` for an upstream tarball).
        package: String,
        /// The ar member (`data.tar.xz`).
        member: String,
        /// The bound, in decompressed bytes.
        limit: u64,
    },
    /// What a package's entries hold once read (files, links, the directories their paths
    /// imply) goes beyond the bound its Installed-Size allows.
    #[error(
        "package {package}: {member} would put more than {limit} bytes into the image (its files, links and the parent directories its paths imply), far beyond its Installed-Size; debless stopped reading it (entries built to expand, or a lying Packages index); leave the package out or pin another version"
    )]
    Expands {
        /// The package being read.
        package: String,
        /// The ar member (`data.tar.xz`).
        member: String,
        /// The bound, in bytes.
        limit: u64,
    },
    /// Two contributors put different objects at one image path.
    #[error(
        "{path} is shipped differently by {first} and {second}; leave it out of one of them (`paths` or the exclude list)"
    )]
    Conflict {
        /// The image path (with a leading `/`).
        path: String,
        /// The contributor that came first (lower layer, or earlier in the layer).
        first: String,
        /// The contributor that came second.
        second: String,
    },
    /// An entry's parent path is a symlink or a file, so the entry would land elsewhere.
    #[error(
        "{origin} writes {path} through the {parent_kind} {parent} from {parent_origin}; select the path under its real location or drop one of them"
    )]
    ThroughNonDir {
        /// The entry's image path.
        path: String,
        /// Who contributed the entry.
        origin: String,
        /// The ancestor that is not a directory.
        parent: String,
        /// `symlink` or `file`.
        parent_kind: &'static str,
        /// Who contributed the ancestor.
        parent_origin: String,
    },
    /// With merged /usr, nothing may live under `/bin`, `/lib`, ...: they are symlinks.
    #[error(
        "{origin} would put {what} under the merged-/usr path /{top} ({path}); with merged /usr it belongs under /usr/{top}"
    )]
    UnderMergedDir {
        /// The offending image path.
        path: String,
        /// Who contributed it.
        origin: String,
        /// `a real file`, `a directory` or `a symlink`.
        what: &'static str,
        /// The merged top-level name (`lib`).
        top: &'static str,
    },
    /// With merged /usr, `/bin`, `/lib`, ... themselves may only be symlinks into `/usr`.
    #[error(
        "{origin} would put {what} at the merged-/usr path /{top}; with merged /usr it may only be the symlink {top} -> usr/{top}"
    )]
    MergedDirNotLink {
        /// Who contributed it.
        origin: String,
        /// What it would put there (`a directory`, `a symlink to x`).
        what: String,
        /// The merged top-level name (`lib`).
        top: &'static str,
    },
    /// An entry handed to the tree has a path that is not normalised (a debless bug).
    #[error(
        "{origin} produced the malformed path {path:?}; this is a bug in debless, please report it"
    )]
    BadPath {
        /// The path as given.
        path: String,
        /// Who contributed it.
        origin: String,
    },
}

/// The origin prefix of an upstream tarball's entries (`tarball:node`).
pub const TARBALL_ORIGIN: &str = "tarball:";

/// How an origin reads in a message: `package foo`, `tarball node` or `generator passwd`.
fn describe(origin: &str) -> String {
    if let Some(feature) = origin.strip_prefix("generated:") {
        return format!("generator {feature}");
    }
    if let Some(name) = origin.strip_prefix(TARBALL_ORIGIN) {
        return format!("tarball {name}");
    }
    if let Some(src) = origin.strip_prefix("add:") {
        return format!("added {src}");
    }
    if origin == "implied" {
        return "an implied parent directory".to_string();
    }
    format!("package {origin}")
}

fn is_tarball(origin: &str) -> bool {
    origin.starts_with(TARBALL_ORIGIN)
}

/// What to do about a damaged .deb or tarball.
fn damaged(origin: &str) -> &'static str {
    if is_tarball(origin) {
        "the tarball is damaged: it matched its pinned sha256, so it was published (and pinned) so; pin another version"
    } else {
        "the .deb is damaged: if it matches its pinned sha256 the archive published it so, pin a snapshot with a fixed version; otherwise re-fetch it with `debless fetch --verify`"
    }
}
