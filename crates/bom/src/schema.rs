//! Validation against the official CycloneDX 1.6 JSON schema.
//!
//! The schema files are vendored verbatim in `crates/bom/schema/` (from the
//! `cyclonedx-python-lib` wheel; versions and digests in its README) and
//! compiled into the crate, so validation never touches the network. The
//! BOM schema refers to `spdx.SNAPSHOT.schema.json` and
//! `jsf-0.82.SNAPSHOT.schema.json` relative to its `$id`; [`Vendored`]
//! serves those two URIs from the vendored files and refuses every other.
//!
//! Formats are asserted (`date-time`, `iri-reference`, `idn-email`), as
//! cyclonedx-python-lib's strict validator does with its format checker.

use std::sync::OnceLock;

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

use crate::error::{Error, Result, SchemaViolation};

/// `bom-1.6.schema.json`, byte-identical to the wheel's `bom-1.6.SNAPSHOT.schema.json`.
pub const BOM_SCHEMA: &str = include_str!("../schema/bom-1.6.schema.json");
/// `spdx.schema.json` (SPDX licence IDs).
pub const SPDX_SCHEMA: &str = include_str!("../schema/spdx.schema.json");
/// `jsf-0.82.schema.json` (JSON Signature Format).
pub const JSF_SCHEMA: &str = include_str!("../schema/jsf-0.82.schema.json");

/// Where the BOM schema's relative `$ref`s resolve to.
const SPDX_URI: &str = "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json";
const JSF_URI: &str = "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json";

/// At most this many violations are reported; the first few say enough.
const MAX_VIOLATIONS: usize = 50;

/// Serves the vendored referenced schemas; anything else is an error, so a
/// schema change that adds a remote reference fails loudly instead of
/// reaching for the network.
struct Vendored;

impl Retrieve for Vendored {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> std::result::Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let text = match uri.as_str() {
            SPDX_URI => SPDX_SCHEMA,
            JSF_URI => JSF_SCHEMA,
            other => return Err(format!("no vendored schema for {other}").into()),
        };
        Ok(serde_json::from_str(text)?)
    }
}

fn compile() -> std::result::Result<Validator, String> {
    let schema: Value = serde_json::from_str(BOM_SCHEMA).map_err(|e| e.to_string())?;
    jsonschema::options()
        .should_validate_formats(true)
        // A format this build cannot check is a compile error, not a
        // silently skipped check.
        .should_ignore_unknown_formats(false)
        .with_retriever(Vendored)
        .build(&schema)
        .map_err(|e| e.to_string())
}

fn validator() -> Result<&'static Validator> {
    static VALIDATOR: OnceLock<std::result::Result<Validator, String>> = OnceLock::new();
    VALIDATOR
        .get_or_init(compile)
        .as_ref()
        .map_err(|e| Error::SchemaSetup(e.clone()))
}

/// Validate a BOM against the CycloneDX 1.6 schema.
///
/// Fails with [`Error::Schema`] listing each violation with the JSON
/// pointer of the offending value (at most 50).
pub fn validate_bom(json: &Value) -> Result<()> {
    let violations: Vec<SchemaViolation> = validator()?
        .iter_errors(json)
        .take(MAX_VIOLATIONS)
        .map(|e| SchemaViolation {
            pointer: e.instance_path().to_string(),
            schema_pointer: e.schema_path().to_string(),
            // The masked form leaves the instance out: a `oneOf` failure on
            // a component would otherwise quote the whole component.
            message: e.masked().to_string(),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(Error::Schema { violations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pointers(err: Error) -> Vec<String> {
        match err {
            Error::Schema { violations } => violations.into_iter().map(|v| v.pointer).collect(),
            other => panic!("expected a schema error, got {other}"),
        }
    }

    #[test]
    fn minimal_bom_validates() {
        validate_bom(&json!({"bomFormat": "CycloneDX", "specVersion": "1.6"})).unwrap();
    }

    #[test]
    fn violations_carry_json_pointers() {
        let bad = json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "serialNumber": "not-a-urn",
            "components": [
                {"type": "library", "name": "ok"},
                {"type": "machine-learning-model", "name": "m", "modelCard": {"bomRef": "x"}}
            ]
        });
        let err = validate_bom(&bad).unwrap_err();
        assert_eq!(err.code(), "bom.schema");
        let ptrs = pointers(err);
        assert!(ptrs.contains(&"/serialNumber".to_owned()), "{ptrs:?}");
        assert!(
            ptrs.contains(&"/components/1/modelCard".to_owned()),
            "{ptrs:?}"
        );
    }

    #[test]
    fn spdx_reference_resolves_offline() {
        // `license.id` is a `$ref` into the vendored SPDX schema: a known ID
        // passes and an unknown one fails, so the reference was resolved.
        let with_id = |id: &str| {
            json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
                   "components": [{"type": "library", "name": "x",
                                   "licenses": [{"license": {"id": id}}]}]})
        };
        validate_bom(&with_id("Apache-2.0")).unwrap();
        let ptrs = pointers(validate_bom(&with_id("Not-A-Licence")).unwrap_err());
        assert!(ptrs.iter().any(|p| p.starts_with("/components/0/licenses")));
    }

    #[test]
    fn formats_are_asserted() {
        let bom = |ts: &str| {
            json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
                   "metadata": {"timestamp": ts}})
        };
        validate_bom(&bom("2026-05-01T12:00:00Z")).unwrap();
        let ptrs = pointers(validate_bom(&bom("yesterday")).unwrap_err());
        assert_eq!(ptrs, ["/metadata/timestamp"]);
        let author = |email: &str| {
            json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
                   "metadata": {"authors": [{"name": "A", "email": email}]}})
        };
        validate_bom(&author("a@example.org")).unwrap();
        validate_bom(&author("jörg@bücher.example")).unwrap();
        let ptrs = pointers(validate_bom(&author("not an address")).unwrap_err());
        assert_eq!(ptrs, ["/metadata/authors/0/email"]);
        let reference = |url: &str| {
            json!({"bomFormat": "CycloneDX", "specVersion": "1.6",
                   "externalReferences": [{"type": "attestation", "url": url}]})
        };
        validate_bom(&reference("attestations/train.link")).unwrap();
        let ptrs = pointers(validate_bom(&reference("a b\\c")).unwrap_err());
        assert!(
            ptrs.iter()
                .any(|p| p.starts_with("/externalReferences/0/url")),
            "{ptrs:?}"
        );
    }

    #[test]
    fn vendored_files_are_the_documented_ones() {
        use sha2::{Digest, Sha256};
        // crates/bom/schema/README.md lists these digests: the files are
        // byte-identical to those in cyclonedx-python-lib 11.12.0.
        let digest = |s: &str| hex::encode(Sha256::digest(s.as_bytes()));
        assert_eq!(
            digest(BOM_SCHEMA),
            "83821ba49aa366ad1f1d16c34837d05edd010f036f652e310db1c77d57b37c58"
        );
        assert_eq!(
            digest(SPDX_SCHEMA),
            "ea6e844ee6fba1e93473d94834d0ee0996970533497935f932f73d488ffdf4a3"
        );
        assert_eq!(
            digest(JSF_SCHEMA),
            "8bae002c25e723db7ee1f26afde680ae1a2b1a8f6b4b4b0fd65dc3becb090aae"
        );
    }
}
