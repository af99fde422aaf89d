//! The Release file of a suite: its dates and the hashes of its indices.

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::deb822;
use crate::digest::Digest;

/// One line of the Release file's SHA256 list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// SHA256 of the file.
    pub sha256: Digest,
    /// Size in bytes.
    pub size: u64,
}

/// The parsed (already signature-verified) Release of one suite.
#[derive(Debug, Clone)]
pub struct Release {
    /// `Suite:` (e.g. `stable`).
    pub suite: Option<String>,
    /// `Codename:` (e.g. `trixie`, `trixie-security`).
    pub codename: Option<String>,
    /// `Version:` (e.g. `13.2`), when present.
    pub version: Option<String>,
    /// `Date:`.
    pub date: Timestamp,
    /// `Valid-Until:`, when present.
    pub valid_until: Option<Timestamp>,
    /// `Acquire-By-Hash: yes`.
    pub acquire_by_hash: bool,
    /// `Architectures:`.
    pub architectures: Vec<String>,
    /// `Components:`.
    pub components: Vec<String>,
    /// Whether Architecture: all packages are listed in every binary-<arch> index.
    pub all_in_arch_indices: bool,
    /// Path relative to `dists/<suite>/` -> hash and size, from `SHA256:`.
    pub sha256: BTreeMap<String, IndexEntry>,
}

/// Why a Release file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Not deb822.
    #[error("{0}")]
    Syntax(#[from] deb822::SyntaxError),
    /// A field is missing or malformed.
    #[error("{0}")]
    Field(String),
}

impl Release {
    /// Parse the signed text of an InRelease (or a plain Release).
    pub fn parse(text: &str) -> Result<Release, ReleaseError> {
        let mut paras = deb822::paragraphs(text);
        let para = paras
            .next()
            .ok_or_else(|| ReleaseError::Field("empty Release file".into()))??;
        if paras.next().is_some() {
            return Err(ReleaseError::Field(
                "Release file has more than one paragraph".into(),
            ));
        }
        let date = para
            .get("Date")
            .ok_or_else(|| ReleaseError::Field("Release has no Date field".into()))
            .and_then(|d| parse_date(d, "Date"))?;
        let valid_until = para
            .get("Valid-Until")
            .map(|d| parse_date(d, "Valid-Until"))
            .transpose()?;
        let words = |name: &str| -> Vec<String> {
            para.get(name)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut sha256 = BTreeMap::new();
        if let Some(list) = para.get("SHA256") {
            for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [hash, size, path] = parts[..] else {
                    return Err(ReleaseError::Field(format!(
                        "malformed SHA256 line {line:?} (expected 'hash size path')"
                    )));
                };
                let hash = Digest::from_hex_any_case(hash).map_err(|_| {
                    ReleaseError::Field(format!("malformed SHA256 hash {hash:?} for {path}"))
                })?;
                let size: u64 = size.parse().map_err(|_| {
                    ReleaseError::Field(format!("malformed size {size:?} for {path}"))
                })?;
                let entry = IndexEntry { sha256: hash, size };
                if let Some(old) = sha256.insert(path.to_owned(), entry.clone())
                    && old != entry
                {
                    return Err(ReleaseError::Field(format!(
                        "{path} is listed twice with different hashes"
                    )));
                }
            }
        }
        if sha256.is_empty() {
            return Err(ReleaseError::Field(
                "Release has no SHA256 index list (MD5/SHA1-only archives are not trusted)".into(),
            ));
        }
        Ok(Release {
            suite: para.get("Suite").map(str::to_owned),
            codename: para.get("Codename").map(str::to_owned),
            version: para.get("Version").map(str::to_owned),
            date,
            valid_until,
            acquire_by_hash: para
                .get("Acquire-By-Hash")
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            architectures: words("Architectures"),
            components: words("Components"),
            all_in_arch_indices: para
                .get("No-Support-for-Architecture-all")
                .is_some_and(|v| v.split_whitespace().any(|w| w == "Packages")),
            sha256,
        })
    }

    /// Does this Release describe `suite` (matched against Codename, then Suite)?
    pub fn names_suite(&self, suite: &str) -> bool {
        self.codename.as_deref() == Some(suite) || self.suite.as_deref() == Some(suite)
    }
}

/// Parse a Release date (RFC 2822 with `UTC`, as dak writes it).
pub fn parse_date(value: &str, field: &str) -> Result<Timestamp, ReleaseError> {
    // jiff's RFC 2822 parser wants "+0000" or "GMT"; dak writes "UTC".
    let normalised = match value.trim().strip_suffix(" UTC") {
        Some(head) => format!("{head} +0000"),
        None => value.trim().to_owned(),
    };
    jiff::fmt::rfc2822::parse(&normalised)
        .map(|z| z.timestamp())
        .map_err(|e| ReleaseError::Field(format!("malformed {field} {value:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Origin: Debian\nSuite: stable\nCodename: trixie\nDate: Sat, 21 Nov 2026 09:15:44 UTC\nValid-Until: Sat, 28 Nov 2026 09:15:44 UTC\nAcquire-By-Hash: yes\nNo-Support-for-Architecture-all: Packages\nArchitectures: all amd64 arm64\nComponents: main contrib\nSHA256:\n 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 12 main/binary-amd64/Packages.xz\n";

    #[test]
    fn parses_dak_release() {
        let r = Release::parse(SAMPLE).unwrap();
        assert!(r.names_suite("trixie") && r.names_suite("stable"));
        assert!(!r.names_suite("bookworm"));
        assert_eq!(r.date.to_string(), "2026-11-21T09:15:44Z");
        assert!(r.valid_until.unwrap() > r.date);
        assert!(r.acquire_by_hash && r.all_in_arch_indices);
        assert_eq!(r.architectures, ["all", "amd64", "arm64"]);
        assert_eq!(r.sha256["main/binary-amd64/Packages.xz"].size, 12);
    }

    #[test]
    fn rejects_bad_hash_lines_and_dates() {
        let bad = SAMPLE.replace(" 12 main", " twelve main");
        assert!(
            Release::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("size")
        );
        let bad = SAMPLE.replace("0123456789abcdef 12", "0123456789abcdeg 12");
        assert!(
            Release::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("hash")
        );
        let bad = SAMPLE.replace("Sat, 21 Nov 2026", "yesterday");
        assert!(
            Release::parse(&bad)
                .unwrap_err()
                .to_string()
                .contains("Date")
        );
        let no_sha = SAMPLE.split("SHA256:").next().unwrap().to_owned();
        assert!(Release::parse(&no_sha).is_err());
    }
}
