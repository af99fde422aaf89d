//! The generators that read the image's certificates and libraries: the CA bundle, the
//! Java trust store and ld.so.cache.

use std::sync::Arc;

use super::generators::LayerInput;
use crate::generate::{GenError, cacerts, keystore};
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

fn generated(path: &str, data: Vec<u8>, mtime: u64, generator: &str) -> Entry {
    Entry {
        path: path.to_owned(),
        kind: EntryKind::File {
            data: Arc::new(data),
            link_group: None,
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime,
        origin: format!("generated:{generator}"),
    }
}

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
    candidates: &[Entry],
    generated_so_far: &mut Vec<Entry>,
) -> Result<(), GenError> {
    let g = &input.plan.rule.generate;
    let mut bundle: Option<Arc<Vec<u8>>> = None;
    if g.ca_bundle.is_some() {
        let (packaged, local) = {
            let lists = [candidates, generated_so_far.as_slice()];
            let all = union(input, &lists);
            let certs_in = |dir: &str| -> Vec<(String, Vec<u8>)> {
                all.iter()
                    .filter(|e| e.path.ends_with(".crt") && e.path.starts_with(dir))
                    .filter_map(|e| file_data(e).map(|d| (e.abs_path(), d.to_vec())))
                    .collect()
            };
            (certs_in(CERT_DIRS[0]), certs_in(CERT_DIRS[1]))
        };
        let mut b = cacerts::ca_bundle(&packaged)?;
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
        bundle = Some(Arc::new(b.clone()));
        generated_so_far.push(generated(BUNDLE, b, input.mtime, "ca-bundle"));
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
        generated_so_far.push(generated(JAVA_CACERTS, ks, input.mtime, "java-cacerts"));
    }
    Ok(())
}

/// `/etc/ld.so.cache` over the whole image including this layer.
pub(crate) fn ld_cache(
    _input: &LayerInput<'_>,
    _candidates: &mut Vec<Entry>,
) -> Result<(), GenError> {
    Ok(())
}
