//! Stable finding codes of the `.keras` scanner.
//!
//! Every code is documented in `docs/keras-scanner.md` with the attack it
//! stops. Codes never change meaning once published.

// --- File classification (before the archive is opened) ---
/// A legacy HDF5 model (`.h5`): Keras ignores `safe_mode` for it (CVE-2025-9905).
pub const LEGACY_H5: &str = "keras.legacy_h5";
/// A TensorFlow SavedModel (protobuf or a directory): its graph runs code.
pub const SAVEDMODEL: &str = "keras.savedmodel";
/// A Python pickle: unpickling runs code.
pub const PICKLE: &str = "keras.pickle";
/// Anything else that is not a Keras v3 `.keras` ZIP.
pub const NOT_KERAS_V3: &str = "keras.not_keras_v3";

// --- Archive members ---
/// A required member (`config.json`, `metadata.json`, `model.weights.h5`) is absent.
pub const MISSING_MEMBER: &str = "keras.missing_member";
/// A member that Keras 3 does not write for allow-listed models.
pub const UNEXPECTED_MEMBER: &str = "keras.unexpected_member";
/// A member larger than its limit.
pub const MEMBER_TOO_LARGE: &str = "keras.member_too_large";
/// A member could not be read from the archive.
pub const MEMBER_UNREADABLE: &str = "keras.member_unreadable";
/// An `assets/` vocabulary file that is not plain UTF-8 text.
pub const ASSET_INVALID: &str = "keras.asset_invalid";

// --- config.json parsing ---
/// `config.json` (or `metadata.json`) is not valid JSON / UTF-8.
pub const INVALID_JSON: &str = "keras.invalid_json";
/// An object repeats a key: parsers disagree on which value wins.
pub const DUPLICATE_KEY: &str = "keras.duplicate_key";
/// `config.json` is larger than the limit.
pub const CONFIG_TOO_LARGE: &str = "keras.config_too_large";
/// `config.json` nests deeper than the limit.
pub const CONFIG_TOO_DEEP: &str = "keras.config_too_deep";
/// `config.json` has more values or layers than the limit.
pub const CONFIG_TOO_COMPLEX: &str = "keras.config_too_complex";

// --- config.json allow-list ---
/// A value has the wrong JSON type or shape for where it appears.
pub const INVALID_CONFIG: &str = "keras.invalid_config";
/// A key that the allow-listed object does not have.
pub const UNEXPECTED_KEY: &str = "keras.unexpected_key";
/// A `module` outside Keras's own allow-listed namespaces (CVE-2025-1550).
pub const DISALLOWED_MODULE: &str = "keras.disallowed_module";
/// A layer class that is not on the allow-list.
pub const DISALLOWED_LAYER: &str = "keras.disallowed_layer";
/// A non-layer object (optimizer, loss, initializer, ...) not on the allow-list,
/// or an allow-listed object in a position where it does not belong.
pub const DISALLOWED_OBJECT: &str = "keras.disallowed_object";
/// A function reference (object or string) not on the allow-list
/// (CVE-2025-8747 `keras.utils.get_file`, CVE-2025-9906 safe-mode toggles).
pub const DISALLOWED_FUNCTION: &str = "keras.disallowed_function";
/// A dtype or dtype policy name not on the allow-list.
pub const DISALLOWED_DTYPE: &str = "keras.disallowed_dtype";
/// A `Lambda` layer or a serialized Python lambda (CVE-2024-3660).
pub const LAMBDA: &str = "keras.lambda";
/// A `TFSMLayer`, which loads an external SavedModel (CVE-2026-1462).
pub const TFSM_LAYER: &str = "keras.tfsm_layer";
/// A function-typed config value (`function`, `function_type`, bytecode).
pub const FUNCTION_VALUE: &str = "keras.function_value";
/// A `registered_name` that names a custom registration (`package>Name`).
pub const REGISTERED_NAME_MISMATCH: &str = "keras.registered_name_mismatch";
/// A string that looks like a file path or URL (CVE-2025-12058, CVE-2026-1462).
pub const FILE_PATH_IN_CONFIG: &str = "keras.file_path_in_config";
/// A key that steers deserialization or safe mode (CVE-2025-9906).
pub const DESERIALIZATION_CONTROL_KEY: &str = "keras.deserialization_control_key";
/// Two objects share a `shared_object_id` but are different classes.
pub const SHARED_OBJECT_MISMATCH: &str = "keras.shared_object_mismatch";

// --- metadata.json ---
/// `metadata.json` is not the object Keras 3 writes.
pub const METADATA_INVALID: &str = "keras.metadata_invalid";
/// `metadata.json` names a Keras version other than 3.x.
pub const UNSUPPORTED_KERAS_VERSION: &str = "keras.unsupported_keras_version";

// --- model.weights.h5 structure ---
/// The HDF5 file is malformed (truncated, bad signature, address out of bounds).
pub const H5_INVALID: &str = "keras.h5_invalid";
/// An HDF5 structure outside what h5py writes for Keras weights.
pub const H5_UNSUPPORTED_STRUCTURE: &str = "keras.h5_unsupported_structure";
/// A checksum of an HDF5 v2 structure does not match.
pub const H5_CHECKSUM: &str = "keras.h5_checksum";
/// An HDF5 external link (CVE-2026-1669).
pub const H5_EXTERNAL_LINK: &str = "keras.h5_external_link";
/// An HDF5 soft link.
pub const H5_SOFT_LINK: &str = "keras.h5_soft_link";
/// HDF5 external data files or a multi-file driver (CVE-2026-1669).
pub const H5_EXTERNAL_STORAGE: &str = "keras.h5_external_storage";
/// An HDF5 virtual dataset, which maps data from other files.
pub const H5_VIRTUAL_DATASET: &str = "keras.h5_virtual_dataset";
/// A dataset whose declared byte size exceeds what is stored or a limit (CVE-2026-0897).
pub const H5_SHAPE_EXCEEDS_SIZE: &str = "keras.h5_shape_exceeds_size";
/// Two datasets' storage overlaps.
pub const H5_OVERLAPPING_DATA: &str = "keras.h5_overlapping_data";
/// An HDF5 datatype other than little-endian IEEE float or integer.
pub const H5_UNSUPPORTED_DTYPE: &str = "keras.h5_unsupported_dtype";
/// The same HDF5 object is reached twice (a cycle or a shared hard link).
pub const H5_CYCLE: &str = "keras.h5_cycle";
/// More HDF5 objects, messages or nesting than the limits allow.
pub const H5_LIMIT_EXCEEDED: &str = "keras.h5_limit_exceeded";

// --- cross-check ---
/// The weights file does not match the layers of `config.json`.
pub const WEIGHTS_MISMATCH: &str = "keras.weights_mismatch";
