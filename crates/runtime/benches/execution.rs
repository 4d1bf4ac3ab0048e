//! Benchmark behind `ExecutionSettings::default()` (docs/benchmarks.md).
//!
//! `cargo bench -p veritrain-runtime --bench execution [-- RUNS]`
//!
//! Trains two small jobs directly (no sandbox) on the installed runtime
//! under each combination of `jit_compile` and `steps_per_execution`,
//! interleaved so machine load hits every setting alike, and prints the
//! median `fit` time (from metrics.json), the median process wall time and
//! the final validation accuracy of each. The data and models are made at
//! run time with `tests/runtime/make_fixtures.py`.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::json;
use veritrain_runtime::{ExecutionSettings, FitRequest};

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let Some(rt) = runtime() else {
        eprintln!("no runtime; run `veritrain runtime install` first");
        std::process::exit(1);
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "machine: {} CPUs ({cpu}); loadavg {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let s = tempfile::tempdir().unwrap();
    let p = s.path();

    // Tabular: 10,000 rows, 15 features, 3 classes; MLP 15-128-3.
    let csv = p.join("tab.csv");
    classification_csv(&csv, 10_000, 15, 3, 1);
    let mlp = p.join("mlp.keras");
    fixture(
        rt,
        p,
        &[
            "model",
            "--arch",
            "mlp",
            "--input",
            "15",
            "--output",
            "3",
            "--hidden",
            "128",
            "--compile",
            "adam:sparse_categorical_crossentropy:accuracy",
            "--learning-rate",
            "0.001",
            "--out",
            mlp.to_str().unwrap(),
        ],
    );
    let tab_def = classification_def(15, 3, true, 0.2, 42);

    // Images: 2,000 PNGs 32x32 RGB in 4 classes; small CNN.
    let imgs = p.join("imgs");
    fixture(
        rt,
        p,
        &[
            "images",
            "--classes",
            "4",
            "--per-class",
            "500",
            "--size",
            "32,32",
            "--out",
            imgs.to_str().unwrap(),
        ],
    );
    let cnn = p.join("cnn.keras");
    fixture(
        rt,
        p,
        &[
            "model",
            "--arch",
            "cnn",
            "--input",
            "32,32,3",
            "--output",
            "4",
            "--compile",
            "adam:sparse_categorical_crossentropy:accuracy",
            "--out",
            cnn.to_str().unwrap(),
        ],
    );
    let img_def = json!({"version": 1, "metadata": {"authors": []}, "type": "image", "image_size": [32, 32],
        "color_mode": "rgb", "layout": {"kind": "folders"},
        "label": {"classes": ["class0", "class1", "class2", "class3"]},
        "input_shape": [32, 32, 3], "output_shape": [4],
        "preprocessing": {"normalize": false, "resize": "bilinear", "rescale": 0.00392156862745098},
        "split": {"validation_fraction": 0.2, "seed": 42}});

    let settings = [
        (false, 1u32),
        (false, 8),
        (false, 32),
        (true, 1),
        (true, 8),
        (true, 32),
    ];
    type Key = (&'static str, bool, u32);
    let mut fit_s: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    let mut wall_s: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    let mut acc: BTreeMap<Key, Vec<f64>> = BTreeMap::new();
    for r in 0..runs {
        for (task, model, data, def) in [
            ("tabular", &mlp, &csv, &tab_def),
            ("image", &cnn, &imgs, &img_def),
        ] {
            for &(jit, spe) in &settings {
                let run = train_with(
                    rt,
                    def.clone(),
                    model,
                    data,
                    FitRequest {
                        epochs: Some(3),
                        batch_size: Some(64),
                        ..Default::default()
                    },
                    ExecutionSettings {
                        jit_compile: jit,
                        steps_per_execution: spe,
                    },
                );
                let outcome = run.ok();
                let m = run.metrics();
                let key = (task, jit, spe);
                fit_s
                    .entry(key)
                    .or_default()
                    .push(m["timing"]["fit_s"].as_f64().unwrap());
                wall_s
                    .entry(key)
                    .or_default()
                    .push(outcome.wall.as_secs_f64());
                acc.entry(key)
                    .or_default()
                    .push(m["final_evaluation"]["accuracy"].as_f64().unwrap());
                eprintln!(
                    "run {r} {task} jit={jit} spe={spe}: fit {:.2}s wall {:.2}s",
                    m["timing"]["fit_s"].as_f64().unwrap(),
                    outcome.wall.as_secs_f64()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    println!(
        "| task | jit_compile | steps_per_execution | fit (median of {runs}) | process wall (median) | final val accuracy |"
    );
    println!("|---|---|---|---|---|---|");
    for (key, v) in &fit_s {
        println!(
            "| {} | {} | {} | {:.2} s | {:.2} s | {:.4} |",
            key.0,
            key.1,
            key.2,
            median(v.clone()),
            median(wall_s[key].clone()),
            median(acc[key].clone())
        );
    }
    println!(
        "loadavg at end {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
