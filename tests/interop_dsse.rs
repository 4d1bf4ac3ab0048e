//! DSSE interop with the reference implementation, securesystemslib 1.6:
//! - its `dsse.Envelope.verify` accepts envelopes our code signs (ECDSA
//!   P-256, Ed25519, and both at once with threshold 2), reports the same key
//!   IDs, and rejects tampered ones;
//! - our verifier accepts envelopes it signs with `CryptoSigner` keys it
//!   generated, and rejects a tampered one.
//!
//! Interop tier: `cargo test -- --ignored`.

mod util;

use std::fs;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use veritrain_attest::dsse::{self, Limits};
use veritrain_attest::keys::{Algorithm, PrivateKey, PublicKey, Signer};
use veritrain_attest::statement::{
    BuildDefinition, BuildMetadata, Builder, PAYLOAD_TYPE_INTOTO, Provenance, ResourceDescriptor,
    RunDetails, STATEMENT_TYPE_V1, Statement, sign_statement, verify_statement,
};

fn provenance_statement() -> Statement {
    let finished = chrono::DateTime::parse_from_rfc3339("2025-05-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: "https://veritrain.dev/buildtypes/keras-train/v1".into(),
            external_parameters: serde_json::json!({"epochs": 3, "note": "tab\there, \\ and é"})
                .as_object()
                .unwrap()
                .clone(),
            internal_parameters: Default::default(),
            resolved_dependencies: vec![ResourceDescriptor::subject(
                "data/train.csv",
                "cd".repeat(32),
            )],
        },
        run_details: RunDetails {
            builder: Builder {
                id: "https://veritrain.dev/worker/v1".into(),
                version: Default::default(),
                builder_dependencies: vec![],
            },
            metadata: BuildMetadata {
                invocation_id: Some("job-1".into()),
                started_on: None,
                finished_on: Some(finished),
            },
            byproducts: vec![],
        },
    };
    Statement::slsa_provenance(
        vec![ResourceDescriptor::subject("model.keras", "ab".repeat(32))],
        &provenance,
    )
    .unwrap()
}

/// Run securesystemslib's verifier; returns (exit success, its JSON report).
fn sslib_verify(python: &Path, envelope: &Path, threshold: usize, keys: &[&Path]) -> (bool, Value) {
    let mut cmd = util::python_script(python, "dsse_verify.py");
    cmd.arg(envelope).arg(threshold.to_string()).args(keys);
    let out = util::run(&mut cmd);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "dsse_verify.py printed no JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn securesystemslib_accepts_our_envelopes_and_rejects_tampered_ones() {
    let Some(python) = util::interop_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);

    let ecdsa = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let ed = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    fs::write(p("ecdsa.pub"), ecdsa.public_key().to_spki_pem().unwrap()).unwrap();
    fs::write(p("ed25519.pub"), ed.public_key().to_spki_pem().unwrap()).unwrap();
    let statement = provenance_statement();

    let cases: [(&str, Vec<&dyn Signer>); 3] = [
        ("ecdsa", vec![&ecdsa]),
        ("ed25519", vec![&ed]),
        ("both", vec![&ecdsa, &ed]),
    ];
    for (name, signers) in cases {
        let env = sign_statement(&statement, &signers).unwrap();
        let path = p(&format!("{name}.dsse.json"));
        fs::write(&path, env.to_json_pretty().unwrap()).unwrap();
        let threshold = signers.len();
        let (ok, report) = sslib_verify(
            &python,
            &path,
            threshold,
            &[&p("ecdsa.pub"), &p("ed25519.pub")],
        );
        assert!(
            ok,
            "{name}: securesystemslib refused our envelope: {report}"
        );
        // Same key IDs on both sides: securesystemslib only tries the key
        // whose key ID matches the signature's `keyid`.
        let mut ours: Vec<&str> = signers.iter().map(|s| s.keyid()).collect();
        ours.sort();
        assert_eq!(report["keyids"], serde_json::json!(ours), "{name}");
        assert_eq!(report["payload_type"], PAYLOAD_TYPE_INTOTO);
        assert_eq!(report["statement_type"], STATEMENT_TYPE_V1);

        // Tampering: the payload, the payload type, one signature byte.
        let mut payload = env.clone();
        let body = String::from_utf8(STANDARD.decode(&env.payload).unwrap()).unwrap();
        let changed = body.replace("\"epochs\":3", "\"epochs\":4");
        assert_ne!(changed, body);
        payload.payload = STANDARD.encode(changed);
        let mut ptype = env.clone();
        ptype.payload_type = "application/vnd.in-toto+jsoN".into();
        let mut sig = env.clone();
        let mut raw = STANDARD.decode(&sig.signatures[0].sig).unwrap();
        let mid = raw.len() / 2;
        raw[mid] ^= 0x01;
        sig.signatures[0].sig = STANDARD.encode(raw);
        for (what, bad) in [("payload", payload), ("payloadType", ptype), ("sig", sig)] {
            let path = p(&format!("{name}-{what}.dsse.json"));
            fs::write(&path, bad.to_json().unwrap()).unwrap();
            let (ok, report) = sslib_verify(
                &python,
                &path,
                threshold,
                &[&p("ecdsa.pub"), &p("ed25519.pub")],
            );
            assert!(
                !ok,
                "{name}: securesystemslib accepted an envelope with a changed {what}"
            );
            let error = report["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("Accepted signatures do not match threshold"),
                "{name}/{what}: unexpected refusal {report}"
            );
        }
    }

    // A key that did not sign is not accepted in its place.
    let stranger = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    fs::write(
        p("stranger.pub"),
        stranger.public_key().to_spki_pem().unwrap(),
    )
    .unwrap();
    let (ok, _) = sslib_verify(&python, &p("ecdsa.dsse.json"), 1, &[&p("stranger.pub")]);
    assert!(
        !ok,
        "securesystemslib accepted our envelope with the wrong key"
    );
}

#[test]
#[ignore = "interop tier: run with --ignored"]
fn we_accept_envelopes_signed_by_securesystemslib() {
    let Some(python) = util::interop_python() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name);
    let mut cmd = util::python_script(&python, "dsse_sign.py");
    cmd.arg(tmp.path());
    let out = util::run(&mut cmd);
    assert!(
        out.status.success(),
        "dsse_sign.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let keyids: Value = serde_json::from_slice(&fs::read(p("keyids.json")).unwrap()).unwrap();
    let load = |name: &str| {
        PublicKey::from_spki_pem(&fs::read_to_string(p(&format!("{name}.pub.pem"))).unwrap())
            .unwrap()
    };
    let ecdsa = load("ecdsa");
    let ed = load("ed25519");
    // Key IDs computed by us from the PEM equal securesystemslib's.
    assert_eq!(keyids["ecdsa"], ecdsa.keyid());
    assert_eq!(keyids["ed25519"], ed.keyid());
    assert_eq!(ecdsa.algorithm(), Algorithm::EcdsaP256);
    assert_eq!(ed.algorithm(), Algorithm::Ed25519);
    // Its PKCS#8 private keys load in our code and give the same key.
    for (name, public) in [("ecdsa", &ecdsa), ("ed25519", &ed)] {
        let key = PrivateKey::from_pem(&fs::read_to_string(p(&format!("{name}.key.pem"))).unwrap())
            .unwrap();
        assert_eq!(key.public_key(), public);
    }

    let lim = Limits::default();
    let trusted = [ecdsa.clone(), ed.clone()];
    let signed_bytes = fs::read(p("statement.json")).unwrap();
    for (name, threshold) in [("ecdsa", 1), ("ed25519", 1), ("both", 2)] {
        let env = fs::read(p(&format!("{name}.dsse.json"))).unwrap();
        let v = verify_statement(&env, &trusted, threshold, &lim)
            .unwrap_or_else(|e| panic!("{name}: we refused securesystemslib's envelope: {e}"));
        assert_eq!(v.signers().len(), threshold);
        assert_eq!(v.subject[0].name.as_deref(), Some("model.keras"));
        let prov = v.provenance().unwrap();
        assert_eq!(
            prov.run_details.builder.id,
            "https://example.org/python-builder"
        );
        assert_eq!(
            prov.build_definition.external_parameters["note"],
            "tab\there, é"
        );
        assert_eq!(
            v.recorded_signing_time().unwrap().to_rfc3339(),
            "2025-05-01T12:00:00+00:00"
        );
        // The exact bytes Python signed (indented JSON) are what verified.
        let payload = dsse::verify(&env, &trusted, threshold, &lim).unwrap();
        assert_eq!(payload.bytes(), &signed_bytes[..]);
    }
    // Only one of the two keys trusted: threshold 2 is not met.
    let both = fs::read(p("both.dsse.json")).unwrap();
    let err = verify_statement(&both, std::slice::from_ref(&ecdsa), 2, &lim).unwrap_err();
    assert_eq!(err.code(), "signature.threshold");
    // Payload changed after Python signed it.
    let tampered = fs::read(p("tampered.dsse.json")).unwrap();
    let err = verify_statement(&tampered, &trusted, 1, &lim).unwrap_err();
    assert_eq!(err.code(), "signature.threshold");
}
