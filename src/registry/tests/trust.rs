//! Reading back, referrers (with and without the API), signing after a push and
//! `verify_image`, against the in-process fake registry of `super`. The real
//! docker-registry (which has no referrers API) runs the same paths in tests/push.rs and
//! tests/trust.rs; this is where the referrers API path is exercised.

use super::*;
use crate::oci::{Content, Descriptor, Document, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::registry::referrers::{Via, referrers_tag};
use crate::registry::remote::Repository;
use crate::sign::PrivateKey;
use crate::sign::provenance::{
    self, BuildInputs, Dependency, InputFile, LOCAL_BUILDER_ID, Parameters, Statement,
};

const DEB: &str = "pool/main/g/glibc/libc6_2.41-12_amd64.deb";

fn repo(fake: &Fake, repository: &str, access: Access) -> Repository {
    let target = Target::parse(&fake.target(repository)).unwrap();
    Repository::connect(&http(), &target, access, &anonymous()).unwrap()
}

/// The per-tag documents of a layout, as a push plans them.
fn tags(dir: &Path) -> BTreeMap<String, Document> {
    let reader = crate::oci::LayoutReader::open(dir).unwrap();
    reader
        .tags()
        .iter()
        .map(|(t, d)| (t.clone(), reader.document(d).unwrap()))
        .collect()
}

fn subject(doc: &Document) -> Descriptor {
    Descriptor {
        media_type: doc.media_type.clone(),
        digest: doc.digest,
        size: doc.bytes.len() as u64,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

/// An SBOM-like artifact referring to `doc`.
fn artifact_for(doc: &Document, body: &[u8]) -> crate::sign::Artifact {
    let layer = crate::sign::Layer::of("application/spdx+json", body, BTreeMap::new());
    crate::sign::artifact::referrer_manifest(
        "application/spdx+json",
        vec![(layer, body.to_vec())],
        &subject(doc),
    )
    .unwrap()
}

#[test]
fn manifests_and_blobs_read_back_checked_against_their_digests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 100);
    let tampered = Digest::of(b"shared layer");
    let fake = Fake::start(Auth::Anonymous, move |r| {
        // The shared layer comes back with one byte changed.
        (r.method == "GET" && r.target.ends_with(&format!("/blobs/{tampered}")))
            .then(|| Reply::status(200).body(b"shared layeR".to_vec()))
    });
    push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap();
    let docs = tags(&dir);
    let r = repo(&fake, "base", Access::Pull);

    let latest = r.manifest("latest").unwrap().unwrap();
    assert_eq!(latest.digest, docs["latest"].digest);
    assert_eq!(latest.media_type, INDEX_MEDIA_TYPE);
    assert_eq!(latest.bytes, docs["latest"].bytes);
    let by_digest = r
        .manifest(&docs["latest-amd64"].digest.to_string())
        .unwrap();
    assert_eq!(by_digest.unwrap().media_type, MANIFEST_MEDIA_TYPE);
    assert_eq!(r.manifest("debug").unwrap(), None);

    let Content::Manifest { config, layers } = &docs["latest-amd64"].content else {
        panic!("a per-arch tag names a manifest");
    };
    assert!(r.verify_blob(config).unwrap());
    assert!(r.verify_blob(&layers[1]).unwrap());
    let cfg = r.blob(&config.digest, 1 << 20).unwrap().unwrap();
    assert_eq!(Digest::of(&cfg), config.digest);
    assert_eq!(r.blob(&Digest::of(b"absent"), 10).unwrap(), None);

    // Altered bytes are an error naming both digests, never retried into success.
    let e = r.verify_blob(&layers[0]).unwrap_err();
    assert!(matches!(e, PushError::Altered { .. }), "{e}");
    let e = e.to_string();
    assert!(
        e.contains(&tampered.to_string()) && e.contains("altered"),
        "{e}"
    );
    let e = r.blob(&tampered, 1 << 20).unwrap_err();
    assert!(matches!(e, PushError::Altered { .. }), "{e}");
    // Too large for what it claims to be.
    let e = r.blob(&config.digest, 10).unwrap_err();
    assert!(matches!(e, PushError::TooLarge { .. }), "{e}");
}

#[test]
fn without_the_referrers_api_the_tag_schema_index_is_kept_idempotently() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 10);
    let fake = Fake::start(Auth::Anonymous, |_| None);
    push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap();
    let docs = tags(&dir);
    let amd = &docs["latest-amd64"];
    let r = repo(&fake, "base", Access::Push);
    let tag = referrers_tag(&amd.digest);
    assert_eq!(tag, format!("sha256-{}", amd.digest.hex()));

    // Another tool's entry is already listed; it stays exactly as it was.
    let foreign = serde_json::json!({
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": Digest::of(b"someone else's").to_string(),
        "size": 7,
        "artifactType": "application/vnd.example.thing",
        "annotations": {"org.example": "kept"},
        "x-unknown": [1, 2],
    });
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [foreign.clone()],
    }))
    .unwrap();
    let put = |reference: &str, bytes: &[u8], media_type: &str| {
        let doc = Document {
            digest: Digest::of(bytes),
            media_type: media_type.to_owned(),
            bytes: bytes.to_vec(),
            content: Content::Index(Vec::new()),
        };
        r.client.put_manifest(reference, &doc).unwrap();
    };
    put(&tag, &index, INDEX_MEDIA_TYPE);

    let a = artifact_for(amd, b"{\"spdxVersion\":\"SPDX-2.3\"}");
    assert_eq!(r.attach(&a, &amd.digest).unwrap(), (Via::TagSchema, true));
    let listed: serde_json::Value =
        serde_json::from_slice(&fake.manifest("base", &tag).unwrap()).unwrap();
    let entries = listed["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{listed}");
    assert_eq!(entries[0], foreign);
    assert_eq!(entries[1]["digest"], a.digest.to_string());
    assert_eq!(entries[1]["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(entries[1]["artifactType"], "application/spdx+json");
    assert_eq!(entries[1]["size"], a.manifest.len());
    assert_eq!(listed["mediaType"], INDEX_MEDIA_TYPE);
    // The artifact and its blobs are there by digest.
    assert_eq!(
        fake.manifest("base", &a.digest.to_string()).unwrap(),
        a.manifest
    );
    for (d, bytes) in &a.blobs {
        assert_eq!(&fake.blob("base", d).unwrap(), bytes);
    }

    // Again: already listed, the index is not written.
    let puts = fake.count("PUT", &format!("/manifests/{tag}"));
    assert_eq!(r.attach(&a, &amd.digest).unwrap(), (Via::TagSchema, false));
    assert_eq!(fake.count("PUT", &format!("/manifests/{tag}")), puts);

    // Read back through the API's 404, then the tag.
    let list = r.referrers(&amd.digest).unwrap();
    assert_eq!(list.via, Via::TagSchema);
    let digests: Vec<Digest> = list.manifests.iter().map(|m| m.digest).collect();
    assert_eq!(digests, [Digest::of(b"someone else's"), a.digest]);
    assert_eq!(
        list.manifests[1].artifact_type.as_deref(),
        Some("application/spdx+json")
    );
    // No list at all is an empty one.
    let arm = &docs["latest-arm64"];
    assert!(r.referrers(&arm.digest).unwrap().manifests.is_empty());

    // A referrers tag that holds something else is reported, not overwritten.
    put(&referrers_tag(&arm.digest), &amd.bytes, MANIFEST_MEDIA_TYPE);
    let e = r
        .attach(&artifact_for(arm, b"{}"), &arm.digest)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("not the image index that lists the referrers"),
        "{e}"
    );
    assert_eq!(
        fake.manifest("base", &referrers_tag(&arm.digest)).unwrap(),
        amd.bytes
    );
}

#[test]
fn with_the_referrers_api_no_tag_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 10);
    let fake = Fake::start_with(Auth::Anonymous, true, |_| None);
    push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap();
    let docs = tags(&dir);
    let amd = &docs["latest-amd64"];
    let r = repo(&fake, "base", Access::Push);
    let a = artifact_for(amd, b"sbom");
    assert_eq!(r.attach(&a, &amd.digest).unwrap(), (Via::Api, false));
    assert_eq!(fake.manifest("base", &referrers_tag(&amd.digest)), None);
    let list = r.referrers(&amd.digest).unwrap();
    assert_eq!(list.via, Via::Api);
    assert_eq!(list.manifests.len(), 1);
    assert_eq!(list.manifests[0].digest, a.digest);
}

#[test]
fn sboms_are_referrers_and_keep_their_sbom_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 10);
    let spdx = tmp.path().join("base.spdx");
    std::fs::create_dir_all(&spdx).unwrap();
    std::fs::write(spdx.join("latest-amd64.spdx.json"), b"{\"spdx\":1}").unwrap();
    let fake = Fake::start(Auth::Anonymous, |_| None);
    let r = push_with(&http(), &dir, &fake.target("base"), &anonymous()).unwrap();
    assert_eq!(r.sboms, 1);
    let amd = &tags(&dir)["latest-amd64"];
    let index: serde_json::Value =
        serde_json::from_slice(&fake.manifest("base", &referrers_tag(&amd.digest)).unwrap())
            .unwrap();
    let listed = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let sbom_tag = format!("sha256-{}.sbom", amd.digest.hex());
    let tagged = fake.manifest("base", &sbom_tag).unwrap();
    assert_eq!(Digest::of(&tagged).to_string(), listed);
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/spdx+json"
    );
}

// ---- signing after a push, and verify_image ----

/// A lock listing one .deb with `sha256`, as `debless pin` writes it (registry does not
/// know the lock's types: text is what it carries).
fn lock(sha256: Digest) -> String {
    format!(
        r#"# Written by `debless pin`; do not edit by hand (run `debless pin` again).
lock_version = 1
distro = "debian13"
timestamp = "2026-11-22T02:09:05Z"
merged_usr = true
architectures = ["amd64", "arm64"]
suite = []

[[package]]
name = "libc6"
arch = "amd64"
version = "2.41-12"
architecture = "amd64"
suite = "trixie"
source = "glibc"
source_version = "2.41-12"
filename = "{DEB}"
size = 9
sha256 = "{}"
installed_size = 1
depends = []
rules = ["base"]
"#,
        sha256.hex()
    )
}

/// `<layout>.provenance/<tag>.intoto.json` for every tag, as `debless build` writes them.
fn write_statements(dir: &Path, lock_text: &str) {
    let out = provenance::provenance_dir(dir);
    std::fs::create_dir_all(&out).unwrap();
    let file = |name: &str, text: &str| InputFile {
        name: name.into(),
        bytes: text.as_bytes().to_vec(),
    };
    for (tag, doc) in tags(dir) {
        let inputs = BuildInputs {
            subjects: vec![(format!("base-debian13:{tag}"), doc.digest)],
            parameters: Parameters {
                distro: "debian13".into(),
                images: vec!["base".into()],
                variants: vec!["latest".into()],
                architectures: vec!["amd64".into()],
                compression: "gzip".into(),
                ..Parameters::default()
            },
            lock: file("snapshots/debian13.lock", lock_text),
            manifest: Some(file("snapshots/debian13.toml", "manifest")),
            rules: vec![file("rules/base.toml", "rules")],
            dependencies: vec![Dependency {
                name: DEB.into(),
                uri: format!("http://127.0.0.1:1/debian/{DEB}"),
                sha256: Digest::of(b"libc6.deb"),
            }],
            debless_version: "0.1.0".into(),
            debless_binary: Digest::of(b"debless"),
            sboms: vec![],
            builder_id: LOCAL_BUILDER_ID.into(),
            started_on: None,
            finished_on: None,
            invocation_id: None,
        };
        let statement = Statement::provenance(&inputs).unwrap();
        std::fs::write(
            out.join(provenance::statement_file(&tag)),
            statement.to_json().unwrap(),
        )
        .unwrap();
    }
}

fn verify(
    fake: &Fake,
    reference: &str,
    key: &crate::sign::PublicKey,
    local_lock: Option<&Path>,
) -> Result<crate::registry::Verified, crate::registry::VerifyError> {
    let r = ImageReference::parse(&format!("{}/base{reference}", fake.server.host())).unwrap();
    let inputs = tempfile::tempdir().unwrap();
    crate::registry::verify_image(
        &r,
        key,
        &PushOptions {
            retries: 0,
            ..anonymous()
        },
        inputs.path(),
        local_lock,
    )
}

fn signed_push(referrers_api: bool) -> (tempfile::TempDir, Fake, PrivateKey, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("base");
    layout(&dir, 10);
    let lock_text = lock(Digest::of(b"libc6.deb"));
    write_statements(&dir, &lock_text);
    let fake = Fake::start_with(Auth::Anonymous, referrers_api, |_| None);
    let key = PrivateKey::generate();
    let opts = PushOptions {
        sign_key: Some(key.clone()),
        ..anonymous()
    };
    let r = push_with(&http(), &dir, &fake.target("base"), &opts).unwrap();
    let s = r.signing.unwrap();
    assert_eq!((s.signed, s.new_signatures, s.attested), (3, 3, 3), "{s:?}");
    assert_eq!(
        s.referrers,
        Some(if referrers_api {
            Via::Api
        } else {
            Via::TagSchema
        })
    );
    // The signed envelopes sit next to the unsigned statements.
    for path in &s.envelopes {
        let line = std::fs::read_to_string(path).unwrap();
        assert!(line.ends_with('\n') && line.lines().count() == 1, "{line}");
        assert!(line.contains("\"payloadType\":\"application/vnd.in-toto+json\""));
    }
    assert_eq!(s.envelopes.len(), 3);

    // A second push with the same key changes nothing: no new signature or attestation.
    let sig_puts = fake.count("PUT", ".sig");
    let r = push_with(&http(), &dir, &fake.target("base"), &opts).unwrap();
    assert_eq!(r.signing.unwrap().new_signatures, 0);
    assert_eq!(fake.count("PUT", ".sig"), sig_puts);
    (tmp, fake, key, lock_text)
}

#[test]
fn a_signed_push_verifies_through_either_referrers_path() {
    for api in [false, true] {
        let (tmp, fake, key, _) = signed_push(api);
        let docs = tags(&tmp.path().join("base"));
        let v = verify(&fake, ":latest", &key.public_key(), None).unwrap();
        assert_eq!(v.subject.digest, docs["latest"].digest);
        assert_eq!(v.images.len(), 2);
        // Two configs, the shared layer and two own layers (counted per image).
        assert_eq!(v.blobs, 6);
        assert!(
            v.provenance_from
                .contains(if api { "referrers API" } else { "tag schema" }),
            "{}",
            v.provenance_from
        );
        assert_eq!(
            v.signatures[0].payload.docker_reference,
            fake.target("base")
        );
        assert!(
            v.inputs
                .written
                .iter()
                .any(|p| p.ends_with("snapshots/debian13.lock"))
        );
        let amd = docs["latest-amd64"].digest;
        let v = verify(&fake, &format!("@{amd}"), &key.public_key(), None).unwrap();
        assert_eq!(v.images.len(), 1);
    }
}

#[test]
fn wrong_key_swapped_provenance_altered_layer_and_another_lock_fail() {
    let (tmp, fake, key, lock_text) = signed_push(false);
    let docs = tags(&tmp.path().join("base"));
    let (amd, arm) = (docs["latest-amd64"].digest, docs["latest-arm64"].digest);

    // Another key.
    let other = PrivateKey::generate().public_key();
    let e = verify(&fake, ":latest-amd64", &other, None).unwrap_err();
    assert!(
        matches!(
            &e,
            VerifyError::Sign(crate::sign::SignError::NotVerified {
                what: "signatures",
                ..
            })
        ),
        "{e}"
    );

    // Unsigned: an image no one signed.
    {
        let mut st = fake.state.lock().unwrap();
        st.manifests
            .remove(&("base".into(), format!("sha256-{}.sig", amd.hex())));
    }
    let e = verify(&fake, ":latest-amd64", &key.public_key(), None).unwrap_err();
    assert!(matches!(&e, VerifyError::Unsigned { .. }), "{e}");
    let e = e.to_string();
    assert!(e.contains("not signed") && e.contains(".sig"), "{e}");

    // Swapped provenance: arm64's genuine attestation and referrers list put where
    // amd64's were. The signature still holds; the provenance is about another image.
    {
        let mut st = fake.state.lock().unwrap();
        for suffix in [".att", ""] {
            let from =
                st.manifests[&("base".into(), format!("sha256-{}{suffix}", arm.hex()))].clone();
            st.manifests.insert(
                ("base".into(), format!("sha256-{}{suffix}", amd.hex())),
                from,
            );
        }
    }
    let e = verify(&fake, ":latest-arm64", &key.public_key(), None);
    assert!(e.is_ok(), "arm64 is untouched: {:?}", e.err());
    // amd64 has no signature any more (removed above): sign it again to reach provenance.
    let r = repo(&fake, "base", Access::Push);
    crate::registry::sign_digest(&r, &key, &amd).unwrap();
    let e = verify(&fake, ":latest-amd64", &key.public_key(), None).unwrap_err();
    assert!(
        matches!(
            &e,
            VerifyError::Sign(crate::sign::SignError::SubjectMismatch { .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("describes another image"), "{e}");

    // A lock other than the image's: a .deb that differs is named.
    let other_lock = tmp.path().join("other.lock");
    std::fs::write(&other_lock, lock(Digest::of(b"rebuilt"))).unwrap();
    let e = verify(&fake, ":latest-arm64", &key.public_key(), Some(&other_lock)).unwrap_err();
    assert!(
        e.to_string().contains(DEB) && e.to_string().contains("not built from this lock"),
        "{e}"
    );
    // Same packages, other bytes (a comment): the digest tells.
    std::fs::write(&other_lock, format!("{lock_text}# edited\n")).unwrap();
    let e = verify(&fake, ":latest-arm64", &key.public_key(), Some(&other_lock)).unwrap_err();
    assert!(
        matches!(
            &e,
            VerifyError::Sign(crate::sign::SignError::LockMismatch { .. })
        ),
        "{e}"
    );
    std::fs::write(&other_lock, &lock_text).unwrap();
    verify(&fake, ":latest-arm64", &key.public_key(), Some(&other_lock)).unwrap();

    // A layer altered in the registry's storage.
    let Content::Manifest { layers, .. } = &docs["latest-arm64"].content else {
        panic!("a manifest");
    };
    {
        let mut st = fake.state.lock().unwrap();
        let bytes = st.content.get_mut(&layers[1].digest.to_string()).unwrap();
        bytes[0] ^= 1;
    }
    let e = verify(&fake, ":latest-arm64", &key.public_key(), None).unwrap_err();
    assert!(
        matches!(&e, VerifyError::Registry(PushError::Altered { expected, .. }) if *expected == layers[1].digest),
        "{e}"
    );
}
