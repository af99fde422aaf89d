//! Text for people: the one-line form of a parser's multi-line message, and of an error
//! with its sources; sizes in binary units.

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

/// A size for people, in binary units with one decimal: `512 B`, `39.1 MiB`, `1.2 GiB`.
/// Scripts read exact byte counts from `--json` (docs/json.md) instead.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    // 1023.96 KiB would print as 1024.0 KiB: move up once it rounds to 1024.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_binary_units_with_one_decimal() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(41_049_088), "39.1 MiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }

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
