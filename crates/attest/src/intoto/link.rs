//! in-toto v0.9 link metadata: the signed record of one performed step,
//! with the artifacts it used (materials) and made (products).
//!
//! The field set is exactly Python in-toto's, because Python re-creates the
//! model from the file and signs the canonical JSON of *its* model: a field
//! we added or left out would make every signature look broken there.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::{HashOptions, hash_relative};

/// Artifacts by path: `{"path": {"sha256": "<hex>"}}`.
pub type ArtifactMap = BTreeMap<String, BTreeMap<String, String>>;

/// `"_type"` tags: a unit type per document kind that writes its tag and
/// refuses any other value.
macro_rules! type_tag {
    ($name:ident, $tag:literal) => {
        #[doc = concat!("The `\"_type\": \"", $tag, "\"` tag.")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str($tag)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                if s == $tag {
                    Ok($name)
                } else {
                    Err(serde::de::Error::custom(format!(
                        "_type must be {:?}, found {s:?}",
                        $tag
                    )))
                }
            }
        }
    };
}
pub(crate) use type_tag;

type_tag!(LinkTag, "link");

/// A link: evidence that a step was carried out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Always `"link"`.
    #[serde(rename = "_type")]
    pub type_: LinkTag,
    /// The step this link is evidence for.
    pub name: String,
    /// The command that was run (argv).
    pub command: Vec<String>,
    /// Artifacts before the command ran.
    pub materials: ArtifactMap,
    /// Artifacts after the command ran.
    pub products: ArtifactMap,
    /// What the command reported.
    pub byproducts: Byproducts,
    /// Information about the environment; always an object (Python rejects
    /// `null`), empty unless something is recorded.
    pub environment: BTreeMap<String, serde_json::Value>,
}

/// A link's byproducts: an open object that usually holds `stdout`,
/// `stderr` and `return-value`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Byproducts {
    /// Standard output of the command, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Standard error of the command, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Exit status of the command.
    #[serde(
        default,
        rename = "return-value",
        skip_serializing_if = "Option::is_none"
    )]
    pub return_value: Option<i64>,
    /// Any other members, kept as they are.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Byproducts {
    /// Byproducts of a command that ran: both streams and its exit status.
    pub fn from_run(
        stdout: impl Into<String>,
        stderr: impl Into<String>,
        return_value: i64,
    ) -> Self {
        Byproducts {
            stdout: Some(stdout.into()),
            stderr: Some(stderr.into()),
            return_value: Some(return_value),
            other: BTreeMap::new(),
        }
    }
}

impl Link {
    /// A link for step `name`, with an empty environment.
    pub fn new(
        name: impl Into<String>,
        command: Vec<String>,
        materials: ArtifactMap,
        products: ArtifactMap,
        byproducts: Byproducts,
    ) -> Self {
        Link {
            type_: LinkTag,
            name: name.into(),
            command,
            materials,
            products,
            byproducts,
            environment: BTreeMap::new(),
        }
    }

    /// Python in-toto's shape checks: every artifact digest is a non-empty
    /// hex string.
    pub fn validate(&self) -> Result<()> {
        for (kind, map) in [("materials", &self.materials), ("products", &self.products)] {
            for (path, hashes) in map {
                for (alg, digest) in hashes {
                    if !is_hex(digest) {
                        return Err(Error::malformed(
                            "in-toto link",
                            format!("{kind}[{path:?}][{alg:?}] is not a hex digest"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hash `paths` (relative to `base`, `/`-separated) into an artifact map
/// keyed by those paths, with [`crate::hash::hash_relative`]: a directory
/// contributes each file under it, and absolute paths, `..`, symlinks and
/// special files are refused, so a link names exactly the bytes it vouches
/// for.
pub fn record_files<S: AsRef<str>>(base: &Path, paths: &[S]) -> Result<ArtifactMap> {
    Ok(hash_relative(base, paths, &HashOptions::files())?.artifacts())
}
