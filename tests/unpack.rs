//! `debless unpack`: a hermetic image unpacked to a runc bundle runs under the real runc,
//! and its root filesystem is what umoci's unpack makes of the same (gzip) image.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::fixture::*;
use common::{
    DebFile, Pkg, build_deb, gcc_static, require_tool, run_ok, runc_run, static_programs_run_here,
    stderr,
};

/// A static C program: prints its arguments, uid, working directory and $GREETING.
const PROGRAM: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char cwd[256];
    if (!getcwd(cwd, sizeof cwd)) return 2;
    printf("uid=%d cwd=%s greeting=%s args=", (int)getuid(), cwd, getenv("GREETING"));
    for (int i = 1; i < argc; i++) printf("%s%s", i > 1 ? "," : "", argv[i]);
    printf("\n");
    return 0;
}
"#;

fn static_program(dir: &Path) -> Vec<u8> {
    let src = dir.join("tool.c");
    std::fs::write(&src, PROGRAM).unwrap();
    let bin = dir.join("tool");
    gcc_static(&src, &bin);
    std::fs::read(bin).unwrap()
}

/// The fixture's packages, with the amd64 `tools` shipping a real static program.
fn packages(program: &[u8]) -> impl Fn(&str) -> Vec<Pkg> + '_ {
    move |arch| {
        let mut pkgs = debs(arch);
        if arch == "amd64" {
            let tools = pkgs.iter_mut().find(|p| p.name == "tools").unwrap();
            tools.deb = Some(build_deb(
                "tools",
                "1.0",
                arch,
                &[
                    ("usr/bin/tool", DebFile::File(program.to_vec(), 0o755)),
                    (
                        "usr/sbin/suidtool",
                        DebFile::File(b"suid\n".to_vec(), 0o4755),
                    ),
                ],
                "xz",
            ));
        }
        pkgs
    }
}

#[test]
fn an_unpacked_bundle_runs_under_runc() {
    if !static_programs_run_here() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let program = static_program(scratch.path());
    let f = Fixture::with_packages(&packages(&program));
    f.project.write(
        "rules/tools.toml",
        &TOOLS.replace(
            "entrypoint = [\"/usr/bin/tool\"]",
            "entrypoint = [\"/usr/bin/tool\"]\ncmd = [\"a\", \"b\"]\nenv = { GREETING = \"hi\" }\nworkdir = \"/tmp\"",
        ),
    );
    let o = f.run(&["pin", "--distro", "test"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for compression in ["gzip", "zstd"] {
        let out = f.build_ok(
            compression,
            &["tools", "--variant", "latest", "--compression", compression],
        );
        let bundle = scratch.path().join(format!("bundle-{compression}"));
        // `latest` is a multi-arch index: the host's platform is picked.
        let o = f.project.run(&[
            "unpack",
            &format!("{}:latest", out.join("tools-test").display()),
            bundle.to_str().unwrap(),
            "--bundle",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("linux/amd64"), "{}", stderr(&o));
        let stdout = runc_run(&bundle, &format!("debless-unpack-{compression}"));
        assert_eq!(
            stdout, "uid=0 cwd=/tmp greeting=hi args=a,b\n",
            "{compression}"
        );
    }
    // `-- COMMAND` replaces Entrypoint and Cmd; the image's Env and WorkingDir stay.
    let bundle = scratch.path().join("bundle-command");
    let o = f.project.run(&[
        "unpack",
        &format!("{}:latest", f.out("gzip").join("tools-test").display()),
        bundle.to_str().unwrap(),
        "--bundle",
        "--",
        "/usr/bin/tool",
        "given",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = runc_run(&bundle, "debless-unpack-command");
    assert_eq!(stdout, "uid=0 cwd=/tmp greeting=hi args=given\n");
}

/// Type, mode, owner, size, mtime, link target and content of every path under `root`.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let what = if m.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                stack.push(p.clone());
                "dir".to_owned()
            } else {
                format!("file {}", common::sha256(&std::fs::read(&p).unwrap()))
            };
            let mode = if m.file_type().is_symlink() {
                0
            } else {
                m.permissions().mode() & 0o7777
            };
            out.insert(
                rel,
                format!(
                    "{what} mode={mode:o} owner={}:{} nlink={} mtime={}",
                    m.uid(),
                    m.gid(),
                    if m.is_dir() { 0 } else { m.nlink() },
                    if m.file_type().is_symlink() {
                        0
                    } else {
                        m.mtime()
                    }
                ),
            );
        }
    }
    out
}

#[test]
fn the_rootfs_is_what_umoci_unpacks() {
    if !require_tool("umoci", "make deps (apt-get install umoci)") {
        return;
    }
    let f = Fixture::new();
    let out = f.build_ok("out", &["tools", "--variant", "latest"]);
    let layout = out.join("tools-test");
    let scratch = tempfile::tempdir().unwrap();
    let umoci = scratch.path().join("umoci");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:latest-arm64", layout.display()))
            .arg(&umoci),
    );
    let ours = scratch.path().join("ours");
    let o = f.project.run(&[
        "unpack",
        &format!("{}:latest-arm64", layout.display()),
        ours.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let theirs = tree(&umoci.join("rootfs"));
    let mine = tree(&ours);
    assert!(
        theirs.len() > 10,
        "umoci unpacked almost nothing: {theirs:?}"
    );
    for (path, want) in &theirs {
        assert_eq!(mine.get(path), Some(want), "{path}");
    }
    assert_eq!(
        mine.len(),
        theirs.len(),
        "{:?}",
        mine.keys()
            .filter(|k| !theirs.contains_key(*k))
            .collect::<Vec<_>>()
    );
    // A tag on one manifest of another architecture is unpacked as asked: the
    // platform is only a choice among an index's images.
    let o = f.project.run(&[
        "unpack",
        &format!("{}:latest", layout.display()),
        scratch.path().join("arm").to_str().unwrap(),
        "--platform",
        "linux/arm64",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(tree(&scratch.path().join("arm")), mine);
}
