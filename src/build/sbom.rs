//! SPDX documents for what the build wrote: per image and platform, the Debian packages
//! of its layers with the files each actually ships, and one per multi-arch index.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::PkgRead;
use super::ReadKey;
use super::plan::{LayerKey, Plan};
use crate::layer::{Entry, EntryKind};
use crate::sbom::{SbomFile, SbomImage, SbomPackage};
use crate::snapshot::lock::Lock;

/// Each layer's regular files with their hashes, by package (origin), hashed once.
pub(crate) type LayerFiles = BTreeMap<LayerKey, BTreeMap<String, Vec<SbomFile>>>;

/// Hash every layer's files once, in parallel.
pub(crate) fn layer_files(layers: &BTreeMap<LayerKey, Vec<Entry>>) -> LayerFiles {
    let keys: Vec<&LayerKey> = layers.keys().collect();
    let hashed: Vec<BTreeMap<String, Vec<SbomFile>>> = keys
        .par_iter()
        .map(|k| {
            let mut by_origin: BTreeMap<String, Vec<SbomFile>> = BTreeMap::new();
            for e in &layers[*k] {
                if let EntryKind::File { data, .. } = &e.kind {
                    by_origin
                        .entry(e.origin.clone())
                        .or_default()
                        .push(SbomFile::new(&e.abs_path(), data));
                }
            }
            by_origin
        })
        .collect();
    keys.into_iter().cloned().zip(hashed).collect()
}

fn field(control: &str, name: &str) -> Option<String> {
    let prefix = format!("{name}:");
    control
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// What a build knows that an SBOM draws on.
pub(crate) struct Sources<'a> {
    pub lock: &'a Lock,
    pub plan: &'a Plan<'a>,
    pub files: &'a LayerFiles,
    pub reads: &'a BTreeMap<ReadKey, PkgRead>,
}

/// The SBOM input for one image (the layers of one tag on one architecture).
pub(crate) fn image_input(
    name: &str,
    digest: &str,
    created: &str,
    layers: &[LayerKey],
    src: &Sources<'_>,
) -> SbomImage {
    let (lock, plan, files, reads) = (src.lock, src.plan, src.files, src.reads);
    let mut packages = Vec::new();
    for k in layers {
        let lp = &plan.layers[k];
        for p in &lp.packages {
            let l = p.locked;
            let key = (
                l.arch.clone(),
                l.name.clone(),
                p.declared.map(|(r, _)| r.name.clone()),
            );
            let read = reads.get(&key);
            let control = read.map(|r| r.control.as_str()).unwrap_or_default();
            // The licence text as the package ships it, even where the image keeps it.
            let copyright_path = format!("usr/share/doc/{}/copyright", l.name);
            let copyright = read
                .and_then(|r| r.entries.iter().find(|e| e.path == copyright_path))
                .and_then(|e| match &e.kind {
                    EntryKind::File { data, .. } => String::from_utf8(data.to_vec()).ok(),
                    _ => None,
                });
            let shipped = files
                .get(k)
                .and_then(|by| by.get(&l.name))
                .cloned()
                .unwrap_or_default();
            packages.push(SbomPackage {
                name: l.name.clone(),
                version: l.version.clone(),
                arch: l.architecture.clone(),
                source: l.source.clone(),
                source_version: l.source_version.clone(),
                deb_sha256: l.sha256.clone(),
                download_url: None,
                maintainer: field(control, "Maintainer"),
                homepage: field(control, "Homepage"),
                description: field(control, "Description"),
                copyright,
                files: shipped,
            });
        }
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let version: String = lock.distro.chars().filter(|c| c.is_ascii_digit()).collect();
    let id: String = lock
        .distro
        .chars()
        .take_while(|c| !c.is_ascii_digit())
        .collect();
    SbomImage {
        name: name.to_owned(),
        digest: digest.to_owned(),
        created: created.to_owned(),
        distro_id: id,
        distro_version: version,
        packages,
    }
}
