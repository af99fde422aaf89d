//! A tar stream from anywhere, read as a package's data.tar or its control.tar: every tar
//! entry type (GNU sparse files, long-name and long-link records, PAX size and path
//! overrides, hard links, devices) goes through the reader and its bounds, then the image
//! tree and the layer writer. With the bound on, whatever is accepted must stay linear in
//! it: the layer may not be more than a few times the bound.
#![no_main]

use debless::deb::{ReadOptions, Selection, Tree, read_deb};
use debless::layer::{Compression, write_layer};
use libfuzzer_sys::fuzz_target;

/// The bound the fuzzer reads with when the second flag bit is set.
const BOUND: u64 = 64 << 10;

/// One ar member, as dpkg-deb lays them out.
fn member(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(
        format!(
            "{name:<16}0           0     0     100644  {:<10}`\n",
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(b'\n');
    }
}

/// A plain tar holding one regular file.
fn one_file_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

fuzz_target!(|data: &[u8]| {
    // Bit 0: merged /usr; bit 1: the bound; bit 2: the input is control.tar, not data.tar.
    let Some((&flags, tar)) = data.split_first() else {
        return;
    };
    let control_default = one_file_tar("./control", b"Package: fuzz\nVersion: 1\n");
    let data_default = one_file_tar("./usr/share/x", b"x");
    let (control, data_tar) = if flags & 4 == 4 {
        (tar, &data_default[..])
    } else {
        (&control_default[..], tar)
    };
    let mut deb = b"!<arch>\n".to_vec();
    member(&mut deb, "debian-binary", b"2.0\n");
    member(&mut deb, "control.tar", control);
    member(&mut deb, "data.tar", data_tar);
    let bound = (flags & 2 == 2).then_some(BOUND);
    let opts = ReadOptions {
        merged_usr: flags & 1 == 1,
        max_data_bytes: bound,
    };
    let Ok(read) = read_deb(&deb, "fuzz", &Selection::everything(), &opts) else {
        return;
    };
    let Ok(layer) = Tree::new(opts.merged_usr).add_layer(read.entries, 1_700_000_000) else {
        return;
    };
    let Ok(written) = write_layer(&layer, Compression::Gzip, 1_700_000_000) else {
        return;
    };
    if let Some(bound) = bound {
        // A header (and at most a PAX header and one padding block) per entry the bound
        // paid 512 bytes for, and the data it paid for byte by byte.
        assert!(
            written.tar_size <= 4 * bound + 4096,
            "a {} byte layer from a package bounded at {bound}",
            written.tar_size
        );
    }
});
