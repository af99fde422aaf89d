//! The generators that read the image's certificates and libraries: the CA bundle, the
//! Java trust store and ld.so.cache.

use std::sync::Arc;

use super::generators::LayerInput;
use crate::generate::{GenError, cacerts, keystore, ldcache, system};
use crate::layer::{Entry, EntryKind};

/// Where update-ca-certificates reads certificates: the packaged ones, then local ones.
const CERT_DIRS: &[&str] = &[
    "usr/share/ca-certificates/",
    "usr/local/share/ca-certificates/",
];
/// The bundle every TLS stack is pointed at.
const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";
/// Where the JRE's lib/security/cacerts link points on Debian.
const JAVA_CACERTS: &str = "etc/ssl/certs/java/cacerts";
/// The JRE's default trust store password.
const JAVA_PASSWORD: &str = "changeit";

/// The image as it will be once this layer is on top: lower entries overridden by
/// this layer's candidates and what its generators made so far.
fn union<'e>(input: &'e LayerInput<'_>, mine: &'e [&'e [Entry]]) -> Vec<&'e Entry> {
    let mut by_path: std::collections::BTreeMap<&str, &Entry> = input
        .lower
        .entries()
        .map(|e| (e.path.as_str(), e))
        .collect();
    for list in mine {
        for e in *list {
            by_path.insert(e.path.as_str(), e);
        }
    }
    by_path.into_values().collect()
}

fn file_data(e: &Entry) -> Option<&Arc<Vec<u8>>> {
    match &e.kind {
        EntryKind::File { data, .. } => Some(data),
        _ => None,
    }
}

/// CA bundle and Java keystore, when the rule asks for them.
pub(crate) fn run(
    input: &LayerInput<'_>,
    candidates: &mut Vec<Entry>,
    generated_so_far: &mut Vec<Entry>,
) -> Result<(), GenError> {
    let g = &input.plan.rule.generate;
    let mut bundle: Option<Arc<Vec<u8>>> = None;
    if let Some(spec) = &g.ca_bundle {
        let certs_in = |list: &[&Entry], dir: &str| -> Result<Vec<(String, Vec<u8>)>, GenError> {
            let mut out = Vec::new();
            for e in list
                .iter()
                .filter(|e| e.path.ends_with(".crt") && e.path.starts_with(dir))
            {
                // A hard link costs a package one tar header, but the bundle would hold the
                // certificate once per link: a kilobyte of links, gigabytes of bundle.
                if let EntryKind::File {
                    link_group: Some(_),
                    ..
                } = &e.kind
                {
                    return Err(GenError {
                        generator: "ca-bundle",
                        what: format!(
                            "{} (from {}) is a hard link; the bundle takes each certificate file once, so leave the links out of the rule",
                            e.abs_path(),
                            e.origin
                        ),
                    });
                }
                if let Some(d) = file_data(e) {
                    out.push((e.abs_path(), d.to_vec()));
                }
            }
            Ok(out)
        };
        let (packaged, local, new_local) = {
            let lists = [candidates.as_slice(), generated_so_far.as_slice()];
            let all = union(input, &lists);
            let mine: Vec<&Entry> = candidates.iter().chain(generated_so_far.iter()).collect();
            (
                certs_in(&all, CERT_DIRS[0])?,
                certs_in(&all, CERT_DIRS[1])?,
                certs_in(&mine, CERT_DIRS[1])?,
            )
        };
        // The packaged certificates, or (when a lower layer already bundled and dropped
        // them) that bundle, which then only needs this layer's local additions.
        let (mut b, local) = if !packaged.is_empty() {
            (cacerts::ca_bundle(&packaged)?, local)
        } else if let Some(lower) = input.lower.get(BUNDLE).and_then(file_data) {
            (lower.to_vec(), new_local)
        } else {
            return Err(GenError {
                generator: "ca-bundle",
                what: "no certificates under /usr/share/ca-certificates; add ca-certificates to the rule".into(),
            });
        };
        // update-ca-certificates then appends the local certificates, sorted by path.
        for (path, pem) in local {
            if cacerts::pem_certificates(&pem)?.is_empty() {
                return Err(GenError {
                    generator: "ca-bundle",
                    what: format!("{path} holds no PEM CERTIFICATE block"),
                });
            }
            b.extend_from_slice(&pem);
            if pem.last() != Some(&b'\n') {
                b.push(b'\n');
            }
        }
        if !spec.keep_certificates {
            let dir = CERT_DIRS[0].trim_end_matches('/');
            candidates.retain(|e| e.path != dir && !e.path.starts_with(CERT_DIRS[0]));
        }
        bundle = Some(Arc::new(b.clone()));
        generated_so_far.push(system::file(BUNDLE, b, 0o644, input.mtime, "ca-bundle"));
    }
    if g.java_cacerts.is_some() {
        let b = match bundle {
            Some(b) => b,
            None => input
                .lower
                .get(BUNDLE)
                .or_else(|| candidates.iter().find(|e| e.path == BUNDLE))
                .and_then(file_data)
                .cloned()
                .ok_or_else(|| GenError {
                    generator: "java-cacerts",
                    what: "no /etc/ssl/certs/ca-certificates.crt below this layer; enable [generate.ca-bundle] in a parent".into(),
                })?,
        };
        let ks = keystore::java_cacerts(&b, JAVA_PASSWORD, input.mtime.saturating_mul(1000))?;
        generated_so_far.push(system::file(
            JAVA_CACERTS,
            ks,
            0o644,
            input.mtime,
            "java-cacerts",
        ));
    }
    Ok(())
}

/// `/etc/ld.so.cache` over the whole image including this layer.
pub(crate) fn ld_cache(
    input: &LayerInput<'_>,
    candidates: &mut Vec<Entry>,
) -> Result<(), GenError> {
    let all: Vec<Entry> = union(input, &[candidates.as_slice()])
        .into_iter()
        .cloned()
        .collect();
    let cache = ldcache::ld_so_cache(&all, input.plan.key.arch())?;
    // When nothing changed the cache equals the one below, and the tree drops it from
    // this layer as an identical file.
    candidates.retain(|e| e.path != "etc/ld.so.cache");
    candidates.push(system::file(
        "etc/ld.so.cache",
        cache,
        0o644,
        input.mtime,
        "ld-cache",
    ));
    Ok(())
}
