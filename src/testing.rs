//! Gating a test on a real tool it compares against (skopeo, keytool, syft...).
//!
//! A missing tool must not turn a test green with nothing checked. [`require`] fails the
//! test when `$CI` is set (CI installs every tool with `make deps`, so a missing one is a
//! broken machine), and elsewhere prints a loud `SKIPPED:` line to stderr so the test can
//! return. Unit tests use it under `cfg(test)`; integration tests through the
//! `test-support` feature (`tests/common` re-exports it).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Is `available` true? If not: panic when `$CI` is non-empty, else print
/// `SKIPPED: <test>: <what> missing; install with <install>` to stderr and return false.
pub fn require(available: bool, what: &str, install: &str) -> bool {
    if available {
        return true;
    }
    // libtest runs each test on a thread named after it.
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "{test}: {what} missing, and $CI is set so this fails instead of skipping; install with {install}"
        );
    }
    // Straight to the stderr handle: libtest captures `eprintln!` of a passing test, which
    // would hide the line as thoroughly as the silent returns this replaces.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {test}: {what} missing; install with {install}"
    );
    false
}

/// [`require`] the program `tool`: a path, or a name found on `$PATH`, that is executable.
pub fn require_tool(tool: &str, install: &str) -> bool {
    require(have_tool(tool), tool, install)
}

/// Is `tool` (a path, or a name looked up on `$PATH`) an executable file?
pub fn have_tool(tool: &str) -> bool {
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if tool.contains('/') {
        return executable(Path::new(tool));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| executable(&dir.join(tool))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_tools_on_path_and_by_path() {
        assert!(have_tool("sh"));
        assert!(have_tool("/bin/sh"));
        assert!(!have_tool("debless-no-such-tool"));
        assert!(!have_tool("/nonexistent/sh"));
        // A file that is not executable is no tool.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tool");
        std::fs::write(&f, "#!/bin/sh\n").unwrap();
        assert!(!have_tool(f.to_str().unwrap()));
    }
}
