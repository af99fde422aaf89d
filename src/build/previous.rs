//! What a partial build keeps. Building some architectures or tags of an image into a
//! layout that already holds others must not lose them: tags this build does not make
//! are carried over with every blob they reach, a multi-arch index this build remakes
//! keeps its members for the architectures not rebuilt, and their SPDX documents come
//! along. Only a build of every tag and architecture of an image writes exactly its own
//! tags (removing those the rules no longer define).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::BuildError;
use crate::arch::Arch;
use crate::oci::{Content, LayoutReader, ReadError};
use crate::oci::{Descriptor, Layout};

/// An image's layout as a previous build left it, with its SPDX directory.
pub(super) struct Previous {
    reader: LayoutReader,
    sbom_dir: PathBuf,
}

/// How a build changed an output's tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagChanges {
    /// Tags the output did not have.
    pub added: Vec<String>,
    /// Tags now naming other content.
    pub replaced: Vec<String>,
    /// Tags the output no longer has (only a build of the whole image removes any).
    pub removed: Vec<String>,
    /// Tags a partial build carried over without rebuilding them.
    pub kept: Vec<String>,
}

impl Previous {
    /// The layout at `dir`, if there is a readable one.
    pub fn open(dir: &Path, sbom_dir: PathBuf) -> Option<Previous> {
        let reader = LayoutReader::open(dir).ok()?;
        Some(Previous { reader, sbom_dir })
    }

    /// Its tags and what they name.
    pub fn tags(&self) -> &BTreeMap<String, Descriptor> {
        self.reader.tags()
    }

    /// The members of index tag `tag` for architectures outside `rebuilt`, with the blobs
    /// they reach copied into `layout`.
    pub fn other_members(
        &self,
        tag: &str,
        rebuilt: &BTreeSet<Arch>,
        layout: &mut Layout,
    ) -> Result<Vec<Descriptor>, BuildError> {
        let Some(d) = self.reader.tags().get(tag) else {
            return Ok(Vec::new());
        };
        let doc = self.reader.document(d).map_err(|e| self.err(e))?;
        let Content::Index(members) = doc.content else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for m in members {
            let arch = m
                .platform
                .as_ref()
                .and_then(|p| Arch::from_oci(&p.architecture, p.variant.as_deref()));
            if arch.is_some_and(|a| !rebuilt.contains(&a)) {
                self.copy_into(&m, layout)?;
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Copy what `d` reaches (the document, and for an index its members, for a manifest
    /// its config and layers) into `layout`; file blobs are re-hashed when written.
    pub fn copy_into(&self, d: &Descriptor, layout: &mut Layout) -> Result<(), BuildError> {
        let doc = self.reader.document(d).map_err(|e| self.err(e))?;
        layout.add_blob(Arc::new(doc.bytes));
        match doc.content {
            Content::Index(members) => {
                for m in &members {
                    self.copy_into(m, layout)?;
                }
            }
            Content::Manifest { config, layers } => {
                for b in std::iter::once(&config).chain(&layers) {
                    let path = self.reader.check_blob(b).map_err(|e| self.err(e))?;
                    layout.add_file_blob(b.digest, path, b.size);
                }
            }
        }
        Ok(())
    }

    /// The SPDX document a previous build wrote for `tag`, if it is there.
    pub fn spdx(&self, tag: &str) -> Option<Vec<u8>> {
        std::fs::read(self.sbom_dir.join(format!("{tag}.spdx.json"))).ok()
    }

    fn err(&self, source: ReadError) -> BuildError {
        BuildError::Previous {
            path: self.reader.dir().to_path_buf(),
            source: Box::new(source),
        }
    }
}

/// What moved between `before` (the output's tags before the build, if any) and `after`.
pub(super) fn tag_changes(
    before: Option<&BTreeMap<String, Descriptor>>,
    after: &BTreeMap<String, Descriptor>,
    kept: Vec<String>,
) -> TagChanges {
    let empty = BTreeMap::new();
    let before = before.unwrap_or(&empty);
    let mut c = TagChanges {
        kept,
        ..TagChanges::default()
    };
    for (tag, d) in after {
        match before.get(tag) {
            None => c.added.push(tag.clone()),
            Some(old) if old.digest != d.digest => c.replaced.push(tag.clone()),
            Some(_) => {}
        }
    }
    c.removed = before
        .keys()
        .filter(|t| !after.contains_key(*t))
        .cloned()
        .collect();
    c
}
