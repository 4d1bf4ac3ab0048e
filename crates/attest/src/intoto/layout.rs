//! in-toto v0.9 layouts: the supply chain the project owner signs — which
//! steps, performed by which functionary keys, with which artifact rules.
//!
//! As with links, the field set of every object is exactly Python
//! in-toto's (`_type` on steps and inspections included), because Python
//! signs and verifies the canonical JSON of its own re-created model.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cjson;
use crate::error::{Error, Result};
use crate::keys::{KeyDict, KeyVal, PublicKey};

use super::link::{is_hex, type_tag};
use super::rules::ArtifactRule;

type_tag!(LayoutTag, "layout");
type_tag!(StepTag, "step");
type_tag!(InspectionTag, "inspection");

/// The only `expires` format in-toto accepts.
pub const EXPIRES_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// A root layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Always `"layout"`.
    #[serde(rename = "_type")]
    pub type_: LayoutTag,
    /// Expiry, `YYYY-MM-DDTHH:MM:SSZ` (UTC).
    pub expires: String,
    /// Free text for people.
    pub readme: String,
    /// Functionary keys by key ID.
    pub keys: BTreeMap<String, LayoutKey>,
    /// The steps, in the order they are performed.
    pub steps: Vec<Step>,
    /// Inspections (commands the verifier would run). Parsed, but refused
    /// by [`super::verify_chain`] as unsupported.
    pub inspect: Vec<Inspection>,
}

/// A functionary public key as a layout lists it: the securesystemslib key
/// dictionary plus its `keyid`, the shape Python in-toto writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutKey {
    /// The key ID; must equal the hash of the other members.
    pub keyid: String,
    /// `ecdsa` or `ed25519`.
    pub keytype: String,
    /// `ecdsa-sha2-nistp256` or `ed25519`.
    pub scheme: String,
    /// The public key.
    pub keyval: KeyVal,
    /// Other members (e.g. an old `keyid_hash_algorithms`), kept as they
    /// are because they are part of the hashed key dictionary.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl LayoutKey {
    /// The layout entry for `key`.
    pub fn from_public_key(key: &PublicKey) -> Result<Self> {
        let dict = key.key_dict()?;
        Ok(LayoutKey {
            keyid: key.keyid().to_owned(),
            keytype: dict.keytype,
            scheme: dict.scheme,
            keyval: dict.keyval,
            other: BTreeMap::new(),
        })
    }

    /// The usable public key. Refused unless `keyid` is the securesystemslib
    /// hash of this dictionary (without `keyid`): a layout cannot make one
    /// key answer to another key's ID.
    pub fn public_key(&self) -> Result<PublicKey> {
        let dict = KeyDict {
            keytype: self.keytype.clone(),
            scheme: self.scheme.clone(),
            keyval: self.keyval.clone(),
        };
        let key = PublicKey::from_key_dict(&dict)?;
        let mut hashed =
            serde_json::to_value(&dict).map_err(|e| Error::malformed("layout key", e))?;
        if let serde_json::Value::Object(map) = &mut hashed {
            for (k, v) in &self.other {
                map.insert(k.clone(), v.clone());
            }
        }
        let computed = hex::encode(Sha256::digest(cjson::encode_json(&hashed)?));
        if computed != self.keyid {
            return Err(Error::KeyInvalid(format!(
                "layout key {} hashes to key ID {computed}",
                self.keyid
            )));
        }
        Ok(key)
    }
}

/// One step of the supply chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Always `"step"`.
    #[serde(rename = "_type")]
    pub type_: StepTag,
    /// Unique step name; links are found as `<name>.<keyid[:8]>.link`.
    pub name: String,
    /// How many distinct functionaries must provide a link.
    pub threshold: i64,
    /// Key IDs of the functionaries allowed to perform the step.
    pub pubkeys: Vec<String>,
    /// The command expected to have run; a mismatch is only a warning.
    pub expected_command: Vec<String>,
    /// Artifact rules for the link's materials.
    pub expected_materials: Vec<Vec<String>>,
    /// Artifact rules for the link's products.
    pub expected_products: Vec<Vec<String>>,
}

/// An inspection (not supported by the verifier; kept so a layout with
/// inspections parses and is refused with a clear message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inspection {
    /// Always `"inspection"`.
    #[serde(rename = "_type")]
    pub type_: InspectionTag,
    /// Inspection name.
    pub name: String,
    /// Command the verifier would run.
    pub run: Vec<String>,
    /// Artifact rules for materials.
    pub expected_materials: Vec<Vec<String>>,
    /// Artifact rules for products.
    pub expected_products: Vec<Vec<String>>,
}

impl Step {
    /// A step with threshold 1 and no keys, command or rules yet.
    pub fn new(name: impl Into<String>) -> Self {
        Step {
            type_: StepTag,
            name: name.into(),
            threshold: 1,
            pubkeys: Vec::new(),
            expected_command: Vec::new(),
            expected_materials: Vec::new(),
            expected_products: Vec::new(),
        }
    }

    /// Set the threshold.
    pub fn threshold(mut self, threshold: i64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Authorize a functionary key (by key ID).
    pub fn functionary(mut self, keyid: impl Into<String>) -> Self {
        self.pubkeys.push(keyid.into());
        self
    }

    /// Set the expected command.
    pub fn expected_command<S: Into<String>>(mut self, argv: impl IntoIterator<Item = S>) -> Self {
        self.expected_command = argv.into_iter().map(Into::into).collect();
        self
    }

    /// Append a material rule written as words, e.g.
    /// `"MATCH * WITH PRODUCTS FROM intake"` (split on whitespace; no
    /// quoting). Checked by [`LayoutBuilder::build`].
    pub fn material_rule(mut self, rule: &str) -> Self {
        self.expected_materials.push(split_rule(rule));
        self
    }

    /// Append a product rule; see [`Step::material_rule`].
    pub fn product_rule(mut self, rule: &str) -> Self {
        self.expected_products.push(split_rule(rule));
        self
    }
}

fn split_rule(rule: &str) -> Vec<String> {
    rule.split_whitespace().map(str::to_owned).collect()
}

impl Layout {
    /// The expiry as a time. Only `YYYY-MM-DDTHH:MM:SSZ` is accepted, as in
    /// Python in-toto.
    pub fn expires_at(&self) -> Result<DateTime<Utc>> {
        parse_expires(&self.expires)
    }

    /// Python in-toto's layout checks, plus ours:
    /// - `expires` in the one accepted format, a real date;
    /// - key IDs are hex, each `keys` entry is filed under its own `keyid`,
    ///   which is the hash of the key (ours), and is a key we can use;
    /// - step and inspection names unique; names usable as a file name
    ///   component (ours: no `/`, `\` or NUL, not empty, so that loading
    ///   `<name>.<keyid>.link` cannot leave the link directory);
    /// - `pubkeys` are hex; every artifact rule is well formed.
    pub fn validate(&self) -> Result<()> {
        self.expires_at()?;
        for (id, key) in &self.keys {
            if !is_hex(id) {
                return Err(Error::malformed(
                    "in-toto layout",
                    format!("key ID {id:?} is not hex"),
                ));
            }
            if &key.keyid != id {
                return Err(Error::malformed(
                    "in-toto layout",
                    format!("keys[{id:?}] holds key {:?}", key.keyid),
                ));
            }
            key.public_key()?;
        }
        let mut names = BTreeSet::new();
        let items = self
            .steps
            .iter()
            .map(|s| (&s.name, &s.expected_materials, &s.expected_products))
            .chain(
                self.inspect
                    .iter()
                    .map(|i| (&i.name, &i.expected_materials, &i.expected_products)),
            );
        for (name, materials, products) in items {
            if name.is_empty() || name.contains(['/', '\\', '\0']) {
                return Err(Error::malformed(
                    "in-toto layout",
                    format!("step name {name:?} cannot be part of a link file name"),
                ));
            }
            if !names.insert(name) {
                return Err(Error::malformed(
                    "in-toto layout",
                    format!(
                        "There is already a step with name '{name}'. Step names must be unique within a layout."
                    ),
                ));
            }
            for rule in materials.iter().chain(products) {
                ArtifactRule::parse(rule)?;
            }
        }
        for step in &self.steps {
            if let Some(bad) = step.pubkeys.iter().find(|k| !is_hex(k)) {
                return Err(Error::malformed(
                    "in-toto layout",
                    format!("step {:?}: pubkey {bad:?} is not a hex key ID", step.name),
                ));
            }
        }
        Ok(())
    }
}

/// Parse an in-toto `expires` value.
pub fn parse_expires(s: &str) -> Result<DateTime<Utc>> {
    let shape_ok = s.len() == 20
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    let parsed = shape_ok
        .then(|| NaiveDateTime::parse_from_str(s, EXPIRES_FORMAT).ok())
        .flatten()
        // A leap second (":60") is not a valid date for Python either.
        .filter(|_| s.get(17..19).is_some_and(|sec| sec < "60"));
    parsed.map(|t| t.and_utc()).ok_or_else(|| {
        Error::malformed(
            "in-toto layout",
            format!("expires {s:?} is not a date in the form YYYY-MM-DDTHH:MM:SSZ"),
        )
    })
}

/// Builds a [`Layout`] for producers.
#[derive(Debug, Clone)]
pub struct LayoutBuilder {
    layout: Layout,
}

impl LayoutBuilder {
    /// A layout expiring at `expires` (seconds are kept, sub-seconds dropped).
    pub fn new(expires: DateTime<Utc>) -> Self {
        LayoutBuilder {
            layout: Layout {
                type_: LayoutTag,
                expires: expires.format(EXPIRES_FORMAT).to_string(),
                readme: String::new(),
                keys: BTreeMap::new(),
                steps: Vec::new(),
                inspect: Vec::new(),
            },
        }
    }

    /// Set the readme.
    pub fn readme(mut self, readme: impl Into<String>) -> Self {
        self.layout.readme = readme.into();
        self
    }

    /// List `key` as a functionary key; returns its key ID for
    /// [`Step::functionary`].
    pub fn add_key(&mut self, key: &PublicKey) -> Result<String> {
        let entry = LayoutKey::from_public_key(key)?;
        let keyid = entry.keyid.clone();
        self.layout.keys.insert(keyid.clone(), entry);
        Ok(keyid)
    }

    /// Append a step.
    pub fn step(mut self, step: Step) -> Self {
        self.layout.steps.push(step);
        self
    }

    /// The layout, checked with [`Layout::validate`]; every step key must
    /// also be listed with [`Self::add_key`].
    pub fn build(self) -> Result<Layout> {
        self.layout.validate()?;
        for step in &self.layout.steps {
            if let Some(missing) = step
                .pubkeys
                .iter()
                .find(|k| !self.layout.keys.contains_key(*k))
            {
                return Err(Error::malformed(
                    "in-toto layout",
                    format!(
                        "step {:?} names key {missing} that the layout does not list",
                        step.name
                    ),
                ));
            }
        }
        Ok(self.layout)
    }
}
