//! DSSE v1: the signed envelope around every Veritrain attestation.
//!
//! Where it sits: the worker serializes an in-toto Statement (see
//! [`crate::statement`]) or a key set (see [`crate::keyset`]) once, signs the
//! bytes here, and stores the JSON envelope next to the model. An auditor's
//! verifier (ours, or securesystemslib's `dsse.Envelope.verify`) checks the
//! same bytes offline.
//!
//! The rules this module follows, from the DSSE protocol v1:
//! - a signature covers `PAE(payloadType, payload)`:
//!   `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
//!   decimal bytes, so the payload type is authenticated together with the
//!   body and a signature for one type can never pass for another;
//! - the JSON envelope is `{payload, payloadType, signatures: [{keyid, sig}]}`
//!   with `payload` and `sig` in base64. We write standard base64 with
//!   padding; we read standard or URL-safe base64 with padding, as
//!   securesystemslib does;
//! - verification decodes the exact payload bytes once and checks the
//!   signatures over them; the payload is never re-serialized;
//! - a signature is only tried with the trusted key whose securesystemslib key
//!   ID equals the signature's `keyid` (securesystemslib does the same, so
//!   both tools accept the same envelopes), and a threshold counts distinct
//!   trusted keys, never signatures.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{PublicKey, Signer};
use crate::verified::Verified;

/// Bounds on envelope input, checked before any parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest envelope (JSON bytes) accepted. The payload is at most about
    /// three quarters of this once base64-decoded.
    pub max_envelope_bytes: usize,
    /// Most signatures one envelope may carry. Each one costs a signature
    /// check, so this bounds the work an attacker can make us do.
    pub max_signatures: usize,
}

impl Default for Limits {
    /// Production limits: a provenance statement or an ML-BOM with a few
    /// thousand dataset entries is well under a megabyte; 32 MiB leaves room
    /// without letting one upload exhaust memory.
    fn default() -> Self {
        Limits {
            max_envelope_bytes: 32 * 1024 * 1024,
            max_signatures: 16,
        }
    }
}

impl Limits {
    /// Small limits for tests, so limit checks are cheap to exercise.
    pub fn for_testing() -> Self {
        Limits {
            max_envelope_bytes: 64 * 1024,
            max_signatures: 4,
        }
    }
}

/// A DSSE JSON envelope, as written and read by securesystemslib, sigstore
/// and go-securesystemslib.
///
/// A parsed `Envelope` is *unverified*: nothing in it may be used to make a
/// decision. Use [`verify`] (or the statement and key set verifiers built on
/// it), which takes the envelope's bytes and returns a [`Verified`] payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Base64 of the serialized body.
    pub payload: String,
    /// How to interpret the payload, e.g. `application/vnd.in-toto+json`.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// One or more signatures over `PAE(payloadType, payload)`.
    pub signatures: Vec<Signature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// securesystemslib key ID of the signing key. Optional in the DSSE
    /// spec; a signature without one never matches a trusted key here (nor
    /// in securesystemslib).
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the signature (ASN.1 DER for ECDSA, raw 64 bytes for
    /// Ed25519).
    pub sig: String,
}

impl Envelope {
    /// Parse envelope JSON, enforcing `limits` before parsing.
    ///
    /// Refused: input over the size limit, unknown or duplicate members,
    /// more signatures than the limit, two signatures with the same `keyid`
    /// (securesystemslib refuses these too; they would let one key look like
    /// two), and `payload`/`sig` values that are not base64.
    pub fn from_json(bytes: &[u8], limits: &Limits) -> Result<Self> {
        Ok(Parsed::from_json(bytes, limits)?.envelope)
    }

    /// Compact JSON bytes of the envelope.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::malformed("DSSE envelope", e))
    }

    /// Indented JSON bytes of the envelope (what Veritrain writes to disk;
    /// every verifier reads either form).
    pub fn to_json_pretty(&self) -> Result<Vec<u8>> {
        let mut out =
            serde_json::to_vec_pretty(self).map_err(|e| Error::malformed("DSSE envelope", e))?;
        out.push(b'\n');
        Ok(out)
    }
}

/// The DSSE v1 pre-authentication encoding of `payload_type` and `payload`:
/// the exact bytes a signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        7 + type_len.len() + 1 + payload_type.len() + 1 + body_len.len() + 1 + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// Sign `payload` as `payload_type` with every signer, in order.
///
/// Fails if `signers` is empty or two signers share a key ID (the second
/// signature would be ignored by every verifier, so it is a caller bug).
pub fn sign(payload_type: &str, payload: &[u8], signers: &[&dyn Signer]) -> Result<Envelope> {
    if signers.is_empty() {
        return Err(Error::Signature(
            "no signer given; a DSSE envelope needs at least one signature".into(),
        ));
    }
    let message = pae(payload_type, payload);
    let mut seen = BTreeSet::new();
    let mut signatures = Vec::with_capacity(signers.len());
    for signer in signers {
        let keyid = signer.keyid().to_owned();
        if !seen.insert(keyid.clone()) {
            return Err(Error::Signature(format!(
                "key {keyid} was given twice; each key signs an envelope once"
            )));
        }
        let sig = signer.sign(&message)?;
        // A signer that hands back a bad signature (a broken HSM, a key that
        // does not match its public half) is caught here, not by a verifier
        // months later.
        signer.public_key().verify(&message, &sig)?;
        signatures.push(Signature {
            keyid,
            sig: STANDARD.encode(sig),
        });
    }
    Ok(Envelope {
        payload: STANDARD.encode(payload),
        payload_type: payload_type.to_owned(),
        signatures,
    })
}

/// A payload whose envelope signatures verified: its (authenticated) type
/// and the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    payload_type: String,
    bytes: Vec<u8>,
}

impl Payload {
    /// The authenticated payload type.
    pub fn payload_type(&self) -> &str {
        &self.payload_type
    }

    /// The exact payload bytes the signatures cover.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Take the payload bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Fail unless the payload type is `expected`. DSSE authenticates the
    /// type, and checking it stops a signed document of one kind (say, a key
    /// set) from being accepted as another (a provenance statement).
    pub fn require_type(&self, expected: &str) -> Result<()> {
        if self.payload_type == expected {
            Ok(())
        } else {
            Err(Error::PayloadType {
                expected: expected.to_owned(),
                found: self.payload_type.clone(),
            })
        }
    }
}

/// Verify DSSE envelope JSON against trusted keys.
///
/// At least `threshold` distinct keys of `trusted` must each have a valid
/// signature over `PAE(payloadType, payload)`. A signature is tried only with
/// the trusted key whose key ID equals its `keyid`; signatures that match no
/// trusted key, or do not verify, are skipped (DSSE protocol). The returned
/// [`Verified`] lists the key IDs that verified, in envelope order.
///
/// The payload type is returned, not checked: use
/// [`Payload::require_type`], or the typed verifiers in
/// [`crate::statement`] and [`crate::keyset`], which check it.
pub fn verify(
    envelope_json: &[u8],
    trusted: &[PublicKey],
    threshold: usize,
    limits: &Limits,
) -> Result<Verified<Payload>> {
    if threshold == 0 {
        // A zero threshold would accept an envelope with no valid signature.
        return Err(Error::Signature(
            "threshold must be at least 1; 0 would accept unsigned envelopes".into(),
        ));
    }
    let parsed = Parsed::from_json(envelope_json, limits)?;
    let message = pae(&parsed.envelope.payload_type, &parsed.payload);

    let mut accepted: Vec<String> = Vec::new();
    for (signature, sig_bytes) in parsed.envelope.signatures.iter().zip(&parsed.sigs) {
        // The keyid is an unauthenticated hint: it only selects which trusted
        // key to try. Trusted keys are found by their own computed key ID.
        let Some(key) = trusted.iter().find(|k| k.keyid() == signature.keyid) else {
            continue;
        };
        if accepted.iter().any(|k| k == key.keyid()) {
            continue;
        }
        if key.verify(&message, sig_bytes).is_ok() {
            accepted.push(key.keyid().to_owned());
        }
    }
    if accepted.len() < threshold {
        return Err(Error::SignatureThreshold {
            needed: threshold,
            found: accepted.len(),
        });
    }
    let Parsed {
        envelope, payload, ..
    } = parsed;
    Ok(Verified::new(
        Payload {
            payload_type: envelope.payload_type,
            bytes: payload,
        },
        accepted,
    ))
}

/// An envelope with its base64 fields decoded.
struct Parsed {
    envelope: Envelope,
    payload: Vec<u8>,
    sigs: Vec<Vec<u8>>,
}

impl Parsed {
    fn from_json(bytes: &[u8], limits: &Limits) -> Result<Self> {
        // Checked before parsing: an oversized upload costs nothing.
        if bytes.len() > limits.max_envelope_bytes {
            return Err(Error::TooLarge {
                what: "DSSE envelope",
                limit: limits.max_envelope_bytes,
                actual: bytes.len(),
            });
        }
        // serde refuses duplicate members of the envelope and signature
        // objects (two `payload` members would let two tools read two
        // different payloads) and unknown members.
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| Error::malformed("DSSE envelope", e))?;
        if envelope.signatures.len() > limits.max_signatures {
            return Err(Error::TooLarge {
                what: "DSSE signature list",
                limit: limits.max_signatures,
                actual: envelope.signatures.len(),
            });
        }
        if envelope.signatures.is_empty() {
            return Err(Error::malformed(
                "DSSE envelope",
                "`signatures` is empty; an envelope must carry at least one signature",
            ));
        }
        let mut seen = BTreeSet::new();
        for s in &envelope.signatures {
            if !seen.insert(s.keyid.as_str()) {
                return Err(Error::malformed(
                    "DSSE envelope",
                    format!("two signatures carry keyid {:?}", s.keyid),
                ));
            }
        }
        let payload = decode_b64(&envelope.payload)
            .ok_or_else(|| Error::malformed("DSSE envelope", "`payload` is not valid base64"))?;
        let sigs = envelope
            .signatures
            .iter()
            .enumerate()
            .map(|(i, s)| {
                decode_b64(&s.sig).ok_or_else(|| {
                    Error::malformed(
                        "DSSE envelope",
                        format!("`signatures[{i}].sig` is not valid base64"),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Parsed {
            envelope,
            payload,
            sigs,
        })
    }
}

/// Standard base64, else URL-safe base64; padding required and trailing
/// bits canonical in both (the same choice as securesystemslib's `b64dec`).
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, PrivateKey};

    fn keys(alg: Algorithm) -> (PrivateKey, PrivateKey) {
        (
            PrivateKey::generate(alg).unwrap(),
            PrivateKey::generate(alg).unwrap(),
        )
    }

    #[test]
    fn pae_matches_the_dsse_spec_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
        // Lengths are bytes, not characters.
        assert_eq!(pae("é", b""), "DSSEv1 2 é 0 ".as_bytes().to_vec());
    }

    #[test]
    fn spec_envelope_parses() {
        let json = br#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
        let env = Envelope::from_json(json, &Limits::for_testing()).unwrap();
        assert_eq!(env.payload_type, "http://example.com/HelloWorld");
        assert_eq!(env.signatures[0].keyid, "");
    }

    #[test]
    fn sign_then_verify_both_algorithms() {
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let (k, _) = keys(alg);
            let env = sign("application/x-test", b"payload \x00\xff", &[&k]).unwrap();
            let json = env.to_json().unwrap();
            let v = verify(&json, &[k.public_key().clone()], 1, &Limits::for_testing()).unwrap();
            assert_eq!(v.bytes(), b"payload \x00\xff");
            assert_eq!(v.payload_type(), "application/x-test");
            assert_eq!(v.signers(), [k.public_key().keyid().to_owned()]);
            // Pretty JSON verifies too: the signature is over the payload, not
            // over the envelope's formatting.
            let pretty = env.to_json_pretty().unwrap();
            verify(
                &pretty,
                &[k.public_key().clone()],
                1,
                &Limits::for_testing(),
            )
            .unwrap();
        }
    }

    #[test]
    fn threshold_counts_distinct_trusted_keys() {
        let (a, b) = keys(Algorithm::EcdsaP256);
        let c = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let trusted = [
            a.public_key().clone(),
            b.public_key().clone(),
            c.public_key().clone(),
        ];
        let lim = Limits::for_testing();

        let two = sign("t", b"x", &[&a, &c]).unwrap().to_json().unwrap();
        assert_eq!(verify(&two, &trusted, 2, &lim).unwrap().signers().len(), 2);
        let err = verify(&two, &trusted, 3, &lim).unwrap_err();
        assert_eq!(err.code(), "signature.threshold");

        // The same trusted key listed twice still counts once.
        let one = sign("t", b"x", &[&a]).unwrap().to_json().unwrap();
        let doubled = [a.public_key().clone(), a.public_key().clone()];
        assert_eq!(
            verify(&one, &doubled, 2, &lim).unwrap_err().code(),
            "signature.threshold"
        );

        assert_eq!(
            verify(&one, &trusted, 0, &lim).unwrap_err().code(),
            "signature.invalid"
        );
    }

    #[test]
    fn duplicate_signatures_by_one_key_are_refused() {
        let (a, _) = keys(Algorithm::Ed25519);
        let mut env = sign("t", b"x", &[&a]).unwrap();
        env.signatures.push(env.signatures[0].clone());
        let err = verify(
            &env.to_json().unwrap(),
            &[a.public_key().clone()],
            2,
            &Limits::for_testing(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "format.malformed");
        assert!(sign("t", b"x", &[&a, &a]).is_err());
    }

    #[test]
    fn signature_with_wrong_keyid_is_not_tried() {
        let (a, b) = keys(Algorithm::EcdsaP256);
        let mut env = sign("t", b"x", &[&a]).unwrap();
        // A valid signature by `a`, labelled with `b`'s key ID.
        env.signatures[0].keyid = b.public_key().keyid().to_owned();
        let json = env.to_json().unwrap();
        let lim = Limits::for_testing();
        assert_eq!(
            verify(&json, &[a.public_key().clone()], 1, &lim)
                .unwrap_err()
                .code(),
            "signature.threshold"
        );
        assert_eq!(
            verify(&json, &[b.public_key().clone()], 1, &lim)
                .unwrap_err()
                .code(),
            "signature.threshold"
        );
        // An untrusted key's valid signature does not count.
        let good = sign("t", b"x", &[&a]).unwrap().to_json().unwrap();
        assert!(verify(&good, &[b.public_key().clone()], 1, &lim).is_err());
    }

    #[test]
    fn tampering_is_detected() {
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let (k, _) = keys(alg);
            let trusted = [k.public_key().clone()];
            let lim = Limits::for_testing();
            let env = sign("application/x-test", b"hello", &[&k]).unwrap();

            let mut payload = env.clone();
            payload.payload = STANDARD.encode(b"hellO");
            let mut ptype = env.clone();
            ptype.payload_type = "application/x-tesT".into();
            let mut sig = env.clone();
            let mut raw = STANDARD.decode(&sig.signatures[0].sig).unwrap();
            let last = raw.len() - 1;
            raw[last] ^= 1;
            sig.signatures[0].sig = STANDARD.encode(raw);
            for bad in [payload, ptype, sig] {
                let err = verify(&bad.to_json().unwrap(), &trusted, 1, &lim).unwrap_err();
                assert_eq!(err.code(), "signature.threshold", "{alg}: {err}");
            }
        }
    }

    #[test]
    fn payload_type_is_checked_on_request() {
        let (k, _) = keys(Algorithm::Ed25519);
        let json = sign("a/b", b"x", &[&k]).unwrap().to_json().unwrap();
        let v = verify(&json, &[k.public_key().clone()], 1, &Limits::for_testing()).unwrap();
        v.require_type("a/b").unwrap();
        assert_eq!(
            v.require_type("a/c").unwrap_err().code(),
            "dsse.payload_type"
        );
    }

    #[test]
    fn url_safe_base64_is_accepted_like_securesystemslib() {
        let (k, _) = keys(Algorithm::EcdsaP256);
        // A payload whose standard base64 contains '+' and '/'.
        let body = [0xfb_u8, 0xff, 0xbf, 0xfb, 0xef, 0xff];
        let mut env = sign("t", &body, &[&k]).unwrap();
        assert!(env.payload.contains('+') || env.payload.contains('/'));
        env.payload = URL_SAFE.encode(body);
        let v = verify(
            &env.to_json().unwrap(),
            &[k.public_key().clone()],
            1,
            &Limits::for_testing(),
        )
        .unwrap();
        assert_eq!(v.bytes(), body);
    }

    #[test]
    fn hostile_envelopes_are_errors() {
        let lim = Limits::for_testing();
        let cases: &[&[u8]] = &[
            b"",
            b"null",
            b"[]",
            b"{}",
            br#"{"payload":"aGk=","payloadType":"t","signatures":[]}"#,
            br#"{"payload":"aGk","payloadType":"t","signatures":[{"keyid":"a","sig":"aGk="}]}"#,
            br#"{"payload":"aGl=","payloadType":"t","signatures":[{"keyid":"a","sig":"aGk="}]}"#,
            br#"{"payload":"aGk=","payloadType":"t","signatures":[{"keyid":"a","sig":"@@@@"}]}"#,
            br#"{"payload":"aGk=","payload":"aGk=","payloadType":"t","signatures":[{"keyid":"a","sig":"aGk="}]}"#,
            br#"{"payload":"aGk=","payloadType":"t","extra":1,"signatures":[{"keyid":"a","sig":"aGk="}]}"#,
            br#"{"payload":"aGk=","payloadType":"t","signatures":[{"keyid":"a","sig":"aGk=","x":1}]}"#,
            br#"{"payload":1,"payloadType":"t","signatures":[{"keyid":"a","sig":"aGk="}]}"#,
        ];
        for case in cases {
            let err = Envelope::from_json(case, &lim).unwrap_err();
            assert_eq!(
                err.code(),
                "format.malformed",
                "{}",
                String::from_utf8_lossy(case)
            );
        }
        let many: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"keyid":"{i}","sig":"aGk="}}"#))
            .collect();
        let many = format!(
            r#"{{"payload":"aGk=","payloadType":"t","signatures":[{}]}}"#,
            many.join(",")
        );
        assert_eq!(
            Envelope::from_json(many.as_bytes(), &lim)
                .unwrap_err()
                .code(),
            "input.too_large"
        );
        let big = vec![b' '; lim.max_envelope_bytes + 1];
        assert_eq!(
            Envelope::from_json(&big, &lim).unwrap_err().code(),
            "input.too_large"
        );
        let deep = "[".repeat(10_000);
        assert_eq!(
            Envelope::from_json(deep.as_bytes(), &lim)
                .unwrap_err()
                .code(),
            "format.malformed"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::sync::OnceLock;

        fn signers() -> &'static [PrivateKey; 2] {
            static KEYS: OnceLock<[PrivateKey; 2]> = OnceLock::new();
            KEYS.get_or_init(|| {
                [
                    PrivateKey::generate(Algorithm::EcdsaP256).unwrap(),
                    PrivateKey::generate(Algorithm::Ed25519).unwrap(),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn sign_then_verify_succeeds(
                payload in proptest::collection::vec(any::<u8>(), 0..512),
                ptype in "[ -~]{0,40}",
                which in 0usize..2,
            ) {
                let key = &signers()[which];
                let json = sign(&ptype, &payload, &[key]).unwrap().to_json().unwrap();
                let v = verify(&json, &[key.public_key().clone()], 1, &Limits::for_testing()).unwrap();
                prop_assert_eq!(v.bytes(), &payload[..]);
                prop_assert_eq!(v.payload_type(), ptype.as_str());
            }

        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn one_flipped_bit_never_verifies(
                payload in proptest::collection::vec(any::<u8>(), 0..256),
                which in 0usize..2,
                pretty in any::<bool>(),
                pos in any::<prop::sample::Index>(),
                bit in 0u8..8,
            ) {
                let key = &signers()[which];
                let env = sign("application/vnd.in-toto+json", &payload, &[key]).unwrap();
                let mut json = if pretty { env.to_json_pretty().unwrap() } else { env.to_json().unwrap() };
                let i = pos.index(json.len());
                // Indented JSON holds only spaces and LF between tokens, and
                // no single bit flip turns either into other whitespace, so
                // every flip must fail, formatting bytes included.
                json[i] ^= 1 << bit;
                let result = verify(&json, &[key.public_key().clone()], 1, &Limits::for_testing());
                prop_assert!(result.is_err(), "flip at byte {} bit {} verified", i, bit);
            }
        }
    }
}
