//! Rule files: the input is one image rule, optionally followed by a variant after a
//! `\n#---\n` line, loaded the way `debless` loads `rules/`.
#![no_main]

use debless::arch::Arch;
use debless::rules::RuleSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (image, variant) = match data.windows(6).position(|w| w == b"\n#---\n") {
        Some(i) => (&data[..i], Some(&data[i + 6..])),
        None => (data, None),
    };
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(rules.join("variants")).expect("tempdir is writable");
    std::fs::write(rules.join("x.toml"), image).expect("tempdir is writable");
    if let Some(v) = variant {
        std::fs::write(rules.join("variants/v.toml"), v).expect("tempdir is writable");
    }
    if let Ok(set) = RuleSet::load(&rules) {
        for distro in ["debian13", "debian12"] {
            for r in set.images_for(distro) {
                let _ = set.chain(&r.name);
                for arch in [Arch::Amd64, Arch::S390x] {
                    let _ = r.roots(distro, arch);
                    let _ = set.builds_for(&r.name, arch);
                }
                let _ = set.architectures(&r.name);
            }
            for v in set.variants_for(distro) {
                let _ = set.variant_parts(&v.name);
            }
        }
    }
});
