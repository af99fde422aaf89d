//! SPDX document tests, checked by hand-made expectations and by the SPDX project's own
//! validator. Over 600 lines: a test per field family; each reads alone.

use std::path::Path;
use std::process::Command;

use super::*;

fn deb(name: &str, version: &str) -> SbomPackage {
    SbomPackage {
        name: name.to_owned(),
        version: version.to_owned(),
        arch: "amd64".to_owned(),
        source: name.to_owned(),
        source_version: version.to_owned(),
        deb_sha256: Digest::from_hex(&"ab".repeat(32)).unwrap(),
        download_url: None,
        maintainer: None,
        homepage: None,
        description: None,
        copyright: None,
        files: Vec::new(),
    }
}

const DEP5_HEADER: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: x\n\n";

fn image() -> SbomImage {
    let mut libc = deb("libc6", "2.41-12");
    libc.source = "glibc".into();
    libc.maintainer = Some("GNU Libc Maintainers <debian-glibc@lists.debian.org>".into());
    libc.download_url =
        Some("https://archive.invalid/debian/pool/main/g/glibc/libc6_2.41-12_amd64.deb".into());
    libc.homepage = Some("https://www.gnu.org/software/libc/libc.html".into());
    libc.description = Some(
        "GNU C Library: Shared libraries\n Contains the standard libraries.\n .\n And more.".into(),
    );
    libc.copyright = Some("This is the Debian prepackaged version of glibc.\n".into());
    libc.files = vec![
        SbomFile::new("/usr/lib/x86_64-linux-gnu/libc.so.6", b"libc"),
        SbomFile::new("/usr/lib/x86_64-linux-gnu/libm.so.6", b"libm"),
    ];
    let mut cxx = deb("libstdc++6", "14.2.0-19");
    cxx.source = "gcc-14".into();
    cxx.files = vec![SbomFile::new(
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6",
        b"c++",
    )];
    let mut tz = deb("tzdata", "2025b-4+deb13u1");
    tz.arch = "all".into();
    tz.source_version = "2025b-4".into();
    tz.copyright = Some(format!(
        "{DEP5_HEADER}Files: *\nCopyright: Arthur David Olson\n Paul Eggert\nLicense: public-domain\n\nFiles: debian/*\nCopyright: 1998 Debian\nLicense: GPL-2+\n"
    ));
    tz.files = vec![SbomFile::new("/usr/share/zoneinfo/UTC", b"TZif")];
    let mut epoch = deb("perl-base", "1:5.40.1-6");
    epoch.arch = "amd64".into();
    // A package whose every file was dropped: nothing analysed.
    epoch.files = Vec::new();
    SbomImage {
        name: "base-debian13:latest-amd64".into(),
        digest: Digest::from_hex(&"12".repeat(32)).unwrap(),
        created: "2026-11-20T09:15:44Z".into(),
        distro_id: "debian".into(),
        distro_version: "13".into(),
        // Not sorted on purpose.
        packages: vec![tz, libc, epoch, cxx],
    }
}

fn package<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

fn purl_of(p: &Value) -> &str {
    p["externalRefs"][0]["referenceLocator"].as_str().unwrap()
}

fn has_relationship(doc: &Value, from: &str, kind: &str, to: &str) -> bool {
    doc["relationships"].as_array().unwrap().iter().any(|r| {
        r["spdxElementId"] == from && r["relationshipType"] == kind && r["relatedSpdxElement"] == to
    })
}

#[test]
fn image_document_has_the_spdx_header_and_a_namespace_from_the_digest() {
    let img = image();
    let doc = image_sbom(&img, "0.1.0");
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(doc["name"], "base-debian13:latest-amd64");
    assert_eq!(
        doc["documentNamespace"],
        format!(
            "https://spdx.org/spdxdocs/debless/image/base-debian13-latest-amd64-sha256-{}",
            "12".repeat(32)
        )
    );
    assert_eq!(
        doc["creationInfo"],
        json!({"created": "2026-11-20T09:15:44Z", "creators": ["Tool: debless-0.1.0"]})
    );
    let mut other = img.clone();
    other.digest = Digest::from_hex(&"34".repeat(32)).unwrap();
    assert_ne!(
        image_sbom(&other, "0.1.0")["documentNamespace"],
        doc["documentNamespace"]
    );
}

#[test]
fn image_document_is_deterministic_whatever_the_input_order() {
    let img = image();
    let mut shuffled = img.clone();
    shuffled.packages.reverse();
    for p in &mut shuffled.packages {
        p.files.reverse();
    }
    let a = to_json(&image_sbom(&img, "0.1.0"));
    assert_eq!(a, to_json(&image_sbom(&shuffled, "0.1.0")));
    assert_eq!(a, to_json(&image_sbom(&img, "0.1.0")));
    let doc = image_sbom(&img, "0.1.0");
    let names: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "base-debian13:latest-amd64",
            "libc6",
            "libstdc++6",
            "perl-base",
            "tzdata"
        ]
    );
}

#[test]
fn debian_package_fields() {
    let doc = image_sbom(&image(), "0.1.0");
    let libc = package(&doc, "libc6");
    assert_eq!(libc["SPDXID"], "SPDXRef-Package-deb-libc6");
    assert_eq!(libc["versionInfo"], "2.41-12");
    assert_eq!(
        libc["supplier"],
        "Person: GNU Libc Maintainers (debian-glibc@lists.debian.org)"
    );
    assert_eq!(
        libc["downloadLocation"],
        "https://archive.invalid/debian/pool/main/g/glibc/libc6_2.41-12_amd64.deb"
    );
    assert_eq!(
        libc["checksums"],
        json!([{"algorithm": "SHA256", "checksumValue": "ab".repeat(32)}])
    );
    assert_eq!(
        libc["homepage"],
        "https://www.gnu.org/software/libc/libc.html"
    );
    assert_eq!(libc["sourceInfo"], "built package from: glibc 2.41-12");
    assert_eq!(libc["summary"], "GNU C Library: Shared libraries");
    assert_eq!(
        libc["description"],
        "Contains the standard libraries.\n\nAnd more."
    );
    // Not machine-readable: no licence, the whole file as the copyright statement.
    assert_eq!(libc["licenseConcluded"], "NOASSERTION");
    assert_eq!(libc["licenseDeclared"], "NOASSERTION");
    assert_eq!(
        libc["copyrightText"],
        "This is the Debian prepackaged version of glibc.\n"
    );
    assert_eq!(
        libc["externalRefs"],
        json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13&upstream=glibc",
        }])
    );
    let bare = package(&doc, "perl-base");
    assert_eq!(bare["supplier"], "NOASSERTION");
    assert_eq!(bare["downloadLocation"], "NOASSERTION");
    assert_eq!(bare["copyrightText"], "NOASSERTION");
    assert!(bare.get("homepage").is_none());
    assert_eq!(bare["filesAnalyzed"], false);
    assert!(bare.get("packageVerificationCode").is_none());
}

#[test]
fn purls_percent_encode_epochs_and_plus_and_name_the_source() {
    let doc = image_sbom(&image(), "0.1.0");
    assert_eq!(
        purl_of(package(&doc, "perl-base")),
        "pkg:deb/debian/perl-base@1%3A5.40.1-6?arch=amd64&distro=debian-13"
    );
    assert_eq!(
        purl_of(package(&doc, "libstdc++6")),
        "pkg:deb/debian/libstdc%2B%2B6@14.2.0-19?arch=amd64&distro=debian-13&upstream=gcc-14"
    );
    // A binNMU or security rebuild: the source version differs.
    assert_eq!(
        purl_of(package(&doc, "tzdata")),
        "pkg:deb/debian/tzdata@2025b-4%2Bdeb13u1?arch=all&distro=debian-13&upstream=tzdata%402025b-4"
    );
    assert_eq!(
        purl_of(package(&doc, "base-debian13:latest-amd64")),
        format!(
            "pkg:oci/base-debian13@sha256%3A{}?tag=latest-amd64",
            "12".repeat(32)
        )
    );
    assert_eq!(
        purl::purl(
            "oci",
            None,
            "x",
            "sha256:00",
            &[("tag", "t"), ("repository_url", "r.test:5000/a/x")]
        ),
        "pkg:oci/x@sha256%3A00?repository_url=r.test%3A5000%2Fa%2Fx&tag=t"
    );
}

#[test]
fn files_carry_sha1_and_the_verification_code_is_spdx_s() {
    let doc = image_sbom(&image(), "0.1.0");
    let libc = package(&doc, "libc6");
    assert_eq!(libc["filesAnalyzed"], true);
    // SPDX 2.3 §7.9 by hand: sorted SHA1s of "libc" and "libm", concatenated, SHA1.
    let mut sums = [
        hex::encode(Sha1::digest(b"libc")),
        hex::encode(Sha1::digest(b"libm")),
    ];
    sums.sort();
    assert_eq!(
        libc["packageVerificationCode"]["packageVerificationCodeValue"],
        hex::encode(Sha1::digest(sums.concat()))
    );
    let file = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["fileName"] == "./usr/lib/x86_64-linux-gnu/libc.so.6")
        .unwrap();
    assert_eq!(
        file["SPDXID"],
        "SPDXRef-File-libc6-usr-lib-x86-64-linux-gnu-libc.so.6"
    );
    assert_eq!(
        file["checksums"],
        json!([
            {"algorithm": "SHA1", "checksumValue": hex::encode(Sha1::digest(b"libc"))},
            {"algorithm": "SHA256", "checksumValue": Digest::of(b"libc").hex()},
        ])
    );
    assert_eq!(doc["files"].as_array().unwrap().len(), 4);
}

#[test]
fn relationships_describe_the_image_which_contains_packages_which_contain_files() {
    let doc = image_sbom(&image(), "0.1.0");
    assert!(has_relationship(
        &doc,
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        IMAGE_ID
    ));
    for p in ["libc6", "libstdc--6", "perl-base", "tzdata"] {
        let id = format!("SPDXRef-Package-deb-{p}");
        assert!(has_relationship(&doc, IMAGE_ID, "CONTAINS", &id), "{id}");
    }
    assert!(has_relationship(
        &doc,
        "SPDXRef-Package-deb-tzdata",
        "CONTAINS",
        "SPDXRef-File-tzdata-usr-share-zoneinfo-UTC"
    ));
    let image = package(&doc, "base-debian13:latest-amd64");
    assert_eq!(image["SPDXID"], IMAGE_ID);
    assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(
        image["checksums"],
        json!([{"algorithm": "SHA256", "checksumValue": "12".repeat(32)}])
    );
}

#[test]
fn dep5_licence_becomes_the_declared_licence_with_its_definition() {
    let doc = image_sbom(&image(), "0.1.0");
    let tz = package(&doc, "tzdata");
    assert_eq!(
        tz["licenseDeclared"],
        "LicenseRef-public-domain AND GPL-2.0-or-later"
    );
    // Declared is what the copyright file says; nobody reviewed the files to conclude.
    assert_eq!(tz["licenseConcluded"], "NOASSERTION");
    assert_eq!(
        tz["copyrightText"],
        "Arthur David Olson\nPaul Eggert\n1998 Debian"
    );
    assert_eq!(
        doc["hasExtractedLicensingInfos"][0]["licenseId"],
        "LicenseRef-public-domain"
    );
    // Without a public-domain package there is nothing to define.
    let mut img = image();
    img.packages.retain(|p| p.name != "tzdata");
    assert!(
        image_sbom(&img, "0.1.0")
            .get("hasExtractedLicensingInfos")
            .is_none()
    );
}

#[test]
fn ids_are_sanitised_and_unique() {
    let mut ids = Ids::default();
    assert_eq!(ids.claim("SPDXRef-File-a-x_y"), "SPDXRef-File-a-x-y");
    assert_eq!(ids.claim("SPDXRef-File-a-x-y"), "SPDXRef-File-a-x-y-2");
    assert_eq!(ids.claim("SPDXRef-File-a-x+y"), "SPDXRef-File-a-x-y-3");
    assert_eq!(
        ids.claim("DocumentRef-linux/arm64/v8"),
        "DocumentRef-linux-arm64-v8"
    );
}

#[test]
fn created_is_normalised_to_spdx_s_format() {
    assert_eq!(
        spdx_time("2026-11-20T09:15:44+01:00"),
        "2026-11-20T08:15:44Z"
    );
    assert_eq!(spdx_time("2026-11-20T09:15:44.5Z"), "2026-11-20T09:15:44Z");
}

#[test]
fn description_and_supplier_edge_cases() {
    assert_eq!(
        split_description("only a synopsis"),
        ("only a synopsis".to_owned(), "only a synopsis".to_owned())
    );
    assert_eq!(supplier("Jane Doe"), "Person: Jane Doe");
    assert_eq!(
        supplier("Team (DPT) <team@lists.invalid>"),
        "Person: Team DPT (team@lists.invalid)"
    );
    assert!(is_url("https://www.zlib.net/"));
    assert!(!is_url("www.zlib.net"));
    assert!(!is_url("https://a b"));
}

#[test]
fn index_document_refers_to_each_platform_document_by_checksum() {
    let amd = image();
    let mut arm = image();
    arm.name = "base-debian13:latest-arm64".into();
    arm.digest = Digest::from_hex(&"56".repeat(32)).unwrap();
    let docs = vec![
        ("linux/arm64".to_owned(), image_sbom(&arm, "0.1.0")),
        ("linux/amd64".to_owned(), image_sbom(&amd, "0.1.0")),
    ];
    let digest = Digest::from_hex(&"78".repeat(32)).unwrap();
    let idx = index_sbom(
        "base-debian13:latest",
        &digest,
        "2026-11-20T09:15:44Z",
        &docs,
        "0.1.0",
    );
    assert_eq!(idx["spdxVersion"], "SPDX-2.3");
    assert_eq!(
        idx["documentNamespace"],
        format!(
            "https://spdx.org/spdxdocs/debless/index/base-debian13-latest-sha256-{}",
            "78".repeat(32)
        )
    );
    let refs = idx["externalDocumentRefs"].as_array().unwrap();
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[0]["externalDocumentId"], "DocumentRef-linux-amd64");
    assert_eq!(refs[0]["spdxDocument"], docs[1].1["documentNamespace"]);
    assert_eq!(refs[0]["checksum"]["algorithm"], "SHA1");
    assert_eq!(
        refs[0]["checksum"]["checksumValue"],
        hex::encode(Sha1::digest(to_json(&docs[1].1)))
    );
    assert!(has_relationship(
        &idx,
        "SPDXRef-DOCUMENT",
        "DESCRIBES",
        INDEX_ID
    ));
    assert!(has_relationship(
        &idx,
        INDEX_ID,
        "CONTAINS",
        "DocumentRef-linux-arm64:SPDXRef-Image"
    ));
    assert_eq!(idx["packages"][0]["versionInfo"], digest.to_string());
}

// ---- DEP-5 ----

fn license_of(synopses: &[&str]) -> Option<String> {
    let mut text = DEP5_HEADER.to_owned();
    for s in synopses {
        text.push_str(&format!(
            "Files: *\nCopyright: someone\nLicense: {s}\n text\n\n"
        ));
    }
    parse_dep5(&text).unwrap().license
}

#[test]
fn dep5_short_names_map_to_spdx_ids() {
    let cases = [
        ("GPL-2+", "GPL-2.0-or-later"),
        ("GPL-2", "GPL-2.0-only"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
        ("GPL-3.0-or-later", "GPL-3.0-or-later"),
        ("GPL", "GPL-1.0-only"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("lgpl-3", "LGPL-3.0-only"),
        ("GFDL-NIV-1.3+", "GFDL-1.3-no-invariants-or-later"),
        ("BSD-3-clause", "BSD-3-Clause"),
        ("BSD-2-clause", "BSD-2-Clause"),
        ("Expat", "MIT"),
        ("Apache-2", "Apache-2.0"),
        ("Apache-2.0", "Apache-2.0"),
        ("Artistic", "Artistic-1.0-Perl"),
        ("Artistic-2.0", "Artistic-2.0"),
        ("zlib", "Zlib"),
        ("CC0", "CC0-1.0"),
        ("MPL-2.0", "MPL-2.0"),
        ("PSF-2", "PSF-2.0"),
        ("OpenLDAP-2.8", "OLDAP-2.8"),
        ("public-domain", "LicenseRef-public-domain"),
        (
            "GPL-1+ or Artistic",
            "GPL-1.0-or-later OR Artistic-1.0-Perl",
        ),
        // "and" binds tighter than "or", in DEP-5 and in SPDX...
        ("MIT or GPL-2 and ISC", "MIT OR GPL-2.0-only AND ISC"),
        // ...unless a comma comes first.
        (
            "GPL-2+ or Artistic-2.0, and BSD-3-clause",
            "(GPL-2.0-or-later OR Artistic-2.0) AND BSD-3-Clause",
        ),
        (
            "GPL-2+ with Autoconf exception",
            "GPL-2.0-or-later WITH Autoconf-exception-2.0",
        ),
        (
            "GPL-3+ with Bison exception",
            "GPL-3.0-or-later WITH Bison-exception-2.2",
        ),
        (
            "GPL-2 with Linux-syscall-note exception",
            "GPL-2.0-only WITH Linux-syscall-note",
        ),
        // An exception SPDX cannot name only ever added permissions.
        ("GPL-2+ with OpenSSL exception", "GPL-2.0-or-later"),
    ];
    for (debian, spdx) in cases {
        assert_eq!(license_of(&[debian]).as_deref(), Some(spdx), "{debian}");
    }
    for unknown in [
        "permissive",
        "BSD-variant",
        "MIT/X11",
        "MPL-1.1+",
        "GFDL",
        "GPL-2+ or",
        "A, B",
    ] {
        assert_eq!(license_of(&[unknown]), None, "{unknown}");
    }
}

#[test]
fn dep5_paragraphs_combine_with_and_and_any_unknown_name_voids_the_whole() {
    assert_eq!(
        license_of(&["GPL-2+", "BSD-3-clause or GPL-2", "GPL-2+", "Expat"]).as_deref(),
        Some("GPL-2.0-or-later AND (BSD-3-Clause OR GPL-2.0-only) AND MIT")
    );
    assert_eq!(license_of(&["GPL-2+", "permissive"]), None);
}

#[test]
fn dep5_needs_the_format_header_and_ignores_standalone_licence_paragraphs() {
    assert_eq!(
        parse_dep5("This is the Debian prepackaged version.\n"),
        None
    );
    assert_eq!(
        parse_dep5("Format: http://dep.debian.net/deps/dep5\n\nFiles: *\nLicense: MIT\n"),
        None
    );
    let text = "Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0\n\n\
                Files: *\nCopyright: 2020 A\nLicense: GPL-2+\n\n\
                License: GPL-2+\n This program is free software\n";
    assert_eq!(
        parse_dep5(text),
        Some(Dep5 {
            license: Some("GPL-2.0-or-later".into()),
            copyright: "2020 A".into()
        })
    );
}

/// Real copyright files of the host's packages: every DEP-5 one parses, and a few whose
/// licences are stable across Debian releases come out as they should.
#[test]
fn dep5_real_copyright_files() {
    let expected = [
        ("zlib1g", Some("Zlib")),
        ("tzdata", Some("LicenseRef-public-domain")),
        ("netbase", Some("GPL-2.0-only")),
        ("libacl1", Some("GPL-2.0-or-later AND LGPL-2.0-or-later")),
        // "ad-hoc" is no SPDX licence.
        ("media-types", None),
    ];
    let mut checked = 0;
    for (pkg, want) in expected {
        let path = format!("/usr/share/doc/{pkg}/copyright");
        let Ok(text) = std::fs::read_to_string(&path) else {
            println!("skipping {path}: not on this host");
            continue;
        };
        let dep5 = parse_dep5(&text).unwrap_or_else(|| panic!("{path} is DEP-5"));
        assert_eq!(dep5.license.as_deref(), want, "{path}");
        assert!(!dep5.copyright.is_empty(), "{path}");
        checked += 1;
    }
    if let Ok(text) = std::fs::read_to_string("/usr/share/doc/libc6/copyright") {
        assert_eq!(parse_dep5(&text), None, "libc6's copyright is not DEP-5");
    }
    let (mut dep5, mut mapped) = (0, 0);
    for (_, text) in host_copyrights() {
        if text.lines().next().is_some_and(|l| {
            l.starts_with("Format:") && l.contains("packaging-manuals/copyright-format/1.0")
        }) {
            let d = parse_dep5(&text).expect("a copyright-format 1.0 file parses");
            dep5 += 1;
            mapped += usize::from(d.license.is_some());
        }
    }
    println!("{checked} known files checked; {mapped} of {dep5} DEP-5 files have an SPDX licence");
    assert!(checked > 0 || dep5 == 0, "no copyright files on this host");
}

/// (package, copyright text) for every package with a copyright file on the host.
fn host_copyrights() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/usr/share/doc") else {
        return out;
    };
    for e in dir.flatten() {
        if let Ok(text) = std::fs::read_to_string(e.path().join("copyright")) {
            out.push((e.file_name().to_string_lossy().into_owned(), text));
        }
    }
    out.sort();
    out
}

// ---- a real validator ----

/// Python with the `spdx-tools` package (PyPI), which `make deps` installs; `None` (or a
/// failure on CI) without it. Tests do not pip-install it themselves: they stay off the
/// network.
fn spdx_tools() -> Option<String> {
    let python = "python3";
    let has = Command::new(python)
        .args(["-c", "import spdx_tools.spdx.clitools.pyspdxtools"])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::testing::require(
        has,
        "the Python package spdx-tools",
        "make deps (python3 -m pip install spdx-tools)",
    )
    .then(|| python.to_owned())
}

/// Run pyspdxtools' validation on a file; Err(its messages) when it rejects it.
fn pyspdxtools(python: &str, file: &Path) -> Result<(), String> {
    let o = Command::new(python)
        .args([
            "-c",
            "import sys; from spdx_tools.spdx.clitools.pyspdxtools import main; sys.exit(main())",
            "-i",
        ])
        .arg(file)
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// One SbomPackage per package installed on the host, with its real control fields and
/// copyright file and (to keep the test quick) its first few regular files.
fn host_packages() -> Vec<SbomPackage> {
    let Ok(o) = Command::new("dpkg-query")
        .args([
            "-W",
            "-f=${Package}\x1f${Version}\x1f${Architecture}\x1f${source:Package}\x1f${source:Version}\x1f${Maintainer}\x1f${Homepage}\x1f${Description}\x1e",
        ])
        .output()
    else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut out = Vec::new();
    for rec in text.split('\x1e').filter(|r| !r.trim().is_empty()) {
        let f: Vec<&str> = rec.split('\x1f').collect();
        let [
            name,
            version,
            arch,
            source,
            source_version,
            maintainer,
            homepage,
            description,
        ] = f[..]
        else {
            continue;
        };
        let name = name.trim();
        let list = [format!("{name}:{arch}.list"), format!("{name}.list")]
            .iter()
            .find_map(|l| std::fs::read_to_string(Path::new("/var/lib/dpkg/info").join(l)).ok())
            .unwrap_or_default();
        let files: Vec<SbomFile> = list
            .lines()
            .filter(|p| Path::new(p).is_file() && !Path::new(p).is_symlink())
            .filter_map(|p| std::fs::read(p).ok().map(|b| SbomFile::new(p, &b)))
            .take(3)
            .collect();
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.to_owned());
        out.push(SbomPackage {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.to_owned(),
            source: source.to_owned(),
            source_version: source_version.to_owned(),
            deb_sha256: Digest::of(name.as_bytes()),
            download_url: Some(format!(
                "https://archive.invalid/debian/pool/{name}_{version}_{arch}.deb"
            )),
            maintainer: opt(maintainer),
            homepage: opt(homepage),
            description: opt(description),
            copyright: std::fs::read_to_string(format!("/usr/share/doc/{name}/copyright")).ok(),
            files,
        });
    }
    out
}

/// pyspdxtools (the SPDX project's own Python tools) parses and validates an image
/// document built from every package on this host (real names, versions with epochs and
/// `+`, maintainers, homepages, descriptions, copyright files, files) and the index
/// document over it; and it rejects a broken one, so the check can fail.
#[test]
fn spdx_tools_validates_image_and_index_documents() {
    let Some(python) = spdx_tools() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut img = image();
    img.packages.extend(host_packages());
    let pkgs = img.packages.len();
    let amd = image_sbom(&img, "0.1.0");
    let mut arm_img = image();
    arm_img.digest = Digest::from_hex(&"9a".repeat(32)).unwrap();
    let arm = image_sbom(&arm_img, "0.1.0");
    let idx = index_sbom(
        "base-debian13:latest",
        &Digest::from_hex(&"bc".repeat(32)).unwrap(),
        "2026-11-20T09:15:44Z",
        &[
            ("linux/amd64".into(), amd.clone()),
            ("linux/arm64".into(), arm),
        ],
        "0.1.0",
    );
    for (name, doc) in [("amd64", &amd), ("index", &idx)] {
        let file = tmp.path().join(format!("{name}.spdx.json"));
        std::fs::write(&file, to_json(doc)).unwrap();
        if let Err(e) = pyspdxtools(&python, &file) {
            panic!("pyspdxtools rejects the {name} document:\n{e}");
        }
    }
    let licensed = amd["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["licenseDeclared"] != "NOASSERTION")
        .count();
    println!("pyspdxtools accepts {pkgs} packages, {licensed} with an SPDX licence");

    let mut broken = amd.clone();
    broken["files"][0]["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": "00"}]);
    let file = tmp.path().join("broken.spdx.json");
    std::fs::write(&file, to_json(&broken)).unwrap();
    let e = pyspdxtools(&python, &file).expect_err("a file without SHA1 is invalid");
    assert!(e.contains("SHA1"), "{e}");
}
