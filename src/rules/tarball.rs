//! `[tarballs.<name>]`: a pinned upstream release tarball (Node.js, say) a rule takes
//! files from, with its URL per architecture and where its tree goes in the image.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::PathPattern;
use crate::arch::Arch;

/// One upstream tarball a rule takes files from. `debless pin` downloads and hashes it
/// for every pinned architecture; `debless build` extracts the `paths` it selects, with
/// the same checks as a .deb's data.tar, its top directory `strip` mapped to `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TarballRule {
    /// Distros this tarball applies to; absent means every distro of the rule.
    #[serde(default)]
    pub distros: Option<Vec<String>>,
    /// The upstream version (`22.11.0`): `{version}` in `url` and `strip`, and the SBOM's.
    pub version: String,
    /// URL template: `{version}`, `{arch}` (the Debian name) and `{arch_upstream}` (from
    /// `arch_upstream`) are filled in per architecture.
    pub url: String,
    /// Debian architecture -> the upstream's name for it (`amd64 = "x64"`). An
    /// architecture missing here cannot be pinned when `url` or `strip` uses
    /// `{arch_upstream}`.
    #[serde(default)]
    pub arch_upstream: BTreeMap<Arch, String>,
    /// The tarball's top directory (a template like `url`'s), whose content goes under
    /// `prefix`; empty when the tarball has no top directory. Anything outside it is an
    /// error.
    #[serde(default)]
    pub strip: String,
    /// The image directory the top directory becomes (`/nodejs`).
    pub prefix: String,
    /// Image paths (under `prefix`) to take, as a package's `paths`; absent: everything
    /// but the defaults' `[files] exclude`.
    #[serde(default)]
    pub paths: Option<Vec<PathPattern>>,
    /// Globs removed on top of `[files] exclude`.
    #[serde(default)]
    pub drop: Vec<String>,
    /// The image path of the licence file, always kept whatever `paths` and `drop` say;
    /// the build fails if the tarball does not have it.
    pub license_file: String,
    /// The SPDX licence expression the SBOM declares (`MIT`).
    #[serde(default)]
    pub license: Option<String>,
    /// The project's home page, for the SBOM.
    #[serde(default)]
    pub homepage: Option<String>,
    /// Expected SHA256 per architecture (from the vendor's signed checksum list, say):
    /// when given, `debless pin` refuses a download with another hash.
    #[serde(default)]
    pub sha256: BTreeMap<Arch, String>,
}

/// The placeholders a template may use.
const PLACEHOLDERS: [&str; 3] = ["{version}", "{arch}", "{arch_upstream}"];

impl TarballRule {
    /// Does the tarball apply to `distro` (the rule's own distros being checked apart)?
    pub fn applies_to(&self, distro: &str) -> bool {
        self.distros
            .as_ref()
            .is_none_or(|d| d.iter().any(|x| x == distro))
    }

    /// The URL for `arch`, or what is missing to make it.
    pub fn url_for(&self, arch: Arch) -> Result<String, String> {
        self.fill(&self.url, arch)
    }

    /// The top directory for `arch` (empty: none).
    pub fn strip_for(&self, arch: Arch) -> Result<String, String> {
        self.fill(&self.strip, arch)
    }

    fn fill(&self, template: &str, arch: Arch) -> Result<String, String> {
        let mut out = template
            .replace("{version}", &self.version)
            .replace("{arch}", arch.name());
        if out.contains("{arch_upstream}") {
            let Some(upstream) = self.arch_upstream.get(&arch) else {
                let known: Vec<&str> = self.arch_upstream.keys().map(|a| a.name()).collect();
                return Err(format!(
                    "arch_upstream has no entry for {arch} (it has: {}); add `{arch} = \"<upstream name>\"` if the upstream publishes one, or pin without --arch {arch}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            };
            out = out.replace("{arch_upstream}", upstream);
        }
        Ok(out)
    }

    /// Everything the rule file can get wrong on its own, as a sentence about `name`.
    pub(super) fn check(&self, name: &str) -> Result<(), String> {
        let plain = |s: &str| !s.is_empty() && !s.contains(['/', '{', '}']) && s != "..";
        if !plain(&self.version) {
            return Err(format!(
                "tarball {name}: version {:?} must be a plain version like \"22.11.0\"",
                self.version
            ));
        }
        for (key, value) in [("url", &self.url), ("strip", &self.strip)] {
            let mut rest = value.as_str();
            while let Some(i) = rest.find('{') {
                let end = rest[i..].find('}').map_or(rest.len(), |e| i + e + 1);
                if !PLACEHOLDERS.contains(&&rest[i..end]) {
                    return Err(format!(
                        "tarball {name}: {key} uses {:?}; the placeholders are {}",
                        &rest[i..end],
                        PLACEHOLDERS.join(", ")
                    ));
                }
                rest = &rest[end..];
            }
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(format!(
                "tarball {name}: url {:?} is not an http:// or https:// URL",
                self.url
            ));
        }
        if self.strip.starts_with('/') || self.strip.split('/').any(|p| p == "..") {
            return Err(format!(
                "tarball {name}: strip {:?} must be a relative directory inside the tarball",
                self.strip
            ));
        }
        let prefix = self.prefix.trim_end_matches('/');
        if !self.prefix.starts_with('/') || prefix.split('/').any(|p| p == ".." || p == ".") {
            return Err(format!(
                "tarball {name}: prefix {:?} must be an absolute image directory like \"/nodejs\"",
                self.prefix
            ));
        }
        let under =
            |p: &str| prefix.is_empty() || p == prefix || p.starts_with(&format!("{prefix}/"));
        if !under(&self.license_file) || self.license_file.contains(['*', '?', '[', '{']) {
            return Err(format!(
                "tarball {name}: license_file {:?} must be one image path under prefix {:?}",
                self.license_file, self.prefix
            ));
        }
        for pat in self.paths.iter().flatten() {
            if !under(&pat.glob) {
                return Err(format!(
                    "tarball {name}: path {:?} is not under prefix {:?}; paths are image paths",
                    pat.to_string(),
                    self.prefix
                ));
            }
        }
        for d in &self.drop {
            if !d.starts_with('/') {
                return Err(format!(
                    "tarball {name}: drop {d:?} must be absolute (start with /)"
                ));
            }
        }
        for (arch, hex) in &self.sha256 {
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(format!(
                    "tarball {name}: sha256.{arch} {hex:?} is not 64 lower-case hex digits"
                ));
            }
        }
        Ok(())
    }

    /// `prefix` without its trailing `/` (empty for the image root).
    pub fn prefix_dir(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> TarballRule {
        toml::from_str(
            r#"
version = "22.11.0"
url = "https://nodejs.invalid/dist/v{version}/node-v{version}-linux-{arch_upstream}.tar.xz"
arch_upstream = { amd64 = "x64", arm64 = "arm64" }
strip = "node-v{version}-linux-{arch_upstream}"
prefix = "/nodejs"
paths = ["/nodejs/bin/node"]
license_file = "/nodejs/LICENSE"
"#,
        )
        .unwrap()
    }

    #[test]
    fn templates_fill_in_per_architecture() {
        let t = node();
        t.check("node").unwrap();
        assert_eq!(
            t.url_for(Arch::Amd64).unwrap(),
            "https://nodejs.invalid/dist/v22.11.0/node-v22.11.0-linux-x64.tar.xz"
        );
        assert_eq!(
            t.strip_for(Arch::Arm64).unwrap(),
            "node-v22.11.0-linux-arm64"
        );
        assert_eq!(
            t.url_for(Arch::Riscv64).unwrap_err(),
            "arch_upstream has no entry for riscv64 (it has: amd64, arm64); add `riscv64 = \"<upstream name>\"` if the upstream publishes one, or pin without --arch riscv64"
        );
    }

    #[test]
    fn the_rule_file_is_checked() {
        let check = |f: &dyn Fn(&mut TarballRule)| {
            let mut t = node();
            f(&mut t);
            t.check("node").unwrap_err()
        };
        assert!(check(&|t| t.url = "https://x/{vers}".into()).contains("uses \"{vers}\""));
        assert!(check(&|t| t.url = "ftp://x/y".into()).contains("not an http"));
        assert!(check(&|t| t.prefix = "nodejs".into()).contains("absolute image directory"));
        assert!(check(&|t| t.strip = "../x".into()).contains("relative directory"));
        assert!(check(&|t| t.license_file = "/LICENSE".into()).contains("under prefix"));
        assert!(
            check(&|t| t.paths = Some(vec![PathPattern::parse("/usr/bin/node")]))
                .contains("not under prefix")
        );
        assert!(check(&|t| t.version = "1/2".into()).contains("plain version"));
        assert!(
            check(&|t| {
                t.sha256.insert(Arch::Amd64, "AB".into());
            })
            .contains("64 lower-case hex")
        );
    }
}
