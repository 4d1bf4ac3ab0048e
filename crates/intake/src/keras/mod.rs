//! The static `.keras` scanner.
//!
//! Where it sits: the worker receives an uploaded model, checks with
//! [`classify_model_file`] that it is a Keras v3 ZIP at all, opens it with
//! the hardened ZIP reader (`crate::zip`, not this module), and hands the
//! archive to [`scan_keras_archive`] through the small [`KerasArchive`]
//! trait. The scanner reads the three members Keras 3 writes and decides
//! with allow-lists, before any Python process sees the file:
//!
//! - `metadata.json` ([`scan_metadata`]): the Keras version is recorded;
//! - `config.json` ([`scan_config`]): every object must be an allow-listed
//!   `(module, class_name)`, no function values, no deserialization
//!   controls, no file paths or URLs; the layer summary is collected;
//! - `model.weights.h5` ([`inspect_weights`]): a bounded HDF5 structure
//!   walk that refuses external links, external or virtual storage and
//!   shape bombs, then a cross-check of every dataset against the layers.
//!
//! The result is a [`KerasVerdict`]: accepted or not, the allow-list
//! version, the Keras version, the layer summary and parameter count the
//! AIBoM reuses, and every finding with its code and location. The threat
//! model and every code are in `docs/keras-scanner.md`.

pub mod allowlist;
mod archive;
pub mod codes;
pub mod config;
pub mod hdf5;
mod json;
pub mod metadata;
mod params;
pub mod verdict;
pub mod weights;

pub use allowlist::ALLOWLIST_VERSION;
pub use archive::{scan_keras_file, zip_limits_for};
pub use config::{ConfigScan, LayerSummary, ModelSummary, TensorSummary, scan_config};
pub use hdf5::{H5Dataset, H5Dtype, H5Group, H5Tree, parse_weights_structure};
pub use metadata::{KerasMetadata, scan_metadata};
pub use verdict::{KerasVerdict, scan_keras_archive};
pub use weights::{LayerWeights, ParamSource, WeightsReport, inspect_weights};

use crate::finding::{Finding, Location};

/// Limits of the `.keras` scanner. Enforced before allocating: members are
/// refused by their declared size before they are read, JSON values are
/// counted while parsing, HDF5 objects while walking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KerasLimits {
    /// Largest `config.json`.
    pub max_config_bytes: u64,
    /// Largest `metadata.json`.
    pub max_metadata_bytes: u64,
    /// Deepest JSON nesting.
    pub max_json_depth: usize,
    /// Most JSON values (each key counts too).
    pub max_json_nodes: usize,
    /// Most layers, nested models' layers included.
    pub max_layers: usize,
    /// Deepest nesting of models inside models.
    pub max_model_nesting: usize,
    /// Most findings reported per document (the rest are dropped).
    pub max_findings: usize,
    /// Largest `model.weights.h5`.
    pub max_weights_bytes: u64,
    /// Largest single dataset (declared shape times element size).
    pub max_dataset_bytes: u64,
    /// Most HDF5 objects (groups and datasets), and B-tree nodes.
    pub max_h5_objects: usize,
    /// Deepest HDF5 group nesting.
    pub max_h5_depth: usize,
    /// Most messages in one object header (and continuation blocks).
    pub max_h5_messages: usize,
    /// Longest HDF5 link name or string attribute.
    pub max_h5_name_len: usize,
    /// Highest dataset rank.
    pub max_rank: usize,
    /// Largest `assets/` vocabulary file.
    pub max_asset_bytes: u64,
    /// Most `assets/` files.
    pub max_assets: usize,
}

impl Default for KerasLimits {
    /// Production limits: generous for real models, far below what would
    /// hurt the worker.
    fn default() -> Self {
        KerasLimits {
            max_config_bytes: 10 << 20,
            max_metadata_bytes: 64 << 10,
            max_json_depth: 64,
            max_json_nodes: 2_000_000,
            max_layers: 10_000,
            max_model_nesting: 8,
            max_findings: 1_000,
            max_weights_bytes: 4 << 30,
            max_dataset_bytes: 2 << 30,
            max_h5_objects: 200_000,
            max_h5_depth: 32,
            max_h5_messages: 1_000,
            max_h5_name_len: 1_024,
            max_rank: 8,
            max_asset_bytes: 64 << 20,
            max_assets: 256,
        }
    }
}

impl KerasLimits {
    /// Small limits for tests and fuzzing.
    pub fn for_testing() -> Self {
        KerasLimits {
            max_config_bytes: 256 << 10,
            max_metadata_bytes: 4 << 10,
            max_json_depth: 32,
            max_json_nodes: 50_000,
            max_layers: 200,
            max_model_nesting: 4,
            max_findings: 100,
            max_weights_bytes: 4 << 20,
            max_dataset_bytes: 1 << 20,
            max_h5_objects: 2_000,
            max_h5_depth: 16,
            max_h5_messages: 200,
            max_h5_name_len: 256,
            max_rank: 8,
            max_asset_bytes: 64 << 10,
            max_assets: 8,
        }
    }
}

/// Access to the members of an opened `.keras` ZIP.
///
/// The hardened ZIP reader implements this: `members` lists every entry
/// with its real (inflated) size as the reader established it, and
/// `read_member` returns the whole member, refusing one larger than `max`
/// bytes while inflating.
pub trait KerasArchive {
    /// Every member's name and size.
    fn members(&self) -> Vec<(String, u64)>;
    /// The bytes of one member, at most `max` of them.
    fn read_member(&mut self, name: &str, max: u64) -> crate::Result<Vec<u8>>;
}

const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// Refuses anything that is not a Keras v3 `.keras` ZIP, before opening it.
///
/// `first_bytes` are the file's first bytes (at least 8; 2 KiB lets the
/// HDF5 user-block offsets be checked too), `file_name` is the uploaded
/// name (used only to recognise SavedModel and pickle files by name).
pub fn classify_model_file(first_bytes: &[u8], file_name: &str) -> crate::Result<()> {
    let refuse = |code: &'static str, message: &str| -> crate::Result<()> {
        Err(Finding::new(
            code,
            message,
            Location::Entry {
                name: file_name.to_owned(),
            },
        )
        .into())
    };
    let lower = file_name.to_ascii_lowercase();
    // Legacy HDF5 models (`.h5`, `.hdf5`): `load_model` ignores
    // `safe_mode` for them, so a Lambda's bytecode runs (CVE-2025-9905).
    // HDF5 files may start at 0, 512, 1024 or 2048 (after a user block).
    let hdf5_at = |off: usize| first_bytes.get(off..off + 8) == Some(HDF5_MAGIC.as_slice());
    if [0, 512, 1024, 2048].into_iter().any(hdf5_at)
        || lower.ends_with(".h5")
        || lower.ends_with(".hdf5")
    {
        return refuse(
            codes::LEGACY_H5,
            "legacy HDF5 (.h5) models are refused: Keras does not apply safe_mode to them; save the model as .keras",
        );
    }
    // Pickle protocols 2-5 start with PROTO (0x80) and the protocol
    // number; unpickling runs arbitrary code.
    let pickle_proto = matches!(first_bytes, [0x80, 2..=5, ..]);
    if pickle_proto
        || [".pkl", ".pickle", ".joblib", ".pt", ".pth"]
            .iter()
            .any(|ext| lower.ends_with(ext))
    {
        return refuse(
            codes::PICKLE,
            "Python pickle files are refused: loading one runs arbitrary code",
        );
    }
    // A SavedModel is a directory with `saved_model.pb` (a protobuf whose
    // first field is `saved_model_schema_version = 1`, then `meta_graphs`).
    let savedmodel_pb = first_bytes.starts_with(&[0x08, 0x01, 0x12]);
    if savedmodel_pb
        || lower.ends_with(".pb")
        || lower.ends_with('/')
        || lower.ends_with("saved_model")
    {
        return refuse(
            codes::SAVEDMODEL,
            "TensorFlow SavedModels are refused: their graphs run code; save the model as .keras",
        );
    }
    if first_bytes.starts_with(b"PK\x03\x04") {
        return Ok(());
    }
    refuse(
        codes::NOT_KERAS_V3,
        "not a Keras v3 .keras file (a ZIP holding config.json, metadata.json and model.weights.h5)",
    )
}

#[cfg(test)]
mod tests;
