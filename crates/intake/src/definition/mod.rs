//! The dataset definition: a small YAML file that says what the uploaded
//! data is (CSV columns and their types, an image layout, TFRecord
//! features), which part is the label, the model's input and output shapes,
//! the preprocessing and the train/validation split.
//!
//! It is the first untrusted input the intake gate reads: the CSV, ZIP and
//! TFRecord validators check the data against the typed [`Definition`] it
//! produces, and the AIBoM records that `Definition` (it is `Serialize`,
//! and every field the user wrote is kept in it).
//!
//! Parsing is two steps. `yaml.rs` turns the bytes into a spanned tree
//! under [`DefinitionLimits`], refusing anchors, aliases, tags, duplicate
//! keys and further documents. `validate.rs` walks that tree with an
//! allow-list of keys per mapping, checks every type and cross-field rule,
//! and reports each error with its line, column and key path
//! (`columns[2].type`). The format is documented in `docs/definition.md`
//! and `docs/schema/definition.schema.json`.

mod bridge;
mod validate;
pub(crate) mod yaml;

use serde::Serialize;

use crate::error::Result;

// ---- stable codes -------------------------------------------------------

/// The definition is larger than [`DefinitionLimits::max_bytes`].
pub const LIMIT_SIZE: &str = "definition.limit_size";
/// Collections nest deeper than [`DefinitionLimits::max_depth`].
pub const LIMIT_DEPTH: &str = "definition.limit_depth";
/// More YAML nodes than [`DefinitionLimits::max_nodes`].
pub const LIMIT_NODES: &str = "definition.limit_nodes";
/// A scalar longer than [`DefinitionLimits::max_scalar_bytes`].
pub const LIMIT_SCALAR: &str = "definition.limit_scalar";
/// Too many columns, category values, classes or features.
pub const LIMIT_ITEMS: &str = "definition.limit_items";
/// A shape with too many dimensions or elements.
pub const LIMIT_SHAPE: &str = "definition.limit_shape";
/// The bytes are not UTF-8.
pub const INVALID_UTF8: &str = "definition.invalid_utf8";
/// A control character YAML does not allow.
pub const CONTROL_CHARACTER: &str = "definition.control_character";
/// The YAML parser rejected the text.
pub const SYNTAX: &str = "definition.syntax";
/// No document at all.
pub const EMPTY: &str = "definition.empty";
/// More than one YAML document.
pub const MULTIPLE_DOCUMENTS: &str = "definition.multiple_documents";
/// A YAML anchor (`&a`).
pub const ANCHOR: &str = "definition.anchor";
/// A YAML alias (`*a`).
pub const ALIAS: &str = "definition.alias";
/// A YAML tag (`!!python/object`, `!custom`, `!!str`).
pub const TAG: &str = "definition.tag";
/// A mapping key that is a sequence or a mapping.
pub const COMPLEX_KEY: &str = "definition.complex_key";
/// The same key twice in one mapping.
pub const DUPLICATE_KEY: &str = "definition.duplicate_key";
/// A key the format does not define.
pub const UNKNOWN_KEY: &str = "definition.unknown_key";
/// A key that exists, but not for this dataset `type`.
pub const KEY_NOT_FOR_TYPE: &str = "definition.key_not_for_type";
/// A required key is missing.
pub const MISSING_KEY: &str = "definition.missing_key";
/// A value of the wrong YAML type (a string where a number belongs, ...).
pub const WRONG_TYPE: &str = "definition.wrong_type";
/// A value of the right type outside what is allowed (an unknown enum
/// word, a negative dimension, a name with a `/`, a fraction of 1.5).
pub const INVALID_VALUE: &str = "definition.invalid_value";
/// `version` is not one this build understands.
pub const UNSUPPORTED_VERSION: &str = "definition.unsupported_version";
/// Two columns, features, classes or category values with the same name.
pub const DUPLICATE_NAME: &str = "definition.duplicate_name";
/// `input_shape` or `output_shape` disagrees with the rest of the definition.
pub const SHAPE_MISMATCH: &str = "definition.shape_mismatch";
/// The label names a column or feature that is not declared.
pub const LABEL_NOT_FOUND: &str = "definition.label_not_found";
/// The label's column or feature cannot be a label as declared (nullable,
/// a free string, a dtype that disagrees with its feature).
pub const LABEL_TYPE: &str = "definition.label_type";
/// `classes` disagrees with the label column's category values, or is
/// given where the label has no classes.
pub const CLASSES_MISMATCH: &str = "definition.classes_mismatch";

/// Every code this module can return, for documentation tests.
pub const CODES: &[&str] = &[
    LIMIT_SIZE,
    LIMIT_DEPTH,
    LIMIT_NODES,
    LIMIT_SCALAR,
    LIMIT_ITEMS,
    LIMIT_SHAPE,
    INVALID_UTF8,
    CONTROL_CHARACTER,
    SYNTAX,
    EMPTY,
    MULTIPLE_DOCUMENTS,
    ANCHOR,
    ALIAS,
    TAG,
    COMPLEX_KEY,
    DUPLICATE_KEY,
    UNKNOWN_KEY,
    KEY_NOT_FOR_TYPE,
    MISSING_KEY,
    WRONG_TYPE,
    INVALID_VALUE,
    UNSUPPORTED_VERSION,
    DUPLICATE_NAME,
    SHAPE_MISMATCH,
    LABEL_NOT_FOUND,
    LABEL_TYPE,
    CLASSES_MISMATCH,
];

/// The definition format version this build reads.
pub const FORMAT_VERSION: u32 = 1;

// ---- limits -------------------------------------------------------------

/// Bounds on a definition, checked while it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionLimits {
    /// Largest definition file, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most YAML nodes (scalars, sequences and mappings together).
    pub max_nodes: usize,
    /// Longest scalar, in bytes.
    pub max_scalar_bytes: usize,
    /// Most CSV columns.
    pub max_columns: usize,
    /// Most values of one category column, and most label classes.
    pub max_values: usize,
    /// Most TFRecord features.
    pub max_features: usize,
    /// Most dimensions in a shape.
    pub max_rank: usize,
    /// Most elements in one shape (the product of its dimensions).
    pub max_elements: u64,
    /// Largest `image_size` side, in pixels.
    pub max_image_side: u32,
}

impl Default for DefinitionLimits {
    /// Production limits: a definition with ten thousand columns or
    /// category values still fits.
    fn default() -> Self {
        DefinitionLimits {
            max_bytes: 1 << 20,
            max_depth: 16,
            max_nodes: 200_000,
            max_scalar_bytes: 16 * 1024,
            max_columns: 10_000,
            max_values: 10_000,
            max_features: 1_000,
            max_rank: 8,
            max_elements: 1 << 28,
            max_image_side: 8192,
        }
    }
}

impl DefinitionLimits {
    /// Small limits for tests and fuzzing.
    pub fn for_testing() -> Self {
        DefinitionLimits {
            max_bytes: 4096,
            max_depth: 8,
            max_nodes: 256,
            max_scalar_bytes: 256,
            max_columns: 16,
            max_values: 16,
            max_features: 8,
            max_rank: 4,
            max_elements: 1 << 16,
            max_image_side: 1024,
        }
    }
}

// ---- the typed definition ----------------------------------------------

/// A validated dataset definition.
///
/// Serializes to the same shape as the YAML it came from, with every
/// default made explicit (`nullable: false`, `resize: bilinear`, ...) and
/// absent optional values left out, so the AIBoM records exactly what the
/// platform will apply; the JSON is itself a valid definition that parses
/// back to an equal `Definition`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Definition {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    /// Free-text facts about the dataset, recorded for the dataset card.
    pub metadata: Metadata,
    /// The model's input shape, without the batch dimension.
    pub input_shape: Vec<u64>,
    /// The model's output shape, without the batch dimension.
    pub output_shape: Vec<u64>,
    /// What to do to the inputs before training.
    pub preprocessing: Preprocessing,
    /// How to hold out validation data.
    pub split: Split,
    /// The part that depends on the dataset `type`.
    #[serde(flatten)]
    pub data: DataSpec,
}

/// Descriptive fields. None of them changes how the data is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// A short name for the dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the dataset is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The dataset's licence, ideally an SPDX identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Where the data came from (a citation or a URL, as text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How to cite the dataset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub citation: Option<String>,
    /// The dataset's own version string (`metadata.version`).
    #[serde(rename = "version")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_version: Option<String>,
    /// Who made the dataset.
    pub authors: Vec<String>,
}

/// Train/validation split settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Split {
    /// Fraction of the examples held out for validation, in `[0, 1)`.
    pub validation_fraction: f64,
    /// Seed of the split's shuffle; `None` lets the platform choose one and
    /// record it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl Default for Split {
    fn default() -> Self {
        Split {
            validation_fraction: 0.2,
            seed: None,
        }
    }
}

/// Preprocessing the trainer applies, in this order: resize (images),
/// rescale (images), scale, clip, normalize.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Preprocessing {
    /// Standardise each input feature to zero mean and unit variance, with
    /// statistics from the training split only.
    pub normalize: bool,
    /// Multiply every input value by this factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// Clip every input value to `[min, max]` after scaling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip: Option<[f64; 2]>,
    /// How images whose size differs from `image_size` are resized
    /// (images only; `none` means they must already have that size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize: Option<Resize>,
    /// Multiply pixel values by this factor (images only, e.g. 1/255).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rescale: Option<f64>,
}

/// Image resize method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Images must already be exactly `image_size`.
    None,
    /// Bilinear interpolation (Keras's default).
    Bilinear,
    /// Nearest neighbour.
    Nearest,
    /// Bicubic interpolation.
    Bicubic,
    /// Area averaging.
    Area,
}

/// The dataset `type` and its type-specific settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DataSpec {
    /// A CSV file with a header row.
    Csv(CsvSpec),
    /// A ZIP of PNG/JPEG images.
    Image(ImageSpec),
    /// A TFRecord file of `tf.train.Example`s.
    Tfrecord(TfrecordSpec),
}

impl DataSpec {
    /// The `type` word as written in the definition.
    pub fn type_name(&self) -> &'static str {
        match self {
            DataSpec::Csv(_) => "csv",
            DataSpec::Image(_) => "image",
            DataSpec::Tfrecord(_) => "tfrecord",
        }
    }
}

/// A CSV dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsvSpec {
    /// Field delimiter: `,` (default), `;`, tab or `|`.
    #[serde(serialize_with = "serialize_byte_char")]
    pub delimiter: u8,
    /// The columns, in header order.
    pub columns: Vec<Column>,
    /// The label column.
    pub label: CsvLabel,
}

fn serialize_byte_char<S: serde::Serializer>(b: &u8, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_char(char::from(*b))
}

impl CsvSpec {
    /// Index of the label column in [`CsvSpec::columns`].
    pub fn label_index(&self) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == self.label.column)
    }

    /// The label's classes: the category values of a category label, or
    /// the `classes` names of an int label (then the CSV holds the class
    /// index), or `false`/`true` for a bool label. `None` for a numeric
    /// (regression) label.
    pub fn classes(&self) -> Option<Vec<String>> {
        let col = self.columns.get(self.label_index()?)?;
        match &col.column_type {
            ColumnType::Category { values } => Some(values.clone()),
            ColumnType::Bool => Some(vec!["false".to_owned(), "true".to_owned()]),
            ColumnType::Int => self.label.classes.clone(),
            ColumnType::Float | ColumnType::String => None,
        }
    }

    /// Number of model input features (columns with `input: true`).
    pub fn input_width(&self) -> usize {
        self.columns.iter().filter(|c| c.input).count()
    }
}

/// One CSV column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The header name, exactly.
    pub name: String,
    /// The declared type.
    #[serde(flatten)]
    pub column_type: ColumnType,
    /// Whether empty cells are allowed (they count as missing values).
    pub nullable: bool,
    /// Whether the column is a model input. The label column is never one;
    /// a `string` column cannot be one.
    pub input: bool,
}

/// A column's declared type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnType {
    /// A 64-bit signed decimal integer.
    Int,
    /// A finite decimal floating-point number.
    Float,
    /// `true`/`false` (any of three casings) or `1`/`0`.
    Bool,
    /// Any UTF-8 text.
    String,
    /// One of a fixed list of values, compared byte for byte.
    Category {
        /// The allowed values, in order; a category feature is encoded as
        /// the index of its value here.
        values: Vec<String>,
    },
}

impl ColumnType {
    /// The type word as written in the definition.
    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Bool => "bool",
            ColumnType::String => "string",
            ColumnType::Category { .. } => "category",
        }
    }
}

/// The label of a CSV dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CsvLabel {
    /// The label column's name.
    pub column: String,
    /// Class names (only for an `int` label, whose cells are then class
    /// indices `0..classes.len()`, or repeated for a category label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// An image dataset (a ZIP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageSpec {
    /// `[height, width]` of the images the model receives.
    pub image_size: [u32; 2],
    /// Channels the images are decoded to.
    pub color_mode: ColorMode,
    /// How files map to classes.
    pub layout: ImageLayout,
    /// The label (its class names).
    pub label: ImageLabel,
}

/// Image channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColorMode {
    /// One channel.
    Grayscale,
    /// Three channels.
    Rgb,
    /// Four channels.
    Rgba,
}

impl ColorMode {
    /// Number of channels.
    pub fn channels(self) -> u64 {
        match self {
            ColorMode::Grayscale => 1,
            ColorMode::Rgb => 3,
            ColorMode::Rgba => 4,
        }
    }
}

/// How an image ZIP maps files to classes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageLayout {
    /// `<class>/<file>`: each top-level folder is a class.
    Folders,
    /// All images plus one labels CSV.
    Flat {
        /// Path of the labels CSV inside the ZIP.
        labels_csv: String,
        /// The labels CSV column holding the image path.
        file_column: String,
        /// The labels CSV column holding the class name.
        label_column: String,
    },
}

/// The label of an image dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageLabel {
    /// The class names: folder names for `folders`, label values for `flat`.
    pub classes: Vec<String>,
}

/// A TFRecord dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TfrecordSpec {
    /// The features each `tf.train.Example` must hold, label included.
    pub features: Vec<Feature>,
    /// The label feature.
    pub label: TfLabel,
    /// Concatenate the input features into one vector (the default).
    pub flatten_features: bool,
}

impl TfrecordSpec {
    /// The label's feature declaration.
    pub fn label_feature(&self) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == self.label.feature)
    }

    /// The features that are model inputs (all but the label).
    pub fn input_features(&self) -> impl Iterator<Item = &Feature> {
        self.features
            .iter()
            .filter(|f| f.name != self.label.feature)
    }
}

/// One `tf.train.Example` feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feature {
    /// The feature key.
    pub name: String,
    /// The element type.
    pub dtype: TfDtype,
    /// Fixed shape (`[]` for a scalar).
    pub shape: Vec<u64>,
}

impl Feature {
    /// Number of elements the shape holds.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A feature's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TfDtype {
    /// `Int64List`.
    Int64,
    /// `FloatList`.
    Float32,
    /// `BytesList`, any bytes.
    Bytes,
    /// `BytesList` whose values must be UTF-8.
    String,
}

impl TfDtype {
    /// The dtype word as written in the definition.
    pub fn name(self) -> &'static str {
        match self {
            TfDtype::Int64 => "int64",
            TfDtype::Float32 => "float32",
            TfDtype::Bytes => "bytes",
            TfDtype::String => "string",
        }
    }
}

/// The label of a TFRecord dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TfLabel {
    /// The label feature's name (declared in `features`).
    pub feature: String,
    /// Its dtype (must equal the feature's).
    pub dtype: TfDtype,
    /// Class names: for `int64`, values are indices `0..classes.len()`; for
    /// `bytes`/`string`, values must be one of these names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

// ---- entry point --------------------------------------------------------

/// Parse and validate a dataset definition.
///
/// # Errors
/// [`crate::Error::Rejected`] with a `definition.*` code and a
/// [`crate::Location::Document`] (line, column, key path) for the first
/// problem found.
pub fn parse_definition(yaml: &[u8], limits: &DefinitionLimits) -> Result<Definition> {
    let tree = yaml::parse_tree(yaml, limits)?;
    Ok(validate::definition(&tree, limits)?)
}

/// The definition document as plain JSON, after the YAML checks (size,
/// UTF-8, no anchors, aliases, tags or duplicate keys) but before any
/// semantic validation, with scalars resolved as in the YAML 1.2 core
/// schema. For checking a document against
/// `docs/schema/definition.schema.json`.
///
/// # Errors
/// The YAML-level `definition.*` rejections of [`parse_definition`].
pub fn yaml_to_json(yaml: &[u8], limits: &DefinitionLimits) -> Result<serde_json::Value> {
    let tree = yaml::parse_tree(yaml, limits)?;
    Ok(validate::to_json(&tree))
}
