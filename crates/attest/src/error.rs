//! The one error type of the attestation crate.
//!
//! Every variant a user can trigger carries a stable machine-readable code
//! (`Error::code`), used verbatim in CLI `--json` output and API error bodies,
//! and a message that says what was wrong and where.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while hashing, signing or verifying.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- hashing -------------------------------------------------------
    /// An I/O error while reading an input to hash.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A symlink was found where only regular files and directories are allowed.
    #[error(
        "{path} is a symbolic link; links are refused so the manifest cannot point outside its root"
    )]
    HashSymlink {
        /// The offending path.
        path: PathBuf,
    },
    /// A FIFO, socket or device was found.
    #[error("{path} is not a regular file or directory (FIFO, socket or device); refused")]
    HashSpecialFile {
        /// The offending path.
        path: PathBuf,
    },
    /// A path that escapes the manifest root or cannot be represented.
    #[error("{path} escapes the manifest root or is not valid UTF-8")]
    HashPathEscape {
        /// The offending path.
        path: PathBuf,
    },
    /// A file changed between listing it and hashing it.
    #[error("{path} changed while being hashed ({detail}); hash files nobody is writing")]
    HashChanged {
        /// The file.
        path: PathBuf,
        /// What changed.
        detail: String,
    },
    /// A hashing option is out of range.
    #[error("invalid hashing option: {0}")]
    HashOption(String),
    /// Two inputs produced the same manifest path.
    #[error("two inputs map to the same manifest path {path:?}")]
    HashDuplicatePath {
        /// The duplicated manifest path.
        path: String,
    },

    // ----- keys ----------------------------------------------------------
    /// A key could not be parsed.
    #[error("invalid key: {0}")]
    KeyInvalid(String),
    /// A key of an algorithm we do not support.
    #[error("unsupported key type or scheme: {0}")]
    KeyUnsupported(String),

    // ----- JSON ----------------------------------------------------------
    /// A document is not valid JSON or does not have the expected shape.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which document (e.g. "link metablock", "DSSE envelope").
        what: &'static str,
        /// What was wrong, with its location.
        detail: String,
    },
    /// Canonical JSON cannot encode floats.
    #[error("canonical JSON cannot encode the non-integer number {0}")]
    CanonicalFloat(String),

    // ----- signatures ----------------------------------------------------
    /// A signature did not verify, or too few valid signatures were found.
    #[error("signature check failed: {0}")]
    Signature(String),

    /// Fewer distinct trusted keys signed than the threshold requires.
    #[error(
        "found valid signatures by {found} distinct trusted key(s), {needed} required \
         (signatures by unknown keys, or whose keyid does not match the key, are not counted)"
    )]
    SignatureThreshold {
        /// Distinct trusted keys required.
        needed: usize,
        /// Distinct trusted keys whose signatures verified.
        found: usize,
    },

    // ----- untrusted input bounds ----------------------------------------
    /// An input is over a configured limit.
    #[error("{what} is too large: {actual} exceeds the limit of {limit}")]
    TooLarge {
        /// What was measured (e.g. "DSSE envelope").
        what: &'static str,
        /// The limit.
        limit: usize,
        /// The measured size or count.
        actual: usize,
    },

    // ----- DSSE and in-toto Statement v1 ---------------------------------
    /// A verified envelope holds a different kind of document than expected.
    #[error("payload type is {found:?}, expected {expected:?}")]
    PayloadType {
        /// The payload type the caller asked for.
        expected: String,
        /// The (authenticated) payload type of the envelope.
        found: String,
    },
    /// A Statement whose `_type` is not in-toto Statement v1.
    #[error("statement `_type` is {found:?}, expected \"https://in-toto.io/Statement/v1\"")]
    StatementType {
        /// The `_type` found.
        found: String,
    },
    /// A Statement whose predicate is not of the requested type.
    #[error("predicate type is {found:?}, expected {expected:?}")]
    PredicateType {
        /// The predicate type asked for.
        expected: String,
        /// The statement's `predicateType`.
        found: String,
    },

    // ----- in-toto verification ------------------------------------------
    /// The layout has expired.
    #[error("layout expired at {0}")]
    LayoutExpired(String),
    /// A step lacks enough valid links.
    #[error("step {step:?}: {detail}")]
    StepThreshold {
        /// The step name.
        step: String,
        /// What was missing.
        detail: String,
    },
    /// An artifact rule failed.
    #[error("step {step:?}: {kind} rule {rule:?} failed: {detail}")]
    ArtifactRule {
        /// The step (or inspection) name.
        step: String,
        /// "materials" or "products".
        kind: &'static str,
        /// The rule as written in the layout.
        rule: String,
        /// Which artifact broke the rule.
        detail: String,
    },
    /// A layout feature we deliberately do not run.
    #[error("unsupported layout feature: {0}")]
    Unsupported(String),
    /// An artifact rule in a layout is not in one of the rule formats.
    #[error("malformed artifact rule {rule:?}: {detail}")]
    RuleFormat {
        /// The rule's words, joined by spaces.
        rule: String,
        /// Python in-toto's message for this mistake.
        detail: String,
    },

    // ----- key sets ------------------------------------------------------
    /// A key set document breaks a rule of the format (duplicate key IDs,
    /// a key ID that is not the key's, a revoked key without a time, ...).
    #[error("invalid key set: {0}")]
    KeysetInvalid(String),
    /// The attestation records no signing time to check key validity at.
    #[error("no signing time to check the key at: {0}")]
    SigningTime(String),
    /// A signing key is unknown, not yet valid, expired or revoked.
    #[error("signing key {keyid} is not valid at {at}: {reason}")]
    KeyNotValid {
        /// The key ID.
        keyid: String,
        /// The time checked.
        at: String,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Io { .. } => "hash.io",
            Error::HashSymlink { .. } => "hash.symlink",
            Error::HashSpecialFile { .. } => "hash.special_file",
            Error::HashPathEscape { .. } => "hash.path_escape",
            Error::HashDuplicatePath { .. } => "hash.duplicate_path",
            Error::HashChanged { .. } => "hash.changed",
            Error::HashOption(_) => "hash.invalid_option",
            Error::KeyInvalid(_) => "key.invalid",
            Error::KeyUnsupported(_) => "key.unsupported",
            Error::Malformed { .. } => "format.malformed",
            Error::CanonicalFloat(_) => "cjson.float",
            Error::Signature(_) => "signature.invalid",
            Error::LayoutExpired(_) => "intoto.layout_expired",
            Error::StepThreshold { .. } => "intoto.threshold",
            Error::ArtifactRule { .. } => "intoto.artifact_rule",
            Error::Unsupported(_) => "intoto.unsupported",
            Error::RuleFormat { .. } => "intoto.rule_format",
            Error::KeyNotValid { .. } => "keyset.key_not_valid",
            Error::KeysetInvalid(_) => "keyset.invalid",
            Error::SigningTime(_) => "keyset.signing_time",
            Error::SignatureThreshold { .. } => "signature.threshold",
            Error::TooLarge { .. } => "input.too_large",
            Error::PayloadType { .. } => "dsse.payload_type",
            Error::StatementType { .. } => "statement.type",
            Error::PredicateType { .. } => "statement.predicate_type",
        }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Error::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}
