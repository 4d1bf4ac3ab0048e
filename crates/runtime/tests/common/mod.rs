//! Shared helpers of the slow-tier trainer tests: the one installed runtime,
//! fixtures made with it, and a direct (unsandboxed) job runner.
#![allow(dead_code)]
// Test helpers: a panic here is a test failure, which is the point.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use veritrain_runtime::run::{PreparedJob, TrainingOutcome, prepare_job, run_direct};
use veritrain_runtime::{
    ExecutionSettings, FitRequest, InstallOptions, JobPaths, JobSpec, TrainerEvent, TrainerLimits,
    VerifiedRuntime,
};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skip with a message, or panic under `CI=true` (same rule as the root
/// `tests/util`): a missing component never counts as a pass in CI.
pub fn require_or_skip(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}; under CI=true a missing component is a failure");
    }
    eprintln!("SKIPPED: {what}");
}

/// The runtime all TF tests share: `$VERITRAIN_RUNTIME_DIR`, else
/// `.venv/runtime` under the repository root. Installed on first use
/// (idempotent; concurrent test binaries wait on the install lock), then
/// verified once per test binary.
pub fn runtime() -> Option<&'static VerifiedRuntime> {
    static RT: OnceLock<Option<VerifiedRuntime>> = OnceLock::new();
    RT.get_or_init(|| {
        let dir = std::env::var_os("VERITRAIN_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv/runtime"));
        let opts = InstallOptions::new(&dir);
        let report = veritrain_runtime::install(&opts, &mut |p| {
            if let veritrain_runtime::install::Progress::Step { index, total, what } = p {
                eprintln!("runtime install [{index}/{total}] {what}");
            }
        });
        if let Err(e) = report {
            require_or_skip(&format!(
                "cannot install the runtime at {}: [{}] {e}",
                dir.display(),
                e.code()
            ));
            return None;
        }
        match VerifiedRuntime::verify(&dir) {
            Ok(v) => Some(v),
            Err(e) => {
                require_or_skip(&format!(
                    "runtime at {} fails its check: [{}] {e}",
                    dir.display(),
                    e.code()
                ));
                None
            }
        }
    })
    .as_ref()
}

/// Run the runtime's python (`-I -B`, cleared environment) on a script.
pub fn python(rt: &VerifiedRuntime, home: &Path, args: &[&str]) -> Output {
    std::fs::create_dir_all(home).unwrap();
    Command::new(rt.python())
        .args(["-I", "-B"])
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("TF_CPP_MIN_LOG_LEVEL", "2")
        .env("KERAS_BACKEND", "tensorflow")
        .output()
        .unwrap()
}

/// Make fixtures with `tests/runtime/make_fixtures.py`.
pub fn fixture(rt: &VerifiedRuntime, scratch: &Path, args: &[&str]) {
    let script = repo_root().join("tests/runtime/make_fixtures.py");
    let mut all = vec![script.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = python(rt, &scratch.join("fixture-home"), &all);
    assert!(
        out.status.success(),
        "make_fixtures {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A deterministic generator (SplitMix64) for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A CSV of `rows` examples: `features` float columns around a per-class
/// center, and a category label `c0..c{classes-1}` (learnable).
pub fn classification_csv(path: &Path, rows: usize, features: usize, classes: u64, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut s = String::new();
    let header: Vec<String> = (0..features).map(|i| format!("f{i}")).collect();
    let _ = writeln!(s, "{},label", header.join(","));
    for _ in 0..rows {
        let k = rng.below(classes);
        let cells: Vec<String> = (0..features)
            .map(|_| format!("{:.5}", k as f64 * 2.0 + rng.normal()))
            .collect();
        let _ = writeln!(s, "{},c{k}", cells.join(","));
    }
    std::fs::write(path, s).unwrap();
}

/// The definition JSON (as the intake crate serializes it) for
/// [`classification_csv`].
pub fn classification_def(
    features: usize,
    classes: u64,
    normalize: bool,
    fraction: f64,
    seed: u64,
) -> Value {
    let mut columns: Vec<Value> = (0..features)
        .map(|i| serde_json::json!({"name": format!("f{i}"), "type": "float", "nullable": false, "input": true}))
        .collect();
    let values: Vec<String> = (0..classes).map(|k| format!("c{k}")).collect();
    columns.push(serde_json::json!({"name": "label", "type": "category", "values": values, "nullable": false, "input": false}));
    serde_json::json!({
        "version": 1,
        "metadata": {"authors": []},
        "type": "csv",
        "delimiter": ",",
        "columns": columns,
        "label": {"column": "label"},
        "input_shape": [features],
        "output_shape": [classes],
        "preprocessing": {"normalize": normalize},
        "split": {"validation_fraction": fraction, "seed": seed},
    })
}

/// A finished (or failed) direct job and where its files are.
pub struct JobRun {
    pub dir: tempfile::TempDir,
    pub job: PreparedJob,
    pub out: PathBuf,
    pub result: veritrain_runtime::Result<TrainingOutcome>,
    pub events: Vec<TrainerEvent>,
}

impl JobRun {
    pub fn metrics(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.out.join("metrics.json")).unwrap()).unwrap()
    }
    pub fn split(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.out.join("split.json")).unwrap()).unwrap()
    }
    pub fn ok(&self) -> &TrainingOutcome {
        match &self.result {
            Ok(o) => o,
            Err(e) => panic!(
                "training failed: [{}] {e}\n{}",
                e.code(),
                match e {
                    veritrain_runtime::Error::TrainerFailed { stderr_tail, .. } =>
                        stderr_tail.as_str(),
                    _ => "",
                }
            ),
        }
    }
    pub fn err(&self) -> &veritrain_runtime::Error {
        match &self.result {
            Ok(_) => panic!("training succeeded but should have failed"),
            Err(e) => e,
        }
    }
}

/// Prepare and run one job directly (no sandbox) with the platform's
/// default execution settings.
pub fn train(
    rt: &VerifiedRuntime,
    dataset: Value,
    model: &Path,
    data: &Path,
    fit: FitRequest,
) -> JobRun {
    train_with(rt, dataset, model, data, fit, ExecutionSettings::default())
}

/// [`train`] with explicit execution settings.
pub fn train_with(
    rt: &VerifiedRuntime,
    dataset: Value,
    model: &Path,
    data: &Path,
    fit: FitRequest,
    execution: ExecutionSettings,
) -> JobRun {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let fit = fit.resolve(&dataset, || 1234).unwrap();
    let spec = JobSpec::new(
        JobPaths {
            model: model.to_str().unwrap().to_owned(),
            data: data.to_str().unwrap().to_owned(),
            output_dir: out.to_str().unwrap().to_owned(),
        },
        dataset,
        fit,
        execution,
        TrainerLimits::default(),
    )
    .unwrap();
    let job = prepare_job(&dir.path().join("work"), &spec).unwrap();
    let mut events = Vec::new();
    let result = run_direct(rt, &job, Duration::from_secs(600), &mut |e| {
        events.push(e.clone())
    });
    JobRun {
        dir,
        job,
        out,
        result,
        events,
    }
}

/// The median of `v` (the upper one for an even count); NaN when empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}
