//! Slow tier: the real trainer on the real runtime inside the real
//! bubblewrap sandbox (`sandboxed::train_in_sandbox`). Needs root, bwrap and
//! the `veritrain-sandbox` service user (scripts/setup-deps); skips without
//! them locally and fails under `CI=true`.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use veritrain_runtime::sandboxed::{SandboxedJob, train_in_sandbox};
use veritrain_runtime::{ExecutionSettings, FitRequest, TrainerLimits, VerifiedRuntime};
use veritrain_sandbox::{Bubblewrap, CancelToken, Policy};

fn sandbox() -> Option<Bubblewrap> {
    match Bubblewrap::new() {
        Ok(b) => Some(b),
        Err(e) => {
            require_or_skip(&format!("bubblewrap unavailable: [{}] {e}", e.code()));
            None
        }
    }
}

fn mlp(rt: &VerifiedRuntime, dir: &Path, arch: &str) -> std::path::PathBuf {
    let out = dir.join(format!("{arch}.keras"));
    fixture(
        rt,
        dir,
        &[
            "model",
            "--arch",
            arch,
            "--input",
            "4",
            "--output",
            "3",
            "--compile",
            "adam:sparse_categorical_crossentropy:accuracy",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    out
}

fn run(
    rt: &VerifiedRuntime,
    bwrap: &Bubblewrap,
    model: &Path,
    data: &Path,
    scratch: &Path,
) -> veritrain_runtime::Result<veritrain_runtime::sandboxed::SandboxedTraining> {
    let dataset = classification_def(4, 3, true, 0.2, 7);
    let fit = FitRequest {
        epochs: Some(3),
        batch_size: Some(32),
        ..FitRequest::default()
    }
    .resolve(&dataset, || 1234)
    .unwrap();
    let work = scratch.join("work");
    let out = scratch.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut epochs = 0;
    train_in_sandbox(
        rt,
        bwrap,
        &Policy::default(),
        SandboxedJob {
            model,
            data,
            dataset,
            fit,
            execution: ExecutionSettings::default(),
            limits: TrainerLimits::default(),
            work_dir: &work,
            output_dir: &out,
            cancel: None,
        },
        &mut |e| {
            if matches!(e, veritrain_runtime::TrainerEvent::Epoch { .. }) {
                epochs += 1;
            }
        },
    )
    .inspect(|_| assert_eq!(epochs, 3, "one epoch event per epoch"))
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn a_csv_model_trains_inside_the_sandbox_and_reports_the_policy() {
    let (Some(rt), Some(bwrap)) = (runtime(), sandbox()) else {
        return;
    };
    let s = tempfile::tempdir().unwrap();
    let model = mlp(rt, s.path(), "mlp");
    let data = s.path().join("d.csv");
    classification_csv(&data, 300, 4, 3, 1);
    let done =
        run(rt, &bwrap, &model, &data, s.path()).unwrap_or_else(|e| panic!("[{}] {e}", e.code()));
    assert!(done.sandbox.success());
    assert_eq!(&std::fs::read(&done.outputs.model).unwrap()[..2], b"PK");
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&done.outputs.metrics).unwrap()).unwrap();
    assert_eq!(metrics["history"].as_array().unwrap().len(), 3);
    // The facts name the backend, no network and the seccomp profile.
    let facts = serde_json::to_value(&done.sandbox.facts).unwrap();
    let text = facts.to_string();
    assert!(
        text.contains("bubblewrap") || text.contains("bwrap"),
        "{text}"
    );
    assert!(text.contains("seccomp"), "{text}");
    assert_eq!(
        done.trainer_sha256,
        veritrain_runtime::trainer::sha256_hex()
    );
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn a_lambda_model_that_reaches_the_loader_is_refused_by_safe_mode_inside_the_sandbox() {
    let (Some(rt), Some(bwrap)) = (runtime(), sandbox()) else {
        return;
    };
    let s = tempfile::tempdir().unwrap();
    let model = mlp(rt, s.path(), "lambda");
    let data = s.path().join("d.csv");
    classification_csv(&data, 60, 4, 3, 1);
    let err = run(rt, &bwrap, &model, &data, s.path()).unwrap_err();
    assert_eq!(
        err.trainer_code(),
        Some("trainer.model_load_failed"),
        "{err}"
    );
    assert!(err.to_string().contains("Lambda"), "{err}");
    // No trained model came out.
    assert!(!s.path().join("out/model.keras").exists());
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn running_out_of_memory_in_the_sandbox_fails_the_job_with_that_reason() {
    let (Some(rt), Some(bwrap)) = (runtime(), sandbox()) else {
        return;
    };
    let s = tempfile::tempdir().unwrap();
    let model = mlp(rt, s.path(), "mlp");
    let data = s.path().join("d.csv");
    classification_csv(&data, 60, 4, 3, 1);
    // Importing TensorFlow alone needs about 500 MB; 192 MiB cannot hold it.
    let mut policy = Policy::default();
    policy.limits.memory_bytes = Some(192 << 20);
    let dataset = classification_def(4, 3, true, 0.2, 7);
    let fit = FitRequest {
        epochs: Some(1),
        ..FitRequest::default()
    }
    .resolve(&dataset, || 1234)
    .unwrap();
    let out = s.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let err = train_in_sandbox(
        rt,
        &bwrap,
        &policy,
        SandboxedJob {
            model: &model,
            data: &data,
            dataset,
            fit,
            execution: ExecutionSettings::default(),
            limits: TrainerLimits::default(),
            work_dir: &s.path().join("work"),
            output_dir: &out,
            cancel: None,
        },
        &mut |_| {},
    )
    .unwrap_err();
    // Either the kernel's OOM killer (the sandbox's reason) or Python's
    // MemoryError (the trainer's own code): never a success, always named.
    let named = err.code() == "runtime.sandbox_limit" && err.to_string().contains("out_of_memory")
        || err.trainer_code() == Some("trainer.out_of_memory");
    assert!(named, "[{}] {err}", err.code());
}

#[test]
#[ignore = "slow tier: run with --ignored"]
fn a_job_cancelled_while_it_trains_is_killed_with_the_cancel_code() {
    let (Some(rt), Some(bwrap)) = (runtime(), sandbox()) else {
        return;
    };
    let s = tempfile::tempdir().unwrap();
    let model = mlp(rt, s.path(), "mlp");
    let data = s.path().join("d.csv");
    classification_csv(&data, 300, 4, 3, 1);
    let dataset = classification_def(4, 3, true, 0.2, 7);
    // Far more epochs than could finish: only the cancel can end this run
    // before the wall-clock limit (which would be `runtime.trainer_timeout`).
    let fit = FitRequest {
        epochs: Some(20_000),
        batch_size: Some(8),
        ..FitRequest::default()
    }
    .resolve(&dataset, || 1234)
    .unwrap();
    let mut policy = Policy::default();
    policy.limits.wall_time = Duration::from_secs(180);
    let out = s.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let token = CancelToken::new();
    let mut cancelled_at = None;
    let err = train_in_sandbox(
        rt,
        &bwrap,
        &policy,
        SandboxedJob {
            model: &model,
            data: &data,
            dataset,
            fit,
            execution: ExecutionSettings::default(),
            limits: TrainerLimits::default(),
            work_dir: &s.path().join("work"),
            output_dir: &out,
            cancel: Some(token.clone()),
        },
        &mut |e| {
            // The user cancels once training is under way (the first epoch
            // reported); the sandbox's watchdog runs on another thread.
            if matches!(e, veritrain_runtime::TrainerEvent::Epoch { .. }) && cancelled_at.is_none()
            {
                token.cancel();
                cancelled_at = Some(Instant::now());
            }
        },
    )
    .unwrap_err();
    let cancelled_at = cancelled_at.expect("the trainer never reported an epoch");
    assert!(
        matches!(err, veritrain_runtime::Error::Cancelled),
        "[{}] {err}",
        err.code()
    );
    assert_eq!(err.code(), "job.cancelled");
    let took = cancelled_at.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "stopped {took:?} after the cancel"
    );
    // Killed mid-training: no trained model came out.
    assert!(!out.join("model.keras").exists());
}
