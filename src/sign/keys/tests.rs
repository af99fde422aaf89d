use super::*;
use crate::sign::oracle::{have_openssl, have_python, openssl, python};
use std::os::unix::fs::PermissionsExt as _;

#[test]
fn pkcs8_round_trip_signs_and_verifies() {
    let key = PrivateKey::generate();
    let pem = key.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let back = PrivateKey::from_pem(&pem, None, "k").unwrap();
    assert_eq!(back.public_key(), key.public_key());
    let public = PublicKey::from_pem(&key.public_key().to_pem().unwrap(), "p").unwrap();
    let sig = key.sign(b"payload");
    // RFC 6979: the same bytes give the same signature.
    assert_eq!(key.sign(b"payload"), sig);
    assert!(public.verify(b"payload", &sig).is_ok());
    assert!(public.verify(b"payloaD", &sig).is_err());
    assert!(public.verify(b"payload", b"not der").is_err());
    // A private key's Debug shows no secret.
    assert!(!format!("{key:?}").contains(&pem[30..60]));
}

#[test]
fn encrypted_round_trip_needs_the_password() {
    let key = PrivateKey::generate();
    let pem = key.to_encrypted_pem(b"pw").unwrap();
    assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    let back = PrivateKey::from_pem(&pem, Some(b"pw"), "cosign.key").unwrap();
    assert_eq!(back.public_key(), key.public_key());
    assert!(matches!(
        PrivateKey::from_pem(&pem, None, "cosign.key"),
        Err(SignError::PasswordNeeded { key }) if key == "cosign.key"
    ));
    assert!(matches!(
        PrivateKey::from_pem(&pem, Some(b"nope"), "cosign.key"),
        Err(SignError::WrongPassword { .. })
    ));
    // The older label reads the same.
    let old = pem.replace("SIGSTORE", "COSIGN");
    assert!(PrivateKey::from_pem(&old, Some(b"pw"), "k").is_ok());
}

#[test]
fn unusable_key_text_is_named() {
    let key = PrivateKey::generate();
    let public_pem = key.public_key().to_pem().unwrap();
    for (text, want) in [
        ("", "no PEM block"),
        (public_pem.as_str(), "\"PUBLIC KEY\" PEM block"),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "encrypted by OpenSSL",
        ),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n", "cut short"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "PKCS#8 ECDSA P-256",
        ),
    ] {
        match PrivateKey::from_pem(text, None, "my.key") {
            Err(SignError::Key { key, what }) => {
                assert_eq!(key, "my.key");
                assert!(what.contains(want), "{what} should say {want}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    let private_pem = key.to_pkcs8_pem().unwrap();
    match PublicKey::from_pem(&private_pem, "pub.pem") {
        Err(SignError::Key { what, .. }) => assert!(what.contains("not the private one"), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn key_files_are_private_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = (dir.path().join("k.key"), dir.path().join("k.pub"));
    let key = PrivateKey::generate();
    write_key_pair(&key, &private, &public, Some(b"pw")).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&private), 0o600);
    assert_eq!(mode(&public), 0o644);
    let read = PrivateKey::read(&private, Some(b"pw")).unwrap();
    assert_eq!(read.public_key(), PublicKey::read(&public).unwrap());

    let before = fs::read(&private).unwrap();
    let other = PrivateKey::generate();
    assert!(matches!(
        write_key_pair(&other, &private, &dir.path().join("new.pub"), None),
        Err(SignError::KeyExists { path }) if path == private
    ));
    assert_eq!(fs::read(&private).unwrap(), before);
    // Refused before anything was written: the new public key is not there either.
    assert!(!dir.path().join("new.pub").exists());
    assert!(matches!(
        PrivateKey::read(&dir.path().join("absent.key"), None),
        Err(SignError::Io { .. })
    ));
}

/// openssl makes keys in both PEM forms; debless reads them, writes the same public key
/// openssl derives, and each verifies the other's signatures.
#[test]
fn openssl_keys_and_signatures_interoperate() {
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
            "pkcs8.pem",
        ],
    );
    // `ecparam -genkey` writes SEC1 after an EC PARAMETERS block.
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "sec1.pem",
        ],
    );
    for file in ["pkcs8.pem", "sec1.pem"] {
        let key = PrivateKey::read(&d.join(file), None).unwrap();
        let theirs = openssl(d, &["pkey", "-in", file, "-pubout"]);
        assert_eq!(
            key.public_key().to_pem().unwrap().as_bytes(),
            &theirs[..],
            "{file}"
        );
        let public = PublicKey::from_pem(std::str::from_utf8(&theirs).unwrap(), file).unwrap();

        // debless signs, openssl verifies.
        let payload = format!("payload for {file}");
        fs::write(d.join("payload"), &payload).unwrap();
        fs::write(d.join("ours.der"), key.sign(payload.as_bytes())).unwrap();
        fs::write(d.join("pub.pem"), &theirs).unwrap();
        let out = openssl(
            d,
            &[
                "dgst",
                "-sha256",
                "-verify",
                "pub.pem",
                "-signature",
                "ours.der",
                "payload",
            ],
        );
        assert_eq!(String::from_utf8_lossy(&out).trim(), "Verified OK");

        // openssl signs (random nonces, so about half have a high S), debless verifies.
        for i in 0..8 {
            let payload = format!("message {i}");
            fs::write(d.join("payload"), &payload).unwrap();
            openssl(
                d,
                &[
                    "dgst",
                    "-sha256",
                    "-sign",
                    file,
                    "-out",
                    "theirs.der",
                    "payload",
                ],
            );
            let sig = fs::read(d.join("theirs.der")).unwrap();
            assert!(
                public.verify(payload.as_bytes(), &sig).is_ok(),
                "{file} {i}"
            );
            assert!(public.verify(b"other", &sig).is_err());
        }
    }
    // A P-384 or RSA key is refused by name, not misread.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "p384.pem",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "rsa.pem",
        ],
    );
    for file in ["p384.pem", "rsa.pem"] {
        match PrivateKey::read(&d.join(file), None) {
            Err(SignError::Key { what, .. }) => assert!(what.contains("P-256"), "{what}"),
            other => panic!("{file}: {other:?}"),
        }
    }
}

/// Python's `cryptography` loads debless's PKCS#8 and PKIX PEM and verifies its signature.
#[test]
fn python_cryptography_reads_our_keys() {
    if !have_python(&["cryptography"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate();
    write_key_pair(
        &key,
        &dir.path().join("k.key"),
        &dir.path().join("k.pub"),
        None,
    )
    .unwrap();
    fs::write(dir.path().join("sig"), key.sign(b"hello")).unwrap();
    let out = python(
        dir.path(),
        r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
priv = serialization.load_pem_private_key(open("k.key", "rb").read(), None)
pub = serialization.load_pem_public_key(open("k.pub", "rb").read())
assert isinstance(priv.curve, ec.SECP256R1)
assert priv.public_key().public_numbers() == pub.public_numbers()
pub.verify(open("sig", "rb").read(), b"hello", ec.ECDSA(hashes.SHA256()))
print("ok")
"#,
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&out).trim(), "ok");
}

/// Written the way go-securesystemslib's `encrypted` package writes it, by scrypt from
/// Python's hashlib and secretbox from PyNaCl (libsodium): debless opens Python's sealed
/// key, and Python opens debless's.
#[test]
fn encrypted_keys_interoperate_with_pynacl() {
    if !have_python(&["cryptography", "nacl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = r#"
import base64, hashlib, json, os, sys
from nacl.secret import SecretBox
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

def key_of(password, kdf):
    p = kdf["params"]
    return hashlib.scrypt(password, salt=base64.b64decode(kdf["salt"]), n=p["N"], r=p["r"],
                          p=p["p"], maxmem=512 * 1024 * 1024, dklen=32)

def pem_body(text):
    lines = [l for l in text.splitlines() if l and not l.startswith("-----")]
    return base64.b64decode("".join(lines))

if sys.argv[1] == "open":
    doc = json.loads(pem_body(open("ours.key").read()))
    assert doc["kdf"]["name"] == "scrypt" and doc["cipher"]["name"] == "nacl/secretbox"
    box = SecretBox(key_of(b"sesame", doc["kdf"]))
    der = box.decrypt(base64.b64decode(doc["ciphertext"]),
                      base64.b64decode(doc["cipher"]["nonce"]))
    priv = serialization.load_der_private_key(der, None)
    pub = serialization.load_pem_public_key(open("ours.pub", "rb").read())
    assert priv.public_key().public_numbers() == pub.public_numbers()
    print("ok")
else:
    priv = ec.generate_private_key(ec.SECP256R1())
    der = priv.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    kdf = {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1},
           "salt": base64.b64encode(os.urandom(32)).decode()}
    nonce = os.urandom(24)
    sealed = SecretBox(key_of(b"sesame", kdf)).encrypt(der, nonce).ciphertext
    doc = {"kdf": kdf, "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
           "ciphertext": base64.b64encode(sealed).decode()}
    body = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    with open("theirs.key", "w") as f:
        f.write("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + "\n".join(lines)
                + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    with open("theirs.pub", "wb") as f:
        f.write(priv.public_key().public_bytes(serialization.Encoding.PEM,
                serialization.PublicFormat.SubjectPublicKeyInfo))
    print("ok")
"#;
    let key = PrivateKey::generate();
    write_key_pair(
        &key,
        &d.join("ours.key"),
        &d.join("ours.pub"),
        Some(b"sesame"),
    )
    .unwrap();
    assert_eq!(python(d, script, &["open"]), b"ok\n");

    assert_eq!(python(d, script, &["seal"]), b"ok\n");
    let theirs = PrivateKey::read(&d.join("theirs.key"), Some(b"sesame")).unwrap();
    assert_eq!(
        theirs.public_key(),
        PublicKey::read(&d.join("theirs.pub")).unwrap()
    );
    assert!(matches!(
        PrivateKey::read(&d.join("theirs.key"), Some(b"open sesame")),
        Err(SignError::WrongPassword { .. })
    ));
}
