//! Packages index parsing (and the deb822 paragraph splitter under it).
#![no_main]

use debless::archive::packages;
use debless::deb822;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for p in deb822::paragraphs(text) {
        if let Ok(p) = p {
            let _ = p.get("Package");
        }
    }
    if let Ok(pkgs) = packages::parse(text) {
        for p in &pkgs {
            // What the parser accepted must be what the rest of debless relies on.
            assert!(packages::valid_package_name(&p.name), "{:?}", p.name);
        }
    }
});
