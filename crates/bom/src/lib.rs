//! Veritrain's AIBoM: a CycloneDX 1.6 ML-BOM of each training job.
//!
//! Where it sits: at the end of a job the worker collects every fact the
//! BOM records into a [`BomInput`] (what the user asked for, what intake
//! observed, the sandbox's limits, the trainer's report, the digests of
//! everything that went in and came out), and then:
//! 1. [`build_bom`] makes the [`Bom`] and checks it against the official
//!    CycloneDX 1.6 schema ([`validate_bom`]);
//! 2. [`to_json`] writes it as `aibom.cdx.json`, deterministically;
//! 3. [`sign_bom`] signs it as an in-toto Statement v1 (predicate type
//!    `https://cyclonedx.org/bom`, subject the trained model) in a DSSE
//!    envelope, through the attestation crate.
//!
//! An auditor checks the envelope offline with [`verify_bom_envelope`] or
//! [`verify_bom_with_keyset`], and reads it with [`render_text`] /
//! [`render_html`] (`veritrain bom show`). `docs/aibom.md` says where every
//! value comes from and lists the `veritrain:` property names ([`props`]).

pub mod build;
pub mod cdx;
pub mod chart;
pub mod error;
pub mod input;
pub mod props;
pub mod render;
pub mod schema;
pub mod sign;

pub use build::{build_bom, to_json};
pub use cdx::Bom;
pub use error::{Error, Result, SchemaViolation};
pub use input::BomInput;
pub use render::{render_html, render_text};
pub use schema::validate_bom;
pub use sign::{PREDICATE_TYPE, SignedBom, sign_bom, verify_bom_envelope, verify_bom_with_keyset};

/// Read a BOM file: parse the JSON, validate it against the CycloneDX 1.6
/// schema, and read it into a [`Bom`].
pub fn read_bom(bytes: &[u8]) -> Result<Bom> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::Malformed(format!("not JSON: {e}")))?;
    validate_bom(&value)?;
    serde_json::from_value(value).map_err(|e| Error::Malformed(e.to_string()))
}

/// Largest BOM file [`read_bom_file`] reads: a BOM with a few thousand
/// packages and a long history is a few megabytes; dataset file lists are
/// kept out of it (manifests are referenced by digest).
pub const MAX_BOM_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Read a BOM file from disk with [`read_bom`], refusing files over
/// `max_bytes` before reading them. Returns the file's bytes and the BOM.
pub fn read_bom_file(path: &std::path::Path, max_bytes: u64) -> Result<(Vec<u8>, Bom)> {
    use std::io::Read as _;
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let too_large = |actual| Error::TooLarge {
        path: path.to_owned(),
        limit: max_bytes,
        actual,
    };
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::new();
    // The limit holds even if the file grows after the size check.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    let bom = read_bom(&bytes)?;
    Ok((bytes, bom))
}
