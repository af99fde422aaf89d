//! `[[add]]`: host files, directories and tarballs a rule puts into its layer (the
//! application on top of a base), and the same from `debless build --add SRC:DEST`.
//! The rules own only the declaration; `build::add` reads the host.

use std::path::PathBuf;

use serde::Deserialize;

/// One `[[add]]` entry, or one `--add`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddRule {
    /// The host path: relative to the project directory (a rule) or to the current
    /// directory (`--add`), or absolute.
    pub src: String,
    /// The absolute image path it becomes (for `extract`, the directory it unpacks into).
    pub dest: String,
    /// `"UID:GID"` (numeric) of every entry added; default `0:0`.
    #[serde(default)]
    pub owner: Option<String>,
    /// Octal permission bits (`"0755"`) of every regular file added; default 0755 for a
    /// host file with an execute bit, else 0644. Directories are 0755.
    #[serde(default)]
    pub mode: Option<String>,
    /// `src` is a tar archive (plain, gzip, xz or zstd) to unpack into `dest`, read as a
    /// .deb's data.tar is.
    #[serde(default)]
    pub extract: bool,
    /// What relative `src` paths are relative to; set when the rule is loaded.
    #[serde(skip)]
    pub base: PathBuf,
}

/// The declared owner and mode of an `[[add]]`, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddAttrs {
    /// Numeric user.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Mode of every regular file, when declared.
    pub mode: Option<u32>,
}

/// Tar suffixes `--add` unpacks when DEST ends in `/`.
const TAR_SUFFIXES: &[&str] = &[".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.zst"];

impl AddRule {
    /// Parse `SRC:DEST[:UID:GID[:MODE]]` (`--add`). A SRC with a tar suffix (`.tar`,
    /// `.tar.gz`, `.tgz`, `.tar.xz`, `.tar.zst`) and a DEST ending in `/` is unpacked
    /// into DEST; anything else is copied to DEST as it is. Relative SRCs are relative
    /// to the current directory.
    pub fn from_cli(spec: &str) -> Result<AddRule, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (src, dest, owner, mode) = match parts.as_slice() {
            [s, d] => (*s, *d, None, None),
            [s, d, u, g] => (*s, *d, Some(format!("{u}:{g}")), None),
            [s, d, u, g, m] => (*s, *d, Some(format!("{u}:{g}")), Some((*m).to_owned())),
            _ => {
                return Err(format!(
                    "--add {spec:?}: use SRC:DEST, SRC:DEST:UID:GID or SRC:DEST:UID:GID:MODE (e.g. ./server:/app/server:65532:65532:0755)"
                ));
            }
        };
        let extract = dest.ends_with('/') && TAR_SUFFIXES.iter().any(|s| src.ends_with(s));
        let rule = AddRule {
            src: src.to_owned(),
            dest: dest.to_owned(),
            owner,
            mode,
            extract,
            base: PathBuf::new(),
        };
        rule.check().map_err(|e| format!("--add {spec:?}: {e}"))?;
        Ok(rule)
    }

    /// The host path to read.
    pub fn source(&self) -> PathBuf {
        self.base.join(&self.src)
    }

    /// The image path without its leading `/` (empty for the root).
    pub fn dest_path(&self) -> &str {
        self.dest.trim_matches('/')
    }

    /// Check the declaration and parse its owner and mode.
    pub fn check(&self) -> Result<AddAttrs, String> {
        if self.src.is_empty() {
            return Err("src is empty; name a host file, directory or tarball".into());
        }
        if !self.dest.starts_with('/') {
            return Err(format!(
                "dest {:?} must be an absolute image path (start with /)",
                self.dest
            ));
        }
        let rel = self.dest_path();
        if rel.is_empty() {
            if !self.extract {
                return Err(
                    "dest \"/\" is the image root; name the file or directory to add".into(),
                );
            }
        } else if rel.contains('\0')
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            // The layer checks every entry's path in full (lengths too) when it is made;
            // this catches the mistakes one can write in a rule, with the rule's name.
            return Err(format!(
                "dest {:?} is not a clean path: it has an empty, '.' or '..' component or a NUL byte",
                self.dest
            ));
        }
        let (uid, gid) = match &self.owner {
            None => (0, 0),
            Some(o) => parse_owner(o)?,
        };
        let mode = self.mode.as_deref().map(parse_mode).transpose()?;
        Ok(AddAttrs { uid, gid, mode })
    }
}

/// `"65532:65532"` as numbers.
fn parse_owner(o: &str) -> Result<(u32, u32), String> {
    let bad = || format!("owner {o:?} must be numeric UID:GID (e.g. \"65532:65532\")");
    let (u, g) = o.split_once(':').ok_or_else(bad)?;
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// `"0755"` as permission bits (setuid, setgid and sticky included only when written).
fn parse_mode(m: &str) -> Result<u32, String> {
    let bad = || format!("mode {m:?} must be octal permission bits (e.g. \"0755\")");
    if m.is_empty() || m.len() > 5 {
        return Err(bad());
    }
    let v = u32::from_str_radix(m.trim_start_matches("0o"), 8).map_err(|_| bad())?;
    if v > 0o7777 {
        return Err(bad());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_form_parses_owner_mode_and_extraction() {
        let a = AddRule::from_cli("./server:/app/server:65532:65532:0755").unwrap();
        assert_eq!(
            (a.src.as_str(), a.dest.as_str()),
            ("./server", "/app/server")
        );
        assert_eq!(
            a.check().unwrap(),
            AddAttrs {
                uid: 65532,
                gid: 65532,
                mode: Some(0o755)
            }
        );
        assert!(!a.extract);
        let a = AddRule::from_cli("site.tar.gz:/srv/").unwrap();
        assert!(a.extract);
        assert_eq!(a.dest_path(), "srv");
        // Without the trailing `/` the archive is copied as a file.
        assert!(
            !AddRule::from_cli("site.tar.gz:/srv/site.tar.gz")
                .unwrap()
                .extract
        );
        let a = AddRule::from_cli("x:/x:1:2").unwrap();
        assert_eq!(a.check().unwrap().gid, 2);
        assert_eq!(a.check().unwrap().mode, None);
    }

    #[test]
    fn bad_declarations_say_what_to_write() {
        for (spec, says) in [
            ("server", "use SRC:DEST"),
            ("server:/a:1", "use SRC:DEST"),
            ("server:app/server", "must be an absolute image path"),
            ("server:/app/../etc/passwd", "not a clean path"),
            ("server:/", "image root"),
            ("server:/a:nobody:0", "must be numeric UID:GID"),
            ("server:/a:0:0:rwx", "octal permission bits"),
            ("server:/a:0:0:17777", "octal permission bits"),
        ] {
            let e = AddRule::from_cli(spec).unwrap_err();
            assert!(e.contains(says), "{spec}: {e}");
        }
        assert_eq!(parse_mode("4755"), Ok(0o4755));
    }
}
