//! [`build_bom`]: from a [`BomInput`] to a schema-valid CycloneDX 1.6 BOM.
//!
//! Where it sits: the worker calls it once per job, after training and
//! before signing. The mapping (which input goes where) is documented field
//! by field in `docs/aibom.md`; the rules it keeps:
//! - nothing the user gave is dropped or rewritten: request text goes into
//!   the BOM verbatim, empty optional fields are left out rather than filled
//!   with "Unknown";
//! - a value is written as what it is: zero is `0`, a fit parameter carries
//!   its JSON type, a metric is one number per field;
//! - every BOM is validated against the official 1.6 schema before it is
//!   returned, so a BOM that leaves this function is valid.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cdx::{
    self, ApproachType, Attachment, Bom, Component, ComponentData, ComponentType, Considerations,
    DataContents, DataGovernance, DataType, DatasetChoice, Dependency, EnergyConsumption,
    EnergyMeasure, EnergyProvider, EnvironmentalConsiderations, ExternalReference,
    FairnessAssessment, Formula, Graphic, GraphicsCollection, Hash, LicenseChoice, Lifecycle,
    Metadata, MlParameter, ModelCard, ModelParameters, OrganizationalContact, OrganizationalEntity,
    OutputType, Parameter, Pedigree, PerformanceMetric, Phase, Property, QuantitativeAnalysis,
    ResourceReference, ResponsibleParty, Risk, Task, TaskInput, TaskOutput, TaskType, Tools,
    Workflow,
};
use crate::chart::{self, Panel, Series};
use crate::error::{Error, Result};
use crate::input::{
    AttestationKind, BomInput, Contact, Dataset, FileDigest, Goal, ModelScan, Organization, Party,
    Span, TensorSpec,
};
use crate::props;

/// `bom-ref`s of the components every BOM has.
pub mod refs {
    /// The trained model (`metadata.component`).
    pub const MODEL: &str = "trained-model";
    /// Its model card.
    pub const MODEL_CARD: &str = "trained-model/model-card";
    /// The uploaded base model.
    pub const BASE_MODEL: &str = "base-model";
    /// The dataset definition file.
    pub const DEFINITION: &str = "dataset-definition";
    /// The job request file.
    pub const JOB_REQUEST: &str = "job-request";
    /// The training runtime.
    pub const RUNTIME: &str = "runtime";
    /// Python.
    pub const PYTHON: &str = "runtime/python";
    /// The operating system.
    pub const OS: &str = "runtime/os";
    /// The CPU.
    pub const CPU: &str = "runtime/cpu";
    /// The veritrain binary.
    pub const VERITRAIN: &str = "platform/veritrain";
    /// The trainer entry point.
    pub const TRAINER: &str = "platform/trainer";
    /// The runtime's lock file.
    pub const LOCK_FILE: &str = "platform/lock-file";
    /// The job's formula.
    pub const FORMULA: &str = "formula";
    /// The intake task.
    pub const TASK_INTAKE: &str = "task/intake";
    /// The training task.
    pub const TASK_TRAIN: &str = "task/train";
    /// The attestation task.
    pub const TASK_ATTEST: &str = "task/attest";

    /// A dataset's `bom-ref`.
    pub fn dataset(name: &str) -> String {
        format!("dataset/{name}")
    }
    /// A member of the trained model's archive.
    pub fn model_member(name: &str) -> String {
        format!("trained-model/{name}")
    }
    /// A GPU.
    pub fn gpu(index: usize) -> String {
        format!("runtime/gpu/{index}")
    }
    /// The workflow of a job.
    pub fn workflow(job_id: &str) -> String {
        format!("workflow/{job_id}")
    }
}

/// Members a trained `.keras` file must list.
const REQUIRED_MEMBERS: [&str; 2] = ["config.json", "model.weights.h5"];

/// Name of the embedded training-curve graphic.
pub const CURVES_GRAPHIC: &str = "training-curves";

/// Build the AIBoM of a job, and check it against the CycloneDX 1.6 schema.
pub fn build_bom(input: &BomInput) -> Result<Bom> {
    check_input(input)?;
    let model = trained_model_component(input)?;
    let mut components = vec![base_model_component(input)];
    components.extend(input.datasets.iter().map(dataset_component));
    components.push(definition_component(&input.definition));
    components.push(job_request_component(&input.job_request));
    components.push(runtime_component(input));
    components.extend(platform_components(input));

    let bom = Bom {
        schema: Some(cdx::SCHEMA_URI.to_owned()),
        bom_format: cdx::BOM_FORMAT.to_owned(),
        spec_version: cdx::SPEC_VERSION.to_owned(),
        serial_number: Some(serial_number(&input.job_id)),
        version: 1,
        metadata: Some(Metadata {
            timestamp: Some(timestamp(&input.created_at)),
            lifecycles: vec![Lifecycle::Phase {
                phase: Phase::Build,
            }],
            tools: Some(Tools {
                components: vec![tool_component(input)],
            }),
            supplier: Some(organization(&input.supplier)),
            component: Some(Box::new(model)),
            properties: vec![Property::new(props::JOB_ID, &input.job_id)],
        }),
        components,
        external_references: external_references(input),
        dependencies: dependencies(input),
        formulation: vec![formula(input)],
    };
    let json = serde_json::to_value(&bom).map_err(|e| Error::Malformed(e.to_string()))?;
    crate::schema::validate_bom(&json)?;
    Ok(bom)
}

/// The BOM's JSON: pretty-printed, fields in the struct order, newline at
/// the end. The same BOM always gives the same bytes.
pub fn to_json(bom: &Bom) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(bom).map_err(|e| Error::Malformed(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

/// `urn:uuid:` of a name-based UUID (RFC 9562 version 8, from SHA-256) of
/// the job ID: one BOM per job, and re-making it keeps its serial number,
/// as the spec asks of a BOM that only changes version.
pub fn serial_number(job_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"veritrain-aibom\0");
    h.update(job_id.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(d.get(..16).unwrap_or(&[0u8; 16]));
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC variant
    let hex = hex::encode(b);
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A number as property text: JSON number syntax (shortest round-trip),
/// `NaN`, `Infinity` or `-Infinity`.
pub fn number_text(v: f64) -> String {
    match serde_json::Number::from_f64(v) {
        Some(n) => n.to_string(),
        None if v.is_nan() => "NaN".to_owned(),
        None if v > 0.0 => "Infinity".to_owned(),
        None => "-Infinity".to_owned(),
    }
}

/// A JSON value as property text: strings verbatim, everything else in
/// JSON syntax (`0`, `0.2`, `true`, `null`, `[1,2]`).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The JSON type name of a value (`integer` for whole numbers without a
/// fraction in their text).
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One property per leaf of `value`, named `prefix` + the dotted path.
/// Empty objects and arrays are written as `{}` / `[]`, so nothing vanishes.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<Property>) {
    fn walk(path: &mut String, value: &Value, out: &mut Vec<Property>) {
        let len = path.len();
        let mut descend = |key: &str, v: &Value, out: &mut Vec<Property>| {
            if !path.ends_with(':') {
                path.push('.');
            }
            path.push_str(key);
            walk(path, v, out);
            path.truncate(len);
        };
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    descend(k, v, out);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (i, v) in items.iter().enumerate() {
                    descend(&i.to_string(), v, out);
                }
            }
            leaf => out.push(Property::new(path.clone(), value_text(leaf))),
        }
    }
    if value.is_null() {
        return;
    }
    let mut path = prefix.to_owned();
    walk(&mut path, value, out);
}

// ----- input checks -------------------------------------------------------

pub(crate) fn check_sha256_field(field: &str, value: &str) -> Result<()> {
    if value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(())
    } else {
        Err(Error::input(
            field,
            format!("{value:?} is not a lower-case hex SHA-256 digest (64 characters)"),
        ))
    }
}

fn check_text(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(Error::input(field, "must not be empty"));
    }
    Ok(())
}

fn check_file(field: &str, f: &FileDigest) -> Result<()> {
    check_text(&format!("{field}.name"), &f.name)?;
    check_sha256_field(&format!("{field}.sha256"), &f.sha256)
}

fn check_span(field: &str, s: &Span) -> Result<()> {
    if s.end < s.start {
        return Err(Error::input(
            field,
            format!(
                "ends ({}) before it starts ({})",
                timestamp(&s.end),
                timestamp(&s.start)
            ),
        ));
    }
    Ok(())
}

fn check_input(input: &BomInput) -> Result<()> {
    check_text("job_id", &input.job_id)?;
    check_text("supplier.name", &input.supplier.name)?;
    check_text("request.name", &input.request.name)?;
    check_text("request.version", &input.request.version)?;
    check_file("trained_model.file", &input.trained_model.file)?;
    let mut members = BTreeSet::new();
    for (i, m) in input.trained_model.members.iter().enumerate() {
        check_file(&format!("trained_model.members[{i}]"), m)?;
        if !members.insert(m.name.as_str()) {
            return Err(Error::input(
                format!("trained_model.members[{i}].name"),
                format!("{:?} is listed twice", m.name),
            ));
        }
    }
    for required in REQUIRED_MEMBERS {
        if !members.contains(required) {
            return Err(Error::input(
                "trained_model.members",
                format!("the digest of {required} is missing"),
            ));
        }
    }
    for (field, f) in [
        (
            "trained_model.metrics_file",
            &input.trained_model.metrics_file,
        ),
        ("trained_model.split_file", &input.trained_model.split_file),
        ("trained_model.log_file", &input.trained_model.log_file),
    ] {
        if let Some(f) = f {
            check_file(field, f)?;
        }
    }
    check_file("base_model.file", &input.base_model.file)?;
    check_text(
        "base_model.scan.allowlist_version",
        &input.base_model.scan.allowlist_version,
    )?;
    if input.datasets.is_empty() {
        return Err(Error::input(
            "datasets",
            "a job trains on at least one dataset",
        ));
    }
    let mut names = BTreeSet::new();
    for (i, d) in input.datasets.iter().enumerate() {
        let at = format!("datasets[{i}]");
        check_text(&format!("{at}.name"), &d.name)?;
        if !names.insert(d.name.as_str()) {
            return Err(Error::input(
                format!("{at}.name"),
                format!("{:?} names two datasets", d.name),
            ));
        }
        check_file(&format!("{at}.upload"), &d.upload)?;
        check_sha256_field(
            &format!("{at}.manifest.root_sha256"),
            &d.manifest.root_sha256,
        )?;
        check_file(&format!("{at}.manifest.file"), &d.manifest.file)?;
    }
    check_file("definition", &input.definition)?;
    check_file("job_request", &input.job_request)?;
    let env = &input.environment;
    check_text("environment.python_version", &env.python_version)?;
    check_text("environment.os.name", &env.os.name)?;
    check_text("environment.cpu.model", &env.cpu.model)?;
    if !(env.cpu.cores_limit.is_finite() && env.cpu.cores_limit > 0.0) {
        return Err(Error::input(
            "environment.cpu.cores_limit",
            "must be a positive number",
        ));
    }
    check_sha256_field(
        "environment.runtime_tree_root_sha256",
        &env.runtime_tree_root_sha256,
    )?;
    let mut purls = BTreeSet::new();
    for (i, p) in env.packages.iter().enumerate() {
        let at = format!("environment.packages[{i}]");
        check_text(&format!("{at}.name"), &p.name)?;
        check_text(&format!("{at}.version"), &p.version)?;
        if !p.purl.starts_with("pkg:") {
            return Err(Error::input(
                format!("{at}.purl"),
                format!("{:?} is not a package URL (pkg:...)", p.purl),
            ));
        }
        if !purls.insert(p.purl.as_str()) {
            return Err(Error::input(
                format!("{at}.purl"),
                format!("{:?} is listed twice", p.purl),
            ));
        }
        check_sha256_field(&format!("{at}.wheel_sha256"), &p.wheel_sha256)?;
    }
    check_text(
        "platform.veritrain.version",
        &input.platform.veritrain.version,
    )?;
    check_sha256_field(
        "platform.veritrain.sha256",
        &input.platform.veritrain.sha256,
    )?;
    check_file("platform.trainer", &input.platform.trainer)?;
    check_file("platform.lock_file", &input.platform.lock_file)?;
    let training = &input.training;
    for k in training.fit_params.keys() {
        check_text("training.fit_params", k)?;
    }
    if let Some(c) = &training.compile {
        check_text("training.compile.source", &c.source)?;
        check_text("training.compile.optimizer", &c.optimizer)?;
        check_text("training.compile.loss", &c.loss)?;
        if c.learning_rate.is_some_and(|v| !v.is_finite()) {
            return Err(Error::input(
                "training.compile.learning_rate",
                "must be a finite number",
            ));
        }
    }
    if let Some(sp) = &training.split {
        check_text("training.split.algorithm", &sp.algorithm)?;
        if !(0.0..1.0).contains(&sp.validation_fraction) {
            return Err(Error::input(
                "training.split.validation_fraction",
                "must be a number in [0, 1)",
            ));
        }
        if sp.train + sp.validation != sp.examples {
            return Err(Error::input(
                "training.split",
                format!(
                    "train ({}) and validation ({}) do not add up to the examples ({})",
                    sp.train, sp.validation, sp.examples
                ),
            ));
        }
    }
    let mut metric_names = BTreeSet::new();
    for (i, m) in training.metrics.iter().enumerate() {
        check_text(&format!("training.metrics[{i}].name"), &m.name)?;
        if !metric_names.insert(m.name.as_str()) {
            return Err(Error::input(
                format!("training.metrics[{i}].name"),
                format!("{:?} is listed twice", m.name),
            ));
        }
    }
    let mut last = 0;
    for (i, e) in training.history.iter().enumerate() {
        if e.epoch <= last {
            return Err(Error::input(
                format!("training.history[{i}].epoch"),
                format!(
                    "epoch {} does not follow epoch {last}; epochs are 1-based and increasing",
                    e.epoch
                ),
            ));
        }
        last = e.epoch;
    }
    let usage = &training.usage;
    for (field, v) in [
        ("training.usage.wall_seconds", Some(usage.wall_seconds)),
        ("training.usage.cpu_seconds", usage.cpu_seconds),
        ("training.usage.gpu_seconds", usage.gpu_seconds),
        ("training.usage.energy_kwh", usage.energy_kwh),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && v >= 0.0)
        {
            return Err(Error::input(field, "must be a finite number, zero or more"));
        }
    }
    check_span("tasks.intake", &input.tasks.intake)?;
    check_span("tasks.train", &input.tasks.train)?;
    check_span("tasks.attest", &input.tasks.attest)?;
    for (i, a) in input.attestations.iter().enumerate() {
        check_file(&format!("attestations[{i}].file"), &a.file)?;
    }
    Ok(())
}

// ----- small pieces -------------------------------------------------------

fn organization(o: &Organization) -> OrganizationalEntity {
    OrganizationalEntity {
        name: Some(o.name.clone()),
        url: o.url.clone(),
        contact: o.contact.iter().map(contact).collect(),
    }
}

fn contact(c: &Contact) -> OrganizationalContact {
    OrganizationalContact {
        name: Some(c.name.clone()),
        email: c.email.clone(),
        phone: None,
    }
}

fn party(p: &Party) -> ResponsibleParty {
    match p {
        Party::Organization(o) => ResponsibleParty::Organization(organization(o)),
        Party::Contact(c) => ResponsibleParty::Contact(contact(c)),
    }
}

fn file_props(f: &FileDigest) -> Vec<Property> {
    let mut p = vec![Property::new(props::FILE_NAME, &f.name)];
    if let Some(size) = f.size_bytes {
        p.push(Property::new(props::FILE_SIZE, size.to_string()));
    }
    p
}

/// A `file` component for `f`.
fn file_component(
    component_type: ComponentType,
    bom_ref: impl Into<String>,
    f: &FileDigest,
) -> Component {
    let mut c = Component::new(component_type, &f.name);
    c.bom_ref = Some(bom_ref.into());
    c.hashes = vec![Hash::sha256(&f.sha256)];
    c.properties = file_props(f);
    c
}

fn license(expr: &Option<String>) -> Vec<LicenseChoice> {
    expr.iter()
        .map(|e| LicenseChoice::Expression {
            expression: e.clone(),
        })
        .collect()
}

/// `[?, 4]`: a shape, `?` for a dimension that varies.
pub fn shape_text(shape: &[Option<u64>]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| d.map_or_else(|| "?".to_owned(), |n| n.to_string()))
        .collect();
    format!("[{}]", dims.join(", "))
}

fn tensor_format(t: &TensorSpec) -> String {
    let mut s = String::new();
    if let Some(name) = &t.name {
        s.push_str(name);
        s.push_str(": ");
    }
    if let Some(dtype) = &t.dtype {
        s.push_str(dtype);
        s.push(' ');
    }
    s.push_str(&shape_text(&t.shape));
    if let Some(d) = &t.description {
        s.push_str(" (");
        s.push_str(d);
        s.push(')');
    }
    s
}

fn layer_text(l: &crate::input::LayerSummary) -> String {
    let mut s = format!("{}: {}", l.name, l.class_name);
    if let Some(u) = l.units {
        s.push_str(&format!(", units {u}"));
    }
    match l.params {
        Some(p) => s.push_str(&format!(", {p} parameters")),
        None => s.push_str(", parameters not established"),
    }
    s
}

/// The family, from the layer classes, when the user did not name one.
fn derived_family(scan: &ModelScan) -> Option<String> {
    let has = |pred: &dyn Fn(&str) -> bool| scan.layers.iter().any(|l| pred(&l.class_name));
    let family = if has(&|c| c == "MultiHeadAttention") {
        "transformer (attention-based neural network)"
    } else if has(&|c| {
        c.starts_with("Conv") || c.starts_with("DepthwiseConv") || c.starts_with("SeparableConv")
    }) {
        "convolutional neural network"
    } else if has(&|c| matches!(c, "LSTM" | "GRU" | "SimpleRNN" | "Bidirectional" | "RNN")) {
        "recurrent neural network"
    } else if has(&|c| c == "Dense") {
        "feed-forward neural network (multilayer perceptron)"
    } else {
        return None;
    };
    Some(family.to_owned())
}

fn architecture_text(scan: &ModelScan) -> Option<String> {
    if scan.layers.is_empty() {
        return None;
    }
    let layers: Vec<String> = scan
        .layers
        .iter()
        .map(|l| match l.units {
            Some(u) => format!("{}({u})", l.class_name),
            None => l.class_name.clone(),
        })
        .collect();
    let mut s = format!(
        "Keras {}model{}: {}",
        scan.model_class
            .as_ref()
            .map(|c| format!("{c} "))
            .unwrap_or_default(),
        scan.model_name
            .as_ref()
            .map(|n| format!(" {n:?}"))
            .unwrap_or_default(),
        layers.join(" -> ")
    );
    if let Some(p) = scan.param_count {
        s.push_str(&format!("; {p} parameters"));
    }
    Some(s)
}

// ----- the trained model --------------------------------------------------

fn tool_component(input: &BomInput) -> Component {
    let mut c = Component::new(ComponentType::Application, "veritrain");
    c.version = Some(input.platform.veritrain.version.clone());
    c.description = Some("Veritrain trusted training service (made this BOM)".to_owned());
    c.hashes = vec![Hash::sha256(&input.platform.veritrain.sha256)];
    c
}

fn trained_model_component(input: &BomInput) -> Result<Component> {
    let req = &input.request;
    let tm = &input.trained_model;
    let scan = &input.base_model.scan;
    let mut c = Component::new(ComponentType::MachineLearningModel, &req.name);
    c.bom_ref = Some(refs::MODEL.to_owned());
    c.authors = req.authors.iter().map(contact).collect();
    c.version = Some(req.version.clone());
    c.description = req.description.clone();
    c.hashes = vec![Hash::sha256(&tm.file.sha256)];
    c.licenses = license(&req.license);

    let base = &input.base_model;
    let base_req = req.base_model.clone().unwrap_or_default();
    let mut ancestor = Component::new(
        ComponentType::MachineLearningModel,
        base_req
            .name
            .clone()
            .unwrap_or_else(|| base.file.name.clone()),
    );
    ancestor.version = base_req.version.clone();
    ancestor.hashes = vec![Hash::sha256(&base.file.sha256)];
    c.pedigree = Some(Pedigree {
        ancestors: vec![ancestor],
        notes: Some(format!(
            "Trained by Veritrain job {} from the uploaded base model (component {}), \
             which the intake scanner accepted under allow-list {}.",
            input.job_id,
            refs::BASE_MODEL,
            scan.allowlist_version
        )),
    });
    c.components = tm
        .members
        .iter()
        .map(|m| file_component(ComponentType::File, refs::model_member(&m.name), m))
        .collect();
    c.model_card = Some(model_card(input)?);

    let mut p = file_props(&tm.file);
    if let Some(v) = &tm.keras_version {
        p.push(Property::new(props::MODEL_KERAS_VERSION, v));
    }
    if let Some(n) = scan.param_count {
        p.push(Property::new(props::MODEL_PARAM_COUNT, n.to_string()));
    }
    c.properties = p;
    c.tags = req.tags.clone();
    Ok(c)
}

fn model_card(input: &BomInput) -> Result<ModelCard> {
    let req = &input.request;
    let scan = &input.base_model.scan;
    let tm = &input.trained_model;

    let mut inputs: Vec<MlParameter> = tm
        .inputs
        .iter()
        .map(|t| MlParameter {
            format: Some(tensor_format(t)),
        })
        .collect();
    if inputs.is_empty() {
        inputs = scan
            .input_shapes
            .iter()
            .map(|s| MlParameter {
                format: Some(format!("tensor {}", shape_text(s))),
            })
            .collect();
    }
    let outputs = tm
        .outputs
        .iter()
        .map(|t| MlParameter {
            format: Some(tensor_format(t)),
        })
        .collect();

    let params = ModelParameters {
        approach: req.approach.map(|a| ApproachType { approach: Some(a) }),
        task: req.task.clone(),
        architecture_family: req
            .architecture_family
            .clone()
            .or_else(|| derived_family(scan)),
        model_architecture: architecture_text(scan),
        datasets: input
            .datasets
            .iter()
            .map(|d| DatasetChoice::Ref {
                reference: refs::dataset(&d.name),
            })
            .collect(),
        inputs,
        outputs,
    };

    let mut card_props: Vec<Property> = scan
        .layers
        .iter()
        .map(|l| Property::new(props::ARCH_LAYER, layer_text(l)))
        .collect();
    for m in &input.training.metrics {
        if let Some(goal) = m.goal {
            card_props.push(Property::new(
                format!("{}{}", props::METRIC_GOAL_PREFIX, m.name),
                goal.as_str(),
            ));
        }
    }
    for e in &input.training.history {
        for (key, v) in &e.logs {
            card_props.push(Property::new(
                format!("{}{}:{key}", props::EPOCH_PREFIX, e.epoch),
                logged_text(*v),
            ));
        }
    }

    Ok(ModelCard {
        bom_ref: Some(refs::MODEL_CARD.to_owned()),
        model_parameters: Some(params),
        quantitative_analysis: Some(QuantitativeAnalysis {
            performance_metrics: performance_metrics(input),
            graphics: Some(curves_graphic(input)),
        }),
        considerations: Some(considerations(input)),
        properties: card_props,
    })
}

/// A logged value as property text; [`NON_FINITE`] where the trainer could
/// only write `null`.
fn logged_text(v: Option<f64>) -> String {
    v.map_or_else(|| NON_FINITE.to_owned(), number_text)
}

/// The text of a logged value that was not finite (NaN or an infinity,
/// which the trainer's JSON writes as `null`).
pub const NON_FINITE: &str = "non-finite";

/// The values of log `key` over the epochs that logged it (`None`: not
/// finite).
fn logged(input: &BomInput, key: &str) -> Vec<(u32, Option<f64>)> {
    input
        .training
        .history
        .iter()
        .filter_map(|e| e.logs.get(key).map(|&v| (e.epoch, v)))
        .collect()
}

/// The finite values of log `key`, for the chart and for "best".
fn series(input: &BomInput, key: &str) -> Vec<(u32, f64)> {
    logged(input, key)
        .into_iter()
        .filter_map(|(e, v)| Some((e, v.filter(|v| v.is_finite())?)))
        .collect()
}

fn validation_key(metric: &str) -> String {
    format!("val_{metric}")
}

/// `validation split (120 examples)`: a slice and, where the split is
/// known, its size.
fn slice_name(input: &BomInput, slice: &str) -> String {
    let size = input.training.split.as_ref().map(|s| match slice {
        "train" => s.train,
        _ => s.validation,
    });
    match size {
        Some(n) => format!("{slice} split ({n} examples)"),
        None => format!("{slice} split"),
    }
}

/// For each compiled metric: per slice (train, validation) the value of the
/// last epoch that logged it and the best finite value by the metric's goal
/// (none when the goal is unknown); then the final evaluation on the whole
/// validation split. `type` is always the metric's name; which value it is
/// goes into `slice`.
fn performance_metrics(input: &BomInput) -> Vec<PerformanceMetric> {
    let metric = |name: &str, value: String, slice: String| PerformanceMetric {
        metric_type: Some(name.to_owned()),
        value: Some(value),
        slice: Some(slice),
        confidence_interval: None,
    };
    let mut out = Vec::new();
    for m in &input.training.metrics {
        for (slice, key) in [
            ("train", m.name.clone()),
            ("validation", validation_key(&m.name)),
        ] {
            let name = slice_name(input, slice);
            if let Some(&(epoch, last)) = logged(input, &key).last() {
                out.push(metric(
                    &m.name,
                    logged_text(last),
                    format!("{name}, final (epoch {epoch})"),
                ));
            }
            let Some(goal) = m.goal else { continue };
            let best = series(input, &key)
                .into_iter()
                .fold(None::<(u32, f64)>, |best, (e, v)| match best {
                    Some((_, b))
                        if (goal == Goal::Minimize && v >= b)
                            || (goal == Goal::Maximize && v <= b) =>
                    {
                        best
                    }
                    _ => Some((e, v)),
                });
            if let Some((epoch, v)) = best {
                out.push(metric(
                    &m.name,
                    number_text(v),
                    format!("{name}, best (epoch {epoch})"),
                ));
            }
        }
    }
    if let Some(ev) = &input.training.final_evaluation {
        let slice = format!(
            "{} split ({} examples), full evaluation of the trained model after training",
            ev.split, ev.examples
        );
        // Compiled metrics in their order first, then anything else the
        // evaluation returned.
        let mut names: Vec<&str> = input
            .training
            .metrics
            .iter()
            .map(|m| m.name.as_str())
            .filter(|n| ev.metrics.contains_key(*n))
            .collect();
        names.extend(
            ev.metrics
                .keys()
                .map(String::as_str)
                .filter(|k| !input.training.metrics.iter().any(|m| m.name == *k)),
        );
        for name in names {
            if let Some(v) = ev.metrics.get(name) {
                out.push(metric(name, logged_text(*v), slice.clone()));
            }
        }
    }
    out
}

/// The panels of the training-curve chart: one per compiled metric.
pub fn curve_panels(input: &BomInput) -> Vec<Panel> {
    input
        .training
        .metrics
        .iter()
        .map(|m| {
            let mut lines = vec![Series {
                label: "train".to_owned(),
                points: series(input, &m.name),
            }];
            let val = series(input, &validation_key(&m.name));
            if !val.is_empty() {
                lines.push(Series {
                    label: "validation".to_owned(),
                    points: val,
                });
            }
            Panel {
                title: m.name.clone(),
                series: lines,
            }
        })
        .collect()
}

fn curves_graphic(input: &BomInput) -> GraphicsCollection {
    let svg = chart::render_svg(
        &format!(
            "Training curves of {} {}",
            input.request.name, input.request.version
        ),
        &curve_panels(input),
    );
    GraphicsCollection {
        description: Some(
            "Training curves rendered by Veritrain from the per-epoch logs: one panel per \
             compiled metric, train (solid) and validation (dashed) against the epoch."
                .to_owned(),
        ),
        collection: vec![Graphic {
            name: Some(CURVES_GRAPHIC.to_owned()),
            image: Some(Attachment {
                content_type: Some("image/svg+xml".to_owned()),
                encoding: Some("base64".to_owned()),
                content: STANDARD.encode(svg.as_bytes()),
            }),
        }],
    }
}

fn considerations(input: &BomInput) -> Considerations {
    let req = &input.request;
    let usage = &input.training.usage;
    let mut env_props = vec![Property::new(
        props::TRAINING_WALL,
        number_text(usage.wall_seconds),
    )];
    if let Some(c) = usage.cpu_seconds {
        env_props.push(Property::new(props::TRAINING_CPU, number_text(c)));
    }
    if let Some(g) = usage.gpu_seconds {
        env_props.push(Property::new(props::TRAINING_GPU, number_text(g)));
    }
    env_props.push(Property::new(
        props::TRAINING_EPOCHS,
        input.training.history.len().to_string(),
    ));
    let energy_consumptions = usage
        .energy_kwh
        .map(|kwh| {
            let measure = EnergyMeasure {
                value: kwh,
                unit: "kWh".to_owned(),
            };
            vec![EnergyConsumption {
                activity: "training".to_owned(),
                energy_providers: vec![EnergyProvider {
                    organization: organization(&input.supplier),
                    // The operator's energy mix is not something the worker
                    // observes; `unknown` is the schema's own value for
                    // that (the field is required).
                    energy_source: "unknown".to_owned(),
                    energy_provided: measure.clone(),
                }],
                activity_energy_cost: measure,
                properties: Vec::new(),
            }]
        })
        .unwrap_or_default();
    Considerations {
        users: req.intended_users.clone(),
        use_cases: req.use_cases.clone(),
        technical_limitations: req.out_of_scope.clone(),
        performance_tradeoffs: req.performance_tradeoffs.clone(),
        ethical_considerations: req
            .misuse
            .iter()
            .map(|m| Risk {
                name: Some(m.description.clone()),
                mitigation_strategy: m.mitigation.clone(),
            })
            .collect(),
        environmental_considerations: Some(EnvironmentalConsiderations {
            energy_consumptions,
            properties: env_props,
        }),
        fairness_assessments: req
            .fairness
            .iter()
            .map(|f| FairnessAssessment {
                group_at_risk: Some(f.group_at_risk.clone()),
                benefits: f.benefits.clone(),
                harms: f.harms.clone(),
                mitigation_strategy: f.mitigation.clone(),
            })
            .collect(),
    }
}

// ----- inputs of the job --------------------------------------------------

fn base_model_component(input: &BomInput) -> Component {
    let base = &input.base_model;
    let scan = &base.scan;
    let req = input.request.base_model.clone().unwrap_or_default();
    let mut c = file_component(
        ComponentType::MachineLearningModel,
        refs::BASE_MODEL,
        &base.file,
    );
    if let Some(name) = &req.name {
        c.name = name.clone();
    }
    c.version = req.version.clone();
    c.description = Some(format!(
        "The uploaded base model, {} by the intake scanner (allow-list {}).",
        if scan.accepted { "accepted" } else { "refused" },
        scan.allowlist_version
    ));
    let p = &mut c.properties;
    if let Some(s) = &req.source {
        p.push(Property::new(props::BASE_SOURCE, s));
    }
    p.push(Property::new(
        props::SCAN_ACCEPTED,
        scan.accepted.to_string(),
    ));
    p.push(Property::new(
        props::SCAN_ALLOWLIST,
        &scan.allowlist_version,
    ));
    let optional = [
        (props::SCAN_KERAS_VERSION, &scan.keras_version),
        (props::SCAN_DATE_SAVED, &scan.date_saved),
        (props::SCAN_MODEL_CLASS, &scan.model_class),
        (props::SCAN_MODEL_NAME, &scan.model_name),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            p.push(Property::new(name, v));
        }
    }
    for s in &scan.input_shapes {
        p.push(Property::new(props::SCAN_INPUT_SHAPE, shape_text(s)));
    }
    p.push(Property::new(
        props::SCAN_LAYER_COUNT,
        scan.layers.len().to_string(),
    ));
    if let Some(n) = scan.param_count {
        p.push(Property::new(props::SCAN_PARAM_COUNT, n.to_string()));
    }
    if let Some(s) = &scan.param_count_source {
        p.push(Property::new(props::SCAN_PARAM_SOURCE, s));
    }
    p.push(Property::new(
        props::SCAN_FINDING_COUNT,
        scan.findings.len().to_string(),
    ));
    for f in &scan.findings {
        p.push(Property::new(props::SCAN_FINDING, &f.message));
    }
    c
}

fn dataset_component(d: &Dataset) -> Component {
    let req = &d.request;
    let mut c = file_component(ComponentType::Data, refs::dataset(&d.name), &d.upload);
    c.name = d.name.clone();
    c.description = req.description.clone();
    c.licenses = license(&req.license);
    c.external_references = vec![manifest_reference(d)];

    let mut stats = Vec::new();
    flatten(props::STATS_PREFIX, &d.stats, &mut stats);
    let governance = DataGovernance {
        custodians: req.custodians.iter().map(party).collect(),
        stewards: req.stewards.iter().map(party).collect(),
        owners: req.owners.iter().map(party).collect(),
    };
    let has_governance = !(governance.custodians.is_empty()
        && governance.stewards.is_empty()
        && governance.owners.is_empty());
    c.data = vec![ComponentData {
        bom_ref: None,
        data_type: DataType::Dataset,
        name: Some(d.name.clone()),
        contents: (!stats.is_empty()).then_some(DataContents {
            attachment: None,
            url: None,
            properties: stats,
        }),
        classification: req.classification.clone(),
        sensitive_data: req.sensitive_data.clone(),
        description: req.description.clone(),
        governance: has_governance.then_some(governance),
    }];

    let p = &mut c.properties;
    p.push(Property::new(props::DATASET_KIND, d.kind.as_str()));
    p.push(Property::new(
        props::DATASET_FILE_COUNT,
        d.file_count.to_string(),
    ));
    p.push(Property::new(props::DATASET_SIZE, d.size_bytes.to_string()));
    p.push(Property::new(
        props::DATASET_MANIFEST_ROOT,
        &d.manifest.root_sha256,
    ));
    p.push(Property::new(
        props::DATASET_MANIFEST_FILE,
        &d.manifest.file.name,
    ));
    p.push(Property::new(
        props::DATASET_MANIFEST_SHA,
        &d.manifest.file.sha256,
    ));
    if let Some(s) = &req.source {
        p.push(Property::new(props::DATASET_SOURCE, s));
    }
    p.push(Property::new(
        props::DATASET_CLASS_COUNT,
        d.classes.len().to_string(),
    ));
    for class in &d.classes {
        p.push(Property::new(props::DATASET_CLASS, class));
    }
    c
}

fn manifest_reference(d: &Dataset) -> ExternalReference {
    ExternalReference {
        url: d.manifest.file.name.clone(),
        comment: Some(format!(
            "Signed per-file SHA-256 manifest of dataset {:?}, root digest {}",
            d.name, d.manifest.root_sha256
        )),
        reference_type: "evidence".to_owned(),
        hashes: vec![Hash::sha256(&d.manifest.file.sha256)],
    }
}

fn definition_component(f: &FileDigest) -> Component {
    let mut c = file_component(ComponentType::Data, refs::DEFINITION, f);
    c.description = Some("The dataset definition the job was submitted with.".to_owned());
    c.data = vec![ComponentData {
        bom_ref: None,
        data_type: DataType::Definition,
        name: Some("dataset definition".to_owned()),
        contents: None,
        classification: None,
        sensitive_data: Vec::new(),
        description: None,
        governance: None,
    }];
    c
}

fn job_request_component(f: &FileDigest) -> Component {
    let mut c = file_component(ComponentType::Data, refs::JOB_REQUEST, f);
    c.description = Some(
        "The job request the job was submitted with: the model's metadata and the fit parameters."
            .to_owned(),
    );
    c.data = vec![ComponentData {
        bom_ref: None,
        data_type: DataType::Configuration,
        name: Some("job request".to_owned()),
        contents: None,
        classification: None,
        sensitive_data: Vec::new(),
        description: None,
        governance: None,
    }];
    c
}

fn runtime_component(input: &BomInput) -> Component {
    let env = &input.environment;
    let mut c = Component::new(ComponentType::Platform, "veritrain training runtime");
    c.bom_ref = Some(refs::RUNTIME.to_owned());
    c.description = Some(
        "The sandboxed Python runtime the trainer ran in, with the limits the sandbox set."
            .to_owned(),
    );
    // The runtime is a tree of files; its identity is the root digest of
    // their manifest, the digest the SLSA provenance gives it too.
    c.hashes = vec![Hash::sha256(&env.runtime_tree_root_sha256)];

    let mut python = Component::new(ComponentType::Platform, "python");
    python.bom_ref = Some(refs::PYTHON.to_owned());
    python.version = Some(env.python_version.clone());

    let mut os = Component::new(ComponentType::OperatingSystem, &env.os.name);
    os.bom_ref = Some(refs::OS.to_owned());
    os.version = env.os.version.clone();
    if let Some(k) = &env.os.kernel {
        os.properties.push(Property::new(props::OS_KERNEL, k));
    }

    let mut cpu = Component::new(ComponentType::Device, &env.cpu.model);
    cpu.bom_ref = Some(refs::CPU.to_owned());
    cpu.properties.push(Property::new(
        props::CPU_CORES_LIMIT,
        number_text(env.cpu.cores_limit),
    ));
    if let Some(n) = env.cpu.host_logical_cpus {
        cpu.properties
            .push(Property::new(props::CPU_HOST_LOGICAL, n.to_string()));
    }

    let mut parts = vec![python, os, cpu];
    for (i, g) in env.gpus.iter().enumerate() {
        let mut gpu = Component::new(ComponentType::Device, &g.name);
        gpu.bom_ref = Some(refs::gpu(i));
        if let Some(m) = g.memory_bytes {
            gpu.properties
                .push(Property::new(props::GPU_MEMORY, m.to_string()));
        }
        if let Some(d) = &g.driver_version {
            gpu.properties.push(Property::new(props::GPU_DRIVER, d));
        }
        parts.push(gpu);
    }
    for pkg in &env.packages {
        let mut lib = Component::new(ComponentType::Library, &pkg.name);
        lib.bom_ref = Some(pkg.purl.clone());
        lib.version = Some(pkg.version.clone());
        lib.hashes = vec![Hash::sha256(&pkg.wheel_sha256)];
        lib.purl = Some(pkg.purl.clone());
        parts.push(lib);
    }
    c.components = parts;

    c.properties.push(Property::new(
        props::RUNTIME_TREE_ROOT,
        &env.runtime_tree_root_sha256,
    ));
    if let Some(m) = env.memory_limit_bytes {
        c.properties
            .push(Property::new(props::MEMORY_LIMIT, m.to_string()));
    }
    c.properties.push(Property::new(
        props::CPU_CORES_LIMIT,
        number_text(env.cpu.cores_limit),
    ));
    flatten(props::SANDBOX_PREFIX, &env.sandbox, &mut c.properties);
    c
}

fn platform_components(input: &BomInput) -> Vec<Component> {
    let pc = &input.platform;
    let mut veritrain = Component::new(ComponentType::Application, "veritrain");
    veritrain.bom_ref = Some(refs::VERITRAIN.to_owned());
    veritrain.version = Some(pc.veritrain.version.clone());
    veritrain.description = Some("The Veritrain worker binary that ran the job.".to_owned());
    veritrain.hashes = vec![Hash::sha256(&pc.veritrain.sha256)];

    let mut trainer = file_component(ComponentType::File, refs::TRAINER, &pc.trainer);
    trainer.description = Some("The trainer entry point run inside the sandbox.".to_owned());
    let mut lock = file_component(ComponentType::File, refs::LOCK_FILE, &pc.lock_file);
    lock.description = Some("The lock file the training runtime was installed from.".to_owned());
    vec![veritrain, trainer, lock]
}

// ----- references, dependencies, formulation ------------------------------

fn attestation_reference(a: &crate::input::AttestationRef) -> ExternalReference {
    let what = match a.kind {
        AttestationKind::InTotoLayout => "in-toto layout",
        AttestationKind::InTotoLink => "in-toto link",
        AttestationKind::SlsaProvenance => "SLSA provenance v1 (DSSE envelope)",
        AttestationKind::KeySet => "root-signed key set",
    };
    ExternalReference {
        url: a.file.name.clone(),
        comment: Some(match &a.comment {
            Some(c) => format!("{what}: {c}"),
            None => what.to_owned(),
        }),
        reference_type: "attestation".to_owned(),
        hashes: vec![Hash::sha256(&a.file.sha256)],
    }
}

fn external_references(input: &BomInput) -> Vec<ExternalReference> {
    let mut refs: Vec<ExternalReference> = input
        .attestations
        .iter()
        .map(attestation_reference)
        .collect();
    refs.extend(input.datasets.iter().map(manifest_reference));
    refs
}

fn dependencies(input: &BomInput) -> Vec<Dependency> {
    let mut model_deps = vec![refs::BASE_MODEL.to_owned()];
    model_deps.extend(input.datasets.iter().map(|d| refs::dataset(&d.name)));
    model_deps.extend([
        refs::DEFINITION.to_owned(),
        refs::JOB_REQUEST.to_owned(),
        refs::RUNTIME.to_owned(),
        refs::TRAINER.to_owned(),
    ]);
    let mut runtime_deps = vec![
        refs::PYTHON.to_owned(),
        refs::OS.to_owned(),
        refs::CPU.to_owned(),
    ];
    runtime_deps.extend((0..input.environment.gpus.len()).map(refs::gpu));
    runtime_deps.extend(input.environment.packages.iter().map(|p| p.purl.clone()));
    runtime_deps.push(refs::LOCK_FILE.to_owned());
    vec![
        Dependency {
            reference: refs::MODEL.to_owned(),
            depends_on: model_deps,
        },
        Dependency {
            reference: refs::RUNTIME.to_owned(),
            depends_on: runtime_deps,
        },
        Dependency {
            reference: refs::TRAINER.to_owned(),
            depends_on: vec![refs::RUNTIME.to_owned()],
        },
    ]
}

fn resource(r: &str) -> TaskInput {
    TaskInput::Resource(ResourceReference::Ref(r.to_owned()))
}

fn output(ty: OutputType, r: ResourceReference) -> TaskOutput {
    TaskOutput {
        output_type: Some(ty),
        resource: r,
    }
}

/// A task named after its `uid`, run over `span`, with no inputs or
/// outputs yet.
fn task(bom_ref: &str, uid: &str, types: Vec<TaskType>, span: &Span) -> Task {
    Task {
        bom_ref: bom_ref.to_owned(),
        uid: uid.to_owned(),
        name: Some(uid.to_owned()),
        description: None,
        task_types: types,
        inputs: Vec::new(),
        outputs: Vec::new(),
        time_start: Some(timestamp(&span.start)),
        time_end: Some(timestamp(&span.end)),
        properties: Vec::new(),
    }
}

fn parameter(name: impl Into<String>, v: &Value) -> Parameter {
    Parameter {
        name: Some(name.into()),
        value: Some(value_text(v)),
        data_type: Some(json_type(v).to_owned()),
    }
}

/// The train task's typed parameters and its properties: every fit
/// parameter as passed to the trainer (`<name>`, `veritrain:fit:<name>`),
/// the compile settings as used (`compile.*`, `veritrain:compile:<path>`),
/// the split (`split.*`, `veritrain:split:<key>`) and the steps run.
fn train_parameters(t: &crate::input::Training) -> (Vec<Parameter>, Vec<Property>) {
    let mut params = Vec::new();
    let mut out = Vec::new();
    for (k, v) in &t.fit_params {
        params.push(parameter(k, v));
        out.push(Property::new(
            format!("{}{k}", props::FIT_PREFIX),
            value_text(v),
        ));
    }
    if let Some(c) = &t.compile {
        let mut typed = vec![
            ("source", Value::from(c.source.clone())),
            ("optimizer", Value::from(c.optimizer.clone())),
        ];
        if let Some(lr) = c.learning_rate {
            typed.push(("learning_rate", float_value(lr)));
        }
        typed.push(("loss", Value::from(c.loss.clone())));
        typed.push(("metrics", Value::from(c.metrics.clone())));
        for (k, v) in &typed {
            params.push(parameter(format!("compile.{k}"), v));
        }
        if c.record.is_null() {
            for (k, v) in &typed {
                out.push(Property::new(
                    format!("{}{k}", props::COMPILE_PREFIX),
                    value_text(v),
                ));
            }
        } else {
            flatten(props::COMPILE_PREFIX, &c.record, &mut out);
        }
    }
    if let Some(s) = &t.split {
        let mut fields = vec![
            ("algorithm", Value::from(s.algorithm.clone())),
            ("seed", Value::from(s.seed)),
            ("validation_fraction", float_value(s.validation_fraction)),
            ("examples", Value::from(s.examples)),
            ("train", Value::from(s.train)),
            ("validation", Value::from(s.validation)),
        ];
        for (k, v) in [
            ("train_indices_sha256", &s.train_indices_sha256),
            ("validation_indices_sha256", &s.validation_indices_sha256),
        ] {
            if let Some(d) = v {
                fields.push((k, Value::from(d.clone())));
            }
        }
        for (k, v) in fields {
            if matches!(k, "algorithm" | "seed" | "train" | "validation") {
                let name = match k {
                    "train" => "split.train_examples".to_owned(),
                    "validation" => "split.validation_examples".to_owned(),
                    other => format!("split.{other}"),
                };
                params.push(parameter(name, &v));
            }
            out.push(Property::new(
                format!("{}{k}", props::SPLIT_PREFIX),
                value_text(&v),
            ));
        }
    }
    if let Some(n) = t.steps_run {
        params.push(parameter("steps_run", &Value::from(n)));
        out.push(Property::new(props::TRAINING_STEPS, n.to_string()));
    }
    (params, out)
}

/// A float as a JSON number (`null` if not finite, which the checks
/// refuse before).
fn float_value(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

fn formula(input: &BomInput) -> Formula {
    let dataset_refs: Vec<String> = input
        .datasets
        .iter()
        .map(|d| refs::dataset(&d.name))
        .collect();

    // intake: the uploads in, the manifests out.
    let mut intake_in = vec![resource(refs::BASE_MODEL)];
    intake_in.extend(dataset_refs.iter().map(|r| resource(r)));
    intake_in.push(resource(refs::DEFINITION));
    intake_in.push(resource(refs::JOB_REQUEST));
    let intake_out = input
        .datasets
        .iter()
        .map(|d| {
            output(
                OutputType::Evidence,
                ResourceReference::ExternalReference(manifest_reference(d)),
            )
        })
        .collect();

    // train: uploads, runtime and trainer in, with every fit parameter as
    // used; the model (and the metrics file) out.
    let mut train_in = vec![resource(refs::BASE_MODEL)];
    train_in.extend(dataset_refs.iter().map(|r| resource(r)));
    train_in.extend([
        resource(refs::DEFINITION),
        resource(refs::JOB_REQUEST),
        resource(refs::RUNTIME),
        resource(refs::TRAINER),
    ]);
    let (params, train_props) = train_parameters(&input.training);
    if !params.is_empty() {
        train_in.push(TaskInput::Parameters(params));
    }
    let mut train_out = vec![output(
        OutputType::Artifact,
        ResourceReference::Ref(refs::MODEL.to_owned()),
    )];
    let tm = &input.trained_model;
    for (file, ty, ref_type, comment) in [
        (
            &tm.metrics_file,
            OutputType::Metrics,
            "quality-metrics",
            "per-epoch metrics, compile settings, split and final evaluation written by the trainer",
        ),
        (
            &tm.split_file,
            OutputType::Evidence,
            "evidence",
            "the train/validation split: the indices of every example, written by the trainer",
        ),
        (&tm.log_file, OutputType::Log, "log", "the trainer's log"),
    ] {
        if let Some(f) = file {
            train_out.push(output(
                ty,
                ResourceReference::ExternalReference(ExternalReference {
                    url: f.name.clone(),
                    comment: Some(comment.to_owned()),
                    reference_type: ref_type.to_owned(),
                    hashes: vec![Hash::sha256(&f.sha256)],
                }),
            ));
        }
    }

    // attest: the model in, the signed documents out.
    let attest_out = input
        .attestations
        .iter()
        .map(|a| {
            output(
                OutputType::Attestation,
                ResourceReference::ExternalReference(attestation_reference(a)),
            )
        })
        .collect();

    let t = &input.tasks;
    let tasks = vec![
        Task {
            inputs: intake_in,
            outputs: intake_out,
            ..task(refs::TASK_INTAKE, "intake", vec![TaskType::Scan], &t.intake)
        },
        Task {
            inputs: train_in,
            outputs: train_out,
            properties: train_props,
            ..task(refs::TASK_TRAIN, "train", vec![TaskType::Build], &t.train)
        },
        Task {
            inputs: vec![resource(refs::MODEL)],
            outputs: attest_out,
            // Signing is none of the 1.6 task types (`deliver` and `release`
            // mean shipping the artifact, which Veritrain does not do).
            ..task(
                refs::TASK_ATTEST,
                "attest",
                vec![TaskType::Other],
                &t.attest,
            )
        },
    ];
    let start = [t.intake.start, t.train.start, t.attest.start]
        .into_iter()
        .min()
        .unwrap_or(t.intake.start);
    let end = [t.intake.end, t.train.end, t.attest.end]
        .into_iter()
        .max()
        .unwrap_or(t.attest.end);
    let workflow = Workflow {
        bom_ref: refs::workflow(&input.job_id),
        uid: input.job_id.clone(),
        name: Some("veritrain training job".to_owned()),
        description: Some(
            "Intake scans the uploads, training runs the trainer in the sandbox, \
             attestation hashes the outputs and signs the attestations."
                .to_owned(),
        ),
        tasks,
        task_dependencies: vec![
            Dependency {
                reference: refs::TASK_TRAIN.to_owned(),
                depends_on: vec![refs::TASK_INTAKE.to_owned()],
            },
            Dependency {
                reference: refs::TASK_ATTEST.to_owned(),
                depends_on: vec![refs::TASK_TRAIN.to_owned()],
            },
        ],
        task_types: vec![TaskType::Scan, TaskType::Build, TaskType::Other],
        time_start: Some(timestamp(&start)),
        time_end: Some(timestamp(&end)),
        properties: Vec::new(),
    };
    Formula {
        bom_ref: Some(refs::FORMULA.to_owned()),
        workflows: vec![workflow],
        properties: Vec::new(),
    }
}

/// Every property name in a BOM's JSON, with how often it occurs.
pub fn property_names(bom: &Value) -> BTreeMap<String, usize> {
    fn walk(v: &Value, out: &mut BTreeMap<String, usize>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Array(props)) = map.get("properties") {
                    for p in props {
                        if let Some(Value::String(name)) = p.get("name") {
                            *out.entry(name.clone()).or_default() += 1;
                        }
                    }
                }
                for x in map.values() {
                    walk(x, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(bom, &mut out);
    out
}
