//! The CycloneDX 1.6 JSON subset Veritrain emits, as hand-written serde
//! structs.
//!
//! Why not the `cyclonedx-bom` crate: it stops at spec 1.5 and writes invalid
//! ML-BOM JSON (`modelCard.bomRef`, bare-string dataset references, `data` as
//! an object instead of an array), and its `considerations` is an empty
//! struct (measured in `shared/notes/attestation-formats.md` §2).
//!
//! Field order in each struct is the order in the JSON output, so a BOM
//! serializes the same way every time. Optional fields are omitted when
//! empty. Reading is tolerant: unknown members are ignored, so `veritrain
//! bom show` can read a BOM that another tool extended, as long as the parts
//! it reads have the 1.6 shape.

use serde::{Deserialize, Serialize};

/// `bomFormat` of every CycloneDX JSON document.
pub const BOM_FORMAT: &str = "CycloneDX";
/// The spec version Veritrain emits and validates against.
pub const SPEC_VERSION: &str = "1.6";
/// `$schema` written into every BOM (the official schema's `$id`).
pub const SCHEMA_URI: &str = "http://cyclonedx.org/schema/bom-1.6.schema.json";
/// `alg` of a SHA-256 [`Hash`].
pub const SHA_256: &str = "SHA-256";

/// A CycloneDX 1.6 BOM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    /// The JSON schema the document claims ([`SCHEMA_URI`]).
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Always [`BOM_FORMAT`].
    pub bom_format: String,
    /// [`SPEC_VERSION`].
    pub spec_version: String,
    /// `urn:uuid:...`; the same for every version of one BOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// Revision of this BOM (1 for Veritrain's first and only issue).
    #[serde(default = "one")]
    pub version: u32,
    /// Timestamp, tool, supplier, subject component.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Everything the subject was made from, and the platform that made it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// Documents about the BOM's subject that live outside it (attestations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_references: Vec<ExternalReference>,
    /// Which component depends on which, by `bom-ref`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    /// How the subject was made: workflows and tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formulation: Vec<Formula>,
}

fn one() -> u32 {
    1
}

/// BOM `metadata`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// When the BOM was made (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// Lifecycle phases the BOM describes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lifecycles: Vec<Lifecycle>,
    /// The tools that made the BOM (1.5+ object form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Tools>,
    /// Who supplies the subject: the platform operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<OrganizationalEntity>,
    /// The component the BOM describes: the trained model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Box<Component>>,
    /// Name-value facts about the BOM (`veritrain:job:id`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// One lifecycle entry: a pre-defined phase or a named one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Lifecycle {
    /// A phase from the spec's list.
    Phase {
        /// The phase.
        phase: Phase,
    },
    /// A custom phase.
    Named {
        /// Its name.
        name: String,
    },
}

/// Lifecycle phases of CycloneDX 1.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Phase {
    Design,
    PreBuild,
    /// "BOM consisting of information obtained during a build process":
    /// Veritrain's BOM is made as the training job's last step.
    Build,
    PostBuild,
    Operations,
    Discovery,
    Decommission,
}

/// `metadata.tools` in its 1.5+ object form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tools {
    /// Tools as components.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// Component types of CycloneDX 1.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum ComponentType {
    Application,
    Framework,
    Library,
    Container,
    Platform,
    OperatingSystem,
    Device,
    DeviceDriver,
    Firmware,
    File,
    MachineLearningModel,
    Data,
    CryptographicAsset,
}

/// A component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// What kind of thing it is.
    #[serde(rename = "type")]
    pub component_type: ComponentType,
    /// MIME type, for files.
    #[serde(rename = "mime-type", default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Identifier other parts of the BOM refer to.
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// Who supplies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supplier: Option<OrganizationalEntity>,
    /// Its authors (1.6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<OrganizationalContact>,
    /// Its name.
    pub name: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Digests of its content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
    /// Its licence(s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    /// Package URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    /// Where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pedigree: Option<Pedigree>,
    /// Documents about it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_references: Vec<ExternalReference>,
    /// Its parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    /// The model card, for a `machine-learning-model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_card: Option<ModelCard>,
    /// Data descriptions, for a `data` component (an array in 1.6).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<ComponentData>,
    /// Name-value facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    /// Free-form tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl Component {
    /// A component with only a type and a name.
    pub fn new(component_type: ComponentType, name: impl Into<String>) -> Self {
        Component {
            component_type,
            mime_type: None,
            bom_ref: None,
            supplier: None,
            authors: Vec::new(),
            name: name.into(),
            version: None,
            description: None,
            hashes: Vec::new(),
            licenses: Vec::new(),
            purl: None,
            pedigree: None,
            external_references: Vec::new(),
            components: Vec::new(),
            model_card: None,
            data: Vec::new(),
            properties: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// The first SHA-256 in `hashes`.
    pub fn sha256(&self) -> Option<&str> {
        self.hashes
            .iter()
            .find(|h| h.alg == SHA_256)
            .map(|h| h.content.as_str())
    }

    /// Values of every property called `name`, in order.
    pub fn property_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        property_values(&self.properties, name)
    }
}

/// Values of every property called `name` in `props`, in order.
pub fn property_values<'a>(
    props: &'a [Property],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    props
        .iter()
        .filter(move |p| p.name == name)
        .filter_map(|p| p.value.as_deref())
}

/// A digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hash {
    /// Algorithm ([`SHA_256`]).
    pub alg: String,
    /// Lower-case hex digest.
    pub content: String,
}

impl Hash {
    /// A SHA-256 hash from hex.
    pub fn sha256(hex: impl Into<String>) -> Self {
        Hash {
            alg: SHA_256.to_owned(),
            content: hex.into(),
        }
    }
}

/// One entry of a `licenses` list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LicenseChoice {
    /// An SPDX licence expression (what Veritrain writes).
    Expression {
        /// The expression, e.g. `Apache-2.0 OR MIT`.
        expression: String,
    },
    /// A single licence object (read from other tools' BOMs).
    License {
        /// The licence (`id`, `name`, `url`, ...).
        license: serde_json::Value,
    },
}

/// A component's `pedigree`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pedigree {
    /// Components this one was derived from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ancestors: Vec<Component>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// An organization.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrganizationalEntity {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its web sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url: Vec<String>,
    /// People to contact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<OrganizationalContact>,
}

/// A person.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrganizationalContact {
    /// Their name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Their e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Their phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// A name-value fact. Names may repeat (a multi-valued fact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Property {
    /// The name, `veritrain:` namespaced for Veritrain's own.
    pub name: String,
    /// The value (always text in CycloneDX).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Property {
    /// A property.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Property {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// A reference to a document outside the BOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalReference {
    /// Where it is (an IRI reference; a path inside the job's bundle).
    pub url: String,
    /// What it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Its kind (`attestation`, `evidence`, ... from the 1.6 list).
    #[serde(rename = "type")]
    pub reference_type: String,
    /// Its digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hashes: Vec<Hash>,
}

/// One dependency edge list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dependency {
    /// The dependent component's `bom-ref`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// What it depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

/// `modelCard`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelCard {
    /// Identifier (`bom-ref`, hyphenated: the `cyclonedx-bom` crate writes
    /// `bomRef`, which the schema rejects).
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// How the model is built and what it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_parameters: Option<ModelParameters>,
    /// Metrics and graphics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantitative_analysis: Option<QuantitativeAnalysis>,
    /// Users, uses, limitations, ethics, environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub considerations: Option<Considerations>,
    /// Name-value facts (per-epoch history, layer summary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// `modelCard.modelParameters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelParameters {
    /// Learning approach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approach: Option<ApproachType>,
    /// The task, e.g. `classification`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// E.g. `convolutional neural network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture_family: Option<String>,
    /// The specific architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_architecture: Option<String>,
    /// Training datasets, by reference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<DatasetChoice>,
    /// Input formats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<MlParameter>,
    /// Output formats.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<MlParameter>,
}

/// `approach`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproachType {
    /// The learning type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub approach: Option<Approach>,
}

/// Learning types of CycloneDX 1.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum Approach {
    Supervised,
    Unsupervised,
    ReinforcementLearning,
    SemiSupervised,
    SelfSupervised,
}

impl Approach {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Approach::Supervised => "supervised",
            Approach::Unsupervised => "unsupervised",
            Approach::ReinforcementLearning => "reinforcement-learning",
            Approach::SemiSupervised => "semi-supervised",
            Approach::SelfSupervised => "self-supervised",
        }
    }
}

/// A dataset of a model card: a reference (what Veritrain writes) or inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DatasetChoice {
    /// `{"ref": "<bom-ref>"}`.
    Ref {
        /// The data component's `bom-ref`.
        #[serde(rename = "ref")]
        reference: String,
    },
    /// An inline data description.
    Inline(Box<ComponentData>),
}

/// A model input or output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlParameter {
    /// Its format, e.g. `float32 tensor [batch, 4]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// `quantitativeAnalysis`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuantitativeAnalysis {
    /// Final and best metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_metrics: Vec<PerformanceMetric>,
    /// The training curves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graphics: Option<GraphicsCollection>,
}

/// One metric value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceMetric {
    /// The metric, e.g. `accuracy`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
    /// Its value (a decimal number as text: the schema types it a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The data it was computed on (`train`, `validation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
    /// A confidence interval, if one was computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence_interval: Option<ConfidenceInterval>,
}

/// A confidence interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfidenceInterval {
    /// Lower bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower_bound: Option<String>,
    /// Upper bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper_bound: Option<String>,
}

/// A set of graphics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphicsCollection {
    /// What they show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The graphics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection: Vec<Graphic>,
}

/// One graphic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graphic {
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Attachment>,
}

/// Embedded content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// MIME type (`image/svg+xml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `base64`, or absent for text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// The content.
    pub content: String,
}

/// `considerations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Considerations {
    /// Intended users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Intended uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub use_cases: Vec<String>,
    /// Limitations, out-of-scope uses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub technical_limitations: Vec<String>,
    /// Trade-offs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performance_tradeoffs: Vec<String>,
    /// Risks (misuse) and their mitigations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ethical_considerations: Vec<Risk>,
    /// Energy and compute (1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environmental_considerations: Option<EnvironmentalConsiderations>,
    /// Fairness assessments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fairness_assessments: Vec<FairnessAssessment>,
}

/// A risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Risk {
    /// The risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// How it is mitigated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation_strategy: Option<String>,
}

/// A fairness assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FairnessAssessment {
    /// The group at risk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_at_risk: Option<String>,
    /// Expected benefits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefits: Option<String>,
    /// Expected harms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harms: Option<String>,
    /// Mitigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigation_strategy: Option<String>,
}

/// `environmentalConsiderations` (1.6).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentalConsiderations {
    /// Measured energy, when known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub energy_consumptions: Vec<EnergyConsumption>,
    /// Measured compute time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// Energy used by one activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnergyConsumption {
    /// `training`, ...
    pub activity: String,
    /// Who provided it.
    pub energy_providers: Vec<EnergyProvider>,
    /// How much.
    pub activity_energy_cost: EnergyMeasure,
    /// How it was measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// An energy provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnergyProvider {
    /// The organization.
    pub organization: OrganizationalEntity,
    /// `unknown`, `wind`, ...
    pub energy_source: String,
    /// Energy provided.
    pub energy_provided: EnergyMeasure,
}

/// An amount of energy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnergyMeasure {
    /// The amount.
    pub value: f64,
    /// `kWh`.
    pub unit: String,
}

/// Data types of CycloneDX 1.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum DataType {
    SourceCode,
    Configuration,
    Dataset,
    Definition,
    Other,
}

/// One entry of a `data` component's `data` array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentData {
    /// Identifier.
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// Kind of data.
    #[serde(rename = "type")]
    pub data_type: DataType,
    /// Its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its contents (here: statistics as properties, and a source URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents: Option<DataContents>,
    /// Classification, e.g. `public`, `confidential`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classification: Option<String>,
    /// Kinds of sensitive data it holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_data: Vec<String>,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Owners, custodians, stewards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub governance: Option<DataGovernance>,
}

/// `contents` of a data description.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataContents {
    /// Embedded content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Where the data is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Facts about the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// `governance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataGovernance {
    /// Custodians.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custodians: Vec<ResponsibleParty>,
    /// Stewards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stewards: Vec<ResponsibleParty>,
    /// Owners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<ResponsibleParty>,
}

/// An organization or a person responsible for data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResponsibleParty {
    /// An organization.
    Organization(OrganizationalEntity),
    /// A person.
    Contact(OrganizationalContact),
}

/// A formula: how something was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Formula {
    /// Identifier.
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    /// The workflows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workflows: Vec<Workflow>,
    /// Facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// Task types of CycloneDX 1.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum TaskType {
    Copy,
    Clone,
    Lint,
    Scan,
    Merge,
    Build,
    Test,
    Deliver,
    Deploy,
    Release,
    Clean,
    Other,
}

/// A workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// Identifier (required).
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    /// Unique ID (required).
    pub uid: String,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
    /// Task order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub task_dependencies: Vec<Dependency>,
    /// What kinds of task it runs (required).
    pub task_types: Vec<TaskType>,
    /// Start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_start: Option<String>,
    /// End time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_end: Option<String>,
    /// Facts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Identifier (required).
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    /// Unique ID (required).
    pub uid: String,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// What kind of task (required).
    pub task_types: Vec<TaskType>,
    /// Inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<TaskInput>,
    /// Outputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<TaskOutput>,
    /// Start time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_start: Option<String>,
    /// End time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_end: Option<String>,
    /// Facts (the fit parameters of `train`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

/// A reference to a resource: a `bom-ref` or an external reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ResourceReference {
    /// A `bom-ref` in this BOM.
    #[serde(rename = "ref")]
    Ref(String),
    /// A document outside the BOM.
    ExternalReference(ExternalReference),
}

/// Output types of CycloneDX 1.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(missing_docs)]
pub enum OutputType {
    Artifact,
    Attestation,
    Log,
    Evidence,
    Metrics,
    Other,
}

/// A task input: exactly one of a resource or parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskInput {
    /// A resource.
    Resource(ResourceReference),
    /// Parameters.
    Parameters(Vec<Parameter>),
}

/// A task output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutput {
    /// What kind.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<OutputType>,
    /// The resource.
    pub resource: ResourceReference,
}

/// A named, typed parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Value as text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// JSON type of the value as used (`integer`, `number`, `boolean`,
    /// `string`, `null`, `array`, `object`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_type: Option<String>,
}
