//! Slow tier: the real trainer on the real runtime (TensorFlow 2.21 / Keras
//! 3.15.1), run directly without the sandbox. Each test trains tiny models
//! made at test time by `tests/runtime/make_fixtures.py`; nothing is
//! downloaded. Run with `cargo test -p veritrain-runtime -- --ignored`.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use veritrain_runtime::run::supervise;
use veritrain_runtime::spec::OptimizerChoice;
use veritrain_runtime::split::{indices_digest, split_indices};
use veritrain_runtime::{
    ExecutionSettings, FitRequest, JobPaths, JobSpec, TrainerCommand, TrainerEvent, TrainerLimits,
    TrainerPaths, VerifiedRuntime,
};

fn compiled_mlp(
    rt: &VerifiedRuntime,
    dir: &Path,
    inputs: usize,
    classes: u64,
    extra: &[&str],
) -> std::path::PathBuf {
    let out = dir.join(format!("mlp_{inputs}_{classes}.keras"));
    let (i, c) = (inputs.to_string(), classes.to_string());
    let mut args = vec![
        "model",
        "--arch",
        "mlp",
        "--input",
        &i,
        "--output",
        &c,
        "--compile",
        "adam:sparse_categorical_crossentropy:accuracy",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    fixture(rt, dir, &args);
    out
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn csv_model_trains_with_its_compile_config_under_platform_settings() {
    let Some(rt) = runtime() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let model = compiled_mlp(rt, scratch.path(), 4, 3, &[]);
    let data = scratch.path().join("data.csv");
    classification_csv(&data, 300, 4, 3, 1);
    let fit = FitRequest {
        epochs: Some(5),
        batch_size: Some(32),
        ..FitRequest::default()
    };
    let run = train(
        rt,
        classification_def(4, 3, true, 0.2, 7),
        &model,
        &data,
        fit,
    );
    let outcome = run.ok();

    // Outputs: a .keras zip, metrics, split, log.
    assert_eq!(&fs::read(&outcome.outputs.model).unwrap()[..2], b"PK");
    let m = run.metrics();
    assert_eq!(m["schema"], "veritrain.metrics/v1");
    let history = m["history"].as_array().unwrap();
    assert_eq!(history.len(), 5);
    for (i, h) in history.iter().enumerate() {
        assert_eq!(h["epoch"], i as u64 + 1);
        for k in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert!(h[k].as_f64().is_some(), "epoch {i} lacks {k}: {h}");
        }
    }
    // The final evaluation is on the validation split: after the last
    // epoch, it reproduces that epoch's validation numbers.
    let fe = &m["final_evaluation"];
    assert_eq!(
        (fe["split"].as_str(), fe["examples"].as_u64()),
        (Some("validation"), Some(60))
    );
    let last = history.last().unwrap();
    assert!(
        (fe["accuracy"].as_f64().unwrap() - last["val_accuracy"].as_f64().unwrap()).abs() < 1e-6
    );
    assert!((fe["loss"].as_f64().unwrap() - last["val_loss"].as_f64().unwrap()).abs() < 1e-4);
    assert!(
        fe["accuracy"].as_f64().unwrap() > 0.7,
        "the separable data should be learnt: {fe}"
    );

    // Every fit parameter as used; the seed came from the definition.
    assert_eq!(
        m["fit"],
        json!({"epochs": 5, "batch_size": 32, "validation_split": 0.2, "initial_epoch": 0,
               "steps_per_epoch": null, "validation_steps": null, "validation_freq": 1,
               "shuffle": true, "seed": 7, "split_seed": 7, "optimizer": null, "loss": null, "metrics": null})
    );
    // Compiled from the model's own compile_config, but with the platform's
    // execution settings; the file's jit_compile=false was ignored.
    let c = &m["compile"];
    let platform = ExecutionSettings::default();
    assert_eq!(c["source"], "compile_config");
    assert_eq!(c["ignored_from_model"]["jit_compile"], false);
    assert_eq!(c["jit_compile"], platform.jit_compile);
    assert_eq!(
        c["steps_per_execution_platform"],
        platform.steps_per_execution
    );
    // No explicit step counts: the platform's value is used as is.
    assert_eq!(c["steps_per_execution"], platform.steps_per_execution);
    assert_eq!(c["run_eagerly"], false);
    assert_eq!(c["optimizer"]["class_name"], "Adam");
    assert_eq!(c["loss"], "sparse_categorical_crossentropy");
    assert_eq!(m["split"]["train"], 240);
    // 5 epochs over 240 rows in batches of 32 (the last call of each epoch
    // stops at the end of the data): 5 x 8 steps.
    assert_eq!(m["steps_run"], 40);
    assert_eq!(m["versions"]["keras"], "3.15.1");
    assert_eq!(m["versions"]["tensorflow"], "2.21.0");

    // The event stream, in order, agreeing with metrics.json.
    let kinds: Vec<&str> = run
        .events
        .iter()
        .filter_map(|e| match e {
            TrainerEvent::Start { .. } => Some("start"),
            TrainerEvent::ModelLoaded { .. } => Some("model_loaded"),
            TrainerEvent::Data { .. } => Some("data"),
            TrainerEvent::EpochBegin { .. } => Some("epoch_begin"),
            TrainerEvent::Epoch { .. } => Some("epoch"),
            TrainerEvent::Evaluation { .. } => Some("evaluation"),
            TrainerEvent::Done { .. } => Some("done"),
            _ => None,
        })
        .collect();
    let mut want = vec!["start", "model_loaded", "data"];
    for _ in 0..5 {
        want.extend(["epoch_begin", "epoch"]);
    }
    want.extend(["evaluation", "done"]);
    assert_eq!(kinds, want);
    assert!(run.events.iter().any(|e| matches!(
        e,
        TrainerEvent::Step {
            epoch: 1,
            loss: Some(_),
            ..
        }
    )));
    assert!(run.events.contains(&TrainerEvent::Data {
        kind: "csv".into(),
        examples: 300,
        train: 240,
        validation: 60
    }));
    let epoch5 = run
        .events
        .iter()
        .find_map(|e| match e {
            TrainerEvent::Epoch { epoch: 5, metrics } => Some(metrics.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(epoch5["val_accuracy"], last["val_accuracy"].as_f64());
    assert!(
        !run.events
            .iter()
            .any(|e| matches!(e, TrainerEvent::Malformed { .. })),
        "stdout carried only events"
    );
    let log = fs::read_to_string(&outcome.outputs.log).unwrap();
    assert!(log.contains(r#""event":"done""#));

    // The job ran exactly the embedded trainer, and recorded its digest.
    assert_eq!(
        run.job.trainer_sha256,
        veritrain_runtime::trainer::sha256_hex()
    );
    assert_eq!(
        fs::read(&run.job.trainer).unwrap(),
        veritrain_runtime::trainer::SOURCE.as_bytes()
    );
    // Training wrote nothing into the runtime (-B; the sandbox binds it
    // read-only): it still passes the full tamper check.
    VerifiedRuntime::verify(rt.dir()).unwrap();
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn image_model_trains_from_folders_and_from_a_flat_zip() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = s.path().join("cnn.keras");
    fixture(
        rt,
        s.path(),
        &[
            "model",
            "--arch",
            "cnn",
            "--input",
            "16,16,3",
            "--output",
            "2",
            "--compile",
            "adam:sparse_categorical_crossentropy:accuracy",
            "--out",
            model.to_str().unwrap(),
        ],
    );
    let folders = s.path().join("imgs");
    fixture(
        rt,
        s.path(),
        &[
            "images",
            "--classes",
            "2",
            "--per-class",
            "24",
            "--size",
            "16,16",
            "--odd-size",
            "--jpeg",
            "--out",
            folders.to_str().unwrap(),
        ],
    );
    let def = |layout: Value, resize: &str| {
        json!({"version": 1, "metadata": {"authors": []}, "type": "image", "image_size": [16, 16],
               "color_mode": "rgb", "layout": layout, "label": {"classes": ["class0", "class1"]},
               "input_shape": [16, 16, 3], "output_shape": [2],
               "preprocessing": {"normalize": false, "resize": resize, "rescale": 0.00392156862745098},
               "split": {"validation_fraction": 0.25, "seed": 3}})
    };
    let fit = || FitRequest {
        epochs: Some(3),
        batch_size: Some(8),
        ..FitRequest::default()
    };
    let run = train(
        rt,
        def(json!({"kind": "folders"}), "bilinear"),
        &model,
        &folders,
        fit(),
    );
    run.ok();
    let m = run.metrics();
    assert_eq!(
        (
            m["split"]["examples"].as_u64(),
            m["split"]["train"].as_u64()
        ),
        (Some(48), Some(36))
    );
    assert_eq!(m["history"].as_array().unwrap().len(), 3);

    // Flat layout read straight from the ZIP, never extracted.
    let zip = s.path().join("flat.zip");
    fixture(
        rt,
        s.path(),
        &[
            "images",
            "--classes",
            "2",
            "--per-class",
            "20",
            "--size",
            "16,16",
            "--flat",
            "--out",
            zip.to_str().unwrap(),
        ],
    );
    let flat = json!({"kind": "flat", "labels_csv": "meta/labels.csv", "file_column": "filename", "label_column": "label"});
    let run = train(rt, def(flat, "bilinear"), &model, &zip, fit());
    run.ok();
    assert_eq!(run.metrics()["split"]["examples"], 40);

    // resize: none with images of another size is a bad shape, not a
    // silent resize.
    let run = train(
        rt,
        def(json!({"kind": "folders"}), "none"),
        &model,
        &folders,
        fit(),
    );
    assert_eq!(
        run.err().trainer_code(),
        Some("trainer.bad_shape"),
        "{}",
        run.err()
    );
    assert!(
        run.err().to_string().contains("resize is none"),
        "{}",
        run.err()
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn tfrecord_model_trains_on_the_declared_features() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = compiled_mlp(rt, s.path(), 6, 3, &[]);
    let data = s.path().join("data.tfrecord");
    fixture(
        rt,
        s.path(),
        &[
            "tfrecord",
            "--rows",
            "200",
            "--features",
            "6",
            "--classes",
            "3",
            "--out",
            data.to_str().unwrap(),
        ],
    );
    let def = json!({"version": 1, "metadata": {"authors": []}, "type": "tfrecord",
        "features": [{"name": "x", "dtype": "float32", "shape": [6]}, {"name": "label", "dtype": "int64", "shape": []}],
        "label": {"feature": "label", "dtype": "int64", "classes": ["a", "b", "c"]},
        "flatten_features": true, "input_shape": [6], "output_shape": [3],
        "preprocessing": {"normalize": true}, "split": {"validation_fraction": 0.2, "seed": 5}});
    let run = train(
        rt,
        def,
        &model,
        &data,
        FitRequest {
            epochs: Some(6),
            batch_size: Some(16),
            ..Default::default()
        },
    );
    run.ok();
    let m = run.metrics();
    assert_eq!(
        (
            m["split"]["examples"].as_u64(),
            m["split"]["validation"].as_u64()
        ),
        (Some(200), Some(40))
    );
    assert_eq!(
        m["preprocessing"]["normalization"]["mean"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert!(
        m["final_evaluation"]["accuracy"].as_f64().unwrap() > 0.5,
        "{}",
        m["final_evaluation"]
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn split_is_decided_once_disjoint_and_recomputable() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = compiled_mlp(rt, s.path(), 4, 3, &[]);
    let data = s.path().join("data.csv");
    classification_csv(&data, 300, 4, 3, 2);
    let one = train(
        rt,
        classification_def(4, 3, false, 0.2, 7),
        &model,
        &data,
        FitRequest {
            epochs: Some(1),
            ..Default::default()
        },
    );
    one.ok();
    let three = train(
        rt,
        classification_def(4, 3, false, 0.2, 7),
        &model,
        &data,
        FitRequest {
            epochs: Some(3),
            seed: Some(99),
            ..Default::default()
        },
    );
    three.ok();
    let (a, b) = (one.split(), three.split());
    // The same split whatever the epochs or the training seed: decided by
    // (n, fraction, split seed) alone, before any shuffle.
    assert_eq!(a, b);
    let train_idx = u64s(&a["train_indices"]);
    let val_idx = u64s(&a["validation_indices"]);
    let t: BTreeSet<u64> = train_idx.iter().copied().collect();
    let v: BTreeSet<u64> = val_idx.iter().copied().collect();
    assert!(t.is_disjoint(&v));
    assert_eq!(
        t.union(&v).copied().collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    // The Rust rule recomputes exactly what the Python trainer used.
    let (rt_train, rt_val) = split_indices(300, 0.2, 7);
    assert_eq!((train_idx.clone(), val_idx.clone()), (rt_train, rt_val));
    let m = three.metrics();
    assert_eq!(
        m["split"]["train_indices_sha256"],
        indices_digest(&train_idx)
    );
    assert_eq!(
        m["split"]["validation_indices_sha256"],
        indices_digest(&val_idx)
    );
    assert_eq!(m["fit"]["seed"], 99);
    assert_eq!(m["fit"]["split_seed"], 7);
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn validation_examples_never_reach_training() {
    // Labels are coin flips independent of the features, so the only way
    // to predict a validation label is to have trained on that example. A
    // wide MLP memorizes its training split; if validation rows leaked into
    // training (the prior art re-split every epoch), validation accuracy
    // would climb with it. With one split it stays near chance.
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let (features, rows) = (32usize, 400usize);
    let model = compiled_mlp(rt, s.path(), features, 2, &["--hidden", "256"]);
    let data = s.path().join("noise.csv");
    let mut rng = Rng::new(17);
    let mut text = (0..features)
        .map(|i| format!("f{i}"))
        .collect::<Vec<_>>()
        .join(",")
        + ",label\n";
    for _ in 0..rows {
        let cells: Vec<String> = (0..features)
            .map(|_| format!("{:.5}", rng.normal()))
            .collect();
        text += &format!("{},c{}\n", cells.join(","), rng.below(2));
    }
    fs::write(&data, text).unwrap();
    let run = train(
        rt,
        classification_def(features, 2, false, 0.25, 11),
        &model,
        &data,
        FitRequest {
            epochs: Some(60),
            batch_size: Some(32),
            ..Default::default()
        },
    );
    run.ok();
    let m = run.metrics();
    let last = m["history"].as_array().unwrap().last().unwrap().clone();
    let train_acc = last["accuracy"].as_f64().unwrap();
    let val_acc = m["final_evaluation"]["accuracy"].as_f64().unwrap();
    assert!(
        train_acc >= 0.9,
        "the model should memorize its training split: {last}"
    );
    assert!(
        val_acc <= 0.7,
        "validation accuracy {val_acc} on random labels means validation rows were trained on"
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn normalization_statistics_come_from_the_training_split_only() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let (n, fraction, seed) = (200u64, 0.3, 9u64);
    // Knowing the split rule, put validation rows far away (x ~ 1000) and
    // training rows near 5: statistics over all rows would be dominated by
    // the validation rows.
    let (train_idx, val_idx) = split_indices(n, fraction, seed);
    let val: BTreeSet<u64> = val_idx.iter().copied().collect();
    let mut rng = Rng::new(3);
    let mut text = String::from("f0,label\n");
    let mut train_x = Vec::new();
    for i in 0..n {
        let x = if val.contains(&i) {
            1000.0 + rng.normal()
        } else {
            5.0 + 2.0 * rng.normal()
        };
        let cell = format!("{x:.5}");
        if !val.contains(&i) {
            train_x.push(cell.parse::<f64>().unwrap());
        }
        text += &format!("{cell},c{}\n", rng.below(2));
    }
    fs::write(s.path().join("d.csv"), text).unwrap();
    let model = compiled_mlp(rt, s.path(), 1, 2, &[]);
    let run = train(
        rt,
        classification_def(1, 2, true, fraction, seed),
        &model,
        &s.path().join("d.csv"),
        FitRequest {
            epochs: Some(1),
            ..Default::default()
        },
    );
    run.ok();
    let norm = run.metrics()["preprocessing"]["normalization"].clone();
    assert_eq!(norm["computed_on"], "train");
    assert_eq!(norm["examples"], train_idx.len());
    let k = train_x.len() as f64;
    let mean = train_x.iter().sum::<f64>() / k;
    let std = (train_x.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / k).sqrt();
    // float32 data, float64 statistics.
    let (got_mean, got_std) = (
        norm["mean"][0].as_f64().unwrap(),
        norm["std"][0].as_f64().unwrap(),
    );
    assert!(
        (got_mean - mean).abs() < 1e-3,
        "mean {got_mean} vs train-split mean {mean}"
    );
    assert!(
        (got_std - std).abs() < 1e-3,
        "std {got_std} vs train-split std {std}"
    );
    assert!(
        got_mean < 10.0,
        "validation rows leaked into the statistics: {norm}"
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn config_guard_catches_every_global_change() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = compiled_mlp(rt, s.path(), 4, 3, &[]);
    // The exact trainer bytes the worker runs.
    let trainer = veritrain_runtime::trainer::write_to(&s.path().join("app")).unwrap();
    let script = repo_root().join("tests/runtime/check_config_guard.py");
    let out = python(
        rt,
        &s.path().join("home"),
        &[
            script.to_str().unwrap(),
            trainer.to_str().unwrap(),
            model.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [
        "keras.config.max_epochs",
        "keras.config.floatx",
        "keras.safe_mode_saving",
        "keras.config.dtype_policy",
    ] {
        assert!(stdout.contains(&format!("ok   detects {name}")), "{stdout}");
    }
    assert!(
        stdout.contains("ok   tampering load is refused"),
        "{stdout}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn isolated_mode_ignores_modules_planted_next_to_the_model() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let hostile = s.path().join("hostile");
    let markers = s.path().join("markers");
    fs::create_dir_all(&markers).unwrap();
    // The trainer, the model, the data, the spec and the working directory
    // all in one directory that also holds modules named like ones the
    // trainer and TensorFlow import, plus the interpreter's start-up hooks.
    let trainer = veritrain_runtime::trainer::write_to(&hostile).unwrap();
    let model = compiled_mlp(rt, &hostile, 4, 3, &[]);
    let data = hostile.join("data.csv");
    classification_csv(&data, 60, 4, 3, 4);
    let plant = |rel: &str| {
        let path = hostile.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let code = format!(
            "open({:?}, 'w').close()\nraise SystemExit(97)\n",
            markers.join(rel.replace('/', "_")).to_str().unwrap()
        );
        fs::write(path, code).unwrap();
    };
    for rel in [
        "keras_nlp/__init__.py",
        "keras_hub/__init__.py",
        "numpy/__init__.py",
        "tensorflow/__init__.py",
        "json.py",
        "csv.py",
        "sitecustomize.py",
        "usercustomize.py",
    ] {
        plant(rel);
    }
    let out = hostile.join("out");
    let fit = FitRequest {
        epochs: Some(1),
        ..Default::default()
    }
    .resolve(&classification_def(4, 3, false, 0.2, 1), || 1)
    .unwrap();
    let spec = JobSpec::new(
        JobPaths {
            model: model.to_str().unwrap().into(),
            data: data.to_str().unwrap().into(),
            output_dir: out.to_str().unwrap().into(),
        },
        classification_def(4, 3, false, 0.2, 1),
        fit,
        ExecutionSettings::default(),
        TrainerLimits::default(),
    )
    .unwrap();
    let spec_path = hostile.join("job.json");
    fs::write(&spec_path, spec.to_json()).unwrap();
    let paths = TrainerPaths {
        venv: rt.venv(),
        trainer,
        spec: spec_path,
        home: hostile.join("home"),
        cwd: hostile.clone(),
    };
    fs::create_dir_all(&paths.home).unwrap();
    let hostile_env = |c: &mut std::process::Command| {
        c.env("PYTHONPATH", &hostile)
            .env("PYTHONSTARTUP", hostile.join("sitecustomize.py"))
            .env("PYTHONUSERBASE", &hostile);
    };

    // The platform's command line: trains, imports none of them.
    let mut cmd = TrainerCommand::new(&paths).to_command();
    hostile_env(&mut cmd);
    let result = supervise(cmd, &out, Duration::from_secs(600), &mut |_| {});
    if let Err(e) = &result {
        panic!("[{}] {e}", e.code());
    }
    let planted: Vec<_> = fs::read_dir(&markers)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        planted.is_empty(),
        "planted modules were imported: {planted:?}"
    );

    // Control: the same command without -I imports them. This proves the
    // planted files would be found, so the check above can fail.
    let mut without = TrainerCommand::new(&paths);
    without.args.retain(|a| a != "-I");
    let mut cmd = without.to_command();
    hostile_env(&mut cmd);
    let result = supervise(
        cmd,
        &hostile.join("out2"),
        Duration::from_secs(600),
        &mut |_| {},
    );
    assert!(result.is_err());
    let planted: Vec<_> = fs::read_dir(&markers)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !planted.is_empty(),
        "without -I the planted modules should have been imported"
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn nan_loss_fails_the_job_with_a_reason() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = s.path().join("reg.keras");
    // Saved uncompiled: the job chooses optimizer and loss from the allow-list.
    fixture(
        rt,
        s.path(),
        &[
            "model",
            "--arch",
            "mlp",
            "--input",
            "1",
            "--output",
            "1",
            "--activation",
            "linear",
            "--out",
            model.to_str().unwrap(),
        ],
    );
    let mut rng = Rng::new(5);
    let mut text = String::from("x,y\n");
    for _ in 0..200 {
        let x = 100.0 * rng.normal();
        text += &format!("{x:.4},{:.4}\n", 1e4 * x);
    }
    fs::write(s.path().join("d.csv"), text).unwrap();
    let def = json!({"version": 1, "metadata": {"authors": []}, "type": "csv", "delimiter": ",",
        "columns": [{"name": "x", "type": "float", "nullable": false, "input": true},
                    {"name": "y", "type": "float", "nullable": false, "input": false}],
        "label": {"column": "y"}, "input_shape": [1], "output_shape": [1],
        "preprocessing": {"normalize": false}, "split": {"validation_fraction": 0.2, "seed": 1}});
    let fit = FitRequest {
        epochs: Some(5),
        optimizer: Some(OptimizerChoice {
            name: "sgd".into(),
            learning_rate: Some(1e3),
        }),
        loss: Some("mean_squared_error".into()),
        ..Default::default()
    };
    let run = train(rt, def, &model, &s.path().join("d.csv"), fit);
    let err = run.err();
    assert_eq!(
        (err.code(), err.trainer_code()),
        ("runtime.trainer_failed", Some("trainer.nan_loss")),
        "{err}"
    );
    assert!(err.to_string().contains("epoch 1"), "{err}");
    // A failed job leaves no model to be mistaken for a result.
    assert!(!run.out.join("model.keras").exists());
    assert!(!run.out.join("metrics.json").exists());
    assert!(
        run.events
            .iter()
            .any(|e| matches!(e, TrainerEvent::Error { code, .. } if code == "trainer.nan_loss"))
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn model_and_data_shapes_must_agree() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = compiled_mlp(rt, s.path(), 5, 3, &[]);
    let data = s.path().join("d.csv");
    classification_csv(&data, 50, 4, 3, 1);
    let run = train(
        rt,
        classification_def(4, 3, false, 0.2, 1),
        &model,
        &data,
        FitRequest {
            epochs: Some(1),
            ..Default::default()
        },
    );
    let err = run.err();
    assert_eq!(err.trainer_code(), Some("trainer.bad_shape"), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("(None, 5)") && msg.contains("[4]"), "{msg}");
    // Refused before any training.
    assert!(
        !run.events
            .iter()
            .any(|e| matches!(e, TrainerEvent::EpochBegin { .. }))
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn optimizer_loss_and_metrics_come_from_exactly_one_place() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let data = s.path().join("d.csv");
    classification_csv(&data, 80, 4, 3, 1);
    let def = || classification_def(4, 3, false, 0.2, 1);
    let uncompiled = s.path().join("u.keras");
    fixture(
        rt,
        s.path(),
        &[
            "model",
            "--arch",
            "mlp",
            "--input",
            "4",
            "--output",
            "3",
            "--out",
            uncompiled.to_str().unwrap(),
        ],
    );

    // Uncompiled and nothing chosen: refused.
    let run = train(
        rt,
        def(),
        &uncompiled,
        &data,
        FitRequest {
            epochs: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(
        run.err().trainer_code(),
        Some("trainer.not_compiled"),
        "{}",
        run.err()
    );

    // Uncompiled with an allow-listed choice: used and recorded; a
    // categorical_crossentropy loss gets one-hot labels.
    let choice = FitRequest {
        epochs: Some(2),
        optimizer: Some(OptimizerChoice {
            name: "rmsprop".into(),
            learning_rate: Some(0.005),
        }),
        loss: Some("categorical_crossentropy".into()),
        metrics: Some(vec!["categorical_accuracy".into()]),
        ..Default::default()
    };
    let run = train(rt, def(), &uncompiled, &data, choice.clone());
    run.ok();
    let c = run.metrics()["compile"].clone();
    assert_eq!(c["source"], "job");
    assert_eq!(c["optimizer"]["name"], "rmsprop");
    assert!((c["optimizer"]["learning_rate"].as_f64().unwrap() - 0.005).abs() < 1e-9);
    assert_eq!(c["label_encoding"], "one_hot");
    assert!(run.metrics()["history"][1]["val_categorical_accuracy"].is_number());

    // Compiled model plus a job choice: ambiguous, refused.
    let compiled = compiled_mlp(rt, s.path(), 4, 3, &[]);
    let run = train(rt, def(), &compiled, &data, choice);
    assert_eq!(
        run.err().trainer_code(),
        Some("trainer.spec_invalid"),
        "{}",
        run.err()
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn every_fit_parameter_is_honoured_and_recorded() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = compiled_mlp(rt, s.path(), 4, 3, &[]);
    let data = s.path().join("d.csv");
    classification_csv(&data, 300, 4, 3, 8);
    let fit = FitRequest {
        epochs: Some(4),
        batch_size: Some(16),
        validation_split: Some(0.3),
        initial_epoch: Some(1),
        steps_per_epoch: Some(3),
        validation_steps: Some(2),
        validation_freq: Some(2),
        shuffle: Some(false),
        seed: Some(21),
        ..Default::default()
    };
    let run = train(
        rt,
        classification_def(4, 3, false, 0.2, 4),
        &model,
        &data,
        fit,
    );
    run.ok();
    let m = run.metrics();
    assert_eq!(
        m["fit"],
        json!({"epochs": 4, "batch_size": 16, "validation_split": 0.3, "initial_epoch": 1,
               "steps_per_epoch": 3, "validation_steps": 2, "validation_freq": 2,
               "shuffle": false, "seed": 21, "split_seed": 4, "optimizer": null, "loss": null, "metrics": null})
    );
    // initial_epoch 1 of 4: epochs 2, 3, 4 run; validation every 2nd epoch.
    let history = m["history"].as_array().unwrap();
    let epochs: Vec<u64> = history
        .iter()
        .map(|h| h["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [2, 3, 4]);
    let validated: Vec<bool> = history
        .iter()
        .map(|h| h.get("val_loss").is_some())
        .collect();
    assert_eq!(validated, [true, false, true]);
    // steps_per_epoch: exactly 3 steps in every epoch.
    for epoch in [2u64, 3, 4] {
        let max_step = run
            .events
            .iter()
            .filter_map(|e| match e {
                TrainerEvent::Step {
                    epoch: ep, step, ..
                } if *ep == epoch => Some(*step),
                _ => None,
            })
            .max();
        assert!(
            max_step.is_some_and(|s| s <= 3),
            "epoch {epoch}: {max_step:?}"
        );
    }
    // steps_per_epoch: exactly 3 optimizer steps in each of the 3 epochs.
    assert_eq!(m["steps_run"], 9);
    // Whole calls must divide steps_per_epoch (3) and validation_steps (2).
    assert_eq!(m["compile"]["steps_per_execution"], 1);
    // validation_split from the job overrides the definition's 0.2; the
    // final evaluation covers the whole validation split, not 2 batches.
    assert_eq!(m["split"]["validation"], 90);
    assert_eq!(m["final_evaluation"]["examples"], 90);
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn a_lambda_model_that_reaches_the_loader_is_refused_by_safe_mode() {
    let Some(rt) = runtime() else { return };
    let s = tempfile::tempdir().unwrap();
    let model = s.path().join("lambda.keras");
    fixture(
        rt,
        s.path(),
        &[
            "model",
            "--arch",
            "lambda",
            "--input",
            "4",
            "--output",
            "3",
            "--compile",
            "adam:sparse_categorical_crossentropy:accuracy",
            "--out",
            model.to_str().unwrap(),
        ],
    );
    let data = s.path().join("d.csv");
    classification_csv(&data, 40, 4, 3, 1);
    let run = train(
        rt,
        classification_def(4, 3, false, 0.2, 1),
        &model,
        &data,
        FitRequest {
            epochs: Some(1),
            ..Default::default()
        },
    );
    let err = run.err();
    assert_eq!(
        err.trainer_code(),
        Some("trainer.model_load_failed"),
        "{err}"
    );
    assert!(err.to_string().contains("Lambda"), "{err}");
}
