//! in-toto Statement v1 and the SLSA Provenance v1 predicate.
//!
//! Where it sits: when a training job finishes, the worker describes the
//! model files (subjects, by SHA-256) and how they were made (a SLSA
//! Provenance v1 predicate: the build type, the job's external parameters,
//! the dataset and base-model digests as resolved dependencies, the builder
//! and the run's start and finish times) in a Statement, and signs it with
//! [`sign_statement`] into a DSSE envelope of payload type
//! `application/vnd.in-toto+json`. Verifiers call [`verify_statement`] with
//! trusted keys, or [`crate::keyset`]'s verifier with the root-signed key set.
//!
//! Formats follow in-toto attestation spec v1 (Statement, ResourceDescriptor,
//! DigestSet) and SLSA Provenance v1. Parsing follows their rules: unknown
//! fields are ignored, and unset, `null` and empty values mean the same.
//! Optional fields are omitted when empty. On top of that, a payload with a
//! duplicate JSON object key anywhere is refused: tools disagree on which
//! value wins, and a signed document must read the same everywhere.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dsse::{self, Envelope, Limits, Payload};
use crate::error::{Error, Result};
use crate::keys::{PublicKey, Signer};
use crate::verified::Verified;

/// `_type` of an in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";
/// DSSE payload type of in-toto statements.
pub const PAYLOAD_TYPE_INTOTO: &str = "application/vnd.in-toto+json";
/// `predicateType` of SLSA Provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// Algorithm name to lower-case hex digest (`{"sha256": "..."}`).
pub type DigestSet = BTreeMap<String, String>;

/// An in-toto Statement v1: subjects, a predicate type and the predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_TYPE_V1`].
    #[serde(rename = "_type")]
    pub type_uri: String,
    /// The artifacts this statement is about; each has a digest.
    #[serde(default, deserialize_with = "null_as_default")]
    pub subject: Vec<ResourceDescriptor>,
    /// URI of the predicate's schema, e.g. [`SLSA_PROVENANCE_V1`].
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The predicate, as JSON. Typed access: [`Statement::provenance`].
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub predicate: Value,
}

/// in-toto ResourceDescriptor v1: a pointer to (or the content of) an
/// artifact. At least one of `uri`, `digest` and `content` must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// Machine-readable name, e.g. a file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// URI that identifies the resource globally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Digests of the resource's content.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub digest: DigestSet,
    /// The content itself (base64 in JSON); should stay under 1 KB.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "base64_bytes"
    )]
    pub content: Option<Vec<u8>>,
    /// Where to download it, if not at `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_location: Option<String>,
    /// MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Free-form extra information.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub annotations: Map<String, Value>,
}

impl ResourceDescriptor {
    /// A statement subject: a named artifact and its SHA-256 (hex).
    pub fn subject(name: impl Into<String>, sha256_hex: impl Into<String>) -> Self {
        ResourceDescriptor {
            name: Some(name.into()),
            digest: BTreeMap::from([("sha256".to_owned(), sha256_hex.into())]),
            ..Default::default()
        }
    }

    fn check(&self, at: &str) -> Result<()> {
        if self.uri.is_none() && self.digest.is_empty() && self.content.is_none() {
            return Err(Error::malformed(
                "resource descriptor",
                format!("{at}: needs at least one of `uri`, `digest`, `content`"),
            ));
        }
        check_digests(&self.digest, at)
    }
}

fn check_digests(digest: &DigestSet, at: &str) -> Result<()> {
    for (alg, value) in digest {
        if alg.is_empty() || value.is_empty() {
            return Err(Error::malformed(
                "resource descriptor",
                format!("{at}: empty digest algorithm or value"),
            ));
        }
    }
    Ok(())
}

/// SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// The inputs of the build.
    pub build_definition: BuildDefinition,
    /// This particular run.
    pub run_details: RunDetails,
}

/// SLSA `buildDefinition`: everything needed to start the build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// URI of the build template (for Veritrain: the training job type).
    pub build_type: String,
    /// Parameters under the tenant's control; verifiers must check them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub external_parameters: Map<String, Value>,
    /// Parameters set by the platform itself.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Map::is_empty"
    )]
    pub internal_parameters: Map<String, Value>,
    /// Artifacts the build fetched (datasets, base models, images).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// SLSA `runDetails`: who ran the build and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    /// The build platform, trusted to have recorded this faithfully.
    pub builder: Builder,
    /// Invocation ID and times.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BuildMetadata::is_empty"
    )]
    pub metadata: BuildMetadata,
    /// Side outputs (logs, evaluated configuration).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// SLSA `builder`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    /// URI of the trusted build platform.
    pub id: String,
    /// Component name to version.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub version: BTreeMap<String, String>,
    /// Orchestrator dependencies that could affect the provenance.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub builder_dependencies: Vec<ResourceDescriptor>,
}

/// SLSA `metadata` of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// Identifier of this run (the job ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<String>,
    /// When the run started (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pub started_on: Option<DateTime<Utc>>,
    /// When the run finished. Veritrain signs the statement at this time,
    /// and key validity is checked at it (see `docs/keys.md`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "rfc3339_opt")]
    pub finished_on: Option<DateTime<Utc>>,
}

impl BuildMetadata {
    fn is_empty(&self) -> bool {
        self.invocation_id.is_none() && self.started_on.is_none() && self.finished_on.is_none()
    }
}

impl Provenance {
    fn check(&self) -> Result<()> {
        let bd = &self.build_definition;
        if bd.build_type.is_empty() {
            return Err(Error::malformed(
                "SLSA provenance",
                "`buildDefinition.buildType` is empty",
            ));
        }
        if self.run_details.builder.id.is_empty() {
            return Err(Error::malformed(
                "SLSA provenance",
                "`runDetails.builder.id` is empty",
            ));
        }
        let lists = [
            (
                "buildDefinition.resolvedDependencies",
                &bd.resolved_dependencies,
            ),
            ("runDetails.byproducts", &self.run_details.byproducts),
            (
                "runDetails.builder.builderDependencies",
                &self.run_details.builder.builder_dependencies,
            ),
        ];
        for (name, list) in lists {
            for (i, rd) in list.iter().enumerate() {
                rd.check(&format!("{name}[{i}]"))?;
            }
        }
        Ok(())
    }
}

impl Statement {
    /// A Statement v1 about `subject` with the given predicate.
    pub fn new(
        subject: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: Value,
    ) -> Self {
        Statement {
            type_uri: STATEMENT_TYPE_V1.to_owned(),
            subject,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// A Statement v1 carrying a SLSA Provenance v1 predicate.
    pub fn slsa_provenance(
        subject: Vec<ResourceDescriptor>,
        provenance: &Provenance,
    ) -> Result<Self> {
        let predicate =
            serde_json::to_value(provenance).map_err(|e| Error::malformed("SLSA provenance", e))?;
        Ok(Statement::new(subject, SLSA_PROVENANCE_V1, predicate))
    }

    /// Check the Statement v1 rules: the `_type`, a non-empty subject list
    /// whose entries all have a digest, a predicate type, and (for SLSA
    /// Provenance v1) a well-formed predicate.
    pub fn check(&self) -> Result<()> {
        if self.type_uri != STATEMENT_TYPE_V1 {
            return Err(Error::StatementType {
                found: self.type_uri.clone(),
            });
        }
        if self.subject.is_empty() {
            return Err(Error::malformed("in-toto statement", "`subject` is empty"));
        }
        for (i, s) in self.subject.iter().enumerate() {
            // Statement v1: "Each element MUST have digest set"; a subject
            // without one would bind the signature to nothing.
            if s.digest.is_empty() {
                return Err(Error::malformed(
                    "in-toto statement",
                    format!("`subject[{i}]` has no digest"),
                ));
            }
            check_digests(&s.digest, &format!("subject[{i}]"))?;
        }
        if self.predicate_type.is_empty() {
            return Err(Error::malformed(
                "in-toto statement",
                "`predicateType` is empty",
            ));
        }
        if self.predicate_type == SLSA_PROVENANCE_V1 {
            self.provenance()?;
        }
        Ok(())
    }

    /// The predicate as SLSA Provenance v1. Fails if the predicate type is
    /// something else or the predicate does not have the SLSA shape.
    pub fn provenance(&self) -> Result<Provenance> {
        if self.predicate_type != SLSA_PROVENANCE_V1 {
            return Err(Error::PredicateType {
                expected: SLSA_PROVENANCE_V1.to_owned(),
                found: self.predicate_type.clone(),
            });
        }
        let p: Provenance = serde_json::from_value(self.predicate.clone())
            .map_err(|e| Error::malformed("SLSA provenance", e))?;
        p.check()?;
        Ok(p)
    }

    /// The signing time this statement records: SLSA Provenance v1's
    /// `runDetails.metadata.finishedOn`. Other predicate types record no
    /// time this crate knows how to read; the caller supplies one (see
    /// [`crate::keyset`]).
    pub fn recorded_signing_time(&self) -> Result<DateTime<Utc>> {
        if self.predicate_type != SLSA_PROVENANCE_V1 {
            return Err(Error::SigningTime(format!(
                "predicate type {:?} has no known signing-time field; \
                 pass the time to check the key at explicitly",
                self.predicate_type
            )));
        }
        self.provenance()?
            .run_details
            .metadata
            .finished_on
            .ok_or_else(|| {
                Error::SigningTime(
                    "the SLSA provenance has no `runDetails.metadata.finishedOn`".into(),
                )
            })
    }
}

/// Check `statement` and sign its JSON serialization into a DSSE envelope
/// of payload type [`PAYLOAD_TYPE_INTOTO`].
pub fn sign_statement(statement: &Statement, signers: &[&dyn Signer]) -> Result<Envelope> {
    statement.check()?;
    let payload =
        serde_json::to_vec(statement).map_err(|e| Error::malformed("in-toto statement", e))?;
    dsse::sign(PAYLOAD_TYPE_INTOTO, &payload, signers)
}

/// Verify a DSSE envelope holding an in-toto Statement v1.
///
/// Signatures are checked first (see [`dsse::verify`]); only then is the
/// payload type required to be [`PAYLOAD_TYPE_INTOTO`] and the exact signed
/// bytes parsed as a Statement and checked ([`Statement::check`]).
pub fn verify_statement(
    envelope_json: &[u8],
    trusted: &[PublicKey],
    threshold: usize,
    limits: &Limits,
) -> Result<Verified<Statement>> {
    statement_from_payload(dsse::verify(envelope_json, trusted, threshold, limits)?)
}

/// Parse the verified payload of an envelope as a Statement v1.
pub(crate) fn statement_from_payload(payload: Verified<Payload>) -> Result<Verified<Statement>> {
    payload.require_type(PAYLOAD_TYPE_INTOTO)?;
    let statement: Statement = parse_strict(payload.bytes(), "in-toto statement")?;
    statement.check()?;
    let signers = payload.signers().to_vec();
    Ok(Verified::new(statement, signers))
}

/// Parse JSON into `T`, refusing duplicate object keys anywhere in the
/// document first.
pub(crate) fn parse_strict<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    NoDuplicateKeys::deserialize(&mut de).map_err(|e| Error::malformed(what, e))?;
    de.end().map_err(|e| Error::malformed(what, e))?;
    serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e))
}

/// Walks a JSON document and fails on the first object with a repeated key.
/// serde_json's own recursion limit bounds the depth.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        while seq.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate object key {key:?}")));
            }
            map.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

/// `null` reads as the empty value (SLSA: "Unset, null, and empty field
/// values MUST be interpreted equivalently").
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// RFC 3339 timestamps in UTC with a `Z` suffix (in-toto `Timestamp`).
/// Any RFC 3339 offset is read and converted to UTC.
pub(crate) mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// The canonical text form.
    pub fn format(t: &DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Parse an RFC 3339 timestamp.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc))
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("{text:?} is not an RFC 3339 timestamp: {e}"))
        })
    }
}

/// [`rfc3339`] for optional fields; `null` reads as unset.
pub(crate) mod rfc3339_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => super::rfc3339::parse(&text).map(Some).map_err(|e| {
                serde::de::Error::custom(format!("{text:?} is not an RFC 3339 timestamp: {e}"))
            }),
        }
    }
}

/// ResourceDescriptor `content`: bytes as standard base64.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => STANDARD
                .decode(&text)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(format!("`content` is not base64: {e}"))),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::{Algorithm, PrivateKey};
    use serde_json::json;

    /// A provenance statement for one model file, finished at `finished`.
    pub(crate) fn provenance_statement(finished: &str) -> Statement {
        let provenance = Provenance {
            build_definition: BuildDefinition {
                build_type: "https://veritrain.dev/buildtypes/keras-train/v1".into(),
                external_parameters:
                    json!({"epochs": 3, "learning_rate": 0.001, "config": "train.yaml"})
                        .as_object()
                        .unwrap()
                        .clone(),
                internal_parameters: Map::new(),
                resolved_dependencies: vec![ResourceDescriptor {
                    name: Some("data/train.csv".into()),
                    digest: BTreeMap::from([("sha256".into(), "ab".repeat(32))]),
                    ..Default::default()
                }],
            },
            run_details: RunDetails {
                builder: Builder {
                    id: "https://veritrain.dev/worker/v1".into(),
                    version: BTreeMap::from([("veritrain".into(), "0.1.0".into())]),
                    builder_dependencies: vec![],
                },
                metadata: BuildMetadata {
                    invocation_id: Some("job-1".into()),
                    started_on: Some(rfc3339::parse("2025-01-01T00:00:00Z").unwrap()),
                    finished_on: Some(rfc3339::parse(finished).unwrap()),
                },
                byproducts: vec![],
            },
        };
        Statement::slsa_provenance(
            vec![ResourceDescriptor::subject("model.keras", "cd".repeat(32))],
            &provenance,
        )
        .unwrap()
    }

    #[test]
    fn statement_json_has_the_spec_shape() {
        let st = provenance_statement("2025-01-01T01:02:03Z");
        let v = serde_json::to_value(&st).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE_V1);
        assert_eq!(v["predicateType"], SLSA_PROVENANCE_V1);
        assert_eq!(
            v["subject"],
            json!([{"name": "model.keras", "digest": {"sha256": "cd".repeat(32)}}])
        );
        let p = &v["predicate"];
        assert_eq!(
            p["buildDefinition"]["buildType"],
            "https://veritrain.dev/buildtypes/keras-train/v1"
        );
        assert_eq!(
            p["buildDefinition"]["resolvedDependencies"][0]["name"],
            "data/train.csv"
        );
        assert_eq!(
            p["runDetails"]["builder"]["id"],
            "https://veritrain.dev/worker/v1"
        );
        assert_eq!(
            p["runDetails"]["metadata"]["finishedOn"],
            "2025-01-01T01:02:03Z"
        );
        assert_eq!(p["runDetails"]["metadata"]["invocationId"], "job-1");
        // Empty optionals are omitted, not written as null or [].
        assert!(p["buildDefinition"].get("internalParameters").is_none());
        assert!(p["runDetails"].get("byproducts").is_none());
        assert!(
            p["runDetails"]["builder"]
                .get("builderDependencies")
                .is_none()
        );
    }

    #[test]
    fn sign_then_verify_statement_both_algorithms() {
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let key = PrivateKey::generate(alg).unwrap();
            let st = provenance_statement("2025-01-01T01:02:03Z");
            let env = sign_statement(&st, &[&key]).unwrap();
            assert_eq!(env.payload_type, PAYLOAD_TYPE_INTOTO);
            let json = env.to_json().unwrap();
            let v = verify_statement(
                &json,
                &[key.public_key().clone()],
                1,
                &Limits::for_testing(),
            )
            .unwrap();
            assert_eq!(*v, st);
            assert_eq!(
                v.recorded_signing_time().unwrap(),
                rfc3339::parse("2025-01-01T01:02:03Z").unwrap()
            );
            let p = v.provenance().unwrap();
            assert_eq!(
                p.build_definition.external_parameters["learning_rate"],
                json!(0.001)
            );
        }
    }

    fn sign_raw(payload_type: &str, payload: &[u8], key: &PrivateKey) -> Vec<u8> {
        dsse::sign(payload_type, payload, &[key])
            .unwrap()
            .to_json()
            .unwrap()
    }

    #[test]
    fn wrong_payload_type_or_statement_type_is_refused_after_signature_check() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let trusted = [key.public_key().clone()];
        let lim = Limits::for_testing();
        let body = serde_json::to_vec(&provenance_statement("2025-01-01T00:00:00Z")).unwrap();

        let other_type = sign_raw("application/json", &body, &key);
        assert_eq!(
            verify_statement(&other_type, &trusted, 1, &lim)
                .unwrap_err()
                .code(),
            "dsse.payload_type"
        );

        let mut v01 = serde_json::to_value(provenance_statement("2025-01-01T00:00:00Z")).unwrap();
        v01["_type"] = json!("https://in-toto.io/Statement/v0.1");
        let env = sign_raw(
            PAYLOAD_TYPE_INTOTO,
            &serde_json::to_vec(&v01).unwrap(),
            &key,
        );
        assert_eq!(
            verify_statement(&env, &trusted, 1, &lim)
                .unwrap_err()
                .code(),
            "statement.type"
        );
    }

    #[test]
    fn signed_but_malformed_statements_are_refused() {
        let key = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let trusted = [key.public_key().clone()];
        let lim = Limits::for_testing();
        let cases: &[&str] = &[
            "not json",
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a"}],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":""}}],"predicateType":"x"}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":""}"#,
            // Duplicate key deep inside the predicate: Python keeps the last
            // value, others may keep the first.
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x","predicate":{"a":{"b":1,"b":2}}}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"x"}"#,
            // SLSA predicate without a builder id.
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"b","externalParameters":{}},"runDetails":{"builder":{"id":""}}}}"#,
            r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"b"},"runDetails":{"builder":{"id":"i"},"metadata":{"finishedOn":"yesterday"}}}}"#,
        ];
        for case in cases {
            let env = sign_raw(PAYLOAD_TYPE_INTOTO, case.as_bytes(), &key);
            let err = verify_statement(&env, &trusted, 1, &lim).unwrap_err();
            assert_eq!(err.code(), "format.malformed", "{case}: {err}");
        }
    }

    #[test]
    fn unknown_fields_and_nulls_follow_the_parsing_rules() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let body = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"aa"},"vendor_x":1}],
            "predicateType":"https://slsa.dev/provenance/v1","extension_y":true,
            "predicate":{"buildDefinition":{"buildType":"b","externalParameters":{},"resolvedDependencies":null},
                         "runDetails":{"builder":{"id":"i","version":null},"metadata":null,"byproducts":[]}}}"#;
        let env = sign_raw(PAYLOAD_TYPE_INTOTO, body.as_bytes(), &key);
        let v =
            verify_statement(&env, &[key.public_key().clone()], 1, &Limits::for_testing()).unwrap();
        let p = v.provenance().unwrap();
        assert!(p.build_definition.resolved_dependencies.is_empty());
        assert!(p.run_details.metadata.is_empty());
        assert_eq!(
            v.recorded_signing_time().unwrap_err().code(),
            "keyset.signing_time"
        );
    }

    #[test]
    fn resource_descriptor_round_trips_every_field() {
        let rd: ResourceDescriptor = serde_json::from_value(json!({
            "name": "n", "uri": "https://x/y", "digest": {"sha256": "aa"}, "content": "aGVsbG8=",
            "downloadLocation": "https://x/z", "mediaType": "text/plain", "annotations": {"k": [1, true]}
        }))
        .unwrap();
        assert_eq!(rd.content.as_deref(), Some(&b"hello"[..]));
        assert_eq!(rd.download_location.as_deref(), Some("https://x/z"));
        let back = serde_json::to_value(&rd).unwrap();
        assert_eq!(back["content"], "aGVsbG8=");
        assert_eq!(back["mediaType"], "text/plain");
        assert_eq!(back["annotations"], json!({"k": [1, true]}));
    }

    #[test]
    fn predicate_type_mismatch_has_its_own_code() {
        let st = Statement::new(
            vec![ResourceDescriptor::subject("a", "aa")],
            "https://cyclonedx.org/bom",
            json!({}),
        );
        assert_eq!(
            st.provenance().unwrap_err().code(),
            "statement.predicate_type"
        );
        assert_eq!(
            st.recorded_signing_time().unwrap_err().code(),
            "keyset.signing_time"
        );
    }
}
