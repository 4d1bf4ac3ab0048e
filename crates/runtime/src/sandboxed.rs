//! The trainer inside the sandbox: the one place where the runtime, the
//! trainer program and the user's inputs meet `veritrain-sandbox`.
//!
//! Layout inside (shared/notes/trainer-runtime.md §2): the verified runtime
//! venv read-only at `/opt/venv`, the trainer read-only at `/opt/app`, the
//! job spec, model and data read-only at `/in`, the size-capped output at
//! `/out`. The trainer's stdout is parsed line by line as untrusted events;
//! success needs exit 0, a `done` event and every output file
//! ([`crate::events::judge`]), and a sandbox limit (timeout, memory, output
//! size, ...) is a failed job with the sandbox's reason. A cancelled job
//! ([`SandboxedJob::cancel`]) is killed by the sandbox and fails with
//! [`Error::Cancelled`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use veritrain_sandbox::{CancelToken, Outcome, Policy, Sandbox, SandboxCommand};

use crate::error::{Error, ExitInfo, Result};
use crate::events::{TrainerEvent, TrainerOutputs, judge, parse_line};
use crate::identity::VerifiedRuntime;
use crate::spec::{ExecutionSettings, FitParams, JobPaths, JobSpec, TrainerLimits};
use crate::trainer::{self, TrainerCommand, TrainerPaths};

/// What a sandboxed job needs: the inputs on the host and the trainer's
/// settings. The output directory must exist and be empty.
#[derive(Debug, Clone)]
pub struct SandboxedJob<'a> {
    /// The gated `.keras` model (a file).
    pub model: &'a Path,
    /// The gated dataset (a CSV, image ZIP or TFRecord file).
    pub data: &'a Path,
    /// The validated dataset definition as JSON.
    pub dataset: Value,
    /// Fit parameters, all decided.
    pub fit: FitParams,
    /// Platform execution settings.
    pub execution: ExecutionSettings,
    /// Trainer-side limits.
    pub limits: TrainerLimits,
    /// A fresh host directory for the job's staging (`in/`, `app/`).
    pub work_dir: &'a Path,
    /// Where the outputs land on the host (exists, empty).
    pub output_dir: &'a Path,
    /// Stops the trainer when cancelled (the sandbox kills the whole job
    /// within about 200 ms); `None` runs it to the end or to its limits.
    pub cancel: Option<CancelToken>,
}

/// A finished sandboxed training run.
#[derive(Debug, Clone)]
pub struct SandboxedTraining {
    /// The judged outputs.
    pub outputs: TrainerOutputs,
    /// Every event the trainer reported, in order.
    pub events: Vec<TrainerEvent>,
    /// The sandbox's report: status, usage, and the policy facts for the AIBoM.
    pub sandbox: Outcome,
    /// SHA-256 of the trainer program that ran.
    pub trainer_sha256: String,
    /// SHA-256 of the job spec the trainer read.
    pub spec_sha256: String,
}

/// Where the inputs are seen inside the sandbox.
const IN_MODEL: &str = "/in/model.keras";
const OUT_DIR: &str = "/out";

/// Train `job` with `runtime` inside `sandbox` under `policy`.
pub fn train_in_sandbox(
    runtime: &VerifiedRuntime,
    sandbox: &dyn Sandbox,
    policy: &Policy,
    job: SandboxedJob<'_>,
    on_event: &mut dyn FnMut(&TrainerEvent),
) -> Result<SandboxedTraining> {
    let in_dir = job.work_dir.join("in");
    let app_dir = job.work_dir.join("app");
    make_dir(&in_dir)?;
    // The data keeps its extension: the trainer tells a ZIP from a
    // directory and a TFRecord by the definition, but users read paths.
    let data_name = match job.data.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.chars().all(|c| c.is_ascii_alphanumeric()) => format!("data.{ext}"),
        _ => "data".to_owned(),
    };
    stage_file(job.model, &in_dir.join("model.keras"))?;
    stage_file(job.data, &in_dir.join(&data_name))?;

    let spec = JobSpec::new(
        JobPaths {
            model: IN_MODEL.to_owned(),
            data: format!("/in/{data_name}"),
            output_dir: OUT_DIR.to_owned(),
        },
        job.dataset,
        job.fit,
        job.execution,
        job.limits,
    )?;
    let spec_bytes = spec.to_json();
    let spec_path = in_dir.join("job.json");
    fs::write(&spec_path, &spec_bytes).map_err(|e| Error::io(&spec_path, e))?;
    readable(&spec_path, 0o444)?;
    trainer::write_to(&app_dir)?;
    readable(&app_dir, 0o755)?;

    let inside = TrainerCommand::new(&TrainerPaths::sandboxed());
    let mut cmd = SandboxCommand::new(inside.program.to_string_lossy())
        .args(inside.args.iter().map(|a| a.to_string_lossy().into_owned()))
        .runtime(runtime.venv())
        .code(&app_dir)
        .inputs(&in_dir)
        .output(job.output_dir);
    if let Some(token) = job.cancel {
        cmd = cmd.cancel_on(token);
    }
    for (k, v) in &inside.env {
        cmd = cmd.env(k.to_string_lossy(), v.to_string_lossy());
    }

    let mut events = Vec::new();
    let outcome = sandbox.run_streaming(&cmd, policy, &mut |line| {
        let event = parse_line(line);
        on_event(&event);
        events.push(event);
    })?;
    let stderr_tail = outcome.stderr.text();
    if let Some(failure) = outcome.failure() {
        match failure {
            veritrain_sandbox::JobFailure::Timeout { limit_secs } => {
                return Err(Error::TrainerTimeout {
                    limit: Duration::from_secs(*limit_secs),
                });
            }
            veritrain_sandbox::JobFailure::Cancelled => return Err(Error::Cancelled),
            // The trainer's own exit code (with its error event) is judged
            // below; every other failure is a limit the sandbox enforced.
            veritrain_sandbox::JobFailure::ExitCode { .. } => {}
            other => {
                return Err(Error::SandboxLimit {
                    code: other.code(),
                    failure: other.to_string(),
                    stderr_tail,
                });
            }
        }
    }
    let exit = ExitInfo {
        code: outcome.exit_code,
        signal: None,
    };
    let outputs = judge(exit, &events, job.output_dir, &stderr_tail)?;
    Ok(SandboxedTraining {
        outputs,
        events,
        sandbox: outcome,
        trainer_sha256: trainer::sha256_hex(),
        spec_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&spec_bytes)),
    })
}

fn make_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    readable(dir, 0o755)
}

/// The sandbox's service user reads the binds: files 0444, directories 0755.
fn readable(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(path, e))
}

/// Copy an input file into the staging directory. Only regular files: the
/// gate has already refused links and special files, and a copy means a
/// later change on the host cannot reach the running job.
fn stage_file(src: &Path, dest: &Path) -> Result<PathBuf> {
    let meta = fs::symlink_metadata(src).map_err(|e| Error::io(src, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            src,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "sandboxed training takes a regular file as model and as data",
            ),
        ));
    }
    fs::copy(src, dest).map_err(|e| Error::io(dest, e))?;
    readable(dest, 0o444)?;
    Ok(dest.to_owned())
}
