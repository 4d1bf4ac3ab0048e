//! The `veritrain:` property namespace: every property name the AIBoM uses.
//!
//! CycloneDX property values are text; numbers are written in JSON number
//! syntax (`0`, `0.2`, `1e-7`), one number per property, never a list in a
//! string. A name may repeat where a fact has several values (classes,
//! layers, findings). Names ending in `:` are prefixes: the rest of the name
//! is a key (a fit parameter, a JSON path into intake statistics or sandbox
//! facts, an epoch and a log key). `docs/aibom.md` documents each one, and a
//! test checks that every name a BOM carries is listed there.

/// The job's ID (`metadata.properties`).
pub const JOB_ID: &str = "veritrain:job:id";

/// A file component's file name or bundle path.
pub const FILE_NAME: &str = "veritrain:file:name";
/// A file component's size in bytes.
pub const FILE_SIZE: &str = "veritrain:file:size_bytes";

/// Keras version that saved the trained model.
pub const MODEL_KERAS_VERSION: &str = "veritrain:model:keras_version";
/// Total parameters of the model.
pub const MODEL_PARAM_COUNT: &str = "veritrain:model:param_count";

/// One layer of the architecture (repeated, in config order).
pub const ARCH_LAYER: &str = "veritrain:architecture:layer";
/// Prefix: `veritrain:epoch:<n>:<log key>` = the value logged at epoch n.
pub const EPOCH_PREFIX: &str = "veritrain:epoch:";
/// Prefix: `veritrain:metric_goal:<metric>` = `minimize` or `maximize`.
pub const METRIC_GOAL_PREFIX: &str = "veritrain:metric_goal:";

/// Wall-clock seconds of training.
pub const TRAINING_WALL: &str = "veritrain:training:wall_seconds";
/// CPU seconds of training.
pub const TRAINING_CPU: &str = "veritrain:training:cpu_seconds";
/// GPU seconds of training.
pub const TRAINING_GPU: &str = "veritrain:training:gpu_seconds";
/// Epochs the history records.
pub const TRAINING_EPOCHS: &str = "veritrain:training:epochs_completed";
/// Optimizer steps the trainer took (`train` task).
pub const TRAINING_STEPS: &str = "veritrain:training:steps_run";

/// Where the user says the base model came from.
pub const BASE_SOURCE: &str = "veritrain:base_model:source";
/// Whether the scanner accepted the base model.
pub const SCAN_ACCEPTED: &str = "veritrain:scan:accepted";
/// The allow-list version that decided.
pub const SCAN_ALLOWLIST: &str = "veritrain:scan:allowlist_version";
/// Keras version in the base model's `metadata.json`.
pub const SCAN_KERAS_VERSION: &str = "veritrain:scan:keras_version";
/// Save date in the base model's `metadata.json`.
pub const SCAN_DATE_SAVED: &str = "veritrain:scan:date_saved";
/// `Sequential` or `Functional`.
pub const SCAN_MODEL_CLASS: &str = "veritrain:scan:model_class";
/// The model's name in its config.
pub const SCAN_MODEL_NAME: &str = "veritrain:scan:model_name";
/// One declared input shape (repeated).
pub const SCAN_INPUT_SHAPE: &str = "veritrain:scan:input_shape";
/// Layers in the summary.
pub const SCAN_LAYER_COUNT: &str = "veritrain:scan:layer_count";
/// Total parameters.
pub const SCAN_PARAM_COUNT: &str = "veritrain:scan:param_count";
/// How the parameter count was established.
pub const SCAN_PARAM_SOURCE: &str = "veritrain:scan:param_count_source";
/// Number of findings.
pub const SCAN_FINDING_COUNT: &str = "veritrain:scan:finding_count";
/// One finding (repeated): `[code] message (location)`.
pub const SCAN_FINDING: &str = "veritrain:scan:finding";

/// `csv`, `image_zip` or `tfrecord`.
pub const DATASET_KIND: &str = "veritrain:dataset:kind";
/// Files in the dataset.
pub const DATASET_FILE_COUNT: &str = "veritrain:dataset:file_count";
/// Bytes of all its files.
pub const DATASET_SIZE: &str = "veritrain:dataset:size_bytes";
/// Root digest of its per-file manifest.
pub const DATASET_MANIFEST_ROOT: &str = "veritrain:dataset:manifest_root_sha256";
/// Bundle path of the manifest file.
pub const DATASET_MANIFEST_FILE: &str = "veritrain:dataset:manifest_file";
/// SHA-256 of the manifest file.
pub const DATASET_MANIFEST_SHA: &str = "veritrain:dataset:manifest_sha256";
/// Number of classes.
pub const DATASET_CLASS_COUNT: &str = "veritrain:dataset:class_count";
/// One class name (repeated, in label order).
pub const DATASET_CLASS: &str = "veritrain:dataset:class";
/// Where the user says the data came from.
pub const DATASET_SOURCE: &str = "veritrain:dataset:source";
/// Prefix: `veritrain:stats:<path>` = one leaf of intake's statistics.
pub const STATS_PREFIX: &str = "veritrain:stats:";

/// Root digest of the runtime tree (the runtime's identity).
pub const RUNTIME_TREE_ROOT: &str = "veritrain:runtime:tree_root_sha256";
/// Memory the sandbox allowed.
pub const MEMORY_LIMIT: &str = "veritrain:memory:limit_bytes";
/// CPU cores the sandbox allowed.
pub const CPU_CORES_LIMIT: &str = "veritrain:cpu:cores_limit";
/// Logical CPUs of the host.
pub const CPU_HOST_LOGICAL: &str = "veritrain:cpu:host_logical_cpus";
/// Kernel release.
pub const OS_KERNEL: &str = "veritrain:os:kernel";
/// GPU memory.
pub const GPU_MEMORY: &str = "veritrain:gpu:memory_bytes";
/// GPU driver version.
pub const GPU_DRIVER: &str = "veritrain:gpu:driver_version";
/// Prefix: `veritrain:sandbox:<path>` = one leaf of the sandbox policy facts.
pub const SANDBOX_PREFIX: &str = "veritrain:sandbox:";

/// Prefix: `veritrain:fit:<parameter>` = a fit parameter as the job
/// passed it to the trainer.
pub const FIT_PREFIX: &str = "veritrain:fit:";
/// Prefix: `veritrain:compile:<path>` = one leaf of the trainer's record of
/// how it compiled the model (optimizer, loss, metrics, execution settings).
pub const COMPILE_PREFIX: &str = "veritrain:compile:";
/// Prefix: `veritrain:split:<key>` = a fact of the train/validation split.
pub const SPLIT_PREFIX: &str = "veritrain:split:";

/// Every fixed name above, for the documentation test.
pub const FIXED: &[&str] = &[
    JOB_ID,
    FILE_NAME,
    FILE_SIZE,
    MODEL_KERAS_VERSION,
    MODEL_PARAM_COUNT,
    ARCH_LAYER,
    TRAINING_WALL,
    TRAINING_CPU,
    TRAINING_GPU,
    TRAINING_EPOCHS,
    TRAINING_STEPS,
    BASE_SOURCE,
    SCAN_ACCEPTED,
    SCAN_ALLOWLIST,
    SCAN_KERAS_VERSION,
    SCAN_DATE_SAVED,
    SCAN_MODEL_CLASS,
    SCAN_MODEL_NAME,
    SCAN_INPUT_SHAPE,
    SCAN_LAYER_COUNT,
    SCAN_PARAM_COUNT,
    SCAN_PARAM_SOURCE,
    SCAN_FINDING_COUNT,
    SCAN_FINDING,
    DATASET_KIND,
    DATASET_FILE_COUNT,
    DATASET_SIZE,
    DATASET_MANIFEST_ROOT,
    DATASET_MANIFEST_FILE,
    DATASET_MANIFEST_SHA,
    DATASET_CLASS_COUNT,
    DATASET_CLASS,
    DATASET_SOURCE,
    RUNTIME_TREE_ROOT,
    MEMORY_LIMIT,
    CPU_CORES_LIMIT,
    CPU_HOST_LOGICAL,
    OS_KERNEL,
    GPU_MEMORY,
    GPU_DRIVER,
];

/// Every prefix above.
pub const PREFIXES: &[&str] = &[
    EPOCH_PREFIX,
    METRIC_GOAL_PREFIX,
    STATS_PREFIX,
    SANDBOX_PREFIX,
    FIT_PREFIX,
    COMPILE_PREFIX,
    SPLIT_PREFIX,
];
