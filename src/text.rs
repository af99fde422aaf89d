//! Text for people: the one-line form of a parser's multi-line message.

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
