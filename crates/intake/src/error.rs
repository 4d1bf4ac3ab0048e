//! The one error type of the intake crate.

use std::path::PathBuf;

use crate::finding::Finding;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an input could not be accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input was read and rejected; the finding says why and where.
    #[error("{0}")]
    Rejected(Box<Finding>),
    /// An I/O error on the platform's side (not the user's input).
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Rejected(f) => f.code,
            Error::Io { .. } => "intake.io",
        }
    }

    /// The finding, if this is a rejection.
    pub fn finding(&self) -> Option<&Finding> {
        match self {
            Error::Rejected(f) => Some(f),
            Error::Io { .. } => None,
        }
    }
}

impl From<Finding> for Error {
    fn from(f: Finding) -> Self {
        Error::Rejected(Box::new(f))
    }
}
