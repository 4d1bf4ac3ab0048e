//! Veritrain's trainer runtime.
//!
//! Where it sits in a job: after the intake gate has passed the model and
//! the data, the worker (1) checks the runtime ([`VerifiedRuntime::verify`]:
//! the hash-pinned TensorFlow/Keras venv, every byte of it), (2) builds the
//! job spec ([`spec::JobSpec`]) and writes it with the trainer program
//! ([`run::prepare_job`]), (3) runs [`trainer::TrainerCommand`] inside the
//! sandbox, reading the trainer's JSON-lines [`events`], and (4) judges the
//! result ([`events::judge`]): success only with exit 0, a `done` event and
//! every output written. The runtime's identity (inventory of distributions
//! with wheel hashes and purls, and the manifest root digest) and the
//! trainer's digest go into the job's provenance and the AIBoM.
//!
//! Modules:
//! - [`lock`]: the committed lock (`runtime/requirements.lock`);
//! - [`install`]: `veritrain runtime install`;
//! - [`tree`], [`identity`]: manifest, identity file and tamper check;
//! - [`trainer`]: the trainer source, its digest and its exact command line;
//! - [`spec`], [`split`]: the job spec and the train/validation split rule;
//! - [`events`], [`run`]: the event stream, the result, and the runners.
//!
//! docs/runtime.md is the reference for all of it.

pub mod error;
pub mod events;
pub mod identity;
pub mod install;
pub mod lock;
pub mod run;
pub mod sandboxed;
pub mod spec;
pub mod split;
pub mod trainer;
pub mod tree;

pub use error::{Change, Error, ExitInfo, Result};
pub use events::{TrainerEvent, TrainerOutputs};
pub use identity::{RuntimeIdentity, VerifiedRuntime};
pub use install::{InstallOptions, InstallReport, default_dir, install};
pub use spec::{ExecutionSettings, FitParams, FitRequest, JobPaths, JobSpec, TrainerLimits};
pub use trainer::{TrainerCommand, TrainerPaths};
