//! `plan()` on small rule sets and locks: the layers, their packages and the tags it makes,
//! or the exact error.

use std::path::Path;

use super::*;
use crate::digest::Digest;

/// Rules every case starts from: `static` <- `base`, a package-adding variant `debug`, a
/// config-only variant `nonroot`, and `debug-nonroot` combining both.
const RULES: &[(&str, &str)] = &[
    (
        "static.toml",
        "distros = ['t']\n[packages.files]\npaths = ['/etc/**', '?/usr/lib64/*']\n",
    ),
    (
        "base.toml",
        "parent = 'static'\ndistros = ['t']\n[packages.libc]\n[config]\nuser = '0'\n",
    ),
    (
        "variants/debug.toml",
        "distros = ['t']\n[packages.busybox]\n",
    ),
    (
        "variants/nonroot.toml",
        "distros = ['t']\n[config]\nuser = '65532'\n",
    ),
    (
        "variants/debug-nonroot.toml",
        "distros = ['t']\ncombines = ['debug', 'nonroot']\n",
    ),
];

/// Every package for amd64 and arm64, with the rules whose closure holds it.
const LOCKED: &[(&str, &[&str])] = &[
    ("files", &["static", "base"]),
    ("tzdata", &["static", "base"]),
    ("libc", &["base"]),
    ("gcc-base", &["base"]),
    ("busybox", &["debug"]),
];

struct Case {
    name: &'static str,
    /// Files replacing (or, with an empty text, removing) files of [`RULES`].
    rules: &'static [(&'static str, &'static str)],
    /// Replaces [`LOCKED`] when not empty.
    locked: &'static [(&'static str, &'static [&'static str])],
    /// Only these architectures are pinned (default: amd64 and arm64).
    pinned: &'static [Arch],
    images: &'static [&'static str],
    tags: &'static [&'static str],
    arches: &'static [Arch],
    want: Want,
}

enum Want {
    /// The plan, as [`summary`] writes it.
    Plan(&'static [&'static str]),
    /// The error, given the rules directory.
    Error(fn(&Path) -> PlanError),
}

const CASE: Case = Case {
    name: "",
    rules: &[],
    locked: &[],
    pinned: &[],
    images: &[],
    tags: &[],
    arches: &[Arch::Amd64],
    want: Want::Plan(&[]),
};

fn lock(c: &Case) -> Lock {
    let pinned = if c.pinned.is_empty() {
        vec![Arch::Amd64, Arch::Arm64]
    } else {
        c.pinned.to_vec()
    };
    let locked = if c.locked.is_empty() {
        LOCKED
    } else {
        c.locked
    };
    let mut packages = Vec::new();
    for &arch in &pinned {
        for (name, rules) in locked {
            packages.push(LockedPackage {
                name: (*name).into(),
                arch,
                version: "1".into(),
                architecture: arch.name().into(),
                suite: "s".into(),
                vendor: None,
                source: (*name).into(),
                source_version: "1".into(),
                filename: format!("pool/main/{name}_1.deb"),
                size: 1,
                sha256: Digest::of(name.as_bytes()),
                installed_size: 1,
                depends: Vec::new(),
                rules: rules.iter().map(|r| (*r).to_owned()).collect(),
            });
        }
    }
    Lock {
        lock_version: 1,
        distro: "t".into(),
        timestamp: "2026-01-01T00:00:00Z".into(),
        snapshot: None,
        merged_usr: true,
        architectures: pinned,
        suites: Vec::new(),
        vendors: Vec::new(),
        packages,
        tarballs: Vec::new(),
        excluded: Vec::new(),
    }
}

fn rules(c: &Case, dir: &Path) -> RuleSet {
    for (name, text) in RULES.iter().chain(c.rules) {
        let path = dir.join(name);
        if text.is_empty() {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    RuleSet::load(dir).unwrap()
}

/// One line per layer (its packages, `@rule` where a rule declares one) and per tag (its
/// layers: a rule name, or `+variant`).
fn summary(p: &Plan) -> Vec<String> {
    let short = |k: &LayerKey| match k {
        LayerKey::Level { rule, .. } => rule.clone(),
        LayerKey::Variant { variant, .. } => format!("+{variant}"),
        LayerKey::Added { .. } => "+add".to_owned(),
    };
    let mut out = Vec::new();
    for (k, lp) in &p.layers {
        let pkgs: Vec<String> = lp
            .packages
            .iter()
            .map(|p| match p.declared {
                Some((rule, _)) => format!("{}@{}", p.locked.name, rule.name),
                None => p.locked.name.clone(),
            })
            .collect();
        let below = lp.below.as_ref().map_or("-".to_owned(), short);
        out.push(format!("{k} on {below}: {}", pkgs.join(" ")));
    }
    for ip in &p.images {
        for tp in &ip.tags {
            let layers: Vec<String> = tp.layers.iter().map(short).collect();
            out.push(format!(
                "{}:{}-{} = {} user {}",
                ip.image,
                tp.tag,
                ip.arch,
                layers.join(" "),
                tp.settings.user.as_deref().unwrap_or("-")
            ));
        }
    }
    out
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "every tag of base: levels shared, variants on the image",
            images: &["base"],
            want: Want::Plan(&[
                "layer of rule base (amd64) on static: gcc-base libc@base",
                "layer of rule static (amd64) on -: files@static tzdata",
                "layer of variant debug on base (amd64) on base: busybox@debug",
                "base:latest-amd64 = static base user 0",
                "base:debug-amd64 = static base +debug user 0",
                "base:debug-nonroot-amd64 = static base +debug user 65532",
                "base:nonroot-amd64 = static base user 65532",
            ]),
            ..CASE
        },
        Case {
            name: "no names: every image and variant of the distro, every pinned arch",
            tags: &["latest"],
            arches: &[],
            want: Want::Plan(&[
                "layer of rule base (amd64) on static: gcc-base libc@base",
                "layer of rule static (amd64) on -: files@static tzdata",
                "layer of rule base (arm64) on static: gcc-base libc@base",
                "layer of rule static (arm64) on -: files@static tzdata",
                "base:latest-amd64 = static base user 0",
                "base:latest-arm64 = static base user 0",
                "static:latest-amd64 = static user -",
                "static:latest-arm64 = static user -",
            ]),
            ..CASE
        },
        Case {
            name: "a package a child declares is declared by the child",
            rules: &[(
                "base.toml",
                "parent = 'static'\ndistros = ['t']\n[packages.libc]\n[packages.gcc-base]\npaths = ['/usr/lib/*']\n",
            )],
            images: &["base"],
            tags: &["latest"],
            want: Want::Plan(&[
                "layer of rule base (amd64) on static: gcc-base@base libc@base",
                "layer of rule static (amd64) on -: files@static tzdata",
                "base:latest-amd64 = static base user -",
            ]),
            ..CASE
        },
        Case {
            name: "an architecture the lock lacks",
            pinned: &[Arch::Amd64],
            arches: &[Arch::Arm64],
            want: Want::Error(|_| PlanError::ArchNotPinned {
                lock: "snapshots/t.lock".into(),
                arch: Arch::Arm64,
                pinned: vec![Arch::Amd64],
                distro: "t".into(),
            }),
            ..CASE
        },
        Case {
            name: "an unknown image",
            images: &["nope"],
            want: Want::Error(|_| PlanError::UnknownImage {
                name: "nope".into(),
                distro: "t".into(),
                images: vec!["base".into(), "static".into()],
            }),
            ..CASE
        },
        Case {
            name: "an unknown variant lists the variants, not the images",
            tags: &["latest", "debgu"],
            want: Want::Error(|_| PlanError::UnknownVariant {
                name: "debgu".into(),
                distro: "t".into(),
                variants: vec!["debug".into(), "debug-nonroot".into(), "nonroot".into()],
            }),
            ..CASE
        },
        Case {
            name: "an image named as a variant",
            tags: &["base"],
            want: Want::Error(|_| PlanError::UnknownVariant {
                name: "base".into(),
                distro: "t".into(),
                variants: vec!["debug".into(), "debug-nonroot".into(), "nonroot".into()],
            }),
            ..CASE
        },
        Case {
            name: "a variant named as an image",
            images: &["debug"],
            want: Want::Error(|_| PlanError::NotAnImage {
                name: "debug".into(),
            }),
            ..CASE
        },
        Case {
            name: "an image of another distro",
            rules: &[("other.toml", "distros = ['u']\n")],
            images: &["other"],
            want: Want::Error(|d| PlanError::ImageNotForDistro {
                file: d.join("other.toml"),
                image: "other".into(),
                distro: "t".into(),
                distros: vec!["u".into()],
            }),
            ..CASE
        },
        Case {
            name: "a variant of another distro",
            rules: &[("variants/odd.toml", "distros = ['u']\n")],
            images: &["static"],
            tags: &["odd"],
            want: Want::Error(|d| PlanError::VariantNotForDistro {
                file: d.join("variants/odd.toml"),
                variant: "odd".into(),
                distro: "t".into(),
            }),
            ..CASE
        },
        Case {
            name: "a rule the lock has no closure for",
            locked: &[("files", &["static"]), ("tzdata", &["static"])],
            images: &["base"],
            tags: &["latest"],
            want: Want::Error(|d| PlanError::RuleNotPinned {
                lock: "snapshots/t.lock".into(),
                arch: Arch::Amd64,
                rule: "base".into(),
                file: d.join("base.toml"),
                distro: "t".into(),
            }),
            ..CASE
        },
        Case {
            name: "a new config-only image the lock has never seen: run pin",
            rules: &[(
                "app.toml",
                "parent = 'base'\ndistros = ['t']\n[config]\nentrypoint = ['/app']\n",
            )],
            images: &["app"],
            tags: &["latest"],
            want: Want::Error(|d| PlanError::RuleNotPinned {
                lock: "snapshots/t.lock".into(),
                arch: Arch::Amd64,
                rule: "app".into(),
                file: d.join("app.toml"),
                distro: "t".into(),
            }),
            ..CASE
        },
        Case {
            name: "a root the lock does not have",
            rules: &[(
                "static.toml",
                "distros = ['t']\n[packages.files]\n[packages.new]\n",
            )],
            images: &["static"],
            tags: &["latest"],
            want: Want::Error(|d| PlanError::RootNotPinned {
                file: d.join("static.toml"),
                root: "new".into(),
                lock: "snapshots/t.lock".into(),
                arch: Arch::Amd64,
                rule: "static".into(),
                distro: "t".into(),
            }),
            ..CASE
        },
        Case {
            name: "a parent's package missing from the child's closure",
            locked: &[
                ("files", &["static", "base"]),
                ("tzdata", &["static"]),
                ("libc", &["base"]),
            ],
            images: &["base"],
            tags: &["latest"],
            want: Want::Error(|_| PlanError::NotInChild {
                lock: "snapshots/t.lock".into(),
                package: "tzdata".into(),
                arch: Arch::Amd64,
                parent: "static".into(),
                child: "base".into(),
                distro: "t".into(),
            }),
            ..CASE
        },
        Case {
            name: "two combined variants adding packages",
            rules: &[
                (
                    "variants/nonroot.toml",
                    "distros = ['t']\n[packages.libc]\n",
                ),
                ("base.toml", ""),
            ],
            locked: &[
                ("files", &["static"]),
                ("tzdata", &["static"]),
                ("busybox", &["debug"]),
                ("libc", &["nonroot"]),
            ],
            images: &["static"],
            tags: &["debug-nonroot"],
            want: Want::Error(|d| PlanError::CombinedVariantsAddPackages {
                file: d.join("variants/debug-nonroot.toml"),
            }),
            ..CASE
        },
    ]
}

#[test]
fn plan_table() {
    for c in cases() {
        let dir = tempfile::tempdir().unwrap();
        let set = rules(&c, dir.path());
        let lock = lock(&c);
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let got = plan(
            &lock,
            "snapshots/t.lock",
            &set,
            &strings(c.images),
            &strings(c.tags),
            c.arches,
        );
        match (&c.want, got) {
            (Want::Plan(want), Ok(p)) => assert_eq!(summary(&p), *want, "{}", c.name),
            (Want::Error(want), Err(e)) => assert_eq!(e, want(dir.path()), "{}", c.name),
            (Want::Plan(_), Err(e)) => panic!("{}: unexpected error: {e}", c.name),
            (Want::Error(want), Ok(p)) => panic!(
                "{}: planned {:?} instead of failing with {}",
                c.name,
                summary(&p),
                want(dir.path())
            ),
        }
    }
}

#[test]
fn plan_errors_read_as_before() {
    let e = PlanError::ArchNotPinned {
        lock: "snapshots/t.lock".into(),
        arch: Arch::Arm64,
        pinned: vec![Arch::Amd64, Arch::Riscv64],
        distro: "t".into(),
    };
    assert_eq!(
        e.to_string(),
        "snapshots/t.lock has no arm64 packages (it has amd64, riscv64); run `debless pin --distro t --arch arm64`"
    );
    let e = PlanError::ImageNotForDistro {
        file: "rules/x.toml".into(),
        image: "x".into(),
        distro: "t".into(),
        distros: vec!["u".into(), "v".into()],
    };
    assert_eq!(
        e.to_string(),
        "rules/x.toml: image x is not defined for t (its distros: u, v)"
    );
}

#[test]
fn shards_split_the_work_architecture_first_and_keep_only_their_layers() {
    let dir = tempfile::tempdir().unwrap();
    let c = Case {
        arches: &[],
        ..CASE
    };
    let set = rules(&c, dir.path());
    let lock = lock(&c);
    let full = plan(&lock, "snapshots/t.lock", &set, &[], &[], &[]).unwrap();
    let units = |p: &Plan| -> Vec<String> {
        p.images
            .iter()
            .flat_map(|ip| {
                ip.tags
                    .iter()
                    .map(|t| format!("{}:{}-{}", ip.image, t.tag, ip.arch))
            })
            .collect()
    };
    let all = units(&full);
    // static and base, four tags each, two architectures.
    assert_eq!(all.len(), 16);
    for n in 1..=5 {
        let mut seen: Vec<String> = Vec::new();
        let mut sizes = Vec::new();
        for i in 1..=n {
            let mut p = full.clone();
            p.shard(Shard { index: i, count: n });
            let mine = units(&p);
            sizes.push(mine.len());
            // Every layer kept is used by a tag of the shard, and every one used is kept.
            let used: BTreeSet<&LayerKey> = p
                .images
                .iter()
                .flat_map(|ip| ip.tags.iter().flat_map(|t| &t.layers))
                .collect();
            assert_eq!(p.layers.keys().collect::<BTreeSet<_>>(), used, "{i}/{n}");
            seen.extend(mine);
        }
        seen.sort();
        let mut want = all.clone();
        want.sort();
        assert_eq!(seen, want, "the shards of {n} cover the work once");
        assert!(sizes.iter().all(|&s| s > 0), "{n} shards: {sizes:?}");
    }
    // Two shards of two architectures: one architecture each.
    for (i, arch) in [(1, Arch::Amd64), (2, Arch::Arm64)] {
        let mut p = full.clone();
        p.shard(Shard { index: i, count: 2 });
        assert!(p.images.iter().all(|ip| ip.arch == arch), "{i}/2");
        assert!(p.layers.keys().all(|k| k.arch() == arch), "{i}/2");
    }
}

#[test]
fn a_shard_is_i_of_n() {
    assert_eq!("2/3".parse(), Ok(Shard { index: 2, count: 3 }));
    for bad in ["0/2", "3/2", "1", "a/2", "1/0", ""] {
        assert_eq!(bad.parse::<Shard>(), Err(BadShard(bad.to_owned())), "{bad}");
    }
}

#[test]
fn the_command_lines_layer_tops_every_tag_and_its_config_wins() {
    let dir = tempfile::tempdir().unwrap();
    let c = Case {
        images: &["base"],
        arches: &[Arch::Amd64],
        ..CASE
    };
    let set = rules(&c, dir.path());
    let lock = lock(&c);
    let mut p = plan(
        &lock,
        "snapshots/t.lock",
        &set,
        &["base".into()],
        &[],
        &[Arch::Amd64],
    )
    .unwrap();
    let before = p.layers.len();
    // Any rule will do as the layer's owner; the CLI's is one without packages.
    p.add_on_top(set.get("static").unwrap());
    p.override_settings(&RuleConfig {
        user: Some("1000".into()),
        ..RuleConfig::default()
    });
    let s = summary(&p);
    // latest and nonroot share the top layer (nonroot adds none); debug gets its own.
    assert_eq!(p.layers.len(), before + 2, "{s:#?}");
    for tag in ["latest", "nonroot", "debug", "debug-nonroot"] {
        let line = s
            .iter()
            .find(|l| l.starts_with(&format!("base:{tag}-amd64 = ")))
            .unwrap();
        assert!(line.ends_with(" +add user 1000"), "{line}");
    }
    let debug = &p.images[0].tags.iter().find(|t| t.tag == "debug").unwrap();
    let top = debug.layers.last().unwrap();
    assert_eq!(
        p.layers[top].below.as_ref(),
        debug.layers.iter().rev().nth(1)
    );
    assert_eq!(top.arch(), Arch::Amd64);
    assert!(p.layers[top].packages.is_empty());
}
