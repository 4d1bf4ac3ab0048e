//! Benchmark: one small training job inside the sandbox against the same
//! job run directly, interleaved in one run (issue #4 target: at most 3 %
//! overhead). Results go to docs/benchmarks.md.
//!
//! `cargo bench -p veritrain-runtime --bench sandbox_overhead [-- RUNS]`
//! (root, bwrap and the `veritrain-sandbox` user needed; the runtime is
//! taken from `$VERITRAIN_RUNTIME_DIR` or `.venv/runtime`).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use veritrain_runtime::run::{prepare_job, run_direct};
use veritrain_runtime::sandboxed::{SandboxedJob, train_in_sandbox};
use veritrain_runtime::{ExecutionSettings, FitRequest, JobPaths, JobSpec, TrainerLimits};
use veritrain_sandbox::{Bubblewrap, Policy};

fn fit_secs(metrics: &std::path::Path) -> f64 {
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(metrics).unwrap()).unwrap();
    m["timing"]["fit_s"].as_f64().unwrap_or(f64::NAN)
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let Some(rt) = runtime() else {
        eprintln!("no runtime; run `veritrain runtime install` first");
        std::process::exit(1);
    };
    let bwrap = Bubblewrap::new().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let model = scratch.path().join("mlp.keras");
    fixture(
        rt,
        scratch.path(),
        &[
            "model",
            "--arch",
            "mlp",
            "--input",
            "8",
            "--output",
            "4",
            "--compile",
            "adam:sparse_categorical_crossentropy:accuracy",
            "--out",
            model.to_str().unwrap(),
        ],
    );
    let data = scratch.path().join("d.csv");
    classification_csv(&data, 20_000, 8, 4, 3);
    let dataset = classification_def(8, 4, true, 0.2, 7);
    let fit = FitRequest {
        epochs: Some(5),
        batch_size: Some(64),
        ..FitRequest::default()
    }
    .resolve(&dataset, || 1234)
    .unwrap();

    let (mut direct, mut boxed) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Direct.
        let dir = scratch.path().join(format!("direct{i}"));
        let out = dir.join("out");
        let spec = JobSpec::new(
            JobPaths {
                model: model.to_str().unwrap().to_owned(),
                data: data.to_str().unwrap().to_owned(),
                output_dir: out.to_str().unwrap().to_owned(),
            },
            dataset.clone(),
            fit.clone(),
            ExecutionSettings::default(),
            TrainerLimits::default(),
        )
        .unwrap();
        let job = prepare_job(&dir.join("work"), &spec).unwrap();
        let t = Instant::now();
        let done = run_direct(rt, &job, Duration::from_secs(900), &mut |_| {}).unwrap();
        direct.push((t.elapsed().as_secs_f64(), fit_secs(&done.outputs.metrics)));

        // Sandboxed.
        let dir = scratch.path().join(format!("boxed{i}"));
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let t = Instant::now();
        let done = train_in_sandbox(
            rt,
            &bwrap,
            &Policy::default(),
            SandboxedJob {
                model: &model,
                data: &data,
                dataset: dataset.clone(),
                fit: fit.clone(),
                execution: ExecutionSettings::default(),
                limits: TrainerLimits::default(),
                work_dir: &dir.join("work"),
                output_dir: &out,
                cancel: None,
            },
            &mut |_| {},
        )
        .unwrap();
        boxed.push((t.elapsed().as_secs_f64(), fit_secs(&done.outputs.metrics)));
        eprintln!("run {i}: direct {:?}, sandboxed {:?}", direct[i], boxed[i]);
    }
    let dw = median(direct.iter().map(|r| r.0).collect());
    let bw = median(boxed.iter().map(|r| r.0).collect());
    let df = median(direct.iter().map(|r| r.1).collect());
    let bf = median(boxed.iter().map(|r| r.1).collect());
    println!("| case | median wall s | median fit s |");
    println!("|---|---|---|");
    println!("| direct | {dw:.2} | {df:.2} |");
    println!("| sandboxed | {bw:.2} | {bf:.2} |");
    println!(
        "overhead: wall {:+.1} %, fit {:+.1} % ({runs} interleaved runs)",
        (bw / dw - 1.0) * 100.0,
        (bf / df - 1.0) * 100.0
    );
}
