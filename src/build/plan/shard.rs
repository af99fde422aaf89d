//! `--shard I/N`: one runner's slice of a build, as a smaller plan.

use std::collections::BTreeSet;
use std::fmt;

use super::{LayerKey, Plan};
use crate::arch::Arch;

/// `--shard I/N`: the `I`th (from 1) of `N` even slices of a build's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which slice, from 1.
    pub index: usize,
    /// How many slices.
    pub count: usize,
}

/// A `--shard` that is not `I/N` with 1 <= I <= N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {0:?} is not I/N with 1 <= I <= N (e.g. 1/2 and 2/2 for two runners)")]
pub struct BadShard(pub String);

impl std::str::FromStr for Shard {
    type Err = BadShard;
    fn from_str(s: &str) -> Result<Shard, BadShard> {
        let bad = || BadShard(s.to_owned());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Plan<'_> {
    /// Only `shard`'s slice of the work. The units are the (architecture, image, tag)
    /// triples in that order, cut into `count` runs whose lengths differ by at most one:
    /// architecture first, so a shard's tags share their lower layers (with as many
    /// shards as architectures, each shard is one architecture when the architectures have
    /// as many tags). The plan keeps the layers its tags use, and nothing else.
    pub fn shard(&mut self, shard: Shard) {
        let mut units: Vec<(Arch, String, String)> = self
            .images
            .iter()
            .flat_map(|ip| {
                ip.tags
                    .iter()
                    .map(|t| (ip.arch, ip.image.clone(), t.tag.clone()))
            })
            .collect();
        units.sort();
        let total = units.len();
        let mine: BTreeSet<(Arch, String, String)> = units
            .into_iter()
            .enumerate()
            .filter(|(j, _)| j * shard.count / total.max(1) == shard.index - 1)
            .map(|(_, u)| u)
            .collect();
        for ip in &mut self.images {
            ip.tags
                .retain(|t| mine.contains(&(ip.arch, ip.image.clone(), t.tag.clone())));
        }
        self.images.retain(|ip| !ip.tags.is_empty());
        let mut used: BTreeSet<LayerKey> = BTreeSet::new();
        for k in self
            .images
            .iter()
            .flat_map(|ip| ip.tags.iter())
            .flat_map(|t| &t.layers)
        {
            let mut cur = Some(k);
            while let Some(c) = cur {
                if !used.insert(c.clone()) {
                    break;
                }
                cur = self.layers.get(c).and_then(|l| l.below.as_ref());
            }
        }
        self.layers.retain(|k, _| used.contains(k));
    }
}
