//! The bundle: one directory per job holding the inputs, the outputs and
//! every signed statement about them (`docs/bundle.md`). The names here are
//! the whole layout; the in-toto layout's rules, the job and the verifier
//! all use them, so a file the verifier does not know is a failure.
//!
//! ```text
//! BUNDLE/
//!   inputs/model.keras                     the uploaded base model
//!   inputs/data.{csv,zip,tfrecord}         the dataset, named by its definition's type
//!   inputs/definition.yaml                 the dataset definition
//!   inputs/job.yaml                        the job request (model metadata, fit parameters)
//!   outputs/model.keras                    the trained model
//!   outputs/metrics.json                   per-epoch history, final evaluation, parameters as used
//!   outputs/split.json                     the train/validation split's indices
//!   outputs/training.log                   the trainer's log
//!   aibom.cdx.json                         the AIBoM (CycloneDX 1.6 ML-BOM)
//!   attestations/root.layout               the in-toto layout, signed by the root key
//!   attestations/intake.<keyid8>.link      in-toto link of step `intake`
//!   attestations/run_training.<keyid8>.link  in-toto link of step `run_training`
//!   attestations/provenance.dsse.json      SLSA Provenance v1 statement (DSSE)
//!   attestations/aibom.dsse.json           the AIBoM as an in-toto statement (DSSE)
//!   attestations/dataset.manifest.dsse.json  the dataset's per-file manifest (DSSE)
//!   trust/root.pub                         the root public key (pin your own copy)
//!   trust/keyset.dsse.json                 the key set the root key signed
//! ```
//!
//! Paths inside links are relative to the bundle root, so Python's
//! `in-toto-verify` run in the bundle directory checks the same chain.

/// Step name of the intake link.
pub const STEP_INTAKE: &str = "intake";
/// Step name of the training link.
pub const STEP_TRAIN: &str = "run_training";

/// The uploaded model.
pub const INPUT_MODEL: &str = "inputs/model.keras";
/// The dataset definition.
pub const INPUT_DEFINITION: &str = "inputs/definition.yaml";
/// The job request.
pub const INPUT_JOB: &str = "inputs/job.yaml";
/// The prefix of the dataset file; the extension is the definition's type.
pub const INPUT_DATA_PREFIX: &str = "inputs/data.";

/// The trained model.
pub const OUTPUT_MODEL: &str = "outputs/model.keras";
/// The metrics.
pub const OUTPUT_METRICS: &str = "outputs/metrics.json";
/// The split record.
pub const OUTPUT_SPLIT: &str = "outputs/split.json";
/// The training log.
pub const OUTPUT_LOG: &str = "outputs/training.log";
/// Every output, in the order the trainer writes them.
pub const OUTPUTS: [&str; 4] = [OUTPUT_MODEL, OUTPUT_METRICS, OUTPUT_SPLIT, OUTPUT_LOG];

/// The AIBoM.
pub const AIBOM: &str = "aibom.cdx.json";
/// The layout.
pub const LAYOUT: &str = "attestations/root.layout";
/// The directory of the links (and of every other attestation).
pub const ATTESTATIONS_DIR: &str = "attestations";
/// The SLSA provenance envelope.
pub const PROVENANCE: &str = "attestations/provenance.dsse.json";
/// The AIBoM envelope.
pub const AIBOM_ENVELOPE: &str = "attestations/aibom.dsse.json";
/// The dataset manifest envelope.
pub const DATASET_MANIFEST: &str = "attestations/dataset.manifest.dsse.json";
/// The root public key as shipped in the bundle.
pub const TRUST_ROOT: &str = "trust/root.pub";
/// The key set as shipped in the bundle.
pub const TRUST_KEYSET: &str = "trust/keyset.dsse.json";

/// The dataset file name for a definition type (`csv`, `image`,
/// `tfrecord`).
pub fn data_path(definition_type: &str) -> String {
    let ext = match definition_type {
        "image" => "zip",
        other => other,
    };
    format!("{INPUT_DATA_PREFIX}{ext}")
}

/// A link file's path in the bundle.
pub fn link_path(step: &str, keyid: &str) -> String {
    format!(
        "{ATTESTATIONS_DIR}/{}",
        veritrain_attest::intoto::link_file_name(step, keyid)
    )
}

/// `predicateType` of the dataset manifest statement.
pub const MANIFEST_PREDICATE: &str = "https://veritrain.dev/attestations/dataset-manifest/v1";
/// SLSA `buildType` of a Veritrain training job.
pub const BUILD_TYPE: &str = "https://veritrain.dev/build-types/keras-train/v1";
/// SLSA builder id of the `veritrain` CLI and worker.
pub const BUILDER_ID: &str = "https://veritrain.dev/builders/veritrain";
