//! The one in-toto layout that serves every job.
//!
//! The root key signs it at `keys init`, at every rotation and revocation
//! (`veritrain keys layout` re-signs it on demand), never per job, so the
//! root key can stay offline. It names the key set's active signing keys as
//! the functionaries of both steps and uses the bundle's fixed paths:
//!
//! - `intake` has no materials (`DISALLOW *`) and creates exactly the four
//!   inputs;
//! - `run_training`'s materials must MATCH the products of `intake`, and it
//!   creates exactly the four outputs.
//!
//! Every rule list ends with `DISALLOW *`, so an artifact no rule expects
//! fails verification (the prior art's rules matched nothing).

use chrono::{DateTime, Duration, Utc};
use veritrain_attest::Verified;
use veritrain_attest::intoto::{Layout, LayoutBuilder, Metablock, Step};
use veritrain_attest::keys::Signer;
use veritrain_attest::keyset::{KeySet, KeyStatus};

use crate::bundle::{
    INPUT_DATA_PREFIX, INPUT_DEFINITION, INPUT_JOB, INPUT_MODEL, OUTPUTS, STEP_INTAKE, STEP_TRAIN,
};
use crate::error::{Error, Result};

/// How long a layout is valid by default.
pub const DEFAULT_VALIDITY_DAYS: i64 = 365;

/// The command recorded for (and expected of) the intake step.
pub fn intake_command() -> Vec<String> {
    vec!["veritrain".into(), "intake".into()]
}

/// The command recorded for (and expected of) the training step: the
/// trainer as it runs inside the sandbox.
pub fn train_command() -> Vec<String> {
    let cmd = veritrain_runtime::TrainerCommand::new(&veritrain_runtime::TrainerPaths::sandboxed());
    std::iter::once(cmd.program.to_string_lossy().into_owned())
        .chain(cmd.args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect()
}

/// Build the layout for `keyset`'s active keys, valid until `expires`.
///
/// # Errors
/// `keys.no_active_key` when the key set has no active signing key.
pub fn job_layout(keyset: &KeySet, expires: DateTime<Utc>) -> Result<Layout> {
    let mut builder = LayoutBuilder::new(expires).readme(format!(
        "Veritrain training job. Functionaries: the active signing keys of key set version {}. \
         Run in a bundle: in-toto-verify --layout attestations/root.layout \
         --verification-keys trust/root.pub --link-dir attestations",
        keyset.version
    ));
    let mut keyids = Vec::new();
    for entry in keyset.keys.iter().filter(|e| e.status == KeyStatus::Active) {
        keyids.push(builder.add_key(&entry.public_key()?)?);
    }
    if keyids.is_empty() {
        return Err(Error::keys(
            "keys.no_active_key",
            "the key set has no active signing key; run `veritrain keys rotate`",
        ));
    }
    let data = format!("{INPUT_DATA_PREFIX}*");
    let mut intake = Step::new(STEP_INTAKE)
        .threshold(1)
        .expected_command(crate::layout::intake_command())
        .material_rule("DISALLOW *");
    for path in [INPUT_MODEL, INPUT_DEFINITION, INPUT_JOB] {
        intake = intake.product_rule(&format!("REQUIRE {path}"));
    }
    for path in [INPUT_MODEL, INPUT_DEFINITION, INPUT_JOB, data.as_str()] {
        intake = intake.product_rule(&format!("CREATE {path}"));
    }
    intake = intake.product_rule("DISALLOW *");

    let mut train = Step::new(STEP_TRAIN)
        .threshold(1)
        .expected_command(train_command())
        .material_rule(&format!("MATCH inputs/* WITH PRODUCTS FROM {STEP_INTAKE}"))
        .material_rule("DISALLOW *");
    for path in OUTPUTS {
        train = train.product_rule(&format!("REQUIRE {path}"));
    }
    for path in OUTPUTS {
        train = train.product_rule(&format!("CREATE {path}"));
    }
    train = train.product_rule("DISALLOW *");

    for keyid in &keyids {
        intake = intake.functionary(keyid.clone());
        train = train.functionary(keyid.clone());
    }
    Ok(builder.step(intake).step(train).build()?)
}

/// Sign the layout for `keyset` with the root key, valid for `days` from
/// `now`; the metablock's JSON bytes.
///
/// # Errors
/// As [`job_layout`], and signing errors.
pub fn sign_job_layout(
    keyset: &Verified<KeySet>,
    root: &dyn Signer,
    now: DateTime<Utc>,
    days: i64,
) -> Result<Vec<u8>> {
    if !(1..=3650).contains(&days) {
        return Err(Error::keys(
            "keys.layout_validity",
            format!("a layout must be valid for 1 to 3650 days, not {days}"),
        ));
    }
    let layout = job_layout(keyset, now + Duration::days(days))?;
    Ok(Metablock::signed_by(layout, &[root])?.to_json()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use veritrain_attest::keys::{Algorithm, PrivateKey};

    use super::*;

    #[test]
    fn the_layout_names_only_active_keys_and_every_rule_list_ends_with_disallow() {
        let now = Utc::now();
        let k1 = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let k2 = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let ks = KeySet::new(k1.public_key(), now)
            .unwrap()
            .rotate(k2.public_key(), now + Duration::seconds(5))
            .unwrap();
        let layout = job_layout(&ks, now + Duration::days(1)).unwrap();
        assert_eq!(layout.keys.len(), 1);
        assert!(layout.keys.contains_key(k2.public_key().keyid()));
        for step in &layout.steps {
            assert_eq!(step.pubkeys, [k2.public_key().keyid().to_owned()]);
            assert_eq!(step.threshold, 1);
            for rules in [&step.expected_materials, &step.expected_products] {
                assert_eq!(rules.last().unwrap(), &["DISALLOW", "*"]);
            }
        }
        assert_eq!(layout.steps[0].expected_materials, [["DISALLOW", "*"]]);
    }

    #[test]
    fn a_key_set_without_an_active_key_has_no_layout() {
        let now = Utc::now();
        let k1 = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
        let ks = KeySet::new(k1.public_key(), now)
            .unwrap()
            .revoke(
                k1.public_key().keyid(),
                now,
                None,
                now + Duration::seconds(1),
            )
            .unwrap();
        let e = job_layout(&ks, now + Duration::days(1)).unwrap_err();
        assert_eq!(e.code(), "keys.no_active_key");
    }
}
