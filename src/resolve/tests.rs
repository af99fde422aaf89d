//! The solver against small hand-made universes.

use super::*;

fn pkg(name: &str, version: &str, extra: &[(&str, &str)]) -> Package {
    let mut p = Package {
        name: name.into(),
        version: version.into(),
        architecture: "amd64".into(),
        multi_arch: String::new(),
        source: name.into(),
        source_version: version.into(),
        pre_depends: String::new(),
        depends: String::new(),
        provides: String::new(),
        conflicts: String::new(),
        breaks: String::new(),
        essential: false,
        filename: format!("pool/main/{name}_{version}_amd64.deb"),
        size: 1,
        sha256: crate::digest::Digest::of(b""),
        installed_size: 1,
    };
    for (k, v) in extra {
        let v = v.to_string();
        match *k {
            "Depends" => p.depends = v,
            "Pre-Depends" => p.pre_depends = v,
            "Provides" => p.provides = v,
            "Conflicts" => p.conflicts = v,
            "Breaks" => p.breaks = v,
            "Architecture" => p.architecture = v,
            "Multi-Arch" => p.multi_arch = v,
            _ => panic!("{k}"),
        }
    }
    p
}

fn run(pkgs: &[Package], roots: &[&str], ex: &[&str]) -> Result<Vec<String>, String> {
    let u = Universe::new("amd64", &[pkgs]);
    let roots: Vec<_> = roots
        .iter()
        .map(|r| (r.to_string(), "rules/t.toml".to_string()))
        .collect();
    let ex = Excludes {
        by_name: ex
            .iter()
            .map(|e| (e.to_string(), "snapshots/t.toml".to_string()))
            .collect(),
    };
    resolve(&u, &roots, &ex)
        .map(|c| {
            c.selected
                .iter()
                .map(|(n, c)| format!("{n}={}", c.pkg.version))
                .collect()
        })
        .map_err(|e| e.to_string())
}

#[test]
fn picks_highest_satisfying_and_follows_pre_depends() {
    let pkgs = [
        pkg("a", "1", &[("Pre-Depends", "b (>= 2)")]),
        pkg("b", "1", &[]),
        pkg("b", "3", &[("Depends", "c:any")]),
        pkg(
            "c",
            "1",
            &[("Multi-Arch", "allowed"), ("Architecture", "all")],
        ),
    ];
    assert_eq!(run(&pkgs, &["a"], &[]).unwrap(), ["a=1", "b=3", "c=1"]);
}

#[test]
fn alternatives_prefer_selected_then_first() {
    let pkgs = [
        pkg("a", "1", &[("Depends", "x | y")]),
        pkg("b", "1", &[("Depends", "y")]),
        pkg("x", "1", &[]),
        pkg("y", "1", &[]),
    ];
    assert_eq!(run(&pkgs, &["b", "a"], &[]).unwrap(), ["a=1", "b=1", "y=1"]);
    assert_eq!(run(&pkgs, &["a"], &[]).unwrap(), ["a=1", "x=1"]);
}

#[test]
fn virtual_and_versioned_provides() {
    let pkgs = [
        pkg("a", "1", &[("Depends", "v (>= 2), w")]),
        pkg("p1", "1", &[("Provides", "v (= 1), w")]),
        pkg("p2", "1", &[("Provides", "v (= 2)")]),
    ];
    assert_eq!(run(&pkgs, &["a"], &[]).unwrap(), ["a=1", "p1=1", "p2=1"]);
}

#[test]
fn excluded_dependency_counts_as_satisfied() {
    let pkgs = [
        pkg(
            "a",
            "1",
            &[("Depends", "debconf (>= 0.5) | debconf-2.0, perlapi")],
        ),
        pkg("debconf", "1", &[]),
        pkg("perl-base", "1", &[("Provides", "perlapi")]),
    ];
    let u = Universe::new("amd64", &[&pkgs[..]]);
    let ex = Excludes {
        by_name: [("debconf", "g"), ("perl-base", "g")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    };
    let cl = resolve(&u, &[("a".into(), "r".into())], &ex).unwrap();
    assert_eq!(cl.selected.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(
        cl.excluded.keys().collect::<Vec<_>>(),
        ["debconf", "perl-base"]
    );
    assert!(
        run(&pkgs, &["debconf"], &["debconf"])
            .unwrap_err()
            .contains("excludes it")
    );
}

#[test]
fn unmet_versioned_dependency_prints_the_chain() {
    let pkgs = [
        pkg("top", "1", &[("Depends", "mid")]),
        pkg("mid", "1", &[("Depends", "low (= 2)")]),
        pkg("low", "1", &[]),
    ];
    let e = run(&pkgs, &["top"], &[]).unwrap_err();
    assert_eq!(
        e,
        "top -> mid -> low (= 2): no candidate for amd64 (available: 1)"
    );
}

#[test]
fn a_selected_provider_in_the_wrong_version_is_not_swapped() {
    // p 2 is selected as a root; b needs v (= 1), which only p 1 provides.
    let pkgs = [
        pkg("p", "2", &[("Provides", "v (= 2)")]),
        pkg("p", "1", &[("Provides", "v (= 1)")]),
        pkg("b", "1", &[("Depends", "v (= 1)")]),
    ];
    let e = run(&pkgs, &["p", "b"], &[]).unwrap_err();
    assert!(e.starts_with("b -> v (= 1): no candidate for amd64"), "{e}");
}

#[test]
fn conflicts_and_breaks_are_errors() {
    let pkgs = [
        pkg("a", "1", &[("Depends", "b, c")]),
        pkg("b", "1", &[("Breaks", "c (<< 2)")]),
        pkg("c", "1", &[]),
    ];
    let e = run(&pkgs, &["a"], &[]).unwrap_err();
    assert!(
        e.starts_with("b 1 Breaks c (<< 2), but c 1 is selected too"),
        "{e}"
    );
    let ok = [pkg("a", "1", &[("Conflicts", "v"), ("Provides", "v")])];
    assert!(
        run(&ok, &["a"], &[]).is_ok(),
        "self-conflict via Provides is allowed"
    );
}

fn run_preferring(pkgs: &[Package], roots: &[&str], locked: &[(&str, &str)]) -> Vec<String> {
    let locked = locked
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let u = Universe::with_preferences("amd64", &[pkgs], &locked);
    let roots: Vec<_> = roots
        .iter()
        .map(|r| (r.to_string(), "rules/t.toml".to_string()))
        .collect();
    let ex = Excludes {
        by_name: BTreeMap::new(),
    };
    resolve(&u, &roots, &ex)
        .unwrap()
        .selected
        .iter()
        .map(|(n, c)| format!("{n}={}", c.pkg.version))
        .collect()
}

#[test]
fn locked_versions_are_kept_while_they_satisfy() {
    let pkgs = [
        pkg("a", "1", &[("Depends", "lib")]),
        pkg("lib", "1", &[]),
        pkg("lib", "2", &[]),
        pkg("lib", "3", &[]),
        pkg("b", "1", &[("Depends", "lib (>= 3)")]),
    ];
    // Unlocked: the highest. Locked: the locked one, as a root or a dependency.
    assert_eq!(run_preferring(&pkgs, &["a"], &[]), ["a=1", "lib=3"]);
    assert_eq!(
        run_preferring(&pkgs, &["a"], &[("lib", "2")]),
        ["a=1", "lib=2"]
    );
    assert_eq!(run_preferring(&pkgs, &["lib"], &[("lib", "1")]), ["lib=1"]);
    // A constraint the locked version does not meet moves it, to the highest.
    assert_eq!(
        run_preferring(&pkgs, &["b"], &[("lib", "2")]),
        ["b=1", "lib=3"]
    );
    // A locked version the archive no longer offers cannot be kept.
    assert_eq!(
        run_preferring(&pkgs, &["a"], &[("lib", "0.9")]),
        ["a=1", "lib=3"]
    );
}

#[test]
fn a_locked_provider_version_is_kept_for_a_virtual_dependency() {
    let pkgs = [
        pkg("a", "1", &[("Depends", "v")]),
        pkg("p", "1", &[("Provides", "v")]),
        pkg("p", "2", &[("Provides", "v")]),
    ];
    assert_eq!(run_preferring(&pkgs, &["a"], &[]), ["a=1", "p=2"]);
    assert_eq!(run_preferring(&pkgs, &["a"], &[("p", "1")]), ["a=1", "p=1"]);
}

#[test]
fn a_deep_unmet_chain_is_reported_in_bounded_space() {
    let mut pkgs: Vec<Package> = (0..2000)
        .map(|i| {
            pkg(
                &format!("link{i}"),
                "1",
                &[("Depends", &format!("link{}", i + 1))],
            )
        })
        .collect();
    pkgs.push(pkg("link2000", "1", &[("Depends", "gone (>= 2)")]));
    pkgs.extend((0..100).map(|v| pkg("gone", &format!("1.{v}"), &[])));
    let e = run(&pkgs, &["link0"], &[]).unwrap_err();
    assert!(e.len() < 400, "{} bytes: {e}", e.len());
    assert!(
        e.starts_with("link0 -> link1 -> link2 -> link3 -> ... (1993 more) -> link1997 -> link1998 -> link1999 -> link2000 -> gone (>= 2): no candidate for amd64 (available: 1.99, 1.98,"),
        "{e}"
    );
    assert!(e.ends_with(" and 92 more)"), "{e}");
}
