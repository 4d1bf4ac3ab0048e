//! The one error type of the store crate.
//!
//! Every variant carries a stable machine-readable code ([`Error::code`]) that
//! the API and CLI use verbatim. Messages name the key and what went wrong;
//! they never contain credentials: backend errors are object_store's, which
//! hold the request URL and status but no secret, and this crate never formats
//! a configuration or a client into a message.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while storing or reading an object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key that breaks the key rules (see [`crate::ObjectKey`]).
    #[error("invalid object key {key:?}: {reason}")]
    BadKey {
        /// The rejected key, escaped and shortened.
        key: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// No object under this key.
    #[error("no object is stored under {key}")]
    NotFound {
        /// The key.
        key: String,
    },
    /// An object already exists under this key; stored objects are never replaced.
    #[error("an object is already stored under {key}; stored objects are never overwritten")]
    Exists {
        /// The key.
        key: String,
    },
    /// An upload or a read went past its size limit; nothing was stored.
    #[error("{key} is larger than the limit of {limit} bytes; nothing was stored")]
    TooLarge {
        /// The key.
        key: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A download produced a different number of bytes than the object's size.
    #[error(
        "{key}: expected {expected} bytes, received {actual}; the partial download was removed"
    )]
    SizeMismatch {
        /// The key.
        key: String,
        /// The size the store reported.
        expected: u64,
        /// The bytes received.
        actual: u64,
    },
    /// The caller's upload stream failed (for example, the client disconnected);
    /// nothing was stored.
    #[error("the upload of {key} was interrupted: {source}; nothing was stored")]
    Source {
        /// The key.
        key: String,
        /// The stream's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Reading or writing a local file (`put_file`, `download_to_file`) failed.
    #[error("{path}: {source}")]
    Io {
        /// The local file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The store configuration is incomplete or inconsistent.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// The backend failed (disk, network, S3 server, credentials).
    #[error("object store {op} {key} failed: {source}")]
    Backend {
        /// The operation (`put`, `get`, `head`, `list`, `delete`, `presign`...).
        op: &'static str,
        /// The key or prefix it was about.
        key: String,
        /// object_store's error.
        source: object_store::Error,
    },
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadKey { .. } => "store.bad_key",
            Error::NotFound { .. } => "store.not_found",
            Error::Exists { .. } => "store.exists",
            Error::TooLarge { .. } => "store.too_large",
            Error::SizeMismatch { .. } => "store.size_mismatch",
            Error::Source { .. } => "store.upload_interrupted",
            Error::Io { .. } => "store.io",
            Error::Config(_) => "store.config",
            Error::Backend { .. } => "store.backend",
        }
    }

    /// Maps an object_store error about `key` to ours: a missing object and an
    /// existing one become [`Error::NotFound`] and [`Error::Exists`], anything
    /// else is a backend failure.
    pub(crate) fn backend(op: &'static str, key: impl ToString, err: object_store::Error) -> Self {
        match err {
            object_store::Error::NotFound { .. } => Error::NotFound {
                key: key.to_string(),
            },
            // A create-only put that lost to an existing object: LocalFileSystem
            // says AlreadyExists; S3 answers `If-None-Match: *` with 412, which
            // object_store reports as AlreadyExists or Precondition.
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => Error::Exists {
                key: key.to_string(),
            },
            other => Error::Backend {
                op,
                key: key.to_string(),
                source: other,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_errors_map_to_stable_codes() {
        let not_found = object_store::Error::NotFound {
            path: "k".into(),
            source: "missing".into(),
        };
        assert_eq!(
            Error::backend("get", "k", not_found).code(),
            "store.not_found"
        );
        let exists = object_store::Error::AlreadyExists {
            path: "k".into(),
            source: "there".into(),
        };
        assert_eq!(Error::backend("put", "k", exists).code(), "store.exists");
        let precondition = object_store::Error::Precondition {
            path: "k".into(),
            source: "412".into(),
        };
        assert_eq!(
            Error::backend("put", "k", precondition).code(),
            "store.exists"
        );
        let generic = object_store::Error::Generic {
            store: "S3",
            source: "connection refused".into(),
        };
        let err = Error::backend("put", "k", generic);
        assert_eq!(err.code(), "store.backend");
        assert!(err.to_string().contains("connection refused"));
    }
}
