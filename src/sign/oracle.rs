//! Independent implementations the tests check debless against: the `openssl` command
//! line and Python's `cryptography`, `pynacl`, `securesystemslib` (DSSE) and
//! `in-toto-attestation` packages. None of them shares code with debless, so agreement
//! means the bytes are right, not merely self-consistent.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::testing::{require, require_tool};

/// The Python packages the oracles import.
const PY_INSTALL: &str =
    "python3 -m pip install cryptography pynacl securesystemslib in-toto-attestation (make deps)";

/// Is `openssl` there (else SKIPPED, or a failure under CI)?
pub(crate) fn have_openssl() -> bool {
    require_tool("openssl", "apt-get install openssl (make deps)")
}

/// Does `python3` import `modules` (else SKIPPED, or a failure under CI)?
pub(crate) fn have_python(modules: &[&str]) -> bool {
    let script = modules
        .iter()
        .map(|m| format!("import {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    let ok = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        ok,
        &format!("python3 with {}", modules.join(", ")),
        PY_INSTALL,
    )
}

/// Run `openssl args...` in `dir`; its stdout, or a panic with its stderr.
pub(crate) fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    run(Command::new("openssl").args(args).current_dir(dir))
}

/// Run the Python `script` with `args` in `dir`; its stdout, or a panic with its stderr.
pub(crate) fn python(dir: &Path, script: &str, args: &[&str]) -> Vec<u8> {
    run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .current_dir(dir))
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("the oracle runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
