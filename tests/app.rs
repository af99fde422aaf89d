//! The application layer: a program added by a rule's `[[add]]` or by `build --add` runs
//! under runc with the config the rule and the command line give; the added layer is
//! deterministic, keyed by the host files' content, owned and moded as declared; a
//! hostile tarball and a missing file are refused with the place to fix.

mod common;

use std::io::Read;
use std::path::Path;

use common::fixture::*;
use common::{gcc_static, runc_run, static_programs_run_here, stderr};

/// A static C program: prints its uid, working directory, $GREETING, its arguments and
/// the first line of /app/motd.
const PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char cwd[256], motd[64] = "-";
    if (!getcwd(cwd, sizeof cwd)) return 2;
    FILE *f = fopen("/app/motd", "r");
    if (f && !fgets(motd, sizeof motd, f)) return 3;
    printf("uid=%d cwd=%s greeting=%s motd=%s args=", (int)getuid(), cwd, getenv("GREETING"), motd);
    for (int i = 1; i < argc; i++) printf("%s%s", i > 1 ? "," : "", argv[i]);
    printf("\n");
    return 0;
}
"#;

/// The worked example of docs/app.md, on the fixture's `static` image.
const HELLO: &str = r#"
description = "hello, a static program, on static"
parent = "static"
distros = ["test"]

[[add]]
src = "build/hello"
dest = "/app/hello"
owner = "65532:65532"
mode = "0755"

[[add]]
src = "motd"
dest = "/app/motd"

[config]
entrypoint = ["/app/hello"]
cmd = ["from-rule"]
user = "65532"
workdir = "/app"
env = { GREETING = "hi" }
annotations = { "org.opencontainers.image.version" = "1.0.0" }
"#;

/// Run the bundle `debless unpack --bundle` makes of `layout:tag`, returning stdout.
fn run_image(f: &Fixture, layout: &Path, tag: &str, bundle: &Path) -> String {
    let o = f.project.run(&[
        "unpack",
        &format!("{}:{tag}", layout.display()),
        bundle.to_str().unwrap(),
        "--bundle",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    runc_run(
        bundle,
        &format!(
            "debless-app-{}",
            bundle.file_name().unwrap().to_string_lossy()
        ),
    )
}

#[test]
fn a_program_added_by_a_rule_runs_under_runc_with_its_config() {
    if !static_programs_run_here() {
        return;
    }
    let f = Fixture::new();
    let p = f.project.path();
    std::fs::create_dir_all(p.join("build")).unwrap();
    std::fs::write(p.join("hello.c"), PROGRAM).unwrap();
    gcc_static(&p.join("hello.c"), &p.join("build/hello"));
    f.project.write("motd", "welcome\n");
    f.project.write("rules/hello.toml", HELLO);
    let o = f.run(&["pin", "--distro", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = f.build_ok("out", &["hello", "--variant", "latest", "--arch", "amd64"]);
    let layout = out.join("hello-test");
    let scratch = tempfile::tempdir().unwrap();
    let stdout = run_image(&f, &layout, "latest", &scratch.path().join("rule"));
    assert_eq!(
        stdout,
        "uid=65532 cwd=/app greeting=hi motd=welcome\n args=from-rule\n"
    );
    let manifest = blob(&layout, &tags(&layout)["latest-amd64"]);
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "1.0.0"
    );

    // The command line overrides the rule: Cmd and WorkingDir replaced, Env merged.
    let out = f.build_ok(
        "out-cli",
        &[
            "hello",
            "--variant",
            "latest",
            "--arch",
            "amd64",
            "--cmd",
            r#"["from cli", "b"]"#,
            "--env",
            "GREETING=yo",
            "--workdir",
            "/",
        ],
    );
    let stdout = run_image(
        &f,
        &out.join("hello-test"),
        "latest",
        &scratch.path().join("cli"),
    );
    assert_eq!(
        stdout,
        "uid=65532 cwd=/ greeting=yo motd=welcome\n args=from cli,b\n"
    );
}

/// The uncompressed tar of a layout's gzip layer.
fn layer_tar(layout: &Path, digest: &str) -> Vec<u8> {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// path -> (mode, uid, gid, mtime, content) of a layer's entries.
fn entries(tar: &[u8]) -> Vec<(String, u32, u64, u64, u64, Vec<u8>)> {
    let mut a = tar::Archive::new(tar);
    let mut out = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((
            e.path().unwrap().display().to_string(),
            h.mode().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.mtime().unwrap(),
            data,
        ));
    }
    out
}

#[test]
fn an_added_layer_is_deterministic_owned_as_declared_and_never_stale() {
    let f = Fixture::new();
    let host = tempfile::tempdir().unwrap();
    let site = host.path().join("site");
    std::fs::create_dir_all(site.join("css")).unwrap();
    std::fs::write(site.join("index.html"), "<p>one</p>").unwrap();
    std::fs::write(site.join("css/a.css"), "p{}").unwrap();
    let add = format!("{}:/srv/site:1000:1001", site.display());
    let sel = ["static", "--variant", "latest", "--arch", "amd64"];
    let with_add = |out: &str| {
        let mut args = sel.to_vec();
        args.extend(["--add", add.as_str()]);
        f.build_json(out, &args)
    };

    let plain = f.build_ok("plain", &sel).join("static-test");
    let first = with_add("a");
    let a = f.out("a").join("static-test");
    let second = with_add("b");
    let b = f.out("b").join("static-test");
    assert_eq!(tags(&a)["latest-amd64"], tags(&b)["latest-amd64"]);
    assert_eq!(first["layers"]["made"], 1, "{first}");
    assert_eq!(
        second["layers"]["made"], 0,
        "an unchanged file hits: {second}"
    );
    // Made again from nothing, on a machine without the cache: the same bytes.
    f.forget_layers();
    with_add("c");
    assert_eq!(
        tags(&a)["latest-amd64"],
        tags(&f.out("c").join("static-test"))["latest-amd64"]
    );

    // One layer on top of the image's own, which do not move.
    let layers = layer_digests(&a, "latest-amd64");
    assert_eq!(
        layers[..layers.len() - 1],
        layer_digests(&plain, "latest-amd64")
    );
    let top = entries(&layer_tar(&a, layers.last().unwrap()));
    let time = top[0].4;
    let got: Vec<(&str, u32, u64, u64)> = top
        .iter()
        .map(|(p, m, u, g, t, _)| {
            assert_eq!(*t, time, "{p}: every entry has the layer's time");
            (p.as_str(), *m, *u, *g)
        })
        .collect();
    assert_eq!(
        got,
        [
            ("srv/", 0o755, 0, 0),
            ("srv/site/", 0o755, 1000, 1001),
            ("srv/site/css/", 0o755, 1000, 1001),
            ("srv/site/css/a.css", 0o644, 1000, 1001),
            ("srv/site/index.html", 0o644, 1000, 1001),
        ]
    );

    // A changed host file makes the layer again (never the cached one), and only it.
    std::fs::write(site.join("index.html"), "<p>two</p>").unwrap();
    let changed = with_add("d");
    assert_eq!(changed["layers"]["made"], 1, "{changed}");
    let d = f.out("d").join("static-test");
    let d_layers = layer_digests(&d, "latest-amd64");
    assert_ne!(d_layers.last(), layers.last());
    assert_eq!(d_layers[..d_layers.len() - 1], layers[..layers.len() - 1]);
    let top = entries(&layer_tar(&d, d_layers.last().unwrap()));
    assert_eq!(top.last().unwrap().5, b"<p>two</p>");
}

#[test]
fn command_line_config_overrides_reach_the_image_config() {
    let f = Fixture::new();
    let out = f.build_ok(
        "out",
        &[
            "tools",
            "--variant",
            "latest",
            "--arch",
            "amd64",
            "--entrypoint",
            r#"["/usr/bin/tool", "--serve"]"#,
            "--cmd",
            "a  b",
            "--env",
            "MODE=prod",
            "--user",
            "1000:1000",
            "--workdir",
            "/srv",
            "--label",
            "team=web",
            "--annotation",
            "org.opencontainers.image.version=2.1",
        ],
    );
    let layout = out.join("tools-test");
    let manifest = blob(&layout, &tags(&layout)["latest-amd64"]);
    let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap())["config"].clone();
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/bin/tool", "--serve"])
    );
    assert_eq!(config["Cmd"], serde_json::json!(["a", "b"]));
    // Merged by name: the rules' PATH stays.
    assert_eq!(
        config["Env"],
        serde_json::json!(["MODE=prod", "PATH=/usr/sbin:/usr/bin"])
    );
    assert_eq!(config["User"], "1000:1000");
    assert_eq!(config["WorkingDir"], "/srv");
    assert_eq!(config["Labels"]["team"], "web");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.version"],
        "2.1"
    );
    // debless's own annotations stay.
    assert!(manifest["annotations"]["dev.debless.packages"].is_string());

    let o = f.build("bad", &["tools", "--env", "NOEQUALS"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--env \"NOEQUALS\": write it as KEY=VALUE"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_hostile_tarball_and_a_missing_file_are_refused_naming_them() {
    let f = Fixture::new();
    let host = tempfile::tempdir().unwrap();
    let evil = host.path().join("evil.tar");
    std::fs::write(
        &evil,
        debless::deb::testdeb::raw_tar(&[debless::deb::testdeb::Raw::file(
            "../../etc/cron.d/evil",
            b"* * * * * root sh\n",
        )]),
    )
    .unwrap();
    let o = f.build(
        "out",
        &["static", "--add", &format!("{}:/srv/", evil.display())],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(&format!(
            "command line --add: add {} -> /srv/",
            evil.display()
        )) && e.contains("has a `..` component"),
        "{e}"
    );

    f.project.write(
        "rules/app.toml",
        "parent = 'static'\ndistros = ['test']\n[[add]]\nsrc = 'build/server'\ndest = '/app/server'\n",
    );
    let o = f.run(&["pin", "--distro", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = f.build("out", &["app"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("rules/app.toml: add build/server -> /app/server")
            && e.contains("build/server does not exist; build the program first, or fix src"),
        "{e}"
    );
}
