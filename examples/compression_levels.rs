//! How fast and how small each gzip and zstd level is on real layer tars, with the same
//! encoders a build uses (parallel gzip pieces; zstd with one worker per thread). The
//! numbers behind `GZIP_LEVEL` and `ZSTD_LEVEL`; BENCHMARKS.md has a run.
//!
//! `cargo run --release --example compression_levels -- LAYER.tar...`

use std::io::Write;
use std::time::Instant;

use debless::layer::pargz::ParGzEncoder;

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: compression_levels LAYER.tar...");
        std::process::exit(2);
    }
    let mut data = Vec::new();
    for f in &files {
        match std::fs::read(f) {
            Ok(b) => data.extend_from_slice(&b),
            Err(e) => {
                eprintln!("error: {f}: cannot read ({e})");
                std::process::exit(1);
            }
        }
    }
    let mb = data.len() as f64 / 1e6;
    println!(
        "{} tar bytes, {} threads",
        data.len(),
        rayon::current_num_threads()
    );
    println!("| compressor | level | seconds | MB/s in | compressed | ratio |");
    println!("|---|---:|---:|---:|---:|---:|");
    let row = |name: &str, level: i32, secs: f64, out: usize| {
        println!(
            "| {name} | {level} | {secs:.2} | {:.0} | {:.1} MB | {:.3} |",
            mb / secs,
            out as f64 / 1e6,
            out as f64 / data.len() as f64
        );
    };
    for level in 1..=9u32 {
        let t = Instant::now();
        let mut e = ParGzEncoder::new(Vec::new(), level, 255);
        e.write_all(&data).expect("in-memory write");
        let out = e.finish().expect("in-memory write");
        row(
            "gzip (parallel pieces)",
            level as i32,
            t.elapsed().as_secs_f64(),
            out.len(),
        );
    }
    for level in [1, 3, 6, 9, 12, 15, 19] {
        let t = Instant::now();
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), level).expect("zstd");
        e.multithread(rayon::current_num_threads() as u32)
            .expect("zstd workers");
        e.include_checksum(true).expect("zstd checksum");
        e.write_all(&data).expect("in-memory write");
        let out = e.finish().expect("in-memory write");
        row("zstd", level, t.elapsed().as_secs_f64(), out.len());
    }
}
