//! OCI platforms and the mapping from Debian architecture names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::arch::Arch;

/// OCI platform.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system (`linux`).
    pub os: String,
    /// CPU architecture in Go's spelling (`amd64`, `arm64`, `386`, ...).
    pub architecture: String,
    /// CPU variant (`v8`, `v7`, ...), if the architecture has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

/// The OCI platform images for `arch` are published under (`amd64` -> linux/amd64,
/// `armhf` -> linux/arm/v7, ...).
pub fn platform_for(arch: Arch) -> Platform {
    Platform {
        os: "linux".to_string(),
        architecture: arch.oci_architecture().to_string(),
        variant: arch.oci_variant().map(str::to_string),
    }
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
            let arch: Arch = deb.parse().unwrap();
            assert_eq!(platform_for(arch).to_string(), oci);
        }
    }

    #[test]
    fn json_omits_an_absent_variant() {
        let amd64 = serde_json::to_string(&platform_for(Arch::Amd64)).unwrap_or_default();
        assert_eq!(amd64, r#"{"os":"linux","architecture":"amd64"}"#);
        let arm = serde_json::to_string(&platform_for(Arch::Armhf)).unwrap_or_default();
        assert_eq!(arm, r#"{"os":"linux","architecture":"arm","variant":"v7"}"#);
    }
}
