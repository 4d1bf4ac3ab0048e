//! in-toto v0.9 metadata: layouts and links in signed metablocks, and the
//! full final-product verification algorithm, compatible with Python
//! in-toto 3.1.0 (`in-toto-verify`) in both directions.
//!
//! Where it sits: the service signs a [`Layout`] with the root key that
//! describes a training job's steps (`intake`, `run_training`, ...); each
//! step's worker records a [`Link`] of what it used and made, signed by its
//! functionary key. An auditor verifies the chain offline with
//! [`verify_supply_chain`], or with Python's `in-toto-verify`.
//!
//! - [`metablock`]: signing, files, and parsing untrusted bytes into an
//!   [`UnverifiedMetablock`] whose payload is only reachable through
//!   verification (never by re-serializing a typed model);
//! - [`layout`], [`link`]: the typed documents and producer builders;
//! - [`rules`]: artifact rules and the queue-based rule engine;
//! - [`fnmatch`]: Python `fnmatch` pattern semantics;
//! - [`verify`]: the chain verification.
//!
//! Unsupported, with a clear [`crate::Error::Unsupported`]: inspections,
//! sublayouts, DSSE-enveloped links, GPG keys. See docs/intoto.md.

pub mod fnmatch;
pub mod layout;
pub mod link;
pub mod metablock;
pub mod rules;
pub mod verify;

pub use layout::{Inspection, Layout, LayoutBuilder, LayoutKey, Step};
pub use link::{ArtifactMap, Byproducts, Link, record_files};
pub use metablock::{
    Metablock, MetablockLimits, PayloadKind, Signature, UnverifiedMetablock, parse_metablock,
};
pub use rules::{ArtifactKind, ArtifactRule};
pub use verify::{
    ChainReport, LinkSource, VerifyOptions, VerifyWarning, verify_chain, verify_supply_chain,
};

/// The file name in-toto gives a link: `<step>.<first 8 characters of the
/// key ID>.link`.
pub fn link_file_name(step: &str, keyid: &str) -> String {
    let prefix: String = keyid.chars().take(8).collect();
    format!("{step}.{prefix}.link")
}

/// The file name we give a root layout.
pub const ROOT_LAYOUT_FILE: &str = "root.layout";

#[cfg(test)]
pub(crate) mod test_support {
    //! Small in-memory supply chains for the unit and property tests.

    use std::collections::BTreeMap;

    use chrono::{Duration, Utc};

    use super::*;
    use crate::keys::{Algorithm, PrivateKey, Signer};

    pub fn art(pairs: &[(&str, &str)]) -> ArtifactMap {
        pairs
            .iter()
            .map(|(p, h)| {
                (
                    p.to_string(),
                    BTreeMap::from([("sha256".to_string(), h.to_string())]),
                )
            })
            .collect()
    }

    pub fn key(alg: Algorithm) -> PrivateKey {
        PrivateKey::generate(alg).unwrap()
    }

    /// `intake` → `run_training`, the chain of the issue.
    pub fn two_step_layout(
        functionaries: &[&PrivateKey],
        threshold: i64,
        valid_for: Duration,
    ) -> Layout {
        let mut b = LayoutBuilder::new(Utc::now() + valid_for).readme("two steps");
        let ids: Vec<String> = functionaries
            .iter()
            .map(|k| b.add_key(k.public_key()).unwrap())
            .collect();
        let mut intake = Step::new("intake")
            .threshold(threshold)
            .expected_command(["veritrain", "intake"])
            .material_rule("ALLOW upload/*")
            .material_rule("DISALLOW *")
            .product_rule("CREATE dataset/*")
            .product_rule("DISALLOW *");
        let mut train = Step::new("run_training")
            .threshold(threshold)
            .expected_command(["veritrain", "train"])
            .material_rule("MATCH * WITH PRODUCTS FROM intake")
            .material_rule("DISALLOW *")
            .product_rule("REQUIRE model/weights.bin")
            .product_rule("CREATE model/*")
            .product_rule("DISALLOW *");
        for id in &ids {
            intake = intake.functionary(id.clone());
            train = train.functionary(id.clone());
        }
        b.step(intake).step(train).build().unwrap()
    }

    pub fn intake_link() -> Link {
        Link::new(
            "intake",
            vec!["veritrain".into(), "intake".into()],
            art(&[("upload/data.csv", "aa11")]),
            art(&[("dataset/data.csv", "bb22")]),
            Byproducts::from_run("rows:\t3\nC:\\data\\new\ncafé ✓ 日本\u{1b}", "", 0),
        )
    }

    pub fn train_link() -> Link {
        Link::new(
            "run_training",
            vec!["veritrain".into(), "train".into()],
            art(&[("dataset/data.csv", "bb22")]),
            art(&[
                ("model/weights.bin", "cc33"),
                ("model/metrics.json", "dd44"),
            ]),
            Byproducts::from_run("epoch 1\tloss 0.5\n", "warn: \\path", 0),
        )
    }

    pub fn signed_file<T: serde::Serialize>(doc: T, signers: &[&dyn Signer]) -> Vec<u8> {
        Metablock::signed_by(doc, signers)
            .unwrap()
            .to_json()
            .unwrap()
    }

    /// Link files by name for `links`, each signed by `signer`.
    pub fn link_files(links: &[(Link, &PrivateKey)]) -> BTreeMap<String, Vec<u8>> {
        links
            .iter()
            .map(|(link, k)| {
                (
                    link_file_name(&link.name, k.public_key().keyid()),
                    signed_file(link.clone(), &[*k]),
                )
            })
            .collect()
    }
}
