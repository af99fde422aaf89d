//! Debian version ordering (dpkg's algorithm, via `debversion`) and relation checks.
//!
//! `debversion::Version`'s `Hash` disagrees with its `Eq` (`1.0` == `1.0-0` hash
//! differently), so versions are never used as hash keys in debless: key by name and
//! compare with [`compare`].

use std::cmp::Ordering;

use debian_control::relations::VersionConstraint;
pub use debversion::Version;

/// Parse a version, or `None` when it is not a valid Debian version.
pub fn parse(v: &str) -> Option<Version> {
    v.trim().parse().ok()
}

/// Compare two version strings the way `dpkg --compare-versions` does.
/// Unparseable versions sort before every valid one (they are rejected earlier anyway).
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

/// The upstream part of a version: without its epoch (`1:`) and Debian revision (`-2`).
pub fn upstream(version: &str) -> &str {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    v.rsplit_once('-').map_or(v, |(u, _)| u)
}

/// Does `have` satisfy `op want`?
pub fn satisfies(have: &Version, op: &VersionConstraint, want: &Version) -> bool {
    let ord = have.cmp(want);
    match op {
        VersionConstraint::LessThan => ord == Ordering::Less,
        VersionConstraint::LessThanEqual => ord != Ordering::Greater,
        VersionConstraint::Equal => ord == Ordering::Equal,
        VersionConstraint::GreaterThanEqual => ord != Ordering::Less,
        VersionConstraint::GreaterThan => ord == Ordering::Greater,
    }
}

/// The operator as written in control files.
pub fn op_str(op: &VersionConstraint) -> &'static str {
    match op {
        VersionConstraint::LessThan => "<<",
        VersionConstraint::LessThanEqual => "<=",
        VersionConstraint::Equal => "=",
        VersionConstraint::GreaterThanEqual => ">=",
        VersionConstraint::GreaterThan => ">>",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_drops_epoch_and_revision() {
        assert_eq!(upstream("1:21.0.5+11-1~deb13u1"), "21.0.5+11");
        assert_eq!(upstream("2.41-12"), "2.41");
        assert_eq!(upstream("1.0"), "1.0");
        assert_eq!(upstream("1:1.2-3-4"), "1.2-3");
    }

    #[test]
    fn orders_like_dpkg() {
        let lt = |a, b| assert_eq!(compare(a, b), Ordering::Less, "{a} < {b}");
        lt("1.0~rc1", "1.0");
        lt("2.0", "1:0.1");
        lt("1.0", "1.0+b1");
        lt("1.0+deb12u9", "1.0+deb12u14");
        lt("0~", "0");
        lt("1.0a", "1.0+");
        lt("3.13.5-1", "3.13.5-2");
        assert_eq!(compare("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(compare("0:1.0", "1.0"), Ordering::Equal);
    }

    #[test]
    fn checks_constraints() {
        let v = |s| parse(s).unwrap();
        assert!(satisfies(
            &v("2.41-12"),
            &VersionConstraint::GreaterThanEqual,
            &v("2.38")
        ));
        assert!(!satisfies(
            &v("2.41-12"),
            &VersionConstraint::LessThan,
            &v("2.41")
        ));
        assert!(satisfies(
            &v("1:1"),
            &VersionConstraint::GreaterThan,
            &v("9")
        ));
        assert!(satisfies(&v("1.0"), &VersionConstraint::Equal, &v("1.0-0")));
    }
}
