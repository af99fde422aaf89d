//! SPDX 2.3 JSON documents: one per platform image (the image, each Debian package it
//! ships and each file a package put there) and one per multi-platform index, which
//! refers to the per-platform documents.
//!
//! Pure functions of their input: no clock, no randomness, everything sorted, so an
//! image's document is as reproducible as the image.

mod license;
mod purl;
#[cfg(test)]
mod tests;

pub use license::{Dep5, PUBLIC_DOMAIN, parse_dep5};

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};

use crate::digest::Digest;

/// One Debian package as shipped in an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SbomPackage {
    /// `Package`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// The package's `Architecture` (`amd64`, `all`).
    pub arch: String,
    /// `Source` without its version (the package name when the field is absent).
    pub source: String,
    /// The source version (the package's version when `Source` names none).
    pub source_version: String,
    /// SHA256 of the .deb.
    #[serde(with = "crate::digest::bare_hex")]
    pub deb_sha256: Digest,
    /// Where the .deb was fetched from.
    pub download_url: Option<String>,
    /// `Maintainer` (`Name <address>`).
    pub maintainer: Option<String>,
    /// `Homepage`.
    pub homepage: Option<String>,
    /// `Description` as in the control file: the synopsis, then the extended lines.
    pub description: Option<String>,
    /// The text of `/usr/share/doc/<pkg>/copyright`.
    pub copyright: Option<String>,
    /// The regular files of the package the image ships.
    pub files: Vec<SbomFile>,
}

/// One regular file a package ships. SPDX requires a file's SHA1 (and the package
/// verification code is made of them), so a file carries both hashes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SbomFile {
    /// Image path, with its leading `/`.
    pub path: String,
    /// Lower-case hex SHA256 of the content.
    pub sha256: String,
    /// Lower-case hex SHA1 of the content.
    pub sha1: String,
}

impl SbomFile {
    /// Hash a file's content.
    pub fn new(path: &str, content: &[u8]) -> SbomFile {
        SbomFile {
            path: path.to_owned(),
            sha256: Digest::of(content).hex(),
            sha1: hex::encode(Sha1::digest(content)),
        }
    }
}

/// One image (one platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomImage {
    /// `<image>:<tag>`, e.g. `python3-debian13:latest-amd64`.
    pub name: String,
    /// The manifest digest.
    pub digest: Digest,
    /// RFC 3339; the snapshot's time, so the document is reproducible.
    pub created: String,
    /// os-release `ID` (`debian`).
    pub distro_id: String,
    /// os-release `VERSION_ID` (`13`).
    pub distro_version: String,
    /// The Debian packages in the image.
    pub packages: Vec<SbomPackage>,
}

/// The SPDX id of the image package in an image document.
pub const IMAGE_ID: &str = "SPDXRef-Image";
/// The SPDX id of the index package in an index document.
pub const INDEX_ID: &str = "SPDXRef-Index";

const NOASSERTION: &str = "NOASSERTION";

/// The SPDX 2.3 document of one platform image: DOCUMENT DESCRIBES the image, the image
/// CONTAINS each Debian package, each package CONTAINS the files it ships.
pub fn image_sbom(img: &SbomImage, tool_version: &str) -> Value {
    let mut ids = Ids::default();
    let image_id = ids.claim(IMAGE_ID);
    let mut packages = vec![oci_package(&image_id, &img.name, &img.digest)];
    let mut files = Vec::new();
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", &image_id)];
    let mut public_domain = false;
    let distro = format!("{}-{}", img.distro_id, img.distro_version);

    let mut debs: Vec<&SbomPackage> = img.packages.iter().collect();
    debs.sort_by(|a, b| (&a.name, &a.arch, &a.version).cmp(&(&b.name, &b.arch, &b.version)));
    for p in debs {
        let id = ids.claim(&format!("SPDXRef-Package-deb-{}", p.name));
        relationships.push(relationship(&image_id, "CONTAINS", &id));
        let mut shipped: Vec<&SbomFile> = p.files.iter().collect();
        shipped.sort_by(|a, b| a.path.cmp(&b.path));
        for f in &shipped {
            let file_id = ids.claim(&format!(
                "SPDXRef-File-{}-{}",
                p.name,
                f.path.trim_start_matches('/')
            ));
            relationships.push(relationship(&id, "CONTAINS", &file_id));
            files.push(json!({
                "SPDXID": file_id,
                "fileName": format!("./{}", f.path.trim_start_matches('/')),
                "checksums": [checksum("SHA1", &f.sha1), checksum("SHA256", &f.sha256)],
            }));
        }
        let dep5 = p.copyright.as_deref().and_then(parse_dep5);
        let license = dep5.as_ref().and_then(|d| d.license.clone());
        public_domain |= license
            .as_deref()
            .is_some_and(|l| l.contains(PUBLIC_DOMAIN));
        let copyright_text = match (&dep5, &p.copyright) {
            (Some(d), _) if !d.copyright.is_empty() => d.copyright.clone(),
            // Not machine-readable: the whole file is the package's copyright statement.
            (None, Some(text)) if !text.trim().is_empty() => text.clone(),
            _ => NOASSERTION.to_owned(),
        };
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "supplier": p.maintainer.as_deref().map_or(NOASSERTION.to_owned(), supplier),
            "downloadLocation": p.download_url.as_deref().unwrap_or(NOASSERTION),
            "filesAnalyzed": !shipped.is_empty(),
            "checksums": [checksum("SHA256", &p.deb_sha256.hex())],
            "sourceInfo": format!("built package from: {} {}", p.source, p.source_version),
            // Concluding a licence takes a review of the files; debless only reads what the
            // copyright file declares (every stanza ANDed), so it concludes nothing.
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": license.as_deref().unwrap_or(NOASSERTION),
            "copyrightText": copyright_text,
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": deb_purl(p, &img.distro_id, &distro),
            }],
        });
        if !shipped.is_empty() {
            pkg["packageVerificationCode"] =
                json!({ "packageVerificationCodeValue": verification_code(&shipped) });
        }
        if let Some(h) = p.homepage.as_deref().filter(|h| is_url(h)) {
            pkg["homepage"] = json!(h);
        }
        if let Some((summary, description)) = p.description.as_deref().map(split_description) {
            pkg["summary"] = json!(summary);
            pkg["description"] = json!(description);
        }
        packages.push(pkg);
    }

    let mut doc = document(
        &img.name,
        &namespace("image", &img.name, &img.digest),
        &img.created,
        tool_version,
    );
    doc["packages"] = json!(packages);
    doc["files"] = json!(files);
    doc["relationships"] = json!(relationships);
    if public_domain {
        doc["hasExtractedLicensingInfos"] = json!([{
            "licenseId": PUBLIC_DOMAIN,
            "name": "public-domain",
            "extractedText": "No license required for any purpose; the work is not subject to copyright in any jurisdiction. (Debian copyright-format 1.0 short name public-domain; the package's copyright file holds the statement.)",
        }]);
    }
    doc
}

/// The SPDX 2.3 document of a multi-platform index: DOCUMENT DESCRIBES the index, which
/// CONTAINS each platform's image, referred to in that platform's own document
/// (`externalDocumentRefs`, with the SHA1 of [`to_json`] of it) rather than copied, so the
/// per-platform documents stay the single record of each image's packages and files.
/// `images` pairs a platform (`linux/amd64`) with its [`image_sbom`] document.
pub fn index_sbom(
    name: &str,
    index_digest: &Digest,
    created: &str,
    images: &[(String, Value)],
    tool_version: &str,
) -> Value {
    let written: Vec<IndexMember> = images
        .iter()
        .map(|(platform, doc)| IndexMember {
            platform: platform.clone(),
            namespace: doc["documentNamespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            bytes: to_json(doc),
        })
        .collect();
    index_sbom_of(name, index_digest, created, &written, tool_version)
}

/// One platform's document as an index document refers to it.
#[derive(Debug, Clone)]
pub struct IndexMember {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// Its `documentNamespace`.
    pub namespace: String,
    /// The document as written ([`to_json`]).
    pub bytes: Vec<u8>,
}

/// [`index_sbom`] over documents already written (for instance, taken from a cache).
pub fn index_sbom_of(
    name: &str,
    index_digest: &Digest,
    created: &str,
    images: &[IndexMember],
    tool_version: &str,
) -> Value {
    let mut ids = Ids::default();
    let index_id = ids.claim(INDEX_ID);
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", &index_id)];
    let mut refs = Vec::new();
    let mut sorted: Vec<&IndexMember> = images.iter().collect();
    sorted.sort_by(|a, b| a.platform.cmp(&b.platform));
    for m in sorted {
        let doc_id = ids.claim(&format!("DocumentRef-{}", m.platform));
        refs.push(json!({
            "externalDocumentId": doc_id,
            "spdxDocument": m.namespace,
            "checksum": checksum("SHA1", &hex::encode(Sha1::digest(&m.bytes))),
        }));
        let mut r = relationship(&index_id, "CONTAINS", &format!("{doc_id}:{IMAGE_ID}"));
        r["comment"] = json!(format!("platform {}", m.platform));
        relationships.push(r);
    }
    let mut doc = document(
        name,
        &namespace("index", name, index_digest),
        created,
        tool_version,
    );
    doc["externalDocumentRefs"] = json!(refs);
    doc["packages"] = json!([oci_package(&index_id, name, index_digest)]);
    doc["relationships"] = json!(relationships);
    doc
}

/// The `documentNamespace` of an image's document.
pub fn image_namespace(name: &str, digest: &Digest) -> String {
    namespace("image", name, digest)
}

/// The bytes of a document as debless writes it (pretty JSON and a final newline); an
/// index document's `externalDocumentRefs` checksums are of exactly these bytes.
pub fn to_json(doc: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The fields every document has.
fn document(name: &str, namespace: &str, created: &str, tool_version: &str) -> Value {
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": namespace,
        "creationInfo": {
            "created": spdx_time(created),
            "creators": [format!("Tool: debless-{tool_version}")],
        },
    })
}

/// The package for an image or index: its digest as checksum and `pkg:oci` purl.
fn oci_package(id: &str, name: &str, digest: &Digest) -> Value {
    let (algorithm, hex) = ("SHA256", digest.hex());
    // `repo:tag`; a colon before the last slash is a registry port, not a tag.
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, ""),
    };
    let (repository_url, last) = match repo.rsplit_once('/') {
        Some((_, last)) => (repo, last),
        None => ("", repo),
    };
    let purl = purl::purl(
        "oci",
        None,
        &last.to_ascii_lowercase(),
        &format!("{}:{hex}", algorithm.to_ascii_lowercase()),
        &[("repository_url", repository_url), ("tag", tag)],
    );
    json!({
        "SPDXID": id,
        "name": name,
        "versionInfo": digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [checksum(algorithm, &hex)],
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl,
        }],
    })
}

/// `pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13&upstream=glibc`, with the
/// source as `upstream` (as syft writes it) so scanners match Debian's advisories, which
/// are per source package.
fn deb_purl(p: &SbomPackage, distro_id: &str, distro: &str) -> String {
    let upstream = if p.source_version != p.version {
        format!("{}@{}", p.source, p.source_version)
    } else if p.source != p.name {
        p.source.clone()
    } else {
        String::new()
    };
    purl::purl(
        "deb",
        Some(distro_id),
        &p.name,
        &p.version,
        &[
            ("arch", p.arch.as_str()),
            ("distro", distro),
            ("upstream", upstream.as_str()),
        ],
    )
}

fn checksum(algorithm: &str, value: &str) -> Value {
    json!({ "algorithm": algorithm, "checksumValue": value })
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({ "spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to })
}

/// SPDX 2.3 §7.9: SHA1 over the files' SHA1s (lower-case hex), sorted, concatenated.
fn verification_code(files: &[&SbomFile]) -> String {
    let mut sums: Vec<String> = files.iter().map(|f| f.sha1.to_ascii_lowercase()).collect();
    sums.sort();
    hex::encode(Sha1::digest(sums.concat()))
}

/// A unique document namespace from what identifies the content: no UUID, no clock.
fn namespace(kind: &str, name: &str, digest: &Digest) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!(
        "https://spdx.org/spdxdocs/debless/{kind}/{}-{}",
        clean(name),
        clean(&digest.to_string())
    )
}

/// `Name <address>` as an SPDX actor, `Person: Name (address)`; brackets in the name
/// would end it early for SPDX parsers.
fn supplier(maintainer: &str) -> String {
    let (name, email) = match maintainer.split_once('<') {
        Some((n, rest)) => (n, rest.split('>').next().unwrap_or("").trim()),
        None => (maintainer, ""),
    };
    let name: String = name.chars().filter(|c| !matches!(c, '(' | ')')).collect();
    let name = name.trim();
    if email.is_empty() {
        format!("Person: {name}")
    } else {
        format!("Person: {name} ({email})")
    }
}

/// A control-file `Description` as (synopsis, description): the extended lines without
/// their leading space, ` .` as an empty line; just the synopsis when there are none.
fn split_description(text: &str) -> (String, String) {
    let mut lines = text.lines();
    let synopsis = lines.next().unwrap_or("").trim().to_owned();
    let extended: Vec<&str> = lines
        .map(|l| {
            let l = l.strip_prefix(' ').unwrap_or(l);
            if l.trim() == "." { "" } else { l }
        })
        .collect();
    let extended = extended.join("\n").trim().to_owned();
    if extended.is_empty() {
        (synopsis.clone(), synopsis)
    } else {
        (synopsis, extended)
    }
}

/// An http(s) URL with a host and no spaces (SPDX rejects anything else as a homepage).
fn is_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && !s.chars().any(char::is_whitespace)
}

/// SPDX wants `YYYY-MM-DDThh:mm:ssZ`; any RFC 3339 time is converted to it (one that
/// does not parse is kept as given).
fn spdx_time(created: &str) -> String {
    created
        .parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| created.to_owned())
}

/// SPDX ids made from names: characters SPDX does not allow become `-`, and a name that
/// comes out the same as an earlier one gets `-2`, `-3`...
#[derive(Default)]
struct Ids(BTreeSet<String>);

impl Ids {
    fn claim(&mut self, wanted: &str) -> String {
        // The prefix (`SPDXRef-`, `DocumentRef-`) is kept; `DocumentRef-` also allows `+`.
        let (prefix, rest) = wanted.split_once('-').unwrap_or(("SPDXRef", wanted));
        let clean: String = rest
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let base = format!("{prefix}-{clean}");
        let mut id = base.clone();
        let mut n = 1;
        while !self.0.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        id
    }
}
