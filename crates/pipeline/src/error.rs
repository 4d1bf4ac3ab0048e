//! The pipeline's error type. Every variant has a stable code
//! ([`Error::code`]); errors from the library crates keep their own codes.

use std::path::PathBuf;

use veritrain_intake::Finding;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a job or a key directory was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The intake gate refused an upload.
    #[error("the intake gate refused the job: {}", findings_text(.findings))]
    Rejected {
        /// Every finding, in the order the gate reported them.
        findings: Vec<Finding>,
    },
    /// The job request (`job.yaml`) is malformed.
    #[error("job request: {path}: {message}")]
    Request {
        /// Key path of the problem (`model.authors[0].email`), or `-` for
        /// the whole document.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The key directory cannot sign jobs.
    #[error("{message}")]
    Keys {
        /// Stable code (`keys.*`).
        code: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// The output bundle path is taken.
    #[error("{} already exists; choose a new --out (bundles are never overwritten)", .0.display())]
    BundleExists(PathBuf),
    /// An input changed while the job ran.
    #[error("{file} changed during the job: expected sha256 {expected}, found {found}")]
    InputChanged {
        /// The file.
        file: String,
        /// Digest before training.
        expected: String,
        /// Digest after training.
        found: String,
    },
    /// The trainer left a file that is not one of its declared outputs.
    #[error(
        "the trainer wrote an unexpected output {file:?}; only the declared outputs may leave the sandbox"
    )]
    UnexpectedOutput {
        /// The file's name.
        file: String,
    },
    /// The job's [`CancelToken`](veritrain_sandbox::CancelToken) was
    /// cancelled: between stages, or while the trainer ran (the sandbox
    /// killed it). No bundle is left.
    #[error("the job was cancelled on request; no bundle was written")]
    Cancelled,
    /// The host could not be described (OS, CPU).
    #[error("host facts: {0}")]
    Host(String),
    /// A trainer output the AIBoM records (`outputs/metrics.json`) lacks a
    /// fact or has it in the wrong shape; the job fails rather than
    /// leaving the fact out of the BOM.
    #[error("{file}: {message}")]
    TrainerReport {
        /// The output file (bundle path).
        file: String,
        /// What is missing or wrong, with its JSON path.
        message: String,
    },
    /// Attestation formats, keys, hashing.
    #[error(transparent)]
    Attest(#[from] veritrain_attest::Error),
    /// Intake parsing outside a gate verdict.
    #[error(transparent)]
    Intake(#[from] veritrain_intake::Error),
    /// The AIBoM.
    #[error(transparent)]
    Bom(#[from] veritrain_bom::Error),
    /// The trainer runtime and the training run.
    #[error(transparent)]
    Runtime(#[from] veritrain_runtime::Error),
    /// The sandbox.
    #[error(transparent)]
    Sandbox(#[from] veritrain_sandbox::Error),
}

fn findings_text(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("[{}] {f}", f.code))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "job.io",
            Error::Rejected { findings } => findings.first().map_or("intake.rejected", |f| f.code),
            Error::Request { .. } => "job.request_invalid",
            Error::Keys { code, .. } => code,
            Error::BundleExists(_) => "job.bundle_exists",
            Error::InputChanged { .. } => "job.input_changed",
            Error::UnexpectedOutput { .. } => "job.unexpected_output",
            Error::Host(_) => "job.host_facts",
            Error::TrainerReport { .. } => "job.trainer_report",
            Error::Cancelled => "job.cancelled",
            Error::Attest(e) => e.code(),
            Error::Intake(e) => e.code(),
            Error::Bom(e) => e.code(),
            Error::Runtime(e) => e.code(),
            Error::Sandbox(e) => e.code(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn keys(code: &'static str, message: impl Into<String>) -> Self {
        Error::Keys {
            code,
            message: message.into(),
        }
    }
}
