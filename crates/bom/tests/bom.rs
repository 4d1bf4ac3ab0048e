//! The AIBoM end to end: fixtures of a tabular and an image job, built,
//! schema-validated and compared to committed snapshots; every field of the
//! request found in the BOM; signing and verification; rendering.
//!
//! Snapshots: `tests/fixtures/<job>.cdx.json`. After a deliberate change to
//! the BOM, regenerate them with
//! `VERITRAIN_UPDATE_SNAPSHOTS=1 cargo test -p veritrain-bom --test bom`
//! and review the diff.

// clippy.toml allows these in `#[test]` functions only; the helpers below are
// test code too, and a panic in them is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use veritrain_attest::dsse::Limits;
use veritrain_attest::keys::{Algorithm, PrivateKey};
use veritrain_attest::keyset::{KeySet, verify_keyset};
use veritrain_bom::input::{
    BaseModelRequest, BomInput, Contact, DatasetRequest, Fairness, Misuse, ModelRequest, ModelScan,
    Organization, Party,
};
use veritrain_bom::{
    build_bom, props, render_html, render_text, sign_bom, to_json, validate_bom,
    verify_bom_envelope, verify_bom_with_keyset,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn input(job: &str) -> BomInput {
    let path = fixtures().join(format!("{job}.input.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Build, serialize and schema-validate a BOM.
fn bom_json(input: &BomInput) -> (Vec<u8>, Value) {
    let bom = build_bom(input).unwrap();
    let bytes = to_json(&bom).unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    validate_bom(&value).unwrap();
    (bytes, value)
}

fn check_snapshot(job: &str, bytes: &[u8]) {
    let path = fixtures().join(format!("{job}.cdx.json"));
    if std::env::var("VERITRAIN_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with VERITRAIN_UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    let actual = std::str::from_utf8(bytes).unwrap();
    if actual != expected {
        let line = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| actual.lines().count().min(expected.lines().count()));
        panic!(
            "{} differs from the built BOM at line {}:\n  built:    {:?}\n  snapshot: {:?}\n\
             if the change is intended, run with VERITRAIN_UPDATE_SNAPSHOTS=1 and review the diff",
            path.display(),
            line + 1,
            actual.lines().nth(line),
            expected.lines().nth(line)
        );
    }
}

#[test]
fn tabular_job_matches_snapshot() {
    let (bytes, _) = bom_json(&input("tabular"));
    check_snapshot("tabular", &bytes);
}

#[test]
fn image_job_matches_snapshot() {
    let (bytes, _) = bom_json(&input("image"));
    check_snapshot("image", &bytes);
}

#[test]
fn committed_snapshots_validate_against_the_schema() {
    for job in ["tabular", "image"] {
        let bytes = std::fs::read(fixtures().join(format!("{job}.cdx.json"))).unwrap();
        let bom = veritrain_bom::read_bom(&bytes).unwrap();
        assert_eq!(bom.spec_version, "1.6");
    }
}

#[test]
fn output_is_deterministic() {
    let i = input("image");
    assert_eq!(bom_json(&i).0, bom_json(&i).0);
}

#[test]
fn fixture_scans_are_the_scanners_verdicts() {
    // The fixtures' base models are intake's own .keras fixtures; their
    // scan facts and digests must be what the scanner and a hash say today.
    use sha2::{Digest, Sha256};
    use veritrain_intake::keras::{KerasLimits, scan_keras_file};
    let keras = Path::new(env!("CARGO_MANIFEST_DIR")).join("../intake/tests/fixtures/keras");
    for (job, file) in [
        ("tabular", "ok_mlp_sequential.keras"),
        ("image", "ok_cnn_functional.keras"),
    ] {
        let i = input(job);
        let path = keras.join(file);
        let verdict = scan_keras_file(&path, &KerasLimits::default());
        assert!(verdict.accepted, "{file}: {:?}", verdict.findings);
        assert_eq!(
            i.base_model.scan,
            ModelScan::from_verdict(&verdict),
            "{job}"
        );
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            i.base_model.file.sha256,
            hex::encode(Sha256::digest(&bytes))
        );
        assert_eq!(i.base_model.file.size_bytes, Some(bytes.len() as u64));
    }
}

/// Every string in a JSON document (values and property values).
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Every leaf of the request's JSON, as text.
fn leaves(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| leaves(x, &format!("{path}.{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| leaves(x, &format!("{path}[{i}]"), out)),
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        other => out.push((path.to_owned(), other.to_string())),
    }
}

#[test]
fn every_field_of_the_request_appears_in_the_bom() {
    // Struct literals without `..`: a field added to the request types fails
    // to compile here until this test sets it.
    let c = |tag: &str| Contact {
        name: format!("{tag}-name"),
        email: Some(format!("{tag}@people.example.org")),
    };
    let request = ModelRequest {
        name: "req-name".into(),
        version: "req-version".into(),
        description: Some("req-description".into()),
        authors: vec![c("req-author")],
        license: Some("BSD-3-Clause".into()),
        task: Some("req-task".into()),
        approach: Some(veritrain_bom::cdx::Approach::SemiSupervised),
        architecture_family: Some("req-architecture-family".into()),
        tags: vec!["req-tag".into()],
        base_model: Some(BaseModelRequest {
            name: Some("req-base-name".into()),
            version: Some("req-base-version".into()),
            source: Some("req-base-source".into()),
        }),
        intended_users: vec!["req-user".into()],
        use_cases: vec!["req-use-case".into()],
        out_of_scope: vec!["req-out-of-scope".into()],
        misuse: vec![Misuse {
            description: "req-misuse".into(),
            mitigation: Some("req-misuse-mitigation".into()),
        }],
        performance_tradeoffs: vec!["req-tradeoff".into()],
        fairness: vec![Fairness {
            group_at_risk: "req-group".into(),
            benefits: Some("req-benefits".into()),
            harms: Some("req-harms".into()),
            mitigation: Some("req-fairness-mitigation".into()),
        }],
    };
    let org = |tag: &str| Organization {
        name: format!("{tag}-org"),
        url: vec![format!("https://{tag}.example.org")],
        contact: vec![c(&format!("{tag}-org-contact"))],
    };
    let dataset_request = DatasetRequest {
        description: Some("ds-description".into()),
        source: Some("ds-source".into()),
        license: Some("CC0-1.0".into()),
        classification: Some("ds-classification".into()),
        sensitive_data: vec!["ds-sensitive".into()],
        owners: vec![
            Party::Organization(org("ds-owner")),
            Party::Contact(c("ds-owner-person")),
        ],
        custodians: vec![Party::Contact(c("ds-custodian"))],
        stewards: vec![Party::Organization(org("ds-steward"))],
    };
    let mut i = input("tabular");
    i.request = request.clone();
    i.datasets[0].request = dataset_request.clone();
    i.training.fit_params = BTreeMap::from([
        ("epochs".into(), json!(3)),
        ("initial_epoch".into(), json!(0)),
        ("validation_split".into(), json!(0.0)),
        ("shuffle".into(), json!(false)),
        ("steps_per_epoch".into(), Value::Null),
        ("class_weight".into(), json!({"0": 1.0, "1": 2.5})),
        ("note".into(), json!("fit-note")),
    ]);
    let (_, bom) = bom_json(&i);
    let mut found = Vec::new();
    strings(&bom, &mut found);

    let mut wanted = Vec::new();
    leaves(
        &serde_json::to_value(&request).unwrap(),
        "request",
        &mut wanted,
    );
    leaves(
        &serde_json::to_value(&dataset_request).unwrap(),
        "datasets[0].request",
        &mut wanted,
    );
    assert!(wanted.len() > 30, "{wanted:?}");
    // Verbatim: each value is a whole string of the BOM (a substring match
    // could be satisfied by another field that embeds it).
    for (path, value) in &wanted {
        assert!(
            found.iter().any(|s| s == value),
            "{path} = {value:?} is not in the BOM"
        );
    }

    // Fit parameters: each one as a property and a typed parameter, zero as
    // zero, `null` as `null`, never "Unknown".
    let train = &bom["formulation"][0]["workflows"][0]["tasks"][1];
    assert_eq!(train["uid"], "train");
    let fit: BTreeMap<String, String> = train["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = [
        ("veritrain:fit:epochs", "3"),
        ("veritrain:fit:initial_epoch", "0"),
        ("veritrain:fit:validation_split", "0.0"),
        ("veritrain:fit:shuffle", "false"),
        ("veritrain:fit:steps_per_epoch", "null"),
        ("veritrain:fit:class_weight", r#"{"0":1.0,"1":2.5}"#),
        ("veritrain:fit:note", "fit-note"),
    ];
    for (k, v) in expect {
        assert_eq!(fit.get(k).map(String::as_str), Some(v), "{k}");
    }
    let params = train["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i.get("parameters"))
        .unwrap();
    let typed: BTreeMap<&str, (&str, &str)> = params
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                (
                    p["value"].as_str().unwrap(),
                    p["dataType"].as_str().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(typed["initial_epoch"], ("0", "integer"));
    assert_eq!(typed["validation_split"], ("0.0", "number"));
    assert_eq!(typed["steps_per_epoch"], ("null", "null"));
    assert_eq!(typed["shuffle"], ("false", "boolean"));
    // No placeholder anywhere, in any case: an unknown value is left out.
    let mut all = Vec::new();
    strings(&bom, &mut all);
    for s in &all {
        let lower = s.to_ascii_lowercase();
        assert!(
            !(lower == "unknown" || lower.contains("(unknown")),
            "placeholder {s:?} in the BOM"
        );
    }
}

#[test]
fn model_and_inputs_are_identified_by_digest() {
    let i = input("tabular");
    let (_, bom) = bom_json(&i);
    let model = &bom["metadata"]["component"];
    assert_eq!(model["type"], "machine-learning-model");
    assert_eq!(model["hashes"][0]["content"], i.trained_model.file.sha256);
    let members: BTreeMap<&str, &str> = model["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["hashes"][0]["content"].as_str().unwrap(),
            )
        })
        .collect();
    for m in &i.trained_model.members {
        assert_eq!(members[m.name.as_str()], m.sha256);
    }
    assert_eq!(
        model["pedigree"]["ancestors"][0]["hashes"][0]["content"],
        i.base_model.file.sha256
    );
    assert_eq!(model["modelCard"]["bom-ref"], "trained-model/model-card");
    assert_eq!(
        model["modelCard"]["modelParameters"]["datasets"][0],
        json!({"ref": "dataset/grain-samples"})
    );
    // `data` is an array, as the 1.6 schema wants.
    let dataset = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == "dataset/grain-samples")
        .unwrap();
    assert!(dataset["data"].is_array());
    assert_eq!(dataset["data"][0]["type"], "dataset");
    // Everything the model depends on, by reference.
    let deps = &bom["dependencies"][0];
    assert_eq!(deps["ref"], "trained-model");
    assert_eq!(
        deps["dependsOn"],
        json!([
            "base-model",
            "dataset/grain-samples",
            "dataset-definition",
            "job-request",
            "runtime",
            "platform/trainer"
        ])
    );
    // Every referenced bom-ref exists, and every bom-ref is unique.
    let mut defined = Vec::new();
    collect_bom_refs(&bom, &mut defined);
    let unique: std::collections::BTreeSet<_> = defined.iter().collect();
    assert_eq!(
        unique.len(),
        defined.len(),
        "duplicate bom-ref in {defined:?}"
    );
    for d in bom["dependencies"].as_array().unwrap() {
        for r in std::iter::once(&d["ref"]).chain(d["dependsOn"].as_array().unwrap()) {
            assert!(defined.iter().any(|x| x == r.as_str().unwrap()), "{r}");
        }
    }
    // Attestations and manifests are referenced with their digests.
    for a in &i.attestations {
        assert!(
            bom["externalReferences"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| {
                    r["url"] == a.file.name.as_str()
                        && r["type"] == "attestation"
                        && r["hashes"][0]["content"] == a.file.sha256.as_str()
                })
        );
    }
    assert!(
        bom["externalReferences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| {
                r["type"] == "evidence"
                    && r["hashes"][0]["content"] == i.datasets[0].manifest.file.sha256.as_str()
            })
    );
}

fn collect_bom_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("bom-ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| collect_bom_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_bom_refs(x, out)),
        _ => {}
    }
}

#[test]
fn metrics_are_numbers_with_slices() {
    let i = input("image");
    let (_, bom) = bom_json(&i);
    let card = &bom["metadata"]["component"]["modelCard"];
    let metrics = card["quantitativeAnalysis"]["performanceMetrics"]
        .as_array()
        .unwrap();
    let get = |ty: &str, slice: &str| -> f64 {
        metrics
            .iter()
            .find(|m| m["type"] == ty && m["slice"] == slice)
            .unwrap_or_else(|| panic!("no {ty} [{slice}] in {metrics:?}"))["value"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    // `type` is always the metric's stable name.
    for m in metrics {
        let ty = m["type"].as_str().unwrap();
        assert!(
            i.training.metrics.iter().any(|s| s.name == ty),
            "{ty} is not a metric name"
        );
    }
    let last = i.training.history.last().unwrap();
    assert_eq!(
        get("loss", "train split (2250 examples), final (epoch 10)"),
        last.logs["loss"].unwrap()
    );
    // validation_freq = 2 over 10 epochs: the last validation is epoch 10.
    assert_eq!(
        get(
            "accuracy",
            "validation split (250 examples), final (epoch 10)"
        ),
        last.logs["val_accuracy"].unwrap()
    );
    // The best validation accuracy, found independently.
    let (best_epoch, best) = i
        .training
        .history
        .iter()
        .filter_map(|e| e.logs.get("val_accuracy").map(|v| (e.epoch, v.unwrap())))
        .fold((0, f64::MIN), |b, x| if x.1 > b.1 { x } else { b });
    assert_eq!(
        get(
            "accuracy",
            &format!("validation split (250 examples), best (epoch {best_epoch})")
        ),
        best
    );
    // The best loss is the smallest one.
    let best_loss = i
        .training
        .history
        .iter()
        .filter_map(|e| e.logs.get("val_loss").map(|v| (e.epoch, v.unwrap())))
        .fold((0, f64::MAX), |b, x| if x.1 < b.1 { x } else { b });
    assert_eq!(
        get(
            "loss",
            &format!(
                "validation split (250 examples), best (epoch {})",
                best_loss.0
            )
        ),
        best_loss.1
    );
    // The final evaluation on the whole validation split.
    let full =
        "validation split (250 examples), full evaluation of the trained model after training";
    assert_eq!(get("accuracy", full), 0.84);
    assert_eq!(get("loss", full), 0.3371);
    // Per-epoch history: one number per property.
    let epoch_props: Vec<&Value> = card["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("veritrain:epoch:"))
        .collect();
    let logged: usize = i.training.history.iter().map(|e| e.logs.len()).sum();
    assert_eq!(epoch_props.len(), logged);
    for p in epoch_props {
        let v = p["value"].as_str().unwrap();
        assert!(v.parse::<f64>().is_ok(), "{v}");
    }
    // The chart is an SVG, base64, with one panel per metric.
    let graphic = &card["quantitativeAnalysis"]["graphics"]["collection"][0]["image"];
    assert_eq!(graphic["contentType"], "image/svg+xml");
    assert_eq!(graphic["encoding"], "base64");
    let svg = base64::engine::general_purpose::STANDARD
        .decode(graphic["content"].as_str().unwrap())
        .unwrap();
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.starts_with("<svg"));
    assert_eq!(
        svg.matches("class=\"panel\"").count(),
        i.training.metrics.len()
    );
    // Measured time and energy.
    let env = &card["considerations"]["environmentalConsiderations"];
    assert_eq!(
        env["energyConsumptions"][0]["activityEnergyCost"]["value"],
        0.0042
    );
    assert!(
        env["properties"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "veritrain:training:gpu_seconds", "value": "29.75"}))
    );
}

#[test]
fn a_non_finite_value_is_recorded_and_skipped_for_best() {
    // The trainer writes NaN and infinities as null; the BOM says
    // "non-finite" where they were, and never calls one the best.
    let mut i = input("tabular");
    i.training.history[3].logs.insert("loss".into(), None);
    let last = i.training.history.len() - 1;
    i.training.history[last]
        .logs
        .insert("val_loss".into(), None);
    let (_, bom) = bom_json(&i);
    let card = &bom["metadata"]["component"]["modelCard"];
    assert!(
        card["properties"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "veritrain:epoch:4:loss", "value": "non-finite"}))
    );
    let metrics = card["quantitativeAnalysis"]["performanceMetrics"]
        .as_array()
        .unwrap();
    assert!(metrics.contains(&json!({
        "type": "loss",
        "value": "non-finite",
        "slice": "validation split (42 examples), final (epoch 12)"
    })));
    let best = metrics
        .iter()
        .find(|m| {
            m["type"] == "loss"
                && m["slice"]
                    .as_str()
                    .unwrap()
                    .starts_with("validation split (42 examples), best")
        })
        .unwrap();
    assert!(best["value"].as_str().unwrap().parse::<f64>().is_ok());
}

#[test]
fn a_metric_of_unknown_direction_has_no_best() {
    let mut i = input("tabular");
    for e in &mut i.training.history {
        e.logs
            .insert("my_custom_score".into(), Some(f64::from(e.epoch)));
    }
    i.training.metrics.push(veritrain_bom::input::MetricSpec {
        name: "my_custom_score".into(),
        goal: veritrain_bom::input::Goal::of_metric("my_custom_score"),
    });
    let (_, bom) = bom_json(&i);
    let card = &bom["metadata"]["component"]["modelCard"];
    let custom: Vec<&Value> = card["quantitativeAnalysis"]["performanceMetrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["type"] == "my_custom_score")
        .collect();
    // The final value is there, no "best" and no goal.
    assert_eq!(custom.len(), 1, "{custom:?}");
    assert!(custom[0]["slice"].as_str().unwrap().contains("final"));
    let names = veritrain_bom::build::property_names(&bom);
    assert!(!names.contains_key("veritrain:metric_goal:my_custom_score"));
    assert!(names.contains_key("veritrain:metric_goal:accuracy"));
}

#[test]
fn compile_settings_split_and_steps_are_recorded_as_used() {
    let i = input("image");
    let (_, bom) = bom_json(&i);
    let train = &bom["formulation"][0]["workflows"][0]["tasks"][1];
    assert_eq!(train["uid"], "train");
    let prop = |name: &str| -> String {
        train["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name}"))["value"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(prop("veritrain:compile:source"), "compile_config");
    assert_eq!(prop("veritrain:compile:optimizer.class_name"), "Adam");
    assert_eq!(
        prop("veritrain:compile:optimizer.config.learning_rate"),
        "0.0005000000237487257"
    );
    assert_eq!(prop("veritrain:compile:loss"), "categorical_crossentropy");
    assert_eq!(prop("veritrain:compile:metrics.0"), "accuracy");
    assert_eq!(prop("veritrain:compile:jit_compile"), "true");
    assert_eq!(prop("veritrain:split:train"), "2250");
    assert_eq!(prop("veritrain:split:validation"), "250");
    assert_eq!(prop("veritrain:split:algorithm"), "sha256-rank-v1");
    assert_eq!(prop("veritrain:training:steps_run"), "360");
    let typed: BTreeMap<String, (String, String)> = train["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|i| i.get("parameters"))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                (
                    p["value"].as_str().unwrap().to_owned(),
                    p["dataType"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    let t = |k: &str| typed[k].clone();
    assert_eq!(t("compile.optimizer"), ("Adam".into(), "string".into()));
    assert_eq!(
        t("compile.learning_rate"),
        ("0.0005000000237487257".into(), "number".into())
    );
    assert_eq!(
        t("compile.loss"),
        ("categorical_crossentropy".into(), "string".into())
    );
    assert_eq!(
        t("compile.metrics"),
        (r#"["accuracy"]"#.into(), "array".into())
    );
    assert_eq!(t("split.train_examples"), ("2250".into(), "integer".into()));
    assert_eq!(
        t("split.validation_examples"),
        ("250".into(), "integer".into())
    );
    assert_eq!(t("steps_run"), ("360".into(), "integer".into()));
    // The split file and the log are outputs of the train task, by digest.
    let outputs = train["outputs"].as_array().unwrap();
    for (f, ty) in [
        (i.trained_model.split_file.as_ref().unwrap(), "evidence"),
        (i.trained_model.log_file.as_ref().unwrap(), "log"),
    ] {
        assert!(
            outputs.iter().any(|o| o["type"] == ty
                && o["resource"]["externalReference"]["url"] == f.name.as_str()
                && o["resource"]["externalReference"]["hashes"][0]["content"] == f.sha256.as_str()),
            "{} not in {outputs:?}",
            f.name
        );
    }
    // The job request is a component with its digest, and an input of
    // intake and train.
    let job = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == "job-request")
        .unwrap();
    assert_eq!(job["hashes"][0]["content"], i.job_request.sha256);
    assert_eq!(job["data"][0]["type"], "configuration");
    for task in [0, 1] {
        let inputs = &bom["formulation"][0]["workflows"][0]["tasks"][task]["inputs"];
        assert!(
            inputs
                .as_array()
                .unwrap()
                .contains(&json!({"resource": {"ref": "job-request"}})),
            "task {task}"
        );
    }
    // The runtime carries the runtime tree's root digest.
    let runtime = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == "runtime")
        .unwrap();
    assert_eq!(
        runtime["hashes"][0]["content"],
        i.environment.runtime_tree_root_sha256
    );
}

#[test]
fn unmeasured_values_are_left_out_not_zero() {
    let mut i = input("tabular");
    i.training.usage.cpu_seconds = None;
    i.environment.memory_limit_bytes = None;
    i.environment.os.version = None;
    let (_, bom) = bom_json(&i);
    let names = veritrain_bom::build::property_names(&bom);
    assert!(!names.contains_key("veritrain:training:cpu_seconds"));
    assert!(!names.contains_key("veritrain:memory:limit_bytes"));
    let os = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == "runtime")
        .unwrap()["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == "runtime/os")
        .unwrap()
        .clone();
    assert!(os.get("version").is_none(), "{os}");
    // And with them, they are there.
    let (_, bom) = bom_json(&input("tabular"));
    let names = veritrain_bom::build::property_names(&bom);
    assert!(names.contains_key("veritrain:training:cpu_seconds"));
    assert!(names.contains_key("veritrain:memory:limit_bytes"));
}

#[test]
fn goal_table_knows_the_keras_names_and_guesses_nothing() {
    use veritrain_bom::input::Goal;
    for m in [
        "loss",
        "mae",
        "mse",
        "rmse",
        "mape",
        "msle",
        "kl_divergence",
        "poisson",
        "logcosh",
        "mean_absolute_error",
        "mean_squared_error",
        "root_mean_squared_error",
        "hinge",
        "sparse_categorical_crossentropy",
        "huber",
    ] {
        assert_eq!(Goal::of_metric(m), Some(Goal::Minimize), "{m}");
    }
    for m in [
        "accuracy",
        "binary_accuracy",
        "categorical_accuracy",
        "sparse_categorical_accuracy",
        "top_k_categorical_accuracy",
        "auc",
        "auc_1",
        "precision",
        "recall",
        "cosine_similarity",
        "f1_score",
    ] {
        assert_eq!(Goal::of_metric(m), Some(Goal::Maximize), "{m}");
    }
    // The old heuristic called these "maximize"; a name the table does not
    // hold gets no direction at all.
    for m in [
        "my_error_rate",
        "val_loss",
        "score",
        "auc_",
        "accuracy_x",
        "",
    ] {
        assert_eq!(Goal::of_metric(m), None, "{m}");
    }
}

#[test]
fn bad_input_is_refused_with_a_field() {
    type Edit = fn(&mut BomInput);
    let cases: &[(&str, Edit)] = &[
        ("trained_model.file.sha256", |i| {
            i.trained_model.file.sha256 = "ABC".into()
        }),
        ("trained_model.members", |i| {
            i.trained_model
                .members
                .retain(|m| m.name != "model.weights.h5")
        }),
        ("datasets[1].name", |i| {
            let d = i.datasets[0].clone();
            i.datasets.push(d)
        }),
        ("datasets", |i| i.datasets.clear()),
        ("environment.packages[1].purl", |i| {
            i.environment.packages[1].purl = i.environment.packages[0].purl.clone()
        }),
        ("tasks.train", |i| {
            std::mem::swap(&mut i.tasks.train.start, &mut i.tasks.train.end)
        }),
        ("training.history[1].epoch", |i| {
            i.training.history[1].epoch = 1
        }),
        ("training.usage.cpu_seconds", |i| {
            i.training.usage.cpu_seconds = Some(f64::NAN)
        }),
        ("request.name", |i| i.request.name = " ".into()),
        ("job_request.sha256", |i| i.job_request.sha256 = "0".into()),
        ("environment.runtime_tree_root_sha256", |i| {
            i.environment.runtime_tree_root_sha256 = String::new()
        }),
        ("training.split", |i| {
            if let Some(s) = &mut i.training.split {
                s.train += 1;
            }
        }),
    ];
    for (field, edit) in cases {
        let mut i = input("tabular");
        edit(&mut i);
        let err = build_bom(&i).unwrap_err();
        assert_eq!(err.code(), "bom.invalid_input", "{field}: {err}");
        match err {
            veritrain_bom::Error::Input { field: f, .. } => assert_eq!(&f, field),
            other => panic!("{other}"),
        }
    }
    // A value the schema refuses (an e-mail address that is not one) is an
    // error that names the JSON pointer, not a BOM.
    let mut i = input("tabular");
    i.request.authors[0].email = Some("not an address".into());
    let err = build_bom(&i).unwrap_err();
    assert_eq!(err.code(), "bom.schema");
    assert!(
        err.to_string()
            .contains("/metadata/component/authors/0/email"),
        "{err}"
    );
}

fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

#[test]
fn signed_bom_verifies_and_returns_the_signed_predicate() {
    for alg in [Algorithm::EcdsaP256, Algorithm::Ed25519] {
        let key = PrivateKey::generate(alg).unwrap();
        let i = input("tabular");
        let (bytes, value) = bom_json(&i);
        let sha = &i.trained_model.file.sha256;
        let env = sign_bom(&bytes, sha, "model.keras", &key).unwrap();
        let env_json = env.to_json_pretty().unwrap();
        let limits = Limits::default();

        let v = verify_bom_envelope(&env_json, &[key.public_key().clone()], 1, &limits).unwrap();
        assert_eq!(v.signers(), [key.public_key().keyid().to_owned()]);
        assert_eq!(v.model_sha256(), Some(sha.as_str()));
        assert_eq!(v.subject()[0].digest["sha256"], *sha);
        // The predicate as signed: the BOM's JSON value, in the payload's bytes.
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&env.payload)
            .unwrap();
        let payload = String::from_utf8(payload).unwrap();
        assert!(payload.contains(v.bom_json()));
        assert_eq!(serde_json::from_str::<Value>(v.bom_json()).unwrap(), value);
        assert_eq!(v.bom(), &build_bom(&i).unwrap());
        // The delivered file holds the signed BOM; an edited one does not.
        v.check_file(&bytes).unwrap();
        let edited = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("grain-variety-classifier", "grain-variety-classifieR");
        let err = v.check_file(edited.as_bytes()).unwrap_err();
        assert_eq!(err.code(), "bom.file_mismatch");
        assert!(
            err.to_string().contains("/metadata/component/name"),
            "{err}"
        );

        // Another key's signature does not count.
        let other = PrivateKey::generate(alg).unwrap();
        let err =
            verify_bom_envelope(&env_json, &[other.public_key().clone()], 1, &limits).unwrap_err();
        assert_eq!(err.code(), "signature.threshold");
    }
}

#[test]
fn tampered_envelopes_fail() {
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let i = input("image");
    let (bytes, _) = bom_json(&i);
    let env = sign_bom(&bytes, &i.trained_model.file.sha256, "model.keras", &key).unwrap();
    let trusted = [key.public_key().clone()];
    let limits = Limits::default();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut payload = b64.decode(&env.payload).unwrap();
    let at = String::from_utf8_lossy(&payload)
        .find("flower-thumbnails")
        .unwrap();
    payload[at] = b'F';
    let mut bad = env.clone();
    bad.payload = b64.encode(&payload);
    let err = verify_bom_envelope(&bad.to_json().unwrap(), &trusted, 1, &limits).unwrap_err();
    assert_eq!(err.code(), "signature.threshold");
}

#[test]
fn signing_refuses_a_bom_that_is_not_about_the_model() {
    let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let i = input("tabular");
    let (bytes, _) = bom_json(&i);
    let err = sign_bom(&bytes, &i.base_model.file.sha256, "model.keras", &key).unwrap_err();
    assert_eq!(err.code(), "bom.subject_mismatch");
    let err = sign_bom(&bytes, "xyz", "model.keras", &key).unwrap_err();
    assert_eq!(err.code(), "bom.invalid_input");
    let err = sign_bom(
        br#"{"bomFormat":"CycloneDX"}"#,
        &i.trained_model.file.sha256,
        "m",
        &key,
    )
    .unwrap_err();
    assert_eq!(err.code(), "bom.schema");
    let err = sign_bom(b"not json", &i.trained_model.file.sha256, "m", &key).unwrap_err();
    assert_eq!(err.code(), "bom.malformed");
}

#[test]
fn verification_refuses_other_statements() {
    use veritrain_attest::statement::{ResourceDescriptor, Statement, sign_statement};
    let key = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let trusted = [key.public_key().clone()];
    let limits = Limits::default();
    let i = input("tabular");
    let (_, value) = bom_json(&i);
    let sha = i.trained_model.file.sha256.clone();
    let sign = |s: Statement| sign_statement(&s, &[&key]).unwrap().to_json().unwrap();

    // A BOM signed under another predicate type.
    let other_type = sign(Statement::new(
        vec![ResourceDescriptor::subject("m", &sha)],
        "https://example.com/not-a-bom",
        value.clone(),
    ));
    let err = verify_bom_envelope(&other_type, &trusted, 1, &limits).unwrap_err();
    assert_eq!(err.code(), "statement.predicate_type");

    // A statement about another artifact.
    let other_subject = sign(Statement::new(
        vec![ResourceDescriptor::subject(
            "m",
            i.base_model.file.sha256.clone(),
        )],
        veritrain_bom::PREDICATE_TYPE,
        value.clone(),
    ));
    let err = verify_bom_envelope(&other_subject, &trusted, 1, &limits).unwrap_err();
    assert_eq!(err.code(), "bom.subject_mismatch");

    // A signed predicate that is not a valid CycloneDX 1.6 BOM.
    let mut broken = value.clone();
    broken["metadata"]["component"]["modelCard"]["bomRef"] = json!("x");
    let not_valid = sign(Statement::new(
        vec![ResourceDescriptor::subject("m", &sha)],
        veritrain_bom::PREDICATE_TYPE,
        broken,
    ));
    let err = verify_bom_envelope(&not_valid, &trusted, 1, &limits).unwrap_err();
    assert_eq!(err.code(), "bom.schema");
    assert!(
        err.to_string().contains("/metadata/component/modelCard"),
        "{err}"
    );
}

#[test]
fn key_set_verification_checks_the_key_at_the_bom_timestamp() {
    let root = PrivateKey::generate(Algorithm::Ed25519).unwrap();
    let signing = PrivateKey::generate(Algorithm::EcdsaP256).unwrap();
    let limits = Limits::default();
    let i = input("tabular"); // made 2026-05-04T10:15:40Z
    let (bytes, _) = bom_json(&i);
    let env = sign_bom(
        &bytes,
        &i.trained_model.file.sha256,
        "model.keras",
        &signing,
    )
    .unwrap()
    .to_json()
    .unwrap();

    let set = KeySet::new(signing.public_key(), time("2026-01-01T00:00:00Z")).unwrap();
    let signed_set = set.sign(&root).unwrap().to_json().unwrap();
    let ks = verify_keyset(&signed_set, root.public_key(), &limits).unwrap();
    let v = verify_bom_with_keyset(&env, &ks, &limits).unwrap();
    assert_eq!(v.signers(), [signing.public_key().keyid().to_owned()]);

    // Revoked before the BOM was made: refused.
    let revoked = set
        .revoke(
            signing.public_key().keyid(),
            time("2026-05-01T00:00:00Z"),
            Some("lost".into()),
            time("2026-05-02T00:00:00Z"),
        )
        .unwrap()
        .sign(&root)
        .unwrap()
        .to_json()
        .unwrap();
    let ks = verify_keyset(&revoked, root.public_key(), &limits).unwrap();
    let err = verify_bom_with_keyset(&env, &ks, &limits).unwrap_err();
    assert_eq!(err.code(), "keyset.key_not_valid");

    // A key that only becomes valid after the BOM's timestamp: refused.
    let late = KeySet::new(signing.public_key(), time("2026-06-01T00:00:00Z"))
        .unwrap()
        .sign(&root)
        .unwrap()
        .to_json()
        .unwrap();
    let ks = verify_keyset(&late, root.public_key(), &limits).unwrap();
    let err = verify_bom_with_keyset(&env, &ks, &limits).unwrap_err();
    assert_eq!(err.code(), "keyset.key_not_valid");
}

#[test]
fn text_card_shows_identity_metrics_datasets_environment_and_trust() {
    let i = input("tabular");
    let bom = build_bom(&i).unwrap();
    let text = render_text(&bom);
    for needle in [
        "AIBoM: grain-variety-classifier 1.2.0",
        "== Model",
        "Dr. Ada Example <ada@lab.example.org>",
        "Apache-2.0",
        &i.trained_model.file.sha256,
        "== Metrics",
        "validation split (42 examples), best (epoch",
        "full evaluation of the trained model",
        "compile.optimizer",
        "== Training run",
        "validation_split",
        "== Dataset grain-samples",
        "kama, rosa, canadian",
        "Example Agricultural Lab",
        "== Base model",
        "keras-3.15.1/2",
        "== Environment",
        "AMD EPYC 7B13, 2.0 cores allowed of 16 on the host",
        "4.0 GiB (4294967296 bytes)",
        "sandbox network",
        "== Trust facts",
        "attestations/train.3f9a1c2e.link",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn text_card_neutralises_terminal_escapes() {
    let mut i = input("tabular");
    i.request.description = Some("line one\x1b[2J\x1b]0;pwned\x07 end\r \u{202e}txt.exe".into());
    let text = render_text(&build_bom(&i).unwrap());
    assert!(!text.contains('\x1b') && !text.contains('\x07') && !text.contains('\r'));
    assert!(!text.contains('\u{202e}'));
    assert!(text.contains("line one\u{fffd}[2J"));
}

#[test]
fn html_report_is_self_contained_and_escapes_user_text() {
    let mut i = input("image");
    i.request.description = Some("<script>alert('x')</script> & <b>bold</b>".into());
    i.request.use_cases = vec!["\"><img src=x onerror=alert(1)>".into()];
    let html = render_html(&build_bom(&i).unwrap());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        )
    );
    assert!(!html.contains("<img src=x"));
    // The chart is embedded; nothing is loaded from anywhere.
    assert!(html.contains("<img alt=\"training-curves\" src=\"data:image/svg+xml;base64,"));
    assert!(html.contains("default-src 'none'"));
    for external in ["http://", "https://"] {
        for attr in ["src=\"", "href=\""] {
            assert!(
                !html.contains(&format!("{attr}{external}")),
                "{attr}{external}"
            );
        }
    }
}

#[test]
fn html_report_does_not_show_a_non_image_graphic() {
    let i = input("image");
    let mut bom = build_bom(&i).unwrap();
    let card = bom
        .metadata
        .as_mut()
        .unwrap()
        .component
        .as_mut()
        .unwrap()
        .model_card
        .as_mut()
        .unwrap();
    let g = &mut card
        .quantitative_analysis
        .as_mut()
        .unwrap()
        .graphics
        .as_mut()
        .unwrap()
        .collection[0];
    g.image.as_mut().unwrap().content_type = Some("text/html".into());
    let html = render_html(&bom);
    assert!(!html.contains("data:text/html"));
    assert!(html.contains("not shown"));
}

#[test]
fn every_property_name_is_documented() {
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/aibom.md"))
            .unwrap();
    for name in props::FIXED.iter().chain(props::PREFIXES) {
        assert!(
            docs.contains(&format!("`{name}")),
            "{name} is not in docs/aibom.md"
        );
    }
    for job in ["tabular", "image"] {
        let (_, bom) = bom_json(&input(job));
        for name in veritrain_bom::build::property_names(&bom).keys() {
            assert!(
                props::FIXED.contains(&name.as_str())
                    || props::PREFIXES.iter().any(|p| name.starts_with(p)),
                "{name} is neither a documented name nor under a documented prefix"
            );
        }
    }
}

#[test]
fn bom_round_trips_through_its_types() {
    for job in ["tabular", "image"] {
        let bom = build_bom(&input(job)).unwrap();
        let bytes = to_json(&bom).unwrap();
        let back = veritrain_bom::read_bom(&bytes).unwrap();
        assert_eq!(back, bom);
        assert_eq!(to_json(&back).unwrap(), bytes);
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn snapshot() -> &'static [u8] {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        BYTES.get_or_init(|| std::fs::read(fixtures().join("image.cdx.json")).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A BOM file damaged anywhere is read or refused with a code, never
        /// a panic; whatever is read renders.
        #[test]
        fn damaged_bom_files_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = snapshot().to_vec();
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            match veritrain_bom::read_bom(&bytes) {
                Ok(bom) => {
                    let _ = render_text(&bom);
                    let _ = render_html(&bom);
                }
                Err(e) => prop_assert!(e.code().starts_with("bom."), "{}", e.code()),
            }
        }
    }
}

#[test]
fn a_real_csv_report_becomes_one_property_per_statistic() {
    use veritrain_intake::csv::{CsvLimits, validate_csv};
    use veritrain_intake::definition::{DefinitionLimits, parse_definition};
    let def = parse_definition(
        br#"
version: 1
type: csv
columns:
  - {name: a, type: float}
  - {name: b, type: float, nullable: true}
  - {name: species, type: category, values: [setosa, versicolor, virginica]}
label: species
input_shape: [2]
output_shape: [3]
"#,
        &DefinitionLimits::default(),
    )
    .unwrap();
    let csv = b"a,b,species\n1.5,0,setosa\n2.5,,versicolor\n0,3.25,virginica\n0,1,setosa\n";
    let report = validate_csv(&csv[..], &def, &CsvLimits::for_testing()).unwrap();
    let mut i = input("tabular");
    i.datasets[0].stats = serde_json::to_value(&report).unwrap();
    let (_, bom) = bom_json(&i);
    let dataset = bom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["bom-ref"] == "dataset/grain-samples")
        .unwrap();
    let stats: BTreeMap<&str, &str> = dataset["data"][0]["contents"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["value"].as_str().unwrap()))
        .collect();
    assert_eq!(stats["veritrain:stats:rows"], report.rows.to_string());
    assert_eq!(stats["veritrain:stats:bytes"], csv.len().to_string());
    // Every leaf of the report is there, as JSON text of that one value.
    let mut leaves_of_report = Vec::new();
    leaves(
        &serde_json::to_value(&report).unwrap(),
        "",
        &mut leaves_of_report,
    );
    assert_eq!(stats.len(), leaves_of_report.len(), "{stats:#?}");
    for (path, value) in leaves_of_report {
        let name = format!("veritrain:stats:{}", flat_path(&path));
        assert_eq!(stats.get(name.as_str()), Some(&value.as_str()), "{name}");
    }
}

/// `.a[0].b` (the `leaves` path form) to `a.0.b` (the property form).
fn flat_path(path: &str) -> String {
    path.trim_start_matches('.')
        .replace('[', ".")
        .replace(']', "")
}
