//! The seam between the worker's queue handling and the job itself.
//!
//! [`JobRunner`] runs one job from local files into a bundle directory.
//! Production uses [`crate::PipelineRunner`] (the same `run_job` as
//! `veritrain train`); the worker's own tests use small runners that fail,
//! stall or get cancelled on cue, so the queue's behaviour under faults is
//! tested without TensorFlow.

use std::path::{Path, PathBuf};

use serde_json::Value;
use veritrain_db::{JobState, Progress};
use veritrain_sandbox::CancelToken;

/// The local copies of a job's inputs.
#[derive(Clone, Debug, Default)]
pub struct JobFiles {
    /// `model.keras`.
    pub model: Option<PathBuf>,
    /// `data.<ext>`.
    pub data: Option<PathBuf>,
    /// `definition.yaml`.
    pub definition: Option<PathBuf>,
    /// `job.yaml`.
    pub request: Option<PathBuf>,
}

/// The names under which the API stores a job's inputs: the bundle's own
/// file names (`inputs/<name>` in the bundle).
pub mod input_names {
    use std::path::PathBuf;

    use super::JobFiles;

    /// The uploaded model.
    pub const MODEL: &str = "model.keras";
    /// The dataset definition.
    pub const DEFINITION: &str = "definition.yaml";
    /// The job request.
    pub const REQUEST: &str = "job.yaml";

    /// The dataset's name for a definition type (`csv`, `image`, `tfrecord`).
    pub fn data(definition_type: &str) -> Option<&'static str> {
        match definition_type {
            "csv" => Some("data.csv"),
            "image" => Some("data.zip"),
            "tfrecord" => Some("data.tfrecord"),
            _ => None,
        }
    }

    /// Which field of [`JobFiles`] an input of this name fills.
    pub fn slot(name: &str) -> Option<fn(&mut JobFiles) -> &mut Option<PathBuf>> {
        match name {
            MODEL => Some(|f| &mut f.model),
            DEFINITION => Some(|f| &mut f.definition),
            REQUEST => Some(|f| &mut f.request),
            "data.csv" | "data.zip" | "data.tfrecord" => Some(|f| &mut f.data),
            _ => None,
        }
    }
}

/// What a runner reports while it works.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// The job reached this state (`training`, `attesting`).
    Stage(JobState),
    /// Training progress (stored on the job and appended to its events).
    Progress(Progress),
    /// Anything else for the job's event stream (`log`, `trainer`, ...).
    Event {
        /// The event kind.
        kind: &'static str,
        /// Its data.
        data: Value,
    },
}

/// Why a job failed: the stable code and a sentence, plus optional details
/// (the intake gate's findings) for the event stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// Stable code (`keras.disallowed_layer`, `runtime.trainer_timeout`, ...).
    pub code: String,
    /// A sentence a person can act on.
    pub message: String,
    /// Structured details.
    pub details: Option<Value>,
}

impl Failure {
    /// A failure without details.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }
}

/// Runs one job from local input files into a new bundle directory.
pub trait JobRunner: Send + Sync + 'static {
    /// Runs job `job_id` on `files`, writing the bundle to `out` (which does
    /// not exist yet). Stops early with code `job.cancelled` once `cancel`
    /// is set. Reports through `update`. Blocking.
    ///
    /// # Errors
    /// The job's failure; no bundle is left at `out`.
    fn run(
        &self,
        job_id: &str,
        files: &JobFiles,
        out: &Path,
        cancel: &CancelToken,
        update: &mut dyn FnMut(Update),
    ) -> Result<(), Failure>;
}
