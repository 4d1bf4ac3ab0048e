//! `model.weights.h5`: structure inspection and the cross-check against
//! the layers of `config.json`.
//!
//! Keras 3 stores each saveable's variables under `<path>/vars/<i>`, where
//! `<path>` is built from the *class* of each layer in the order of the
//! model's `layers` (`layers/dense`, `layers/dense_1`, ...; see
//! `saving_lib._save_container_state`), and writes the layer's own name as
//! the `name` attribute of its `vars` group. RNN layers keep their weights
//! in their cell (`layers/lstm/cell/vars`); nested models repeat the
//! pattern (`layers/sequential/layers/dense/vars`); the optimizer's state
//! is under `optimizer/vars`. The cross-check accepts exactly that tree:
//! every group and dataset must belong to a layer of the config (or to the
//! optimizer), every layer's datasets must have the shapes its config
//! implies, and nothing else may be there.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use serde::Serialize;

use super::config::ConfigScan;
use super::hdf5::{self, H5Dataset, H5Tree};
use super::params;
use super::{KerasLimits, codes};
use crate::finding::{Finding, Location};

const MEMBER: &str = "model.weights.h5";

/// Where a layer's parameter count comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamSource {
    /// Computed from the config and matched, shape by shape, by the weights.
    Config,
    /// Not computable from the config: counted from the weights file.
    Weights,
}

/// The weights one layer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerWeights {
    /// The layer's name (from the config).
    pub name: String,
    /// Its HDF5 group.
    pub group: String,
    /// Shapes of its datasets, in storage order.
    pub shapes: Vec<Vec<u64>>,
    /// Number of scalars.
    pub params: u64,
    /// Where `params` was established.
    pub source: ParamSource,
}

/// What the weights file holds, and how it matched the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightsReport {
    /// Cross-check mismatches (each with its HDF5 path). Structural
    /// problems are errors of [`inspect_weights`] instead.
    pub findings: Vec<Finding>,
    /// Superblock version of the file.
    pub superblock_version: u8,
    /// Number of datasets.
    pub datasets: usize,
    /// Sum of the datasets' declared byte sizes.
    pub total_bytes: u64,
    /// Per-layer weights, in config order (layers without weights omitted).
    pub layers: Vec<LayerWeights>,
    /// Scalars held by the layers (the model's parameter count).
    pub param_count: u64,
    /// Number of optimizer variables (`optimizer/vars/*`).
    pub optimizer_variables: usize,
    /// The structure walked.
    #[serde(skip)]
    pub tree: H5Tree,
}

impl WeightsReport {
    /// Whether the weights matched the config.
    pub fn accepted(&self) -> bool {
        self.findings.is_empty()
    }
}

fn mismatch(path: &str, message: impl Into<String>) -> Finding {
    Finding::new(
        codes::WEIGHTS_MISMATCH,
        message,
        Location::Hdf5 {
            member: MEMBER.to_owned(),
            path: path.to_owned(),
        },
    )
}

/// Inspects `model.weights.h5` and cross-checks it against the config.
///
/// `member_len` is the member's real (inflated) size as the archive reader
/// counted it; `h5` must be all of it. Structural problems (malformed
/// HDF5, external links or storage, shape bombs, unsupported structures)
/// are returned as the error; mismatches with the config are findings in
/// the report.
pub fn inspect_weights(
    h5: &[u8],
    member_len: u64,
    config: &ConfigScan,
    limits: &KerasLimits,
) -> crate::Result<WeightsReport> {
    if h5.len() as u64 != member_len {
        return Err(Finding::new(
            codes::H5_INVALID,
            format!("got {} bytes of a {member_len}-byte member", h5.len()),
            Location::Entry {
                name: MEMBER.to_owned(),
            },
        )
        .into());
    }
    let tree = hdf5::parse_weights_structure(h5, MEMBER, limits)?;
    let total_bytes = tree
        .datasets
        .iter()
        .try_fold(0u64, |acc, d| acc.checked_add(d.byte_size))
        .unwrap_or(u64::MAX);
    // Storage was checked in-file and non-overlapping, so this holds for
    // any file the walker accepted; kept as the direct statement of the
    // rule "declared bytes never exceed the member's real size".
    if total_bytes > member_len {
        return Err(Finding::new(
            codes::H5_SHAPE_EXCEEDS_SIZE,
            format!("datasets declare {total_bytes} bytes in a {member_len}-byte file"),
            Location::Entry {
                name: MEMBER.to_owned(),
            },
        )
        .into());
    }
    Ok(cross_check(tree, total_bytes, config, limits))
}

/// A `vars` group's datasets, by index.
fn vars_of<'t>(
    by_group: &BTreeMap<&str, Vec<&'t H5Dataset>>,
    group: &str,
    findings: &mut Vec<Finding>,
) -> Vec<&'t H5Dataset> {
    let mut items: Vec<(u64, &H5Dataset)> = Vec::new();
    for d in by_group.get(group).map(Vec::as_slice).unwrap_or_default() {
        let leaf = d.path.rsplit('/').next().unwrap_or_default();
        match leaf.parse::<u64>() {
            Ok(i) if i.to_string() == leaf => items.push((i, d)),
            _ => findings.push(mismatch(
                &d.path,
                "variable datasets are named 0, 1, 2, ...",
            )),
        }
    }
    items.sort_by_key(|(i, _)| *i);
    for (pos, (i, d)) in items.iter().enumerate() {
        if *i != pos as u64 {
            findings.push(mismatch(
                &d.path,
                "variable indices are not contiguous from 0",
            ));
            break;
        }
    }
    items.into_iter().map(|(_, d)| d).collect()
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => path.get(..i).unwrap_or("/"),
        None => "/",
    }
}

fn cross_check(
    tree: H5Tree,
    total_bytes: u64,
    config: &ConfigScan,
    limits: &KerasLimits,
) -> WeightsReport {
    let mut findings = Vec::new();
    let mut by_group: BTreeMap<&str, Vec<&H5Dataset>> = BTreeMap::new();
    for d in &tree.datasets {
        by_group.entry(parent(&d.path)).or_default().push(d);
    }
    let groups: BTreeMap<&str, Option<&str>> = tree
        .groups
        .iter()
        .map(|g| (g.path.as_str(), g.name_attr.as_deref()))
        .collect();
    // Paths accounted for by the config; everything else is refused.
    let mut claimed_groups: HashSet<String> = HashSet::new();
    // Groups of layers counted from the file: everything below is theirs.
    let mut claimed_prefixes: HashSet<String> = HashSet::new();
    let by_path: BTreeMap<&str, &H5Dataset> =
        tree.datasets.iter().map(|d| (d.path.as_str(), d)).collect();
    let mut claimed_datasets: HashSet<&str> = HashSet::new();
    claimed_groups.insert("/".to_owned());
    claimed_groups.insert("/vars".to_owned());
    claimed_groups.insert("/layers".to_owned());
    claimed_groups.insert("/optimizer".to_owned());
    claimed_groups.insert("/optimizer/vars".to_owned());

    // The root model's own (empty) vars group carries the model's name.
    if let Some(Some(name)) = groups.get("/vars")
        && !config.model.name.is_empty()
        && *name != config.model.name
    {
        findings.push(mismatch(
            "/vars",
            format!(
                "names the model {name:?}, the config {:?}",
                config.model.name
            ),
        ));
    }
    if by_group.contains_key("/vars") {
        findings.push(mismatch("/vars", "the model itself holds variables"));
    }

    let mut layers = Vec::new();
    let mut weight_shapes: HashSet<Vec<u64>> = HashSet::new();
    let mut param_count = 0u64;
    for layer in &config.model.layers {
        let Some(group) = &layer.weights_group else {
            continue;
        };
        // Ancestors of the layer group (`<model>/layers`) are claimed too.
        let mut up = parent(group).to_owned();
        while up != "/" && claimed_groups.insert(up.clone()) {
            up = parent(&up).to_owned();
        }
        claimed_groups.insert(group.clone());
        let vars = format!("{group}/vars");
        claimed_groups.insert(vars.clone());
        if let Some(Some(name)) = groups.get(vars.as_str())
            && *name != layer.name
        {
            findings.push(mismatch(&vars, format!(
                "holds the weights of a layer named {name:?}, but the config has {:?} ({}) here",
                layer.name, layer.class_name
            )));
        }
        if layer.class_name == "Sequential" || layer.class_name == "Functional" {
            claimed_groups.insert(format!("{group}/layers"));
            for d in vars_of(&by_group, &vars, &mut findings) {
                findings.push(mismatch(&d.path, "a nested model holds variables itself"));
                claimed_datasets.insert(&d.path);
            }
            continue;
        }
        let (shapes, source) = match &layer.expected {
            Some(expected) => {
                let mut shapes = Vec::new();
                for var_group in expected {
                    let sub = format!("{group}{}", var_group.suffix);
                    claimed_groups.insert(sub.clone());
                    let vpath = format!("{sub}/vars");
                    claimed_groups.insert(vpath.clone());
                    let found = vars_of(&by_group, &vpath, &mut findings);
                    let got: Vec<Vec<u64>> = found.iter().map(|d| d.shape.clone()).collect();
                    for d in &found {
                        claimed_datasets.insert(&d.path);
                    }
                    if got != var_group.shapes {
                        findings.push(mismatch(
                            &vpath,
                            format!(
                                "{} {:?} ({}) should hold shapes {:?}, the file holds {:?}",
                                layer.class_name, layer.name, layer.pointer, var_group.shapes, got
                            ),
                        ));
                    }
                    shapes.extend(got);
                }
                (shapes, ParamSource::Config)
            }
            None => {
                // Not computable from the config: take what is under the
                // layer's group (a contiguous range of the sorted paths),
                // bounded by the walker's limits.
                claimed_prefixes.insert(group.clone());
                let prefix = format!("{group}/");
                let mut shapes = Vec::new();
                for (path, d) in
                    by_path.range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
                {
                    if !path.starts_with(&prefix) {
                        break;
                    }
                    claimed_datasets.insert(path);
                    shapes.push(d.shape.clone());
                }
                (shapes, ParamSource::Weights)
            }
        };
        let params = shapes
            .iter()
            .try_fold(0u64, |acc, s| acc.checked_add(params::elements(s)?))
            .unwrap_or(u64::MAX);
        param_count = param_count.saturating_add(params);
        // Layers known to hold nothing are left out; a layer counted from
        // the file is listed even when it holds nothing, so the verdict
        // says where its count came from.
        if shapes.is_empty() && source == ParamSource::Config {
            continue;
        }
        weight_shapes.extend(shapes.iter().cloned());
        layers.push(LayerWeights {
            name: layer.name.clone(),
            group: group.clone(),
            shapes,
            params,
            source,
        });
    }

    // Optimizer state: scalars (iterations, learning rate) and slots
    // shaped like the model's weights (Adam's m and v, momentum).
    let optimizer = vars_of(&by_group, "/optimizer/vars", &mut findings);
    for d in &optimizer {
        claimed_datasets.insert(&d.path);
        if !d.shape.is_empty() && !weight_shapes.contains(&d.shape) {
            findings.push(mismatch(
                &d.path,
                format!(
                    "optimizer variable of shape {:?} matches no model weight",
                    d.shape
                ),
            ));
        }
    }

    let claimed_by_prefix = |p: &str| {
        claimed_prefixes
            .iter()
            .any(|pre| p.starts_with(pre.as_str()))
    };
    for g in &tree.groups {
        if !claimed_groups.contains(&g.path) && !claimed_by_prefix(&g.path) {
            findings.push(mismatch(
                &g.path,
                "group that belongs to no layer of the config",
            ));
        }
    }
    for d in &tree.datasets {
        if !claimed_datasets.contains(d.path.as_str()) && !claimed_by_prefix(&d.path) {
            findings.push(mismatch(
                &d.path,
                "dataset that belongs to no layer of the config",
            ));
        }
    }
    findings.truncate(limits.max_findings);
    WeightsReport {
        findings,
        superblock_version: tree.superblock_version,
        datasets: tree.datasets.len(),
        total_bytes,
        layers,
        param_count,
        optimizer_variables: optimizer.len(),
        tree,
    }
}
