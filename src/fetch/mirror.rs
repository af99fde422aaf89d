//! Where archives are served: mirrors from flags, the environment, the host's apt
//! sources, and a snapshot service for dated pins. No host name is built in: every
//! location comes from flags, the environment, the manifest or the host's apt sources.

use std::path::Path;

/// Environment variable holding a space-separated mirror list (before apt sources).
pub const MIRRORS_ENV: &str = "DEBLESS_MIRRORS";
/// Environment variable overriding the snapshot service URL template.
pub const SNAPSHOT_ENV: &str = "DEBLESS_SNAPSHOT_SERVICE";

/// A mirror URL that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mirror {url:?} ({origin}) is not an http:// or https:// URL")]
pub struct MirrorError {
    /// What was given.
    pub url: String,
    /// Where it came from (`--mirror`, `$DEBLESS_MIRRORS`, a file).
    pub origin: String,
}

/// One place an archive can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// URL template; `{archive}` and `{timestamp}` are substituted.
    pub template: String,
    /// When set, the mirror serves only this archive (an apt URI like `.../debian-security`).
    pub archive: Option<String>,
    /// Where the mirror came from, for messages (`--mirror`, `$DEBLESS_MIRRORS`, a file).
    pub origin: String,
}

impl Mirror {
    /// Parse a user-supplied mirror. A URL with `{archive}` is a template; a URL whose last
    /// path segment is one of `archives` serves that archive; any other URL is a prefix under
    /// which each archive lives by name.
    pub fn parse(url: &str, archives: &[&str], origin: &str) -> Result<Mirror, MirrorError> {
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(MirrorError {
                url: url.to_owned(),
                origin: origin.to_owned(),
            });
        }
        let trimmed = url.trim_end_matches('/');
        if url.contains("{archive}") {
            return Ok(Mirror {
                template: format!("{trimmed}/"),
                archive: None,
                origin: origin.into(),
            });
        }
        let last = trimmed.rsplit('/').next().unwrap_or("");
        // A fixed snapshot URL (…/archive/<archive>/<timestamp>) serves that archive.
        let second_last = trimmed.rsplit('/').nth(1).unwrap_or("");
        let archive = if archives.contains(&last) {
            Some(last.to_owned())
        } else if is_snapshot_timestamp(last) && archives.contains(&second_last) {
            Some(second_last.to_owned())
        } else {
            None
        };
        Ok(match archive {
            Some(a) => Mirror {
                template: format!("{trimmed}/"),
                archive: Some(a),
                origin: origin.into(),
            },
            None => Mirror {
                template: format!("{trimmed}/{{archive}}/"),
                archive: None,
                origin: origin.into(),
            },
        })
    }

    /// Is this a dated (snapshot) service that can serve any `{timestamp}`?
    pub fn is_dated(&self) -> bool {
        self.template.contains("{timestamp}")
    }

    /// The archive root URL (ending in `/`) for `archive`, if this mirror serves it.
    pub fn root(&self, archive: &str, timestamp: Option<&str>) -> Option<String> {
        if let Some(a) = &self.archive
            && a != archive
        {
            return None;
        }
        let mut url = self.template.replace("{archive}", archive);
        if url.contains("{timestamp}") {
            url = url.replace("{timestamp}", timestamp?);
        }
        Some(url)
    }
}

/// `20261120T000000Z`?
pub fn is_snapshot_timestamp(s: &str) -> bool {
    s.len() == 16
        && s.ends_with('Z')
        && s.as_bytes()[8] == b'T'
        && s.bytes()
            .enumerate()
            .all(|(i, b)| i == 8 || i == 15 || b.is_ascii_digit())
}

/// HTTP(S) URIs of `deb` entries in the host's apt sources (deb822 `.sources` and one-line
/// `.list` files), in file order.
pub fn apt_source_uris(etc_apt: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files = Vec::new();
    let list = etc_apt.join("sources.list");
    if list.is_file() {
        files.push(list);
    }
    if let Ok(rd) = std::fs::read_dir(etc_apt.join("sources.list.d")) {
        let mut more: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let origin = file.display().to_string();
        match file.extension().and_then(|e| e.to_str()) {
            Some("sources") => {
                for para in crate::deb822::paragraphs(&text).flatten() {
                    let enabled = para.get("Enabled").is_none_or(|v| v != "no");
                    let is_deb = para
                        .get("Types")
                        .is_some_and(|t| t.split_whitespace().any(|x| x == "deb"));
                    if !(enabled && is_deb) {
                        continue;
                    }
                    for uri in para.get("URIs").unwrap_or("").split_whitespace() {
                        out.push((uri.to_owned(), origin.clone()));
                    }
                }
            }
            Some("list") => {
                for line in text.lines() {
                    let mut words = line.split_whitespace();
                    if words.next() != Some("deb") {
                        continue;
                    }
                    let mut uri = words.next();
                    if uri.is_some_and(|u| u.starts_with('[')) {
                        // Skip the [option=value ...] block.
                        let mut w = uri;
                        while let Some(x) = w {
                            if x.ends_with(']') {
                                break;
                            }
                            w = words.next();
                        }
                        uri = words.next();
                    }
                    if let Some(u) = uri {
                        out.push((u.to_owned(), origin.clone()));
                    }
                }
            }
            _ => {}
        }
    }
    out.retain(|(u, _)| u.starts_with("http://") || u.starts_with("https://"));
    out
}

/// Inputs to the default mirror list.
pub struct MirrorConfig<'a> {
    /// `--mirror` values; when non-empty they replace everything else.
    pub flags: &'a [String],
    /// `$DEBLESS_MIRRORS`.
    pub env: Option<String>,
    /// Directory holding the host's apt configuration (normally `/etc/apt`).
    pub etc_apt: &'a Path,
    /// Snapshot service template (`--snapshot-service`, `$DEBLESS_SNAPSHOT_SERVICE`, or the
    /// manifest's `snapshot_service`).
    pub snapshot_service: Option<String>,
    /// Whether the pin is dated.
    pub dated: bool,
}

/// The ordered mirror list: `--mirror` flags alone, or env, then apt sources, then the
/// snapshot service for dated pins.
pub fn mirror_list(cfg: &MirrorConfig<'_>, archives: &[&str]) -> Result<Vec<Mirror>, MirrorError> {
    let mut out = Vec::new();
    if !cfg.flags.is_empty() {
        for f in cfg.flags {
            out.push(Mirror::parse(f, archives, "--mirror")?);
        }
        return Ok(out);
    }
    if let Some(env) = &cfg.env {
        for u in env.split_whitespace() {
            out.push(Mirror::parse(u, archives, &format!("${MIRRORS_ENV}"))?);
        }
    }
    for (uri, origin) in apt_source_uris(cfg.etc_apt) {
        if let Ok(m) = Mirror::parse(&uri, archives, &origin) {
            // A host apt URI without a recognisable archive name is not a Debian mirror root.
            if m.archive.is_some() && !out.contains(&m) {
                out.push(m);
            }
        }
    }
    if let (true, Some(svc)) = (cfg.dated, &cfg.snapshot_service) {
        let mut m = Mirror::parse(svc, archives, "snapshot service")?;
        if !m.is_dated() {
            // A service given as a bare prefix: lay it out like the public one.
            m.template = format!(
                "{}{{timestamp}}/",
                m.template.trim_end_matches('/').to_owned() + "/"
            );
        }
        out.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCHIVES: &[&str] = &["debian", "debian-security"];

    #[test]
    fn parses_mirror_forms() {
        let m = Mirror::parse("http://h/debian-security/", ARCHIVES, "t").unwrap();
        assert_eq!(m.archive.as_deref(), Some("debian-security"));
        assert_eq!(m.root("debian", None), None);
        assert_eq!(
            m.root("debian-security", None).unwrap(),
            "http://h/debian-security/"
        );
        let m = Mirror::parse("http://h/mirrors", ARCHIVES, "t").unwrap();
        assert_eq!(m.root("debian", None).unwrap(), "http://h/mirrors/debian/");
        let m = Mirror::parse(
            "https://snapshots.invalid/archive/{archive}/{timestamp}/",
            ARCHIVES,
            "t",
        )
        .unwrap();
        assert!(m.is_dated());
        assert_eq!(m.root("debian", None), None);
        assert!(
            m.root("debian", Some("20261120T000000Z"))
                .unwrap()
                .ends_with("/archive/debian/20261120T000000Z/")
        );
        let m = Mirror::parse("http://h/archive/debian/20250520T000000Z", ARCHIVES, "t").unwrap();
        assert_eq!(m.archive.as_deref(), Some("debian"));
        assert!(Mirror::parse("ftp://h/debian", ARCHIVES, "t").is_err());
    }

    #[test]
    fn reads_apt_sources_and_orders_the_list() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("sources.list.d")).unwrap();
        std::fs::write(
            d.path().join("sources.list.d/a.sources"),
            "Types: deb\nURIs: http://m.example/debian\nSuites: trixie\n\nTypes: deb-src\nURIs: http://src.example/debian\n\nTypes: deb\nEnabled: no\nURIs: http://off.example/debian\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("sources.list"),
            "# comment\ndeb [arch=amd64 signed-by=/k] http://l.example/debian-security trixie-security main\n",
        )
        .unwrap();
        let cfg = MirrorConfig {
            flags: &[],
            env: Some("http://env.example/".into()),
            etc_apt: d.path(),
            snapshot_service: Some("http://127.0.0.1:1/archive/{archive}/{timestamp}".into()),
            dated: true,
        };
        let list = mirror_list(&cfg, ARCHIVES).unwrap();
        let roots: Vec<_> = list.iter().map(|m| m.template.as_str()).collect();
        assert_eq!(
            roots,
            [
                "http://env.example/{archive}/",
                "http://l.example/debian-security/",
                "http://m.example/debian/",
                "http://127.0.0.1:1/archive/{archive}/{timestamp}/"
            ]
        );
        let flags = vec!["http://only.example".to_string()];
        let cfg = MirrorConfig {
            flags: &flags,
            ..cfg
        };
        assert_eq!(mirror_list(&cfg, ARCHIVES).unwrap().len(), 1);
    }
}
