//! OCI platforms and the mapping from Debian architecture names.

use std::fmt;

use serde::Serialize;

/// OCI platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture in Go's spelling (`amd64`, `arm64`, `386`, ...).
    pub architecture: String,
    /// CPU variant (`v8`, `v7`, ...), if the architecture has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    /// `os/architecture[/variant]`, as docker and skopeo spell it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Debian architecture -> OCI platform (`amd64` -> linux/amd64, `armhf` -> linux/arm/v7, ...);
/// `None` for an architecture without an OCI spelling here.
pub fn platform_for(debian_arch: &str) -> Option<Platform> {
    let (architecture, variant) = match debian_arch {
        "amd64" => ("amd64", None),
        // containerd normalises linux/arm64 to variant v8; say it explicitly so an index
        // matches the same way everywhere.
        "arm64" => ("arm64", Some("v8")),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v5")),
        "i386" => ("386", None),
        "ppc64el" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        "mips64el" => ("mips64le", None),
        "loong64" => ("loong64", None),
        _ => return None,
    };
    Some(Platform {
        os: "linux".to_string(),
        architecture: architecture.to_string(),
        variant: variant.map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_architectures_map_to_go_spellings() {
        let cases = [
            ("amd64", "linux/amd64"),
            ("arm64", "linux/arm64/v8"),
            ("armhf", "linux/arm/v7"),
            ("armel", "linux/arm/v5"),
            ("i386", "linux/386"),
            ("ppc64el", "linux/ppc64le"),
            ("s390x", "linux/s390x"),
            ("riscv64", "linux/riscv64"),
            ("mips64el", "linux/mips64le"),
            ("loong64", "linux/loong64"),
        ];
        for (deb, oci) in cases {
            assert_eq!(
                platform_for(deb).map(|p| p.to_string()).as_deref(),
                Some(oci)
            );
        }
        assert_eq!(platform_for("hurd-i386"), None);
        assert_eq!(platform_for("all"), None);
    }

    #[test]
    fn json_omits_an_absent_variant() {
        let amd64 = serde_json::to_string(&platform_for("amd64")).unwrap_or_default();
        assert_eq!(amd64, r#"{"os":"linux","architecture":"amd64"}"#);
        let arm = serde_json::to_string(&platform_for("armhf")).unwrap_or_default();
        assert_eq!(arm, r#"{"os":"linux","architecture":"arm","variant":"v7"}"#);
    }
}
