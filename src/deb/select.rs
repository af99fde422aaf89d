//! Which paths of a package a rule wants in its image.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

use super::DebError;

/// Which paths of a package go into an image.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `None` selects everything; otherwise only paths matching one of these.
    include: Option<Patterns>,
    exclude: Patterns,
    keep: Patterns,
    allow_setuid: Patterns,
}

/// Globs compiled together, remembering their source text for messages.
#[derive(Debug, Clone)]
struct Patterns {
    set: GlobSet,
    text: Vec<String>,
}

impl Patterns {
    fn new(list: &'static str, patterns: &[String]) -> Result<Patterns, DebError> {
        let mut builder = GlobSetBuilder::new();
        for p in patterns {
            builder.add(compile(list, p)?);
        }
        let set = builder.build().map_err(|e| DebError::Pattern {
            list,
            pattern: patterns.join(", "),
            what: e.to_string(),
        })?;
        Ok(Patterns {
            set,
            text: patterns.to_vec(),
        })
    }

    fn is_match(&self, abs_path: &str) -> bool {
        self.set.is_match(abs_path)
    }
}

/// Compile one image-path glob, rejecting forms that could never match an image path.
fn compile(list: &'static str, pattern: &str) -> Result<Glob, DebError> {
    let bad = |what: &str| DebError::Pattern {
        list,
        pattern: pattern.to_string(),
        what: what.to_string(),
    };
    if !pattern.starts_with('/') {
        return Err(bad(
            "must be an absolute image path such as \"/usr/lib/*/libc.so.6\"",
        ));
    }
    // Paths are matched without a trailing slash, so such a pattern would silently match
    // nothing.
    if pattern.len() > 1 && pattern.ends_with('/') {
        return Err(bad(
            "ends with `/`; write the directory without it, or `dir/**` for its contents",
        ));
    }
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| bad(&format!("is not a valid glob ({})", e.kind())))
}

impl Selection {
    /// `include`: None = everything; Some(globs) = only matching paths. `exclude`: global drop
    /// list (docs, man pages...). `keep`: re-includes paths the exclude list dropped
    /// (e.g. "/usr/share/doc/*/copyright"). `allow_setuid`: setuid/setgid files allowed.
    /// Patterns are absolute image paths ("/usr/lib/*/libc.so.6", "/usr/lib/python3.13/**");
    /// `*` never crosses `/` and `**` does.
    pub fn new(
        include: Option<&[String]>,
        exclude: &[String],
        keep: &[String],
        allow_setuid: &[String],
    ) -> Result<Selection, DebError> {
        Ok(Selection {
            include: include.map(|p| Patterns::new("paths", p)).transpose()?,
            exclude: Patterns::new("exclude", exclude)?,
            keep: Patterns::new("keep", keep)?,
            allow_setuid: Patterns::new("allow_setuid", allow_setuid)?,
        })
    }

    /// Every path of a package, with no excludes and no setuid files allowed.
    pub fn everything() -> Selection {
        let empty = || Patterns {
            set: GlobSet::empty(),
            text: Vec::new(),
        };
        Selection {
            include: None,
            exclude: empty(),
            keep: empty(),
            allow_setuid: empty(),
        }
    }

    /// Does the image want `abs_path` (`/usr/bin/x`, after the merged-/usr rewrite)?
    pub fn selects(&self, abs_path: &str) -> bool {
        let included = self.include.as_ref().is_none_or(|p| p.is_match(abs_path));
        included && (!self.exclude.is_match(abs_path) || self.keep.is_match(abs_path))
    }

    /// Does the image want the directory `abs_path` for its own sake? Like [`selects`],
    /// except that a directory whose whole content the exclude list drops (`/usr/share/man`
    /// under `/usr/share/man/**`) goes too: an empty man directory is noise. It still
    /// comes back as the parent of anything kept under it.
    ///
    /// [`selects`]: Selection::selects
    pub fn selects_dir(&self, abs_path: &str) -> bool {
        // A name no package ships stands for "anything inside".
        let inside = format!("{}/\u{1}", abs_path.trim_end_matches('/'));
        self.selects(abs_path) && (self.keep.is_match(&inside) || !self.exclude.is_match(&inside))
    }

    /// May `abs_path` be setuid or setgid?
    pub fn allows_setuid(&self, abs_path: &str) -> bool {
        self.allow_setuid.is_match(abs_path)
    }

    /// The include patterns as written (empty when everything is included).
    pub fn include_patterns(&self) -> &[String] {
        self.include.as_ref().map_or(&[], |p| &p.text)
    }

    /// The exclude patterns as written.
    pub fn exclude_patterns(&self) -> &[String] {
        &self.exclude.text
    }

    /// Mark, in `seen` (indexed like [`Selection::exclude_patterns`]), the exclude patterns
    /// that match `abs_path`.
    pub(crate) fn note_exclude_matches(&self, abs_path: &str, seen: &mut [bool]) {
        for i in self.exclude.set.matches(abs_path) {
            if let Some(s) = seen.get_mut(i) {
                *s = true;
            }
        }
    }

    /// Mark, in `seen` (indexed like [`Selection::include_patterns`]), the include patterns
    /// that match `abs_path`.
    pub(crate) fn note_include_matches(&self, abs_path: &str, seen: &mut [bool]) {
        if let Some(p) = &self.include {
            for i in p.set.matches(abs_path) {
                if let Some(s) = seen.get_mut(i) {
                    *s = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn star_stays_in_one_component_and_double_star_crosses() {
        let inc = strings(&["/usr/lib/*/libc.so.6", "/usr/lib/python3.13/**"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
        assert!(sel.selects("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!sel.selects("/usr/lib/a/b/libc.so.6"));
        assert!(sel.selects("/usr/lib/python3.13/json/__init__.py"));
        assert!(!sel.selects("/usr/lib/python3.12/json/__init__.py"));
    }

    #[test]
    fn keep_overrides_exclude_but_not_include() {
        let exclude = strings(&["/usr/share/doc/**", "/usr/share/man/**"]);
        let keep = strings(&["/usr/share/doc/*/copyright"]);
        let all = Selection::new(None, &exclude, &keep, &[]).unwrap();
        assert!(all.selects("/usr/bin/x"));
        assert!(!all.selects("/usr/share/doc/foo/README"));
        assert!(all.selects("/usr/share/doc/foo/copyright"));
        assert!(!all.selects("/usr/share/man/man1/x.1.gz"));

        let inc = strings(&["/usr/bin/*"]);
        let some = Selection::new(Some(&inc), &exclude, &keep, &[]).unwrap();
        assert!(!some.selects("/usr/share/doc/foo/copyright"));
    }

    #[test]
    fn bad_patterns_are_named_with_their_list() {
        let err = Selection::new(Some(&strings(&["usr/bin/x"])), &[], &[], &[]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"usr/bin/x\" in `paths`"), "{msg}");
        assert!(msg.contains("absolute"), "{msg}");

        let err = Selection::new(None, &[], &strings(&["/usr/[share"]), &[]).unwrap_err();
        assert!(
            err.to_string().contains("\"/usr/[share\" in `keep`"),
            "{err}"
        );

        let err = Selection::new(None, &strings(&["/usr/share/doc/"]), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("`exclude`"), "{err}");
    }

    #[test]
    fn include_matches_are_reported_by_index() {
        let inc = strings(&["/usr/bin/*", "/usr/lib/typo"]);
        let sel = Selection::new(Some(&inc), &[], &[], &[]).unwrap();
        let mut seen = vec![false; 2];
        sel.note_include_matches("/usr/bin/x", &mut seen);
        assert_eq!(seen, [true, false]);
        assert_eq!(sel.include_patterns(), inc.as_slice());
    }

    #[test]
    fn a_directory_whose_content_is_all_excluded_goes() {
        let sel = Selection::new(
            None,
            &strings(&["/usr/share/man/**", "/usr/share/doc/**"]),
            &strings(&["/usr/share/doc/*/copyright"]),
            &[],
        )
        .unwrap();
        assert!(!sel.selects_dir("/usr/share/man"));
        assert!(sel.selects_dir("/usr/share"));
        // Emptied by the exclude list; its kept copyright files bring it back as a parent.
        assert!(!sel.selects_dir("/usr/share/doc"));
        assert!(sel.selects_dir("/var/cache"));
    }

    #[test]
    fn setuid_allowance_is_by_glob() {
        let allow = strings(&["/usr/bin/su"]);
        let sel = Selection::new(None, &[], &[], &allow).unwrap();
        assert!(sel.allows_setuid("/usr/bin/su"));
        assert!(!sel.allows_setuid("/usr/bin/sudo"));
        assert!(!Selection::everything().allows_setuid("/usr/bin/su"));
    }
}
