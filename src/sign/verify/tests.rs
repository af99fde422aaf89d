use super::*;
use crate::arch::Arch;
use crate::sign::PrivateKey;
use crate::sign::attest::{self, sign_provenance};
use crate::sign::oracle::{have_openssl, have_python, openssl, python};
use crate::sign::provenance::{BuildInputs, Dependency, InputFile, LOCAL_BUILDER_ID, Parameters};
use crate::sign::{b64, cosign as cosign_sig};
use crate::snapshot::lock::LockedPackage;
use std::collections::BTreeMap;

const REPO: &str = "127.0.0.1:5000/distroless/base";

fn blobs_of(a: &crate::sign::Artifact) -> Blobs {
    a.blobs.clone()
}

#[test]
fn signatures_verify_and_name_the_image() {
    let key = PrivateKey::generate();
    let image = Digest::of(b"image");
    let a = cosign_sig::sign(&key, REPO, &image, &BTreeMap::new(), None).unwrap();
    let ok = verify_signatures(&a.manifest, &blobs_of(&a), &key.public_key(), &image).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].payload.digest, image);
    assert_eq!(ok[0].payload.docker_reference, REPO);

    let other = PrivateKey::generate().public_key();
    let err = verify_signatures(&a.manifest, &blobs_of(&a), &other, &image).unwrap_err();
    assert!(
        matches!(
            err,
            SignError::NotVerified {
                what: "signatures",
                ..
            }
        ),
        "{err}"
    );

    // A valid signature of another image does not vouch for this one.
    let elsewhere = Digest::of(b"another image");
    let err =
        verify_signatures(&a.manifest, &blobs_of(&a), &key.public_key(), &elsewhere).unwrap_err();
    assert!(err.to_string().contains("not this image"), "{err}");

    // The payload blob is checked against the manifest before its signature.
    let mut tampered = blobs_of(&a);
    let layer = a.layers[0].digest;
    tampered.insert(layer, b"{}".to_vec());
    let err = verify_signatures(&a.manifest, &tampered, &key.public_key(), &image).unwrap_err();
    assert!(err.to_string().contains("hashes to"), "{err}");
    let err = verify_signatures(&a.manifest, &Blobs::new(), &key.public_key(), &image).unwrap_err();
    assert!(err.to_string().contains("not given"), "{err}");
}

#[test]
fn one_good_signature_among_others_is_enough() {
    let (alice, bob) = (PrivateKey::generate(), PrivateKey::generate());
    let image = Digest::of(b"image");
    let first = cosign_sig::sign(&bob, REPO, &image, &BTreeMap::new(), None).unwrap();
    let both = cosign_sig::sign(
        &alice,
        REPO,
        &image,
        &BTreeMap::new(),
        Some(&first.manifest),
    )
    .unwrap();
    let mut blobs = blobs_of(&first);
    blobs.extend(blobs_of(&both));
    let ok = verify_signatures(&both.manifest, &blobs, &alice.public_key(), &image).unwrap();
    assert_eq!(ok.len(), 1);
}

/// A `.sig` manifest built by hand, its payload written the way cosign writes it and signed
/// by openssl: debless accepts what it did not make.
#[test]
fn accepts_a_signature_openssl_made() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "k.pem",
        ],
    );
    let public = openssl(d, &["pkey", "-in", "k.pem", "-pubout"]);
    let public = PublicKey::from_pem(std::str::from_utf8(&public).unwrap(), "k.pub").unwrap();
    let image = Digest::of(b"image");
    let payload = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{REPO}"}},"image":{{"docker-manifest-digest":"{image}"}},"type":"cosign container image signature"}},"optional":null}}"#
    );
    std::fs::write(d.join("payload"), &payload).unwrap();
    openssl(
        d,
        &[
            "dgst", "-sha256", "-sign", "k.pem", "-out", "sig.der", "payload",
        ],
    );
    let sig = b64(&std::fs::read(d.join("sig.der")).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                   "digest": Digest::of(b"{}").to_string()},
        "layers": [{
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "size": payload.len(),
            "digest": Digest::of(payload.as_bytes()).to_string(),
            "annotations": {"dev.cosignproject.cosign/signature": sig},
        }],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let blobs = Blobs::from([(Digest::of(payload.as_bytes()), payload.into_bytes())]);
    let ok = verify_signatures(&manifest, &blobs, &public, &image).unwrap();
    assert_eq!(ok[0].payload.digest, image);
}

fn build_inputs(subject: Digest) -> BuildInputs {
    let file = |name: &str, text: &str| InputFile {
        name: name.into(),
        bytes: text.as_bytes().to_vec(),
    };
    BuildInputs {
        subjects: vec![("base-debian13:latest-amd64".into(), subject)],
        parameters: Parameters {
            distro: "debian13".into(),
            images: vec!["base".into()],
            variants: vec!["latest".into()],
            architectures: vec!["amd64".into()],
            compression: "gzip".into(),
            ..Parameters::default()
        },
        lock: file("snapshots/debian13.lock", "lock"),
        manifest: Some(file("snapshots/debian13.toml", "manifest")),
        rules: vec![file("rules/base.toml", "rules")],
        dependencies: vec![Dependency {
            name: "pool/main/g/glibc/libc6_2.41-12_amd64.deb".into(),
            uri: "http://127.0.0.1:8080/debian/pool/main/g/glibc/libc6_2.41-12_amd64.deb".into(),
            sha256: Digest::of(b"libc6.deb"),
        }],
        debless_version: "0.1.0".into(),
        debless_binary: Digest::of(b"debless"),
        sboms: vec![],
        builder_id: LOCAL_BUILDER_ID.into(),
        started_on: None,
        finished_on: None,
        invocation_id: None,
    }
}

fn subject_descriptor(digest: Digest) -> crate::oci::Descriptor {
    crate::oci::Descriptor {
        media_type: crate::oci::MANIFEST_MEDIA_TYPE.into(),
        digest,
        size: 1234,
        platform: None,
        annotations: BTreeMap::new(),
    }
}

fn lock_with(sha256: Digest) -> Lock {
    Lock {
        lock_version: 1,
        distro: "debian13".into(),
        timestamp: "2026-11-22T02:09:05Z".into(),
        snapshot: None,
        merged_usr: true,
        architectures: vec![Arch::Amd64],
        suites: vec![],
        vendors: vec![],
        tarballs: vec![],
        packages: vec![LockedPackage {
            name: "libc6".into(),
            arch: Arch::Amd64,
            version: "2.41-12".into(),
            architecture: "amd64".into(),
            suite: "trixie".into(),
            vendor: None,
            source: "glibc".into(),
            source_version: "2.41-12".into(),
            filename: "pool/main/g/glibc/libc6_2.41-12_amd64.deb".into(),
            size: 9,
            sha256,
            installed_size: 1,
            depends: vec![],
            rules: vec!["base".into()],
        }],
        excluded: vec![],
    }
}

#[test]
fn provenance_round_trip_through_both_storage_forms() {
    let key = PrivateKey::generate();
    let image = Digest::of(b"image");
    let statement = Statement::provenance(&build_inputs(image)).unwrap();
    let signed = sign_provenance(&statement, &key, &subject_descriptor(image), None).unwrap();

    // The .att manifest: cosign's tag, layer and annotations.
    let att = &signed.attestation;
    assert_eq!(
        att.tag.as_deref(),
        Some(&*format!("sha256-{}.att", image.hex()))
    );
    let layer = &att.layers[0];
    assert_eq!(layer.media_type, "application/vnd.dsse.envelope.v1+json");
    assert_eq!(
        layer.annotations["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    assert_eq!(layer.annotations["dev.cosignproject.cosign/signature"], "");
    assert_eq!(att.blobs[&layer.digest], signed.envelope);

    // The referrer: subject, artifactType, empty config.
    let referrer: serde_json::Value = serde_json::from_slice(&signed.referrer.manifest).unwrap();
    assert_eq!(referrer["artifactType"], "application/vnd.in-toto+json");
    assert_eq!(referrer["subject"]["digest"], image.to_string());
    assert_eq!(referrer["subject"]["size"], 1234);
    assert_eq!(
        referrer["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(referrer["config"]["size"], 2);
    assert_eq!(signed.referrer.tag, None);

    for manifest in [&signed.attestation, &signed.referrer] {
        let verified = verify_attestations(
            &manifest.manifest,
            &manifest.blobs,
            &key.public_key(),
            &image,
        )
        .unwrap();
        let provenance = provenance_of(&verified, &image).unwrap();
        assert_eq!(provenance, statement);
        check_dependencies(&provenance.predicate, &lock_with(Digest::of(b"libc6.deb"))).unwrap();
    }

    // Same statement, same key: the same bytes everywhere, and re-attaching is a no-op.
    let again = sign_provenance(
        &statement,
        &key,
        &subject_descriptor(image),
        Some(&att.manifest),
    )
    .unwrap();
    assert_eq!(again.envelope, signed.envelope);
    assert_eq!(again.attestation.manifest, att.manifest);
    assert_eq!(again.referrer, signed.referrer);

    // Another key, another subject: refused.
    let other = PrivateKey::generate().public_key();
    assert!(verify_attestations(&att.manifest, &att.blobs, &other, &image).is_err());
    let elsewhere = Digest::of(b"elsewhere");
    let err =
        verify_attestations(&att.manifest, &att.blobs, &key.public_key(), &elsewhere).unwrap_err();
    // Genuine, but about another image: said so, rather than blaming the key.
    assert!(
        matches!(&err, SignError::SubjectMismatch { expected, found }
            if *expected == elsewhere && found == &[image.to_string()]),
        "{err}"
    );
    assert!(err.to_string().contains("describes another image"), "{err}");
    assert!(matches!(
        sign_provenance(&statement, &key, &subject_descriptor(elsewhere), None),
        Err(SignError::SubjectMismatch { .. })
    ));
}

#[test]
fn dependencies_must_be_the_locks() {
    let image = Digest::of(b"image");
    let statement = Statement::provenance(&build_inputs(image)).unwrap();
    check_dependencies(&statement.predicate, &lock_with(Digest::of(b"libc6.deb"))).unwrap();
    let err =
        check_dependencies(&statement.predicate, &lock_with(Digest::of(b"rebuilt"))).unwrap_err();
    assert!(
        matches!(&err, SignError::DependencyNotLocked { problem, .. } if problem.contains("differs")),
        "{err}"
    );
    let mut absent = lock_with(Digest::of(b"libc6.deb"));
    absent.packages[0].filename = "pool/main/g/glibc/libc6_2.41-13_amd64.deb".into();
    let err = check_dependencies(&statement.predicate, &absent).unwrap_err();
    assert!(err.to_string().contains("is not in the lock"), "{err}");
    assert!(matches!(
        check_subject(&statement, &Digest::of(b"elsewhere")),
        Err(SignError::SubjectMismatch { .. })
    ));
}

/// securesystemslib (the DSSE authors' Python library) verifies debless's envelope with
/// the public key debless wrote, computing the PAE itself; and debless verifies an
/// envelope securesystemslib signed.
#[test]
fn securesystemslib_agrees_on_dsse() {
    if !have_python(&["securesystemslib", "cryptography"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = PrivateKey::generate();
    let image = Digest::of(b"image");
    let statement = Statement::provenance(&build_inputs(image)).unwrap();
    let signed = sign_provenance(&statement, &key, &subject_descriptor(image), None).unwrap();
    std::fs::write(d.join("envelope.json"), &signed.envelope).unwrap();
    std::fs::write(d.join("k.pub"), key.public_key().to_pem().unwrap()).unwrap();
    let script = r#"
import json, sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey
if sys.argv[1] == "verify":
    pub = serialization.load_pem_public_key(open("k.pub", "rb").read())
    # securesystemslib matches signatures to keys by keyid; debless writes an empty one.
    pem = open("k.pub").read()
    key = SSlibKey("", "ecdsa", "ecdsa-sha2-nistp256", {"public": pem})
    env = Envelope.from_dict(json.load(open("envelope.json")))
    env.verify([key], 1)
    statement = json.loads(env.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    print(statement["subject"][0]["digest"]["sha256"])
else:
    priv = ec.generate_private_key(ec.SECP256R1())
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    signer = CryptoSigner(priv, SSlibKey("", "ecdsa", "ecdsa-sha2-nistp256",
                                         {"public": pem.decode()}))
    env = Envelope(payload=open("statement.json", "rb").read(),
                   payload_type="application/vnd.in-toto+json", signatures={})
    env.sign(signer)
    json.dump(env.to_dict(), open("theirs.json", "w"))
    open("theirs.pub", "wb").write(pem)
    print("signed")
"#;
    let out = python(d, script, &["verify"]);
    assert_eq!(String::from_utf8_lossy(&out).trim(), image.hex());

    std::fs::write(d.join("statement.json"), statement.to_json().unwrap()).unwrap();
    python(d, script, &["sign"]);
    let theirs = std::fs::read(d.join("theirs.json")).unwrap();
    let public = PublicKey::read(&d.join("theirs.pub")).unwrap();
    let att = attest::attestation_manifest(&theirs, "https://slsa.dev/provenance/v1", &image, None)
        .unwrap();
    let verified = verify_attestations(&att.manifest, &att.blobs, &public, &image).unwrap();
    assert_eq!(provenance_of(&verified, &image).unwrap(), statement);
}
