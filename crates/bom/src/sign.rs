//! Signing the AIBoM as an in-toto attestation, and checking one.
//!
//! Where it sits: after [`crate::build_bom`], the worker writes the BOM as
//! `aibom.cdx.json` and signs it with [`sign_bom`] into a DSSE envelope
//! holding an in-toto Statement v1: `predicateType`
//! [`PREDICATE_TYPE`], the BOM as the predicate, the trained model's
//! SHA-256 as the subject. An auditor checks the envelope with
//! [`verify_bom_envelope`] (trusted keys) or [`verify_bom_with_keyset`]
//! (the root-signed key set, at the BOM's own timestamp).
//!
//! Verification goes through the attestation crate: the signatures are
//! checked over the envelope's exact payload bytes, never over a
//! re-serialization, and only then is the payload parsed. The BOM handed
//! back is the predicate's exact bytes as signed, plus its parsed form; the
//! predicate must also validate against the CycloneDX 1.6 schema, and the
//! statement's subject must be the model the BOM describes.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use veritrain_attest::Verified;
use veritrain_attest::dsse::{self, Envelope, Limits, Payload};
use veritrain_attest::keys::{PublicKey, Signer};
use veritrain_attest::keyset::KeySet;
use veritrain_attest::statement::{
    self, PAYLOAD_TYPE_INTOTO, ResourceDescriptor, Statement, sign_statement,
};

use crate::cdx::Bom;
use crate::error::{Error, Result};
use crate::schema::validate_bom;

/// `predicateType` of a CycloneDX BOM in an in-toto Statement.
pub const PREDICATE_TYPE: &str = "https://cyclonedx.org/bom";

/// Sign a BOM as an in-toto Statement v1 about the trained model.
///
/// `bom_json` must be a CycloneDX 1.6 BOM (it is validated) whose subject
/// component (`metadata.component`) has `model_sha256` as its SHA-256, so
/// the signature binds the BOM to exactly the model it describes.
pub fn sign_bom(
    bom_json: &[u8],
    model_sha256: &str,
    model_name: &str,
    signer: &dyn Signer,
) -> Result<Envelope> {
    crate::build::check_sha256_field("model_sha256", model_sha256)?;
    if model_name.trim().is_empty() {
        return Err(Error::input("model_name", "must not be empty"));
    }
    let value: Value =
        serde_json::from_slice(bom_json).map_err(|e| Error::Malformed(e.to_string()))?;
    validate_bom(&value)?;
    let bom: Bom =
        serde_json::from_value(value.clone()).map_err(|e| Error::Malformed(e.to_string()))?;
    match subject_sha256(&bom) {
        Some(d) if d == model_sha256 => {}
        Some(d) => {
            return Err(Error::Subject(format!(
                "the BOM describes a model with SHA-256 {d}, not {model_sha256}"
            )));
        }
        None => {
            return Err(Error::Subject(
                "the BOM has no `metadata.component` with a SHA-256 hash".into(),
            ));
        }
    }
    let statement = Statement::new(
        vec![ResourceDescriptor::subject(model_name, model_sha256)],
        PREDICATE_TYPE,
        value,
    );
    Ok(sign_statement(&statement, &[signer])?)
}

/// The SHA-256 of the BOM's subject component.
pub fn subject_sha256(bom: &Bom) -> Option<&str> {
    bom.metadata.as_ref()?.component.as_ref()?.sha256()
}

/// A BOM read from a verified envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedBom {
    subject: Vec<ResourceDescriptor>,
    bom_json: String,
    bom: Bom,
}

impl SignedBom {
    /// The statement's subjects (the trained model and its digest).
    pub fn subject(&self) -> &[ResourceDescriptor] {
        &self.subject
    }

    /// The predicate exactly as it appears in the signed payload.
    pub fn bom_json(&self) -> &str {
        &self.bom_json
    }

    /// The parsed BOM.
    pub fn bom(&self) -> &Bom {
        &self.bom
    }

    /// The SHA-256 of the model the BOM describes (a statement subject).
    pub fn model_sha256(&self) -> Option<&str> {
        subject_sha256(&self.bom)
    }

    /// Check that `file` (an `aibom.cdx.json` delivered next to the
    /// envelope) holds the same BOM as the signed predicate: the same JSON
    /// value, whatever its formatting and member order. The pretty file and
    /// the compact predicate differ in bytes, so their values are compared;
    /// no signature depends on this comparison.
    pub fn check_file(&self, file: &[u8]) -> Result<()> {
        let file: Value = serde_json::from_slice(file)
            .map_err(|e| Error::Malformed(format!("the BOM file is not JSON: {e}")))?;
        let signed: Value =
            serde_json::from_str(&self.bom_json).map_err(|e| Error::Malformed(e.to_string()))?;
        if file == signed {
            Ok(())
        } else {
            Err(Error::FileMismatch(first_difference(&signed, &file, "")))
        }
    }

    fn from_statement(statement: Statement, payload: &[u8]) -> Result<Self> {
        if statement.predicate_type != PREDICATE_TYPE {
            return Err(veritrain_attest::Error::PredicateType {
                expected: PREDICATE_TYPE.to_owned(),
                found: statement.predicate_type,
            }
            .into());
        }
        #[derive(Deserialize)]
        struct Raw<'a> {
            #[serde(borrow)]
            predicate: &'a RawValue,
        }
        let raw: Raw<'_> =
            serde_json::from_slice(payload).map_err(|e| Error::Malformed(e.to_string()))?;
        validate_bom(&statement.predicate)?;
        let bom: Bom = serde_json::from_value(statement.predicate)
            .map_err(|e| Error::Malformed(e.to_string()))?;
        let Some(model) = subject_sha256(&bom) else {
            return Err(Error::Subject(
                "the BOM has no `metadata.component` with a SHA-256 hash".into(),
            ));
        };
        if !statement
            .subject
            .iter()
            .any(|s| s.digest.get("sha256").map(String::as_str) == Some(model))
        {
            return Err(Error::Subject(format!(
                "no subject of the statement has the SHA-256 {model} of the model the BOM describes"
            )));
        }
        Ok(SignedBom {
            subject: statement.subject,
            bom_json: raw.predicate.get().to_owned(),
            bom,
        })
    }
}

/// JSON pointer of the first place where `b` differs from `a`.
fn first_difference(a: &Value, b: &Value, at: &str) -> String {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                let here = format!("{at}/{}", escape(k));
                match y.get(k) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(v, w, &here),
                    None => return format!("{here} is missing from the file"),
                }
            }
            match y.keys().find(|k| !x.contains_key(*k)) {
                Some(k) => format!("{at}/{} is not in the signed BOM", escape(k)),
                None => format!("{at} differs"),
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map(|(i, (v, w))| first_difference(v, w, &format!("{at}/{i}")))
            .unwrap_or_else(|| format!("{at} differs")),
        _ => format!("{} differs", if at.is_empty() { "/" } else { at }),
    }
}

fn signed_bom(payload: Verified<Payload>) -> Result<Verified<SignedBom>> {
    // The exact signed bytes, kept to hand back the predicate as signed.
    let exact = payload.bytes().to_vec();
    let statement = statement::statement_from_payload(payload)?;
    statement.try_map(|s| SignedBom::from_statement(s, &exact))
}

/// Verify a signed BOM against trusted keys: at least `threshold` distinct
/// keys of `trusted` must have signed it.
pub fn verify_bom_envelope(
    envelope_json: &[u8],
    trusted: &[PublicKey],
    threshold: usize,
    limits: &Limits,
) -> Result<Verified<SignedBom>> {
    signed_bom(dsse::verify(envelope_json, trusted, threshold, limits)?)
}

/// Verify a signed BOM against a verified key set: the signing key must be
/// valid at the BOM's `metadata.timestamp` (when it was made and signed).
pub fn verify_bom_with_keyset(
    envelope_json: &[u8],
    keyset: &Verified<KeySet>,
    limits: &Limits,
) -> Result<Verified<SignedBom>> {
    let payload = keyset.verify_payload_at(envelope_json, PAYLOAD_TYPE_INTOTO, limits, |p| {
        bom_timestamp(p.bytes())
    })?;
    signed_bom(payload)
}

/// `predicate.metadata.timestamp` of a verified statement payload.
fn bom_timestamp(payload: &[u8]) -> veritrain_attest::Result<DateTime<Utc>> {
    let missing = || {
        veritrain_attest::Error::SigningTime(
            "the BOM has no `metadata.timestamp` to check the signing key at".into(),
        )
    };
    let value: Value = serde_json::from_slice(payload).map_err(|_| missing())?;
    let text = value
        .pointer("/predicate/metadata/timestamp")
        .and_then(Value::as_str)
        .ok_or_else(missing)?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            veritrain_attest::Error::SigningTime(format!(
                "the BOM's `metadata.timestamp` {text:?} is not RFC 3339: {e}"
            ))
        })
}
