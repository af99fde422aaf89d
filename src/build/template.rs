//! Templates in rule values, filled in from the lock at build time: `{version:PKG}` in an
//! `env` value is PKG's upstream version in the lock, so e.g. `JAVA_VERSION` follows the
//! pinned JRE.

use crate::arch::Arch;
use crate::archive::version;
use crate::snapshot::lock::Lock;

/// What opens a version reference.
const OPEN: &str = "{version:";

/// A template that cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `{version:` without its `}`.
    #[error("unclosed {{version: in {value:?}")]
    Unclosed {
        /// The whole value as written.
        value: String,
    },
    /// `{version:PKG}` names a package the lock does not have for the architecture.
    #[error("{{version:{package}}}: {package} is not in the lock for {arch}")]
    NotLocked {
        /// The package named.
        package: String,
        /// The architecture being built.
        arch: Arch,
    },
}

/// Replace every `{version:PKG}` in `value` with PKG's upstream version (no epoch, no
/// Debian revision) in `lock` for `arch`.
pub fn expand_versions(value: &str, lock: &Lock, arch: Arch) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').ok_or_else(|| TemplateError::Unclosed {
            value: value.to_owned(),
        })?;
        let name = &rest[i + OPEN.len()..i + end];
        let p = lock
            .packages
            .iter()
            .find(|p| p.arch == arch && p.name == name)
            .ok_or_else(|| TemplateError::NotLocked {
                package: name.to_owned(),
                arch,
            })?;
        out.push_str(version::upstream(&p.version));
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::snapshot::lock::LockedPackage;

    fn lock() -> Lock {
        let jre = |arch: Arch, version: &str| LockedPackage {
            name: "openjdk-21-jre-headless".into(),
            arch,
            version: version.into(),
            architecture: arch.name().into(),
            suite: "trixie".into(),
            vendor: None,
            source: "openjdk-21".into(),
            source_version: version.into(),
            filename: "pool/main/o/openjdk-21/x.deb".into(),
            size: 1,
            sha256: Digest::of(b""),
            installed_size: 1,
            depends: Vec::new(),
            rules: Vec::new(),
        };
        Lock {
            lock_version: 1,
            distro: "debian13".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            snapshot: None,
            merged_usr: true,
            architectures: vec![Arch::Amd64, Arch::Arm64],
            suites: Vec::new(),
            vendors: Vec::new(),
            tarballs: Vec::new(),
            packages: vec![
                jre(Arch::Amd64, "21.0.5+11-1~deb13u1"),
                jre(Arch::Arm64, "1:21.0.6+7-1"),
            ],
            excluded: Vec::new(),
        }
    }

    #[test]
    fn versions_are_the_locked_upstream_version_of_the_architecture() {
        let l = lock();
        let v = "{version:openjdk-21-jre-headless}";
        assert_eq!(
            expand_versions(&format!("jdk-{v}."), &l, Arch::Amd64).unwrap(),
            "jdk-21.0.5+11."
        );
        assert_eq!(expand_versions(v, &l, Arch::Arm64).unwrap(), "21.0.6+7");
        assert_eq!(expand_versions("plain", &l, Arch::Amd64).unwrap(), "plain");
    }

    #[test]
    fn unclosed_and_unknown_references_are_errors() {
        let l = lock();
        assert_eq!(
            expand_versions("{version:x", &l, Arch::Amd64),
            Err(TemplateError::Unclosed {
                value: "{version:x".into()
            })
        );
        let e = expand_versions("{version:nope}", &l, Arch::Amd64).unwrap_err();
        assert_eq!(
            e.to_string(),
            "{version:nope}: nope is not in the lock for amd64"
        );
    }
}
