//! Release parsing and InRelease cleartext-signature framing on arbitrary text.
#![no_main]

use debless::archive::release::Release;
use debless::archive::trust::{Keyring, ValidAt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A Release (the signed text of an InRelease) must parse or fail, never panic.
    if let Ok(release) = Release::parse(text) {
        let _ = release.names_suite("trixie");
    }
    // Framing and signature splitting only: with no trusted key no signature can be valid,
    // so this exercises the cleartext parser and the per-signature checks up to the key lookup.
    let keyring = Keyring::load(&[]).expect("an empty keyring always loads");
    let verified = keyring.verify_inrelease(text, ValidAt::SignatureTime, &[]);
    assert!(verified.is_err(), "no key, yet a signature was accepted");
});
