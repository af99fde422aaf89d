//! Debian's machine-readable copyright files (DEP-5, copyright-format 1.0): their licence
//! short names as one SPDX licence expression, and their copyright notices.

/// The licence reference debless defines for Debian's `public-domain` short name (SPDX
/// has no licence id for it); a document using it must define it in
/// `hasExtractedLicensingInfos`.
pub const PUBLIC_DOMAIN: &str = "LicenseRef-public-domain";

/// What a machine-readable copyright file says, in SPDX terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep5 {
    /// The SPDX expression of every Files paragraph's licence, joined with AND; `None`
    /// when any short name has no SPDX equivalent (the document then says NOASSERTION).
    pub license: Option<String>,
    /// The Files paragraphs' `Copyright:` lines, each once, in file order.
    pub copyright: String,
}

/// Parse a `/usr/share/doc/<pkg>/copyright` file; `None` when it is not in the
/// machine-readable format (its first paragraph has no copyright-format 1.0 `Format:`).
pub fn parse_dep5(text: &str) -> Option<Dep5> {
    let paragraphs = paragraphs(text);
    let header = paragraphs.first()?;
    if !field(header, "Format").is_some_and(is_format_1_0) {
        return None;
    }
    let mut terms: Option<Vec<Expr>> = Some(Vec::new());
    let mut notices: Vec<&str> = Vec::new();
    // Stand-alone License paragraphs only hold texts for names the Files paragraphs use.
    for p in paragraphs
        .iter()
        .skip(1)
        .filter(|p| field(p, "Files").is_some())
    {
        let synopsis = field(p, "License").and_then(|l| l.lines().next());
        terms = match (terms, synopsis.and_then(dep5_expression)) {
            (Some(mut t), Some(e)) => {
                t.push(e);
                Some(t)
            }
            _ => None,
        };
        for line in field(p, "Copyright").into_iter().flat_map(str::lines) {
            let line = line.trim();
            if !line.is_empty() && line != "." && !notices.contains(&line) {
                notices.push(line);
            }
        }
    }
    let license = terms
        .filter(|t| !t.is_empty())
        .map(|t| Expr::And(t).flatten().render());
    Some(Dep5 {
        license,
        copyright: notices.join("\n"),
    })
}

/// The copyright-format 1.0 URI, over http or https, with or without its final slash.
fn is_format_1_0(value: &str) -> bool {
    let v = value.trim().trim_end_matches('/');
    let v = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    v == Some("www.debian.org/doc/packaging-manuals/copyright-format/1.0")
}

/// deb822 paragraphs as (field name, value) lists; a value's continuation lines keep
/// their text without the leading space.
fn paragraphs(text: &str) -> Vec<Vec<(&str, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(&str, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if line.starts_with('#') {
            // deb822 comment lines
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push('\n');
                v.push_str(line.trim_start());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            cur.push((name.trim(), value.trim().to_owned()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A field's value; field names are case-insensitive.
fn field<'a>(p: &'a [(&str, String)], name: &str) -> Option<&'a str> {
    p.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A licence expression being built.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Term(String),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// Nested ANDs (ORs) merged into one, duplicate operands dropped, one-operand
    /// groups unwrapped.
    fn flatten(self) -> Expr {
        let (items, and) = match self {
            Expr::Term(_) => return self,
            Expr::And(v) => (v, true),
            Expr::Or(v) => (v, false),
        };
        let mut out: Vec<Expr> = Vec::new();
        for e in items.into_iter().map(Expr::flatten) {
            let parts = match e {
                Expr::And(v) if and => v,
                Expr::Or(v) if !and => v,
                other => vec![other],
            };
            for p in parts {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        match (out.len(), and) {
            (1, _) => out.remove(0),
            (_, true) => Expr::And(out),
            (_, false) => Expr::Or(out),
        }
    }

    /// SPDX syntax; AND binds tighter than OR, so only an OR inside an AND needs brackets.
    fn render(&self) -> String {
        match self {
            Expr::Term(t) => t.clone(),
            Expr::Or(v) => v.iter().map(Expr::render).collect::<Vec<_>>().join(" OR "),
            Expr::And(v) => v
                .iter()
                .map(|e| match e {
                    Expr::Or(_) => format!("({})", e.render()),
                    _ => e.render(),
                })
                .collect::<Vec<_>>()
                .join(" AND "),
        }
    }
}

/// One `License:` synopsis (`GPL-2+ or Artistic-2.0, and BSD-3-clause`) as an expression.
/// DEP-5: "and" binds tighter than "or" unless preceded by a comma, which ends a clause;
/// SPDX has the same precedence inside a clause.
fn dep5_expression(synopsis: &str) -> Option<Expr> {
    let spaced = synopsis.replace(',', " , ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    if tokens.is_empty() {
        return None;
    }
    // Clauses separated by commas, each joined to the previous one by its first word.
    let mut result: Option<Expr> = None;
    for clause in tokens.split(|t| *t == ",") {
        let (first_and, words) = match clause.first().map(|w| w.to_ascii_lowercase()) {
            Some(w) if w == "and" => (Some(true), &clause[1..]),
            Some(w) if w == "or" => (Some(false), &clause[1..]),
            _ => (None, clause),
        };
        let e = clause_expression(words)?;
        result = Some(match (result, first_and) {
            (None, _) => e,
            (Some(prev), Some(true)) => Expr::And(vec![prev, e]),
            (Some(prev), Some(false)) => Expr::Or(vec![prev, e]),
            // A comma that neither "and" nor "or" follows.
            (Some(_), None) => return None,
        });
    }
    result
}

/// `A or B and C with X exception`: terms joined by and/or, AND first.
fn clause_expression(words: &[&str]) -> Option<Expr> {
    let mut alternatives: Vec<Expr> = Vec::new();
    let mut conjunction: Vec<Expr> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let name = words[i];
        let mut exception = None;
        i += 1;
        if words.get(i).is_some_and(|w| w.eq_ignore_ascii_case("with")) {
            let end = words[i..]
                .iter()
                .position(|w| w.eq_ignore_ascii_case("exception"))?;
            exception = Some(words[i + 1..i + end].join(" "));
            i += end + 1;
        }
        conjunction.push(Expr::Term(spdx_term(name, exception.as_deref())?));
        match words.get(i).map(|w| w.to_ascii_lowercase()) {
            None => break,
            Some(w) if w == "and" => {}
            Some(w) if w == "or" => alternatives.push(Expr::And(std::mem::take(&mut conjunction))),
            Some(_) => return None,
        }
        i += 1;
        if i == words.len() {
            return None; // a trailing and/or
        }
    }
    alternatives.push(Expr::And(conjunction));
    Some(Expr::Or(alternatives).flatten())
}

/// One short name, with an optional exception keyword, as an SPDX term.
fn spdx_term(name: &str, exception: Option<&str>) -> Option<String> {
    let id = spdx_id(name)?;
    let Some(keyword) = exception else {
        return Some(id);
    };
    let gpl3 = id.contains("-3.0-");
    let exception_id = match keyword.to_ascii_lowercase().as_str() {
        "autoconf" if gpl3 => Some("Autoconf-exception-3.0"),
        "autoconf" => Some("Autoconf-exception-2.0"),
        "bison" => Some("Bison-exception-2.2"),
        "classpath" => Some("Classpath-exception-2.0"),
        "font" => Some("Font-exception-2.0"),
        "gcc" | "gcc-runtime-library" if gpl3 => Some("GCC-exception-3.1"),
        "gcc" | "gcc-runtime-library" => Some("GCC-exception-2.0"),
        "libtool" => Some("Libtool-exception"),
        "linux-syscall-note" => Some("Linux-syscall-note"),
        "llvm" => Some("LLVM-exception"),
        _ => None,
    };
    // An exception only adds permissions (copyright-format 1.0, §7.2: "GPL-2+ with
    // OpenSSL exception" is in effect dual-licensed), so one SPDX cannot name still
    // leaves the work available under the licence itself.
    Some(match exception_id {
        Some(e) => format!("{id} WITH {e}"),
        None => id,
    })
}

/// A Debian short name (case-insensitive, `+` for "or later") as an SPDX licence id.
fn spdx_id(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower == "public-domain" {
        return Some(PUBLIC_DOMAIN.to_owned());
    }
    if let Some(id) = SPDX_IDS.iter().find(|id| id.eq_ignore_ascii_case(name)) {
        return Some((*id).to_owned());
    }
    let (base, or_later) = match lower.strip_suffix('+') {
        Some(b) => (b, true),
        None => (lower.as_str(), false),
    };
    if let Some(id) = gnu_id(base, or_later) {
        return Some(id);
    }
    if or_later {
        // SPDX's `+` operator outside the GNU family: rare, and not every consumer
        // accepts it.
        return None;
    }
    let (family, version) = split_version(base);
    let mapped = match (family, version) {
        ("expat", None) => "MIT".to_owned(),
        ("artistic", None) => "Artistic-1.0-Perl".to_owned(), // common-licenses/Artistic
        ("zope", Some(v)) => format!("ZPL-{}", full_version(v)),
        ("psf", Some(v)) => format!("PSF-{}", full_version(v)),
        ("python", None) => "Python-2.0".to_owned(),
        ("cc0", None) => "CC0-1.0".to_owned(),
        ("openldap", Some(v)) => format!("OLDAP-{}", full_version(v)),
        ("zlib", None) => "Zlib".to_owned(),
        ("bsd", Some(v)) if v.ends_with("-clause") => {
            format!("BSD-{}-Clause", v.trim_end_matches("-clause"))
        }
        (f, Some(v)) => format!("{f}-{}", full_version(v)),
        _ => return None,
    };
    SPDX_IDS
        .iter()
        .find(|id| id.eq_ignore_ascii_case(&mapped))
        .map(|id| (*id).to_owned())
}

/// GPL, LGPL, AGPL, GFDL and GFDL-NIV with a version: `GPL-2` -> `GPL-2.0-only`,
/// `LGPL-2.1+` -> `LGPL-2.1-or-later`. A missing version is the lowest one (§7.1).
fn gnu_id(base: &str, or_later: bool) -> Option<String> {
    let (mut family, mut version) = split_version(base);
    // `GPL2`, `GPL3+`: no dash, but unambiguous and common (OpenJDK, libuv).
    if version.is_none()
        && let Some(i) = base.find(|c: char| c.is_ascii_digit())
    {
        (family, version) = (&base[..i], Some(&base[i..]));
    }
    let (prefix, infix, lowest) = match family {
        "gpl" => ("GPL", "", "1"),
        "lgpl" => ("LGPL", "", "2"),
        "agpl" => ("AGPL", "", "3"),
        // 1.0 has no SPDX id: an unversioned GFDL stays NOASSERTION.
        "gfdl" => ("GFDL", "", "1.0"),
        "gfdl-niv" => ("GFDL", "-no-invariants", "1.0"),
        _ => return None,
    };
    let version = full_version(version.unwrap_or(lowest));
    let suffix = if or_later { "or-later" } else { "only" };
    let id = format!("{prefix}-{version}{infix}-{suffix}");
    SPDX_IDS.contains(&id.as_str()).then_some(id)
}

/// `gpl-2.0` -> (`gpl`, `2.0`), `bsd-3-clause` -> (`bsd`, `3-clause`), `expat` -> (`expat`, None).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name
        .char_indices()
        .find(|(i, c)| c.is_ascii_digit() && *i > 0 && name.as_bytes()[i - 1] == b'-')
    {
        Some((i, _)) => (&name[..i - 1], Some(&name[i..])),
        None => (name, None),
    }
}

/// DEP-5 treats `2`, `2.0` and `2.0.0` alike; SPDX ids spell at least `major.minor`.
fn full_version(v: &str) -> String {
    let mut parts: Vec<&str> = v.split('.').collect();
    while parts.len() > 2 && parts.last() == Some(&"0") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].chars().all(|c| c.is_ascii_digit()) {
        parts.push("0");
    }
    parts.join(".")
}

/// SPDX licence ids a Debian package commonly uses (a subset of the SPDX licence list;
/// a name outside it is reported as NOASSERTION rather than guessed).
const SPDX_IDS: &[&str] = &[
    "0BSD",
    "AFL-2.0",
    "AFL-2.1",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.0",
    "Apache-1.1",
    "Apache-2.0",
    "APSL-2.0",
    "Artistic-1.0",
    "Artistic-1.0-Perl",
    "Artistic-2.0",
    "Beerware",
    "Bitstream-Vera",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-Attribution",
    "BSD-4-Clause",
    "BSD-4-Clause-UC",
    "BSD-Source-Code",
    "BSL-1.0",
    "bzip2-1.0.6",
    "CC-BY-1.0",
    "CC-BY-2.0",
    "CC-BY-2.5",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-1.0",
    "CC-BY-SA-2.0",
    "CC-BY-SA-2.5",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC-PDDC",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CPL-1.0",
    "curl",
    "ECL-2.0",
    "EFL-1.0",
    "EFL-2.0",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.2",
    "FSFAP",
    "FSFUL",
    "FSFULLR",
    "FTL",
    "GFDL-1.1-only",
    "GFDL-1.1-or-later",
    "GFDL-1.2-only",
    "GFDL-1.2-or-later",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GFDL-1.2-no-invariants-only",
    "GFDL-1.2-no-invariants-or-later",
    "GFDL-1.3-no-invariants-only",
    "GFDL-1.3-no-invariants-or-later",
    "GPL-1.0-only",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ICU",
    "IJG",
    "Info-ZIP",
    "ISC",
    "Kazlib",
    "Latex2e",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "Libpng",
    "libpng-2.0",
    "LPPL-1.3c",
    "MirOS",
    "MIT",
    "MIT-0",
    "MIT-CMU",
    "MIT-Modern-Variant",
    "MPL-1.0",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "NCSA",
    "NTP",
    "OFL-1.0",
    "OFL-1.1",
    "OLDAP-2.8",
    "OpenSSL",
    "PHP-3.01",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "QPL-1.0",
    "RSA-MD",
    "Ruby",
    "SGI-B-2.0",
    "Sleepycat",
    "SunPro",
    "TCL",
    "Unicode-3.0",
    "Unicode-DFS-2015",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "Vim",
    "W3C",
    "W3C-20150513",
    "WTFPL",
    "X11",
    "Zlib",
    "zlib-acknowledgement",
    "ZPL-2.0",
    "ZPL-2.1",
];
