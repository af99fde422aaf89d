//! Text for people: the one-line form of a parser's multi-line message, and of an error
//! with its sources.

/// The first line of a (possibly multi-line) parser message, for one-line errors.
pub fn one_line(s: &str) -> String {
    let mut parts = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "|");
    let first = parts.next().unwrap_or("").to_owned();
    // toml errors put the useful explanation on the last line.
    match parts.next_back() {
        Some(last) if last != first => format!(
            "{first} {}",
            last.trim_start_matches("| ").trim_start_matches('^').trim()
        ),
        _ => first,
    }
}

/// An error and its sources as one line: `error: source: source's source`. A source whose
/// message its parent already quotes is not repeated (errors written before sources were
/// kept put the source's text into their own).
pub fn error_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        next = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{what}")]
    struct E {
        what: &'static str,
        #[source]
        source: Option<Box<E>>,
    }

    fn e(what: &'static str, source: Option<E>) -> E {
        E {
            what,
            source: source.map(Box::new),
        }
    }

    #[test]
    fn error_line_appends_each_source_once() {
        let leaf = e("No space left on device", None);
        let mid = e("cannot write /cache/partial", Some(leaf));
        assert_eq!(
            error_line(&e("layer of rule base (amd64)", Some(mid))),
            "layer of rule base (amd64): cannot write /cache/partial: No space left on device"
        );
        // A parent that already quotes its source does not get it twice.
        let quoted = e("cannot read x (denied)", Some(e("denied", None)));
        assert_eq!(error_line(&quoted), "cannot read x (denied)");
    }
}
