//! The key set: the root-signed list of online signing keys, and the rule
//! for verifying an attestation against it.
//!
//! Where it sits: an offline root key signs a small JSON document listing
//! every signing key the workers have ever used, each with a validity window
//! and a status. Workers sign attestations with the current signing key; an
//! auditor holds only the root public key and the latest key set
//! (`veritrain keys init` writes both to `public/`). Rotating the signing key
//! retires the old key instead of deleting it, so attestations signed while
//! it was active keep verifying. `docs/keys.md` explains the format, the
//! rotation and revocation procedures, and the limits of the design.
//!
//! Verifying an attestation ([`verify_attested`],
//! [`Verified::<KeySet>::verify_statement`]) means:
//! 1. the root key signed the key set (DSSE, payload type
//!    [`PAYLOAD_TYPE_KEYSET`]);
//! 2. a key listed in the key set signed the attestation;
//! 3. that key was valid at the signing time the attestation records
//!    (`valid_from <= t`, and `t <= valid_until` when set);
//! 4. the key was not revoked as of that time (`t < revoked_at`).
//!
//! The time is read only from the verified payload. It is claimed by the
//! signer: someone holding a stolen key can write any time. Revocation with
//! an early enough `revoked_at`, and later a transparency log or timestamp
//! authority, are the answer; see `docs/keys.md`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::dsse::{self, Envelope, Limits, Payload};
use crate::error::{Error, Result};
use crate::keys::{KeyDict, PublicKey, Signer};
use crate::statement::{self, Statement, rfc3339, rfc3339_opt};
use crate::verified::Verified;

/// DSSE payload type of a signed key set.
pub const PAYLOAD_TYPE_KEYSET: &str = "application/vnd.veritrain.keyset+json";

/// The key set document (the DSSE payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySet {
    /// Starts at 1 and grows by one with every change, so a verifier can
    /// refuse to go back to an older key set (one from before a revocation).
    pub version: u64,
    /// When this version was issued.
    #[serde(with = "rfc3339")]
    pub issued: DateTime<Utc>,
    /// Every signing key ever used, current and past.
    pub keys: Vec<KeyEntry>,
}

/// One signing key and its validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEntry {
    /// securesystemslib key ID; must be the ID of `key`.
    pub keyid: String,
    /// securesystemslib key dictionary.
    pub key: KeyDict,
    /// First instant the key may sign.
    #[serde(with = "rfc3339")]
    pub valid_from: DateTime<Utc>,
    /// Last instant the key may sign (set when the key is retired).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pub valid_until: Option<DateTime<Utc>>,
    /// Where the key is in its life.
    pub status: KeyStatus,
    /// For revoked keys: from this instant on, nothing signed by the key is
    /// accepted.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// For revoked keys: why, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
}

/// Life-cycle status of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// In use for new signatures.
    Active,
    /// Replaced by rotation; verifies what it signed up to `valid_until`.
    Retired,
    /// Compromised or withdrawn; verifies only what it signed before
    /// `revoked_at`.
    Revoked,
}

impl KeyStatus {
    /// The lower-case name used in the document.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Retired => "retired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

impl KeyEntry {
    /// A new active key valid from `from`.
    pub fn active(key: &PublicKey, from: DateTime<Utc>) -> Result<Self> {
        Ok(KeyEntry {
            keyid: key.keyid().to_owned(),
            key: key.key_dict()?,
            valid_from: from,
            valid_until: None,
            status: KeyStatus::Active,
            revoked_at: None,
            revocation_reason: None,
        })
    }

    /// The public key, checked against `keyid`.
    pub fn public_key(&self) -> Result<PublicKey> {
        let key = PublicKey::from_key_dict(&self.key)?;
        if key.keyid() != self.keyid {
            return Err(Error::KeysetInvalid(format!(
                "entry {} holds a key whose key ID is {}",
                self.keyid,
                key.keyid()
            )));
        }
        Ok(key)
    }

    /// Whether the key may have signed at `t`.
    pub fn check_valid_at(&self, t: DateTime<Utc>) -> Result<()> {
        let fail = |reason: String| Error::KeyNotValid {
            keyid: self.keyid.clone(),
            at: rfc3339::format(&t),
            reason,
        };
        if t < self.valid_from {
            return Err(fail(format!(
                "not valid before {}",
                rfc3339::format(&self.valid_from)
            )));
        }
        if let Some(until) = self.valid_until
            && t > until
        {
            return Err(fail(format!(
                "{} key, valid only until {}",
                self.status.as_str(),
                rfc3339::format(&until)
            )));
        }
        if self.status == KeyStatus::Revoked {
            // check() guarantees revoked_at is set for revoked keys; a
            // missing one is treated as revoked since the beginning.
            let revoked_at = self.revoked_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
            if t >= revoked_at {
                let why = self
                    .revocation_reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                return Err(fail(format!(
                    "revoked at {}{why}",
                    rfc3339::format(&revoked_at)
                )));
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        self.public_key()?;
        let bad = |what: &str| Err(Error::KeysetInvalid(format!("key {}: {what}", self.keyid)));
        if let Some(until) = self.valid_until
            && until < self.valid_from
        {
            return bad("valid_until is before valid_from");
        }
        match self.status {
            KeyStatus::Retired if self.valid_until.is_none() => {
                bad("a retired key needs valid_until (when it stopped signing)")
            }
            KeyStatus::Revoked if self.revoked_at.is_none() => {
                bad("a revoked key needs revoked_at")
            }
            KeyStatus::Active | KeyStatus::Retired
                if self.revoked_at.is_some() || self.revocation_reason.is_some() =>
            {
                bad("revoked_at and revocation_reason belong to revoked keys only")
            }
            _ => Ok(()),
        }
    }
}

impl KeySet {
    /// Version 1: one active signing key, valid from `now`.
    pub fn new(signing_key: &PublicKey, now: DateTime<Utc>) -> Result<Self> {
        let ks = KeySet {
            version: 1,
            issued: now,
            keys: vec![KeyEntry::active(signing_key, now)?],
        };
        ks.check()?;
        Ok(ks)
    }

    /// Check the format rules: version at least 1, at least one key, no
    /// duplicate key IDs, every key ID the ID of its key, and status fields
    /// consistent with the status.
    pub fn check(&self) -> Result<()> {
        if self.version == 0 {
            return Err(Error::KeysetInvalid("version starts at 1".into()));
        }
        if self.keys.is_empty() {
            return Err(Error::KeysetInvalid("lists no keys".into()));
        }
        let mut seen = BTreeSet::new();
        for entry in &self.keys {
            if !seen.insert(entry.keyid.as_str()) {
                return Err(Error::KeysetInvalid(format!(
                    "key {} is listed twice",
                    entry.keyid
                )));
            }
            entry.check()?;
        }
        Ok(())
    }

    /// The entry for `keyid`, if listed.
    pub fn entry(&self, keyid: &str) -> Option<&KeyEntry> {
        self.keys.iter().find(|e| e.keyid == keyid)
    }

    /// The key new attestations should be signed with: the active key that
    /// became valid last.
    pub fn current(&self) -> Option<&KeyEntry> {
        self.keys
            .iter()
            .filter(|e| e.status == KeyStatus::Active)
            .max_by_key(|e| e.valid_from)
    }

    /// The next version, with `new_key` active from `now` and every active
    /// key retired with `valid_until = now`. Attestations those keys signed
    /// up to `now` keep verifying.
    pub fn rotate(&self, new_key: &PublicKey, now: DateTime<Utc>) -> Result<Self> {
        self.check_not_before_issued(now)?;
        if self.entry(new_key.keyid()).is_some() {
            return Err(Error::KeysetInvalid(format!(
                "key {} is already listed; rotate to a fresh key",
                new_key.keyid()
            )));
        }
        let mut next = self.next_version(now)?;
        for entry in &mut next.keys {
            if entry.status == KeyStatus::Active {
                entry.status = KeyStatus::Retired;
                entry.valid_until = Some(match entry.valid_until {
                    Some(until) if until < now => until,
                    _ => now,
                });
            }
        }
        next.keys.push(KeyEntry::active(new_key, now)?);
        next.check()?;
        Ok(next)
    }

    /// The next version, with `keyid` revoked as of `revoked_at`: nothing it
    /// signed at or after that instant verifies. Choose `revoked_at` no later
    /// than the first moment the key may have been out of your control.
    pub fn revoke(
        &self,
        keyid: &str,
        revoked_at: DateTime<Utc>,
        reason: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Self> {
        self.check_not_before_issued(now)?;
        let mut next = self.next_version(now)?;
        let entry = next
            .keys
            .iter_mut()
            .find(|e| e.keyid == keyid)
            .ok_or_else(|| Error::KeysetInvalid(format!("key {keyid} is not listed")))?;
        if let Some(earlier) = entry.revoked_at
            && earlier < revoked_at
        {
            // Moving a revocation later would make signatures valid again.
            return Err(Error::KeysetInvalid(format!(
                "key {keyid} is already revoked at {}; a revocation can only move earlier",
                rfc3339::format(&earlier)
            )));
        }
        entry.status = KeyStatus::Revoked;
        entry.revoked_at = Some(revoked_at);
        entry.revocation_reason = reason;
        next.check()?;
        Ok(next)
    }

    fn check_not_before_issued(&self, now: DateTime<Utc>) -> Result<()> {
        if now < self.issued {
            return Err(Error::KeysetInvalid(format!(
                "the clock reads {}, before this key set was issued ({}); refusing to change it",
                rfc3339::format(&now),
                rfc3339::format(&self.issued)
            )));
        }
        Ok(())
    }

    fn next_version(&self, now: DateTime<Utc>) -> Result<Self> {
        let version = self
            .version
            .checked_add(1)
            .ok_or_else(|| Error::KeysetInvalid("version overflow".into()))?;
        Ok(KeySet {
            version,
            issued: now,
            keys: self.keys.clone(),
        })
    }

    /// Check the key set and sign it with the root key.
    pub fn sign(&self, root: &dyn Signer) -> Result<Envelope> {
        self.check()?;
        if self.entry(root.keyid()).is_some() {
            return Err(root_listed(root.keyid()));
        }
        let payload = serde_json::to_vec(self).map_err(|e| Error::malformed("key set", e))?;
        dsse::sign(PAYLOAD_TYPE_KEYSET, &payload, &[root])
    }
}

fn root_listed(keyid: &str) -> Error {
    Error::KeysetInvalid(format!(
        "the root key {keyid} is listed as a signing key; the root key stays offline and signs only key sets"
    ))
}

/// Verify a signed key set with the root public key.
pub fn verify_keyset(
    envelope_json: &[u8],
    root: &PublicKey,
    limits: &Limits,
) -> Result<Verified<KeySet>> {
    let payload = dsse::verify(envelope_json, std::slice::from_ref(root), 1, limits)?;
    payload.require_type(PAYLOAD_TYPE_KEYSET)?;
    let keyset: KeySet = statement::parse_strict(payload.bytes(), "key set")?;
    keyset.check()?;
    if keyset.entry(root.keyid()).is_some() {
        return Err(root_listed(root.keyid()));
    }
    Ok(Verified::new(keyset, payload.signers().to_vec()))
}

/// Verify an attestation (a DSSE-signed in-toto Statement) against a signed
/// key set and the root public key: the whole rule of this module, with the
/// signing time taken from the statement
/// ([`Statement::recorded_signing_time`]: SLSA `finishedOn`).
pub fn verify_attested(
    envelope_json: &[u8],
    keyset_envelope_json: &[u8],
    root: &PublicKey,
    limits: &Limits,
) -> Result<Verified<Statement>> {
    verify_keyset(keyset_envelope_json, root, limits)?.verify_statement(envelope_json, limits)
}

impl Verified<KeySet> {
    /// Verify a Statement envelope signed by a key of this key set, at the
    /// signing time it records (SLSA Provenance v1 `finishedOn`).
    pub fn verify_statement(
        &self,
        envelope_json: &[u8],
        limits: &Limits,
    ) -> Result<Verified<Statement>> {
        self.verify_statement_at(envelope_json, limits, Statement::recorded_signing_time)
    }

    /// Verify a Statement envelope at the time `signing_time` reads from the
    /// *verified* statement (for predicates other than SLSA provenance, e.g.
    /// a BOM's own timestamp).
    pub fn verify_statement_at(
        &self,
        envelope_json: &[u8],
        limits: &Limits,
        signing_time: impl FnOnce(&Statement) -> Result<DateTime<Utc>>,
    ) -> Result<Verified<Statement>> {
        self.verify_with(
            envelope_json,
            limits,
            statement::statement_from_payload,
            signing_time,
        )
    }

    /// Verify any DSSE envelope of `payload_type` signed by a key of this key
    /// set, at the time `signing_time` reads from the verified payload bytes.
    pub fn verify_payload_at(
        &self,
        envelope_json: &[u8],
        payload_type: &str,
        limits: &Limits,
        signing_time: impl FnOnce(&Payload) -> Result<DateTime<Utc>>,
    ) -> Result<Verified<Payload>> {
        self.verify_with(
            envelope_json,
            limits,
            |p| {
                p.require_type(payload_type)?;
                Ok(p)
            },
            signing_time,
        )
    }

    fn verify_with<T>(
        &self,
        envelope_json: &[u8],
        limits: &Limits,
        parse: impl FnOnce(Verified<Payload>) -> Result<Verified<T>>,
        signing_time: impl FnOnce(&T) -> Result<DateTime<Utc>>,
    ) -> Result<Verified<T>> {
        // Every listed key, whatever its status, may have made a valid
        // signature; which of those count is decided below, at the recorded
        // time.
        let listed = self
            .keys
            .iter()
            .map(KeyEntry::public_key)
            .collect::<Result<Vec<_>>>()?;
        let verified = parse(dsse::verify(envelope_json, &listed, 1, limits)?)?;
        // Read only from the verified payload.
        let t = signing_time(&verified)?;
        let mut valid = Vec::new();
        let mut first_refusal = None;
        for keyid in verified.signers() {
            let entry = self.entry(keyid).ok_or_else(|| {
                Error::KeysetInvalid(format!("key {keyid} verified but is not listed"))
            })?;
            match entry.check_valid_at(t) {
                Ok(()) => valid.push(keyid.clone()),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        if valid.is_empty() {
            return Err(first_refusal.unwrap_or(Error::SignatureThreshold {
                needed: 1,
                found: 0,
            }));
        }
        Ok(Verified::new(verified.into_inner(), valid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Algorithm, PrivateKey};
    use crate::statement::sign_statement;
    use crate::statement::tests::provenance_statement;

    fn t(s: &str) -> DateTime<Utc> {
        rfc3339::parse(s).unwrap()
    }

    fn lim() -> Limits {
        Limits::for_testing()
    }

    /// A root key, a first signing key and the signed version 1 key set.
    struct Fixture {
        root: PrivateKey,
        k1: PrivateKey,
        keyset: KeySet,
    }

    fn fixture(alg: Algorithm) -> Fixture {
        let root = PrivateKey::generate(alg).unwrap();
        let k1 = PrivateKey::generate(alg).unwrap();
        let keyset = KeySet::new(k1.public_key(), t("2025-01-01T00:00:00Z")).unwrap();
        Fixture { root, k1, keyset }
    }

    fn signed(ks: &KeySet, root: &PrivateKey) -> Vec<u8> {
        ks.sign(root).unwrap().to_json().unwrap()
    }

    /// A key set envelope signed without [`KeySet::sign`]'s checks.
    fn raw_keyset_envelope(ks: &KeySet, key: &PrivateKey) -> Vec<u8> {
        let payload = serde_json::to_vec(ks).unwrap();
        dsse::sign(PAYLOAD_TYPE_KEYSET, &payload, &[key])
            .unwrap()
            .to_json()
            .unwrap()
    }

    fn attestation(key: &PrivateKey, finished: &str) -> Vec<u8> {
        sign_statement(&provenance_statement(finished), &[key])
            .unwrap()
            .to_json()
            .unwrap()
    }

    #[test]
    fn attestation_verifies_against_the_signed_key_set_both_algorithms() {
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let f = fixture(alg);
            let ks = signed(&f.keyset, &f.root);
            let att = attestation(&f.k1, "2025-02-01T00:00:00Z");
            let v = verify_attested(&att, &ks, f.root.public_key(), &lim()).unwrap();
            assert_eq!(v.signers(), [f.k1.public_key().keyid().to_owned()]);
            assert_eq!(v.subject[0].name.as_deref(), Some("model.keras"));
        }
    }

    #[test]
    fn signing_time_before_valid_from_fails() {
        let f = fixture(Algorithm::EcdsaP256);
        let ks = signed(&f.keyset, &f.root);
        let att = attestation(&f.k1, "2024-12-31T23:59:59Z");
        let err = verify_attested(&att, &ks, f.root.public_key(), &lim()).unwrap_err();
        assert_eq!(err.code(), "keyset.key_not_valid", "{err}");
    }

    #[test]
    fn rotation_retires_the_old_key_and_old_attestations_still_verify() {
        let f = fixture(Algorithm::EcdsaP256);
        let old_att = attestation(&f.k1, "2025-02-01T00:00:00Z");
        let k2 = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let v2 = f
            .keyset
            .rotate(k2.public_key(), t("2025-03-01T00:00:00Z"))
            .unwrap();
        assert_eq!(v2.version, 2);
        assert_eq!(v2.issued, t("2025-03-01T00:00:00Z"));
        let old = v2.entry(f.k1.public_key().keyid()).unwrap();
        assert_eq!(old.status, KeyStatus::Retired);
        assert_eq!(old.valid_until, Some(t("2025-03-01T00:00:00Z")));
        assert_eq!(v2.current().unwrap().keyid, k2.public_key().keyid());

        let ks2 = signed(&v2, &f.root);
        let root = f.root.public_key();
        // Signed while k1 was active: still verifies with the new key set.
        verify_attested(&old_att, &ks2, root, &lim()).unwrap();
        // Up to and including the retirement instant.
        verify_attested(
            &attestation(&f.k1, "2025-03-01T00:00:00Z"),
            &ks2,
            root,
            &lim(),
        )
        .unwrap();
        // A retired key claiming a later time is refused.
        let late = attestation(&f.k1, "2025-03-01T00:00:01Z");
        let err = verify_attested(&late, &ks2, root, &lim()).unwrap_err();
        assert_eq!(err.code(), "keyset.key_not_valid");
        assert!(err.to_string().contains("retired"), "{err}");
        // The new key verifies from its start.
        verify_attested(
            &attestation(&k2, "2025-03-02T00:00:00Z"),
            &ks2,
            root,
            &lim(),
        )
        .unwrap();
        // Rotating to a listed key is refused.
        assert_eq!(
            v2.rotate(f.k1.public_key(), t("2025-04-01T00:00:00Z"))
                .unwrap_err()
                .code(),
            "keyset.invalid"
        );
        // The clock may not run backwards across versions.
        let k3 = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        assert_eq!(
            v2.rotate(k3.public_key(), t("2025-02-01T00:00:00Z"))
                .unwrap_err()
                .code(),
            "keyset.invalid"
        );
    }

    #[test]
    fn revoked_key_fails_after_revoked_at_and_verifies_before() {
        let f = fixture(Algorithm::Ed25519);
        let ks = f
            .keyset
            .revoke(
                f.k1.public_key().keyid(),
                t("2025-02-01T00:00:00Z"),
                Some("laptop stolen".into()),
                t("2025-02-02T00:00:00Z"),
            )
            .unwrap();
        assert_eq!(ks.version, 2);
        let ks = signed(&ks, &f.root);
        let root = f.root.public_key();
        verify_attested(
            &attestation(&f.k1, "2025-01-31T23:59:59Z"),
            &ks,
            root,
            &lim(),
        )
        .unwrap();
        for at in ["2025-02-01T00:00:00Z", "2025-06-01T00:00:00Z"] {
            let err = verify_attested(&attestation(&f.k1, at), &ks, root, &lim()).unwrap_err();
            assert_eq!(err.code(), "keyset.key_not_valid");
            assert!(err.to_string().contains("laptop stolen"), "{err}");
        }
    }

    #[test]
    fn revocation_can_move_earlier_but_not_later() {
        let f = fixture(Algorithm::Ed25519);
        let id = f.k1.public_key().keyid();
        let now = t("2025-03-01T00:00:00Z");
        let r1 = f
            .keyset
            .revoke(id, t("2025-02-01T00:00:00Z"), None, now)
            .unwrap();
        r1.revoke(id, t("2025-01-15T00:00:00Z"), None, now).unwrap();
        assert_eq!(
            r1.revoke(id, t("2025-02-15T00:00:00Z"), None, now)
                .unwrap_err()
                .code(),
            "keyset.invalid"
        );
        assert_eq!(
            f.keyset.revoke("nope", now, None, now).unwrap_err().code(),
            "keyset.invalid"
        );
    }

    #[test]
    fn key_set_signed_by_a_non_root_key_fails() {
        let f = fixture(Algorithm::EcdsaP256);
        let impostor = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let ks = signed(&f.keyset, &impostor);
        let att = attestation(&f.k1, "2025-02-01T00:00:00Z");
        let err = verify_attested(&att, &ks, f.root.public_key(), &lim()).unwrap_err();
        assert_eq!(err.code(), "signature.threshold");
        // Signed by the signing key itself (our signer refuses, so sign the
        // payload directly): also not the root.
        assert!(f.keyset.sign(&f.k1).is_err());
        let ks = raw_keyset_envelope(&f.keyset, &f.k1);
        assert!(verify_attested(&att, &ks, f.root.public_key(), &lim()).is_err());
    }

    #[test]
    fn unlisted_signing_key_fails() {
        let f = fixture(Algorithm::EcdsaP256);
        let ks = signed(&f.keyset, &f.root);
        let stranger = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let err = verify_attested(
            &attestation(&stranger, "2025-02-01T00:00:00Z"),
            &ks,
            f.root.public_key(),
            &lim(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "signature.threshold");
        // The root key cannot sign attestations either: it is not listed.
        let err = verify_attested(
            &attestation(&f.root, "2025-02-01T00:00:00Z"),
            &ks,
            f.root.public_key(),
            &lim(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "signature.threshold");
    }

    #[test]
    fn payload_types_are_not_interchangeable() {
        let f = fixture(Algorithm::EcdsaP256);
        let ks = signed(&f.keyset, &f.root);
        let root = f.root.public_key();
        // A root-signed statement is not a key set.
        let st = attestation(&f.root, "2025-02-01T00:00:00Z");
        assert_eq!(
            verify_keyset(&st, root, &lim()).unwrap_err().code(),
            "dsse.payload_type"
        );
        // A key set is not an attestation, even when signed by a listed key.
        let ks_by_k1 = raw_keyset_envelope(&f.keyset, &f.k1);
        assert_eq!(
            verify_attested(&ks_by_k1, &ks, root, &lim())
                .unwrap_err()
                .code(),
            "dsse.payload_type"
        );
    }

    #[test]
    fn attestation_without_a_recorded_time_needs_an_explicit_one() {
        let f = fixture(Algorithm::Ed25519);
        let ks = verify_keyset(&signed(&f.keyset, &f.root), f.root.public_key(), &lim()).unwrap();
        let bom = Statement::new(
            vec![crate::statement::ResourceDescriptor::subject(
                "model.keras",
                "aa".repeat(32),
            )],
            "https://cyclonedx.org/bom",
            serde_json::json!({"metadata": {"timestamp": "2025-02-01T00:00:00Z"}}),
        );
        let env = sign_statement(&bom, &[&f.k1]).unwrap().to_json().unwrap();
        assert_eq!(
            ks.verify_statement(&env, &lim()).unwrap_err().code(),
            "keyset.signing_time"
        );
        let at = |s: &Statement| {
            let text = s.predicate["metadata"]["timestamp"]
                .as_str()
                .unwrap_or_default();
            rfc3339::parse(text).map_err(|e| Error::SigningTime(e.to_string()))
        };
        ks.verify_statement_at(&env, &lim(), at).unwrap();
        // A non-statement payload at a caller-provided time.
        let raw = dsse::sign("application/x-report", b"ok", &[&f.k1])
            .unwrap()
            .to_json()
            .unwrap();
        let v = ks
            .verify_payload_at(&raw, "application/x-report", &lim(), |_| {
                Ok(t("2025-02-01T00:00:00Z"))
            })
            .unwrap();
        assert_eq!(v.bytes(), b"ok");
        assert!(
            ks.verify_payload_at(&raw, "application/x-report", &lim(), |_| Ok(t(
                "2024-01-01T00:00:00Z"
            )))
            .is_err()
        );
    }

    #[test]
    fn invalid_key_sets_are_refused_even_when_root_signed() {
        let f = fixture(Algorithm::EcdsaP256);
        let root = f.root.public_key();
        let other = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let mut wrong_id = f.keyset.clone();
        wrong_id.keys[0].keyid = other.public_key().keyid().to_owned();
        let mut dup = f.keyset.clone();
        dup.keys.push(dup.keys[0].clone());
        let mut retired_open = f.keyset.clone();
        retired_open.keys[0].status = KeyStatus::Retired;
        let mut revoked_no_time = f.keyset.clone();
        revoked_no_time.keys[0].status = KeyStatus::Revoked;
        let mut backwards = f.keyset.clone();
        backwards.keys[0].valid_until = Some(t("2024-01-01T00:00:00Z"));
        let mut v0 = f.keyset.clone();
        v0.version = 0;
        let mut lists_root = f.keyset.clone();
        lists_root
            .keys
            .push(KeyEntry::active(root, t("2025-01-01T00:00:00Z")).unwrap());
        for bad in [
            wrong_id,
            dup,
            retired_open,
            revoked_no_time,
            backwards,
            v0,
            lists_root,
        ] {
            // Our signer refuses to sign them ...
            assert!(bad.sign(&f.root).is_err());
            // ... and the verifier refuses them when someone else did.
            let env = raw_keyset_envelope(&bad, &f.root);
            assert_eq!(
                verify_keyset(&env, root, &lim()).unwrap_err().code(),
                "keyset.invalid"
            );
        }
        // Unknown members and duplicate keys in a root-signed payload.
        let mut value = serde_json::to_value(&f.keyset).unwrap();
        value["expires"] = serde_json::json!("never");
        let env = dsse::sign(
            PAYLOAD_TYPE_KEYSET,
            &serde_json::to_vec(&value).unwrap(),
            &[&f.root],
        )
        .unwrap();
        assert_eq!(
            verify_keyset(&env.to_json().unwrap(), root, &lim())
                .unwrap_err()
                .code(),
            "format.malformed"
        );
        let text = String::from_utf8(serde_json::to_vec(&f.keyset).unwrap()).unwrap();
        let dup_version = text.replacen("{\"version\":1,", "{\"version\":1,\"version\":9,", 1);
        assert_ne!(dup_version, text);
        let env = dsse::sign(PAYLOAD_TYPE_KEYSET, dup_version.as_bytes(), &[&f.root]).unwrap();
        assert_eq!(
            verify_keyset(&env.to_json().unwrap(), root, &lim())
                .unwrap_err()
                .code(),
            "format.malformed"
        );
    }

    #[test]
    fn key_set_json_shape() {
        let f = fixture(Algorithm::Ed25519);
        let ks = f
            .keyset
            .revoke(
                f.k1.public_key().keyid(),
                t("2025-02-01T00:00:00Z"),
                Some("lost".into()),
                t("2025-02-02T00:00:00Z"),
            )
            .unwrap();
        let v = serde_json::to_value(&ks).unwrap();
        assert_eq!(v["version"], 2);
        assert_eq!(v["issued"], "2025-02-02T00:00:00Z");
        let k = &v["keys"][0];
        assert_eq!(k["keyid"], f.k1.public_key().keyid());
        assert_eq!(k["key"]["keytype"], "ed25519");
        assert_eq!(k["valid_from"], "2025-01-01T00:00:00Z");
        assert_eq!(k["status"], "revoked");
        assert_eq!(k["revoked_at"], "2025-02-01T00:00:00Z");
        assert_eq!(k["revocation_reason"], "lost");
        assert!(k.get("valid_until").is_none());
    }
}
