//! Table tests of pin's dependency resolution, run in-process at two levels over the same
//! rows: the solver alone (`debless::resolve` on stanzas parsed by the real Packages
//! reader), and the whole pin (`debless::pin::pin` against a signed fake archive
//! on 127.0.0.1, read back from the lock it writes). Each row states the exact package set
//! (`name=version`, `@suite` when not the first suite) and exclusions, or the exact error.
//!
//! `tests/pin.rs` runs the CLI on one rich archive; these rows isolate one rule each.

mod common;

use std::collections::BTreeMap;

use common::{Archive, Gpg, Pkg, Project, Server, SuiteOpts, pkg};
use debless::archive::packages;
use debless::pin::{PinOptions, pin};
use debless::resolve::{Excludes, Universe, resolve};
use debless::snapshot::lock::Lock;

/// The manifest's suites, in order; rows put packages in the first or the second.
const SUITES: [&str; 2] = ["test", "test-updates"];
const MANIFEST_PATH: &str = "snapshots/test.toml";
const RULE_PATH: &str = "rules/r.toml";

/// One case: the archive, one rule's roots and excludes, the manifest's excludes, and
/// what must come out.
struct Row {
    name: &'static str,
    /// Packages of suite `test` (amd64 index).
    test: Vec<Pkg>,
    /// Packages of suite `test-updates`.
    updates: Vec<Pkg>,
    /// The rule's root packages (sorted, as a rule file's `[packages.*]` tables are read).
    roots: &'static [&'static str],
    /// The rule's `exclude`.
    exclude: &'static [&'static str],
    /// The manifest's `exclude`.
    global_exclude: &'static [&'static str],
    /// Selected `name=version[@suite]`, sorted by name; or the resolver's error line.
    want: Result<&'static [&'static str], &'static str>,
    /// Exclusions as `name by FILE for REQUIRED,BY`.
    excluded: &'static [&'static str],
}

impl Default for Row {
    fn default() -> Row {
        Row {
            name: "",
            test: Vec::new(),
            updates: Vec::new(),
            roots: &["app"],
            exclude: &[],
            global_exclude: &[],
            want: Ok(&[]),
            excluded: &[],
        }
    }
}

/// An amd64 package.
fn p(name: &str, version: &str, fields: &[(&str, &str)]) -> Pkg {
    pkg(name, version, "amd64", fields)
}

/// An `Architecture: all` package.
fn all(name: &str, version: &str, fields: &[(&str, &str)]) -> Pkg {
    pkg(name, version, "all", fields)
}

fn rows() -> Vec<Row> {
    vec![
        // ---- alternatives: already selected, then excluded, then first satisfiable ----
        Row {
            name: "the first satisfiable alternative",
            test: vec![
                p("app", "1", &[("Depends", "xx | yy")]),
                p("xx", "1", &[]),
                p("yy", "1", &[]),
            ],
            want: Ok(&["app=1", "xx=1"]),
            ..Row::default()
        },
        Row {
            name: "an unsatisfiable first alternative is passed over",
            test: vec![
                p("app", "1", &[("Depends", "xx (>= 2) | yy")]),
                p("xx", "1", &[]),
                p("yy", "1", &[]),
            ],
            want: Ok(&["app=1", "yy=1"]),
            ..Row::default()
        },
        Row {
            name: "an already selected alternative beats the first",
            test: vec![
                p("app", "1", &[("Depends", "xx | yy")]),
                p("xx", "1", &[]),
                p("yy", "1", &[]),
            ],
            roots: &["app", "yy"],
            want: Ok(&["app=1", "yy=1"]),
            ..Row::default()
        },
        Row {
            name: "an excluded alternative counts as satisfied before the first satisfiable",
            test: vec![
                p("app", "1", &[("Depends", "xx | yy")]),
                p("xx", "1", &[]),
                p("yy", "1", &[]),
            ],
            exclude: &["yy"],
            want: Ok(&["app=1"]),
            excluded: &["yy by rules/r.toml for app"],
            ..Row::default()
        },
        Row {
            name: "an already selected alternative beats an excluded one",
            test: vec![
                p("app", "1", &[("Depends", "xx | yy")]),
                p("xx", "1", &[]),
                p("yy", "1", &[]),
            ],
            roots: &["app", "yy"],
            exclude: &["xx"],
            want: Ok(&["app=1", "yy=1"]),
            ..Row::default()
        },
        // ---- versioned constraints, in dpkg's ordering ----
        Row {
            name: "the highest version that satisfies the constraint",
            test: vec![
                p("app", "1", &[("Depends", "bee (<< 3)")]),
                p("bee", "1", &[]),
                p("bee", "2", &[]),
                p("bee", "3", &[]),
            ],
            want: Ok(&["app=1", "bee=2"]),
            ..Row::default()
        },
        Row {
            name: "an exact version",
            test: vec![
                p("app", "1", &[("Depends", "bee (= 1.0-2)")]),
                p("bee", "1.0-1", &[]),
                p("bee", "1.0-2", &[]),
                p("bee", "1.0-3", &[]),
            ],
            want: Ok(&["app=1", "bee=1.0-2"]),
            ..Row::default()
        },
        Row {
            name: "an epoch outranks any upstream version",
            test: vec![
                p("app", "1", &[("Pre-Depends", "lib (>= 1.5)")]),
                p("lib", "9.9-1", &[]),
                p("lib", "1:1.0-1", &[]),
            ],
            want: Ok(&["app=1", "lib=1:1.0-1"]),
            ..Row::default()
        },
        Row {
            name: "below an epoch only the epoch-less version is left",
            test: vec![
                p("app", "1", &[("Depends", "lib (<< 1:0)")]),
                p("lib", "9.9-1", &[]),
                p("lib", "1:1.0-1", &[]),
            ],
            want: Ok(&["app=1", "lib=9.9-1"]),
            ..Row::default()
        },
        Row {
            name: "a tilde sorts before the release",
            test: vec![
                p("app", "1", &[("Depends", "tee (>= 1.0)")]),
                p("tee", "1.0~rc1", &[]),
            ],
            want: Err("app -> tee (>= 1.0): no candidate for amd64 (available: 1.0~rc1)"),
            ..Row::default()
        },
        Row {
            name: "a tilde after the release admits its pre-releases",
            test: vec![
                p("app", "1", &[("Depends", "tee (>= 1.0~), you (>> 1.0-1)")]),
                p("tee", "1.0~rc1", &[]),
                p("you", "1.0-1+b1", &[]),
            ],
            want: Ok(&["app=1", "tee=1.0~rc1", "you=1.0-1+b1"]),
            ..Row::default()
        },
        // ---- virtual packages through Provides ----
        Row {
            name: "a virtual package takes the first provider by name",
            test: vec![
                p("app", "1", &[("Depends", "mta")]),
                p("postfix", "1", &[("Provides", "mta")]),
                p("exim4", "1", &[("Provides", "mta")]),
            ],
            want: Ok(&["app=1", "exim4=1"]),
            ..Row::default()
        },
        Row {
            name: "a versioned virtual needs a provider of that version",
            test: vec![
                p("app", "1", &[("Depends", "virt (>= 2)")]),
                p("p1", "1", &[("Provides", "virt (= 1)")]),
                p("p2", "1", &[("Provides", "virt (= 2)")]),
                p("p3", "1", &[("Provides", "virt")]),
            ],
            want: Ok(&["app=1", "p2=1"]),
            ..Row::default()
        },
        Row {
            name: "an unversioned Provides never satisfies a versioned dependency",
            test: vec![
                p("app", "1", &[("Depends", "virt (>= 1)")]),
                p("pp", "1", &[("Provides", "virt")]),
            ],
            want: Err("app -> virt (>= 1): no candidate for amd64"),
            ..Row::default()
        },
        Row {
            name: "an excluded provider is passed over for the next",
            test: vec![
                p("app", "1", &[("Depends", "virt")]),
                p("p1", "1", &[("Provides", "virt")]),
                p("p2", "1", &[("Provides", "virt")]),
            ],
            exclude: &["p1"],
            want: Ok(&["app=1", "p2=1"]),
            ..Row::default()
        },
        Row {
            name: "a virtual whose every provider is excluded is satisfied, recording the first",
            test: vec![
                p("app", "1", &[("Depends", "virt")]),
                p("p1", "1", &[("Provides", "virt")]),
                p("p2", "1", &[("Provides", "virt")]),
            ],
            exclude: &["p2"],
            global_exclude: &["p1"],
            want: Ok(&["app=1"]),
            excluded: &["p1 by snapshots/test.toml for app"],
            ..Row::default()
        },
        Row {
            name: "excluding a virtual name satisfies it without a provider",
            test: vec![
                p("app", "1", &[("Depends", "awk")]),
                p("mawk", "1", &[("Provides", "awk")]),
            ],
            global_exclude: &["awk"],
            want: Ok(&["app=1"]),
            excluded: &["awk by snapshots/test.toml for app"],
            ..Row::default()
        },
        // ---- architecture qualifiers and Architecture: all ----
        Row {
            name: ":any takes a Multi-Arch: allowed package",
            test: vec![
                p("app", "1", &[("Depends", "helper:any")]),
                all("helper", "1", &[("Multi-Arch", "allowed")]),
            ],
            want: Ok(&["app=1", "helper=1"]),
            ..Row::default()
        },
        Row {
            name: ":any refuses a package that is not Multi-Arch: allowed",
            test: vec![
                p("app", "1", &[("Depends", "helper:any")]),
                p("helper", "1", &[("Multi-Arch", "same")]),
            ],
            want: Err("app -> helper:any: no candidate for amd64"),
            ..Row::default()
        },
        Row {
            name: ":native takes the native and the all architecture",
            test: vec![
                p("app", "1", &[("Depends", "nat:native, mall:native")]),
                p("nat", "1", &[]),
                all("mall", "1", &[]),
            ],
            want: Ok(&["app=1", "mall=1", "nat=1"]),
            ..Row::default()
        },
        Row {
            name: "an Architecture: all root and dependency",
            test: vec![
                all("app", "1", &[("Depends", "tz")]),
                all("tz", "2024a-1", &[]),
            ],
            want: Ok(&["app=1", "tz=2024a-1"]),
            ..Row::default()
        },
        // ---- several suites ----
        Row {
            name: "the highest version across suites, from the suite that has it",
            test: vec![
                p("app", "1", &[("Depends", "libc6")]),
                p("libc6", "2.41-1", &[]),
            ],
            updates: vec![p("libc6", "2.41-2", &[])],
            want: Ok(&["app=1", "libc6=2.41-2@test-updates"]),
            ..Row::default()
        },
        Row {
            name: "an older version in a later suite loses",
            test: vec![p("app", "1", &[("Depends", "xx")]), p("xx", "2", &[])],
            updates: vec![p("xx", "1", &[])],
            want: Ok(&["app=1", "xx=2"]),
            ..Row::default()
        },
        Row {
            name: "the same version in two suites comes from the first",
            test: vec![p("app", "1", &[("Depends", "xx")]), p("xx", "1", &[])],
            updates: vec![p("xx", "1", &[])],
            want: Ok(&["app=1", "xx=1"]),
            ..Row::default()
        },
        Row {
            name: "a constraint only the older suite meets",
            test: vec![
                p("app", "1", &[("Depends", "libc6 (<< 2.41-2)")]),
                p("libc6", "2.41-1", &[]),
            ],
            updates: vec![p("libc6", "2.41-2", &[])],
            want: Ok(&["app=1", "libc6=2.41-1"]),
            ..Row::default()
        },
        // ---- exclusions recorded with why ----
        Row {
            name: "an exclusion records its file and every package that wanted it",
            test: vec![
                p(
                    "app",
                    "1",
                    &[("Depends", "bee, debconf (>= 0.5) | debconf-2.0")],
                ),
                p(
                    "bee",
                    "1",
                    &[("Pre-Depends", "debconf"), ("Depends", "perl")],
                ),
                all("debconf", "1.5", &[("Provides", "debconf-2.0")]),
                p("perl", "5.40", &[]),
            ],
            exclude: &["perl"],
            global_exclude: &["debconf"],
            want: Ok(&["app=1", "bee=1"]),
            excluded: &[
                "debconf by snapshots/test.toml for app,bee",
                "perl by rules/r.toml for bee",
            ],
            ..Row::default()
        },
        Row {
            name: "the manifest's exclusion wins when the rule names the same package",
            test: vec![p("app", "1", &[("Depends", "xx")]), p("xx", "1", &[])],
            exclude: &["xx"],
            global_exclude: &["xx"],
            want: Ok(&["app=1"]),
            excluded: &["xx by snapshots/test.toml for app"],
            ..Row::default()
        },
        // ---- failures ----
        Row {
            name: "an excluded root",
            test: vec![p("app", "1", &[])],
            global_exclude: &["app"],
            want: Err(
                "rules/r.toml names app, but snapshots/test.toml excludes it; remove one of the two",
            ),
            ..Row::default()
        },
        Row {
            name: "a virtual root",
            test: vec![p("pp", "1", &[("Provides", "virt")])],
            roots: &["virt"],
            want: Err(
                "rules/r.toml names virt: no candidate for amd64 in any suite (virt is virtual; name a provider such as pp)",
            ),
            ..Row::default()
        },
        Row {
            name: "an unmet dependency names the chain and the versions there are",
            test: vec![
                p("app", "1", &[("Depends", "mid")]),
                p("mid", "1", &[("Pre-Depends", "low (>= 2)")]),
                p("low", "1", &[]),
            ],
            updates: vec![p("low", "1.5", &[])],
            want: Err("app -> mid -> low (>= 2): no candidate for amd64 (available: 1.5, 1)"),
            ..Row::default()
        },
        Row {
            name: "a selected package in an unsuitable version is not replaced",
            test: vec![
                p("app", "1", &[("Depends", "bee (<< 2)")]),
                p("bee", "1", &[]),
                p("bee", "2", &[]),
            ],
            roots: &["app", "bee"],
            want: Err("app -> bee (<< 2): bee 2 is already selected and does not satisfy it"),
            ..Row::default()
        },
        Row {
            name: "Conflicts between selected packages",
            test: vec![
                p("app", "1", &[("Depends", "bee, cee")]),
                p("bee", "1", &[("Conflicts", "cee")]),
                p("cee", "1", &[]),
            ],
            want: Err("bee 1 Conflicts cee, but cee 1 is selected too (app -> bee ; app -> cee)"),
            ..Row::default()
        },
        Row {
            name: "Conflicts with a virtual name another selected package provides",
            test: vec![
                p("app", "1", &[("Depends", "bee, pp")]),
                p("bee", "1", &[("Conflicts", "virt")]),
                p("pp", "1", &[("Provides", "virt")]),
            ],
            want: Err("bee 1 Conflicts virt, but pp 1 is selected too (app -> bee ; app -> pp)"),
            ..Row::default()
        },
        Row {
            name: "versioned Breaks hit a selected version",
            test: vec![
                p("app", "1", &[("Depends", "bee, cee")]),
                p("bee", "1", &[("Breaks", "cee (<< 2)")]),
                p("cee", "1", &[]),
            ],
            want: Err(
                "bee 1 Breaks cee (<< 2), but cee 1 is selected too (app -> bee ; app -> cee)",
            ),
            ..Row::default()
        },
        Row {
            name: "versioned Breaks that miss the selected version",
            test: vec![
                p("app", "1", &[("Depends", "bee, cee")]),
                p("bee", "1", &[("Breaks", "cee (<< 1)")]),
                p("cee", "1", &[]),
            ],
            want: Ok(&["app=1", "bee=1", "cee=1"]),
            ..Row::default()
        },
    ]
}

/// What a row produced, in the row's terms.
type Outcome = Result<(Vec<String>, Vec<String>), String>;

/// `name=version`, with `@suite` unless it is the first suite.
fn selected(name: &str, version: &str, suite: &str) -> String {
    if suite == SUITES[0] {
        format!("{name}={version}")
    } else {
        format!("{name}={version}@{suite}")
    }
}

/// Compare every row's outcome with what it wants; fail once, listing every mismatch.
fn check(level: &str, run: &dyn Fn(&Row) -> Outcome) {
    let mut wrong = Vec::new();
    let rows = rows();
    for row in &rows {
        assert!(
            row.roots.is_sorted(),
            "{}: roots must be sorted, as a rule file's are read",
            row.name
        );
        let want: Outcome = match row.want {
            Ok(set) => Ok((
                set.iter().map(|s| s.to_string()).collect(),
                row.excluded.iter().map(|s| s.to_string()).collect(),
            )),
            Err(e) => Err(e.to_string()),
        };
        let got = run(row);
        if got != want {
            wrong.push(format!(
                "{}:\n    want {want:?}\n    got  {got:?}",
                row.name
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{level}: {} of {} rows differ:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
}

/// The stanzas of `pkgs` as the real Packages reader parses them.
fn parsed(pkgs: &[Pkg]) -> Vec<packages::Package> {
    let text: String = pkgs.iter().map(|p| p.stanza() + "\n").collect();
    packages::parse(&text).unwrap()
}

#[test]
fn the_solver_resolves_every_row() {
    check("debless::resolve", &|row| {
        let suites = [parsed(&row.test), parsed(&row.updates)];
        let lists: Vec<&[packages::Package]> = suites.iter().map(Vec::as_slice).collect();
        let universe = Universe::new("amd64", &lists);
        let roots: Vec<(String, String)> = row
            .roots
            .iter()
            .map(|r| (r.to_string(), RULE_PATH.to_string()))
            .collect();
        // As pin merges them: the manifest's first, then the rule's where not already there.
        let mut by_name: BTreeMap<String, String> = row
            .global_exclude
            .iter()
            .map(|e| (e.to_string(), MANIFEST_PATH.to_string()))
            .collect();
        for e in row.exclude {
            by_name
                .entry(e.to_string())
                .or_insert_with(|| RULE_PATH.to_string());
        }
        let closure =
            resolve(&universe, &roots, &Excludes { by_name }).map_err(|e| e.to_string())?;
        let set = closure
            .selected
            .iter()
            .map(|(name, c)| selected(name, &c.pkg.version, SUITES[c.suite]))
            .collect();
        let excluded = closure
            .excluded
            .iter()
            .map(|(name, (by, required_by))| {
                let required_by: Vec<&str> = required_by.iter().map(String::as_str).collect();
                format!("{name} by {by} for {}", required_by.join(","))
            })
            .collect();
        Ok((set, excluded))
    });
}

/// A signing key shared by every row's archive (key generation is the slow part).
struct Signer {
    gpg: Gpg,
    fpr: String,
}

fn toml_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// Pin one row: its own signed archive on 127.0.0.1, its own project with one rule.
fn pin_row(signer: &Signer, row: &Row) -> Outcome {
    let root = tempfile::tempdir().unwrap();
    let archive = Archive {
        root: root.path().to_owned(),
    };
    for (suite, pkgs) in SUITES.iter().zip([&row.test, &row.updates]) {
        archive.write_suite(
            "debian",
            suite,
            &[("amd64", pkgs.clone())],
            &signer.gpg,
            &signer.fpr,
            &SuiteOpts::default(),
        );
    }
    let server = Server::serve(&archive.root);
    let project = Project::new();
    project.write("snapshots/keys/main.asc", &signer.gpg.export(&signer.fpr));
    let suites: String = SUITES
        .iter()
        .map(|s| format!("\n[[suites]]\narchive = \"debian\"\nsuite = \"{s}\"\n"))
        .collect();
    project.write(
        MANIFEST_PATH,
        &format!(
            "distro = \"test\"\ncodename = \"test\"\narchitectures = [\"amd64\"]\nexclude = {}\n{suites}\n[[keys]]\nfile = \"keys/main.asc\"\nfingerprint = \"{}\"\n",
            toml_list(row.global_exclude),
            signer.fpr
        ),
    );
    let packages: String = row
        .roots
        .iter()
        .map(|r| format!("[packages.{r:?}]\n"))
        .collect();
    project.write(
        RULE_PATH,
        &format!(
            "distros = [\"test\"]\nexclude = {}\n{packages}",
            toml_list(row.exclude)
        ),
    );
    let opts = PinOptions {
        project: project.path().to_owned(),
        distro: "test".into(),
        date: None,
        mirrors: vec![server.url()],
        arches: vec![debless::arch::Arch::Amd64],
        drop_arches: vec![],
        // Each row is a resolution from scratch, whatever an earlier row's lock held.
        upgrade: debless::pin::Upgrade::All,
        snapshot_service: None,
        output: None,
        cache_dir: project.path().join("cache"),
        // No host apt sources: the --mirror list is all there is.
        etc_apt: project.path().join("no-apt"),
        env_mirrors: None,
        quiet: true,
        extra: debless::pin::Extra::None,
    };
    match pin(&opts) {
        Ok(report) => {
            let lock = Lock::read(&report.lock_path).unwrap();
            let set = lock
                .packages
                .iter()
                .map(|p| {
                    assert_eq!(p.arch, "amd64");
                    assert_eq!(p.rules, ["r"], "{}", p.name);
                    selected(&p.name, &p.version, &p.suite)
                })
                .collect();
            let excluded = lock
                .excluded
                .iter()
                .map(|e| {
                    format!(
                        "{} by {} for {}",
                        e.name,
                        e.excluded_by,
                        e.required_by.join(",")
                    )
                })
                .collect();
            Ok((set, excluded))
        }
        Err(e) => {
            // The resolver's line, behind pin's prefix; file names relative to the project.
            let text = e.to_string();
            let prefix = "pin test for amd64, rule r: ";
            let line = text
                .strip_prefix(prefix)
                .unwrap_or_else(|| panic!("{}: not a resolution error: {text}", row.name));
            assert!(
                !project.path().join("snapshots/test.lock").exists(),
                "{}: a failed pin wrote a lock",
                row.name
            );
            Err(line.replace(&format!("{}/", project.path().display()), ""))
        }
    }
}

#[test]
fn pin_resolves_every_row_from_a_signed_archive() {
    let gpg = Gpg::new();
    let fpr = gpg.generate("Test Archive <archive@invalid>", "0", None);
    let signer = Signer { gpg, fpr };
    check("debless::pin::pin", &|row| pin_row(&signer, row));
}

/// The harness itself: a wrong expectation must be reported, or every row above could
/// pass vacuously.
#[test]
#[should_panic(expected = "1 of")]
fn a_row_that_disagrees_fails_the_table() {
    check("debless::resolve", &|row| {
        if row.name == "the first satisfiable alternative" {
            Ok((vec!["app=1".into(), "yy=1".into()], vec![]))
        } else {
            match row.want {
                Ok(set) => Ok((
                    set.iter().map(|s| s.to_string()).collect(),
                    row.excluded.iter().map(|s| s.to_string()).collect(),
                )),
                Err(e) => Err(e.to_string()),
            }
        }
    });
}
