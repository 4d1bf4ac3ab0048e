//! Findings: what the gate rejected, with a stable code and where.
//!
//! Codes are dotted strings (`zip.path_traversal`, `keras.disallowed_layer`)
//! that never change once published; they appear verbatim in CLI `--json`
//! output and API error bodies. Each module defines its codes as constants.

use serde::Serialize;

/// Where in the input a finding was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Location {
    /// The input as a whole.
    Input,
    /// A YAML or JSON document position: 1-based line and column, and the
    /// key path (`columns[2].type`).
    Document {
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// Key path inside the document.
        path: String,
    },
    /// A JSON pointer into a JSON document (the `.keras` `config.json`).
    Pointer {
        /// The archive member holding the document.
        member: String,
        /// RFC 6901 JSON pointer.
        pointer: String,
    },
    /// A CSV cell or row: 1-based row (the header is row 1), optional
    /// 1-based column and the column name.
    Csv {
        /// 1-based row number in the file.
        row: u64,
        /// 1-based column, if the finding is about one cell.
        column: Option<usize>,
        /// The column's name, if known.
        name: Option<String>,
    },
    /// An archive member.
    Entry {
        /// The member's name as stored (lossily decoded if not UTF-8).
        name: String,
    },
    /// A TFRecord record, 0-based, with its byte offset.
    Record {
        /// 0-based record index.
        index: u64,
        /// Byte offset of the record's length field.
        offset: u64,
    },
    /// An object inside an HDF5 file inside an archive.
    Hdf5 {
        /// The archive member.
        member: String,
        /// The HDF5 object path (`/layers/dense/vars/0`).
        path: String,
    },
}

/// One rejection (or observation) with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// A sentence a person can act on.
    pub message: String,
    /// Where it was found.
    pub location: Location,
}

impl Finding {
    /// A finding with the given code, message and location.
    pub fn new(code: &'static str, message: impl Into<String>, location: Location) -> Self {
        Finding {
            code,
            message: message.into(),
            location,
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)?;
        match &self.location {
            Location::Input => Ok(()),
            Location::Document { line, column, path } => match (line, column) {
                (Some(l), Some(c)) => write!(f, " (at {path}, line {l}, column {c})"),
                _ => write!(f, " (at {path})"),
            },
            Location::Pointer { member, pointer } => write!(f, " ({member}#{pointer})"),
            Location::Csv { row, column, name } => {
                write!(f, " (row {row}")?;
                if let Some(c) = column {
                    write!(f, ", column {c}")?;
                }
                if let Some(n) = name {
                    write!(f, " {n:?}")?;
                }
                write!(f, ")")
            }
            Location::Entry { name } => write!(f, " (entry {name:?})"),
            Location::Record { index, offset } => write!(f, " (record {index} at byte {offset})"),
            Location::Hdf5 { member, path } => write!(f, " ({member}:{path})"),
        }
    }
}
