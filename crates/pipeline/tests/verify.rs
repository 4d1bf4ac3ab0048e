//! Fast tier: the offline verifier ([`verify_bundle`]) on real bundles made
//! in-process by the production job ([`veritrain_pipeline::testing`]: the
//! real intake, hashing, links, provenance and AIBoM; only the trainer is
//! fake), so that no case here needs root, bubblewrap or TensorFlow.
//!
//! - the untouched bundle passes, and every check says so;
//! - every file flipped, truncated or deleted, an extra file, another job's
//!   copy of an attestation, another key directory's trust material: each
//!   fails and a failure's `file` names the culprit;
//! - links and envelopes re-signed by a key outside the key set, an unsigned
//!   key set, a retired key used after its retirement, a rolled-back
//!   `--keyset`;
//! - pinning: a stranger's complete bundle fails against the real root, and
//!   any bundle fails unpinned with `verify.root_not_pinned`;
//! - the layout: an equally valid re-signed layout is named, and its expiry
//!   is judged at the signing time;
//! - `--artifact`: the model, the CSV dataset, a stranger file;
//! - checks that cannot run are `not_run`, not failures.
//!
//! The slow tier (`tests/e2e_bundle.rs`) repeats the matrix on real trained
//! bundles through the binary.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use veritrain_attest::keys::{Algorithm, PrivateKey};
use veritrain_pipeline::testing::{
    TestKeys, build_bundle, bundle_files, copy_dir, quickstart, resign_envelope, resign_metablock,
    sign_payload,
};
use veritrain_pipeline::{
    BundleOptions, CheckStatus, HeldArtifact, ROOT_NOT_PINNED, Report, verify_bundle,
};

const LAYOUT: &str = "attestations/root.layout";
const PROVENANCE: &str = "attestations/provenance.dsse.json";
const AIBOM: &str = "aibom.cdx.json";
const AIBOM_ENVELOPE: &str = "attestations/aibom.dsse.json";
const MANIFEST: &str = "attestations/dataset.manifest.dsse.json";
const KEYSET: &str = "trust/keyset.dsse.json";
const ROOT_PUB: &str = "trust/root.pub";

/// A bundle made once with `keys`, copied by the tests that change it.
struct Made {
    _dir: tempfile::TempDir,
    keys: TestKeys,
    bundle: PathBuf,
}

/// Keys whose signing key has been valid for ten days, and a layout signed
/// yesterday for 30 days.
fn made(keys: TestKeys) -> Made {
    made_with_layout_from(keys, Utc::now() - Duration::days(1))
}

/// As [`made`], with the layout signed at `layout_from`.
fn made_with_layout_from(keys: TestKeys, layout_from: DateTime<Utc>) -> Made {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    let job_keys = keys.job_keys(layout_from, 30).unwrap();
    build_bundle(&bundle, &job_keys).unwrap();
    Made {
        _dir: dir,
        keys,
        bundle,
    }
}

fn fresh_keys() -> TestKeys {
    TestKeys::generate(Utc::now() - Duration::days(10)).unwrap()
}

/// Job A and job B under the same keys, and job C under another key
/// directory (root and signing key).
fn a() -> &'static Made {
    static A: OnceLock<Made> = OnceLock::new();
    A.get_or_init(|| made(fresh_keys()))
}

fn b() -> &'static Made {
    static B: OnceLock<Made> = OnceLock::new();
    B.get_or_init(|| {
        let keys = &a().keys;
        let same = TestKeys {
            root: PrivateKey::from_pem(&keys.root.to_pkcs8_pem().unwrap()).unwrap(),
            signing: PrivateKey::from_pem(&keys.signing.to_pkcs8_pem().unwrap()).unwrap(),
            since: keys.since,
        };
        // Job B must differ from job A in everything that names a job or a
        // time: its documents carry times to the second (the dataset
        // manifest's `created`), and its layout is signed at another time.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        made_with_layout_from(same, Utc::now() - Duration::days(2))
    })
}

fn c() -> &'static Made {
    static C: OnceLock<Made> = OnceLock::new();
    C.get_or_init(|| made(fresh_keys()))
}

fn pinned(keys: &TestKeys) -> BundleOptions {
    BundleOptions {
        root: Some(keys.root.public_key().clone()),
        ..BundleOptions::default()
    }
}

fn verify(bundle: &Path) -> Report {
    verify_bundle(bundle, &pinned(&a().keys))
}

/// A scratch copy of job A's bundle.
fn copy_of_a() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("bundle");
    copy_dir(&a().bundle, &copy);
    (dir, copy)
}

fn link_file(bundle: &Path, step: &str) -> String {
    bundle_files(bundle)
        .into_iter()
        .find(|f| f.starts_with(&format!("attestations/{step}.")) && f.ends_with(".link"))
        .unwrap()
}

fn check<'a>(report: &'a Report, id: &str) -> &'a veritrain_pipeline::Check {
    report.checks.iter().find(|c| c.id == id).unwrap()
}

/// Whether a failure's `file` is `culprit` (exactly, or one of a `", "`
/// list where two files disagree).
fn names(report: &Report, culprit: &str) -> bool {
    report
        .failures()
        .any(|(_, f)| f.file.split(", ").any(|part| part == culprit))
}

#[track_caller]
fn assert_passes(report: &Report) {
    assert!(report.passed(), "{report:#?}");
    for c in &report.checks {
        assert_eq!(c.status, CheckStatus::Passed, "{}: {report:#?}", c.id);
        assert!(c.ok && c.failures.is_empty() && c.needs.is_none(), "{c:#?}");
    }
}

#[track_caller]
fn assert_fails_naming(report: &Report, culprit: &str, case: &str) {
    assert!(!report.passed(), "{case}: passed");
    assert!(
        names(report, culprit),
        "{case}: no failure's file is {culprit}: {report:#?}"
    );
}

// ----- re-signing, as an attacker (or a test) with some key would ---------------

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The provenance re-dated to finish at `finished`, signed by `key`.
fn redate_provenance(bundle: &Path, finished: DateTime<Utc>, key: &PrivateKey) {
    let path = bundle.join(PROVENANCE);
    let env: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(env["payload"].as_str().unwrap())
        .unwrap();
    let mut statement: Value = serde_json::from_slice(&payload).unwrap();
    let metadata = &mut statement["predicate"]["runDetails"]["metadata"];
    metadata["startedOn"] = rfc3339(finished - Duration::minutes(1)).into();
    metadata["finishedOn"] = rfc3339(finished).into();
    sign_payload(
        &path,
        env["payloadType"].as_str().unwrap(),
        &serde_json::to_vec(&statement).unwrap(),
        key,
    );
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

/// Point the AIBoM's attestation references at the files now in the
/// bundle and sign it again with `key`: what a job that really carried
/// these files would have signed.
fn reseal_aibom(bundle: &Path, key: &PrivateKey) {
    fn walk(v: &mut Value, bundle: &Path) {
        match v {
            Value::Object(map) => {
                if let Some(url) = map.get("url").and_then(Value::as_str).map(str::to_owned)
                    && !url.contains("://")
                    && bundle.join(&url).is_file()
                    && let Some(hashes) = map.get_mut("hashes").and_then(Value::as_array_mut)
                {
                    for h in hashes {
                        if h["alg"] == "SHA-256" {
                            h["content"] = sha256_file(&bundle.join(&url)).into();
                        }
                    }
                }
                for child in map.values_mut() {
                    walk(child, bundle);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, bundle)),
            _ => {}
        }
    }
    let mut bom: Value = serde_json::from_slice(&fs::read(bundle.join(AIBOM)).unwrap()).unwrap();
    walk(&mut bom, bundle);
    let bytes = serde_json::to_vec_pretty(&bom).unwrap();
    fs::write(bundle.join(AIBOM), &bytes).unwrap();
    let model = sha256_file(&bundle.join("outputs/model.keras"));
    let env = veritrain_bom::sign_bom(&bytes, &model, "outputs/model.keras", key).unwrap();
    fs::write(bundle.join(AIBOM_ENVELOPE), env.to_json_pretty().unwrap()).unwrap();
}

// ----- the untouched bundle --------------------------------------------------------

#[test]
fn the_untouched_bundle_passes_every_check_against_the_pinned_root() {
    let report = verify(&a().bundle);
    assert_passes(&report);
    let ids: Vec<&str> = report.checks.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "keyset",
            "layout",
            "links",
            "files",
            "provenance",
            "aibom",
            "manifest",
            "consistency"
        ]
    );
    assert!(report.root_pinned);
    assert_eq!(
        report.root_keyid.as_deref(),
        Some(a().keys.root.public_key().keyid())
    );
    assert!(report.job_id.as_deref().unwrap().starts_with("job-"));
    assert!(report.signing_time.is_some());
    let layout = &check(&report, "layout").details.join("\n");
    assert!(
        layout.contains("expiry judged at the signing time"),
        "{layout}"
    );
    assert!(layout.contains("still valid today"), "{layout}");
    // The JSON shape: a status per check, `ok` kept for older readers.
    let json = serde_json::to_value(&report).unwrap();
    for c in json["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "passed");
        assert_eq!(c["ok"], true);
        assert!(c.get("needs").is_none(), "{c}");
    }
}

// ----- the tamper matrix -------------------------------------------------------------

#[test]
fn every_file_flipped_truncated_or_deleted_fails_and_a_failure_names_it() {
    let files = bundle_files(&a().bundle);
    assert_eq!(files.len(), 17, "{files:#?}");
    for file in &files {
        for tamper in ["flip", "truncate", "delete"] {
            let case = format!("{tamper} {file}");
            let (_dir, copy) = copy_of_a();
            let target = copy.join(file);
            let original = fs::read(&target).unwrap();
            match tamper {
                "flip" => {
                    let mut bytes = original.clone();
                    let i = bytes.len() / 2;
                    bytes[i] ^= 0x01;
                    fs::write(&target, bytes).unwrap();
                }
                "truncate" => fs::write(&target, &original[..original.len() / 2]).unwrap(),
                _ => fs::remove_file(&target).unwrap(),
            }
            assert_fails_naming(&verify(&copy), file, &case);
        }
    }
}

#[test]
fn an_extra_file_fails_naming_it() {
    let (_dir, copy) = copy_of_a();
    fs::write(copy.join("outputs/backdoor.py"), b"print('hi')\n").unwrap();
    let report = verify(&copy);
    assert_fails_naming(&report, "outputs/backdoor.py", "extra file");
    assert_eq!(check(&report, "files").status, CheckStatus::Failed);
}

#[test]
fn another_jobs_copy_of_an_attestation_fails_naming_it() {
    let a_files = bundle_files(&a().bundle);
    let mut replaced = Vec::new();
    for file in bundle_files(&b().bundle) {
        let original = fs::read(a().bundle.join(&file)).ok();
        let other = fs::read(b().bundle.join(&file)).unwrap();
        // Same inputs and the same fake trainer: only what names the job
        // (its ID, its times) differs; the key set and root are shared.
        if original.as_deref() == Some(other.as_slice()) || !a_files.contains(&file) {
            continue;
        }
        let (_dir, copy) = copy_of_a();
        fs::write(copy.join(&file), &other).unwrap();
        assert_fails_naming(&verify(&copy), &file, &format!("job B's {file}"));
        replaced.push(file);
    }
    // Both links, the provenance, the AIBoM and its envelope, the manifest,
    // and the layout (signed by the same root at another time for job B).
    assert_eq!(replaced.len(), 7, "{replaced:?}");
}

#[test]
fn another_key_directorys_trust_material_or_layout_fails_naming_it() {
    // The three files one key directory shares across its jobs, from a
    // job made with other keys.
    for file in [LAYOUT, KEYSET, ROOT_PUB] {
        let (_dir, copy) = copy_of_a();
        fs::copy(c().bundle.join(file), copy.join(file)).unwrap();
        assert_fails_naming(&verify(&copy), file, &format!("foreign {file}"));
    }
}

#[test]
fn links_and_envelopes_re_signed_by_a_key_outside_the_key_set_fail_naming_them() {
    let stranger = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let bundle = &a().bundle;
    for file in [
        link_file(bundle, "intake"),
        link_file(bundle, "run_training"),
        PROVENANCE.to_owned(),
        AIBOM_ENVELOPE.to_owned(),
        MANIFEST.to_owned(),
    ] {
        let (_dir, copy) = copy_of_a();
        if file.ends_with(".link") {
            resign_metablock(&copy.join(&file), &stranger);
        } else {
            resign_envelope(&copy.join(&file), &stranger);
        }
        assert_fails_naming(&verify(&copy), &file, &format!("re-signed {file}"));
    }
}

#[test]
fn an_unsigned_key_set_or_one_another_root_signed_fails_naming_it() {
    let (_dir, copy) = copy_of_a();
    let path = copy.join(KEYSET);
    let mut env: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    env["signatures"] = serde_json::json!([]);
    fs::write(&path, serde_json::to_vec(&env).unwrap()).unwrap();
    let report = verify(&copy);
    assert_fails_naming(&report, KEYSET, "unsigned key set");

    let (_dir, copy) = copy_of_a();
    let other_root = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    resign_envelope(&copy.join(KEYSET), &other_root);
    assert_fails_naming(&verify(&copy), KEYSET, "key set signed by another root");
}

// ----- pinning -------------------------------------------------------------------------

#[test]
fn without_a_pinned_root_the_key_set_check_fails_but_the_others_still_run() {
    let report = verify_bundle(&a().bundle, &BundleOptions::default());
    assert!(!report.passed());
    assert!(!report.root_pinned);
    let keyset = check(&report, "keyset");
    assert_eq!(keyset.status, CheckStatus::Failed);
    assert_eq!(keyset.failures.len(), 1, "{keyset:#?}");
    let failure = &keyset.failures[0];
    assert_eq!(failure.file, ROOT_PUB);
    assert_eq!(failure.code.as_deref(), Some(ROOT_NOT_PINNED));
    let keyid = a().keys.root.public_key().keyid();
    // The fingerprint the web UI's Trust page shows: SHA-256 of the DER.
    let pem = a().keys.root_pem().unwrap();
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let fingerprint = hex::encode(Sha256::digest(der));
    for needle in [
        keyid,
        fingerprint.as_str(),
        "--root-key",
        "VERITRAIN_ROOT_KEY",
        "out of band",
    ] {
        assert!(
            failure.message.contains(needle),
            "{needle}: {}",
            failure.message
        );
    }
    // Everything else ran against the bundle's own root, and passed.
    for c in report.checks.iter().filter(|c| c.id != "keyset") {
        assert_eq!(c.status, CheckStatus::Passed, "{c:#?}");
    }
}

#[test]
fn a_strangers_complete_bundle_fails_against_the_pinned_root_and_unpinned() {
    // A bundle whose trust/root.pub, key set, layout and every signature are
    // a stranger's (job C: other keys, same inputs) is consistent in itself.
    let stranger = &c().bundle;
    let report = verify(stranger);
    assert_fails_naming(&report, ROOT_PUB, "stranger, pinned");
    assert_fails_naming(&report, KEYSET, "stranger, pinned");
    // Nothing downstream of the key set is blamed; it could not run.
    for c in report.checks.iter().filter(|c| c.id != "keyset") {
        assert_eq!(c.status, CheckStatus::NotRun, "{c:#?}");
        assert!(c.failures.is_empty(), "{c:#?}");
    }
    // Unpinned it fails too, with the not-pinned code, and only with it.
    let report = verify_bundle(stranger, &BundleOptions::default());
    let failures: Vec<_> = report.failures().collect();
    assert_eq!(failures.len(), 1, "{report:#?}");
    assert_eq!(failures[0].1.code.as_deref(), Some(ROOT_NOT_PINNED));
    assert_eq!(failures[0].1.file, ROOT_PUB);
    assert!(
        failures[0]
            .1
            .message
            .contains(c().keys.root.public_key().keyid()),
        "{report:#?}"
    );
}

// ----- key life cycle ----------------------------------------------------------------

/// The signing key rotated out after job A, as `keys rotate` would: the
/// next key set version, signed by the root.
fn rotated_keyset() -> (Vec<u8>, PrivateKey) {
    let keys = &a().keys;
    let next = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let bytes = keys
        .keyset()
        .unwrap()
        .rotate(next.public_key(), Utc::now())
        .unwrap()
        .sign(&keys.root)
        .unwrap()
        .to_json_pretty()
        .unwrap();
    (bytes, next)
}

#[test]
fn a_retired_key_verifies_what_it_signed_before_but_not_after_its_retirement() {
    let (rotated, _) = rotated_keyset();
    let (_dir, copy) = copy_of_a();
    fs::write(copy.join(KEYSET), &rotated).unwrap();
    assert_passes(&verify(&copy));

    // The retired key signs a provenance dated after its retirement.
    redate_provenance(&copy, Utc::now() + Duration::minutes(5), &a().keys.signing);
    let report = verify(&copy);
    assert_fails_naming(&report, PROVENANCE, "retired key");
    let provenance = check(&report, "provenance");
    assert!(
        provenance
            .failures
            .iter()
            .any(|f| f.file == PROVENANCE && f.message.contains("retired")),
        "{provenance:#?}"
    );
}

#[test]
fn a_key_set_given_with_keyset_that_is_older_than_the_bundles_is_refused() {
    let (rotated, _) = rotated_keyset();
    let (_dir, copy) = copy_of_a();
    fs::write(copy.join(KEYSET), &rotated).unwrap();
    let v1 = fs::read(a().bundle.join(KEYSET)).unwrap();
    let report = verify_bundle(
        &copy,
        &BundleOptions {
            keyset: Some(v1),
            ..pinned(&a().keys)
        },
    );
    assert_fails_naming(&report, "--keyset", "rolled-back key set");
    let failure = report
        .failures()
        .find(|(_, f)| f.file == "--keyset")
        .unwrap()
        .1;
    assert_eq!(failure.code.as_deref(), Some("verify.keyset_rollback"));
    assert!(
        failure.message.contains("older than the bundle's"),
        "{failure:?}"
    );
    // The newer one is accepted.
    let report = verify_bundle(
        &a().bundle,
        &BundleOptions {
            keyset: Some(rotated),
            ..pinned(&a().keys)
        },
    );
    assert_passes(&report);
}

// ----- the layout ----------------------------------------------------------------------

#[test]
fn an_equally_valid_layout_that_is_not_the_jobs_fails_naming_the_layout() {
    // Re-signed by the root for the same key set (same functionaries,
    // another expiry), as `veritrain keys layout` does: every signature
    // holds, only the AIBoM's reference tells it from the job's own.
    let keys = &a().keys;
    let resigned = keys.job_keys(Utc::now(), 7).unwrap().layout_bytes;
    let (_dir, copy) = copy_of_a();
    fs::write(copy.join(LAYOUT), resigned).unwrap();
    let report = verify(&copy);
    assert_eq!(check(&report, "layout").status, CheckStatus::Passed);
    assert_eq!(check(&report, "links").status, CheckStatus::Passed);
    assert_fails_naming(&report, LAYOUT, "re-signed layout");
    let consistency = check(&report, "consistency");
    assert_eq!(consistency.failures.len(), 1, "{consistency:#?}");
    assert_eq!(
        consistency.failures[0].code.as_deref(),
        Some("verify.reference_mismatch")
    );
}

#[test]
fn a_layout_naming_other_keys_is_named_even_though_the_links_fail() {
    // The layout signed after a rotation names only the new key; in the old
    // bundle the links then fail, and the AIBoM's reference still names the
    // layout as the culprit.
    let (rotated, _) = rotated_keyset();
    let keys = &a().keys;
    let ks = veritrain_attest::keyset::verify_keyset(
        &rotated,
        keys.root.public_key(),
        &veritrain_attest::dsse::Limits::default(),
    )
    .unwrap();
    let layout =
        veritrain_pipeline::layout::sign_job_layout(&ks, &keys.root, Utc::now(), 30).unwrap();
    let (_dir, copy) = copy_of_a();
    fs::write(copy.join(KEYSET), &rotated).unwrap();
    fs::write(copy.join(LAYOUT), layout).unwrap();
    let report = verify(&copy);
    assert_eq!(check(&report, "links").status, CheckStatus::Failed);
    assert!(
        check(&report, "consistency")
            .failures
            .iter()
            .any(|f| f.file == LAYOUT),
        "{report:#?}"
    );
}

/// Job A's report when its layout was signed `signed_days_ago` for one
/// day and the job finished four days ago (provenance re-dated, AIBoM
/// re-sealed, both by A's signing key).
fn verify_with_one_day_layout_signed(signed_days_ago: i64) -> Report {
    let keys = &a().keys;
    let (_dir, copy) = copy_of_a();
    let layout = keys
        .job_keys(Utc::now() - Duration::days(signed_days_ago), 1)
        .unwrap()
        .layout_bytes;
    fs::write(copy.join(LAYOUT), layout).unwrap();
    redate_provenance(&copy, Utc::now() - Duration::days(4), &keys.signing);
    reseal_aibom(&copy, &keys.signing);
    verify(&copy)
}

#[test]
fn a_layout_that_expired_after_the_job_passes_and_says_so() {
    // Signed three days ago for one day; the job finished four days ago.
    let report = verify_with_one_day_layout_signed(3);
    assert_passes(&report);
    let details = check(&report, "layout").details.join("\n");
    assert!(
        details.contains("expiry judged at the signing time"),
        "{details}"
    );
    assert!(details.contains("it has expired since"), "{details}");
}

#[test]
fn a_layout_that_had_expired_before_the_job_finished_fails_naming_it() {
    // Signed six days ago for one day: expired five days ago; the job
    // finished four days ago.
    let report = verify_with_one_day_layout_signed(6);
    assert_fails_naming(&report, LAYOUT, "layout expired before the job");
    let failure = &check(&report, "layout").failures[0];
    assert_eq!(failure.code.as_deref(), Some("intoto.layout_expired"));
    assert!(
        failure.message.contains("judged at the signing time"),
        "{failure:?}"
    );
}

// ----- --artifact ----------------------------------------------------------------------

#[test]
fn artifacts_match_the_trained_model_and_the_csv_dataset_and_a_stranger_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("my-model.keras");
    fs::copy(a().bundle.join("outputs/model.keras"), &model).unwrap();
    let stranger = dir.path().join("stranger.bin");
    fs::write(&stranger, b"not in the bundle").unwrap();
    let report = verify_bundle(
        &a().bundle,
        &BundleOptions {
            artifacts: vec![
                HeldArtifact::at(&model),
                HeldArtifact::at(quickstart("data.csv")),
                HeldArtifact {
                    path: stranger,
                    name: "stranger.bin".into(),
                },
            ],
            ..pinned(&a().keys)
        },
    );
    let artifacts: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.id == "artifact")
        .collect();
    assert_eq!(artifacts.len(), 3);
    assert_eq!(artifacts[0].status, CheckStatus::Passed, "{report:#?}");
    assert!(
        artifacts[0].details[0].contains("the trained model (outputs/model.keras)"),
        "{:?}",
        artifacts[0].details
    );
    assert_eq!(artifacts[1].status, CheckStatus::Passed, "{report:#?}");
    assert!(
        artifacts[1].details[0].contains("the dataset as uploaded (inputs/data.csv)"),
        "{:?}",
        artifacts[1].details
    );
    assert_eq!(artifacts[2].status, CheckStatus::Failed);
    assert_eq!(artifacts[2].failures[0].file, "stranger.bin");
    assert!(
        artifacts[2].failures[0]
            .message
            .contains("matches no model")
    );
    assert!(!report.passed());
}

// ----- checks that cannot run ------------------------------------------------------------

#[test]
fn checks_that_need_a_failed_one_are_not_run_rather_than_failed() {
    let (_dir, copy) = copy_of_a();
    fs::remove_file(copy.join(KEYSET)).unwrap();
    let report = verify(&copy);
    assert_eq!(report.count(CheckStatus::Failed), 1, "{report:#?}");
    assert_eq!(report.count(CheckStatus::NotRun), 7, "{report:#?}");
    assert_eq!(check(&report, "keyset").failures[0].file, KEYSET);
    for c in report.checks.iter().filter(|c| c.id != "keyset") {
        assert!(c.failures.is_empty(), "{c:#?}");
        assert!(c.needs.is_some(), "{c:#?}");
        assert!(!c.ok);
    }
    assert_eq!(
        check(&report, "provenance").needs.as_deref(),
        Some("a key set verified with the root key")
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["checks"][0]["status"], "failed");
    assert_eq!(json["checks"][1]["status"], "not_run");
    assert_eq!(json["checks"][1]["ok"], false);
    assert!(json["checks"][1]["needs"].is_string());
}

#[test]
fn a_missing_provenance_is_the_one_failure_not_every_link() {
    let (_dir, copy) = copy_of_a();
    fs::remove_file(copy.join(PROVENANCE)).unwrap();
    let report = verify(&copy);
    let culprits: BTreeSetOfFiles = report.failures().map(|(_, f)| f.file.clone()).collect();
    // The provenance is named; no link is blamed for the missing signing
    // time (the AIBoM's reference to it names it too).
    assert!(culprits.iter().all(|f| f == PROVENANCE), "{report:#?}");
    assert_eq!(check(&report, "provenance").status, CheckStatus::Failed);
    let links = check(&report, "links");
    assert_eq!(links.status, CheckStatus::NotRun, "{links:#?}");
    assert!(links.needs.as_deref().unwrap().contains(PROVENANCE));
}

type BTreeSetOfFiles = std::collections::BTreeSet<String>;
