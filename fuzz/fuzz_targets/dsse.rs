//! Fuzz the DSSE envelope parser and every verifier built on it: the raw
//! envelope verifier, the in-toto Statement verifier and the key set
//! verifier. Arbitrary bytes must give `Ok` or an `Error` with a code, never
//! a panic, and whatever verifies must have been signed by a trusted key.
//!
//! The seeds in `fuzz/corpus/dsse/` were signed by the private halves of the
//! two public keys below (a two-signature Statement, a key set signed by the
//! ECDSA key), so mutations start from envelopes that verify.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veritrain_attest::dsse::{self, Envelope, Limits};
use veritrain_attest::keys::PublicKey;
use veritrain_attest::{keyset, statement};

const ECDSA_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDHd90wrZFpxPfaaLTkcLvbf6uOzG
/2/H4vd80/2RD5cJbtpWmmEWwXSmZU1SueyvuxEhNPZwG2sBGzbtNGwkyQ==
-----END PUBLIC KEY-----
";
const ED25519_PUB: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAlsvTXafc/FXwzUfgR8UrBqVYioMVv399t8eS/MjctsI=
-----END PUBLIC KEY-----
";

fn trusted() -> &'static [PublicKey] {
    static KEYS: OnceLock<Vec<PublicKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [ECDSA_PUB, ED25519_PUB]
            .iter()
            .map(|pem| PublicKey::from_spki_pem(pem).expect("fixed test key"))
            .collect()
    })
}

fn check_error(e: &veritrain_attest::Error) {
    assert!(!e.code().is_empty());
    assert!(!e.to_string().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let keys = trusted();

    if let Err(e) = Envelope::from_json(data, &limits) {
        check_error(&e);
    }

    for threshold in [1, 2] {
        match dsse::verify(data, keys, threshold, &limits) {
            Ok(v) => {
                assert!(v.signers().len() >= threshold);
                assert!(
                    v.signers()
                        .iter()
                        .all(|id| keys.iter().any(|k| k.keyid() == id))
                );
            }
            Err(e) => check_error(&e),
        }
    }

    match statement::verify_statement(data, keys, 1, &limits) {
        Ok(v) => {
            assert_eq!(v.type_uri, statement::STATEMENT_TYPE_V1);
            assert!(!v.subject.is_empty());
            let _ = v.recorded_signing_time();
        }
        Err(e) => check_error(&e),
    }

    match keyset::verify_keyset(data, &keys[0], &limits) {
        Ok(ks) => {
            assert!(ks.check().is_ok());
            // An attestation check against a fuzzed (but root-signed) key
            // set, with the input itself as the attestation.
            if let Err(e) = ks.verify_statement(data, &limits) {
                check_error(&e);
            }
        }
        Err(e) => check_error(&e),
    }
});
