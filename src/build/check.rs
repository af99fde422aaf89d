//! `--check`: two builds with different thread counts must agree on every layer, SPDX
//! document and manifest; a difference names the first differing layer and file.

use std::collections::BTreeMap;

use super::BuildError;
use super::plan::LayerKey;
use super::walk::Built;
use crate::digest::Digest;
use crate::layer::{Entry, EntryKind};

/// Per layer made, (path, fingerprint) of every entry, in the layer's order.
pub(super) type Listings = BTreeMap<LayerKey, Vec<(String, String)>>;

/// A stable description of an entry's content and metadata: (path, the rest).
pub(super) fn fingerprint(e: &Entry) -> (String, String) {
    let what = match &e.kind {
        EntryKind::Dir => "dir".to_owned(),
        EntryKind::File { data, link_group } => format!(
            "file sha256:{} link:{}",
            Digest::of(data).hex(),
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
            let (ea, eb) = (&a.listings[k], &b.listings[k]);
            let first = ea
                .iter()
                .zip(eb.iter())
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("first differing file: /{} ({} vs {})", x.0, x.1, y.1))
                .unwrap_or_else(|| {
                    if ea.len() != eb.len() {
                        format!("entry counts differ: {} vs {}", ea.len(), eb.len())
                    } else {
                        "the entries agree, so the tar or compressor output differs".to_owned()
                    }
                });
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
            listings: BTreeMap::from([(key, entries.iter().map(fingerprint).collect())]),
            images: Images {
                changes: BTreeMap::new(),
                tags: Vec::new(),
                repositories: Vec::new(),
                sboms: BTreeMap::new(),
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
}
