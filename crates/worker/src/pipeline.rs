//! The production [`JobRunner`]: `veritrain_pipeline::run_job`, the same
//! pipeline as `veritrain train`, with its progress turned into job updates.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use veritrain_bom::input::Organization;
use veritrain_db::JobState;
use veritrain_intake::gate::GateLimits;
use veritrain_pipeline::{JobInputs, JobKeys, JobSettings, PlatformBinary, Progress, Stage};
use veritrain_runtime::{TrainerEvent, VerifiedRuntime};
use veritrain_sandbox::{Bubblewrap, CancelToken, Policy};

use crate::progress_value;
use crate::runner::{Failure, JobFiles, JobRunner, Update};

/// What the pipeline runner needs besides the job.
#[derive(Debug)]
pub struct PipelineSettings {
    /// The key directory (`veritrain keys init`); only its current signing
    /// key and public material are read, once per job.
    pub keys_dir: PathBuf,
    /// The sandbox policy (limits of each training run).
    pub policy: Policy,
    /// The platform operator, the AIBoM's supplier.
    pub operator: Organization,
    /// Intake limits.
    pub gate: GateLimits,
    /// The running program.
    pub binary: PlatformBinary,
}

/// Runs jobs with `run_job` in the bubblewrap sandbox.
pub struct PipelineRunner {
    settings: PipelineSettings,
    runtime: VerifiedRuntime,
    sandbox: Bubblewrap,
}

impl std::fmt::Debug for PipelineRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineRunner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl PipelineRunner {
    /// A runner with a verified runtime. Checks the key directory now, so a
    /// worker without usable keys refuses to start instead of failing every
    /// job.
    ///
    /// # Errors
    /// The key directory's or the sandbox's error.
    pub fn new(
        settings: PipelineSettings,
        runtime: VerifiedRuntime,
    ) -> Result<Self, veritrain_pipeline::Error> {
        JobKeys::load(&settings.keys_dir, chrono::Utc::now())?;
        let sandbox = Bubblewrap::new()?;
        Ok(PipelineRunner {
            settings,
            runtime,
            sandbox,
        })
    }
}

impl JobRunner for PipelineRunner {
    fn run(
        &self,
        job_id: &str,
        files: &JobFiles,
        out: &Path,
        cancel: &CancelToken,
        update: &mut dyn FnMut(Update),
    ) -> Result<(), Failure> {
        let (Some(model), Some(data), Some(definition), Some(request)) = (
            files.model.as_deref(),
            files.data.as_deref(),
            files.definition.as_deref(),
            files.request.as_deref(),
        ) else {
            return Err(Failure::new("job.bad_input", "an input file is missing"));
        };
        // Loaded per job: a rotation or revocation applies to the next job.
        let keys = JobKeys::load(&self.settings.keys_dir, chrono::Utc::now()).map_err(failure)?;
        let settings = JobSettings {
            out,
            runtime: &self.runtime,
            sandbox: &self.sandbox,
            policy: &self.settings.policy,
            gate: self.settings.gate.clone(),
            supplier: self.settings.operator.clone(),
            job_id: Some(job_id.to_owned()),
            binary: self.settings.binary.clone(),
            cancel: Some(cancel.clone()),
        };
        let inputs = JobInputs {
            model,
            data,
            definition,
            request: Some(request),
        };
        let mut reporter = Reporter::new(update);
        veritrain_pipeline::run_job(&inputs, &settings, &keys, &mut |p| reporter.report(&p))
            .map(|_| ())
            .map_err(failure)
    }
}

fn failure(e: veritrain_pipeline::Error) -> Failure {
    let details = match &e {
        veritrain_pipeline::Error::Rejected { findings } => Some(json!({ "findings": findings })),
        _ => None,
    };
    Failure {
        code: e.code().to_owned(),
        message: e.to_string(),
        details,
    }
}

/// Turns pipeline progress into job updates: stages into states, epochs
/// into progress, everything else into log lines.
struct Reporter<'a> {
    update: &'a mut dyn FnMut(Update),
    epochs: u64,
    last_step: Option<Instant>,
}

impl<'a> Reporter<'a> {
    fn new(update: &'a mut dyn FnMut(Update)) -> Self {
        Reporter {
            update,
            epochs: 0,
            last_step: None,
        }
    }

    fn log(&mut self, line: String) {
        (self.update)(Update::Event {
            kind: "log",
            data: json!({ "line": line }),
        });
    }

    fn report(&mut self, p: &Progress<'_>) {
        match p {
            Progress::Stage(Stage::Intake) => {
                self.log("intake: copying the inputs and running the gate".into());
            }
            Progress::Stage(Stage::Train) => {
                (self.update)(Update::Stage(JobState::Training));
                self.log("training in the sandbox".into());
            }
            Progress::Stage(Stage::Check) => {
                self.log("re-hashing every input the sandbox could see".into());
            }
            Progress::Stage(Stage::Attest) => {
                (self.update)(Update::Stage(JobState::Attesting));
                self.log("hashing the outputs and signing the attestations".into());
            }
            Progress::Accepted { fit, .. } => {
                self.epochs = u64::from(fit.epochs);
                self.log(format!(
                    "accepted by the intake gate: {} epochs, batch size {}, seed {}",
                    fit.epochs, fit.batch_size, fit.seed
                ));
            }
            Progress::HashStart { .. } | Progress::Hashing { .. } => {}
            Progress::HashDone {
                what,
                bytes,
                elapsed,
            } => self.log(format!(
                "hashed {what}: {bytes} bytes in {:.2}s",
                elapsed.as_secs_f64()
            )),
            Progress::Trainer(e) => self.trainer(e),
        }
    }

    fn trainer(&mut self, e: &TrainerEvent) {
        match e {
            TrainerEvent::Epoch { epoch, metrics } => {
                let metrics = serde_json::to_value(metrics).unwrap_or_default();
                (self.update)(Update::Progress(progress_value(
                    *epoch,
                    self.epochs,
                    metrics.clone(),
                )));
                self.log(format!("epoch {epoch}/{}: {metrics}", self.epochs));
            }
            TrainerEvent::Step {
                epoch,
                step,
                loss,
                metrics,
            } => {
                // Steps are frequent; one a second is plenty for a live view.
                if self
                    .last_step
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
                {
                    return;
                }
                self.last_step = Some(Instant::now());
                (self.update)(Update::Event {
                    kind: "step",
                    data: json!({"epoch": epoch, "step": step, "loss": loss, "metrics": metrics}),
                });
            }
            other => {
                let value = serde_json::to_value(other).unwrap_or_default();
                self.log(format!("trainer: {value}"));
            }
        }
    }
}
