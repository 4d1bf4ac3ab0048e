//! The AIBoM as [`run_job`] really produces it, without TensorFlow or a
//! sandbox: a fake runtime (the runtime crate's test support), a sandbox
//! that plays the trainer (it writes the outputs of a real quickstart run,
//! `tests/fixtures/ok_quickstart.*`, and the events), fresh keys and the
//! quickstart example. The tests read the bundle's `aibom.cdx.json` by JSON
//! path, and check it against the bundle's other files and the provenance.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use veritrain_sandbox::{CgroupStats, Outcome, PolicyFacts, SandboxCommand};

use super::*;
use crate::testing::{
    QuickstartInputs, TestKeys, fake_facts, fake_runtime, quickstart, succeeded, test_settings,
};

const BINARY_SHA: &str = "5e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The real quickstart run's `metrics.json`, as JSON to edit.
fn real_metrics() -> Value {
    serde_json::from_slice(&fs::read(fixture("ok_quickstart.metrics.json")).unwrap()).unwrap()
}

/// A sandbox that replays a real quickstart run: it writes that run's four
/// outputs (or the given `metrics.json`), reports its wall time and what the
/// cgroup measured. [`crate::testing::FakeTrainer`] makes up a two-epoch
/// run instead and reports no usage.
struct FakeTrainer {
    metrics: Vec<u8>,
    cpu_usage_usec: Option<u64>,
}

impl Sandbox for FakeTrainer {
    fn name(&self) -> &'static str {
        "fake-trainer"
    }

    fn facts(&self, _: &SandboxCommand, policy: &Policy) -> veritrain_sandbox::Result<PolicyFacts> {
        Ok(fake_facts(policy))
    }

    fn run_streaming(
        &self,
        cmd: &SandboxCommand,
        policy: &Policy,
        on_line: &mut dyn FnMut(&str),
    ) -> veritrain_sandbox::Result<Outcome> {
        let out = cmd.output_dir().unwrap();
        fs::copy(quickstart("model.keras"), out.join("model.keras")).unwrap();
        fs::write(out.join("metrics.json"), &self.metrics).unwrap();
        fs::copy(fixture("ok_quickstart.split.json"), out.join("split.json")).unwrap();
        fs::copy(
            fixture("ok_quickstart.training.log"),
            out.join("training.log"),
        )
        .unwrap();
        on_line(r#"{"event":"epoch","epoch":1,"metrics":{"loss":0.8,"accuracy":0.6}}"#);
        on_line(r#"{"event":"done","epochs":10}"#);
        Ok(succeeded(
            policy,
            Duration::from_millis(3250),
            CgroupStats {
                cpu_usage_usec: self.cpu_usage_usec,
                ..CgroupStats::default()
            },
        ))
    }
}

/// Fresh keys: a signing key valid from now and a layout for a day.
fn keys() -> JobKeys {
    let now = Utc::now();
    TestKeys::generate(now)
        .and_then(|k| k.job_keys(now, 1))
        .unwrap()
}

/// What a finished fake job left.
struct Job {
    _dir: tempfile::TempDir,
    result: Result<JobSummary>,
    bundle: PathBuf,
    runtime: RuntimeIdentity,
    policy: Policy,
}

use veritrain_runtime::RuntimeIdentity;

/// Run the quickstart job with the fake trainer writing `metrics`.
fn run(metrics: &Value, cpu_usage_usec: Option<u64>) -> Job {
    let dir = tempfile::tempdir().unwrap();
    let runtime = fake_runtime(dir.path()).unwrap();
    let sandbox = FakeTrainer {
        metrics: serde_json::to_vec_pretty(metrics).unwrap(),
        cpu_usage_usec,
    };
    let mut policy = Policy::for_testing();
    policy.limits.cpu_quota_cores = Some(0.5);
    let bundle = dir.path().join("jobs/bundle");
    let settings = JobSettings {
        supplier: Organization {
            name: "Test Operator".into(),
            ..Organization::default()
        },
        job_id: Some("job-bom-test".into()),
        binary: PlatformBinary {
            version: "0.0.0-test".into(),
            sha256: BINARY_SHA.into(),
        },
        ..test_settings(&bundle, &runtime, &sandbox, &policy)
    };
    let quickstart = QuickstartInputs::default();
    let result = run_job(&quickstart.inputs(), &settings, &keys(), &mut |_| {});
    Job {
        runtime: runtime.identity().clone(),
        _dir: dir,
        result,
        bundle,
        policy,
    }
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

/// The values of the properties named `name` in `props`.
fn props<'a>(v: &'a Value, name: &str) -> Vec<&'a str> {
    v["properties"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["name"] == name)
                .filter_map(|p| p["value"].as_str())
                .collect()
        })
        .unwrap_or_default()
}

fn prop<'a>(v: &'a Value, name: &str) -> &'a str {
    match props(v, name).as_slice() {
        [one] => one,
        other => panic!("{name}: {other:?} in {v}"),
    }
}

fn component<'a>(bom: &'a Value, bom_ref: &str) -> &'a Value {
    fn find<'a>(v: &'a Value, r: &str) -> Option<&'a Value> {
        match v {
            Value::Object(m) => {
                if m.get("bom-ref").and_then(Value::as_str) == Some(r) {
                    return Some(v);
                }
                m.values().find_map(|x| find(x, r))
            }
            Value::Array(a) => a.iter().find_map(|x| find(x, r)),
            _ => None,
        }
    }
    find(bom, bom_ref).unwrap_or_else(|| panic!("no component {bom_ref}"))
}

/// The typed parameters of a task: name -> (value, dataType).
fn parameters(task: &Value) -> BTreeMap<String, (String, String)> {
    task["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.get("parameters"))
        .flat_map(|ps| ps.as_array().unwrap())
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                (
                    p["value"].as_str().unwrap().to_owned(),
                    p["dataType"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[test]
fn the_pipeline_bom_records_what_the_job_used_at_the_right_paths() {
    let mut metrics = real_metrics();
    // A validation value that was not finite: the trainer writes null.
    metrics["history"][2]["val_loss"] = Value::Null;
    let job = run(&metrics, Some(2_500_000));
    let summary = job.result.as_ref().unwrap();
    let b = &job.bundle;
    let bytes = fs::read(b.join(AIBOM)).unwrap();
    let bom: Value = serde_json::from_slice(&bytes).unwrap();
    veritrain_bom::validate_bom(&bom).unwrap();

    // metadata: lifecycle, tool with the binary's digest, supplier, job.
    let md = &bom["metadata"];
    assert_eq!(md["lifecycles"], json!([{"phase": "build"}]));
    let tool = &md["tools"]["components"][0];
    assert_eq!(tool["name"], "veritrain");
    assert_eq!(tool["version"], "0.0.0-test");
    assert_eq!(tool["hashes"][0]["content"], BINARY_SHA);
    assert_eq!(md["supplier"]["name"], "Test Operator");
    assert_eq!(prop(md, "veritrain:job:id"), "job-bom-test");
    assert_eq!(
        md["component"]["hashes"][0]["content"],
        summary.model_sha256
    );

    // The model's real inputs and outputs, from the trained model's scan.
    let mp = &md["component"]["modelCard"]["modelParameters"];
    assert_eq!(
        mp["inputs"][0]["format"],
        "readings: float32 [?, 4] (CSV columns: air_temp_c, air_humidity_pct, soil_moisture_pct, light_klux)"
    );
    assert_eq!(
        mp["outputs"][0]["format"],
        "watering_state: float32 [?, 3] (classes: healthy, underwatered, overwatered)"
    );

    // The dataset: one file, the signed manifest's root.
    let data = component(&bom, "dataset/quickstart-greenhouse");
    assert_eq!(prop(data, "veritrain:dataset:file_count"), "1");
    assert_eq!(
        data["hashes"][0]["content"],
        sha256_file(&b.join("inputs/data.csv"))
    );
    assert_eq!(
        prop(data, "veritrain:dataset:manifest_sha256"),
        sha256_file(&b.join(DATASET_MANIFEST))
    );

    // The provenance and the BOM name the same runtime tree and manifest root.
    let env: Value = serde_json::from_slice(&fs::read(b.join(PROVENANCE)).unwrap()).unwrap();
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD
            .decode(env["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let deps = payload["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let dep = |name: &str| {
        deps.iter()
            .find(|d| d["name"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("no {name} in the provenance"))["digest"]["sha256"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        prop(data, "veritrain:dataset:manifest_root_sha256"),
        dep("#manifest")
    );
    let runtime = component(&bom, "runtime");
    assert_eq!(runtime["hashes"][0]["content"], dep("runtime"));
    assert_eq!(
        runtime["hashes"][0]["content"],
        job.runtime.tree.root_digest
    );
    assert_eq!(
        prop(runtime, "veritrain:runtime:tree_root_sha256"),
        job.runtime.tree.root_digest
    );

    // Every runtime package: purl and wheel digest from the runtime identity.
    assert!(!job.runtime.distributions.is_empty());
    for d in &job.runtime.distributions {
        let lib = component(&bom, &d.purl);
        assert_eq!(lib["type"], "library");
        assert_eq!(lib["purl"], d.purl.as_str());
        assert_eq!(lib["version"], d.version.as_str());
        assert_eq!(lib["hashes"][0]["content"], d.sha256.as_str());
    }
    // Cores and memory as the sandbox limited them.
    let cores: f64 = prop(runtime, "veritrain:cpu:cores_limit").parse().unwrap();
    assert_eq!(cores, 0.5_f64.min(host::logical_cpus() as f64));
    assert_eq!(
        prop(runtime, "veritrain:memory:limit_bytes"),
        job.policy.limits.memory_bytes.unwrap().to_string()
    );
    assert_eq!(
        prop(component(&bom, "runtime/cpu"), "veritrain:cpu:cores_limit"),
        prop(runtime, "veritrain:cpu:cores_limit")
    );

    // The job request is a component with its digest, an input of intake
    // and train.
    let request = component(&bom, "job-request");
    assert_eq!(
        request["hashes"][0]["content"],
        sha256_file(&b.join(INPUT_JOB))
    );
    assert_eq!(prop(request, "veritrain:file:name"), INPUT_JOB);

    // Three tasks, in order, with times.
    let tasks = bom["formulation"][0]["workflows"][0]["tasks"]
        .as_array()
        .unwrap();
    let uids: Vec<&str> = tasks.iter().map(|t| t["uid"].as_str().unwrap()).collect();
    assert_eq!(uids, ["intake", "train", "attest"]);
    for t in tasks {
        let start = DateTime::parse_from_rfc3339(t["timeStart"].as_str().unwrap()).unwrap();
        let end = DateTime::parse_from_rfc3339(t["timeEnd"].as_str().unwrap()).unwrap();
        assert!(start <= end, "{t}");
    }
    for t in &tasks[..2] {
        assert!(
            t["inputs"]
                .as_array()
                .unwrap()
                .contains(&json!({"resource": {"ref": "job-request"}})),
            "{}",
            t["uid"]
        );
    }
    // The train task: fit parameters as passed, compile settings as used
    // (the quickstart model was saved compiled: the job chose none), the
    // split and the steps.
    let train = &tasks[1];
    let p = parameters(train);
    let fit = &metrics["fit"];
    assert_eq!(p["epochs"].0, fit["epochs"].to_string());
    assert_eq!(p["optimizer"], ("null".to_owned(), "null".to_owned()));
    let compile = &metrics["compile"];
    assert_eq!(compile["source"], "compile_config");
    assert_eq!(p["compile.source"].0, "compile_config");
    assert_eq!(
        p["compile.optimizer"],
        ("Adam".to_owned(), "string".to_owned())
    );
    assert_eq!(
        p["compile.learning_rate"],
        (
            compile["optimizer"]["config"]["learning_rate"].to_string(),
            "number".to_owned()
        )
    );
    assert_eq!(p["compile.loss"].0, "sparse_categorical_crossentropy");
    assert_eq!(p["compile.metrics"].0, r#"["accuracy"]"#);
    assert_eq!(p["split.train_examples"].0, "480");
    assert_eq!(p["split.validation_examples"].0, "120");
    assert_eq!(p["split.seed"].0, "7");
    assert_eq!(p["steps_run"], ("150".to_owned(), "integer".to_owned()));
    assert_eq!(
        prop(train, "veritrain:compile:optimizer.class_name"),
        "Adam"
    );
    assert_eq!(prop(train, "veritrain:compile:steps_per_execution"), "32");
    assert_eq!(
        prop(train, "veritrain:compile:ignored_from_model.jit_compile"),
        "false"
    );
    assert_eq!(prop(train, "veritrain:split:algorithm"), "sha256-rank-v1");
    assert_eq!(prop(train, "veritrain:training:steps_run"), "150");
    // Its outputs: the model, and the metrics, split and log by digest.
    let outputs = train["outputs"].as_array().unwrap();
    assert_eq!(
        outputs[0],
        json!({"type": "artifact", "resource": {"ref": "trained-model"}})
    );
    for (file, ty) in [
        (OUTPUT_METRICS, "metrics"),
        (OUTPUT_SPLIT, "evidence"),
        (OUTPUT_LOG, "log"),
    ] {
        let r = outputs
            .iter()
            .find(|o| o["resource"]["externalReference"]["url"] == file)
            .unwrap_or_else(|| panic!("{file} is not an output of train"));
        assert_eq!(r["type"], ty);
        assert_eq!(
            r["resource"]["externalReference"]["hashes"][0]["content"],
            sha256_file(&b.join(file))
        );
    }

    // Metrics: stable names, slices with the split sizes, the final
    // evaluation, and the non-finite value.
    let card = &md["component"]["modelCard"];
    let pm = card["quantitativeAnalysis"]["performanceMetrics"]
        .as_array()
        .unwrap();
    assert!(
        pm.iter()
            .all(|m| m["type"] == "loss" || m["type"] == "accuracy")
    );
    assert!(pm.contains(&json!({
        "type": "accuracy",
        "value": "0.8833333253860474",
        "slice": "validation split (120 examples), full evaluation of the trained model after training"
    })));
    assert!(pm.iter().any(|m| {
        m["type"] == "accuracy"
            && m["slice"]
                .as_str()
                .unwrap()
                .starts_with("train split (480 examples), best (epoch")
    }));
    assert_eq!(prop(card, "veritrain:epoch:3:val_loss"), "non-finite");
    assert_eq!(prop(card, "veritrain:metric_goal:loss"), "minimize");
    assert_eq!(prop(card, "veritrain:metric_goal:accuracy"), "maximize");
    let envc = &card["considerations"]["environmentalConsiderations"];
    assert_eq!(prop(envc, "veritrain:training:cpu_seconds"), "2.5");
    assert_eq!(prop(envc, "veritrain:training:wall_seconds"), "3.25");

    // Every attestation by its digest.
    let refs = bom["externalReferences"].as_array().unwrap();
    for file in [
        LAYOUT.to_owned(),
        bundle::link_path(STEP_INTAKE, &summary.signer),
        bundle::link_path(STEP_TRAIN, &summary.signer),
        PROVENANCE.to_owned(),
        TRUST_KEYSET.to_owned(),
    ] {
        let r = refs
            .iter()
            .find(|r| r["url"] == file.as_str())
            .unwrap_or_else(|| panic!("{file} is not referenced"));
        assert_eq!(r["type"], "attestation");
        assert_eq!(r["hashes"][0]["content"], sha256_file(&b.join(&file)));
    }

    // No placeholder in any case.
    let mut all = Vec::new();
    strings(&bom, &mut all);
    for s in all {
        let lower = s.to_ascii_lowercase();
        assert!(
            lower != "unknown" && !lower.contains("(unknown"),
            "placeholder {s:?}"
        );
    }
}

#[test]
fn cpu_time_the_cgroup_did_not_report_is_left_out_not_zero() {
    let job = run(&real_metrics(), None);
    job.result.as_ref().unwrap();
    let bom: Value = serde_json::from_slice(&fs::read(job.bundle.join(AIBOM)).unwrap()).unwrap();
    let envc =
        &bom["metadata"]["component"]["modelCard"]["considerations"]["environmentalConsiderations"];
    assert!(props(envc, "veritrain:training:cpu_seconds").is_empty());
    assert!(!props(envc, "veritrain:training:wall_seconds").is_empty());
}

#[test]
fn a_metrics_file_without_the_compile_record_fails_the_job_and_leaves_no_bundle() {
    for (key, broken) in [
        ("compile", Value::Null),
        ("split", json!({"algorithm": "sha256-rank-v1"})),
        ("steps_run", json!(-1)),
        ("history", json!([{"epoch": 1, "loss": "low"}])),
    ] {
        let mut metrics = real_metrics();
        if broken.is_null() {
            metrics.as_object_mut().unwrap().remove(key);
        } else {
            metrics[key] = broken;
        }
        let job = run(&metrics, Some(1));
        let e = job
            .result
            .err()
            .unwrap_or_else(|| panic!("{key}: the job passed"));
        assert_eq!(e.code(), "job.trainer_report", "{key}: {e}");
        assert!(e.to_string().contains(key), "{key}: {e}");
        assert!(!job.bundle.exists(), "{key}: a bundle was left");
    }
}

#[test]
fn an_uncompiled_models_job_choice_is_recorded_as_used() {
    let mut metrics = real_metrics();
    metrics["compile"] = json!({
        "jit_compile": true,
        "steps_per_execution": 32,
        "steps_per_execution_platform": 32,
        "run_eagerly": false,
        "source": "job",
        "optimizer": {"name": "sgd", "learning_rate": 0.05000000074505806},
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy", "auc"],
        "label_encoding": "index"
    });
    let r = TrainerReport::from_metrics(&metrics).unwrap();
    assert_eq!(r.compile.source, "job");
    assert_eq!(r.compile.optimizer, "sgd");
    assert_eq!(r.compile.learning_rate, Some(0.05000000074505806));
    assert_eq!(r.compile.metrics, ["accuracy", "auc"]);
    // The quickstart's saved compile config, by class.
    let r = TrainerReport::from_metrics(&real_metrics()).unwrap();
    assert_eq!(r.compile.optimizer, "Adam");
    assert_eq!(r.compile.learning_rate, Some(0.009999999776482582));
    assert_eq!(r.split.train + r.split.validation, r.split.examples);
    assert_eq!(r.steps_run, 150);
    let ev = r.final_evaluation.unwrap();
    assert_eq!((ev.split.as_str(), ev.examples), ("validation", 120));
    assert_eq!(ev.metrics["loss"], Some(0.28314486145973206));
    // No validation split: no final evaluation, and that is not an error.
    let mut metrics = real_metrics();
    metrics["final_evaluation"] = Value::Null;
    assert_eq!(
        TrainerReport::from_metrics(&metrics)
            .unwrap()
            .final_evaluation,
        None
    );
}

#[test]
fn every_metric_the_trainer_allows_has_a_goal() {
    for m in veritrain_runtime::spec::METRICS {
        assert!(Goal::of_metric(m).is_some(), "{m}");
    }
    let specs = metric_specs(&[EpochLog {
        epoch: 1,
        logs: BTreeMap::from([
            ("mae".to_owned(), Some(0.1)),
            ("loss".to_owned(), Some(0.2)),
            ("val_mae".to_owned(), Some(0.3)),
            ("weird".to_owned(), None),
        ]),
    }]);
    assert_eq!(
        specs,
        [
            MetricSpec {
                name: "loss".into(),
                goal: Some(Goal::Minimize)
            },
            MetricSpec {
                name: "mae".into(),
                goal: Some(Goal::Minimize)
            },
            MetricSpec {
                name: "weird".into(),
                goal: None
            },
        ]
    );
}
