//! AIBoM interop with the reference tools:
//! - cyclonedx-python-lib's strict CycloneDX 1.6 JSON validator accepts the
//!   BOMs we build for a tabular and an image job (and the BOM inside the
//!   signed envelope), and rejects a deliberately broken one at the places
//!   we broke it;
//! - securesystemslib's `dsse.Envelope.verify` accepts the signed BOM
//!   envelope, whose payload is an in-toto Statement v1 with predicate type
//!   `https://cyclonedx.org/bom`.
//!
//! Interop tier: `cargo test -- --ignored`.

mod util;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use veritrain_attest::keys::{Algorithm, PrivateKey};
use veritrain_bom::input::BomInput;

fn fixture(job: &str) -> BomInput {
    let path = util::repo_root().join(format!("crates/bom/tests/fixtures/{job}.input.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Build the fixture job's BOM and write it to `dir`.
fn write_bom(dir: &Path, job: &str) -> (PathBuf, BomInput, Vec<u8>) {
    let input = fixture(job);
    let bom = veritrain_bom::build_bom(&input).unwrap();
    let bytes = veritrain_bom::to_json(&bom).unwrap();
    let path = dir.join(format!("{job}.cdx.json"));
    std::fs::write(&path, &bytes).unwrap();
    (path, input, bytes)
}

/// Run the strict validator on `files`; returns (exit success, one report per file).
fn cdx_validate(python: &Path, files: &[&Path]) -> (bool, Vec<Value>) {
    let mut cmd = util::python_script(python, "bom_validate.py");
    cmd.args(files);
    let out = util::run(&mut cmd);
    let reports: Vec<Value> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        reports.len(),
        files.len(),
        "bom_validate.py: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), reports)
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn strict_validator_accepts_our_boms() {
    let Some(python) = util::interop_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (tabular, ..) = write_bom(dir.path(), "tabular");
    let (image, ..) = write_bom(dir.path(), "image");
    let (ok, reports) = cdx_validate(&python, &[&tabular, &image]);
    assert!(ok, "{reports:#?}");
    for r in &reports {
        assert_eq!(r["valid"], true, "{r}");
    }
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn strict_validator_rejects_a_broken_bom_where_it_is_broken() {
    let Some(python) = util::interop_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_, _, bytes) = write_bom(dir.path(), "tabular");
    let mut bom: Value = serde_json::from_slice(&bytes).unwrap();
    // The three serializer bugs the cyclonedx-bom crate has (notes §2).
    let card = &mut bom["metadata"]["component"]["modelCard"];
    let r = card.as_object_mut().unwrap().remove("bom-ref").unwrap();
    card["bomRef"] = r;
    bom["metadata"]["component"]["modelCard"]["modelParameters"]["datasets"][0] =
        json!("dataset/grain-samples");
    let data = bom["components"][1]["data"][0].take();
    bom["components"][1]["data"] = data;
    let broken = dir.path().join("broken.cdx.json");
    std::fs::write(&broken, serde_json::to_vec_pretty(&bom).unwrap()).unwrap();

    // Our own validator refuses it too, at the same places.
    let ours = veritrain_bom::validate_bom(&bom).unwrap_err();
    let (ok, reports) = cdx_validate(&python, &[&broken]);
    assert!(!ok);
    assert_eq!(reports[0]["valid"], false);
    let paths: Vec<&str> = reports[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    for expected in [
        "/metadata/component/modelCard",
        "/metadata/component/modelCard/modelParameters/datasets/0",
        "/components/1/data",
    ] {
        assert!(paths.contains(&expected), "{expected} not in {paths:?}");
        assert!(
            ours.to_string().contains(expected),
            "{expected} not in {ours}"
        );
    }
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn signed_bom_envelope_verifies_in_securesystemslib_and_its_predicate_validates() {
    let Some(python) = util::interop_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (job, alg) in [
        ("tabular", Algorithm::EcdsaP256),
        ("image", Algorithm::Ed25519),
    ] {
        let (_, input, bytes) = write_bom(dir.path(), job);
        let key = PrivateKey::generate(alg).unwrap();
        let env = veritrain_bom::sign_bom(
            &bytes,
            &input.trained_model.file.sha256,
            &input.trained_model.file.name,
            &key,
        )
        .unwrap();
        let env_path = dir.path().join(format!("{job}.bom.dsse.json"));
        std::fs::write(&env_path, env.to_json_pretty().unwrap()).unwrap();
        let pem = dir.path().join(format!("{job}.pub.pem"));
        std::fs::write(&pem, key.public_key().to_spki_pem().unwrap()).unwrap();

        let mut cmd = util::python_script(&python, "dsse_verify.py");
        cmd.arg(&env_path).arg("1").arg(&pem);
        let out = util::run(&mut cmd);
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert!(out.status.success(), "{report}");
        assert_eq!(report["keyids"], json!([key.public_key().keyid()]));
        assert_eq!(report["payload_type"], "application/vnd.in-toto+json");
        assert_eq!(report["statement_type"], "https://in-toto.io/Statement/v1");

        let (ok, reports) = cdx_validate(&python, &[&env_path]);
        assert!(ok, "{reports:#?}");
    }
}
