//! Peak memory of the worst package each bound lets through, for SECURITY.md: for an
//! Installed-Size, every case builds the .deb that pushes one bound as far as it goes (or
//! past it), then a fresh process reads it the way a build does (`read_deb` with the
//! lock's bound, the image tree, the layer written and every file buffer hashed once) and
//! the case's peak resident set is the child's own VmHWM (`/proc/self/status`).
//!
//!   cargo run --release --example bound_peaks [INSTALLED_SIZE_KIB...]
//!
//! Without arguments: 4 KiB (the bound is then about 1 MiB) and 100 MiB (about 201 MiB).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use debless::deb::testdeb::{Raw, compress, raw_ar, raw_tar, sparse_tar};
use debless::deb::{ReadOptions, Selection, Tree, max_data_bytes, read_deb};
use debless::layer::{Compression, EntryKind, write_layer_to};

/// A case: its name and how it builds the .deb for a bound of `b` bytes.
type Case = (&'static str, &'static str, fn(u64) -> Vec<u8>);

const CASES: &[Case] = &[
    (
        "data",
        "one file of zeros filling what the package may yield",
        data,
    ),
    (
        "data-bomb",
        "zeros 16 MiB past the bound (refused)",
        data_bomb,
    ),
    ("control", "an md5sums filling control.tar's bound", control),
    (
        "control-bomb",
        "control.tar 16 MiB past the bound (refused)",
        control_bomb,
    ),
    ("sparse", "a GNU sparse file of 4 GiB (refused)", sparse),
    (
        "deep",
        "one file as deep as the implied parents allow",
        deep,
    ),
    (
        "deep-over",
        "one file 2,000 directories deep (refused)",
        deep_over,
    ),
    (
        "links",
        "a file of half the bound and hard links for the rest",
        links,
    ),
    (
        "entries",
        "as many one-byte files as the bound allows",
        entries,
    ),
    (
        "long-names",
        "files with 4,095-byte paths (PATH_MAX) filling the bound",
        long_names,
    ),
];

/// The bytes of a .deb with this data.tar (zstd-compressed, as a big package is fast to
/// build) and a small control.tar.
fn deb(data: &[u8]) -> Vec<u8> {
    let control = raw_tar(&[Raw::file(
        "./control",
        b"Package: peak\nVersion: 1\nArchitecture: amd64\n",
    )]);
    raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &compress("gz", &control)),
        ("data.tar.zst", &compress("zst", data)),
    ])
}

fn data(b: u64) -> Vec<u8> {
    deb(&raw_tar(&[Raw::file(
        "./f",
        &vec![0u8; (b - 64 * 1024) as usize],
    )]))
}

fn data_bomb(b: u64) -> Vec<u8> {
    deb(&raw_tar(&[Raw::file(
        "./f",
        &vec![0u8; (b + (16 << 20)) as usize],
    )]))
}

fn control(b: u64) -> Vec<u8> {
    let control = raw_tar(&[
        Raw::file("./control", b"Package: peak\nVersion: 1\n"),
        Raw::file("./md5sums", &vec![b'0'; (b - 64 * 1024) as usize]),
    ]);
    raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.zst", &compress("zst", &control)),
        (
            "data.tar.zst",
            &compress("zst", &raw_tar(&[Raw::file("./f", b"x")])),
        ),
    ])
}

fn control_bomb(b: u64) -> Vec<u8> {
    let control = raw_tar(&[
        Raw::file("./control", b"Package: peak\nVersion: 1\n"),
        Raw::file("./md5sums", &vec![b'0'; (b + (16 << 20)) as usize]),
    ]);
    raw_ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.zst", &compress("zst", &control)),
        (
            "data.tar.zst",
            &compress("zst", &raw_tar(&[Raw::file("./f", b"x")])),
        ),
    ])
}

fn sparse(b: u64) -> Vec<u8> {
    let _ = b;
    deb(&sparse_tar("./f", 4 << 30))
}

/// What `depth` implied parents of a path of `d/` components cost the yield.
fn deep_cost(depth: u64) -> u64 {
    (1..=depth).map(|i| 512 + 2 * i).sum()
}

fn deep(b: u64) -> Vec<u8> {
    // As deep as both the bound and PATH_MAX allow.
    let mut depth = 1;
    while depth < 2040 && deep_cost(depth + 1) + 8192 < b {
        depth += 1;
    }
    let mut raws_paths = Vec::new();
    let mut left = b;
    let mut top = 0;
    while left > deep_cost(depth) + 8192 {
        raws_paths.push(format!("./t{top}/{}f", "d/".repeat(depth as usize)));
        left -= deep_cost(depth) + 1024;
        top += 1;
    }
    let raws: Vec<Raw> = raws_paths.iter().map(|p| Raw::file(p, b"x")).collect();
    deb(&raw_tar(&raws))
}

fn deep_over(_: u64) -> Vec<u8> {
    deb(&raw_tar(&[Raw::file(
        &format!("./{}f", "d/".repeat(2000)),
        b"x",
    )]))
}

fn links(b: u64) -> Vec<u8> {
    let big = vec![0u8; (b / 2) as usize];
    let n = (b / 2 - 64 * 1024) / 1100;
    let names: Vec<String> = (0..n).map(|i| format!("./l{i}")).collect();
    let mut raws = vec![Raw::file("./big", &big)];
    raws.extend(
        names
            .iter()
            .map(|p| Raw::link(tar::EntryType::Link, p, "./big")),
    );
    deb(&raw_tar(&raws))
}

fn entries(b: u64) -> Vec<u8> {
    let n = (b - 64 * 1024) / 1024;
    let names: Vec<String> = (0..n).map(|i| format!("./f{i}")).collect();
    let raws: Vec<Raw> = names.iter().map(|p| Raw::file(p, b"x")).collect();
    deb(&raw_tar(&raws))
}

fn long_names(b: u64) -> Vec<u8> {
    // 15 shared directories of NAME_MAX bytes and a unique last name: 4,095 bytes each,
    // about 5.6 KB of data.tar apiece (header, long-name record, one data block).
    let dirs = "n".repeat(255) + &("/".to_owned() + &"n".repeat(255)).repeat(14);
    let n = (b - 64 * 1024 - 15 * 4600) / 5700;
    let names: Vec<String> = (0..n).map(|i| format!("./{dirs}/{i:0>255}")).collect();
    let raws: Vec<Raw> = names.iter().map(|p| Raw::file(p, b"x")).collect();
    deb(&raw_tar(&raws))
}

/// The child: read the .deb at `path` as a build would, and say what happened.
fn child(path: &Path, installed_kib: u64) -> ! {
    let bytes = std::fs::read(path).expect("the case's .deb");
    let opts = ReadOptions {
        merged_usr: true,
        max_data_bytes: Some(max_data_bytes(installed_kib)),
    };
    let verdict = match read_deb(&bytes, "peak", &Selection::everything(), &opts) {
        Err(e) => format!("refused: {}", first_words(&e.to_string())),
        Ok(deb) => {
            drop(bytes);
            match Tree::new(true).add_layer(deb.entries, 0) {
                Err(e) => format!("refused: {}", first_words(&e.to_string())),
                Ok(layer) => {
                    let mut buffers = BTreeMap::new();
                    for e in &layer {
                        if let EntryKind::File { data, .. } = &e.kind {
                            buffers.insert(Arc::as_ptr(data) as usize, data.clone());
                        }
                    }
                    for data in buffers.values() {
                        std::hint::black_box(debless::digest::Digest::of(data));
                    }
                    match write_layer_to(&layer, Compression::Gzip, 0, std::io::sink()) {
                        Ok((_, info)) => format!(
                            "read: {} entries, a {:.1} MB layer",
                            layer.len(),
                            info.tar_size as f64 / 1e6
                        ),
                        Err(e) => format!("refused: {e}"),
                    }
                }
            }
        }
    };
    // The child's own high-water mark: wait4's ru_maxrss would also count the parent's
    // pages at the fork (Linux carries the old mm's peak across exec), and the parent
    // holds the big .debs it builds.
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .unwrap_or(-1);
    println!("{verdict}\t{hwm}");
    std::process::exit(0);
}

fn first_words(s: &str) -> String {
    s.split(';').next().unwrap_or(s).chars().take(110).collect()
}

/// Run the child on one .deb; its output and peak RSS in KiB.
// Reaped by wait4, not `Child::wait`, because only wait4 returns the child's rusage.
#[allow(clippy::zombie_processes)]
fn measure(path: &Path, installed_kib: u64) -> (String, i64) {
    let exe = std::env::current_exe().expect("own path");
    let child = Command::new(exe)
        .arg("--child")
        .arg(path)
        .arg(installed_kib.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let pid = child.id() as libc::pid_t;
    let mut out = String::new();
    if let Some(mut o) = child.stdout {
        std::io::Read::read_to_string(&mut o, &mut out).expect("child output");
    }
    let mut status = 0;
    // SAFETY: plain wait4 on our own child, with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let out = out.trim();
    match out.rsplit_once('\t') {
        Some((verdict, hwm)) => (verdict.to_owned(), hwm.parse().unwrap_or(usage.ru_maxrss)),
        None => (out.to_owned(), usage.ru_maxrss),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(Path::new(&args[1]), args[2].parse().expect("KiB"));
    }
    let sizes: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![4, 100 << 10]
    } else {
        sizes
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!("| case | Installed-Size | bound | .deb | outcome | peak RSS |");
    println!("|---|---:|---:|---:|---|---:|");
    for kib in sizes {
        let bound = max_data_bytes(kib);
        for (name, what, make) in CASES {
            let deb = make(bound);
            let path = dir.path().join(format!("{name}.deb"));
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(&deb))
                .expect("write the .deb");
            let (outcome, rss) = measure(&path, kib);
            println!(
                "| {name}: {what} | {kib} KiB | {:.1} MiB | {:.1} KB | {outcome} | {:.0} MiB |",
                bound as f64 / f64::from(1 << 20),
                deb.len() as f64 / 1e3,
                rss as f64 / 1024.0
            );
        }
    }
}
