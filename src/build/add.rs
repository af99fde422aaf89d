//! `[[add]]` and `--add`: host files, directories and tarballs read into a layer's
//! entries before anything is made, so their content is part of the layer cache's key.
//!
//! What reaches the layer depends only on the bytes and the declaration, never on the
//! machine: entries are sorted, owners are the declared numbers (default root), a file's
//! mode is the declared one or 0755/0644 by its execute bit (the host's umask, setuid and
//! group bits are dropped), directories are 0755, and every mtime becomes the layer's time
//! (see `walk`). A tarball is read by the same code as an upstream tarball's and a .deb's
//! data.tar: no `..` or absolute paths, no device nodes, no setuid file, symlinks that
//! stay inside it, a decompression bound from its size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::BuildError;
use super::plan::Plan;
use crate::deb::{
    DebError, ReadOptions, Relocation, Selection, max_tarball_bytes, merge_usr, read_tarball,
};
use crate::digest::Digest;
use crate::layer::{Entry, EntryKind, link_target_problem, path_problem};
use crate::rules::{AddAttrs, AddRule, Rule};

/// The origin prefix of added entries (`add:<src>`), which messages name.
pub(crate) const ADD_ORIGIN: &str = "add:";

/// What one rule's `[[add]]` entries (or the command line's) contribute.
#[derive(Debug, Clone)]
pub(crate) struct Added {
    /// The entries, in declaration order, each declaration's sorted by path.
    pub entries: Vec<Entry>,
    /// `sha256:<hex>` over every entry's path, kind, mode, owner and content: the layer
    /// cache's key line, so a changed host file makes the layer again.
    pub digest: String,
}

/// Why a host path could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// The declaration itself is wrong (owner, mode, dest).
    #[error("{0}")]
    Declaration(String),
    /// `src` does not exist.
    #[error("{} does not exist; build the program first, or fix src", path.display())]
    Missing {
        /// The host path.
        path: PathBuf,
    },
    /// `src` (or something under it) cannot be read.
    #[error("cannot read {} ({source})", path.display())]
    Read {
        /// The host path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A FIFO, socket or device node: not something an image layer carries.
    #[error("{} is a {what}; only regular files, directories and symlinks can be added", path.display())]
    Special {
        /// The host path.
        path: PathBuf,
        /// What it is.
        what: &'static str,
    },
    /// A host name that is not UTF-8 (image paths are text).
    #[error("{} has a name that is not UTF-8; rename it", path.display())]
    NotUtf8 {
        /// The host path.
        path: PathBuf,
    },
    /// A path or symlink target an image cannot hold.
    #[error("{} becomes {image}, which {what}", path.display())]
    BadPath {
        /// The host path.
        path: PathBuf,
        /// The image path.
        image: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// `extract` of a directory.
    #[error("{} is a directory; extract = true needs a tar archive (or drop extract)", path.display())]
    ExtractDir {
        /// The host path.
        path: PathBuf,
    },
    /// The tarball is unreadable, or holds what an image must not.
    #[error(transparent)]
    Tarball(#[from] DebError),
}

/// Read every `[[add]]` of the rules the plan's layers come from, once per rule.
pub(crate) fn read_all(
    plan: &Plan<'_>,
    merged_usr: bool,
) -> Result<BTreeMap<PathBuf, Added>, BuildError> {
    let mut out = BTreeMap::new();
    for lp in plan.layers.values() {
        let rule = lp.rule;
        if rule.add.is_empty() || out.contains_key(&rule.file) {
            continue;
        }
        out.insert(rule.file.clone(), read_rule(rule, merged_usr)?);
    }
    Ok(out)
}

/// Read one rule's `[[add]]` entries.
pub(crate) fn read_rule(rule: &Rule, merged_usr: bool) -> Result<Added, BuildError> {
    let mut entries = Vec::new();
    for a in &rule.add {
        let read = read_add(a, merged_usr).map_err(|source| BuildError::Add {
            file: rule.file.clone(),
            src: a.src.clone(),
            dest: a.dest.clone(),
            source: Box::new(source),
        })?;
        entries.extend(read);
    }
    let digest = digest(&entries);
    Ok(Added { entries, digest })
}

/// The entries one declaration adds.
pub(crate) fn read_add(a: &AddRule, merged_usr: bool) -> Result<Vec<Entry>, AddError> {
    let attrs = a.check().map_err(AddError::Declaration)?;
    let src = a.source();
    let origin = format!("{ADD_ORIGIN}{}", a.src);
    let meta = std::fs::metadata(&src).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => AddError::Missing { path: src.clone() },
        _ => AddError::Read {
            path: src.clone(),
            source,
        },
    })?;
    let mut entries = if a.extract {
        if meta.is_dir() {
            return Err(AddError::ExtractDir { path: src });
        }
        extract(&src, a, &origin, merged_usr)?
    } else {
        let mut out = Vec::new();
        walk(
            &src,
            a.dest_path().to_owned(),
            &origin,
            merged_usr,
            &mut out,
        )?;
        out
    };
    for e in &mut entries {
        own(e, attrs);
    }
    entries.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(entries)
}

/// Unpack a tarball into `dest` through the upstream tarball reader.
fn extract(
    src: &Path,
    a: &AddRule,
    origin: &str,
    merged_usr: bool,
) -> Result<Vec<Entry>, AddError> {
    let bytes = std::fs::read(src).map_err(|source| AddError::Read {
        path: src.to_owned(),
        source,
    })?;
    let sel = Selection::new(None, &[], &[], &[])?;
    let file = src
        .file_name()
        .map_or_else(|| a.src.clone(), |f| f.to_string_lossy().into_owned());
    let t = read_tarball(
        &bytes,
        origin,
        &file,
        &sel,
        &Relocation::new("", &a.dest),
        &ReadOptions {
            merged_usr,
            max_data_bytes: Some(max_tarball_bytes(bytes.len() as u64)),
        },
    )?;
    // The unpacked root is `dest` itself; the tree makes the directories above it.
    Ok(t.entries
        .into_iter()
        .filter(|e| !e.path.is_empty())
        .collect())
}

/// Add the host path `host` at image path `image` (relative), recursing into
/// directories in name order.
fn walk(
    host: &Path,
    image: String,
    origin: &str,
    merged_usr: bool,
    out: &mut Vec<Entry>,
) -> Result<(), AddError> {
    let image = if merged_usr { merge_usr(&image) } else { image };
    if let Some(what) = path_problem(&image) {
        return Err(AddError::BadPath {
            path: host.to_owned(),
            image: format!("/{image}"),
            what,
        });
    }
    let read_err = |source| AddError::Read {
        path: host.to_owned(),
        source,
    };
    // The top path is followed when it is a link (`src` names what to add); below it,
    // links stay links.
    let meta = if out.is_empty() {
        std::fs::metadata(host)
    } else {
        std::fs::symlink_metadata(host)
    }
    .map_err(read_err)?;
    let ft = meta.file_type();
    let entry = |kind: EntryKind, mode: u32| Entry {
        path: image.clone(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        mtime: 0,
        origin: origin.to_owned(),
    };
    if ft.is_file() {
        let data = std::fs::read(host).map_err(read_err)?;
        use std::os::unix::fs::PermissionsExt;
        let mode = if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        };
        out.push(entry(
            EntryKind::File {
                data: Arc::new(data),
                link_group: None,
            },
            mode,
        ));
    } else if ft.is_symlink() {
        let target = std::fs::read_link(host).map_err(read_err)?;
        let target = target.to_str().ok_or_else(|| AddError::NotUtf8 {
            path: host.to_owned(),
        })?;
        if let Some(what) = link_target_problem(&image, target) {
            return Err(AddError::BadPath {
                path: host.to_owned(),
                image: format!("/{image} -> {target}"),
                what,
            });
        }
        out.push(entry(
            EntryKind::Symlink {
                target: target.to_owned(),
            },
            0o777,
        ));
    } else if ft.is_dir() {
        out.push(entry(EntryKind::Dir, 0o755));
        let mut names = Vec::new();
        for e in std::fs::read_dir(host).map_err(read_err)? {
            names.push(e.map_err(read_err)?.file_name());
        }
        // Byte order of the names: the same on every machine and filesystem.
        names.sort();
        for name in names {
            let path = host.join(&name);
            let name = name
                .to_str()
                .ok_or_else(|| AddError::NotUtf8 { path: path.clone() })?;
            walk(&path, format!("{image}/{name}"), origin, merged_usr, out)?;
        }
    } else {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_fifo() {
            "FIFO"
        } else if ft.is_socket() {
            "socket"
        } else {
            "device node"
        };
        return Err(AddError::Special {
            path: host.to_owned(),
            what,
        });
    }
    Ok(())
}

/// Give an entry the declared owner, and a regular file the declared mode.
fn own(e: &mut Entry, attrs: AddAttrs) {
    e.uid = attrs.uid;
    e.gid = attrs.gid;
    if let (Some(mode), EntryKind::File { .. }) = (attrs.mode, &e.kind) {
        e.mode = mode;
    }
}

/// The digest of what entries put into a layer (not their mtimes: those are the layer's).
fn digest(entries: &[Entry]) -> String {
    let mut lines = String::new();
    for e in entries {
        let what = match &e.kind {
            EntryKind::Dir => "dir".to_owned(),
            EntryKind::File { data, link_group } => format!(
                "file {} {}",
                Digest::of(data),
                link_group.as_deref().unwrap_or("-")
            ),
            EntryKind::Symlink { target } => format!("symlink {target:?}"),
        };
        lines.push_str(&format!(
            "{:?} {what} {:o} {} {}\n",
            e.path, e.mode, e.uid, e.gid
        ));
    }
    Digest::of(lines.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn add(src: &Path, dest: &str, owner: Option<&str>, mode: Option<&str>) -> AddRule {
        AddRule {
            src: src.display().to_string(),
            dest: dest.to_owned(),
            owner: owner.map(str::to_owned),
            mode: mode.map(str::to_owned),
            ..AddRule::default()
        }
    }

    #[test]
    fn a_directory_is_added_sorted_with_declared_owner_and_normalised_modes() {
        let d = tempfile::tempdir().unwrap();
        let app = d.path().join("app");
        std::fs::create_dir_all(app.join("lib")).unwrap();
        std::fs::write(app.join("run"), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(app.join("run"), std::fs::Permissions::from_mode(0o4775)).unwrap();
        std::fs::write(app.join("lib/b.py"), b"b").unwrap();
        std::fs::write(app.join("lib/a.py"), b"a").unwrap();
        std::fs::set_permissions(app.join("lib/a.py"), std::fs::Permissions::from_mode(0o664))
            .unwrap();
        std::os::unix::fs::symlink("lib/a.py", app.join("main.py")).unwrap();
        let e = read_add(&add(&app, "/srv/app", Some("65532:65533"), None), true).unwrap();
        let got: Vec<(&str, u32)> = e.iter().map(|e| (e.path.as_str(), e.mode)).collect();
        // Byte order, the host's umask and setuid bit gone.
        assert_eq!(
            got,
            [
                ("srv/app", 0o755),
                ("srv/app/lib", 0o755),
                ("srv/app/lib/a.py", 0o644),
                ("srv/app/lib/b.py", 0o644),
                ("srv/app/main.py", 0o777),
                ("srv/app/run", 0o755),
            ]
        );
        assert!(e.iter().all(|e| e.uid == 65532 && e.gid == 65533));
        assert!(matches!(&e[4].kind, EntryKind::Symlink { target } if target == "lib/a.py"));
        let declared = read_add(&add(&app, "/srv/app", None, Some("0600")), true).unwrap();
        assert_eq!(declared[2].mode, 0o600);
        assert_eq!(declared[1].mode, 0o755, "directories keep 0755");

        // The same content elsewhere digests the same; one changed byte does not.
        let again = digest(&read_add(&add(&app, "/srv/app", None, None), true).unwrap());
        assert_eq!(
            again,
            digest(&read_add(&add(&app, "/srv/app", None, None), true).unwrap())
        );
        std::fs::write(app.join("lib/b.py"), b"c").unwrap();
        assert_ne!(
            again,
            digest(&read_add(&add(&app, "/srv/app", None, None), true).unwrap())
        );
    }

    #[test]
    fn what_cannot_be_added_is_named() {
        let d = tempfile::tempdir().unwrap();
        let e = read_add(&add(&d.path().join("nope"), "/app/x", None, None), true).unwrap_err();
        assert!(
            matches!(e, AddError::Missing { .. }) && e.to_string().contains("nope"),
            "{e}"
        );
        std::os::unix::fs::symlink("../../../etc/shadow", d.path().join("up")).unwrap();
        let e = read_add(&add(d.path(), "/x", None, None), true).unwrap_err();
        assert!(e.to_string().contains("points above the image root"), "{e}");
        let e = read_add(
            &AddRule {
                extract: true,
                ..add(d.path(), "/x", None, None)
            },
            true,
        )
        .unwrap_err();
        assert!(matches!(e, AddError::ExtractDir { .. }), "{e}");
    }

    #[test]
    fn a_hostile_tarball_is_refused_by_the_deb_readers_checks() {
        use crate::deb::testdeb::{Raw, compress, raw_tar};
        let d = tempfile::tempdir().unwrap();
        let tar = d.path().join("app.tar.gz");
        let extract = |bytes: &[u8]| {
            std::fs::write(&tar, bytes).unwrap();
            read_add(
                &AddRule {
                    extract: true,
                    ..add(&tar, "/srv", Some("1:1"), None)
                },
                true,
            )
        };
        let good = raw_tar(&[Raw::dir("www/"), Raw::file("www/index.html", b"hi")]);
        let e = extract(&compress("gz", &good)).unwrap();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["srv/www", "srv/www/index.html"]);
        assert!(e.iter().all(|e| e.uid == 1));
        let evil = raw_tar(&[Raw::file("../../etc/cron.d/x", b"x")]);
        let err = extract(&compress("gz", &evil)).unwrap_err().to_string();
        assert!(err.contains("has a `..` component"), "{err}");
        let suid = raw_tar(&[Raw {
            mode: 0o4755,
            ..Raw::file("bin/x", b"x")
        }]);
        let err = extract(&suid).unwrap_err().to_string();
        assert!(err.contains("setuid"), "{err}");
    }
}
