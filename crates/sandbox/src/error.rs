//! The one error type of the sandbox crate.
//!
//! An [`Error`] means the platform could not run the job as the policy
//! demands (missing backend, bad command, no cgroup, cleanup failure). A job
//! that ran and failed (non-zero exit, timeout, out of memory) is not an
//! error: it is an [`Outcome`](crate::Outcome) whose
//! [`JobStatus`](crate::JobStatus) says why.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a job could not be run, or not cleaned up, as the policy demands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend program (bubblewrap) is missing or does not work.
    #[error("sandbox backend {program} is not usable: {reason}")]
    BackendUnavailable {
        /// The program looked for.
        program: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The host identity that starts the sandbox is unusable (unknown
    /// service user, or root).
    #[error("sandbox service user: {0}")]
    ServiceUser(String),
    /// The supervisor lacks a privilege it needs (it must run as root to
    /// create cgroups, mount the output tmpfs and drop to the service user).
    #[error("the sandbox supervisor needs {what}; run it as root")]
    NotPrivileged {
        /// The privilege or operation.
        what: String,
    },
    /// The command asks for something the sandbox does not allow: a
    /// relative or reserved path, a bad environment variable, a bind whose
    /// source is not a readable directory or file.
    #[error("invalid sandbox command: {0}")]
    InvalidCommand(String),
    /// The policy is inconsistent (a zero limit, a tmpfs larger than memory).
    #[error("invalid sandbox policy: {0}")]
    InvalidPolicy(String),
    /// The output directory on the host is missing, not a directory or not
    /// empty.
    #[error("output directory {path}: {reason}")]
    OutputDir {
        /// The host directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A cgroup could not be found, created, configured or removed.
    #[error("cgroup {path}: {reason}")]
    Cgroup {
        /// The cgroup directory or file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The seccomp filter cannot be built for this machine.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// The GPU option was requested but no NVIDIA device nodes exist.
    #[error("GPU requested but no NVIDIA device nodes found under /dev")]
    GpuUnavailable,
    /// The backend exited before it started the job: the sandbox could not
    /// be set up. `stderr` is the backend's own message (bounded).
    #[error("the sandbox could not be set up (backend exit {exit}): {stderr}")]
    SetupFailed {
        /// The backend's exit status, as text.
        exit: String,
        /// The backend's standard error, truncated.
        stderr: String,
    },
    /// Processes of the job could not be killed or its cgroup could not be
    /// removed: the host is no longer in a known state and the worker should
    /// stop taking jobs.
    #[error("job cleanup failed: {0}")]
    Cleanup(String),
    /// An I/O error on the platform's side.
    #[error("{what}: {source}")]
    Io {
        /// What the supervisor was doing.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BackendUnavailable { .. } => "sandbox.backend_unavailable",
            Error::ServiceUser(_) => "sandbox.service_user",
            Error::NotPrivileged { .. } => "sandbox.not_privileged",
            Error::InvalidCommand(_) => "sandbox.invalid_command",
            Error::InvalidPolicy(_) => "sandbox.invalid_policy",
            Error::OutputDir { .. } => "sandbox.output_dir",
            Error::Cgroup { .. } => "sandbox.cgroup",
            Error::Seccomp(_) => "sandbox.seccomp",
            Error::GpuUnavailable => "sandbox.gpu_unavailable",
            Error::SetupFailed { .. } => "sandbox.setup_failed",
            Error::Cleanup(_) => "sandbox.cleanup",
            Error::Io { .. } => "sandbox.io",
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn cgroup(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Cgroup {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_dotted_and_distinct() {
        let all = [
            Error::BackendUnavailable {
                program: "/x".into(),
                reason: String::new(),
            },
            Error::ServiceUser(String::new()),
            Error::NotPrivileged {
                what: String::new(),
            },
            Error::InvalidCommand(String::new()),
            Error::InvalidPolicy(String::new()),
            Error::OutputDir {
                path: "/x".into(),
                reason: String::new(),
            },
            Error::cgroup("/x", ""),
            Error::Seccomp(String::new()),
            Error::GpuUnavailable,
            Error::SetupFailed {
                exit: String::new(),
                stderr: String::new(),
            },
            Error::Cleanup(String::new()),
            Error::io("x", std::io::Error::other("y")),
        ];
        let mut codes: Vec<_> = all.iter().map(Error::code).collect();
        assert!(codes.iter().all(|c| c.starts_with("sandbox.")));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
