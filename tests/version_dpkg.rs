//! Debian version ordering agrees with `dpkg --compare-versions`.
//!
//! dpkg is the reference implementation, so this test runs the real `dpkg` on a few hundred
//! pairs drawn from `tests/data/versions.txt` (real trixie versions plus hand-picked edge
//! cases) and fails, rather than skips, when `dpkg` is missing.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::process::Command;
use std::thread;

use debless::archive::version::{compare, parse};

/// The data file, relative to the crate root.
const VERSIONS_FILE: &str = "tests/data/versions.txt";
/// The comment line after which the hand-picked edge cases follow.
const EDGE_MARKER: &str = "# edge cases";
/// How many extra pseudo-random pairs to draw from the whole list.
const RANDOM_PAIRS: usize = 150;
/// Fewer pairs than this means the data file or the pairing broke.
const MIN_PAIRS: usize = 400;

/// The version strings of the data file, real ones first, then edge cases.
struct Versions {
    all: Vec<String>,
    /// Index in `all` of the first edge case.
    edge_start: usize,
}

fn load_versions() -> Versions {
    let path = format!("{}/{VERSIONS_FILE}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut all = Vec::new();
    let mut edge_start = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(EDGE_MARKER) {
            edge_start = Some(all.len());
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        all.push(line.to_owned());
    }
    let edge_start = edge_start
        .unwrap_or_else(|| panic!("{path}: no `{EDGE_MARKER}` line before the edge cases"));
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(
        distinct.len(),
        all.len(),
        "{path}: duplicate version strings"
    );
    assert!(
        edge_start < all.len(),
        "{path}: no edge cases after `{EDGE_MARKER}`"
    );
    Versions { all, edge_start }
}

/// xorshift64: a fixed, dependency-free generator so the pairs are the same on every run.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Index pairs to check: every adjacent pair, every pair of edge cases, and some random ones.
fn index_pairs(versions: &Versions) -> BTreeSet<(usize, usize)> {
    let n = versions.all.len();
    let mut pairs: BTreeSet<(usize, usize)> = (1..n).map(|i| (i - 1, i)).collect();
    for i in versions.edge_start..n {
        for j in i + 1..n {
            pairs.insert((i, j));
        }
    }
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let target = pairs.len() + RANDOM_PAIRS;
    while pairs.len() < target {
        let (i, j) = (rng.below(n), rng.below(n));
        if i != j {
            pairs.insert((i, j));
        }
    }
    pairs
}

/// Does `dpkg --compare-versions a op b` hold? Errors when dpkg fails or warns.
fn dpkg_holds(a: &str, op: &str, b: &str) -> Result<bool, String> {
    let out = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .output()
        .map_err(|e| format!("running dpkg: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) if stderr.is_empty() => Ok(true),
        Some(1) if stderr.is_empty() => Ok(false),
        _ => Err(format!(
            "dpkg {a:?} {op} {b:?}: {}: {}",
            out.status,
            stderr.trim()
        )),
    }
}

/// dpkg's ordering of `a` and `b`.
fn dpkg_order(a: &str, b: &str) -> Result<Ordering, String> {
    if dpkg_holds(a, "lt", b)? {
        Ok(Ordering::Less)
    } else if dpkg_holds(a, "eq", b)? {
        Ok(Ordering::Equal)
    } else {
        Ok(Ordering::Greater)
    }
}

/// Everything wrong with one pair: a dpkg failure, a disagreement or an asymmetry.
fn check_pair(a: &str, b: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let ours = compare(a, b);
    match dpkg_order(a, b) {
        Ok(theirs) if theirs == ours => {}
        Ok(theirs) => problems.push(format!("{a} vs {b}: dpkg {theirs:?}, debless {ours:?}")),
        Err(e) => problems.push(e),
    }
    let reversed = compare(b, a);
    if reversed != ours.reverse() {
        problems.push(format!(
            "{a} vs {b}: debless {ours:?} but reversed {reversed:?}"
        ));
    }
    problems
}

#[test]
fn version_order_matches_dpkg() {
    if let Err(e) = Command::new("dpkg").arg("--version").output() {
        panic!(
            "`dpkg` is needed on PATH to check version ordering against it (apt-get install dpkg): {e}"
        );
    }
    let versions = load_versions();

    let unparseable: Vec<&String> = versions.all.iter().filter(|v| parse(v).is_none()).collect();
    assert!(
        unparseable.is_empty(),
        "debless cannot parse: {unparseable:?}"
    );

    let pairs: Vec<(&str, &str)> = index_pairs(&versions)
        .into_iter()
        .map(|(i, j)| (versions.all[i].as_str(), versions.all[j].as_str()))
        .collect();
    assert!(
        pairs.len() >= MIN_PAIRS,
        "only {} pairs from {} versions; expected at least {MIN_PAIRS}",
        pairs.len(),
        versions.all.len()
    );

    // One dpkg process per comparison; spread them over the cores to keep the test quick.
    let workers = thread::available_parallelism().map_or(4, |n| n.get());
    let chunk = pairs.len().div_ceil(workers);
    let problems: Vec<String> = thread::scope(|s| {
        let handles: Vec<_> = pairs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .flat_map(|(a, b)| check_pair(a, b))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });

    assert!(
        problems.is_empty(),
        "{} of {} pairs disagree with dpkg:\n{}",
        problems.len(),
        pairs.len(),
        problems.join("\n")
    );
    eprintln!(
        "{} versions, {} pairs agree with dpkg",
        versions.all.len(),
        pairs.len()
    );
}
