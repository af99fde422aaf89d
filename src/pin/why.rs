//! `debless why`: explain from the lock why a package is (or is not) in an image.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::arch::Arch;
use crate::rules::{Kind, RuleSet};
use crate::snapshot::lock::Lock;

/// The answer to `why PKG --image IMAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Dependency paths from the image's root packages to the package.
    Paths(Vec<Vec<String>>),
    /// Not in the image, and why.
    Absent(String),
}

/// Why `why` has no answer.
#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    /// The lock has no packages for the architecture asked about.
    #[error(
        "architecture {arch} is not in the {distro} lock (it has {has}); run `debless pin --arch {arch}`"
    )]
    NoArch {
        /// The architecture asked about.
        arch: Arch,
        /// The lock's distro.
        distro: String,
        /// The lock's architectures.
        has: String,
    },
    /// The image is not a rule, or its chain is broken.
    #[error(transparent)]
    Rules(#[from] crate::rules::RuleError),
    /// The package is nowhere in the lock.
    #[error(
        "{package} is not in the {distro} lock for any image or architecture, nor excluded anywhere; check the name (`debless inspect` lists an image's packages)"
    )]
    Unknown {
        /// The package asked about.
        package: String,
        /// The lock's distro.
        distro: String,
    },
}

/// Explain `pkg` in `image` (a rule name) for `arch`.
pub fn why(
    lock: &Lock,
    rules: &RuleSet,
    image: &str,
    arch: Arch,
    pkg: &str,
) -> Result<Why, WhyError> {
    if !lock.architectures.contains(&arch) {
        return Err(WhyError::NoArch {
            arch,
            distro: lock.distro.clone(),
            has: crate::arch::join(&lock.architectures),
        });
    }
    let rule = rules.get(image)?;
    if let Some(arches) = rules.architectures(image).filter(|a| !a.contains(&arch)) {
        return Ok(Why::Absent(format!(
            "{image} is not built for {arch}: its rules' architectures are {}",
            crate::arch::join(&arches)
        )));
    }
    let chain = match rule.kind {
        Kind::Image => rules.chain(image)?,
        Kind::Variant => vec![rule],
    };
    let names: BTreeSet<&str> = chain.iter().map(|r| r.name.as_str()).collect();
    let in_image: BTreeMap<&str, &Vec<String>> = lock
        .packages_for(arch)
        .filter(|p| p.rules.iter().any(|r| r == image))
        .map(|p| (p.name.as_str(), &p.depends))
        .collect();
    if !in_image.contains_key(pkg) {
        let ex: Vec<String> = lock
            .excluded
            .iter()
            .filter(|e| {
                e.arch == arch
                    && e.name == pkg
                    && e.rules.iter().any(|r| names.contains(r.as_str()))
            })
            .map(|e| {
                let by: Vec<&str> = e
                    .required_by
                    .iter()
                    .map(String::as_str)
                    .filter(|r| in_image.contains_key(r))
                    .collect();
                format!(
                    "excluded by {} (a dependency of {})",
                    e.excluded_by,
                    by.join(", ")
                )
            })
            .collect();
        let elsewhere: Vec<&str> = lock
            .packages_for(arch)
            .filter(|p| p.name == pkg)
            .flat_map(|p| p.rules.iter().map(String::as_str))
            .collect();
        let known = !ex.is_empty()
            || !elsewhere.is_empty()
            || lock.packages.iter().any(|p| p.name == pkg)
            || lock.excluded.iter().any(|e| e.name == pkg);
        if !known {
            return Err(WhyError::Unknown {
                package: pkg.to_owned(),
                distro: lock.distro.clone(),
            });
        }
        let mut msg = format!("{pkg} is not in {image} for {arch}");
        if !ex.is_empty() {
            msg.push_str(&format!(": {}", ex.join("; ")));
        } else if !elsewhere.is_empty() {
            msg.push_str(&format!(" (it is in: {})", elsewhere.join(", ")));
        }
        return Ok(Why::Absent(msg));
    }
    let roots: BTreeSet<&str> = chain
        .iter()
        .flat_map(|r| r.roots(&lock.distro, arch))
        .filter(|r| in_image.contains_key(r))
        .collect();
    let mut paths = Vec::new();
    for root in roots {
        // Shortest path from this root by BFS, ties broken by name order.
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([root]);
        let mut seen = BTreeSet::from([root]);
        while let Some(n) = queue.pop_front() {
            if n == pkg {
                break;
            }
            for d in in_image.get(n).into_iter().flat_map(|v| v.iter()) {
                let d = d.as_str();
                if in_image.contains_key(d) && seen.insert(d) {
                    prev.insert(d, n);
                    queue.push_back(d);
                }
            }
        }
        if !seen.contains(pkg) {
            continue;
        }
        let mut path = vec![pkg.to_owned()];
        let mut cur = pkg;
        while let Some(p) = prev.get(cur) {
            path.push((*p).to_owned());
            cur = p;
        }
        path.reverse();
        paths.push(path);
    }
    Ok(Why::Paths(paths))
}
