//! The one error type of the runtime crate. Every variant has a stable
//! dotted code ([`Error::code`]) that the CLI prints and `--json` carries.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the trainer process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExitInfo {
    /// The exit status, when it exited.
    pub code: Option<i32>,
    /// The signal that killed it, when it was killed.
    pub signal: Option<i32>,
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(c), _) => write!(f, "exit status {c}"),
            (None, Some(s)) => write!(f, "signal {s}"),
            (None, None) => write!(f, "unknown exit"),
        }
    }
}

/// What changed in a tampered runtime tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The file's contents differ from the recorded digest.
    Modified,
    /// The file's size differs from the recorded size.
    Resized,
    /// The path exists now but was not installed.
    Added,
    /// The path was installed but is gone.
    Missing,
    /// A file became a directory or a link, or the other way round.
    TypeChanged,
    /// Permission bits differ (an executable bit, setuid, ...).
    ModeChanged,
    /// A symbolic link points somewhere else.
    LinkChanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Modified => "was modified (content digest differs)",
            Change::Resized => "was modified (size differs)",
            Change::Added => "was added",
            Change::Missing => "is missing",
            Change::TypeChanged => "changed type",
            Change::ModeChanged => "changed permissions",
            Change::LinkChanged => "points elsewhere",
        })
    }
}

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Debian's `python3.11` is not installed.
    #[error(
        "Debian's Python 3.11 is not at {path}; install it with `apt-get install python3.11 python3.11-venv`"
    )]
    PythonMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Debian's pip wheel (from `python3-pip-whl`) is not installed.
    #[error(
        "no pip wheel in {dir}; install it with `apt-get install python3.11-venv` (which brings python3-pip-whl)"
    )]
    PipMissing {
        /// The directory searched.
        dir: PathBuf,
    },
    /// A step of the installation failed.
    #[error("runtime install: {step} failed ({status}): {detail}")]
    InstallFailed {
        /// The step, as printed in the progress lines.
        step: &'static str,
        /// Its exit status.
        status: String,
        /// The last lines of its output.
        detail: String,
    },
    /// An I/O error on the platform's side.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No runtime identity where one was expected.
    #[error("no runtime installed at {dir}; run `veritrain runtime install --dir {dir}`")]
    NotInstalled {
        /// The runtime directory.
        dir: PathBuf,
    },
    /// The identity file is unreadable.
    #[error(
        "runtime identity {path} is invalid: {reason}; reinstall with `veritrain runtime install`"
    )]
    IdentityInvalid {
        /// The identity file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The runtime was installed from a different lock than this build's.
    #[error(
        "the runtime at {dir} was installed from another lock (sha256 {installed}; this build's lock is {expected}); reinstall with `veritrain runtime install`"
    )]
    LockMismatch {
        /// The runtime directory.
        dir: PathBuf,
        /// The lock digest recorded at install.
        installed: String,
        /// The digest of the lock compiled into this build.
        expected: String,
    },
    /// The interpreter the venv links to changed after install.
    #[error(
        "the interpreter {path} changed since the runtime was installed (sha256 {actual}, recorded {expected}); reinstall with `veritrain runtime install`"
    )]
    InterpreterChanged {
        /// The interpreter.
        path: PathBuf,
        /// Recorded digest.
        expected: String,
        /// Digest now (or the read error).
        actual: String,
    },
    /// The installed tree differs from its recorded manifest.
    #[error("the runtime at {dir} was tampered with: {path} {change}{}", others_note(*.others))]
    Tampered {
        /// The venv directory.
        dir: PathBuf,
        /// The first differing path, relative to the venv.
        path: String,
        /// What differs there.
        change: Change,
        /// How many further paths differ.
        others: usize,
    },
    /// Something in the runtime tree that a manifest cannot describe.
    #[error("{path}: {reason}")]
    UnsupportedPath {
        /// The path.
        path: PathBuf,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The lock file is malformed.
    #[error("requirements.lock line {line}: {reason}")]
    LockInvalid {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Installed distributions differ from the lock.
    #[error("installed distributions do not match the lock: {reason}")]
    InventoryMismatch {
        /// The difference.
        reason: String,
    },
    /// A job spec value is out of range or not allowed.
    #[error("invalid job spec: {field}: {reason}")]
    SpecInvalid {
        /// The field (`fit.epochs`, `dataset.type`, ...).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The trainer process could not be started.
    #[error("cannot start the trainer {program}: {source}")]
    TrainerSpawn {
        /// The interpreter.
        program: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The trainer reported a failure, or exited non-zero.
    #[error("training failed [{trainer_code}]: {message} ({exit})")]
    TrainerFailed {
        /// The trainer's own code (`trainer.nan_loss`, ...), or
        /// `trainer.unknown` when it died without saying why.
        trainer_code: String,
        /// The trainer's sentence.
        message: String,
        /// How the process ended.
        exit: ExitInfo,
        /// The end of its stderr, for the log (not shown to users).
        stderr_tail: String,
    },
    /// The trainer was killed by a signal.
    #[error("the trainer was killed by signal {signal}{}", kill_hint(*.signal))]
    TrainerKilled {
        /// The signal number.
        signal: i32,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// The sandbox could not run the trainer (a platform problem, not the
    /// user's): missing bubblewrap or service user, cgroup setup, ...
    #[error("the sandbox could not run the trainer: {0}")]
    Sandbox(#[from] veritrain_sandbox::Error),
    /// The sandbox stopped the trainer at one of its limits.
    #[error("the sandbox stopped the trainer: {failure} (code {code})")]
    SandboxLimit {
        /// The sandbox's failure code (`job.out_of_memory`, `job.output_full`, ...).
        code: &'static str,
        /// What happened.
        failure: String,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// The trainer ran past its wall-clock limit.
    #[error("the trainer ran longer than {}s and was killed", .limit.as_secs())]
    TrainerTimeout {
        /// The limit.
        limit: Duration,
    },
    /// The job's [`CancelToken`](veritrain_sandbox::CancelToken) was
    /// cancelled while the trainer ran; the sandbox killed it.
    #[error("the job was cancelled on request; the trainer was stopped")]
    Cancelled,
    /// The trainer exited 0 but did not prove success.
    #[error("the trainer broke its protocol: {reason}")]
    TrainerProtocol {
        /// What was missing or wrong.
        reason: String,
    },
}

fn others_note(others: usize) -> String {
    match others {
        0 => String::new(),
        1 => " (and 1 more path)".to_owned(),
        n => format!(" (and {n} more paths)"),
    }
}

fn kill_hint(signal: i32) -> &'static str {
    // SIGKILL from outside is almost always the OOM killer or a cgroup limit.
    if signal == 9 {
        " (SIGKILL: usually out of memory)"
    } else {
        ""
    }
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::PythonMissing { .. } => "runtime.python_missing",
            Error::PipMissing { .. } => "runtime.pip_missing",
            Error::InstallFailed { .. } => "runtime.install_failed",
            Error::Io { .. } => "runtime.io",
            Error::NotInstalled { .. } => "runtime.not_installed",
            Error::IdentityInvalid { .. } => "runtime.identity_invalid",
            Error::LockMismatch { .. } => "runtime.lock_mismatch",
            Error::InterpreterChanged { .. } => "runtime.interpreter_changed",
            Error::Tampered { .. } => "runtime.tampered",
            Error::UnsupportedPath { .. } => "runtime.unsupported_path",
            Error::LockInvalid { .. } => "runtime.lock_invalid",
            Error::InventoryMismatch { .. } => "runtime.inventory_mismatch",
            Error::SpecInvalid { .. } => "runtime.spec_invalid",
            Error::TrainerSpawn { .. } => "runtime.trainer_spawn",
            Error::TrainerFailed { .. } => "runtime.trainer_failed",
            Error::TrainerKilled { .. } => "runtime.trainer_killed",
            Error::TrainerTimeout { .. } => "runtime.trainer_timeout",
            Error::Sandbox(_) => "runtime.sandbox",
            Error::SandboxLimit { .. } => "runtime.sandbox_limit",
            Error::TrainerProtocol { .. } => "runtime.trainer_protocol",
            // The same code as the pipeline's own check between stages: to
            // the user a cancel is one thing, wherever it caught the job.
            Error::Cancelled => "job.cancelled",
        }
    }

    /// For a trainer failure, the trainer's own code (`trainer.nan_loss`).
    pub fn trainer_code(&self) -> Option<&str> {
        match self {
            Error::TrainerFailed { trainer_code, .. } => Some(trainer_code),
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn spec(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::SpecInvalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
