//! `veritrain bench provenance`: what a job costs beyond the training.
//!
//! Each run is one `veritrain train` of the quickstart example, done in
//! process with the same calls: the runtime tamper check, loading the keys,
//! probing bubblewrap, hashing the running binary, then
//! [`run_job`]. `run_job` reports its total, the sandboxed training call and
//! its hashing ([`veritrain_pipeline::job::JobTiming`]); the overhead is
//! total − training − hashing. The stage events split it further: intake
//! (copying the inputs, the gate, signing the intake link), the train stage
//! around the sandboxed call, and attestation (signing, SLSA provenance,
//! AIBoM, publishing the bundle).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use veritrain_bom::input::Organization;
use veritrain_intake::gate::GateLimits;
use veritrain_pipeline::{
    JobInputs, JobKeys, JobSettings, PlatformBinary, Progress, Stage, run_job,
};
use veritrain_sandbox::{Bubblewrap, Policy};

use super::super::bench::{load_average, median, proc_status};
use super::{check_runtime, demo_keys, job_error, ms, print_machine, runtime_dir};

/// The quickstart example, as `veritrain quickstart` trains it.
const EXAMPLE: [(&str, &[u8]); 4] = [
    (
        "model.keras",
        include_bytes!("../../../examples/quickstart/model.keras"),
    ),
    (
        "data.csv",
        include_bytes!("../../../examples/quickstart/data.csv"),
    ),
    (
        "definition.yaml",
        include_bytes!("../../../examples/quickstart/definition.yaml"),
    ),
    (
        "job.yaml",
        include_bytes!("../../../examples/quickstart/job.yaml"),
    ),
];

/// The target of issue #6: at most this much beyond training and hashing.
const TARGET: Duration = Duration::from_millis(100);

/// Arguments of `veritrain bench provenance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Jobs to run, each into a new bundle.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Scratch directory for the demo keys, the example and the bundles
    /// (keys found there are reused). Default:
    /// $TMPDIR/veritrain-bench-provenance.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The trainer runtime (default: $VERITRAIN_RUNTIME_DIR, else
    /// .venv/runtime).
    #[arg(long)]
    runtime: Option<PathBuf>,
}

/// One job's timings.
#[derive(Debug, Default)]
struct Run {
    /// `VerifiedRuntime::verify`: the venv re-hashed before the job.
    runtime_check: Duration,
    /// `JobKeys::load`: read and verify the key set and layout.
    keys: Duration,
    /// `Bubblewrap::new`: run `bwrap --version`.
    sandbox_probe: Duration,
    /// `PlatformBinary::current`: hash the running executable.
    binary_hash: Duration,
    /// `run_job`'s own timing.
    total: Duration,
    training: Duration,
    hashing: Duration,
    /// Hashing of the inputs and of the outputs, from the progress events.
    hash_inputs: Duration,
    hash_outputs: Duration,
    /// From the `run_job` call to the intake stage event.
    before_intake: Duration,
    /// Between stage events; `attest` ends when `run_job` returns.
    intake: Duration,
    train_stage: Duration,
    check: Duration,
    attest: Duration,
}

impl Run {
    /// total − training − hashing.
    fn overhead(&self) -> Duration {
        self.total.saturating_sub(self.training + self.hashing)
    }

    /// Intake without its hashing. The check stage is all hashing (the
    /// re-hash of every input the sandbox saw), so the hashing not
    /// reported by an event (the dataset manifest and the re-check) minus
    /// the check stage is the dataset manifest, done during intake.
    fn intake_other(&self) -> Duration {
        let manifest = self
            .hashing
            .saturating_sub(self.hash_inputs + self.hash_outputs + self.check);
        self.intake.saturating_sub(self.hash_inputs + manifest)
    }

    fn train_other(&self) -> Duration {
        self.train_stage.saturating_sub(self.training)
    }

    fn attest_other(&self) -> Duration {
        self.attest.saturating_sub(self.hash_outputs)
    }

    /// Per-job work outside `run_job` that is not hashing.
    fn setup(&self) -> Duration {
        self.keys + self.sandbox_probe
    }
}

/// Run `veritrain bench provenance`.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let scratch = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("veritrain-bench-provenance"));
    print_machine("veritrain bench provenance");
    let runtime_dir = runtime_dir(args.runtime.as_deref())?;

    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let scratch = std::path::absolute(&scratch)?;
    let keys = demo_keys(&scratch)?;
    let example = scratch.join("example");
    std::fs::create_dir_all(&example)?;
    for (name, bytes) in EXAMPLE {
        std::fs::write(example.join(name), bytes)?;
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let bundles = scratch.join("bundles");
    let exe_bytes = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map_or(0, |m| m.len());
    println!(
        "job: the quickstart example ({}), keys {}, bundles under {}",
        example.display(),
        keys.display(),
        bundles.display()
    );
    println!();

    let mut runs = Vec::new();
    for i in 0..args.reps {
        let out = bundles.join(format!("{stamp}-{i}"));
        let run = one_job(&runtime_dir, &keys, &example, &out)?;
        eprintln!(
            "run {}/{}: total {:.2} s, training {:.2} s, hashing {:.1} ms, overhead {:.1} ms",
            i + 1,
            args.reps,
            run.total.as_secs_f64(),
            run.training.as_secs_f64(),
            ms(run.hashing),
            ms(run.overhead()),
        );
        runs.push(run);
    }

    println!("load average after: {}", load_average());
    println!("runs: {}", args.reps);
    println!();
    print!("{}", runs_table(&runs));
    println!();
    print!("{}", breakdown_table(&runs, exe_bytes));
    println!();

    let med = |f: fn(&Run) -> Duration| -> f64 {
        let v: Vec<Duration> = runs.iter().map(f).collect();
        median(&v) * 1e3
    };
    let target_ms = ms(TARGET);
    let overhead = med(Run::overhead);
    let verdict = |v: f64| if v <= target_ms { "met" } else { "MISSED" };
    println!(
        "overhead of run_job (total - training - hashing), median: {overhead:.1} ms; \
         target <= {target_ms:.0} ms: {}",
        verdict(overhead)
    );
    let command = med(|r| r.overhead() + r.setup());
    println!(
        "overhead of the whole `veritrain train` (adds loading the keys and probing bwrap; \
         the runtime check and the binary hash count as hashing), median: {command:.1} ms; \
         target <= {target_ms:.0} ms: {}",
        verdict(command)
    );
    println!(
        "peak RSS of this process (VmHWM): {}",
        proc_status("VmHWM").unwrap_or_else(|| "unknown".into())
    );
    Ok(ExitCode::SUCCESS)
}

/// One `veritrain train` of the example into `out`, in process.
fn one_job(
    runtime_dir: &std::path::Path,
    keys: &std::path::Path,
    example: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<Run> {
    let mut run = Run::default();
    let (runtime, elapsed) = check_runtime(runtime_dir)?;
    run.runtime_check = elapsed;

    let t = Instant::now();
    let job_keys = JobKeys::load(keys, chrono::Utc::now()).map_err(|e| job_error(&e))?;
    run.keys = t.elapsed();
    let t = Instant::now();
    let sandbox = Bubblewrap::new().map_err(|e| anyhow::anyhow!("[{}] {e}", e.code()))?;
    run.sandbox_probe = t.elapsed();
    let t = Instant::now();
    let binary = PlatformBinary::current(env!("CARGO_PKG_VERSION")).map_err(|e| job_error(&e))?;
    run.binary_hash = t.elapsed();

    let policy = Policy::default();
    let settings = JobSettings {
        out,
        runtime: &runtime,
        sandbox: &sandbox,
        policy: &policy,
        gate: GateLimits::default(),
        supplier: Organization {
            name: "Veritrain bench".to_owned(),
            ..Organization::default()
        },
        job_id: None,
        binary,
        cancel: None,
    };
    let inputs = JobInputs {
        model: &example.join("model.keras"),
        data: &example.join("data.csv"),
        definition: &example.join("definition.yaml"),
        request: Some(&example.join("job.yaml")),
    };

    // Instants of the four stage events, in order.
    let mut stages: [Option<Instant>; 4] = [None; 4];
    let mut hash_inputs = Duration::ZERO;
    let mut hash_outputs = Duration::ZERO;
    let start = Instant::now();
    let summary = run_job(&inputs, &settings, &job_keys, &mut |p| match p {
        Progress::Stage(stage) => {
            let slot = match stage {
                Stage::Intake => 0,
                Stage::Train => 1,
                Stage::Check => 2,
                Stage::Attest => 3,
            };
            stages[slot] = Some(Instant::now());
        }
        Progress::HashDone { what, elapsed, .. } => match what {
            "inputs" => hash_inputs += elapsed,
            "outputs" => hash_outputs += elapsed,
            _ => {}
        },
        _ => {}
    })
    .map_err(|e| job_error(&e))?;
    let end = Instant::now();

    let [Some(intake), Some(train), Some(check), Some(attest)] = stages else {
        anyhow::bail!("run_job did not report all four stages");
    };
    run.total = summary.timing.total;
    run.training = summary.timing.training;
    run.hashing = summary.timing.hashing;
    run.hash_inputs = hash_inputs;
    run.hash_outputs = hash_outputs;
    run.before_intake = intake - start;
    run.intake = train - intake;
    run.train_stage = check - train;
    run.check = attest - check;
    run.attest = end - attest;
    Ok(run)
}

/// A column of the per-run table: heading, value, and whether it is shown
/// in seconds rather than milliseconds.
type Column = (&'static str, fn(&Run) -> Duration, bool);

fn runs_table(runs: &[Run]) -> String {
    let columns: [Column; 6] = [
        ("runtime check s", |r| r.runtime_check, true),
        ("setup ms", |r| r.setup() + r.binary_hash, false),
        ("total s", |r| r.total, true),
        ("training s", |r| r.training, true),
        ("hashing ms", |r| r.hashing, false),
        ("overhead ms", Run::overhead, false),
    ];
    let cell = |secs: f64, in_secs: bool| {
        if in_secs {
            format!("{secs:.2}")
        } else {
            format!("{:.1}", secs * 1e3)
        }
    };
    let mut out = String::new();
    let headings: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let _ = writeln!(out, "| run | {} |", headings.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(columns.len()));
    for (i, r) in runs.iter().enumerate() {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, f, s)| cell(f(r).as_secs_f64(), *s))
            .collect();
        let _ = writeln!(out, "| {} | {} |", i + 1, cells.join(" | "));
    }
    let medians: Vec<String> = columns
        .iter()
        .map(|(_, f, s)| {
            let v: Vec<Duration> = runs.iter().map(f).collect();
            cell(median(&v), *s)
        })
        .collect();
    let _ = writeln!(out, "| **median** | {} |", medians.join(" | "));
    let _ = writeln!(
        out,
        "\nsetup: loading the keys, probing bwrap and hashing the veritrain binary, per job \
         before run_job. overhead: run_job's total - training - hashing."
    );
    out
}

fn breakdown_table(runs: &[Run], exe_bytes: u64) -> String {
    let med = |f: &dyn Fn(&Run) -> Duration| -> f64 {
        let v: Vec<Duration> = runs.iter().map(f).collect();
        median(&v) * 1e3
    };
    let lines: [(String, f64); 11] = [
        (
            "before run_job: runtime check (every venv file re-hashed; hashing)".into(),
            med(&|r| r.runtime_check),
        ),
        (
            "before run_job: load and verify the keys, key set and layout".into(),
            med(&|r| r.keys),
        ),
        (
            "before run_job: probe bubblewrap (`bwrap --version`)".into(),
            med(&|r| r.sandbox_probe),
        ),
        (
            format!(
                "before run_job: hash the veritrain binary ({:.0} MB; hashing)",
                exe_bytes as f64 / 1e6
            ),
            med(&|r| r.binary_hash),
        ),
        (
            "run_job: before the intake stage (job ID, directories)".into(),
            med(&|r| r.before_intake),
        ),
        (
            "run_job: intake without hashing (copy, gate, sign the intake link)".into(),
            med(&Run::intake_other),
        ),
        (
            "run_job: train stage around the sandboxed call".into(),
            med(&Run::train_other),
        ),
        (
            "run_job: attest without hashing (links, provenance, AIBoM, publish)".into(),
            med(&Run::attest_other),
        ),
        (
            "run_job: overhead (total - training - hashing)".into(),
            med(&Run::overhead),
        ),
        ("run_job: hashing".into(), med(&|r| r.hashing)),
        (
            "run_job: of which inputs / outputs (events)".into(),
            med(&|r| r.hash_inputs + r.hash_outputs),
        ),
    ];
    let mut out = String::new();
    let _ = writeln!(out, "| where the time goes (medians) | ms |");
    let _ = writeln!(out, "|---|---:|");
    for (what, v) in lines {
        let _ = writeln!(out, "| {what} | {v:.1} |");
    }
    out
}
