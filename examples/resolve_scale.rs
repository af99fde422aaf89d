//! How resolving scales with the index: a synthetic signed-index-sized universe of N
//! packages, each providing P virtual names and depending on a few others, resolved from
//! one root whose closure is most of the index. Prints seconds for parsing and resolving
//! at several sizes, so superlinear growth shows as a rising per-package time.
//!
//!   cargo run --release --example resolve_scale [N...]

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use debless::archive::packages;
use debless::resolve::{Excludes, Universe, resolve};

const PROVIDES: usize = 50;
const VIRTUALS: usize = 5000;

fn index(n: usize) -> String {
    let mut s = String::with_capacity(n * 600);
    for i in 0..n {
        let provides: Vec<String> = (0..PROVIDES)
            .map(|k| format!("v{} (= 1)", (i * 7 + k * 101) % VIRTUALS))
            .collect();
        let next = (i + 1) % n;
        let far = (i * 13 + 5) % n;
        let _ = write!(
            s,
            "Package: p{i}\nVersion: 1.{}\nArchitecture: amd64\nDepends: p{next} (>= 1) | v{} , v{}, p{far}\nProvides: {}\nFilename: pool/main/p/p{i}_1_amd64.deb\nSize: 100\nSHA256: {:064x}\nInstalled-Size: 1\n\n",
            i % 3,
            i % VIRTUALS,
            (i * 3) % VIRTUALS,
            provides.join(", "),
            i
        );
    }
    s
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![5_000, 10_000, 20_000, 50_000]
    } else {
        sizes
    };
    println!("packages  parse_s  index_s  resolve_s  selected  us_per_pkg");
    for n in sizes {
        let text = index(n);
        let t = Instant::now();
        let pkgs = packages::parse(&text).expect("synthetic index parses");
        let parse = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let u = Universe::new("amd64", &[&pkgs[..]]);
        let index_secs = t.elapsed().as_secs_f64();
        let cl = resolve(
            &u,
            &[("p0".to_owned(), "rules/scale.toml".to_owned())],
            &Excludes {
                by_name: BTreeMap::new(),
            },
        );
        let secs = t.elapsed().as_secs_f64();
        let selected = cl.map(|c| c.selected.len()).unwrap_or(0);
        println!(
            "{n:>8}  {parse:>7.2}  {index_secs:>7.2}  {secs:>9.2}  {selected:>8}  {:>10.1}",
            secs * 1e6 / n as f64
        );
    }
}
