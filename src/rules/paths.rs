//! The `paths` patterns of a package rule, parsed once when the rules are loaded.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// One entry of a package's `paths`: an image-path glob, and whether it must match.
///
/// Written `"/usr/lib/*/libc.so.6"` (must match something in the package, else the rule
/// has a typo) or `"?/usr/lib64/*"` (may match nothing: only some architectures have it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// The glob, without the `?` marker.
    pub glob: String,
    /// Must the glob match some path of the package?
    pub required: bool,
}

/// Marks a pattern that may match nothing.
const OPTIONAL: char = '?';

impl PathPattern {
    /// Parse a pattern as a rule file writes it.
    pub fn parse(written: &str) -> PathPattern {
        match written.strip_prefix(OPTIONAL) {
            Some(glob) => PathPattern {
                glob: glob.to_owned(),
                required: false,
            },
            None => PathPattern {
                glob: written.to_owned(),
                required: true,
            },
        }
    }
}

impl fmt::Display for PathPattern {
    /// The pattern as the rule file writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.required {
            write!(f, "{OPTIONAL}")?;
        }
        f.write_str(&self.glob)
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PathPattern, D::Error> {
        Ok(PathPattern::parse(&String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_mark_makes_a_pattern_optional_and_round_trips() {
        let p = PathPattern::parse("?/usr/lib64/*");
        assert_eq!((p.glob.as_str(), p.required), ("/usr/lib64/*", false));
        assert_eq!(p.to_string(), "?/usr/lib64/*");
        let p = PathPattern::parse("/usr/bin/x");
        assert_eq!((p.glob.as_str(), p.required), ("/usr/bin/x", true));
        assert_eq!(p.to_string(), "/usr/bin/x");
    }
}
