//! SPDX documents for what the build wrote: per image and platform, the Debian packages
//! of its layers with the files each actually ships, and one per multi-arch index.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::layer_cache::BuiltLayer;
use super::plan::{LayerKey, LayerPlan};
use super::read::PackageRead;
use crate::deb822;
use crate::digest::Digest;
use crate::layer::{Entry, EntryKind};
use crate::sbom::{SbomFile, SbomImage, SbomPackage};
use crate::snapshot::lock::Lock;

/// Each package of a layer just assembled as the SBOM lists it: its lock fields, its
/// control fields, its licence text, and the regular files the layer ships from it
/// (hashed in parallel).
pub(crate) fn layer_packages(
    lp: &LayerPlan<'_>,
    reads: &[PackageRead<'_>],
    entries: &[Entry],
) -> BTreeMap<String, SbomPackage> {
    let hashed: Vec<(&str, SbomFile)> = entries
        .par_iter()
        .filter_map(|e| match &e.kind {
            EntryKind::File { data, .. } => {
                Some((e.origin.as_str(), SbomFile::new(&e.abs_path(), data)))
            }
            _ => None,
        })
        .collect();
    let mut files: BTreeMap<&str, Vec<SbomFile>> = BTreeMap::new();
    for (origin, f) in hashed {
        files.entry(origin).or_default().push(f);
    }
    let mut out = BTreeMap::new();
    for p in &lp.packages {
        let l = p.locked;
        let name = l.name.as_str();
        let read = reads.iter().find(|r| r.locked.name == name).map(|r| &r.deb);
        let control = read.map(|r| r.control.as_str()).unwrap_or_default();
        // The licence text as the package ships it, even where the image keeps it.
        let copyright_path = format!("usr/share/doc/{name}/copyright");
        let copyright = read
            .and_then(|r| r.entries.iter().find(|e| e.path == copyright_path))
            .and_then(|e| match &e.kind {
                EntryKind::File { data, .. } => String::from_utf8(data.to_vec()).ok(),
                _ => None,
            });
        out.insert(
            name.to_owned(),
            SbomPackage {
                name: l.name.clone(),
                version: l.version.clone(),
                arch: l.architecture.clone(),
                source: l.source.clone(),
                source_version: l.source_version.clone(),
                deb_sha256: l.sha256,
                download_url: None,
                maintainer: field(control, "Maintainer"),
                homepage: field(control, "Homepage"),
                description: field(control, "Description"),
                copyright,
                files: files.remove(name).unwrap_or_default(),
            },
        );
    }
    out
}

/// The first line of a control field (for `Description`, the synopsis), if not empty.
fn field(control: &str, name: &str) -> Option<String> {
    let stanza = deb822::paragraphs(control).next()?.ok()?;
    let first = stanza.get(name)?.lines().next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

/// What a build knows that an SBOM draws on.
pub(crate) struct Sources<'a> {
    pub lock: &'a Lock,
    pub layers: &'a BTreeMap<LayerKey, BuiltLayer>,
}

/// The SBOM input for one image (the layers of one tag on one architecture).
pub(crate) fn image_input(
    name: &str,
    digest: &Digest,
    created: &str,
    layers: &[LayerKey],
    src: &Sources<'_>,
) -> SbomImage {
    let lock = src.lock;
    let mut packages: Vec<SbomPackage> = Vec::new();
    for p in layers.iter().flat_map(|k| src.layers[k].packages.values()) {
        // A package two levels take files from (a child adding paths) is one package.
        match packages.iter_mut().find(|q| q.name == p.name) {
            Some(q) => {
                q.files.extend(p.files.iter().cloned());
                if q.copyright.is_none() {
                    q.copyright.clone_from(&p.copyright);
                }
            }
            None => packages.push(p.clone()),
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
        digest: *digest,
        created: created.to_owned(),
        distro_id: id,
        distro_version: version,
        packages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_their_first_line() {
        let control = "Package: tzdata\nMaintainer: GNU Libc Maintainers <x@y>\nHomepage:\nDescription: time zone data\n This package contains data.\n .\n More.\n";
        assert_eq!(
            field(control, "Description").as_deref(),
            Some("time zone data")
        );
        assert_eq!(
            field(control, "Maintainer").as_deref(),
            Some("GNU Libc Maintainers <x@y>")
        );
        assert_eq!(field(control, "Homepage"), None);
        assert_eq!(field(control, "Source"), None);
    }
}
