//! `REGISTRY/REPOSITORY[:TAG]`: where a push goes; `REGISTRY/REPOSITORY[:TAG][@DIGEST]`:
//! an image to sign or verify.

use super::PushError;
use crate::digest::Digest;

/// A parsed push target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Registry host, with its port if any (`127.0.0.1:5000`).
    pub host: String,
    /// Repository inside the registry (`distroless/base`).
    pub repository: String,
    /// The tag after `:`, if one was given.
    pub tag: Option<String>,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        Ok(())
    }
}

impl Target {
    /// Parse `REGISTRY/REPOSITORY[:TAG]`. The first component must look like a host (a dot,
    /// a port or `localhost`), so that `distroless/base` is not mistaken for one.
    pub fn parse(s: &str) -> Result<Target, PushError> {
        let bad = |why: &'static str| PushError::Target {
            target: s.to_string(),
            why,
        };
        if s.contains('@') {
            return Err(bad(
                "a push names a tag, not a digest; drop the @sha256:... part",
            ));
        }
        let s_trim = s
            .strip_prefix("docker://")
            .or_else(|| s.strip_prefix("oci://"))
            .unwrap_or(s);
        let Some((host, rest)) = s_trim.split_once('/') else {
            return Err(bad(
                "name the registry host first, e.g. 127.0.0.1:5000/REPOSITORY[:TAG]",
            ));
        };
        if !(host.contains('.') || host.contains(':') || host == "localhost")
            || host.contains(|c: char| c.is_whitespace() || c == '/')
        {
            return Err(bad(
                "the first component must be a registry host (with a dot or a port, or \
                 localhost), e.g. 127.0.0.1:5000/REPOSITORY[:TAG]",
            ));
        }
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_string())),
            _ => (rest, None),
        };
        if !valid_repository(repository) {
            return Err(bad(
                "the repository must be lower-case path components of [a-z0-9] separated \
                 by '.', '_', '__' or '-' (e.g. distroless/base)",
            ));
        }
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(
                "a tag is up to 128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'",
            ));
        }
        Ok(Target {
            host: host.to_string(),
            repository: repository.to_string(),
            tag,
        })
    }
}

/// An image in a registry: `REGISTRY/REPOSITORY:TAG`, `REGISTRY/REPOSITORY@sha256:HEX`, or
/// both (the digest is what is used; the tag is only a name then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReference {
    /// Registry, repository and tag.
    pub target: Target,
    /// The digest after `@`, if one was given.
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parse `REGISTRY/REPOSITORY[:TAG][@sha256:HEX]`; a tag or a digest must be there.
    pub fn parse(s: &str) -> Result<ImageReference, PushError> {
        let bad = |why: &'static str| PushError::Target {
            target: s.to_string(),
            why,
        };
        let (name, digest) = match s.split_once('@') {
            Some((name, d)) => (
                name,
                Some(Digest::parse(d).map_err(|_| {
                    bad("after @ comes a digest, sha256: and 64 lower-case hex digits")
                })?),
            ),
            None => (s, None),
        };
        let target = Target::parse(name)?;
        if target.tag.is_none() && digest.is_none() {
            return Err(bad(
                "name the image by tag or digest: REGISTRY/REPOSITORY:TAG or \
                 REGISTRY/REPOSITORY@sha256:HEX",
            ));
        }
        Ok(ImageReference { target, digest })
    }

    /// What to ask the registry for: the digest when there is one, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.target.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => String::new(),
        }
    }
}

impl std::fmt::Display for ImageReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.target)?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The distribution spec's repository name grammar.
fn valid_repository(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 255
        && r.split('/').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
                && b[b.len() - 1].is_ascii_lowercase() | b[b.len() - 1].is_ascii_digit()
                && b.iter()
                    .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
                && !c.contains("..")
                && !c.contains("___")
        })
}

/// The distribution spec's tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"._-".contains(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_repository_and_tag() {
        let t = Target::parse("127.0.0.1:5000/distroless/base:nonroot").unwrap();
        assert_eq!(t.host, "127.0.0.1:5000");
        assert_eq!(t.repository, "distroless/base");
        assert_eq!(t.tag.as_deref(), Some("nonroot"));
        assert_eq!(t.to_string(), "127.0.0.1:5000/distroless/base:nonroot");
        let t = Target::parse("localhost/base").unwrap();
        assert_eq!((t.host.as_str(), t.tag), ("localhost", None));
        let t = Target::parse("docker://127.0.0.1:5000/a").unwrap();
        assert_eq!(t.repository, "a");
    }

    #[test]
    fn rejects_what_a_registry_would() {
        for bad in [
            "base",
            "distroless/base",
            "127.0.0.1:5000/",
            "127.0.0.1:5000/Base",
            "127.0.0.1:5000/a//b",
            "127.0.0.1:5000/a:-x",
            "127.0.0.1:5000/a:",
            "127.0.0.1:5000/a@sha256:00",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert!(valid_tag("latest-amd64"));
    }

    #[test]
    fn image_references_name_a_tag_or_a_digest() {
        let d = Digest::of(b"x");
        let r = ImageReference::parse(&format!("127.0.0.1:5000/a/b@{d}")).unwrap();
        assert_eq!((r.target.repository.as_str(), r.digest), ("a/b", Some(d)));
        assert_eq!(r.reference(), d.to_string());
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/a/b@{d}"));
        let r = ImageReference::parse("127.0.0.1:5000/a:latest").unwrap();
        assert_eq!((r.reference().as_str(), r.digest), ("latest", None));
        let r = ImageReference::parse(&format!("127.0.0.1:5000/a:latest@{d}")).unwrap();
        assert_eq!(r.reference(), d.to_string());
        for bad in [
            "127.0.0.1:5000/a",
            "127.0.0.1:5000/a@sha256:00",
            "127.0.0.1:5000/a@latest",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
        assert!(!valid_tag(&"x".repeat(129)));
    }
}
