//! Running a layer's generators: what its rule's `[generate]` asks for, plus what lower
//! levels switched on for every level above them (dpkg status, ld.so.cache).

use std::collections::BTreeSet;

use super::plan::LayerPlan;
use super::read::PackageRead;
use crate::deb::Tree;
use crate::generate::{GenError, system};
use crate::layer::{Entry, EntryKind};
use crate::snapshot::lock::Lock;

/// Generators a lower level switched on for every level above it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Inherited {
    dpkg_status: bool,
    ld_cache: bool,
}

/// What a layer's generators can see.
pub(crate) struct LayerInput<'a> {
    pub plan: &'a LayerPlan<'a>,
    pub lock: &'a Lock,
    /// The layers below.
    pub lower: &'a Tree,
    /// This layer's packages as read.
    pub packages: &'a [PackageRead<'a>],
    pub mtime: u64,
}

impl LayerInput<'_> {
    /// The entry at `path` as the image will have it: this layer's candidate, else lower.
    fn find<'e>(&'e self, candidates: &'e [Entry], path: &str) -> Option<&'e Entry> {
        candidates
            .iter()
            .rev()
            .find(|e| e.path == path)
            .or_else(|| self.lower.get(path))
    }
}

/// Add this layer's generated files to `candidates` (replacing package files at the same
/// paths) and say what stays on for the levels above.
pub(crate) fn run(
    input: &LayerInput<'_>,
    inherited: Inherited,
    candidates: &mut Vec<Entry>,
) -> Result<Inherited, GenError> {
    let g = &input.plan.rule.generate;
    let mtime = input.mtime;
    let on = Inherited {
        dpkg_status: inherited.dpkg_status || g.dpkg_status.is_some(),
        ld_cache: inherited.ld_cache || g.ld_cache.is_some(),
    };
    let mut generated: Vec<Entry> = Vec::new();

    if let Some(spec) = &g.busybox {
        let pos = candidates
            .iter()
            .position(|e| {
                (e.path == "usr/bin/busybox" || e.path == "bin/busybox")
                    && matches!(e.kind, EntryKind::File { .. })
            })
            .ok_or_else(|| GenError {
                generator: "busybox",
                what: "this layer ships no /usr/bin/busybox or /bin/busybox; add busybox-static to the rule".into(),
            })?;
        // The binary moves: the image has it once, under the applet directory.
        let binary = candidates.remove(pos);
        generated.extend(system::busybox(spec, &binary, mtime)?);
    }
    if let Some(spec) = &g.users {
        generated.extend(system::users(spec, mtime)?);
    }
    generated.extend(system::files(&g.files, mtime)?);
    // Alternatives point into per-architecture directories (/usr/lib/jvm/...-{arch}/).
    let arch = input.plan.key.arch();
    let links: std::collections::BTreeMap<String, String> = g
        .symlinks
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("{arch}", arch.name())))
        .collect();
    generated.extend(system::symlinks(&links, mtime)?);
    if let Some(spec) = &g.os_release {
        let original = match input.find(candidates, "usr/lib/os-release") {
            Some(Entry {
                kind: EntryKind::File { data, .. },
                ..
            }) => data.clone(),
            _ => {
                return Err(GenError {
                    generator: "os-release",
                    what: "no /usr/lib/os-release below or in this layer (base-files ships it)"
                        .into(),
                });
            }
        };
        generated.push(system::os_release(spec, &original, mtime)?);
    }
    super::generators_certs::run(input, candidates, &mut generated)?;
    if on.dpkg_status {
        let still_there: BTreeSet<&str> = candidates.iter().map(|e| e.path.as_str()).collect();
        let merged = input.lock.merged_usr;
        for PackageRead { locked, deb } in input.packages {
            let rename = |p: &str| image_path(p, merged);
            // A package a parent level ships too (this level adds paths of it): the status
            // entry's md5sums lists its files in both layers.
            let below: Vec<String> = deb
                .md5sums
                .iter()
                .flat_map(|s| s.lines())
                .filter_map(|l| l.split_once("  "))
                .map(|(_, p)| rename(p.trim()))
                .filter(|p| {
                    input
                        .lower
                        .get(p)
                        .is_some_and(|e| !e.is_dir() && e.origin == locked.name)
                })
                .collect();
            // What is still in the layer: a generator may have consumed files (the CA
            // bundle drops the certificates it was made from).
            let shipped: BTreeSet<&str> = deb
                .entries
                .iter()
                .filter(|e| !e.is_dir() && still_there.contains(e.path.as_str()))
                .map(|e| e.path.as_str())
                .chain(below.iter().map(String::as_str))
                .collect();
            generated.extend(system::dpkg_status(
                &locked.name,
                &deb.control,
                deb.md5sums.as_deref(),
                &shipped,
                &rename,
                mtime,
            ));
        }
    }
    // Generated files replace what a package put at the same path in this layer.
    let paths: BTreeSet<String> = generated.iter().map(|e| e.path.clone()).collect();
    candidates.retain(|e| !paths.contains(&e.path));
    candidates.extend(generated);
    if on.ld_cache {
        super::generators_certs::ld_cache(input, candidates)?;
    }
    Ok(on)
}

/// Where a path from a package's md5sums ends up in the image (the reader's rewrite).
pub(crate) fn image_path(p: &str, merged_usr: bool) -> String {
    let p = p.trim_start_matches("./").trim_start_matches('/');
    if merged_usr {
        crate::deb::merge_usr(p)
    } else {
        p.to_owned()
    }
}
