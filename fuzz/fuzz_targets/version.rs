//! Debian version comparison: total, antisymmetric, reflexive, never panicking.
#![no_main]

use debless::archive::version;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Two versions separated by the first newline (a lone string compares with itself).
    let (a, b) = text.split_once('\n').unwrap_or((text, text));
    let ab = version::compare(a, b);
    let ba = version::compare(b, a);
    assert_eq!(
        ab,
        ba.reverse(),
        "compare({a:?}, {b:?}) is not antisymmetric"
    );
    assert_eq!(
        version::compare(a, a),
        std::cmp::Ordering::Equal,
        "{a:?} != itself"
    );
    assert_eq!(
        version::compare(b, b),
        std::cmp::Ordering::Equal,
        "{b:?} != itself"
    );
    let _ = version::parse(a);
});
