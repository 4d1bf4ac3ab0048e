//! The one error type of the job database.
//!
//! Every variant carries a stable machine-readable code ([`Error::code`]) that
//! the API maps to a status in its single error boundary. Another user's job
//! is [`Error::NotFound`], exactly like a job that does not exist: the
//! database never tells a caller that a job it may not see exists.

use crate::model::{JobId, JobState};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the job database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such job, or one the caller may not see.
    #[error("job {id} not found")]
    NotFound {
        /// The job id asked for.
        id: JobId,
    },
    /// A job with this id already exists.
    #[error("job {id} already exists")]
    Duplicate {
        /// The duplicated id.
        id: JobId,
    },
    /// The state machine does not allow this transition.
    #[error("a job cannot go from {from} to {to}")]
    BadTransition {
        /// The state the caller moves from.
        from: JobState,
        /// The state asked for.
        to: JobState,
    },
    /// The job is no longer in the state the caller expected (someone else
    /// moved it, e.g. a cancel or a lease sweep).
    #[error("job {id} is {actual}, not {expected}")]
    StateConflict {
        /// The job.
        id: JobId,
        /// The state the caller expected.
        expected: JobState,
        /// The state it is in.
        actual: JobState,
    },
    /// A failed or cancelled transition without a reason, or a reason on any
    /// other transition.
    #[error("transition to {to}: {detail}")]
    BadReason {
        /// The target state.
        to: JobState,
        /// What was wrong.
        detail: &'static str,
    },
    /// The worker no longer holds the job's lease: it expired and the job was
    /// requeued, failed or claimed again.
    #[error("worker {worker_id} no longer holds the lease on job {id}")]
    LeaseLost {
        /// The job.
        id: JobId,
        /// The worker that thought it held it.
        worker_id: String,
    },
    /// `succeeded` was asked for before the bundle's object key was recorded.
    #[error("job {id} has no bundle yet; record the bundle key before marking it succeeded")]
    BundleMissing {
        /// The job.
        id: JobId,
    },
    /// A job id that is not a UUID.
    #[error("{0:?} is not a job id (a UUID)")]
    BadId(String),
    /// A page cursor that this database did not hand out.
    #[error("invalid page cursor {0:?}")]
    BadCursor(String),
    /// An argument out of range (empty owner, zero lease, ...).
    #[error("invalid {what}: {detail}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A database URL with a scheme other than `sqlite:` or `postgres:`.
    /// The URL itself is not repeated: it may hold a password.
    #[error("unsupported database URL scheme {scheme:?}; use sqlite://PATH or postgres://…")]
    BadUrl {
        /// The scheme found (text before the first `:`).
        scheme: String,
    },
    /// A stored row that does not decode (unknown state, malformed JSON).
    #[error("stored job {id} is corrupt: {detail}")]
    Corrupt {
        /// The job (or its id text).
        id: String,
        /// What did not decode.
        detail: String,
    },
    /// The embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database itself failed (connection, I/O, constraint).
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "db.not_found",
            Error::Duplicate { .. } => "db.duplicate",
            Error::BadTransition { .. } => "db.bad_transition",
            Error::StateConflict { .. } => "db.state_conflict",
            Error::BadReason { .. } => "db.bad_reason",
            Error::LeaseLost { .. } => "db.lease_lost",
            Error::BundleMissing { .. } => "db.bundle_missing",
            Error::BadId(_) => "db.bad_id",
            Error::BadCursor(_) => "db.bad_cursor",
            Error::InvalidInput { .. } => "db.invalid_input",
            Error::BadUrl { .. } => "db.bad_url",
            Error::Corrupt { .. } => "db.corrupt",
            Error::Migrate(_) => "db.migrate",
            Error::Backend(_) => "db.backend",
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        Error::InvalidInput {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn corrupt(id: impl std::fmt::Display, detail: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            id: id.to_string(),
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_namespaced() {
        let e = Error::NotFound { id: JobId::new() };
        assert_eq!(e.code(), "db.not_found");
        let e = Error::BadTransition {
            from: JobState::Failed,
            to: JobState::Succeeded,
        };
        assert_eq!(e.code(), "db.bad_transition");
        assert_eq!(e.to_string(), "a job cannot go from failed to succeeded");
    }
}
