//! Final-product verification of a supply chain, in the order of Python
//! in-toto 3.1.0's `in_toto_verify`:
//!
//! 1. layout signatures by every trusted root key, and expiry
//!    ([`UnverifiedMetablock::verify_layout`]);
//! 2. per step, load `<step>.<keyid[:8]>.link` for each authorized key ID,
//!    in `pubkeys` order (a missing file is skipped, a malformed one fails);
//!    fewer files than the threshold fails;
//! 3. keep only links whose signature verifies with the layout's key for
//!    that key ID; fewer distinct functionaries than the threshold fails;
//! 4. warn (only) when a link's command differs from `expected_command`;
//! 5. with threshold > 1, all kept links of a step must report the same
//!    materials and products;
//! 6. each step's material and product rules run against the first kept
//!    link of every step ([`super::rules`]).
//!
//! Inspections and sublayouts are refused as unsupported (see
//! docs/intoto.md).

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::keys::PublicKey;
use crate::verified::Verified;

use super::layout::Layout;
use super::link::Link;
use super::link_file_name;
use super::metablock::{
    MetablockLimits, PayloadKind, UnverifiedMetablock, parse_metablock, sublayout_unsupported,
};
use super::rules::{ArtifactKind, verify_item_rules};

/// Where link files come from.
pub trait LinkSource {
    /// The bytes of link file `file_name`, or `None` if there is no such
    /// file. Must refuse files over `limits.max_bytes`.
    fn read_link(&self, file_name: &str, limits: &MetablockLimits) -> Result<Option<Vec<u8>>>;
}

/// Links in a directory (what `in-toto-verify --link-dir` reads).
impl LinkSource for Path {
    fn read_link(&self, file_name: &str, limits: &MetablockLimits) -> Result<Option<Vec<u8>>> {
        let path = self.join(file_name);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        // Read one byte past the limit, so an oversized file is refused by
        // the parser without ever being held in full.
        let cap = u64::try_from(limits.max_bytes)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut bytes = Vec::new();
        file.take(cap).read_to_end(&mut bytes).map_err(io)?;
        Ok(Some(bytes))
    }
}

/// Links held in memory, by file name.
impl LinkSource for BTreeMap<String, Vec<u8>> {
    fn read_link(&self, file_name: &str, _limits: &MetablockLimits) -> Result<Option<Vec<u8>>> {
        Ok(self.get(file_name).cloned())
    }
}

/// Options for [`verify_supply_chain`].
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The time the layout's expiry is checked against.
    pub now: DateTime<Utc>,
    /// Parser limits for the layout and every link.
    pub limits: MetablockLimits,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            now: Utc::now(),
            limits: MetablockLimits::default(),
        }
    }
}

/// Something worth telling the user that does not fail verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyWarning {
    /// A link's command differs from the step's `expected_command`
    /// (in-toto treats this as a warning only).
    CommandMismatch {
        /// Step name.
        step: String,
        /// Key ID of the link's functionary.
        keyid: String,
        /// The recorded command.
        command: Vec<String>,
        /// The expected command.
        expected: Vec<String>,
    },
    /// A link file was found but did not count for its step.
    SkippedLink {
        /// Step name.
        step: String,
        /// The link file.
        file: String,
        /// Why it was skipped.
        reason: String,
    },
}

impl fmt::Display for VerifyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyWarning::CommandMismatch {
                step,
                keyid,
                command,
                expected,
            } => write!(
                f,
                "step {step:?}: run command {command:?} (link by {keyid}) differs from expected command {expected:?}"
            ),
            VerifyWarning::SkippedLink { step, file, reason } => {
                write!(f, "step {step:?}: skipped link {file}: {reason}")
            }
        }
    }
}

/// The outcome of a successful supply-chain verification.
#[derive(Debug, Clone)]
pub struct ChainReport {
    /// The verified layout.
    pub layout: Layout,
    /// Per step, the link its artifact rules were checked against (the
    /// first counted link in `pubkeys` order).
    pub links: BTreeMap<String, Link>,
    /// Per step, the key IDs of the functionaries whose links counted.
    pub functionaries: BTreeMap<String, Vec<String>>,
    /// Warnings, in the order they arose.
    pub warnings: Vec<VerifyWarning>,
}

/// Verify the layout in `layout_bytes` with the trusted `root_keys` (each
/// must have signed it) and then the whole chain with links from `links`.
/// The result's signers are the root key IDs.
pub fn verify_supply_chain<L: LinkSource + ?Sized>(
    layout_bytes: &[u8],
    root_keys: &[PublicKey],
    links: &L,
    opts: &VerifyOptions,
) -> Result<Verified<ChainReport>> {
    let layout = parse_metablock(layout_bytes, &opts.limits)?.verify_layout(root_keys, opts.now)?;
    verify_chain(&layout, links, opts)
}

/// Verify the steps of an already verified layout against the links from
/// `links` (steps 2–6 of the module docs).
pub fn verify_chain<L: LinkSource + ?Sized>(
    layout: &Verified<Layout>,
    links: &L,
    opts: &VerifyOptions,
) -> Result<Verified<ChainReport>> {
    if !layout.inspect.is_empty() {
        let names: Vec<&str> = layout.inspect.iter().map(|i| i.name.as_str()).collect();
        return Err(Error::Unsupported(format!(
            "inspections are not supported (the layout defines {names:?}); \
             Veritrain never runs layout commands during verification"
        )));
    }
    let mut keys: BTreeMap<&str, PublicKey> = BTreeMap::new();
    for (keyid, key) in &layout.keys {
        keys.insert(keyid.as_str(), key.public_key()?);
    }

    let mut warnings = Vec::new();

    // Load: one candidate file per authorized key ID, in pubkeys order.
    let mut loaded: Vec<Vec<(&str, String, UnverifiedMetablock)>> = Vec::new();
    for step in &layout.steps {
        let mut candidates: Vec<(&str, String, UnverifiedMetablock)> = Vec::new();
        for keyid in &step.pubkeys {
            if candidates.iter().any(|(k, _, _)| k == keyid) {
                continue;
            }
            let file = link_file_name(&step.name, keyid);
            if let Some(bytes) = links.read_link(&file, &opts.limits)? {
                let block = parse_metablock(&bytes, &opts.limits)?;
                // Shape-check links on load, as in-toto does: a malformed
                // link file fails verification even if unsigned.
                if block.kind() == PayloadKind::Link {
                    block.link()?;
                }
                candidates.push((keyid, file, block));
            }
        }
        if below(candidates.len(), step.threshold) {
            return Err(Error::StepThreshold {
                step: step.name.clone(),
                detail: format!(
                    "Step '{}' requires '{}' link metadata file(s), found '{}'.",
                    step.name,
                    step.threshold,
                    candidates.len()
                ),
            });
        }
        loaded.push(candidates);
    }

    // Signatures: keep links validly signed by the authorized key they are
    // filed under; count distinct functionaries.
    let mut counted: Vec<Vec<(String, UnverifiedMetablock)>> = Vec::new();
    for (step, candidates) in layout.steps.iter().zip(loaded) {
        let mut kept = Vec::new();
        for (keyid, file, block) in candidates {
            let skip = |reason: String| VerifyWarning::SkippedLink {
                step: step.name.clone(),
                file: file.clone(),
                reason,
            };
            let Some(key) = keys.get(keyid) else {
                warnings.push(skip(format!(
                    "key ID {keyid} is authorized for the step but the layout does not list the key"
                )));
                continue;
            };
            if let Err(e) = block.verify_signature(key) {
                warnings.push(skip(format!("broken link signature: {e}")));
                continue;
            }
            kept.push((keyid.to_owned(), block));
        }
        if below(kept.len(), step.threshold) {
            return Err(Error::StepThreshold {
                step: step.name.clone(),
                detail: format!(
                    "Step '{}' requires at least '{}' links validly signed by different authorized functionaries. Only found '{}'",
                    step.name,
                    step.threshold,
                    kept.len()
                ),
            });
        }
        counted.push(kept);
    }

    // Sublayouts: a validly signed layout in place of a link is refused.
    let mut verified: Vec<Vec<(String, Link)>> = Vec::new();
    for (step, kept) in layout.steps.iter().zip(counted) {
        let mut step_links = Vec::new();
        for (keyid, block) in kept {
            if block.kind() == PayloadKind::Layout {
                return Err(sublayout_unsupported());
            }
            let key = keys
                .get(keyid.as_str())
                .ok_or_else(|| Error::Signature(format!("no key {keyid}")))?;
            let link = block.verify_link(key)?.into_inner();
            // Ours, not Python's: a link made for another step cannot be
            // replayed under this step's file name.
            if link.name != step.name {
                warnings.push(VerifyWarning::SkippedLink {
                    step: step.name.clone(),
                    file: link_file_name(&step.name, &keyid),
                    reason: format!("the link is for step {:?}", link.name),
                });
                continue;
            }
            step_links.push((keyid, link));
        }
        if below(step_links.len(), step.threshold) || step_links.is_empty() {
            // Also for threshold 0 or less: Python in-toto fails too, as it
            // has no link to check the step's rules against.
            return Err(Error::StepThreshold {
                step: step.name.clone(),
                detail: format!(
                    "Step '{}' requires at least '{}' links validly signed by different authorized functionaries. Only found '{}'",
                    step.name,
                    step.threshold.max(1),
                    step_links.len()
                ),
            });
        }
        verified.push(step_links);
    }

    // Command alignment: a warning only.
    for (step, step_links) in layout.steps.iter().zip(&verified) {
        for (keyid, link) in step_links {
            if link.command != step.expected_command {
                warnings.push(VerifyWarning::CommandMismatch {
                    step: step.name.clone(),
                    keyid: keyid.clone(),
                    command: link.command.clone(),
                    expected: step.expected_command.clone(),
                });
            }
        }
    }

    // Threshold constraints: functionaries of one step agree on artifacts.
    for (step, step_links) in layout.steps.iter().zip(&verified) {
        if step.threshold <= 1 {
            continue;
        }
        if let Some((ref_keyid, reference)) = step_links.first() {
            for (keyid, link) in step_links {
                if link.materials != reference.materials || link.products != reference.products {
                    return Err(Error::StepThreshold {
                        step: step.name.clone(),
                        detail: format!(
                            "Links '{}' and '{}' have different artifacts!",
                            link_file_name(&step.name, ref_keyid),
                            link_file_name(&step.name, keyid)
                        ),
                    });
                }
            }
        }
    }
    let counted: BTreeMap<String, Vec<(String, Link)>> = layout
        .steps
        .iter()
        .map(|s| s.name.clone())
        .zip(verified)
        .collect();

    let reduced: BTreeMap<String, Link> = counted
        .iter()
        .filter_map(|(step, kept)| kept.first().map(|(_, link)| (step.clone(), link.clone())))
        .collect();
    for step in &layout.steps {
        verify_item_rules(
            &step.name,
            ArtifactKind::Materials,
            &step.expected_materials,
            &reduced,
        )?;
        verify_item_rules(
            &step.name,
            ArtifactKind::Products,
            &step.expected_products,
            &reduced,
        )?;
    }

    let functionaries = counted
        .into_iter()
        .map(|(step, kept)| (step, kept.into_iter().map(|(k, _)| k).collect()))
        .collect();
    let report = ChainReport {
        layout: (**layout).clone(),
        links: reduced,
        functionaries,
        warnings,
    };
    Ok(Verified::new(report, layout.signers().to_vec()))
}

/// Fewer than `threshold`?
fn below(count: usize, threshold: i64) -> bool {
    i64::try_from(count).unwrap_or(i64::MAX) < threshold
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::intoto::test_support::*;
    use crate::intoto::{Inspection, Metablock, Step};
    use crate::keys::{Algorithm, PrivateKey, Signer};

    struct Fixture {
        root: PrivateKey,
        func: PrivateKey,
    }

    impl Fixture {
        fn new(alg: Algorithm) -> Self {
            Fixture {
                root: key(alg),
                func: key(alg),
            }
        }

        fn layout_file(&self, layout: Layout) -> Vec<u8> {
            signed_file(layout, &[&self.root])
        }

        fn verify(
            &self,
            layout: &[u8],
            links: &BTreeMap<String, Vec<u8>>,
        ) -> Result<Verified<ChainReport>> {
            verify_supply_chain(
                layout,
                &[self.root.public_key().clone()],
                links,
                &VerifyOptions::default(),
            )
        }
    }

    #[test]
    fn good_chain_verifies_for_both_algorithms_and_reports_what_counted() {
        for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
            let fx = Fixture::new(alg);
            let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(30)));
            let links = link_files(&[(intake_link(), &fx.func), (train_link(), &fx.func)]);
            let report = fx.verify(&layout, &links).unwrap();
            assert_eq!(report.signers(), [fx.root.public_key().keyid().to_owned()]);
            assert_eq!(report.links["run_training"], train_link());
            assert_eq!(
                report.functionaries["intake"],
                [fx.func.public_key().keyid().to_owned()]
            );
            assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        }
    }

    #[test]
    fn command_mismatch_is_only_a_warning() {
        let fx = Fixture::new(Algorithm::Ed25519);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut train = train_link();
        train.command = vec!["python".into(), "evil.py".into()];
        let links = link_files(&[(intake_link(), &fx.func), (train, &fx.func)]);
        let report = fx.verify(&layout, &links).unwrap();
        assert!(
            matches!(&report.warnings[..], [VerifyWarning::CommandMismatch { step, .. }] if step == "run_training")
        );
    }

    #[test]
    fn fail_expired_layout() {
        let fx = Fixture::new(Algorithm::EcdsaP256);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(-1)));
        let links = link_files(&[(intake_link(), &fx.func), (train_link(), &fx.func)]);
        assert_eq!(
            fx.verify(&layout, &links).unwrap_err().code(),
            "intoto.layout_expired"
        );
        // Expiry is inclusive: a layout is expired at its `expires` second.
        let layout = two_step_layout(&[&fx.func], 1, Duration::days(1));
        let at = layout.expires_at().unwrap();
        let block =
            crate::intoto::parse_metablock(&fx.layout_file(layout), &MetablockLimits::default())
                .unwrap();
        let root = [fx.root.public_key().clone()];
        assert!(
            block
                .verify_layout(&root, at - Duration::seconds(1))
                .is_ok()
        );
        assert_eq!(
            block.verify_layout(&root, at).unwrap_err().code(),
            "intoto.layout_expired"
        );
    }

    #[test]
    fn fail_layout_not_signed_by_every_root_key() {
        let fx = Fixture::new(Algorithm::Ed25519);
        let other = key(Algorithm::EcdsaP256);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let keys = [fx.root.public_key().clone(), other.public_key().clone()];
        let links = link_files(&[(intake_link(), &fx.func), (train_link(), &fx.func)]);
        let e = verify_supply_chain(&layout, &keys, &links, &VerifyOptions::default()).unwrap_err();
        assert!(e.to_string().contains("No signature found for key"), "{e}");
        // Signed by both: passes.
        let both = signed_file(
            two_step_layout(&[&fx.func], 1, Duration::days(1)),
            &[&fx.root, &other],
        );
        verify_supply_chain(&both, &keys, &links, &VerifyOptions::default()).unwrap();
        // No root key at all is refused, never vacuously true.
        assert!(verify_supply_chain(&both, &[], &links, &VerifyOptions::default()).is_err());
    }

    #[test]
    fn fail_link_signed_by_a_key_that_is_not_a_functionary() {
        let fx = Fixture::new(Algorithm::EcdsaP256);
        let intruder = key(Algorithm::EcdsaP256);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut links = link_files(&[(intake_link(), &fx.func)]);
        // Filed under the functionary's name, signed by the intruder.
        links.insert(
            link_file_name("run_training", fx.func.public_key().keyid()),
            signed_file(train_link(), &[&intruder]),
        );
        let e = fx.verify(&layout, &links).unwrap_err();
        assert_eq!(e.code(), "intoto.threshold");
        assert!(e.to_string().contains("Only found '0'"), "{e}");
        // Filed under its own name: never even loaded.
        let mut links = link_files(&[(intake_link(), &fx.func), (train_link(), &intruder)]);
        links.retain(|name, _| {
            !name.starts_with("run_training") || !name.contains(&fx.func.public_key().keyid()[..8])
        });
        let e = fx.verify(&layout, &links).unwrap_err();
        assert!(
            e.to_string()
                .contains("requires '1' link metadata file(s), found '0'"),
            "{e}"
        );
    }

    #[test]
    fn fail_extra_unlisted_product_signed_by_the_functionary() {
        let fx = Fixture::new(Algorithm::Ed25519);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut train = train_link();
        train.products.extend(art(&[("extra.sh", "ee55")]));
        let links = link_files(&[(intake_link(), &fx.func), (train, &fx.func)]);
        let e = fx.verify(&layout, &links).unwrap_err();
        assert_eq!(e.code(), "intoto.artifact_rule");
        assert!(
            e.to_string().contains("DISALLOW *") && e.to_string().contains("extra.sh"),
            "{e}"
        );
    }

    #[test]
    fn fail_product_changed_between_steps() {
        let fx = Fixture::new(Algorithm::EcdsaP256);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut train = train_link();
        train.materials = art(&[("dataset/data.csv", "bb23")]);
        let links = link_files(&[(intake_link(), &fx.func), (train, &fx.func)]);
        let e = fx.verify(&layout, &links).unwrap_err();
        assert_eq!(e.code(), "intoto.artifact_rule");
        assert!(
            e.to_string().contains("materials") && e.to_string().contains("dataset/data.csv"),
            "{e}"
        );
    }

    #[test]
    fn fail_tampered_link_bytes() {
        let fx = Fixture::new(Algorithm::EcdsaP256);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut links = link_files(&[(intake_link(), &fx.func), (train_link(), &fx.func)]);
        let name = link_file_name("intake", fx.func.public_key().keyid());
        let file = String::from_utf8(links[&name].clone())
            .unwrap()
            .replace("bb22", "bb23");
        links.insert(name, file.into_bytes());
        let e = fx.verify(&layout, &links).unwrap_err();
        assert!(e.to_string().contains("Only found '0'"), "{e}");
    }

    #[test]
    fn threshold_two_needs_two_functionaries_that_agree() {
        let fx = Fixture::new(Algorithm::Ed25519);
        let second = key(Algorithm::EcdsaP256);
        let layout = fx.layout_file(two_step_layout(&[&fx.func, &second], 2, Duration::days(1)));
        let both = link_files(&[
            (intake_link(), &fx.func),
            (intake_link(), &second),
            (train_link(), &fx.func),
            (train_link(), &second),
        ]);
        let report = fx.verify(&layout, &both).unwrap();
        assert_eq!(report.functionaries["intake"].len(), 2);

        let one = link_files(&[
            (intake_link(), &fx.func),
            (train_link(), &fx.func),
            (train_link(), &second),
        ]);
        let e = fx.verify(&layout, &one).unwrap_err();
        assert!(
            e.to_string()
                .contains("requires '2' link metadata file(s), found '1'"),
            "{e}"
        );

        let mut other = train_link();
        other
            .products
            .insert("model/weights.bin".into(), art(&[("x", "ff")])["x"].clone());
        let disagree = link_files(&[
            (intake_link(), &fx.func),
            (intake_link(), &second),
            (train_link(), &fx.func),
            (other, &second),
        ]);
        let e = fx.verify(&layout, &disagree).unwrap_err();
        assert!(e.to_string().contains("have different artifacts"), "{e}");

        // One functionary signing twice (two key IDs' files, same key) counts once.
        let dup = link_files(&[(intake_link(), &fx.func), (train_link(), &fx.func)]);
        let mut dup2 = dup.clone();
        for (name, bytes) in &dup {
            dup2.insert(
                name.replace(
                    &fx.func.public_key().keyid()[..8],
                    &second.public_key().keyid()[..8],
                ),
                bytes.clone(),
            );
        }
        let e = fx.verify(&layout, &dup2).unwrap_err();
        assert!(e.to_string().contains("Only found '1'"), "{e}");
    }

    #[test]
    fn link_made_for_another_step_does_not_count() {
        let fx = Fixture::new(Algorithm::Ed25519);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut links = link_files(&[(intake_link(), &fx.func)]);
        let mut replayed = intake_link();
        replayed.materials = art(&[("dataset/data.csv", "bb22")]);
        links.insert(
            link_file_name("run_training", fx.func.public_key().keyid()),
            signed_file(replayed, &[&fx.func]),
        );
        let e = fx.verify(&layout, &links).unwrap_err();
        assert_eq!(e.code(), "intoto.threshold");
    }

    #[test]
    fn only_the_first_signature_for_a_key_id_counts() {
        let fx = Fixture::new(Algorithm::Ed25519);
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut links = link_files(&[(intake_link(), &fx.func)]);
        let mut block = Metablock::signed_by(train_link(), &[&fx.func]).unwrap();
        let good = block.signatures[0].clone();
        let mut bad = good.clone();
        bad.sig = hex::encode(fx.func.sign(b"something else").unwrap());
        block.signatures = vec![bad, good];
        links.insert(block.file_name().unwrap(), block.to_json().unwrap());
        let e = fx.verify(&layout, &links).unwrap_err();
        assert!(e.to_string().contains("Only found '0'"), "{e}");
    }

    #[test]
    fn inspections_and_sublayouts_are_refused_as_unsupported() {
        let fx = Fixture::new(Algorithm::Ed25519);
        let mut layout = two_step_layout(&[&fx.func], 1, Duration::days(1));
        layout.inspect.push(Inspection {
            type_: Default::default(),
            name: "untar".into(),
            run: vec!["tar".into(), "xf".into(), "x.tar".into()],
            expected_materials: vec![],
            expected_products: vec![],
        });
        let links = link_files(&[(intake_link(), &fx.func), (train_link(), &fx.func)]);
        let e = fx.verify(&fx.layout_file(layout), &links).unwrap_err();
        assert_eq!(e.code(), "intoto.unsupported");
        assert!(
            e.to_string().contains("inspections are not supported"),
            "{e}"
        );

        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let mut links = link_files(&[(intake_link(), &fx.func)]);
        let sub = two_step_layout(&[&fx.func], 1, Duration::days(1));
        links.insert(
            link_file_name("run_training", fx.func.public_key().keyid()),
            signed_file(sub, &[&fx.func]),
        );
        let e = fx.verify(&layout, &links).unwrap_err();
        assert_eq!(e.code(), "intoto.unsupported");
        assert!(
            e.to_string().contains("sublayouts are not supported"),
            "{e}"
        );
    }

    #[test]
    fn malformed_documents_are_clear_errors() {
        let fx = Fixture::new(Algorithm::Ed25519);
        // A malformed rule, validly signed.
        let mut layout = two_step_layout(&[&fx.func], 1, Duration::days(1));
        layout.steps[0]
            .expected_materials
            .push(vec!["MATCH".into(), "*".into()]);
        let e = fx
            .verify(&fx.layout_file(layout), &BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.code(), "intoto.rule_format");
        // Duplicate step names.
        let mut layout = two_step_layout(&[&fx.func], 1, Duration::days(1));
        layout.steps.push(Step::new("intake"));
        let e = fx
            .verify(&fx.layout_file(layout), &BTreeMap::new())
            .unwrap_err();
        assert!(e.to_string().contains("Step names must be unique"), "{e}");
        // A step name that would leave the link directory.
        let mut layout = two_step_layout(&[&fx.func], 1, Duration::days(1));
        layout.steps[1].name = "../etc".into();
        assert_eq!(
            fx.verify(&fx.layout_file(layout), &BTreeMap::new())
                .unwrap_err()
                .code(),
            "format.malformed"
        );
        // An unknown field inside `signed`, validly signed: refused, not dropped.
        let mut value = serde_json::to_value(intake_link()).unwrap();
        value["sneaky"] = serde_json::json!("x");
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        let links = link_files(&[(train_link(), &fx.func)]);
        let mut links = links;
        links.insert(
            link_file_name("intake", fx.func.public_key().keyid()),
            signed_file(value, &[&fx.func]),
        );
        let e = fx.verify(&layout, &links).unwrap_err();
        assert!(e.to_string().contains("sneaky"), "{e}");
        // A DSSE envelope instead of a metablock.
        let e = crate::intoto::parse_metablock(
            br#"{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[]}"#,
            &MetablockLimits::default(),
        )
        .unwrap_err();
        assert_eq!(e.code(), "intoto.unsupported");
        // Too big.
        let big = vec![b' '; MetablockLimits::for_testing().max_bytes + 1];
        assert!(crate::intoto::parse_metablock(&big, &MetablockLimits::for_testing()).is_err());
    }

    #[test]
    fn links_are_read_from_a_directory() {
        let fx = Fixture::new(Algorithm::EcdsaP256);
        let dir = tempfile::tempdir().unwrap();
        let layout = fx.layout_file(two_step_layout(&[&fx.func], 1, Duration::days(1)));
        for link in [intake_link(), train_link()] {
            Metablock::signed_by(link, &[&fx.func])
                .unwrap()
                .write_to_dir(dir.path())
                .unwrap();
        }
        verify_supply_chain(
            &layout,
            &[fx.root.public_key().clone()],
            dir.path(),
            &VerifyOptions::default(),
        )
        .unwrap();
        // An oversized link file is refused without reading all of it.
        let opts = VerifyOptions {
            limits: MetablockLimits { max_bytes: 64 },
            ..VerifyOptions::default()
        };
        let layout_block = crate::intoto::parse_metablock(&layout, &MetablockLimits::default())
            .unwrap()
            .verify_layout(&[fx.root.public_key().clone()], opts.now)
            .unwrap();
        assert!(verify_chain(&layout_block, dir.path(), &opts).is_err());
    }
}
