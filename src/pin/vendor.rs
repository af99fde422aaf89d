//! Vendor repositories in a pin: which ones the rules need, each fetched and verified
//! like a Debian suite but against its own key only, and the split of package names
//! between them and Debian (a name a vendor claims comes from that vendor alone).

use std::collections::BTreeMap;

use super::PinError;
use super::suite::{FetchedSuite, Fetcher};
use crate::arch::Arch;
use crate::archive::packages::Package;
use crate::archive::trust::Keyring;
use crate::fetch::mirror::Mirror;
use crate::rules::RuleSet;
use crate::snapshot::manifest::{Manifest, SuiteSpec, VendorSpec};

/// The vendors some root of a rule being pinned comes from, in manifest order: only those
/// are fetched, so a vendor that is not reachable from this machine (or whose key is not
/// set up yet) stops only the pins that need it.
pub(super) fn needed<'m>(
    manifest: &'m Manifest,
    rules: &RuleSet,
    distro: &str,
    arches: &[Arch],
) -> Vec<&'m VendorSpec> {
    manifest
        .vendors
        .iter()
        .filter(|v| {
            rules.for_distro(distro).any(|r| {
                arches
                    .iter()
                    .filter(|&&a| rules.builds_for(&r.name, a))
                    .any(|&a| r.roots(distro, a).iter().any(|root| v.supplies(root)))
            })
        })
        .collect()
}

/// Each needed vendor's key, loaded and checked against the manifest's fingerprint.
pub(super) fn keyrings(
    manifest: &Manifest,
    vendors: &[&VendorSpec],
) -> Result<Vec<Keyring>, PinError> {
    vendors
        .iter()
        .map(|v| Ok(Keyring::load(&[manifest.vendor_key(v)?])?))
        .collect()
}

/// Fetch and verify one vendor's suite with `fetcher` (whose keyring holds the vendor's
/// key alone): the vendor's root is its only mirror.
pub(super) fn fetch(fetcher: &Fetcher<'_>, v: &VendorSpec) -> Result<FetchedSuite, PinError> {
    let mirror = [Mirror {
        template: v.root(),
        archive: Some(v.name.clone()),
        origin: format!("vendor {}", v.name),
    }];
    let fetcher = Fetcher {
        mirrors: &mirror,
        // A vendor repository has no snapshots: it is verified as it is now, and the lock
        // pins its files by hash.
        dated: None,
        components: &v.components,
        vendor: Some(v),
        ..*fetcher
    };
    let mut fetched = fetcher.suite(&SuiteSpec {
        archive: v.name.clone(),
        suite: v.suite.clone(),
        signed_by: Vec::new(),
    })?;
    fetched.locked.url = Some(v.root());
    // The vendor supplies the names it claims and nothing else.
    retain(&mut fetched.packages, |p| v.supplies(&p.name));
    Ok(fetched)
}

/// Keep only the packages `keep` accepts in every architecture's list.
pub(super) fn retain(
    packages: &mut BTreeMap<String, Vec<Package>>,
    keep: impl Fn(&Package) -> bool,
) {
    for list in packages.values_mut() {
        list.retain(&keep);
    }
}
