//! A .deb from anywhere: read it, merge it into an image tree, write it as a layer.
//! (`tar` feeds raw tar streams in as its control.tar or data.tar, to reach every entry
//! type without the fuzzer first having to find the ar and compression framing.)
#![no_main]

use debless::deb::{ReadOptions, Selection, Tree, read_deb};
use debless::layer::{Compression, write_layer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the distro layout; the rest is the .deb.
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    // The second bit turns on a small decompression bound, so both paths are fuzzed.
    let opts = ReadOptions {
        merged_usr: flags & 1 == 1,
        max_data_bytes: (flags & 2 == 2).then_some(64 << 10),
    };
    let Ok(deb) = read_deb(bytes, "fuzz", &Selection::everything(), &opts) else {
        return;
    };
    let mut tree = Tree::new(opts.merged_usr);
    let Ok(layer) = tree.add_layer(deb.entries, 1_700_000_000) else {
        return;
    };
    // Whatever read_deb and the tree accepted, the layer writer must take (or refuse) cleanly,
    // and with the bound on, the layer stays within a few times the bound: no entry type,
    // path depth or link count may make it grow faster than the input.
    let Ok(written) = write_layer(&layer, Compression::Gzip, 1_700_000_000) else {
        return;
    };
    if let Some(bound) = opts.max_data_bytes {
        assert!(
            written.tar_size <= 4 * bound + 4096,
            "a {} byte layer from a package bounded at {bound}",
            written.tar_size
        );
    }
});
