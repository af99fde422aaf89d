//! Stanzas of a binary Packages index, validated and reduced to what debless uses.

use crate::deb822;
use crate::digest::Digest;

/// One binary package stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package:`.
    pub name: String,
    /// `Version:` as written.
    pub version: String,
    /// `Architecture:` (`amd64`, `all`, ...).
    pub architecture: String,
    /// `Multi-Arch:` (`same`, `foreign`, `allowed`, or empty).
    pub multi_arch: String,
    /// Source package name (`Source:` or the package name).
    pub source: String,
    /// Source version (from `Source: name (version)` or the binary version).
    pub source_version: String,
    /// `Pre-Depends:` raw.
    pub pre_depends: String,
    /// `Depends:` raw.
    pub depends: String,
    /// `Provides:` raw.
    pub provides: String,
    /// `Conflicts:` raw.
    pub conflicts: String,
    /// `Breaks:` raw.
    pub breaks: String,
    /// `Essential: yes`.
    pub essential: bool,
    /// Pool path relative to the archive root.
    pub filename: String,
    /// `.deb` size in bytes.
    pub size: u64,
    /// `.deb` SHA256.
    pub sha256: Digest,
    /// `Installed-Size:` in KiB (0 when absent).
    pub installed_size: u64,
}

/// Why a Packages index was rejected.
#[derive(Debug, thiserror::Error)]
pub enum PackagesError {
    /// Not deb822.
    #[error("{0}")]
    Syntax(#[from] deb822::SyntaxError),
    /// A stanza is missing a field or has a malformed one.
    #[error("line {line}: {what}")]
    Stanza {
        /// 1-based line of the stanza.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

/// Longest value accepted in a single field; the longest in trixie (a Provides list) is
/// about 75 KiB.
const MAX_FIELD: usize = 1 << 20;

/// Parse every stanza of a Packages index.
pub fn parse(text: &str) -> Result<Vec<Package>, PackagesError> {
    let mut out = Vec::with_capacity(text.len() / 1200);
    for para in deb822::paragraphs(text) {
        out.push(from_paragraph(&para?)?);
    }
    Ok(out)
}

fn from_paragraph(p: &deb822::Paragraph<'_>) -> Result<Package, PackagesError> {
    let line = p.line;
    let err = |what: String| PackagesError::Stanza { line, what };
    for (name, value) in p.fields() {
        if value.len() > MAX_FIELD {
            return Err(err(format!(
                "field {name} is {} bytes long (limit {MAX_FIELD})",
                value.len()
            )));
        }
    }
    let required = |field: &str| {
        p.get(field)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| err(format!("stanza has no {field} field")))
    };
    let name = required("Package")?;
    if !valid_package_name(name) {
        return Err(err(format!("invalid package name {name:?}")));
    }
    let version = required("Version")?;
    let ctx = |what: String| err(format!("{name} {version}: {what}"));
    if version.parse::<debversion::Version>().is_err() || version.contains(char::is_whitespace) {
        return Err(ctx("invalid Version".into()));
    }
    let architecture = required("Architecture")?;
    let filename = required("Filename")?;
    if !safe_pool_path(filename) {
        return Err(ctx(format!(
            "unsafe Filename {filename:?} (must be a relative path without '..')"
        )));
    }
    let size = required("Size")?
        .parse::<u64>()
        .map_err(|_| ctx("malformed Size".into()))?;
    let sha256 = required("SHA256")?;
    let sha256 = Digest::from_hex_any_case(sha256)
        .map_err(|_| ctx(format!("malformed SHA256 {sha256:?}")))?;
    let installed_size = match p.get("Installed-Size") {
        Some(v) => v
            .parse::<u64>()
            .map_err(|_| ctx("malformed Installed-Size".into()))?,
        None => 0,
    };
    let (source, source_version) = match p.get("Source") {
        Some(src) => match src.split_once('(') {
            Some((n, v)) => (
                n.trim(),
                v.trim().strip_suffix(')').unwrap_or(v).trim().to_owned(),
            ),
            None => (src.trim(), version.to_owned()),
        },
        None => (name, version.to_owned()),
    };
    let field = |f: &str| collapse(p.get(f).unwrap_or(""));
    Ok(Package {
        name: name.to_owned(),
        version: version.to_owned(),
        architecture: architecture.to_owned(),
        multi_arch: p.get("Multi-Arch").unwrap_or("").to_owned(),
        source: source.to_owned(),
        source_version,
        pre_depends: field("Pre-Depends"),
        depends: field("Depends"),
        provides: field("Provides"),
        conflicts: field("Conflicts"),
        breaks: field("Breaks"),
        essential: p.get("Essential").is_some_and(|v| v == "yes"),
        filename: filename.to_owned(),
        size,
        sha256,
        installed_size,
    })
}

/// Relation fields may be folded over several lines; join them into one.
fn collapse(v: &str) -> String {
    if v.contains('\n') {
        v.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        v.to_owned()
    }
}

/// Debian policy 5.6.1: lower-case letters, digits, `+`, `-`, `.`; at least two characters.
pub fn valid_package_name(name: &str) -> bool {
    name.len() >= 2
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// A pool path is relative, has no empty, `.` or `..` components and no odd bytes.
pub fn safe_pool_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.bytes().any(|b| b.is_ascii_control() || b == b' ')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9ea7778e443144ca490668737a8ab22dd3e748bb99e805e22ec055abeb3c7fac";

    fn stanza(extra: &str) -> String {
        format!(
            "Package: libfoo1\nSource: foo (1.0-1)\nVersion: 1.0-1+b1\nArchitecture: amd64\nDepends: libc6 (>= 2.34),\n libbar | libbaz\nFilename: pool/main/f/foo/libfoo1_1.0-1+b1_amd64.deb\nSize: 100\nSHA256: {HASH}\n{extra}"
        )
    }

    #[test]
    fn parses_a_stanza() {
        let p = &parse(&stanza("Installed-Size: 7\n")).unwrap()[0];
        assert_eq!(p.source, "foo");
        assert_eq!(p.source_version, "1.0-1");
        assert_eq!(p.depends, "libc6 (>= 2.34), libbar | libbaz");
        assert_eq!(p.installed_size, 7);
    }

    #[test]
    fn rejects_unsafe_and_malformed_stanzas() {
        let dotdot = stanza("").replace("pool/main/f", "pool/../../etc");
        assert!(
            parse(&dotdot)
                .unwrap_err()
                .to_string()
                .contains("unsafe Filename")
        );
        let abs = stanza("").replace("Filename: pool", "Filename: /pool");
        assert!(parse(&abs).is_err());
        let short = stanza("").replace(HASH, "abc");
        assert!(parse(&short).unwrap_err().to_string().contains("SHA256"));
        let nosize = stanza("").replace("Size: 100\n", "");
        assert!(parse(&nosize).unwrap_err().to_string().contains("no Size"));
        let huge = stanza(&format!("Description: {}\n", "x".repeat(MAX_FIELD + 1)));
        assert!(parse(&huge).unwrap_err().to_string().contains("limit"));
        let badname = stanza("").replace("Package: libfoo1", "Package: Lib_Foo");
        assert!(
            parse(&badname)
                .unwrap_err()
                .to_string()
                .contains("package name")
        );
    }
}
