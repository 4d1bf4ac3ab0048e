//! [`BomInput`]: every fact the AIBoM records, as plain data.
//!
//! The worker fills this in at the end of a job from what it observed
//! (intake verdicts, hashes, the sandbox's limits, the trainer's report) and
//! from what the user asked for ([`ModelRequest`], [`DatasetRequest`], the
//! fit parameters). [`crate::build_bom`] turns it into the BOM; nothing else
//! goes in, so this struct is the complete list of what the BOM can say.
//!
//! It is (de)serializable so that fixtures and the worker's hand-over can be
//! JSON; unknown members are refused, so a misspelt field is an error rather
//! than a silently missing fact.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cdx::Approach;

/// Everything the AIBoM of one training job records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BomInput {
    /// The job's ID.
    pub job_id: String,
    /// When the BOM is made: `metadata.timestamp`, and the time a key set
    /// checks the signing key's validity at.
    pub created_at: DateTime<Utc>,
    /// The platform operator (from the platform's config).
    pub supplier: Organization,
    /// What the user asked for.
    pub request: ModelRequest,
    /// The model the job produced.
    pub trained_model: TrainedModel,
    /// The uploaded model the job started from.
    pub base_model: BaseModel,
    /// The datasets, in the order the job used them.
    pub datasets: Vec<Dataset>,
    /// The dataset definition file.
    pub definition: FileDigest,
    /// The job request file (`inputs/job.yaml`): model metadata and fit
    /// parameters as the user submitted them.
    pub job_request: FileDigest,
    /// Where training ran.
    pub environment: Environment,
    /// The platform code that ran the job.
    pub platform: PlatformCode,
    /// The training run.
    pub training: Training,
    /// When each task ran.
    pub tasks: TaskTimes,
    /// Signed documents about the job (in-toto layout and links, SLSA
    /// provenance, key set). Dataset manifests are listed per dataset.
    #[serde(default)]
    pub attestations: Vec<AttestationRef>,
}

/// An organization.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// Its name.
    pub name: String,
    /// Its web sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url: Vec<String>,
    /// People to contact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<Contact>,
}

/// A person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Their name.
    pub name: String,
    /// Their e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// An organization or a person (data governance).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Party {
    /// An organization.
    Organization(Organization),
    /// A person.
    Contact(Contact),
}

/// What the user asked for: the model's identity and its intended use.
/// Every field ends up in the BOM (a test checks each one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRequest {
    /// The trained model's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its authors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<Contact>,
    /// Its licence, as an SPDX expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The task, e.g. `classification` or `regression`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The learning approach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approach: Option<Approach>,
    /// Architecture family; derived from the layers when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture_family: Option<String>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What the user says about the uploaded base model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<BaseModelRequest>,
    /// Who the model is for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intended_users: Vec<String>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub use_cases: Vec<String>,
    /// Uses it is not fit for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub out_of_scope: Vec<String>,
    /// Foreseeable misuse or malicious use, with mitigations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub misuse: Vec<Misuse>,
    /// Known performance trade-offs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_tradeoffs: Vec<String>,
    /// Fairness assessments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fairness: Vec<Fairness>,
}

/// The user's description of the base model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseModelRequest {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where it came from (free text or a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A foreseeable misuse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Misuse {
    /// The misuse.
    pub description: String,
    /// How it is mitigated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<String>,
}

/// A fairness assessment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fairness {
    /// The group at risk.
    pub group_at_risk: String,
    /// Expected benefits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefits: Option<String>,
    /// Expected harms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harms: Option<String>,
    /// Mitigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation: Option<String>,
}

/// A file and its SHA-256.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDigest {
    /// File name, or path inside the job's bundle.
    pub name: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// The trained model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedModel {
    /// The `.keras` file.
    pub file: FileDigest,
    /// Members of the `.keras` archive with their digests; `config.json`
    /// and `model.weights.h5` are required.
    pub members: Vec<FileDigest>,
    /// Keras version that saved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keras_version: Option<String>,
    /// Model inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<TensorSpec>,
    /// Model outputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<TensorSpec>,
    /// The trainer's metrics file, if it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_file: Option<FileDigest>,
    /// The trainer's record of the train/validation split (the indices of
    /// each example), if it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_file: Option<FileDigest>,
    /// The trainer's log, if it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_file: Option<FileDigest>,
}

/// A model input or output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Element type (`float32`, `int64`, `string`), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// Shape; `null` for a dimension that varies (the batch).
    pub shape: Vec<Option<u64>>,
    /// What it holds (columns, image size, class names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The uploaded base model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseModel {
    /// The uploaded `.keras` file.
    pub file: FileDigest,
    /// The intake scanner's verdict.
    pub scan: ModelScan,
}

/// The facts of the intake scanner's verdict that the BOM records
/// ([`ModelScan::from_verdict`] takes them from
/// `veritrain_intake::keras::KerasVerdict`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelScan {
    /// Whether the scanner accepted the file.
    pub accepted: bool,
    /// The allow-list version that decided.
    pub allowlist_version: String,
    /// Keras version from `metadata.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keras_version: Option<String>,
    /// Save date from `metadata.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_saved: Option<String>,
    /// `Sequential` or `Functional`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_class: Option<String>,
    /// The model's name in its config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Declared input shapes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_shapes: Vec<Vec<Option<u64>>>,
    /// The layer summary, in config order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSummary>,
    /// Total parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_count: Option<u64>,
    /// How `param_count` was established.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_count_source: Option<String>,
    /// Every finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<ScanFinding>,
}

/// One layer of the scanner's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSummary {
    /// Layer name.
    pub name: String,
    /// Keras class.
    pub class_name: String,
    /// Units, filters or embedding size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// Parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<u64>,
}

/// One scanner finding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanFinding {
    /// Stable code.
    pub code: String,
    /// The finding as a sentence, with its location.
    pub message: String,
}

impl ModelScan {
    /// The BOM's facts from the scanner's verdict.
    pub fn from_verdict(v: &veritrain_intake::keras::KerasVerdict) -> Self {
        ModelScan {
            accepted: v.accepted,
            allowlist_version: v.allowlist_version.to_owned(),
            keras_version: v.keras_version.clone(),
            date_saved: v.date_saved.clone(),
            model_class: v.model.as_ref().map(|m| m.class_name.clone()),
            model_name: v.model.as_ref().map(|m| m.name.clone()),
            input_shapes: v
                .model
                .as_ref()
                .map(|m| m.input_shapes.clone())
                .unwrap_or_default(),
            layers: v
                .model
                .as_ref()
                .map(|m| {
                    m.layers
                        .iter()
                        .map(|l| LayerSummary {
                            name: l.name.clone(),
                            class_name: l.class_name.clone(),
                            units: l.units,
                            params: l.params,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            param_count: v.param_count,
            param_count_source: v.param_count_source.as_ref().map(json_name),
            findings: v
                .findings
                .iter()
                .map(|f| ScanFinding {
                    code: f.code.to_owned(),
                    message: f.to_string(),
                })
                .collect(),
        }
    }
}

/// The JSON string a unit enum serializes to: its stable name.
fn json_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("<{e}>"),
    }
}

/// The kind of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    /// One CSV file.
    Csv,
    /// A ZIP of images.
    ImageZip,
    /// TFRecord shards.
    Tfrecord,
}

impl DatasetKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Csv => "csv",
            DatasetKind::ImageZip => "image_zip",
            DatasetKind::Tfrecord => "tfrecord",
        }
    }
}

/// A dataset: what intake observed, and what the user said about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// Its name in the job (unique within the job).
    pub name: String,
    /// Its kind.
    pub kind: DatasetKind,
    /// The uploaded file (the CSV, the ZIP).
    pub upload: FileDigest,
    /// Files in the dataset (1 for a CSV; the images of a ZIP).
    pub file_count: u64,
    /// Bytes of all its files.
    pub size_bytes: u64,
    /// The signed per-file manifest.
    pub manifest: Manifest,
    /// Class names, in label order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// Intake's statistics as JSON: `serde_json::to_value` of the intake
    /// report (`csv::CsvReport`, `image::ImageDatasetReport`,
    /// `tfrecord::TfrecordReport`); every leaf becomes one property.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub stats: Value,
    /// What the user said about it.
    #[serde(default)]
    pub request: DatasetRequest,
}

/// A dataset's per-file manifest, kept outside the BOM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The manifest's root digest (hex).
    pub root_sha256: String,
    /// The manifest file, by its path in the bundle and its digest.
    pub file: FileDigest,
}

/// What the user said about a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRequest {
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Where the data came from (a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its licence, as an SPDX expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Classification, e.g. `public`, `confidential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    /// Kinds of sensitive data it holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_data: Vec<String>,
    /// Owners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<Party>,
    /// Custodians.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custodians: Vec<Party>,
    /// Stewards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stewards: Vec<Party>,
}

/// The training environment, as the sandbox limited it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Python version, e.g. `3.11.9`.
    pub python_version: String,
    /// Operating system.
    pub os: OperatingSystem,
    /// CPU.
    pub cpu: Cpu,
    /// Memory the sandbox allowed, in bytes (the host's memory where the
    /// sandbox set no limit); `None` when neither is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    /// GPUs the sandbox exposed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<Gpu>,
    /// Every runtime package.
    pub packages: Vec<Package>,
    /// Root digest (hex) of the runtime tree's per-file manifest: the
    /// runtime's identity, as the provenance names it.
    pub runtime_tree_root_sha256: String,
    /// The sandbox policy's facts (namespaces, seccomp, network, limits):
    /// `serde_json::to_value` of `veritrain_sandbox::PolicyFacts`; every
    /// leaf becomes one property.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub sandbox: Value,
}

/// The operating system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatingSystem {
    /// Name, e.g. `Debian GNU/Linux`.
    pub name: String,
    /// Version, e.g. `12`, where the host says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
}

/// The CPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    /// Model name.
    pub model: String,
    /// Cores the sandbox allowed (may be fractional: a CPU quota).
    pub cores_limit: f64,
    /// Logical CPUs of the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_logical_cpus: Option<u32>,
}

/// A GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gpu {
    /// Model name.
    pub name: String,
    /// Memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// Driver version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
}

/// A runtime package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Package URL (`pkg:pypi/keras@3.6.0`).
    pub purl: String,
    /// SHA-256 of the wheel it was installed from.
    pub wheel_sha256: String,
}

/// The platform code that ran the job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformCode {
    /// The `veritrain` binary (also the tool that makes the BOM).
    pub veritrain: Binary,
    /// The trainer entry point.
    pub trainer: FileDigest,
    /// The runtime's lock file.
    pub lock_file: FileDigest,
}

/// A binary.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binary {
    /// Version.
    pub version: String,
    /// SHA-256 of the running executable.
    pub sha256: String,
}

/// Whether a smaller or a larger metric value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Smaller is better (loss, error).
    Minimize,
    /// Larger is better (accuracy, AUC).
    Maximize,
}

/// Metrics whose smaller values are better: the losses and error metrics
/// of Keras, by their function names and short names.
const MINIMIZE: &[&str] = &[
    "loss",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "root_mean_squared_error",
    "rmse",
    "mean_absolute_percentage_error",
    "mape",
    "mean_squared_logarithmic_error",
    "msle",
    "kl_divergence",
    "kld",
    "kullback_leibler_divergence",
    "poisson",
    "logcosh",
    "log_cosh",
    "huber",
    "huber_loss",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
];

/// Metrics whose larger values are better.
const MAXIMIZE: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "auc",
    "precision",
    "recall",
    "f1_score",
    "fbeta_score",
    "r2_score",
    // The metric (not the loss of the same name, which Keras negates).
    "cosine_similarity",
    "iou",
    "mean_iou",
    "binary_iou",
    "one_hot_iou",
    "one_hot_mean_iou",
    "precision_at_recall",
    "recall_at_precision",
    "sensitivity_at_specificity",
    "specificity_at_sensitivity",
];

impl Goal {
    /// The direction of a metric Keras logged under `name`, from an
    /// explicit table of Keras metric and loss names (function names and
    /// short names). Keras numbers a second metric of the same name
    /// (`auc_1`); that suffix is ignored. `None` for a name the table does
    /// not hold: the BOM then names no "best" value rather than guessing.
    pub fn of_metric(name: &str) -> Option<Goal> {
        let lookup = |n: &str| {
            if MINIMIZE.contains(&n) {
                Some(Goal::Minimize)
            } else if MAXIMIZE.contains(&n) {
                Some(Goal::Maximize)
            } else {
                None
            }
        };
        lookup(name).or_else(|| {
            let (stem, n) = name.rsplit_once('_')?;
            (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .then(|| lookup(stem))
                .flatten()
        })
    }

    /// `minimize` or `maximize`.
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Minimize => "minimize",
            Goal::Maximize => "maximize",
        }
    }
}

/// A metric the trainer compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// Its Keras name (`loss`, `accuracy`); validation values are logged as
    /// `val_<name>`.
    pub name: String,
    /// Which direction is better; `None` when it is not known, and then
    /// no value is called the best.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<Goal>,
}

/// The logs of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochLog {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Keras logs: `loss`, `accuracy`, `val_loss`, ... (validation keys
    /// only on validation epochs). `None` where the value was not finite:
    /// the trainer's JSON writes NaN and infinities as `null`.
    pub logs: BTreeMap<String, Option<f64>>,
}

/// How the trainer compiled the model: what Keras trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compile {
    /// Where optimizer, loss and metrics came from: `compile_config` (saved
    /// in the uploaded model) or `job` (the request, for a model saved
    /// uncompiled).
    pub source: String,
    /// The optimizer as used: its Keras class (`Adam`) or name (`adam`).
    pub optimizer: String,
    /// Its learning rate, when it is a number (not a schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
    /// The loss as used: its name or Keras class.
    pub loss: String,
    /// The compiled metrics, by name or Keras class, in compile order.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The trainer's whole record (`metrics.json` `compile`: the serialized
    /// optimizer with every setting, the execution settings the platform
    /// chose, what it ignored from the model); every leaf becomes one
    /// property.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub record: Value,
}

/// The one train/validation split of the job (`split.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Split {
    /// The splitting rule (`sha256-rank-v1`).
    pub algorithm: String,
    /// Its seed.
    pub seed: u64,
    /// The fraction asked for validation.
    pub validation_fraction: f64,
    /// Examples in the dataset.
    pub examples: u64,
    /// Examples in the training split.
    pub train: u64,
    /// Examples in the validation split.
    pub validation: u64,
    /// SHA-256 of the training split's indices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_indices_sha256: Option<String>,
    /// SHA-256 of the validation split's indices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_indices_sha256: Option<String>,
}

/// An evaluation of the trained model after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The slice evaluated (`validation`).
    pub split: String,
    /// Examples evaluated.
    pub examples: u64,
    /// Each compiled metric's value; `None` where it was not finite.
    pub metrics: BTreeMap<String, Option<f64>>,
}

/// The training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// Every `fit` parameter exactly as the job passed it to the trainer,
    /// with its JSON type (`optimizer`, `loss`, `metrics` are `null` when
    /// the model's own compile settings applied; [`Training::compile`]
    /// has what was used).
    pub fit_params: BTreeMap<String, Value>,
    /// What the model was compiled with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<Compile>,
    /// The train/validation split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Optimizer steps taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_run: Option<u64>,
    /// The trained model evaluated once more on the whole validation
    /// split, after the last epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_evaluation: Option<Evaluation>,
    /// The compiled metrics, `loss` first.
    pub metrics: Vec<MetricSpec>,
    /// Per-epoch logs, in epoch order.
    pub history: Vec<EpochLog>,
    /// Measured resource use.
    pub usage: ResourceUsage,
}

/// Measured resource use of the training task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceUsage {
    /// Wall-clock seconds of the trainer process.
    pub wall_seconds: f64,
    /// CPU seconds (user + system) of the trainer's process tree; `None`
    /// when the cgroup did not report it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_seconds: Option<f64>,
    /// GPU seconds, when a GPU was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_seconds: Option<f64>,
    /// Measured energy in kWh, when a meter was available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_kwh: Option<f64>,
}

/// A start and an end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
}

/// When each task of the job ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTimes {
    /// Intake: scanning the uploads.
    pub intake: Span,
    /// Training.
    pub train: Span,
    /// Attestation: hashing outputs and signing.
    pub attest: Span,
}

/// The kind of a signed document about the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttestationKind {
    /// The in-toto layout.
    InTotoLayout,
    /// An in-toto link.
    InTotoLink,
    /// The SLSA provenance statement.
    SlsaProvenance,
    /// The root-signed key set.
    KeySet,
}

impl AttestationKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttestationKind::InTotoLayout => "in_toto_layout",
            AttestationKind::InTotoLink => "in_toto_link",
            AttestationKind::SlsaProvenance => "slsa_provenance",
            AttestationKind::KeySet => "key_set",
        }
    }
}

/// A signed document about the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationRef {
    /// Its kind.
    pub kind: AttestationKind,
    /// The document, by its path in the bundle, and its digest.
    pub file: FileDigest,
    /// What it covers (the step of a link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}
