//! `debless diff OLD.lock NEW.lock`: what a snapshot bump changes, per architecture, and
//! which images and variants it touches — what a release engineer reviews.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::arch::Arch;
use crate::archive::version;
use crate::snapshot::lock::{Lock, LockedPackage};

/// How one package changed on one architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum ChangeKind {
    /// New in NEW.
    Added {
        /// Its version.
        version: String,
    },
    /// Gone from NEW.
    Removed {
        /// Its old version.
        version: String,
    },
    /// A higher version in NEW.
    Upgraded {
        /// Old version.
        old: String,
        /// New version.
        new: String,
    },
    /// A lower version in NEW (a snapshot moved back, or a pin to an older date).
    Downgraded {
        /// Old version.
        old: String,
        /// New version.
        new: String,
    },
    /// Same version, different bytes (a rebuild under the same number: suspicious).
    Rebuilt {
        /// The version.
        version: String,
    },
}

/// One package's change on one architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Architecture.
    pub arch: Arch,
    /// Package name.
    pub name: String,
    /// Source package (from NEW when present).
    pub source: String,
    /// What changed.
    #[serde(flatten)]
    pub kind: ChangeKind,
    /// Rules (images and variants) whose closure contains it, in either lock.
    pub images: Vec<String>,
}

/// The whole difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockDiff {
    /// Distro.
    pub distro: String,
    /// OLD's snapshot timestamp.
    pub old_timestamp: String,
    /// NEW's snapshot timestamp.
    pub new_timestamp: String,
    /// Architectures only in OLD.
    pub arches_removed: Vec<Arch>,
    /// Architectures only in NEW.
    pub arches_added: Vec<Arch>,
    /// Package changes, by (arch, name).
    pub changes: Vec<Change>,
    /// Per image/variant, how many package changes reach it.
    pub affected: BTreeMap<String, usize>,
}

/// Two locks that cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the locks are for different distros ({old} and {new}); compare locks of one distro")]
pub struct DiffError {
    /// The old lock's distro.
    pub old: String,
    /// The new lock's distro.
    pub new: String,
}

/// Compare two locks of one distro.
pub fn diff(old: &Lock, new: &Lock) -> Result<LockDiff, DiffError> {
    if old.distro != new.distro {
        return Err(DiffError {
            old: old.distro.clone(),
            new: new.distro.clone(),
        });
    }
    let index = |l: &'_ Lock| -> BTreeMap<(Arch, String), LockedPackage> {
        l.packages
            .iter()
            .map(|p| ((p.arch, p.name.clone()), p.clone()))
            .collect()
    };
    let (o, n) = (index(old), index(new));
    let keys: BTreeSet<&(Arch, String)> = o.keys().chain(n.keys()).collect();
    let mut changes = Vec::new();
    for key in keys {
        let (a, b) = (o.get(key), n.get(key));
        let kind = match (a, b) {
            (None, Some(b)) => ChangeKind::Added {
                version: b.version.clone(),
            },
            (Some(a), None) => ChangeKind::Removed {
                version: a.version.clone(),
            },
            (Some(a), Some(b)) => match version::compare(&a.version, &b.version) {
                Ordering::Less => ChangeKind::Upgraded {
                    old: a.version.clone(),
                    new: b.version.clone(),
                },
                Ordering::Greater => ChangeKind::Downgraded {
                    old: a.version.clone(),
                    new: b.version.clone(),
                },
                Ordering::Equal if a.sha256 != b.sha256 => ChangeKind::Rebuilt {
                    version: b.version.clone(),
                },
                Ordering::Equal => continue,
            },
            (None, None) => continue,
        };
        let images: BTreeSet<String> = a
            .iter()
            .chain(b.iter())
            .flat_map(|p| p.rules.iter().cloned())
            .collect();
        changes.push(Change {
            arch: key.0,
            name: key.1.clone(),
            source: b.or(a).map(|p| p.source.clone()).unwrap_or_default(),
            kind,
            images: images.into_iter().collect(),
        });
    }
    let mut affected = BTreeMap::new();
    for c in &changes {
        for i in &c.images {
            *affected.entry(i.clone()).or_insert(0) += 1;
        }
    }
    let set = |l: &Lock| l.architectures.iter().cloned().collect::<BTreeSet<_>>();
    Ok(LockDiff {
        distro: new.distro.clone(),
        old_timestamp: old.timestamp.clone(),
        new_timestamp: new.timestamp.clone(),
        arches_removed: set(old).difference(&set(new)).cloned().collect(),
        arches_added: set(new).difference(&set(old)).cloned().collect(),
        changes,
        affected,
    })
}

fn describe(k: &ChangeKind) -> (&'static str, String) {
    match k {
        ChangeKind::Added { version } => ("added", version.clone()),
        ChangeKind::Removed { version } => ("removed", version.clone()),
        ChangeKind::Upgraded { old, new } => ("upgraded", format!("{old} -> {new}")),
        ChangeKind::Downgraded { old, new } => ("DOWNGRADED", format!("{old} -> {new}")),
        ChangeKind::Rebuilt { version } => {
            ("REBUILT", format!("{version} (same version, new bytes)"))
        }
    }
}

impl LockDiff {
    /// No package and no architecture changed (the timestamps may have): what `diff
    /// --exit-code` exits 0 for.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.arches_added.is_empty() && self.arches_removed.is_empty()
    }

    /// Plain text for a terminal: one block per architecture, aligned columns.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}: {} -> {}\n",
            self.distro, self.old_timestamp, self.new_timestamp
        );
        if self.is_empty() {
            s.push_str("no package changes\n");
            return s;
        }
        for a in &self.arches_added {
            let _ = writeln!(s, "architecture added: {a}");
        }
        for a in &self.arches_removed {
            let _ = writeln!(s, "architecture removed: {a}");
        }
        let width = self.changes.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut arch = None;
        for c in &self.changes {
            if Some(c.arch) != arch {
                arch = Some(c.arch);
                let _ = writeln!(s, "\n{}:", c.arch);
            }
            let (what, versions) = describe(&c.kind);
            let src = if c.source != c.name {
                format!(" [{}]", c.source)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  {:<width$}  {:<10} {versions}{src}  ({})",
                c.name,
                what,
                c.images.join(", ")
            );
        }
        s.push_str("\nimages affected: ");
        let list: Vec<String> = self
            .affected
            .iter()
            .map(|(i, n)| format!("{i} ({n})"))
            .collect();
        s.push_str(&list.join(", "));
        s.push('\n');
        s
    }

    /// Markdown for a pull-request comment.
    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "### `{}` snapshot {} → {}\n\n",
            self.distro, self.old_timestamp, self.new_timestamp
        );
        if self.changes.is_empty() {
            s.push_str("No package changes.\n");
            return s;
        }
        s.push_str(
            "| arch | package | change | version | source | images |\n|---|---|---|---|---|---|\n",
        );
        for c in &self.changes {
            let (what, versions) = describe(&c.kind);
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} | {} | {} |",
                c.arch,
                c.name,
                what,
                versions.replace("->", "→"),
                c.source,
                c.images.join(", ")
            );
        }
        s.push_str("\n**Images affected:** ");
        let list: Vec<String> = self
            .affected
            .iter()
            .map(|(i, n)| format!("`{i}` ({n})"))
            .collect();
        s.push_str(&list.join(", "));
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(name: &str, arch: &str, version: &str, sha: &str, rules: &[&str]) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            arch: arch.parse().unwrap(),
            version: version.into(),
            architecture: arch.into(),
            suite: "trixie".into(),
            vendor: None,
            source: format!("{name}-src"),
            source_version: version.into(),
            filename: format!("pool/main/x/{name}.deb"),
            size: 1,
            sha256: crate::digest::Digest::from_hex(&sha.repeat(64)).unwrap(),
            installed_size: 1,
            depends: vec![],
            rules: rules.iter().map(|r| r.to_string()).collect(),
        }
    }

    fn lock(ts: &str, packages: Vec<LockedPackage>) -> Lock {
        Lock {
            lock_version: 1,
            distro: "debian13".into(),
            timestamp: ts.into(),
            snapshot: None,
            merged_usr: true,
            architectures: vec![Arch::Amd64, Arch::Arm64],
            suites: vec![],
            vendors: vec![],
            packages,
            tarballs: vec![],
            excluded: vec![],
        }
    }

    #[test]
    fn classifies_every_kind_of_change_and_the_images_it_reaches() {
        let old = lock(
            "2026-11-01T00:00:00Z",
            vec![
                pkg("libc6", "amd64", "2.41-12", "a", &["base-nossl", "base"]),
                pkg("libssl3t64", "amd64", "3.5.1-1", "b", &["base"]),
                pkg("gone", "amd64", "1", "c", &["cc"]),
                pkg("tzdata", "arm64", "2025a-1", "d", &["static"]),
                pkg("same", "arm64", "1", "e", &["static"]),
            ],
        );
        let new = lock(
            "2026-11-20T00:00:00Z",
            vec![
                pkg(
                    "libc6",
                    "amd64",
                    "2.41-12+deb13u1",
                    "f",
                    &["base-nossl", "base"],
                ),
                pkg("libssl3t64", "amd64", "3.5.1-1", "0", &["base"]),
                pkg("newdep", "amd64", "2:1.0", "1", &["python3"]),
                pkg("tzdata", "arm64", "2024b-1", "2", &["static"]),
                pkg("same", "arm64", "1", "e", &["static"]),
            ],
        );
        let d = diff(&old, &new).unwrap();
        let kinds: Vec<(&str, &str)> = d
            .changes
            .iter()
            .map(|c| (c.name.as_str(), describe(&c.kind).0))
            .collect();
        assert_eq!(
            kinds,
            [
                ("gone", "removed"),
                ("libc6", "upgraded"),
                ("libssl3t64", "REBUILT"),
                ("newdep", "added"),
                ("tzdata", "DOWNGRADED"),
            ]
        );
        assert_eq!(d.affected["base"], 2);
        assert_eq!(d.affected["static"], 1);
        let text = d.to_text();
        assert!(
            text.contains(
                "libc6       upgraded   2.41-12 -> 2.41-12+deb13u1 [libc6-src]  (base, base-nossl)"
            ),
            "{text}"
        );
        assert!(text.contains("\narm64:\n"), "{text}");
        let md = d.to_markdown();
        assert!(
            md.contains("| amd64 | `newdep` | added | 2:1.0 | newdep-src | python3 |"),
            "{md}"
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["changes"][1]["change"], "upgraded");
        assert_eq!(json["changes"][1]["new"], "2.41-12+deb13u1");
    }

    #[test]
    fn identical_locks_have_no_changes_and_distros_must_match() {
        let l = lock("t", vec![pkg("a", "amd64", "1", "a", &["static"])]);
        let d = diff(&l, &l).unwrap();
        assert!(d.changes.is_empty());
        assert!(d.to_text().contains("no package changes"));
        let mut other = l.clone();
        other.distro = "debian12".into();
        assert!(
            diff(&l, &other)
                .unwrap_err()
                .to_string()
                .contains("different distros")
        );
    }
}
