use super::*;
use crate::sign::oracle::{have_openssl, openssl};

const REPO: &str = "127.0.0.1:5000/distroless/base";

fn image() -> Digest {
    Digest::of(b"an image manifest")
}

/// The bytes sigstore's `payload.Cosign.MarshalJSON` gives (field order critical →
/// identity, image, type; then optional; `null` for no annotations), as in
/// SIGNATURE_SPEC.md's example but with the lower-case key containers-signature(5) and
/// cosign write.
#[test]
fn payload_is_byte_exact() {
    let d = image();
    let bytes = payload(REPO, &d, &BTreeMap::new()).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"{REPO}"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":null}}"#
        )
    );
    let annotations = BTreeMap::from([
        ("z".to_owned(), "last".to_owned()),
        ("a".to_owned(), "x<y&z".to_owned()),
    ]);
    let bytes = payload(REPO, &d, &annotations).unwrap();
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .ends_with(r#""optional":{"a":"x\u003cy\u0026z","z":"last"}}"#)
    );
}

#[test]
fn payload_round_trips_and_refuses_bad_references() {
    let d = image();
    let parsed = parse_payload(&payload(REPO, &d, &BTreeMap::new()).unwrap()).unwrap();
    assert_eq!(parsed.docker_reference, REPO);
    assert_eq!(parsed.digest, d);
    assert_eq!(parsed.optional, None);
    for bad in ["", "with space/repo", "tab\trepo", "ünïcode/repo"] {
        assert!(
            matches!(
                payload(bad, &d, &BTreeMap::new()),
                Err(SignError::Reference { .. })
            ),
            "{bad:?}"
        );
    }
    // The spec's own example spells the digest key with a capital D; it reads too.
    let spec = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"testing/manifest"}},"image":{{"Docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}},"optional":{{"creator":"atomic","timestamp":1458239713}}}}"#
    );
    let parsed = parse_payload(spec.as_bytes()).unwrap();
    assert_eq!(parsed.digest, d);
    assert_eq!(parsed.optional.unwrap()["timestamp"], 1458239713);
    let other_type = spec.replace(
        "cosign container image signature",
        "atomic container signature",
    );
    assert!(parse_payload(other_type.as_bytes()).is_err());
}

/// The `.sig` manifest as go-containerregistry serialises cosign's: OCI media types,
/// descriptor fields mediaType/size/digest/annotations, the config of `empty.Image` plus
/// the layer.
#[test]
fn signature_manifest_is_cosigns_shape() {
    let key = PrivateKey::generate();
    let d = image();
    let a = sign(&key, REPO, &d, &BTreeMap::new(), None).unwrap();
    assert_eq!(a.tag.as_deref(), Some(&*format!("sha256-{}.sig", d.hex())));
    assert_eq!(a.media_type, "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(a.digest, Digest::of(&a.manifest));
    let p = payload(REPO, &d, &BTreeMap::new()).unwrap();
    let sig = &a.layers[0].annotations[SIGNATURE_ANNOTATION];
    let config = format!(
        r#"{{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{{"created":"0001-01-01T00:00:00Z"}}],"os":"","rootfs":{{"type":"layers","diff_ids":["{}"]}},"config":{{}}}}"#,
        Digest::of(&p)
    );
    let want = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":{},"digest":"{}"}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":{},"digest":"{}","annotations":{{"dev.cosignproject.cosign/signature":"{sig}"}}}}]}}"#,
        config.len(),
        Digest::of(config.as_bytes()),
        p.len(),
        Digest::of(&p),
    );
    assert_eq!(String::from_utf8(a.manifest.clone()).unwrap(), want);
    assert_eq!(a.blobs.len(), 2);
    assert_eq!(a.blobs[&Digest::of(config.as_bytes())], config.as_bytes());
    assert_eq!(a.blobs[&Digest::of(&p)], p);
    // Signing is deterministic: the same key, image and reference give the same manifest.
    let again = sign(&key, REPO, &d, &BTreeMap::new(), None).unwrap();
    assert_eq!(again, a);
}

#[test]
fn signatures_append_as_cosign_appends_but_never_twice() {
    let (alice, bob) = (PrivateKey::generate(), PrivateKey::generate());
    let d = image();
    let first = sign(&alice, REPO, &d, &BTreeMap::new(), None).unwrap();
    let second = sign(&bob, REPO, &d, &BTreeMap::new(), Some(&first.manifest)).unwrap();
    assert_eq!(second.layers.len(), 2);
    assert_eq!(second.layers[0], first.layers[0]);
    // Bob's payload is Alice's (same image, same reference): one blob, two signatures.
    assert_eq!(second.layers[0].digest, second.layers[1].digest);
    assert_ne!(
        second.layers[0].annotations[SIGNATURE_ANNOTATION],
        second.layers[1].annotations[SIGNATURE_ANNOTATION]
    );
    // Alice again: her signature is there already, nothing changes.
    let third = sign(&alice, REPO, &d, &BTreeMap::new(), Some(&second.manifest)).unwrap();
    assert_eq!(third.manifest, second.manifest);
    // Another reference is another payload: a new layer.
    let fourth = sign(
        &alice,
        "127.0.0.1:5000/mirror/base",
        &d,
        &BTreeMap::new(),
        Some(&third.manifest),
    )
    .unwrap();
    assert_eq!(fourth.layers.len(), 3);
    assert!(matches!(
        sign(&alice, REPO, &d, &BTreeMap::new(), Some(b"{not json")),
        Err(SignError::Json { .. })
    ));
}

/// openssl, reading only the manifest's annotation and the payload blob, verifies what
/// debless signed with the public key file debless wrote.
#[test]
fn openssl_verifies_the_stored_signature() {
    if !have_openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = PrivateKey::generate();
    fs_write(
        d,
        "cosign.pub",
        key.public_key().to_pem().unwrap().as_bytes(),
    );
    let a = sign(&key, REPO, &image(), &BTreeMap::new(), None).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
    let layer = &manifest["layers"][0];
    let blob = Digest::parse(layer["digest"].as_str().unwrap()).unwrap();
    fs_write(d, "payload", &a.blobs[&blob]);
    let sig = layer["annotations"]["dev.cosignproject.cosign/signature"]
        .as_str()
        .unwrap();
    fs_write(d, "sig.b64", sig.as_bytes());
    openssl(
        d,
        &["base64", "-d", "-A", "-in", "sig.b64", "-out", "sig.der"],
    );
    let out = openssl(
        d,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "cosign.pub",
            "-signature",
            "sig.der",
            "payload",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");
}

fn fs_write(dir: &std::path::Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}
