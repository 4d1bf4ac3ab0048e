//! The spanned YAML tree to a typed [`Definition`].
//!
//! Every mapping is checked against an allow-list of keys (one list per
//! mapping kind, and per dataset `type` at the top level), every scalar
//! against the type its key needs, and then the cross-field rules: the
//! label exists and can be a label, the classes agree, and `input_shape`
//! and `output_shape` agree with the columns, image size or features. Each
//! error names the node's line and column and its key path.

use std::collections::HashSet;

use super::yaml::{Key, Node, NodeKind, Pos, Scalar, finding_at};
use super::{
    CLASSES_MISMATCH, ColorMode, Column, ColumnType, CsvLabel, CsvSpec, DUPLICATE_NAME, DataSpec,
    Definition, DefinitionLimits, FORMAT_VERSION, Feature, INVALID_VALUE, ImageLabel, ImageLayout,
    ImageSpec, KEY_NOT_FOR_TYPE, LABEL_NOT_FOUND, LABEL_TYPE, LIMIT_ITEMS, LIMIT_SHAPE,
    MISSING_KEY, Metadata, Preprocessing, Resize, SHAPE_MISMATCH, Split, TfDtype, TfLabel,
    TfrecordSpec, UNKNOWN_KEY, UNSUPPORTED_VERSION, WRONG_TYPE,
};
use crate::finding::Finding;

type R<T> = Result<T, Finding>;

// ---- key allow-lists (docs/schema/definition.schema.json mirrors these) --

/// Top-level keys every dataset type accepts.
pub(crate) const TOP_COMMON: &[&str] = &[
    "version",
    "type",
    "metadata",
    "input_shape",
    "output_shape",
    "label",
    "preprocessing",
    "split",
];
/// Extra top-level keys for `type: csv`.
pub(crate) const TOP_CSV: &[&str] = &["columns", "delimiter"];
/// Extra top-level keys for `type: image`.
pub(crate) const TOP_IMAGE: &[&str] = &["image_size", "color_mode", "layout"];
/// Extra top-level keys for `type: tfrecord`.
pub(crate) const TOP_TFRECORD: &[&str] = &["features", "flatten_features"];
pub(crate) const METADATA: &[&str] = &[
    "name",
    "description",
    "license",
    "source",
    "citation",
    "version",
    "authors",
];
pub(crate) const SPLIT: &[&str] = &["validation_fraction", "seed"];
pub(crate) const PREPROCESSING: &[&str] = &["normalize", "scale", "clip"];
pub(crate) const PREPROCESSING_IMAGE: &[&str] = &["resize", "rescale"];
pub(crate) const COLUMN: &[&str] = &["name", "type", "values", "nullable", "input"];
pub(crate) const CSV_LABEL: &[&str] = &["column", "classes"];
pub(crate) const IMAGE_LABEL: &[&str] = &["classes"];
pub(crate) const TF_LABEL: &[&str] = &["feature", "dtype", "classes"];
pub(crate) const LAYOUT: &[&str] = &["kind", "labels_csv", "file_column", "label_column"];
/// Layout keys only the flat layout takes.
const LAYOUT_FLAT: &[&str] = &["labels_csv", "file_column", "label_column"];
pub(crate) const FEATURE: &[&str] = &["name", "dtype", "shape"];

pub(crate) const DATASET_TYPES: &[&str] = &["csv", "image", "tfrecord"];
pub(crate) const COLUMN_TYPES: &[&str] = &["int", "float", "bool", "string", "category"];
pub(crate) const DTYPES: &[&str] = &["int64", "float32", "bytes", "string"];
pub(crate) const DELIMITERS: &[&str] = &[",", ";", "\t", "|"];
pub(crate) const COLOR_MODES: &[&str] = &["grayscale", "rgb", "rgba"];
pub(crate) const RESIZES: &[&str] = &["none", "bilinear", "nearest", "bicubic", "area"];
pub(crate) const LAYOUT_KINDS: &[&str] = &["folders", "flat"];

// ---- paths and errors ----------------------------------------------------

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn fail<T>(code: &'static str, msg: impl Into<String>, pos: Pos, path: &str) -> R<T> {
    Err(finding_at(code, msg.into(), pos, path))
}

/// A user-written string for a message: quoted and escaped, cut to 64
/// characters, so a 16 KiB key cannot make a 16 KiB error line.
fn short(text: &str) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(64).collect();
    if chars.next().is_some() {
        format!("{head:?}...")
    } else {
        format!("{head:?}")
    }
}

// ---- scalar resolution (YAML 1.2 core schema, plain scalars only) -------

/// What a scalar means.
enum Value<'a> {
    Null,
    Bool(bool),
    /// A decimal integer, as written.
    Int(&'a str),
    Float(f64),
    Str(&'a str),
}

fn is_int(t: &str) -> bool {
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_float(t: &str) -> bool {
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (t.get(..i).unwrap_or(""), t.get(i.saturating_add(1)..)),
        None => (t, None),
    };
    if exponent.is_some_and(|e| !is_int(e)) {
        return false;
    }
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match frac {
        Some(f) => digits(int_part) && digits(f) && !(int_part.is_empty() && f.is_empty()),
        None => !int_part.is_empty() && digits(int_part),
    }
}

fn resolve(s: &Scalar) -> Value<'_> {
    let t = s.text.as_str();
    if !s.plain {
        return Value::Str(t);
    }
    match t {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        _ if is_int(t) => Value::Int(t),
        _ if is_float(t) => Value::Float(t.parse().unwrap_or(f64::NAN)),
        _ => Value::Str(t),
    }
}

fn describe(node: &Node) -> &'static str {
    match &node.kind {
        NodeKind::Seq(_) => "a sequence",
        NodeKind::Map(_) => "a mapping",
        NodeKind::Scalar(s) => match resolve(s) {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
        },
    }
}

fn wrong<T>(node: &Node, path: &str, expected: &str) -> R<T> {
    let found = describe(node);
    let hint = if expected.starts_with("a string")
        && matches!(&node.kind, NodeKind::Scalar(s) if s.plain)
    {
        " (quote it to make it text)"
    } else {
        ""
    };
    fail(
        WRONG_TYPE,
        format!("expected {expected}, found {found}{hint}"),
        node.pos,
        path,
    )
}

fn as_seq<'a>(node: &'a Node, path: &str) -> R<&'a [Node]> {
    match &node.kind {
        NodeKind::Seq(items) => Ok(items),
        _ => wrong(node, path, "a sequence"),
    }
}

fn as_str<'a>(node: &'a Node, path: &str) -> R<&'a str> {
    match &node.kind {
        NodeKind::Scalar(s) => match resolve(s) {
            Value::Str(t) => Ok(t),
            _ => wrong(node, path, "a string"),
        },
        _ => wrong(node, path, "a string"),
    }
}

fn as_bool(node: &Node, path: &str) -> R<bool> {
    match &node.kind {
        NodeKind::Scalar(s) => match resolve(s) {
            Value::Bool(b) => Ok(b),
            _ => wrong(node, path, "a boolean (true or false)"),
        },
        _ => wrong(node, path, "a boolean (true or false)"),
    }
}

fn as_u64(node: &Node, path: &str) -> R<u64> {
    if let NodeKind::Scalar(s) = &node.kind
        && let Value::Int(t) = resolve(s)
    {
        return match t.strip_prefix('+').unwrap_or(t).parse::<u64>() {
            Ok(v) => Ok(v),
            Err(_) => fail(
                INVALID_VALUE,
                format!("{t} is not an integer in 0..=18446744073709551615"),
                node.pos,
                path,
            ),
        };
    }
    wrong(node, path, "a non-negative integer")
}

/// A finite number (an integer is a number too).
fn as_f64(node: &Node, path: &str) -> R<f64> {
    let v = match &node.kind {
        NodeKind::Scalar(s) => match resolve(s) {
            Value::Int(t) => t.parse::<f64>().ok(),
            Value::Float(f) => Some(f),
            _ => None,
        },
        _ => None,
    };
    match v {
        Some(f) if f.is_finite() => Ok(f),
        Some(_) => fail(
            INVALID_VALUE,
            "expected a finite number, found infinity or NaN",
            node.pos,
            path,
        ),
        None => wrong(node, path, "a number"),
    }
}

/// One word from an allow-list.
fn as_word(node: &Node, path: &str, allowed: &[&str]) -> R<String> {
    let t = as_str(node, path)?;
    if allowed.contains(&t) {
        Ok(t.to_owned())
    } else {
        fail(
            INVALID_VALUE,
            format!("{} is not one of {}", short(t), allowed.join(", ")),
            node.pos,
            path,
        )
    }
}

/// A name (column, class, feature, file column): non-empty, no control
/// characters at all. Double-quoted YAML escapes (`"\0"`, `"\e"`) can put
/// controls into a value even though the text itself had none; they would
/// end up in CSV comparisons, folder names and terminal output.
fn as_name(node: &Node, path: &str) -> R<String> {
    let t = as_str(node, path)?;
    if t.is_empty() {
        return fail(INVALID_VALUE, "a name cannot be empty", node.pos, path);
    }
    if let Some(c) = t.chars().find(|c| c.is_control()) {
        return fail(
            INVALID_VALUE,
            format!(
                "control character U+{:04X} is not allowed in a name",
                u32::from(c)
            ),
            node.pos,
            path,
        );
    }
    Ok(t.to_owned())
}

/// Free text (descriptions): newlines and tabs allowed, other controls not.
fn as_text(node: &Node, path: &str) -> R<String> {
    let t = as_str(node, path)?;
    if let Some(c) = t
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        return fail(
            INVALID_VALUE,
            format!(
                "control character U+{:04X} is not allowed here",
                u32::from(c)
            ),
            node.pos,
            path,
        );
    }
    Ok(t.to_owned())
}

/// The tree as plain JSON, scalars resolved as YAML 1.2 core (for checking
/// a document against the JSON Schema).
pub(super) fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.kind {
        NodeKind::Seq(items) => J::Array(items.iter().map(to_json).collect()),
        NodeKind::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
        NodeKind::Scalar(s) => match resolve(s) {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(b),
            Value::Int(t) => {
                let t = t.strip_prefix('+').unwrap_or(t);
                if let Ok(i) = t.parse::<i64>() {
                    J::from(i)
                } else if let Ok(u) = t.parse::<u64>() {
                    J::from(u)
                } else {
                    // Out of range for JSON integers here: kept as a number.
                    serde_json::Number::from_f64(t.parse().unwrap_or(f64::MAX))
                        .map_or(J::Null, J::Number)
                }
            }
            Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            Value::Str(t) => J::String(t.to_owned()),
        },
    }
}

// ---- mappings -------------------------------------------------------------

/// A mapping node with its path.
struct Map<'a> {
    node: &'a Node,
    entries: &'a [(Key, Node)],
    path: String,
}

impl<'a> Map<'a> {
    fn new(node: &'a Node, path: &str) -> R<Self> {
        match &node.kind {
            NodeKind::Map(entries) => Ok(Map {
                node,
                entries,
                path: path.to_owned(),
            }),
            _ => wrong(node, path, "a mapping"),
        }
    }

    /// Refuse keys outside `allowed`. `elsewhere` lists keys that exist in
    /// the format but not in this context (another dataset type), which get
    /// their own code so the message can say why.
    fn allow(&self, allowed: &[&[&str]], elsewhere: &[&str], context: &str) -> R<()> {
        for (key, _) in self.entries {
            let k = key.name.as_str();
            if allowed.iter().any(|list| list.contains(&k)) {
                continue;
            }
            let path = child(&self.path, k);
            if elsewhere.contains(&k) {
                return fail(
                    KEY_NOT_FOR_TYPE,
                    format!("key {} does not apply to {context}", short(k)),
                    key.pos,
                    &path,
                );
            }
            let mut all: Vec<&str> = allowed.iter().flat_map(|l| l.iter().copied()).collect();
            all.sort_unstable();
            return fail(
                UNKNOWN_KEY,
                format!("unknown key {}; allowed here: {}", short(k), all.join(", ")),
                key.pos,
                &path,
            );
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<(&'a Node, String)> {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| (v, child(&self.path, key)))
    }

    fn key_pos(&self, key: &str) -> Pos {
        self.entries
            .iter()
            .find(|(k, _)| k.name == key)
            .map_or(self.node.pos, |(k, _)| k.pos)
    }

    fn required(&self, key: &str) -> R<(&'a Node, String)> {
        match self.get(key) {
            Some(v) => Ok(v),
            None => fail(
                MISSING_KEY,
                format!("required key {key:?} is missing"),
                self.node.pos,
                &child(&self.path, key),
            ),
        }
    }
}

// ---- shared pieces ----------------------------------------------------------

/// A shape: dimensions >= 1, bounded rank and element count. `min_rank` is
/// 1 for model shapes and 0 for feature shapes (a scalar feature).
fn shape(node: &Node, path: &str, min_rank: usize, limits: &DefinitionLimits) -> R<Vec<u64>> {
    let items = as_seq(node, path)?;
    if items.len() < min_rank || items.len() > limits.max_rank {
        return fail(
            LIMIT_SHAPE,
            format!(
                "a shape here has {min_rank} to {} dimensions; found {}",
                limits.max_rank,
                items.len()
            ),
            node.pos,
            path,
        );
    }
    let mut dims = Vec::with_capacity(items.len());
    let mut elements: u64 = 1;
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let d = as_u64(item, &p)?;
        if d == 0 {
            return fail(
                INVALID_VALUE,
                "a dimension must be at least 1",
                item.pos,
                &p,
            );
        }
        elements = match elements.checked_mul(d) {
            Some(e) if e <= limits.max_elements => e,
            _ => {
                return fail(
                    LIMIT_SHAPE,
                    format!("the shape holds more than {} elements", limits.max_elements),
                    node.pos,
                    path,
                );
            }
        };
        dims.push(d);
    }
    Ok(dims)
}

/// A list of unique names (classes, category values), at most `max_values`.
/// `ints_as_text` accepts plain integers and keeps them as written, so
/// `values: [3, 4, 5]` matches CSV cells `3`, `4`, `5`.
fn name_list(
    node: &Node,
    path: &str,
    limits: &DefinitionLimits,
    ints_as_text: bool,
    min_len: usize,
) -> R<Vec<String>> {
    let items = as_seq(node, path)?;
    if items.len() > limits.max_values {
        return fail(
            LIMIT_ITEMS,
            format!("more than {} entries", limits.max_values),
            node.pos,
            path,
        );
    }
    if items.len() < min_len {
        return fail(
            INVALID_VALUE,
            format!("at least {min_len} entries are needed"),
            node.pos,
            path,
        );
    }
    let mut seen = HashSet::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let name = match &item.kind {
            NodeKind::Scalar(s) if ints_as_text && s.plain && is_int(&s.text) => s.text.clone(),
            _ => as_name(item, &p)?,
        };
        if !seen.insert(name.clone()) {
            return fail(
                DUPLICATE_NAME,
                format!("{} is listed twice", short(&name)),
                item.pos,
                &p,
            );
        }
        out.push(name);
    }
    Ok(out)
}

/// The output shape a classifier over `k` classes may have: `[k]`
/// (softmax), or `[1]` when there are two classes (sigmoid).
fn check_class_output(output: &[u64], k: usize, root: &Map<'_>) -> R<()> {
    let k = k as u64;
    if output == [k] || (k == 2 && output == [1]) {
        return Ok(());
    }
    let (node, path) = root.required("output_shape")?;
    let expected = if k == 2 {
        "[2] or [1]".to_owned()
    } else {
        format!("[{k}]")
    };
    fail(
        SHAPE_MISMATCH,
        format!("the label has {k} classes, so output_shape must be {expected}; found {output:?}"),
        node.pos,
        &path,
    )
}

fn check_shape_equals(
    found: &[u64],
    expected: &[u64],
    key: &str,
    why: &str,
    root: &Map<'_>,
) -> R<()> {
    if found == expected {
        return Ok(());
    }
    let (node, path) = root.required(key)?;
    fail(
        SHAPE_MISMATCH,
        format!("{key} must be {expected:?} ({why}); found {found:?}"),
        node.pos,
        &path,
    )
}

// ---- the document ------------------------------------------------------------

pub(super) fn definition(root: &Node, limits: &DefinitionLimits) -> R<Definition> {
    let top = Map::new(root, "")?;
    let (vnode, vpath) = top.required("version")?;
    let version = as_u64(vnode, &vpath)?;
    if version != u64::from(FORMAT_VERSION) {
        return fail(
            UNSUPPORTED_VERSION,
            format!(
                "definition version {version} is not supported; this build reads version {FORMAT_VERSION}"
            ),
            vnode.pos,
            &vpath,
        );
    }
    let (tnode, tpath) = top.required("type")?;
    let kind = as_word(tnode, &tpath, DATASET_TYPES)?;
    let (own, others): (&[&str], Vec<&str>) = match kind.as_str() {
        "csv" => (TOP_CSV, [TOP_IMAGE, TOP_TFRECORD].concat()),
        "image" => (TOP_IMAGE, [TOP_CSV, TOP_TFRECORD].concat()),
        _ => (TOP_TFRECORD, [TOP_CSV, TOP_IMAGE].concat()),
    };
    top.allow(&[TOP_COMMON, own], &others, &format!("type {kind}"))?;

    let metadata = match top.get("metadata") {
        Some((n, p)) => metadata(n, &p, limits)?,
        None => Metadata::default(),
    };
    let (n, p) = top.required("input_shape")?;
    let input_shape = shape(n, &p, 1, limits)?;
    let (n, p) = top.required("output_shape")?;
    let output_shape = shape(n, &p, 1, limits)?;
    let image = kind == "image";
    let preprocessing = match top.get("preprocessing") {
        Some((n, p)) => preprocessing(n, &p, image)?,
        None => Preprocessing::default(),
    };
    let preprocessing = if image {
        Preprocessing {
            resize: preprocessing.resize.or(Some(Resize::Bilinear)),
            ..preprocessing
        }
    } else {
        preprocessing
    };
    let split = match top.get("split") {
        Some((n, p)) => split(n, &p)?,
        None => Split::default(),
    };
    let data = match kind.as_str() {
        "csv" => DataSpec::Csv(csv(&top, &input_shape, &output_shape, limits)?),
        "image" => DataSpec::Image(image_spec(&top, &input_shape, &output_shape, limits)?),
        _ => DataSpec::Tfrecord(tfrecord(&top, &input_shape, &output_shape, limits)?),
    };
    Ok(Definition {
        version: FORMAT_VERSION,
        metadata,
        input_shape,
        output_shape,
        preprocessing,
        split,
        data,
    })
}

fn metadata(node: &Node, path: &str, limits: &DefinitionLimits) -> R<Metadata> {
    let m = Map::new(node, path)?;
    m.allow(&[METADATA], &[], "metadata")?;
    let text =
        |key: &str| -> R<Option<String>> { m.get(key).map(|(n, p)| as_text(n, &p)).transpose() };
    let authors = match m.get("authors") {
        Some((n, p)) => {
            let items = as_seq(n, &p)?;
            if items.len() > limits.max_values {
                return fail(
                    LIMIT_ITEMS,
                    format!("more than {} authors", limits.max_values),
                    n.pos,
                    &p,
                );
            }
            items
                .iter()
                .enumerate()
                .map(|(i, a)| as_name(a, &index(&p, i)))
                .collect::<R<Vec<_>>>()?
        }
        None => Vec::new(),
    };
    Ok(Metadata {
        name: m.get("name").map(|(n, p)| as_name(n, &p)).transpose()?,
        description: text("description")?,
        license: m.get("license").map(|(n, p)| as_name(n, &p)).transpose()?,
        source: text("source")?,
        citation: text("citation")?,
        dataset_version: m.get("version").map(|(n, p)| as_name(n, &p)).transpose()?,
        authors,
    })
}

fn split(node: &Node, path: &str) -> R<Split> {
    let m = Map::new(node, path)?;
    m.allow(&[SPLIT], &[], "split")?;
    let validation_fraction = match m.get("validation_fraction") {
        Some((n, p)) => {
            let f = as_f64(n, &p)?;
            // 1.0 would leave nothing to train on; a negative fraction has
            // no meaning.
            if !(0.0..1.0).contains(&f) {
                return fail(
                    INVALID_VALUE,
                    format!("validation_fraction must be in [0, 1); found {f}"),
                    n.pos,
                    &p,
                );
            }
            f
        }
        None => Split::default().validation_fraction,
    };
    let seed = m.get("seed").map(|(n, p)| as_u64(n, &p)).transpose()?;
    Ok(Split {
        validation_fraction,
        seed,
    })
}

fn preprocessing(node: &Node, path: &str, image: bool) -> R<Preprocessing> {
    let m = Map::new(node, path)?;
    if image {
        m.allow(
            &[PREPROCESSING, PREPROCESSING_IMAGE],
            &[],
            "image preprocessing",
        )?;
    } else {
        m.allow(&[PREPROCESSING], PREPROCESSING_IMAGE, "non-image datasets")?;
    }
    let normalize = m
        .get("normalize")
        .map(|(n, p)| as_bool(n, &p))
        .transpose()?
        .unwrap_or(false);
    let scale = match m.get("scale") {
        Some((n, p)) => {
            let f = as_f64(n, &p)?;
            if f == 0.0 {
                return fail(INVALID_VALUE, "scale 0 would erase every input", n.pos, &p);
            }
            Some(f)
        }
        None => None,
    };
    let clip = match m.get("clip") {
        Some((n, p)) => {
            let items = as_seq(n, &p)?;
            let [lo, hi] = items else {
                return fail(INVALID_VALUE, "clip is [min, max]", n.pos, &p);
            };
            let lo_v = as_f64(lo, &index(&p, 0))?;
            let hi_v = as_f64(hi, &index(&p, 1))?;
            if lo_v >= hi_v {
                return fail(
                    INVALID_VALUE,
                    format!("clip min {lo_v} must be less than max {hi_v}"),
                    n.pos,
                    &p,
                );
            }
            Some([lo_v, hi_v])
        }
        None => None,
    };
    let resize = match m.get("resize") {
        Some((n, p)) => Some(match as_word(n, &p, RESIZES)?.as_str() {
            "none" => Resize::None,
            "nearest" => Resize::Nearest,
            "bicubic" => Resize::Bicubic,
            "area" => Resize::Area,
            _ => Resize::Bilinear,
        }),
        None => None,
    };
    let rescale = match m.get("rescale") {
        Some((n, p)) => {
            let f = as_f64(n, &p)?;
            if f <= 0.0 {
                return fail(INVALID_VALUE, "rescale must be positive", n.pos, &p);
            }
            Some(f)
        }
        None => None,
    };
    Ok(Preprocessing {
        normalize,
        scale,
        clip,
        resize,
        rescale,
    })
}

// ---- csv ------------------------------------------------------------------------

fn csv(top: &Map<'_>, input: &[u64], output: &[u64], limits: &DefinitionLimits) -> R<CsvSpec> {
    let delimiter = match top.get("delimiter") {
        Some((n, p)) => match as_word(n, &p, DELIMITERS)?.as_bytes() {
            [b] => *b,
            _ => b',',
        },
        None => b',',
    };
    let (cnode, cpath) = top.required("columns")?;
    let items = as_seq(cnode, &cpath)?;
    if items.is_empty() {
        return fail(
            INVALID_VALUE,
            "at least one column is needed",
            cnode.pos,
            &cpath,
        );
    }
    if items.len() > limits.max_columns {
        return fail(
            LIMIT_ITEMS,
            format!("more than {} columns", limits.max_columns),
            cnode.pos,
            &cpath,
        );
    }

    // The label first: each column's default `input` depends on it.
    let (lnode, lpath) = top.required("label")?;
    let (label_column, label_column_pos, label_column_path, classes) = match &lnode.kind {
        NodeKind::Scalar(_) => (as_name(lnode, &lpath)?, lnode.pos, lpath.clone(), None),
        _ => {
            let m = Map::new(lnode, &lpath)?;
            m.allow(&[CSV_LABEL], &["feature", "dtype"], "a CSV label")?;
            let (n, p) = m.required("column")?;
            let column = as_name(n, &p)?;
            let classes = match m.get("classes") {
                Some((cn, cp)) => Some((name_list(cn, &cp, limits, false, 2)?, cn.pos, cp)),
                None => None,
            };
            (column, n.pos, p, classes)
        }
    };

    let mut columns: Vec<Column> = Vec::with_capacity(items.len());
    let mut names = HashSet::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = index(&cpath, i);
        let m = Map::new(item, &path)?;
        m.allow(&[COLUMN], &[], "a column")?;
        let (n, p) = m.required("name")?;
        let name = as_name(n, &p)?;
        // Two columns with one name make "the header equals the columns"
        // ambiguous and let a label hide behind a feature.
        if !names.insert(name.clone()) {
            return fail(
                DUPLICATE_NAME,
                format!("column {} is declared twice", short(&name)),
                n.pos,
                &p,
            );
        }
        let (tn, tp) = m.required("type")?;
        let column_type = match as_word(tn, &tp, COLUMN_TYPES)?.as_str() {
            "int" => ColumnType::Int,
            "float" => ColumnType::Float,
            "bool" => ColumnType::Bool,
            "string" => ColumnType::String,
            _ => {
                let (vn, vp) = m.required("values")?;
                ColumnType::Category {
                    values: name_list(vn, &vp, limits, true, 1)?,
                }
            }
        };
        if !matches!(column_type, ColumnType::Category { .. }) && m.get("values").is_some() {
            return fail(
                KEY_NOT_FOR_TYPE,
                "values only apply to category columns",
                m.key_pos("values"),
                &child(&path, "values"),
            );
        }
        let nullable = m
            .get("nullable")
            .map(|(n, p)| as_bool(n, &p))
            .transpose()?
            .unwrap_or(false);
        let is_label = name == label_column;
        let explicit_input = m.get("input").map(|(n, p)| as_bool(n, &p)).transpose()?;
        if is_label {
            if explicit_input == Some(true) {
                return fail(
                    LABEL_TYPE,
                    "the label column cannot also be a model input",
                    m.key_pos("input"),
                    &child(&path, "input"),
                );
            }
            // A missing label cannot be trained on or counted in the class
            // balance.
            if nullable {
                return fail(
                    LABEL_TYPE,
                    "the label column cannot be nullable",
                    m.key_pos("nullable"),
                    &child(&path, "nullable"),
                );
            }
        }
        let input = explicit_input.unwrap_or(!is_label);
        if input && column_type == ColumnType::String {
            let (pos, p) = match m.get("input") {
                Some(_) => (m.key_pos("input"), child(&path, "input")),
                None => (tn.pos, tp),
            };
            return fail(
                INVALID_VALUE,
                format!(
                    "string column {} cannot be a model input; declare it category \
                     with its values, or set input: false",
                    short(&name)
                ),
                pos,
                &p,
            );
        }
        columns.push(Column {
            name,
            column_type,
            nullable,
            input,
        });
    }

    let Some(label) = columns.iter().find(|c| c.name == label_column) else {
        return fail(
            LABEL_NOT_FOUND,
            format!(
                "label column {} is not one of the columns",
                short(&label_column)
            ),
            label_column_pos,
            &label_column_path,
        );
    };
    let n_classes = match (&label.column_type, &classes) {
        (ColumnType::String, _) => {
            return fail(
                LABEL_TYPE,
                "a string column cannot be the label; declare it category with its values",
                label_column_pos,
                &label_column_path,
            );
        }
        (ColumnType::Category { values }, Some((c, pos, p))) => {
            if c != values {
                return fail(
                    CLASSES_MISMATCH,
                    format!(
                        "classes must equal the label column's category values ({} of them)",
                        values.len()
                    ),
                    *pos,
                    p,
                );
            }
            Some(values.len())
        }
        (ColumnType::Category { values }, None) => Some(values.len()),
        (ColumnType::Int, Some((c, _, _))) => Some(c.len()),
        (ColumnType::Int | ColumnType::Float, None) => None,
        (ColumnType::Bool, None) => Some(2),
        (ColumnType::Bool | ColumnType::Float, Some((_, pos, p))) => {
            return fail(
                CLASSES_MISMATCH,
                format!(
                    "classes do not apply to a {} label",
                    label.column_type.name()
                ),
                *pos,
                p,
            );
        }
    };

    let width = columns.iter().filter(|c| c.input).count() as u64;
    if width == 0 {
        return fail(
            SHAPE_MISMATCH,
            "no column is a model input",
            cnode.pos,
            &cpath,
        );
    }
    check_shape_equals(
        input,
        &[width],
        "input_shape",
        "one value per input column",
        top,
    )?;
    match n_classes {
        Some(k) => check_class_output(output, k, top)?,
        None => check_shape_equals(output, &[1], "output_shape", "a numeric label", top)?,
    }
    Ok(CsvSpec {
        delimiter,
        columns,
        label: CsvLabel {
            column: label_column,
            classes: classes.map(|(c, _, _)| c),
        },
    })
}

// ---- image ------------------------------------------------------------------------

/// A class name that is also a safe single path component, since with the
/// `folders` layout it is the top-level folder of the ZIP: no separators,
/// no `.`/`..`, no drive colon.
fn check_folder_name(name: &str, pos: Pos, path: &str) -> R<()> {
    if name == "." || name == ".." || name.contains(['/', '\\', ':']) {
        return fail(
            INVALID_VALUE,
            format!("class {} cannot be a folder name", short(name)),
            pos,
            path,
        );
    }
    Ok(())
}

/// A relative path inside the ZIP for the labels CSV.
fn check_member_path(name: &str, pos: Pos, path: &str) -> R<()> {
    let bad = name.starts_with('/')
        || name.contains(['\\', ':'])
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || !name.to_ascii_lowercase().ends_with(".csv");
    if bad {
        return fail(
            INVALID_VALUE,
            format!(
                "labels_csv {} must be a relative path inside the ZIP ending in .csv, without '..'",
                short(name)
            ),
            pos,
            path,
        );
    }
    Ok(())
}

fn layout(node: &Node, path: &str) -> R<ImageLayout> {
    if let NodeKind::Scalar(_) = node.kind {
        as_word(node, path, &["folders"])?;
        return Ok(ImageLayout::Folders);
    }
    let m = Map::new(node, path)?;
    let (kn, kp) = m.required("kind")?;
    if as_word(kn, &kp, LAYOUT_KINDS)? == "folders" {
        m.allow(&[&["kind"]], LAYOUT_FLAT, "the folders layout")?;
        return Ok(ImageLayout::Folders);
    }
    m.allow(&[LAYOUT], &[], "the flat layout")?;
    let (n, p) = m.required("labels_csv")?;
    let labels_csv = as_name(n, &p)?;
    check_member_path(&labels_csv, n.pos, &p)?;
    let (n, p) = m.required("file_column")?;
    let file_column = as_name(n, &p)?;
    let (n, p) = m.required("label_column")?;
    let label_column = as_name(n, &p)?;
    if label_column == file_column {
        return fail(
            DUPLICATE_NAME,
            "file_column and label_column must differ",
            n.pos,
            &p,
        );
    }
    Ok(ImageLayout::Flat {
        labels_csv,
        file_column,
        label_column,
    })
}

fn image_spec(
    top: &Map<'_>,
    input: &[u64],
    output: &[u64],
    limits: &DefinitionLimits,
) -> R<ImageSpec> {
    let (n, p) = top.required("image_size")?;
    let dims = as_seq(n, &p)?;
    let [h, w] = dims else {
        return fail(INVALID_VALUE, "image_size is [height, width]", n.pos, &p);
    };
    let mut size = [0u32; 2];
    for (slot, (node, i)) in size.iter_mut().zip([(h, 0), (w, 1)]) {
        let ip = index(&p, i);
        let v = as_u64(node, &ip)?;
        if v == 0 || v > u64::from(limits.max_image_side) {
            return fail(
                LIMIT_SHAPE,
                format!(
                    "an image side must be 1 to {} pixels; found {v}",
                    limits.max_image_side
                ),
                node.pos,
                &ip,
            );
        }
        *slot = u32::try_from(v).unwrap_or(u32::MAX);
    }
    let color_mode = match top.get("color_mode") {
        Some((n, p)) => match as_word(n, &p, COLOR_MODES)?.as_str() {
            "grayscale" => ColorMode::Grayscale,
            "rgba" => ColorMode::Rgba,
            _ => ColorMode::Rgb,
        },
        None => ColorMode::Rgb,
    };
    let layout = match top.get("layout") {
        Some((n, p)) => layout(n, &p)?,
        None => ImageLayout::Folders,
    };
    let (ln, lp) = top.required("label")?;
    let m = Map::new(ln, &lp)?;
    m.allow(
        &[IMAGE_LABEL],
        &["column", "feature", "dtype"],
        "an image label",
    )?;
    let (cn, cp) = m.required("classes")?;
    let classes = name_list(cn, &cp, limits, false, 2)?;
    let mut folded = HashSet::with_capacity(classes.len());
    let items = as_seq(cn, &cp)?;
    for (i, (class, item)) in classes.iter().zip(items).enumerate() {
        let ip = index(&cp, i);
        if matches!(layout, ImageLayout::Folders) {
            check_folder_name(class, item.pos, &ip)?;
        }
        // Folder names that differ only by case collide on case-insensitive
        // file systems and are refused by the ZIP validator.
        if !folded.insert(class.to_lowercase()) {
            return fail(
                DUPLICATE_NAME,
                format!("class {} differs from another only by case", short(class)),
                item.pos,
                &ip,
            );
        }
    }
    let expected = [
        u64::from(size[0]),
        u64::from(size[1]),
        color_mode.channels(),
    ];
    check_shape_equals(
        input,
        &expected,
        "input_shape",
        "image_size and the color_mode's channels",
        top,
    )?;
    check_class_output(output, classes.len(), top)?;
    Ok(ImageSpec {
        image_size: size,
        color_mode,
        layout,
        label: ImageLabel { classes },
    })
}

// ---- tfrecord -----------------------------------------------------------------------

fn dtype(node: &Node, path: &str) -> R<TfDtype> {
    Ok(match as_word(node, path, DTYPES)?.as_str() {
        "int64" => TfDtype::Int64,
        "float32" => TfDtype::Float32,
        "bytes" => TfDtype::Bytes,
        _ => TfDtype::String,
    })
}

fn tfrecord(
    top: &Map<'_>,
    input: &[u64],
    output: &[u64],
    limits: &DefinitionLimits,
) -> R<TfrecordSpec> {
    let (fnode, fpath) = top.required("features")?;
    let items = as_seq(fnode, &fpath)?;
    if items.len() > limits.max_features {
        return fail(
            LIMIT_ITEMS,
            format!("more than {} features", limits.max_features),
            fnode.pos,
            &fpath,
        );
    }
    let mut features = Vec::with_capacity(items.len());
    let mut positions = Vec::with_capacity(items.len());
    let mut names = HashSet::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = index(&fpath, i);
        let m = Map::new(item, &path)?;
        m.allow(&[FEATURE], &[], "a feature")?;
        let (n, p) = m.required("name")?;
        let name = as_name(n, &p)?;
        if !names.insert(name.clone()) {
            return fail(
                DUPLICATE_NAME,
                format!("feature {} is declared twice", short(&name)),
                n.pos,
                &p,
            );
        }
        let (dn, dp) = m.required("dtype")?;
        let dtype = dtype(dn, &dp)?;
        let (sn, sp) = m.required("shape")?;
        let shape = shape(sn, &sp, 0, limits)?;
        features.push(Feature { name, dtype, shape });
        positions.push((dn.pos, dp));
    }

    let (ln, lp) = top.required("label")?;
    let m = Map::new(ln, &lp)?;
    m.allow(&[TF_LABEL], &["column"], "a TFRecord label")?;
    let (n, p) = m.required("feature")?;
    let label_name = as_name(n, &p)?;
    let Some(label_feature) = features.iter().find(|f| f.name == label_name) else {
        return fail(
            LABEL_NOT_FOUND,
            format!(
                "label feature {} is not declared in features",
                short(&label_name)
            ),
            n.pos,
            &p,
        );
    };
    let (dn, dp) = m.required("dtype")?;
    let label_dtype = dtype(dn, &dp)?;
    if label_dtype != label_feature.dtype {
        return fail(
            LABEL_TYPE,
            format!(
                "label dtype {} differs from feature {}'s dtype {}",
                label_dtype.name(),
                short(&label_name),
                label_feature.dtype.name()
            ),
            dn.pos,
            &dp,
        );
    }
    let classes = match m.get("classes") {
        Some((cn, cp)) => Some((name_list(cn, &cp, limits, false, 2)?, cn.pos, cp)),
        None => None,
    };
    let n_classes = match (label_dtype, &classes) {
        (TfDtype::Float32, Some((_, pos, p))) => {
            return fail(
                CLASSES_MISMATCH,
                "classes do not apply to a float32 label",
                *pos,
                p,
            );
        }
        (TfDtype::Bytes | TfDtype::String, None) => {
            return fail(
                CLASSES_MISMATCH,
                "a bytes or string label needs its classes",
                dn.pos,
                &dp,
            );
        }
        (_, Some((c, _, _))) => Some(c.len()),
        (_, None) => None,
    };
    match n_classes {
        Some(k) => {
            if label_feature.elements() != 1 {
                return fail(
                    SHAPE_MISMATCH,
                    "a class label holds one value: its shape must be [] or [1]",
                    n.pos,
                    &p,
                );
            }
            check_class_output(output, k, top)?;
        }
        None => check_shape_equals(
            output,
            &[label_feature.elements()],
            "output_shape",
            "the label feature's element count",
            top,
        )?,
    }

    let flatten_features = top
        .get("flatten_features")
        .map(|(n, p)| as_bool(n, &p))
        .transpose()?
        .unwrap_or(true);
    let mut width: u64 = 0;
    let mut inputs = 0usize;
    for (f, (pos, p)) in features.iter().zip(&positions) {
        if f.name == label_name {
            continue;
        }
        if matches!(f.dtype, TfDtype::Bytes | TfDtype::String) {
            return fail(
                INVALID_VALUE,
                format!(
                    "feature {} is {}; only int64 and float32 features can be model inputs",
                    short(&f.name),
                    f.dtype.name()
                ),
                *pos,
                p,
            );
        }
        inputs = inputs.saturating_add(1);
        width = width.saturating_add(f.elements());
    }
    if inputs == 0 {
        return fail(
            SHAPE_MISMATCH,
            "no feature besides the label: the model has no input",
            fnode.pos,
            &fpath,
        );
    }
    if flatten_features {
        check_shape_equals(
            input,
            &[width],
            "input_shape",
            "the input features' element counts added up",
            top,
        )?;
    } else {
        let mut only = features.iter().filter(|f| f.name != label_name);
        match (only.next(), only.next()) {
            (Some(f), None) => {
                let expected = if f.shape.is_empty() {
                    vec![1]
                } else {
                    f.shape.clone()
                };
                check_shape_equals(
                    input,
                    &expected,
                    "input_shape",
                    "the one input feature's shape",
                    top,
                )?;
            }
            _ => {
                return fail(
                    SHAPE_MISMATCH,
                    "without flatten_features the model takes exactly one input feature",
                    fnode.pos,
                    &fpath,
                );
            }
        }
    }
    Ok(TfrecordSpec {
        features,
        label: TfLabel {
            feature: label_name,
            dtype: label_dtype,
            classes: classes.map(|(c, _, _)| c),
        },
        flatten_features,
    })
}

#[cfg(test)]
mod schema_tests {
    //! The JSON Schema in docs/schema names exactly the keys and words this
    //! validator allows.
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    const SCHEMA: &str = include_str!("../../../../docs/schema/definition.schema.json");

    fn keys(v: &Value) -> BTreeSet<String> {
        v["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties in {v}"))
            .keys()
            .cloned()
            .collect()
    }

    fn set(lists: &[&[&str]]) -> BTreeSet<String> {
        lists
            .iter()
            .flat_map(|l| l.iter().map(|s| (*s).to_owned()))
            .collect()
    }

    fn words(v: &Value) -> BTreeSet<String> {
        v["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("no enum in {v}"))
            .iter()
            .map(|w| w.as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn schema_keys_and_words_match_the_allow_lists() {
        let s: Value = serde_json::from_str(SCHEMA).unwrap();
        let d = &s["$defs"];
        assert_eq!(keys(&s), set(&[TOP_COMMON]));
        let per_type = |i: usize, own: &[&str]| {
            let then = &s["allOf"][i]["then"];
            let mut k = keys(then);
            k.remove("label");
            k.remove("preprocessing");
            k.remove("input_shape");
            assert_eq!(k, set(&[own]), "allOf[{i}]");
            then.clone()
        };
        let csv = per_type(0, TOP_CSV);
        let image = per_type(1, TOP_IMAGE);
        let tf = per_type(2, TOP_TFRECORD);
        assert_eq!(s["allOf"][0]["if"]["properties"]["type"]["const"], "csv");
        assert_eq!(s["allOf"][1]["if"]["properties"]["type"]["const"], "image");
        assert_eq!(
            s["allOf"][2]["if"]["properties"]["type"]["const"],
            "tfrecord"
        );

        assert_eq!(keys(&d["metadata"]), set(&[METADATA]));
        assert_eq!(keys(&d["split"]), set(&[SPLIT]));
        assert_eq!(keys(&d["preprocessing"]), set(&[PREPROCESSING]));
        assert_eq!(
            keys(&d["image_preprocessing"]),
            set(&[PREPROCESSING, PREPROCESSING_IMAGE])
        );
        assert_eq!(keys(&d["column"]), set(&[COLUMN]));
        assert_eq!(keys(&d["feature"]), set(&[FEATURE]));
        assert_eq!(
            keys(&csv["properties"]["label"]["oneOf"][1]),
            set(&[CSV_LABEL])
        );
        assert_eq!(keys(&image["properties"]["label"]), set(&[IMAGE_LABEL]));
        assert_eq!(keys(&tf["properties"]["label"]), set(&[TF_LABEL]));
        assert_eq!(
            keys(&image["properties"]["layout"]["oneOf"][2]),
            set(&[LAYOUT])
        );

        assert_eq!(words(&s["properties"]["type"]), set(&[DATASET_TYPES]));
        assert_eq!(
            words(&d["column"]["properties"]["type"]),
            set(&[COLUMN_TYPES])
        );
        assert_eq!(words(&d["dtype"]), set(&[DTYPES]));
        assert_eq!(words(&csv["properties"]["delimiter"]), set(&[DELIMITERS]));
        assert_eq!(
            words(&image["properties"]["color_mode"]),
            set(&[COLOR_MODES])
        );
        assert_eq!(
            words(&d["image_preprocessing"]["properties"]["resize"]),
            set(&[RESIZES])
        );
        assert_eq!(s["properties"]["version"]["const"], FORMAT_VERSION);

        // The array limits written in the schema are the production defaults.
        let l = DefinitionLimits::default();
        assert_eq!(csv["properties"]["columns"]["maxItems"], l.max_columns);
        assert_eq!(d["classes"]["maxItems"], l.max_values);
        assert_eq!(
            d["column"]["properties"]["values"]["maxItems"],
            l.max_values
        );
        assert_eq!(tf["properties"]["features"]["maxItems"], l.max_features);
        assert_eq!(d["model_shape"]["maxItems"], l.max_rank);
        assert_eq!(d["feature_shape"]["maxItems"], l.max_rank);
        assert_eq!(d["name"]["maxLength"], l.max_scalar_bytes);
        assert_eq!(
            image["properties"]["image_size"]["items"]["maximum"],
            l.max_image_side
        );
    }
}
