//! `--shard I/N`: one runner's slice of a build, as a smaller plan.

use std::collections::BTreeSet;
use std::fmt;

use super::{LayerKey, LayerPlan, Plan};
use crate::arch::Arch;

/// `--shard I/N`: the `I`th (from 1) of `N` slices of a build's work that cost about the
/// same.
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

/// What making a layer costs, in the bytes it reads: its .debs and tarballs as downloaded
/// (a layer decompresses each whole, whatever it keeps), plus a fixed share for the
/// writing, generating and compressing every layer does.
fn layer_cost(layer: &LayerPlan<'_>) -> u64 {
    const PER_LAYER: u64 = 256 * 1024;
    let debs: u64 = layer.packages.iter().map(|p| p.locked.size).sum();
    let tarballs: u64 = layer.tarballs.iter().map(|t| t.locked.size).sum();
    PER_LAYER + debs + tarballs
}

impl Plan<'_> {
    /// Only `shard`'s slice of the work. The units are the (architecture, image, tag)
    /// triples in that order, cut into `count` consecutive runs (architecture first, so a
    /// run's tags share their lower layers) that cost about the same: a run costs every
    /// layer its tags need, once, however many of its tags use it (`layer_cost`), and the
    /// cut is the one whose dearest run is cheapest. Every run has at least one unit when
    /// there are as many units as runs. The split is a function of the plan alone, so
    /// every runner given the same lock, rules and selection cuts the same way. The plan
    /// keeps the layers its tags use, and nothing else.
    pub fn shard(&mut self, shard: Shard) {
        let mut units: Vec<(Arch, String, String, Vec<LayerKey>)> = self
            .images
            .iter()
            .flat_map(|ip| {
                ip.tags
                    .iter()
                    .map(|t| (ip.arch, ip.image.clone(), t.tag.clone(), t.layers.clone()))
            })
            .collect();
        units.sort();
        let needs: Vec<BTreeSet<LayerKey>> = units
            .iter()
            .map(|u| self.with_layers_below(&u.3).into_iter().cloned().collect())
            .collect();
        let runs = cut(&needs, shard.count, |k| {
            self.layers.get(k).map_or(0, layer_cost)
        });
        let mine: BTreeSet<(Arch, String, String)> = units
            .into_iter()
            .zip(runs)
            .filter(|(_, run)| *run == shard.index - 1)
            .map(|((arch, image, tag, _), _)| (arch, image, tag))
            .collect();
        for ip in &mut self.images {
            ip.tags
                .retain(|t| mine.contains(&(ip.arch, ip.image.clone(), t.tag.clone())));
        }
        self.images.retain(|ip| !ip.tags.is_empty());
        let used: BTreeSet<LayerKey> = self
            .images
            .iter()
            .flat_map(|ip| ip.tags.iter())
            .flat_map(|t| self.with_layers_below(&t.layers))
            .cloned()
            .collect();
        self.layers.retain(|k, _| used.contains(k));
    }
}

/// Which of `count` runs each unit goes to: consecutive runs, each at least one unit long
/// while units last, with the smallest possible cost of the dearest run, a run's cost
/// being that of the union of its units' `needs`.
fn cut<K: Ord + Clone>(
    needs: &[BTreeSet<K>],
    count: usize,
    cost: impl Fn(&K) -> u64,
) -> Vec<usize> {
    let count = count.max(1);
    // The runs a greedy cut at `bound` makes: a run closes when the next unit would take it
    // over `bound`, or when the units left are only enough for one per run left.
    let greedy = |bound: u64| -> Vec<usize> {
        let mut runs = Vec::with_capacity(needs.len());
        let mut run = 0;
        let mut held: BTreeSet<&K> = BTreeSet::new();
        let mut spent = 0u64;
        for (j, need) in needs.iter().enumerate() {
            let extra: u64 = need.iter().filter(|k| !held.contains(k)).map(&cost).sum();
            let left = needs.len() - j;
            let must_close = run + 1 < count && left <= count - 1 - run;
            if !held.is_empty() && (spent + extra > bound || must_close) {
                run += 1;
                held.clear();
                spent = 0;
            }
            spent += need
                .iter()
                .filter(|k| held.insert(k))
                .map(&cost)
                .sum::<u64>();
            runs.push(run);
        }
        runs
    };
    let fits = |runs: &[usize]| runs.last().is_none_or(|&r| r < count);
    // The dearest run is never cheaper than the dearest unit nor dearer than everything.
    let unit = |n: &BTreeSet<K>| n.iter().map(&cost).sum::<u64>();
    let mut lo = needs.iter().map(unit).max().unwrap_or(0);
    let mut hi = unit(&needs.iter().flatten().cloned().collect());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(&greedy(mid)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    greedy(lo)
}

#[cfg(test)]
mod tests {
    use super::cut;
    use std::collections::BTreeSet;

    /// Units as the layers they need; a layer's cost is its number.
    fn needs(units: &[&[u64]]) -> Vec<BTreeSet<u64>> {
        units.iter().map(|u| u.iter().copied().collect()).collect()
    }

    #[test]
    fn runs_cost_about_the_same_rather_than_holding_as_many_units() {
        // One dear unit and five cheap ones: an even count (3 + 3) would make one run
        // 113 and the other 42; the cut gives the dear unit a run of its own.
        let n = needs(&[&[90], &[11], &[12], &[13], &[14], &[15]]);
        assert_eq!(cut(&n, 2, |&k| k), vec![0, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn a_layer_several_units_share_is_paid_once_per_run() {
        // Two "architectures": four units on base 50, two on base 60. A run holding all of
        // the first costs 50 + 10 and the second 60 + 11: cutting inside the first would
        // pay its base twice.
        let n = needs(&[&[50, 1], &[50, 2], &[50, 3], &[50, 4], &[60, 5], &[60, 6]]);
        assert_eq!(cut(&n, 2, |&k| k), vec![0, 0, 0, 0, 1, 1]);
    }

    #[test]
    fn every_run_gets_a_unit_while_units_last() {
        let n = needs(&[&[1000], &[1], &[1], &[1]]);
        assert_eq!(cut(&n, 4, |&k| k), vec![0, 1, 2, 3]);
        assert_eq!(cut(&n, 6, |&k| k), vec![0, 1, 2, 3]);
        assert_eq!(cut(&n, 1, |&k| k), vec![0, 0, 0, 0]);
        assert_eq!(cut(&needs(&[]), 3, |&k| k), Vec::<usize>::new());
    }
}
