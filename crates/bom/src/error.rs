//! The one error type of the BOM crate.
//!
//! Every variant has a stable machine-readable code ([`Error::code`]), used
//! verbatim in CLI `--json` output and API error bodies.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One place where a document breaks the CycloneDX 1.6 schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    /// JSON pointer to the offending value in the BOM (`""` is the root).
    pub pointer: String,
    /// JSON pointer to the schema keyword that failed.
    pub schema_pointer: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "at {at}: {}", self.message)
    }
}

/// Everything that can go wrong while building, validating, signing or
/// verifying an AIBoM.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field of the [`crate::BomInput`] cannot be put in a BOM.
    #[error("invalid BOM input at {field}: {detail}")]
    Input {
        /// Path of the field (`datasets[1].manifest.root_sha256`).
        field: String,
        /// What is wrong.
        detail: String,
    },
    /// A BOM file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A BOM file is over the size limit.
    #[error("{path} is {actual} bytes, over the limit of {limit} bytes for a BOM")]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
        /// The limit.
        limit: u64,
        /// Its size.
        actual: u64,
    },
    /// The document is not JSON, or not of the BOM shape this crate reads.
    #[error("malformed BOM: {0}")]
    Malformed(String),
    /// The document breaks the CycloneDX 1.6 schema.
    #[error("the BOM does not validate against the CycloneDX 1.6 schema ({} violation(s)): {}",
        violations.len(),
        violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Schema {
        /// Each violation, with its JSON pointer.
        violations: Vec<SchemaViolation>,
    },
    /// The vendored schema could not be compiled (a build defect).
    #[error("the vendored CycloneDX schema cannot be compiled: {0}")]
    SchemaSetup(String),
    /// The signed statement's subject is not the BOM's model.
    #[error("the statement's subject does not match the BOM: {0}")]
    Subject(String),
    /// A BOM file does not hold the BOM that was signed.
    #[error("the BOM file differs from the signed BOM: {0}")]
    FileMismatch(String),
    /// Signing or verification failed in the attestation library.
    #[error(transparent)]
    Attest(#[from] veritrain_attest::Error),
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Input { .. } => "bom.invalid_input",
            Error::Io { .. } => "bom.io",
            Error::TooLarge { .. } => "bom.too_large",
            Error::Malformed(_) => "bom.malformed",
            Error::Schema { .. } => "bom.schema",
            Error::SchemaSetup(_) => "bom.schema_setup",
            Error::Subject(_) => "bom.subject_mismatch",
            Error::FileMismatch(_) => "bom.file_mismatch",
            Error::Attest(e) => e.code(),
        }
    }

    pub(crate) fn input(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Input {
            field: field.into(),
            detail: detail.into(),
        }
    }
}
