//! The allow-list walk over `config.json`.
//!
//! Keras rebuilds a model by handing every dict with a `class_name` to
//! `deserialize_keras_object`, which imports `module`, looks up
//! `class_name` (or a custom `registered_name`) and calls `from_config`;
//! strings in some positions (`activation`, `loss`, ...) are looked up by
//! name; and some layers read files named in their config. So the walk
//! visits every node of the document and accepts it only if:
//!
//! - every object node (`class_name` present) is an allow-listed
//!   `(module, class_name)` of the category its position expects, with no
//!   custom `registered_name`;
//! - every function reference and every looked-up string is on the list
//!   for its position;
//! - no key steers deserialization or carries a function, and no string
//!   looks like a file path or URL.
//!
//! All findings are collected (not just the first), each with the JSON
//! pointer of the offending node. Alongside, the walk records the model's
//! layer summary, its input shapes, and the weights each layer must have,
//! which `weights` cross-checks against `model.weights.h5`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::allowlist::{self, Category};
use super::json::{self, Json};
use super::params::{self, Shape, VarGroup};
use super::{KerasLimits, codes};
use crate::finding::{Finding, Location};

const MEMBER: &str = "config.json";

/// One layer of the model, as the config describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerSummary {
    /// The layer's `name`.
    pub name: String,
    /// The Keras class (`Dense`).
    pub class_name: String,
    /// JSON pointer of the layer in `config.json`.
    pub pointer: String,
    /// The HDF5 group Keras stores its variables under (`/layers/dense`),
    /// or `None` for a `Sequential` model's `InputLayer`, which has none.
    pub weights_group: Option<String>,
    /// Units, filters or embedding size, where the class has one.
    pub units: Option<u64>,
    /// Parameters computed from the config, if computable.
    pub params_from_config: Option<u64>,
    /// Name of the enclosing model.
    pub model: String,
    /// The variables the weights file must hold (not serialized: the
    /// verdict reports the checked result instead).
    #[serde(skip)]
    pub(crate) expected: Option<Vec<VarGroup>>,
    /// Whether Keras keeps this layer's vocabulary in
    /// `assets/<group>/vocabulary.txt` (an adapted lookup layer).
    #[serde(skip)]
    pub(crate) vocabulary_asset: bool,
}

/// A model input or output as `config.json` declares it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TensorSummary {
    /// The layer that holds it: the `InputLayer` of an input, the layer
    /// that computes an output.
    pub name: String,
    /// Element type: an input's `dtype`, an output layer's compute dtype
    /// (from its dtype policy, `mixed_float16` computes in `float16`).
    pub dtype: Option<String>,
    /// Shape (`null` for the batch dimension and other unknowns): an
    /// input's `batch_shape`; an output's only where the config determines
    /// it (a `Dense` layer: its input shape with the last dimension set to
    /// `units`).
    pub shape: Option<Vec<Option<u64>>>,
}

/// What `config.json` says about the model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModelSummary {
    /// `Sequential` or `Functional`.
    pub class_name: String,
    /// The model's `name`.
    pub name: String,
    /// Input shapes (`null` for the batch dimension and other unknowns).
    pub input_shapes: Vec<Vec<Option<u64>>>,
    /// Every layer, nested models' layers included, in config order.
    pub layers: Vec<LayerSummary>,
    /// Whether a `compile_config` is present.
    pub compiled: bool,
    /// The top-level model's inputs, in layer order.
    pub inputs: Vec<TensorSummary>,
    /// The top-level model's outputs: a Functional model's
    /// `output_layers`, a Sequential model's last layer.
    pub outputs: Vec<TensorSummary>,
}

/// The result of scanning `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConfigScan {
    /// Every allow-list violation, each with its JSON pointer. Empty means
    /// the config passed.
    pub findings: Vec<Finding>,
    /// The model's summary (best effort even when there are findings).
    pub model: ModelSummary,
}

impl ConfigScan {
    /// Whether the config passed the allow-list.
    pub fn accepted(&self) -> bool {
        self.findings.is_empty()
    }
}

/// What position a value is in, and so what it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A plain config value: objects are not expected here.
    Any,
    /// An object or name of this category.
    Cat(Category),
    /// A dtype name or a `DTypePolicy`.
    DType,
    /// A number or a learning-rate schedule.
    LearningRate,
}

impl Slot {
    fn describe(self) -> &'static str {
        match self {
            Slot::Any => "plain config value",
            Slot::Cat(c) => c.describe(),
            Slot::DType => "dtype",
            Slot::LearningRate => "learning rate",
        }
    }
}

/// Keys that steer how Keras deserializes, never part of a layer's
/// configuration. Keras's `from_config` takes `custom_objects` and
/// `safe_mode` as Python arguments; a config key of the same name only
/// exists to reach a constructor that forwards `**kwargs` into a
/// deserializer (CVE-2025-9906 toggled safe mode from inside the config).
/// `__passive_serialization__` switches the legacy (Keras 2) JSON decoder
/// into deserializing nested objects.
const CONTROL_KEYS: &[&str] = &[
    "safe_mode",
    "safe_mode_saving",
    "custom_objects",
    "custom_objects_scope_dict",
    "module_objects",
    "printable_module_name",
    "__passive_serialization__",
    "enable_unsafe_deserialization",
    "unsafe_deserialization",
];

/// Keys that carry a callable: a `Lambda`'s `function` (marshalled
/// bytecode or a function reference, CVE-2024-3660 / CVE-2025-8747), its
/// `function_type` / `output_shape_type` / `module` in the legacy format,
/// `arguments` passed to it, a wrapped loss or metric `fn`.
const FUNCTION_KEYS: &[&str] = &[
    "function",
    "function_type",
    "output_shape_type",
    "output_shape_module",
    "module",
    "registered_name",
    "fn",
    "arguments",
];

/// Keys that name files or endpoints: `TFSMLayer` (`filepath`,
/// `call_endpoint`, CVE-2026-1462) and `get_file` arguments (`origin`,
/// `fname`, `cache_dir`, `cache_subdir`, CVE-2025-8747).
const PATH_KEYS: &[&str] = &[
    "filepath",
    "file_path",
    "path",
    "url",
    "origin",
    "fname",
    "cache_dir",
    "cache_subdir",
    "extract",
    "call_endpoint",
    "call_training_endpoint",
    "directory",
];

/// Keys an object node (a dict with `class_name`) may have.
const OBJECT_KEYS: &[&str] = &[
    "module",
    "class_name",
    "config",
    "registered_name",
    "build_config",
    "compile_config",
    "shared_object_id",
];

/// Keys a layer entry of a Functional model's `layers` list adds.
const FUNCTIONAL_LAYER_KEYS: &[&str] = &["name", "inbound_nodes"];

const SEQUENTIAL_KEYS: &[&str] = &["name", "trainable", "dtype", "layers", "build_input_shape"];
const FUNCTIONAL_KEYS: &[&str] = &[
    "name",
    "trainable",
    "layers",
    "input_layers",
    "output_layers",
];
const COMPILE_KEYS: &[&str] = &[
    "optimizer",
    "loss",
    "loss_weights",
    "metrics",
    "weighted_metrics",
    "run_eagerly",
    "steps_per_execution",
    "jit_compile",
    "auto_scale_loss",
];

/// Whether a string looks like a file path or URL.
///
/// Lookup layers read a string `vocabulary` with `tf.io.gfile`, which
/// opens local files and `gs://`, `s3://`, `hdfs://`, `http(s)://` URLs
/// (CVE-2025-12058); layer names were used as paths by Keras's asset store
/// (CVE-2026-12479). No allow-listed layer needs a path, so any string
/// shaped like one is refused, wherever it is.
pub(crate) fn looks_like_path_or_url(s: &str) -> bool {
    let lower = s.to_ascii_lowercase();
    let b = s.as_bytes();
    s.starts_with('/')
        || s.starts_with('\\')
        || s.starts_with('~')
        || s.starts_with("./")
        || s.starts_with(".\\")
        || s == "."
        || s == ".."
        || s.starts_with("../")
        || s.starts_with("..\\")
        || s.contains("/../")
        || s.contains("\\..\\")
        || s.ends_with("/..")
        || s.ends_with("\\..")
        || s.contains("://")
        || s.contains('\0')
        || ["file:", "http:", "https:", "ftp:", "gs:", "s3:", "hdfs:", "data:"]
            .iter()
            .any(|scheme| lower.starts_with(scheme))
        // Windows drive paths: `C:\`, `C:/`, `C:`.
        || (b.len() >= 2
            && b.first().is_some_and(u8::is_ascii_alphabetic)
            && b.get(1) == Some(&b':')
            && (b.len() == 2 || matches!(b.get(2), Some(b'\\' | b'/'))))
}

/// Keras's `to_snake_case`, which names the HDF5 group of each layer:
/// drop non-word characters, then `(.)([A-Z][a-z]+)` -> `\1_\2`, then
/// `([a-z])([A-Z])` -> `\1_\2`, then lowercase.
pub(crate) fn snake_case(name: &str) -> String {
    let word: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let lower = |i: usize| word.get(i).is_some_and(char::is_ascii_lowercase);
    let upper = |i: usize| word.get(i).is_some_and(char::is_ascii_uppercase);
    // Pass 1: a match starts at `s` (the `(.)`) no earlier than where the
    // previous match ended; `_` goes before the capital at `s + 1`.
    let mut pass1 = Vec::with_capacity(word.len() + 4);
    let mut next_start = 0;
    for (i, &c) in word.iter().enumerate() {
        if i > next_start && upper(i) && lower(i + 1) {
            pass1.push('_');
            let mut end = i + 1;
            while lower(end) {
                end += 1;
            }
            next_start = end;
        }
        pass1.push(c);
    }
    // Pass 2.
    let mut out = String::with_capacity(pass1.len() + 4);
    for (j, &c) in pass1.iter().enumerate() {
        out.push(c.to_ascii_lowercase());
        if c.is_ascii_lowercase() && pass1.get(j + 1).is_some_and(char::is_ascii_uppercase) {
            out.push('_');
        }
    }
    out
}

/// One class using a `shared_object_id`: ((module, class_name), pointer).
type SharedUse = ((String, String), String);

struct Walk<'l> {
    limits: &'l KerasLimits,
    findings: Vec<Finding>,
    /// `shared_object_id` -> each distinct (module, class_name) using it,
    /// with the pointer of its first use.
    shared: BTreeMap<String, Vec<SharedUse>>,
    layers: Vec<LayerSummary>,
    /// The top-level model's layers as tensors, in config order, with
    /// whether each is an `InputLayer`.
    top: Vec<(TensorSummary, bool)>,
    /// Layer names in the top-level model's `output_layers`.
    output_refs: Vec<String>,
}

/// Scans `config.json`.
///
/// Returns an error only when the document cannot be walked at all (too
/// large, not JSON, duplicate keys, too deep or too many values); every
/// allow-list violation is a finding in the returned [`ConfigScan`].
pub fn scan_config(config_json: &[u8], limits: &KerasLimits) -> crate::Result<ConfigScan> {
    if config_json.len() as u64 > limits.max_config_bytes {
        return Err(Finding::new(
            codes::CONFIG_TOO_LARGE,
            format!(
                "config.json is {} bytes, over the limit of {}",
                config_json.len(),
                limits.max_config_bytes
            ),
            Location::Entry {
                name: MEMBER.to_owned(),
            },
        )
        .into());
    }
    let root =
        json::parse(config_json, limits.max_json_depth, limits.max_json_nodes).map_err(|e| {
            Finding::new(
                e.code,
                format!("config.json: {}", e.message),
                Location::Document {
                    line: Some(e.line),
                    column: Some(e.column),
                    path: String::new(),
                },
            )
        })?;
    let mut walk = Walk {
        limits,
        findings: Vec::new(),
        shared: BTreeMap::new(),
        layers: Vec::new(),
        top: Vec::new(),
        output_refs: Vec::new(),
    };
    let mut model = ModelSummary::default();
    match &root {
        Json::Obj(_) if root.get("class_name").is_some() => {
            if let Some(resolved) = walk.object(&root, "", Slot::Cat(Category::Model), false)
                && resolved.category == Category::Model
            {
                let name = name_of(root.get("config"));
                model.class_name = resolved.class_name.clone();
                model.name.clone_from(&name);
                model.compiled = root.get("compile_config").is_some();
                if let Some(cfg) = root.get("config") {
                    model.input_shapes =
                        walk.model(&resolved.class_name, cfg, "/config", "", &name, 0);
                }
                model.inputs = walk
                    .top
                    .iter()
                    .filter(|(_, input)| *input)
                    .map(|(t, _)| t.clone())
                    .collect();
                model.outputs = if resolved.class_name == "Functional" {
                    walk.output_refs
                        .iter()
                        .filter_map(|r| walk.top.iter().find(|(t, _)| &t.name == r))
                        .map(|(t, _)| t.clone())
                        .collect()
                } else {
                    walk.top
                        .iter()
                        .rev()
                        .find(|(_, input)| !*input)
                        .map(|(t, _)| t.clone())
                        .into_iter()
                        .collect()
                };
            }
        }
        other => walk.push(
            codes::INVALID_CONFIG,
            format!(
                "the top level must be a serialized Keras model object, not {}",
                other.type_name()
            ),
            "",
        ),
    }
    walk.check_shared();
    model.layers = walk.layers;
    Ok(ConfigScan {
        findings: walk.findings,
        model,
    })
}

fn name_of(cfg: Option<&Json>) -> String {
    cfg.and_then(|c| c.get("name"))
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// An object node that resolved to an allow-listed class.
struct Resolved {
    category: Category,
    class_name: String,
}

impl Walk<'_> {
    /// `shared_object_id` makes Keras reuse an object deserialized earlier;
    /// every use of one id must be the same class, or a layer could stand
    /// in for a dtype policy (or anything else). One finding per id, at the
    /// first use of a second class.
    fn check_shared(&mut self) {
        let conflicts: Vec<(String, String, String)> = self
            .shared
            .iter()
            .filter_map(|(id, uses)| match uses.as_slice() {
                [(first, _), (second, pointer), ..] => Some((
                    pointer.clone(),
                    id.clone(),
                    format!("{}.{} and {}.{}", first.0, first.1, second.0, second.1),
                )),
                _ => None,
            })
            .collect();
        for (pointer, id, classes) in conflicts {
            self.push(
                codes::SHARED_OBJECT_MISMATCH,
                format!("shared_object_id {id} is used by different classes: {classes}"),
                &pointer,
            );
        }
    }

    fn push(&mut self, code: &'static str, message: impl Into<String>, pointer: &str) {
        // Bounded: a hostile config could otherwise produce a finding per
        // node. The limit on JSON values already bounds it; this keeps
        // the verdict readable.
        if self.findings.len() < self.limits.max_findings {
            self.findings.push(Finding::new(
                code,
                message,
                Location::Pointer {
                    member: MEMBER.to_owned(),
                    pointer: pointer.to_owned(),
                },
            ));
        }
    }

    /// Checks a key of a config dict; false if it was refused.
    fn key_ok(&mut self, key: &str, pointer: &str) -> bool {
        if CONTROL_KEYS.contains(&key) {
            self.push(
                codes::DESERIALIZATION_CONTROL_KEY,
                format!("key {key:?} controls deserialization or safe mode"),
                pointer,
            );
            return false;
        }
        if FUNCTION_KEYS.contains(&key) {
            self.push(
                codes::FUNCTION_VALUE,
                format!("key {key:?} carries a function or a deserializable reference"),
                pointer,
            );
            return false;
        }
        if PATH_KEYS.contains(&key) {
            self.push(
                codes::FILE_PATH_IN_CONFIG,
                format!("key {key:?} names a file, URL or endpoint"),
                pointer,
            );
            return false;
        }
        true
    }

    fn value(&mut self, v: &Json, pointer: &str, slot: Slot) {
        match v {
            Json::Str(s) => self.string(s, pointer, slot),
            Json::Obj(entries) => {
                if v.get("class_name").is_some() {
                    self.object(v, pointer, slot, false);
                } else {
                    self.plain_dict(entries, pointer, slot);
                }
            }
            Json::Arr(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, &json::push_pointer(pointer, &i.to_string()), slot);
                }
            }
            Json::Float(_) | Json::Int(_) | Json::Bool(_) | Json::Null => {}
        }
    }

    fn plain_dict(&mut self, entries: &[(String, Json)], pointer: &str, slot: Slot) {
        for (k, v) in entries {
            let p = json::push_pointer(pointer, k);
            if !self.key_ok(k, &p) {
                continue;
            }
            let child = match slot {
                // `loss={"out_a": "mse"}`: the dict is keyed by outputs.
                Slot::Cat(Category::Loss | Category::Metric) => slot,
                _ => key_slot(k),
            };
            // A lookup layer treats a *string* vocabulary as a file to read
            // (CVE-2025-12058), whatever the string looks like.
            if matches!(k.as_str(), "vocabulary" | "idf_weights") && matches!(v, Json::Str(_)) {
                self.push(
                    codes::FILE_PATH_IN_CONFIG,
                    format!("{k:?} is a string, which Keras reads as a file path"),
                    &p,
                );
                continue;
            }
            self.value(v, &p, child);
        }
    }

    fn string(&mut self, s: &str, pointer: &str, slot: Slot) {
        if looks_like_path_or_url(s) {
            self.push(
                codes::FILE_PATH_IN_CONFIG,
                format!("string {:?} looks like a file path or URL", truncate(s)),
                pointer,
            );
            return;
        }
        match slot {
            Slot::Any => {}
            Slot::Cat(c) => {
                if !allowlist::string_allowed(c, s) {
                    let code = match c {
                        Category::Activation | Category::Loss | Category::Metric => {
                            codes::DISALLOWED_FUNCTION
                        }
                        Category::DTypePolicy => codes::DISALLOWED_DTYPE,
                        _ => codes::DISALLOWED_OBJECT,
                    };
                    self.push(
                        code,
                        format!("{:?} is not an allow-listed {}", truncate(s), c.describe()),
                        pointer,
                    );
                }
            }
            Slot::DType => {
                if !allowlist::dtype_allowed(s) && !allowlist::policy_allowed(s) {
                    self.push(
                        codes::DISALLOWED_DTYPE,
                        format!("dtype {:?} is not on the allow-list", truncate(s)),
                        pointer,
                    );
                }
            }
            Slot::LearningRate => self.push(
                codes::INVALID_CONFIG,
                "a learning rate must be a number or a schedule object",
                pointer,
            ),
        }
    }

    /// Checks an object node; returns its class if it is allow-listed and
    /// fits the slot. `functional_layer` allows the extra keys of a layer
    /// entry in a Functional model.
    fn object(
        &mut self,
        v: &Json,
        pointer: &str,
        slot: Slot,
        functional_layer: bool,
    ) -> Option<Resolved> {
        let Json::Obj(entries) = v else { return None };
        let class_name = match v.get("class_name") {
            Some(Json::Str(s)) => s.clone(),
            _ => {
                self.push(
                    codes::INVALID_CONFIG,
                    "\"class_name\" must be a string",
                    &json::push_pointer(pointer, "class_name"),
                );
                return None;
            }
        };
        // Keys of the object node itself.
        let mut keys_ok = true;
        for (k, _) in entries {
            let allowed = OBJECT_KEYS.contains(&k.as_str())
                || (functional_layer && FUNCTIONAL_LAYER_KEYS.contains(&k.as_str()));
            if !allowed {
                let p = json::push_pointer(pointer, k);
                if self.key_ok(k, &p) {
                    self.push(
                        codes::UNEXPECTED_KEY,
                        format!("key {k:?} is not part of a serialized Keras object"),
                        &p,
                    );
                }
                keys_ok = false;
            }
        }

        // Python lambdas: marshalled bytecode run by `func_load` (CVE-2024-3660).
        if class_name == "__lambda__" {
            self.push(
                codes::LAMBDA,
                "a serialized Python lambda (bytecode)",
                pointer,
            );
            return None;
        }
        if class_name == "function" {
            self.function_ref(v, pointer, slot);
            return None;
        }
        // Older serializers' function-typed values (`__function__`): a
        // function by reference or bytecode, never a modeling object.
        if class_name == "__function__" {
            self.push(
                codes::FUNCTION_VALUE,
                "a function-typed value (__function__)",
                pointer,
            );
            return None;
        }
        // Other special forms (`__typespec__` imports `module`; `__numpy__`,
        // `__tensor__`, `__bytes__`, `__slice__`, `__ellipsis__`) are not
        // written by the allow-listed layers outside layer calls.
        if class_name.starts_with("__") {
            self.push(
                codes::DISALLOWED_OBJECT,
                format!(
                    "special object {:?} is not allowed here",
                    truncate(&class_name)
                ),
                pointer,
            );
            return None;
        }
        if class_name == "Lambda" {
            self.push(
                codes::LAMBDA,
                "Lambda layers run arbitrary Python code",
                pointer,
            );
            self.walk_unknown_config(v, pointer);
            return None;
        }
        if class_name == "TFSMLayer" {
            self.push(
                codes::TFSM_LAYER,
                "TFSMLayer loads and runs an external SavedModel",
                pointer,
            );
            self.walk_unknown_config(v, pointer);
            return None;
        }

        let module = match v.get("module") {
            Some(Json::Str(m)) => m.clone(),
            None | Some(Json::Null) => {
                // Without `module`, Functional models fall back to the
                // legacy (Keras 2) deserializer, and Keras resolves the
                // class by name among custom objects.
                self.push(
                    codes::DISALLOWED_MODULE,
                    format!("{:?} has no module", truncate(&class_name)),
                    pointer,
                );
                self.walk_unknown_config(v, pointer);
                return None;
            }
            Some(_) => {
                self.push(
                    codes::INVALID_CONFIG,
                    "\"module\" must be a string",
                    &json::push_pointer(pointer, "module"),
                );
                return None;
            }
        };
        // CVE-2025-1550: `module`/`class_name` name any importable callable
        // (`builtins.exec`, `os.system`, `subprocess.Popen`); even under
        // `keras.*`, Keras imports the module before checking the class.
        if !allowlist::module_allowed(&module) {
            self.push(
                codes::DISALLOWED_MODULE,
                format!(
                    "module {:?} (class {:?}) is outside Keras's allow-listed namespaces",
                    truncate(&module),
                    truncate(&class_name)
                ),
                &json::push_pointer(pointer, "module"),
            );
            self.walk_unknown_config(v, pointer);
            return None;
        }
        let Some(category) = allowlist::class_category(&module, &class_name) else {
            let code = if module == "keras.layers" || slot == Slot::Cat(Category::Layer) {
                codes::DISALLOWED_LAYER
            } else {
                codes::DISALLOWED_OBJECT
            };
            self.push(
                code,
                format!(
                    "{}.{} is not on the allow-list",
                    truncate(&module),
                    truncate(&class_name)
                ),
                pointer,
            );
            self.walk_unknown_config(v, pointer);
            return None;
        };
        let fits = match slot {
            Slot::Cat(Category::Layer) => {
                matches!(category, Category::Layer | Category::Model | Category::Op)
            }
            Slot::Cat(want) => want == category,
            Slot::DType => category == Category::DTypePolicy,
            Slot::LearningRate => category == Category::Schedule,
            Slot::Any => false,
        };
        if !fits {
            self.push(
                codes::DISALLOWED_OBJECT,
                format!(
                    "a {} ({}) where a {} is expected",
                    category.describe(),
                    class_name,
                    slot.describe()
                ),
                pointer,
            );
            self.walk_unknown_config(v, pointer);
            return None;
        }

        // A `registered_name` other than the class name resolves through
        // the custom-object registry before the module is consulted
        // (`package>Name`), i.e. to code that is not the built-in.
        match v.get("registered_name") {
            None | Some(Json::Null) => {}
            Some(Json::Str(r)) if *r == class_name => {}
            Some(other) => self.push(
                codes::REGISTERED_NAME_MISMATCH,
                format!(
                    "registered_name {} does not match the built-in {class_name:?}",
                    describe_value(other)
                ),
                &json::push_pointer(pointer, "registered_name"),
            ),
        }

        // Recorded here, checked once the whole document is walked.
        if let Some(id) = v.get("shared_object_id") {
            let p = json::push_pointer(pointer, "shared_object_id");
            match id {
                Json::Int(n) => {
                    let uses = self.shared.entry(n.to_string()).or_default();
                    let this = (module.clone(), class_name.clone());
                    if !uses.iter().any(|(c, _)| *c == this) {
                        uses.push((this, p.clone()));
                    }
                }
                _ => self.push(
                    codes::INVALID_CONFIG,
                    "shared_object_id must be an integer",
                    &p,
                ),
            }
        }

        if let Some(bc) = v.get("build_config") {
            self.build_config(bc, &json::push_pointer(pointer, "build_config"));
        }
        if let Some(cc) = v.get("compile_config") {
            let p = json::push_pointer(pointer, "compile_config");
            if category == Category::Model {
                self.compile_config(cc, &p);
            } else {
                self.push(
                    codes::UNEXPECTED_KEY,
                    "compile_config on an object that is not a model",
                    &p,
                );
            }
        }

        let cfg_ptr = json::push_pointer(pointer, "config");
        match v.get("config") {
            Some(Json::Obj(cfg)) => match category {
                // Models walk their own config (layers, inputs).
                Category::Model => {}
                Category::DTypePolicy => self.dtype_policy(cfg, &cfg_ptr),
                _ => self.plain_dict(cfg, &cfg_ptr, Slot::Any),
            },
            Some(_) => self.push(
                codes::INVALID_CONFIG,
                "\"config\" must be an object",
                &cfg_ptr,
            ),
            None => self.push(codes::INVALID_CONFIG, "object without \"config\"", pointer),
        }
        if !keys_ok {
            return None;
        }
        Some(Resolved {
            category,
            class_name,
        })
    }

    /// After refusing an object, still look inside its config for other
    /// findings (a path, a nested lambda), so one upload reports them all.
    fn walk_unknown_config(&mut self, v: &Json, pointer: &str) {
        if let Some(Json::Obj(cfg)) = v.get("config") {
            self.plain_dict(cfg, &json::push_pointer(pointer, "config"), Slot::Any);
        }
    }

    /// `{"module": m, "class_name": "function", "config": name}`: Keras
    /// imports `m` and calls `m.name` later (an activation, a loss). This
    /// is how CVE-2025-8747 reached `keras.utils.get_file` and CVE-2025-9906
    /// `keras.config.enable_unsafe_deserialization`.
    fn function_ref(&mut self, v: &Json, pointer: &str, slot: Slot) {
        let module = v.get("module").and_then(Json::as_str).unwrap_or("");
        let name = v.get("config").and_then(Json::as_str).unwrap_or("");
        let allowed = match slot {
            Slot::Cat(c @ (Category::Activation | Category::Loss | Category::Metric)) => {
                allowlist::function_allowed(module, name, c)
            }
            _ => false,
        };
        if !allowed {
            self.push(
                codes::DISALLOWED_FUNCTION,
                format!(
                    "function {}.{} is not an allow-listed {}",
                    truncate(module),
                    truncate(name),
                    slot.describe()
                ),
                pointer,
            );
            return;
        }
        match v.get("registered_name") {
            None | Some(Json::Null) => {}
            Some(Json::Str(r)) if r == name => {}
            Some(other) => self.push(
                codes::REGISTERED_NAME_MISMATCH,
                format!(
                    "registered_name {} does not match the built-in function {name:?}",
                    describe_value(other)
                ),
                &json::push_pointer(pointer, "registered_name"),
            ),
        }
    }

    fn dtype_policy(&mut self, cfg: &[(String, Json)], pointer: &str) {
        for (k, v) in cfg {
            let p = json::push_pointer(pointer, k);
            match (k.as_str(), v) {
                ("name", Json::Str(s)) if allowlist::policy_allowed(s) => {}
                ("name", _) => self.push(
                    codes::DISALLOWED_DTYPE,
                    format!(
                        "dtype policy {} is not on the allow-list",
                        describe_value(v)
                    ),
                    &p,
                ),
                _ => {
                    if self.key_ok(k, &p) {
                        self.push(
                            codes::UNEXPECTED_KEY,
                            format!("key {k:?} in a DTypePolicy"),
                            &p,
                        );
                    }
                }
            }
        }
    }

    fn build_config(&mut self, bc: &Json, pointer: &str) {
        let Json::Obj(entries) = bc else {
            self.push(
                codes::INVALID_CONFIG,
                "build_config must be an object",
                pointer,
            );
            return;
        };
        for (k, v) in entries {
            let p = json::push_pointer(pointer, k);
            match k.as_str() {
                "input_shape" => {
                    if !shape_tree(v, 0) {
                        self.push(codes::INVALID_CONFIG, "input_shape is not a shape", &p);
                    }
                }
                "shapes_dict" => match v {
                    Json::Obj(shapes) if shapes.iter().all(|(_, s)| shape_tree(s, 0)) => {}
                    _ => self.push(
                        codes::INVALID_CONFIG,
                        "shapes_dict is not a dict of shapes",
                        &p,
                    ),
                },
                _ => {
                    if self.key_ok(k, &p) {
                        self.push(
                            codes::UNEXPECTED_KEY,
                            format!("key {k:?} in build_config"),
                            &p,
                        );
                    }
                }
            }
        }
    }

    fn compile_config(&mut self, cc: &Json, pointer: &str) {
        let Json::Obj(entries) = cc else {
            self.push(
                codes::INVALID_CONFIG,
                "compile_config must be an object",
                pointer,
            );
            return;
        };
        for (k, v) in entries {
            let p = json::push_pointer(pointer, k);
            if !COMPILE_KEYS.contains(&k.as_str()) {
                if self.key_ok(k, &p) {
                    self.push(
                        codes::UNEXPECTED_KEY,
                        format!("key {k:?} in compile_config"),
                        &p,
                    );
                }
                continue;
            }
            self.value(v, &p, key_slot(k));
        }
    }

    /// Walks a model's config; returns its input shapes.
    fn model(
        &mut self,
        class_name: &str,
        cfg: &Json,
        pointer: &str,
        h5_prefix: &str,
        model_name: &str,
        depth: usize,
    ) -> Vec<Shape> {
        let Json::Obj(entries) = cfg else {
            return Vec::new();
        };
        let functional = class_name == "Functional";
        let allowed = if functional {
            FUNCTIONAL_KEYS
        } else {
            SEQUENTIAL_KEYS
        };
        let mut inputs = Vec::new();
        let mut layer_names = HashSet::new();
        // Layers first, whatever the key order, so that `input_layers` and
        // `output_layers` can be checked against them.
        for (k, v) in entries {
            if k != "layers" {
                continue;
            }
            let p = json::push_pointer(pointer, k);
            let Json::Arr(layers) = v else {
                self.push(codes::INVALID_CONFIG, "layers must be an array", &p);
                continue;
            };
            let mut used: HashMap<String, u32> = HashMap::new();
            for (i, layer) in layers.iter().enumerate() {
                let lp = json::push_pointer(&p, &i.to_string());
                if let Some(shape) = self.layer(
                    layer,
                    &lp,
                    functional,
                    h5_prefix,
                    model_name,
                    depth,
                    &mut used,
                    &mut layer_names,
                ) {
                    inputs.push(shape);
                }
            }
        }
        for (k, v) in entries {
            let p = json::push_pointer(pointer, k);
            if !allowed.contains(&k.as_str()) {
                if self.key_ok(k, &p) {
                    self.push(
                        codes::UNEXPECTED_KEY,
                        format!("key {k:?} in a {class_name} config"),
                        &p,
                    );
                }
                continue;
            }
            match (k.as_str(), v) {
                ("layers", _) => {}
                ("input_layers" | "output_layers", refs) => {
                    if k == "output_layers" && depth == 0 {
                        collect_refs(refs, &mut self.output_refs, 0);
                    }
                    if !self.tensor_refs(refs, &layer_names, 0) {
                        self.push(
                            codes::INVALID_CONFIG,
                            format!(
                                "{k} must reference layers of this model as [name, node, tensor]"
                            ),
                            &p,
                        );
                    }
                }
                ("build_input_shape", s) => {
                    if !shape_tree(s, 0) {
                        self.push(
                            codes::INVALID_CONFIG,
                            "build_input_shape is not a shape",
                            &p,
                        );
                    } else if inputs.is_empty()
                        && let Some(shape) = params::parse_shape(s)
                    {
                        inputs.push(shape);
                    }
                }
                (key, other) => self.value(other, &p, key_slot(key)),
            }
        }
        inputs
    }

    /// One entry of a model's `layers`; returns the input shape if the
    /// entry is an `InputLayer`.
    #[expect(
        clippy::too_many_arguments,
        reason = "walk state threaded through one recursion"
    )]
    fn layer(
        &mut self,
        entry: &Json,
        pointer: &str,
        functional: bool,
        h5_prefix: &str,
        model_name: &str,
        depth: usize,
        used: &mut HashMap<String, u32>,
        names: &mut HashSet<String>,
    ) -> Option<Shape> {
        if self.layers.len() >= self.limits.max_layers {
            if self.layers.len() == self.limits.max_layers {
                self.push(
                    codes::CONFIG_TOO_COMPLEX,
                    format!("more than {} layers", self.limits.max_layers),
                    pointer,
                );
                // Mark the limit as reported.
                self.layers.push(LayerSummary {
                    name: String::new(),
                    class_name: String::new(),
                    pointer: pointer.to_owned(),
                    weights_group: None,
                    units: None,
                    params_from_config: None,
                    model: model_name.to_owned(),
                    expected: None,
                    vocabulary_asset: false,
                });
            }
            return None;
        }
        if !matches!(entry, Json::Obj(_)) || entry.get("class_name").is_none() {
            self.push(
                codes::INVALID_CONFIG,
                "a layer must be a serialized Keras object",
                pointer,
            );
            return None;
        }
        // The name is registered even if the layer is refused, so that
        // later references to it do not add noise to the findings.
        let name = name_of(entry.get("config"));
        let first_use = names.insert(name.clone());
        let resolved = self.object(entry, pointer, Slot::Cat(Category::Layer), functional)?;
        let cfg = entry.get("config")?;
        if name.is_empty() {
            self.push(
                codes::INVALID_CONFIG,
                "layer without a name",
                &json::push_pointer(pointer, "config"),
            );
        }
        if functional {
            // The entry's `name` is what `inbound_nodes` refer to; it must
            // be the layer's own name.
            if entry.get("name").and_then(Json::as_str) != Some(name.as_str()) {
                self.push(
                    codes::INVALID_CONFIG,
                    "the layer entry's name differs from its config name",
                    &json::push_pointer(pointer, "name"),
                );
            }
            match entry.get("inbound_nodes") {
                Some(Json::Arr(nodes)) => {
                    for (i, node) in nodes.iter().enumerate() {
                        let np = json::push_pointer(
                            &json::push_pointer(pointer, "inbound_nodes"),
                            &i.to_string(),
                        );
                        self.inbound_node(node, &np, names);
                    }
                }
                _ => self.push(
                    codes::INVALID_CONFIG,
                    "a Functional layer entry needs an inbound_nodes array",
                    pointer,
                ),
            }
        }
        if !first_use {
            self.push(
                codes::INVALID_CONFIG,
                format!("duplicate layer name {name:?}"),
                pointer,
            );
        }
        let class_name = resolved.class_name;
        // A Sequential model does not save its InputLayer's (empty) state.
        let is_input = class_name == "InputLayer";
        // Operations are not layers: Keras saves no state for them. Nor
        // does a Sequential model for its InputLayer.
        let weights_group = if resolved.category == Category::Op || (is_input && !functional) {
            None
        } else {
            let key = snake_case(&class_name);
            let n = used.entry(key.clone()).or_insert(0);
            let unique = if *n == 0 {
                key.clone()
            } else {
                format!("{key}_{n}")
            };
            *n += 1;
            Some(format!("{h5_prefix}/layers/{unique}"))
        };
        let input_shape = entry
            .get("build_config")
            .and_then(|b| b.get("input_shape"))
            .and_then(params::parse_shape);
        let expected = if resolved.category == Category::Model {
            None
        } else {
            params::expected_vars(&class_name, cfg, input_shape.as_ref())
        };
        let params_from_config = expected.as_ref().and_then(|groups| {
            groups
                .iter()
                .flat_map(|g| g.shapes.iter())
                .try_fold(0u64, |acc, s| acc.checked_add(params::elements(s)?))
        });
        let units = params::output_units(&class_name, cfg);
        if depth == 0 {
            // The layer's input shape: its build_config's, or in a
            // Sequential model the previous layer's output.
            let in_shape = input_shape.clone().or_else(|| {
                (!functional)
                    .then(|| self.top.last().and_then(|(t, _)| t.shape.clone()))
                    .flatten()
            });
            let shape = if is_input {
                cfg.get("batch_shape").and_then(params::parse_shape)
            } else if class_name == "Dense" {
                // Dense maps the last dimension to `units` and keeps the rest.
                in_shape.zip(units).and_then(|(s, u)| {
                    let (_, rest) = s.split_last()?;
                    Some(rest.iter().copied().chain([Some(u)]).collect())
                })
            } else if SHAPE_PRESERVING.contains(&class_name.as_str()) {
                in_shape
            } else {
                None
            };
            self.top.push((
                TensorSummary {
                    name: name.clone(),
                    dtype: cfg.get("dtype").and_then(compute_dtype),
                    shape,
                },
                is_input,
            ));
        }
        self.layers.push(LayerSummary {
            name: name.clone(),
            class_name: class_name.clone(),
            pointer: pointer.to_owned(),
            weights_group: weights_group.clone(),
            units,
            params_from_config,
            model: model_name.to_owned(),
            expected,
            vocabulary_asset: matches!(class_name.as_str(), "StringLookup" | "IntegerLookup")
                && matches!(cfg.get("vocabulary"), None | Some(Json::Null)),
        });
        if resolved.category == Category::Model {
            if depth >= self.limits.max_model_nesting {
                self.push(codes::CONFIG_TOO_COMPLEX, "models nest too deep", pointer);
            } else if let Some(group) = &weights_group {
                self.model(
                    &class_name,
                    cfg,
                    &json::push_pointer(pointer, "config"),
                    group,
                    &name,
                    depth + 1,
                );
            }
        }
        if is_input {
            let shape = cfg.get("batch_shape").and_then(params::parse_shape);
            if shape.is_none() {
                self.push(
                    codes::INVALID_CONFIG,
                    "InputLayer without a batch_shape",
                    &json::push_pointer(pointer, "config"),
                );
            }
            return shape;
        }
        None
    }

    /// One call of a layer in a Functional model:
    /// `{"args": [...], "kwargs": {...}}` with `__keras_tensor__` inputs.
    fn inbound_node(&mut self, node: &Json, pointer: &str, earlier: &HashSet<String>) {
        let Json::Obj(entries) = node else {
            // The legacy list form goes through Keras 2's node handling.
            self.push(
                codes::INVALID_CONFIG,
                "inbound node in the legacy list form",
                pointer,
            );
            return;
        };
        for (k, v) in entries {
            let p = json::push_pointer(pointer, k);
            match (k.as_str(), v) {
                ("args", Json::Arr(_)) | ("kwargs", Json::Obj(_)) => {
                    self.call_value(v, &p, earlier)
                }
                _ => {
                    if self.key_ok(k, &p) {
                        self.push(
                            codes::UNEXPECTED_KEY,
                            format!("key {k:?} in an inbound node"),
                            &p,
                        );
                    }
                }
            }
        }
    }

    /// An argument of a layer call: tensors, nested lists/dicts of them,
    /// numbers, booleans and nulls. Strings are refused: nothing an
    /// allow-listed layer is called with is a string.
    fn call_value(&mut self, v: &Json, pointer: &str, earlier: &HashSet<String>) {
        match v {
            Json::Arr(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.call_value(item, &json::push_pointer(pointer, &i.to_string()), earlier);
                }
            }
            Json::Obj(entries) => {
                if v.get("class_name").is_some() {
                    self.keras_tensor(v, pointer, earlier);
                } else {
                    for (k, item) in entries {
                        let p = json::push_pointer(pointer, k);
                        if self.key_ok(k, &p) {
                            self.call_value(item, &p, earlier);
                        }
                    }
                }
            }
            Json::Str(_) => self.push(
                codes::INVALID_CONFIG,
                "string argument in a layer call",
                pointer,
            ),
            Json::Int(_) | Json::Float(_) | Json::Bool(_) | Json::Null => {}
        }
    }

    fn keras_tensor(&mut self, v: &Json, pointer: &str, earlier: &HashSet<String>) {
        let ok = v.get("class_name").and_then(Json::as_str) == Some("__keras_tensor__")
            && matches!(v, Json::Obj(e) if e.iter().all(|(k, _)| k == "class_name" || k == "config"))
            && v.get("config").is_some_and(|c| {
                matches!(c, Json::Obj(e) if e.iter().all(|(k, _)| matches!(k.as_str(), "shape" | "dtype" | "keras_history")))
                    && c.get("shape").is_some_and(|s| params::parse_shape(s).is_some())
                    && c.get("dtype").and_then(Json::as_str).is_some_and(allowlist::dtype_allowed)
                    && c.get("keras_history").is_some_and(|h| history_ok(h, earlier))
            });
        if !ok {
            if v.get("class_name").and_then(Json::as_str) == Some("__lambda__") {
                self.push(
                    codes::LAMBDA,
                    "a serialized Python lambda (bytecode)",
                    pointer,
                );
            } else {
                self.push(
                    codes::INVALID_CONFIG,
                    "a layer call argument must be a __keras_tensor__ {shape, dtype, keras_history} of an earlier layer",
                    pointer,
                );
            }
        }
    }

    /// `input_layers` / `output_layers`: `[name, node, tensor]` triples,
    /// possibly nested in lists, naming layers of this model.
    fn tensor_refs(&self, v: &Json, names: &HashSet<String>, depth: usize) -> bool {
        if depth > 8 {
            return false;
        }
        match v {
            Json::Arr(items) if history_ok(v, names) => !items.is_empty(),
            Json::Arr(items) => {
                !items.is_empty() && items.iter().all(|i| self.tensor_refs(i, names, depth + 1))
            }
            Json::Obj(entries) => entries
                .iter()
                .all(|(_, i)| self.tensor_refs(i, names, depth + 1)),
            _ => false,
        }
    }
}

/// Layer classes whose output has the shape of their input.
const SHAPE_PRESERVING: &[&str] = &[
    "Activation",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "BatchNormalization",
    "LayerNormalization",
    "UnitNormalization",
    "Softmax",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "ActivityRegularization",
];

/// The layer names in `input_layers` / `output_layers` (`[name, node,
/// tensor]` triples, possibly nested), in order.
fn collect_refs(v: &Json, out: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    match v {
        Json::Arr(items) => match items.as_slice() {
            [Json::Str(name), n, t] if n.as_u64().is_some() && t.as_u64().is_some() => {
                out.push(name.clone());
            }
            _ => items.iter().for_each(|i| collect_refs(i, out, depth + 1)),
        },
        Json::Obj(entries) => entries
            .iter()
            .for_each(|(_, i)| collect_refs(i, out, depth + 1)),
        _ => {}
    }
}

/// The dtype a layer computes in: a dtype name, or a `DTypePolicy`'s
/// name with its `mixed_` (and quantization `<mode>_from_`) prefix taken
/// off, as Keras derives the compute dtype.
fn compute_dtype(v: &Json) -> Option<String> {
    let name = match v {
        Json::Str(s) => s.as_str(),
        Json::Obj(_) => v.get("config")?.get("name")?.as_str()?,
        _ => return None,
    };
    let name = name.rsplit_once("_from_").map_or(name, |(_, rest)| rest);
    let name = name.strip_prefix("mixed_").unwrap_or(name);
    (!name.is_empty()).then(|| name.to_owned())
}

/// `[layer_name, node_index, tensor_index]` naming a known layer.
fn history_ok(v: &Json, names: &HashSet<String>) -> bool {
    match v {
        Json::Arr(items) => match items.as_slice() {
            [Json::Str(name), n, t] => {
                names.contains(name) && n.as_u64().is_some() && t.as_u64().is_some()
            }
            _ => false,
        },
        _ => false,
    }
}

/// A shape, a list of shapes (multi-input layers), or null.
fn shape_tree(v: &Json, depth: usize) -> bool {
    if depth > 4 {
        return false;
    }
    match v {
        Json::Null => true,
        Json::Arr(_) if params::parse_shape(v).is_some() => true,
        Json::Arr(items) => items.iter().all(|i| shape_tree(i, depth + 1)),
        Json::Obj(entries) => entries.iter().all(|(_, i)| shape_tree(i, depth + 1)),
        _ => false,
    }
}

fn key_slot(key: &str) -> Slot {
    match key {
        "activation" | "recurrent_activation" => Slot::Cat(Category::Activation),
        "dtype" => Slot::DType,
        "learning_rate" => Slot::LearningRate,
        "optimizer" => Slot::Cat(Category::Optimizer),
        "loss" => Slot::Cat(Category::Loss),
        "metrics" | "weighted_metrics" => Slot::Cat(Category::Metric),
        // Layers are only accepted in a model's own `layers` list, walked
        // by `Walk::model`; a `layers` key anywhere else is a plain value,
        // so any object in it is refused (and its config still walked).
        k if k.ends_with("_initializer") => Slot::Cat(Category::Initializer),
        k if k.ends_with("_regularizer") => Slot::Cat(Category::Regularizer),
        k if k.ends_with("_constraint") => Slot::Cat(Category::Constraint),
        _ => Slot::Any,
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

fn describe_value(v: &Json) -> String {
    match v {
        Json::Str(s) => format!("{:?}", truncate(s)),
        other => other.type_name().to_owned(),
    }
}
