//! The archive-level scan and the structured verdict.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::config::{ConfigScan, ModelSummary, TensorSummary, scan_config};
use super::metadata::scan_metadata;
use super::weights::{ParamSource, WeightsReport, inspect_weights};
use super::{ALLOWLIST_VERSION, KerasArchive, KerasLimits, codes};
use crate::error::Error;
use crate::finding::{Finding, Location};

const CONFIG: &str = "config.json";
const METADATA: &str = "metadata.json";
const WEIGHTS: &str = "model.weights.h5";

/// One layer in the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictLayer {
    /// Layer name.
    pub name: String,
    /// Keras class.
    pub class_name: String,
    /// Enclosing model's name.
    pub model: String,
    /// JSON pointer in `config.json`.
    pub pointer: String,
    /// HDF5 group of its variables, if it has one.
    pub weights_group: Option<String>,
    /// Units, filters or embedding size.
    pub units: Option<u64>,
    /// Parameters, if established.
    pub params: Option<u64>,
    /// How `params` was established.
    pub params_source: Option<ParamSource>,
}

/// The model as the verdict reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerdictModel {
    /// `Sequential` or `Functional`.
    pub class_name: String,
    /// Model name.
    pub name: String,
    /// Input shapes (`null` = unknown, e.g. the batch dimension).
    pub input_shapes: Vec<Vec<Option<u64>>>,
    /// Whether the file carries a `compile_config`.
    pub compiled: bool,
    /// The inputs: name, dtype and shape as the config declares them.
    pub inputs: Vec<TensorSummary>,
    /// The outputs: the layers that compute them, their compute dtype, and
    /// their shape where the config determines it.
    pub outputs: Vec<TensorSummary>,
    /// Layers in config order, nested models' layers included.
    pub layers: Vec<VerdictLayer>,
}

/// How the model's parameter count was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamCountSource {
    /// Every layer's count computed from the config and matched by the
    /// weights file.
    Config,
    /// Some layers' counts come from the weights file alone
    /// (`layers_counted_from_weights` lists them).
    ConfigAndWeights,
    /// The weights file could not be used: computed from the config only.
    ConfigOnly,
}

/// Facts about `model.weights.h5`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightsSummary {
    /// HDF5 superblock version.
    pub superblock_version: u8,
    /// Number of datasets.
    pub datasets: usize,
    /// Declared bytes of all datasets.
    pub total_bytes: u64,
    /// Number of optimizer variables.
    pub optimizer_variables: usize,
}

/// The scanner's decision on one `.keras` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KerasVerdict {
    /// True only when there is no finding at all.
    pub accepted: bool,
    /// The allow-list that decided ([`ALLOWLIST_VERSION`]).
    pub allowlist_version: &'static str,
    /// Keras version from `metadata.json`.
    pub keras_version: Option<String>,
    /// Save date from `metadata.json`.
    pub date_saved: Option<String>,
    /// The model's layer summary.
    pub model: Option<VerdictModel>,
    /// Total parameters (scalars held by the layers).
    pub param_count: Option<u64>,
    /// How `param_count` was established.
    pub param_count_source: Option<ParamCountSource>,
    /// Layers whose parameters were counted from the weights file because
    /// the config does not determine them.
    pub layers_counted_from_weights: Vec<String>,
    /// Facts about the weights file.
    pub weights: Option<WeightsSummary>,
    /// Every finding, with a stable code and its location.
    pub findings: Vec<Finding>,
}

impl KerasVerdict {
    /// A verdict that refuses the file for one reason found before the
    /// archive could be scanned (classification, the ZIP reader).
    pub fn refused(finding: Finding) -> Self {
        let mut verdict = Self::empty();
        verdict.findings.push(finding);
        verdict
    }

    fn empty() -> Self {
        KerasVerdict {
            accepted: false,
            allowlist_version: ALLOWLIST_VERSION,
            keras_version: None,
            date_saved: None,
            model: None,
            param_count: None,
            param_count_source: None,
            layers_counted_from_weights: Vec::new(),
            weights: None,
            findings: Vec::new(),
        }
    }
}

fn entry(code: &'static str, name: &str, message: impl Into<String>) -> Finding {
    Finding::new(
        code,
        message,
        Location::Entry {
            name: name.to_owned(),
        },
    )
}

fn finding_of(e: Error, member: &str) -> Finding {
    match e {
        Error::Rejected(f) => *f,
        other => entry(codes::MEMBER_UNREADABLE, member, other.to_string()),
    }
}

/// Reads one member, refusing it by its listed size first.
fn read(
    archive: &mut dyn KerasArchive,
    name: &str,
    size: u64,
    max: u64,
    findings: &mut Vec<Finding>,
) -> Option<Vec<u8>> {
    if size > max {
        findings.push(entry(
            codes::MEMBER_TOO_LARGE,
            name,
            format!("{name} is {size} bytes, over the limit of {max}"),
        ));
        return None;
    }
    match archive.read_member(name, max) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            findings.push(finding_of(e, name));
            None
        }
    }
}

/// Scans an opened `.keras` archive and decides.
///
/// Only the members Keras 3 writes are accepted: `config.json`,
/// `metadata.json`, `model.weights.h5`, and `assets/<layer group>/vocabulary.txt`
/// for an adapted `StringLookup`/`IntegerLookup` (the only allow-listed
/// layers that save assets). Every check runs even after a failure, so the
/// verdict lists every finding.
pub fn scan_keras_archive(archive: &mut dyn KerasArchive, limits: &KerasLimits) -> KerasVerdict {
    let mut findings = Vec::new();
    let members = archive.members();
    let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
    let mut assets = Vec::new();
    for (name, size) in &members {
        if sizes.insert(name.clone(), *size).is_some() {
            findings.push(entry(
                codes::UNEXPECTED_MEMBER,
                name,
                "member appears twice",
            ));
            continue;
        }
        match name.as_str() {
            CONFIG | METADATA | WEIGHTS => {}
            // `.npz` weights are a ZIP of `.npy` arrays, which may be pickled
            // object arrays; only HDF5 weights are inspected.
            "model.weights.npz" => findings.push(entry(
                codes::UNEXPECTED_MEMBER,
                name,
                "NumPy (.npz) weights are not accepted; save with the default HDF5 weights",
            )),
            n if n.starts_with("assets/") => assets.push((name.clone(), *size)),
            _ => findings.push(entry(
                codes::UNEXPECTED_MEMBER,
                name,
                "Keras 3 does not write this member",
            )),
        }
    }
    if assets.len() > limits.max_assets {
        findings.push(entry(
            codes::UNEXPECTED_MEMBER,
            "assets/",
            format!("more than {} asset files", limits.max_assets),
        ));
        assets.truncate(limits.max_assets);
    }
    for required in [CONFIG, METADATA, WEIGHTS] {
        if !sizes.contains_key(required) {
            findings.push(entry(
                codes::MISSING_MEMBER,
                required,
                format!("{required} is missing"),
            ));
        }
    }

    let mut verdict = KerasVerdict::empty();

    if let Some(&size) = sizes.get(METADATA)
        && let Some(bytes) = read(
            archive,
            METADATA,
            size,
            limits.max_metadata_bytes,
            &mut findings,
        )
    {
        match scan_metadata(&bytes, limits) {
            Ok(m) => {
                verdict.keras_version = Some(m.keras_version);
                verdict.date_saved = m.date_saved;
            }
            Err(e) => findings.push(finding_of(e, METADATA)),
        }
    }

    let mut config: Option<ConfigScan> = None;
    if let Some(&size) = sizes.get(CONFIG)
        && let Some(bytes) = read(
            archive,
            CONFIG,
            size,
            limits.max_config_bytes,
            &mut findings,
        )
    {
        match scan_config(&bytes, limits) {
            Ok(scan) => {
                findings.extend(scan.findings.iter().cloned());
                config = Some(scan);
            }
            Err(e) => findings.push(finding_of(e, CONFIG)),
        }
    }

    let mut report: Option<WeightsReport> = None;
    if let Some(scan) = &config
        && let Some(&size) = sizes.get(WEIGHTS)
        && let Some(bytes) = read(
            archive,
            WEIGHTS,
            size,
            limits.max_weights_bytes,
            &mut findings,
        )
    {
        match inspect_weights(&bytes, size, scan, limits) {
            Ok(r) => {
                findings.extend(r.findings.iter().cloned());
                report = Some(r);
            }
            Err(e) => findings.push(finding_of(e, WEIGHTS)),
        }
    }

    // Assets: only `assets/<group>/vocabulary.txt` of an adapted lookup
    // layer, as Keras's `IndexLookup.save_assets` writes it.
    let vocab_paths: HashSet<String> = config
        .iter()
        .flat_map(|c| c.model.layers.iter())
        .filter(|l| l.vocabulary_asset)
        .filter_map(|l| l.weights_group.as_ref())
        .map(|g| format!("assets{g}/vocabulary.txt"))
        .collect();
    for (name, size) in assets {
        if !vocab_paths.contains(&name) {
            findings.push(entry(
                codes::UNEXPECTED_MEMBER,
                &name,
                "no adapted lookup layer of the config saves this asset",
            ));
            continue;
        }
        if let Some(bytes) = read(archive, &name, size, limits.max_asset_bytes, &mut findings)
            && (std::str::from_utf8(&bytes).is_err() || bytes.contains(&0))
        {
            findings.push(entry(
                codes::ASSET_INVALID,
                &name,
                "vocabulary is not UTF-8 text",
            ));
        }
    }

    if let Some(scan) = &config {
        fill_model(&mut verdict, &scan.model, report.as_ref());
    }
    if let Some(r) = &report {
        verdict.weights = Some(WeightsSummary {
            superblock_version: r.superblock_version,
            datasets: r.datasets,
            total_bytes: r.total_bytes,
            optimizer_variables: r.optimizer_variables,
        });
    }
    verdict.accepted = findings.is_empty();
    verdict.findings = findings;
    verdict
}

fn fill_model(verdict: &mut KerasVerdict, model: &ModelSummary, report: Option<&WeightsReport>) {
    let from_weights: BTreeMap<&str, (u64, ParamSource)> = report
        .map(|r| {
            r.layers
                .iter()
                .map(|l| (l.group.as_str(), (l.params, l.source)))
                .collect()
        })
        .unwrap_or_default();
    let mut layers = Vec::new();
    let mut counted_from_weights = Vec::new();
    let mut config_total = Some(0u64);
    for l in &model.layers {
        let weighed = l
            .weights_group
            .as_deref()
            .and_then(|g| from_weights.get(g).copied());
        let (params, source) = match (report, weighed) {
            (Some(_), Some((p, s))) => (Some(p), Some(s)),
            // Weights inspected, layer holds none.
            (Some(_), None) => (Some(0), l.params_from_config.map(|_| ParamSource::Config)),
            (None, _) => (
                l.params_from_config,
                l.params_from_config.map(|_| ParamSource::Config),
            ),
        };
        if source == Some(ParamSource::Weights) {
            counted_from_weights.push(l.name.clone());
        }
        let nested_model = matches!(l.class_name.as_str(), "Sequential" | "Functional");
        config_total = match (config_total, l.params_from_config) {
            // A nested model's parameters are those of its layers, listed
            // after it.
            (t, _) if nested_model => t,
            (Some(t), Some(p)) => t.checked_add(p),
            _ => None,
        };
        layers.push(VerdictLayer {
            name: l.name.clone(),
            class_name: l.class_name.clone(),
            model: l.model.clone(),
            pointer: l.pointer.clone(),
            weights_group: l.weights_group.clone(),
            units: l.units,
            params,
            params_source: source,
        });
    }
    match report {
        Some(r) => {
            verdict.param_count = Some(r.param_count);
            verdict.param_count_source = Some(if counted_from_weights.is_empty() {
                ParamCountSource::Config
            } else {
                ParamCountSource::ConfigAndWeights
            });
        }
        None => {
            verdict.param_count = config_total;
            verdict.param_count_source = config_total.map(|_| ParamCountSource::ConfigOnly);
        }
    }
    verdict.layers_counted_from_weights = counted_from_weights;
    verdict.model = Some(VerdictModel {
        class_name: model.class_name.clone(),
        name: model.name.clone(),
        input_shapes: model.input_shapes.clone(),
        compiled: model.compiled,
        inputs: model.inputs.clone(),
        outputs: model.outputs.clone(),
        layers,
    });
}
