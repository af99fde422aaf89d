//! `--check`: two builds with different thread counts must agree on every layer, SPDX
//! document and manifest; a difference names the first differing layer and file. The
//! same description of a layer's entries, read back from a blob, tells a rebuild from the
//! image it should have reproduced ([`blob_listing`], [`first_difference`]).

use std::collections::BTreeMap;
use std::io::Read;

use super::BuildError;
use super::plan::LayerKey;
use super::walk::Built;
use crate::digest::Digest;
use crate::layer::{Entry, EntryKind};

/// Per layer made, (path, fingerprint) of every entry, in the layer's order.
pub(super) type Listings = BTreeMap<LayerKey, Vec<(String, String)>>;

/// A stable description of every entry's content and metadata: (path, the rest), in the
/// entries' order. Each file buffer is hashed once, however many hard links share it.
pub(super) fn fingerprint_all(entries: &[Entry]) -> Vec<(String, String)> {
    use rayon::prelude::*;
    use std::sync::Arc;
    let mut buffers: BTreeMap<usize, &[u8]> = BTreeMap::new();
    for e in entries {
        if let EntryKind::File { data, .. } = &e.kind {
            buffers.insert(Arc::as_ptr(data) as usize, data);
        }
    }
    let sums: BTreeMap<usize, Digest> = buffers
        .into_par_iter()
        .map(|(at, data)| (at, Digest::of(data)))
        .collect();
    entries
        .iter()
        .map(|e| {
            let what = match &e.kind {
                EntryKind::Dir => "dir".to_owned(),
                EntryKind::File { data, link_group } => format!(
                    "file sha256:{} link:{}",
                    sums[&(Arc::as_ptr(data) as usize)].hex(),
                    link_group.as_deref().unwrap_or("-")
                ),
                EntryKind::Symlink { target } => format!("symlink {target}"),
            };
            (
                e.path.clone(),
                format!(
                    "{what} mode:{:o} owner:{}:{} mtime:{}",
                    e.mode, e.uid, e.gid, e.mtime
                ),
            )
        })
        .collect()
}

/// Where two listings of one layer first part: the first differing entry (`first differing
/// file: /path (a vs b)`), else that one has more entries, else that the entries agree and
/// the tar or compressor output differs.
pub(super) fn first_difference(ea: &[(String, String)], eb: &[(String, String)]) -> String {
    ea.iter()
        .zip(eb.iter())
        .find(|(x, y)| x != y)
        .map(|(x, y)| {
            if x.0 == y.0 {
                format!("first differing file: /{} ({} vs {})", x.0, x.1, y.1)
            } else {
                format!(
                    "first differing file: /{} ({}) vs /{} ({})",
                    x.0, x.1, y.0, y.1
                )
            }
        })
        .unwrap_or_else(|| {
            if ea.len() != eb.len() {
                format!("entry counts differ: {} vs {}", ea.len(), eb.len())
            } else {
                "the entries agree, so the tar or compressor output differs".to_owned()
            }
        })
}

/// A layer blob's entries described as [`fingerprint`] describes them (a hard link as
/// `hardlink <target>`), read through the decompressor its media type names.
pub(super) fn blob_listing(
    blob: impl Read,
    media_type: &str,
) -> std::io::Result<Vec<(String, String)>> {
    let reader: Box<dyn Read + '_> = if media_type.ends_with("+gzip") {
        Box::new(flate2::read::GzDecoder::new(blob))
    } else if media_type.ends_with("+zstd") {
        Box::new(zstd::stream::read::Decoder::new(blob)?)
    } else {
        Box::new(blob)
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        let header = entry.header();
        let (mode, uid, gid, mtime) = (
            header.mode()?,
            header.uid()?,
            header.gid()?,
            header.mtime()?,
        );
        let kind = header.entry_type();
        let link = entry
            .link_name()?
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        let what = if kind.is_dir() {
            "dir".to_owned()
        } else if kind.is_symlink() {
            format!("symlink {link}")
        } else if kind.is_hard_link() {
            format!("hardlink {link}")
        } else {
            let mut hasher = crate::digest::Hasher::new();
            std::io::copy(&mut entry, &mut hasher)?;
            format!("file sha256:{} link:-", hasher.finish().hex())
        };
        out.push((
            path,
            format!("{what} mode:{mode:o} owner:{uid}:{gid} mtime:{mtime}"),
        ));
    }
    Ok(out)
}

/// The two builds (made with `ta` and `tb` threads) must agree on every layer and manifest.
pub(super) fn compare(a: &Built, b: &Built, ta: usize, tb: usize) -> Result<(), BuildError> {
    for (k, la) in &a.layers {
        let Some(lb) = b.layers.get(k) else {
            return Err(BuildError::NotReproducible(format!(
                "{k} exists only in the {ta}-thread build"
            )));
        };
        let (la, lb) = (&la.info, &lb.info);
        if la.digest != lb.digest || la.diff_id != lb.diff_id {
            let first = first_difference(&a.listings[k], &b.listings[k]);
            return Err(BuildError::NotReproducible(format!(
                "not reproducible: {k} is {} with {ta} threads but {} with {tb}; {first}",
                la.digest, lb.digest
            )));
        }
    }
    for (repo, docs) in &a.images.sboms {
        let other = b.images.sboms.get(repo);
        for doc in docs {
            if !other.is_some_and(|o| o.contains(doc)) {
                return Err(BuildError::NotReproducible(format!(
                    "not reproducible: the SPDX document {repo}.spdx/{} differs between {ta} and {tb} threads",
                    doc.name
                )));
            }
        }
    }
    for (repo, docs) in &a.images.provenance {
        let other = b.images.provenance.get(repo);
        for doc in docs {
            if !other.is_some_and(|o| o.contains(doc)) {
                return Err(BuildError::NotReproducible(format!(
                    "not reproducible: the provenance {repo}.provenance/{} differs between {ta} and {tb} threads",
                    doc.name
                )));
            }
        }
    }
    for (x, y) in a.images.tags.iter().zip(&b.images.tags) {
        if x.digest != y.digest {
            return Err(BuildError::NotReproducible(format!(
                "not reproducible: {}:{}-{} manifest is {} with {ta} threads but {} with {tb} (its layers agree: the config or manifest differs)",
                x.image, x.tag, x.arch, x.digest, y.digest
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::build::images::Images;
    use crate::build::layer_cache::BuiltLayer;
    use crate::layer::{Compression, LayerInfo, write_layer};
    use std::sync::Arc;

    fn built(content: &[u8]) -> Built {
        let entries = vec![
            Entry::dir("etc", 0, "t"),
            Entry {
                path: "etc/a".into(),
                kind: EntryKind::File {
                    data: Arc::new(b"same".to_vec()),
                    link_group: None,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                origin: "t".into(),
            },
            Entry {
                path: "etc/b".into(),
                kind: EntryKind::File {
                    data: Arc::new(content.to_vec()),
                    link_group: None,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 0,
                origin: "t".into(),
            },
        ];
        let key = LayerKey::Level {
            arch: Arch::Amd64,
            rule: "static".into(),
        };
        let layer = write_layer(&entries, Compression::Gzip, 0).unwrap();
        let info = LayerInfo {
            digest: layer.digest,
            diff_id: layer.diff_id,
            size: layer.size,
            tar_size: layer.tar_size,
            compression: layer.compression,
        };
        Built {
            made: 1,
            layers: BTreeMap::from([(
                key.clone(),
                BuiltLayer {
                    info,
                    packages: BTreeMap::new(),
                    time: 0,
                },
            )]),
            listings: BTreeMap::from([(key, fingerprint_all(&entries))]),
            images: Images {
                changes: BTreeMap::new(),
                tags: Vec::new(),
                indexes: Vec::new(),
                repositories: Vec::new(),
                sboms: BTreeMap::new(),
                provenance: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn check_names_the_first_differing_layer_and_file() {
        assert!(compare(&built(b"x"), &built(b"x"), 2, 1).is_ok());
        let e = compare(&built(b"x"), &built(b"y"), 2, 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("not reproducible: layer of rule static (amd64) is sha256:")
                && e.contains("with 2 threads")
                && e.contains("first differing file: /etc/b (file sha256:"),
            "{e}"
        );
    }

    #[test]
    fn a_blob_lists_as_its_entries_do() {
        for compression in [Compression::Gzip, Compression::Zstd] {
            let entries = |content: &[u8]| {
                vec![
                    Entry::dir("etc", 0, "t"),
                    Entry {
                        path: "etc/b".into(),
                        kind: EntryKind::File {
                            data: Arc::new(content.to_vec()),
                            link_group: None,
                        },
                        mode: 0o644,
                        uid: 0,
                        gid: 0,
                        mtime: 0,
                        origin: "t".into(),
                    },
                ]
            };
            let listing = |content: &[u8]| {
                let layer = write_layer(&entries(content), compression, 0).unwrap();
                blob_listing(&layer.blob[..], compression.media_type()).unwrap()
            };
            let (a, b) = (listing(b"x"), listing(b"y"));
            assert_eq!(a.len(), 2);
            // The same words as a build's own listing of the entries.
            assert_eq!(a[1], fingerprint_all(&entries(b"x"))[1]);
            assert_eq!(
                first_difference(&a, &b),
                format!("first differing file: /etc/b ({} vs {})", a[1].1, b[1].1)
            );
            assert_eq!(first_difference(&a, &a[..1]), "entry counts differ: 2 vs 1");
        }
    }
}
