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
}

/// A model input or output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Element type (`float32`, `int64`, `string`).
    pub dtype: String,
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
    /// Memory the sandbox allowed, in bytes.
    pub memory_limit_bytes: u64,
    /// GPUs the sandbox exposed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<Gpu>,
    /// Every runtime package.
    pub packages: Vec<Package>,
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
    /// Version, e.g. `12`.
    pub version: String,
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

/// A metric the trainer compiled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// Its Keras name (`loss`, `accuracy`); validation values are logged as
    /// `val_<name>`.
    pub name: String,
    /// Which direction is better.
    pub goal: Goal,
}

/// The logs of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochLog {
    /// 1-based epoch number.
    pub epoch: u32,
    /// Keras logs: `loss`, `accuracy`, `val_loss`, ... (validation keys
    /// only on validation epochs).
    pub logs: BTreeMap<String, f64>,
}

/// The training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// Every `fit` parameter exactly as used, with its JSON type.
    pub fit_params: BTreeMap<String, Value>,
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
    /// CPU seconds (user + system) of the trainer's process tree.
    pub cpu_seconds: f64,
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
