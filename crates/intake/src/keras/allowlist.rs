//! The allow-list of Keras objects a `config.json` may name.
//!
//! Everything here was read off Keras 3.15.1: the `(module, class_name)`
//! pairs are what `serialize_keras_object` writes for each class (the public
//! export path, e.g. `keras.layers` / `Dense`; `keras` / `Sequential`;
//! `keras.src.models.functional` / `Functional`), and the string names are
//! the ones `keras.activations.get`, `keras.losses.get`, `keras.metrics.get`
//! (through `compile_utils.get_metric`), `keras.initializers.get`,
//! `keras.regularizers.get`, `keras.constraints.get` and
//! `keras.optimizers.get` resolve to built-ins. The fixture generator
//! (`tests/fixtures/keras/make_fixtures.py`) and
//! `tests/fixtures/keras/check_allowlist.py` check them against Keras.
//!
//! Bump [`ALLOWLIST_VERSION`] whenever an entry is added or removed: the
//! version goes into every verdict, so an AIBoM says which list decided.

/// Version of this allow-list; recorded in every verdict.
pub const ALLOWLIST_VERSION: &str = "keras-3.15.1/2";

/// What kind of Keras object a class is, and so where it may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Model,
    Layer,
    Optimizer,
    Schedule,
    Loss,
    Metric,
    Initializer,
    Regularizer,
    Constraint,
    DTypePolicy,
    Activation,
    /// A stateless graph operation Keras inserts into Functional models.
    Op,
}

impl Category {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Category::Model => "model",
            Category::Layer => "layer",
            Category::Optimizer => "optimizer",
            Category::Schedule => "learning-rate schedule",
            Category::Loss => "loss",
            Category::Metric => "metric",
            Category::Initializer => "initializer",
            Category::Regularizer => "regularizer",
            Category::Constraint => "constraint",
            Category::DTypePolicy => "dtype policy",
            Category::Activation => "activation",
            Category::Op => "operation",
        }
    }
}

use Category as C;

/// Layers (module `keras.layers`). Anything that runs user code (`Lambda`),
/// loads files (`TFSMLayer`), wraps foreign frameworks (`TorchModuleWrapper`,
/// `JaxLayer`, `FlaxLayer`) or takes arbitrary callables (`TextVectorization`
/// `standardize`/`split`) is absent on purpose.
const LAYERS: &[&str] = &[
    "InputLayer",
    // Core
    "Dense",
    "Activation",
    "Embedding",
    // Convolution
    "Conv1D",
    "Conv2D",
    "Conv3D",
    // Pooling
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    // Normalization
    "BatchNormalization",
    "LayerNormalization",
    // Regularization
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    // Recurrent
    "LSTM",
    "GRU",
    "SimpleRNN",
    // Reshaping
    "Flatten",
    "Reshape",
    "Permute",
    "RepeatVector",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "Cropping1D",
    "Cropping2D",
    "UpSampling1D",
    "UpSampling2D",
    // Merging
    "Concatenate",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    // Activation layers
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Softmax",
    // Preprocessing
    "Normalization",
    "Rescaling",
    "Resizing",
    "CenterCrop",
    "StringLookup",
    "IntegerLookup",
];

const OPTIMIZERS: &[&str] = &[
    "Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "Nadam", "Ftrl", "Lion",
];

const SCHEDULES: &[&str] = &[
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
];

const LOSSES: &[&str] = &[
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "Huber",
    "LogCosh",
    "KLDivergence",
    "Poisson",
    "CosineSimilarity",
];

const METRICS: &[&str] = &[
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "AUC",
    "Precision",
    "Recall",
    "TruePositives",
    "TrueNegatives",
    "FalsePositives",
    "FalseNegatives",
    "PrecisionAtRecall",
    "RecallAtPrecision",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
    "F1Score",
    "FBetaScore",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "RootMeanSquaredError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "CosineSimilarity",
    "LogCoshError",
    "R2Score",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "KLDivergence",
    "Poisson",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "Mean",
    "Sum",
];

const INITIALIZERS: &[&str] = &[
    "GlorotUniform",
    "GlorotNormal",
    "HeNormal",
    "HeUniform",
    "LecunNormal",
    "LecunUniform",
    "Zeros",
    "Ones",
    "Constant",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "Orthogonal",
    "Identity",
    "VarianceScaling",
];

const REGULARIZERS: &[&str] = &["L1", "L2", "L1L2", "OrthogonalRegularizer"];

const CONSTRAINTS: &[&str] = &["MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"];

/// Classes by the exact `module` Keras 3.15 writes for them.
const CLASSES: &[(&str, Category, &[&str])] = &[
    ("keras", C::Model, &["Sequential"]),
    ("keras.src.models.functional", C::Model, &["Functional"]),
    ("keras", C::DTypePolicy, &["DTypePolicy"]),
    ("keras.layers", C::Layer, LAYERS),
    ("keras.optimizers", C::Optimizer, OPTIMIZERS),
    ("keras.optimizers.schedules", C::Schedule, SCHEDULES),
    ("keras.losses", C::Loss, LOSSES),
    ("keras.metrics", C::Metric, METRICS),
    ("keras.initializers", C::Initializer, INITIALIZERS),
    ("keras.regularizers", C::Regularizer, REGULARIZERS),
    ("keras.constraints", C::Constraint, CONSTRAINTS),
    // A Functional model whose `Embedding(mask_zero=True)` feeds a layer
    // gets the mask as a `NotEqual` operation node, written under its
    // internal module (and `registered_name` "NotEqual"). It is stateless
    // and takes only a `name`; Keras resolves it as a KerasSaveable class.
    ("keras.src.ops.numpy", C::Op, &["NotEqual"]),
];

/// Activation names (`keras.activations.get`): strings, or
/// `{"module": "keras.activations", "class_name": "function", "config": name}`.
const ACTIVATIONS: &[&str] = &[
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "glu",
    "silu",
    "swish",
    "sigmoid",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "hard_tanh",
    "log_sigmoid",
    "softmax",
    "log_softmax",
    "softplus",
    "softsign",
    "tanh",
    "linear",
    "exponential",
    "mish",
];

/// Loss function names (`keras.losses` functions).
const LOSS_FUNCTIONS: &[&str] = &[
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "huber",
    "log_cosh",
    "kl_divergence",
    "poisson",
    "cosine_similarity",
];

/// Extra strings `keras.losses.get` resolves (aliases).
const LOSS_ALIASES: &[&str] = &["mse", "mae", "mape", "msle", "bce", "kld"];

/// Metric function names (`keras.metrics` functions).
const METRIC_FUNCTIONS: &[&str] = &[
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "kl_divergence",
    "poisson",
];

/// Extra strings `compile_utils.get_metric` (`accuracy`, `acc`) and
/// `keras.metrics.get` resolve.
const METRIC_ALIASES: &[&str] = &[
    "accuracy",
    "acc",
    "mse",
    "mae",
    "mape",
    "msle",
    "bce",
    "auc",
    "precision",
    "recall",
];

const INITIALIZER_NAMES: &[&str] = &[
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "orthogonal",
    "identity",
    "variance_scaling",
];

const REGULARIZER_NAMES: &[&str] = &["l1", "l2", "l1l2", "orthogonal_regularizer"];

const CONSTRAINT_NAMES: &[&str] = &["max_norm", "min_max_norm", "non_neg", "unit_norm"];

const OPTIMIZER_NAMES: &[&str] = &[
    "adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "ftrl", "lion",
];

/// Tensor dtypes a config may name (`dtype` of inputs and tensors).
const DTYPES: &[&str] = &[
    "float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "uint64", "bool", "string",
];

/// Dtype policy names (`DTypePolicy` `name`, or a string `dtype` of a layer).
const POLICIES: &[&str] = &[
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "mixed_float16",
    "mixed_bfloat16",
];

/// Whether a module is one of Keras's own namespaces on the allow-list.
pub(crate) fn module_allowed(module: &str) -> bool {
    CLASSES.iter().any(|(m, _, _)| *m == module)
        || matches!(
            module,
            "keras.activations" | "keras.losses" | "keras.metrics"
        )
}

/// The category of an allow-listed `(module, class_name)`.
pub(crate) fn class_category(module: &str, class_name: &str) -> Option<Category> {
    CLASSES
        .iter()
        .find(|(m, _, names)| *m == module && names.contains(&class_name))
        .map(|(_, c, _)| *c)
}

/// Whether `{"module": m, "class_name": "function", "config": name}` is an
/// allow-listed function of the category the slot expects.
pub(crate) fn function_allowed(module: &str, name: &str, want: Category) -> bool {
    match (module, want) {
        ("keras.activations", C::Activation) => ACTIVATIONS.contains(&name),
        ("keras.losses", C::Loss) => LOSS_FUNCTIONS.contains(&name),
        ("keras.metrics", C::Metric) => METRIC_FUNCTIONS.contains(&name),
        _ => false,
    }
}

/// Whether a string names a built-in of the category where it appears.
pub(crate) fn string_allowed(want: Category, s: &str) -> bool {
    match want {
        C::Activation => ACTIVATIONS.contains(&s),
        C::Loss => LOSS_FUNCTIONS.contains(&s) || LOSS_ALIASES.contains(&s) || LOSSES.contains(&s),
        C::Metric => {
            METRIC_FUNCTIONS.contains(&s) || METRIC_ALIASES.contains(&s) || METRICS.contains(&s)
        }
        C::Initializer => INITIALIZER_NAMES.contains(&s) || INITIALIZERS.contains(&s),
        C::Regularizer => REGULARIZER_NAMES.contains(&s) || REGULARIZERS.contains(&s),
        C::Constraint => CONSTRAINT_NAMES.contains(&s) || CONSTRAINTS.contains(&s),
        C::Optimizer => OPTIMIZER_NAMES.contains(&s),
        C::DTypePolicy => POLICIES.contains(&s),
        C::Model | C::Layer | C::Schedule | C::Op => false,
    }
}

/// Whether a tensor dtype name is allowed.
pub(crate) fn dtype_allowed(s: &str) -> bool {
    DTYPES.contains(&s)
}

/// Whether a dtype policy name is allowed.
pub(crate) fn policy_allowed(s: &str) -> bool {
    POLICIES.contains(&s)
}

/// Layer classes that hold no weights.
pub(crate) fn weightless_layer(class_name: &str) -> bool {
    matches!(
        class_name,
        "InputLayer"
            | "NotEqual"
            | "Activation"
            | "MaxPooling1D"
            | "MaxPooling2D"
            | "MaxPooling3D"
            | "AveragePooling1D"
            | "AveragePooling2D"
            | "AveragePooling3D"
            | "GlobalMaxPooling1D"
            | "GlobalMaxPooling2D"
            | "GlobalMaxPooling3D"
            | "GlobalAveragePooling1D"
            | "GlobalAveragePooling2D"
            | "GlobalAveragePooling3D"
            | "Dropout"
            | "SpatialDropout1D"
            | "SpatialDropout2D"
            | "GaussianNoise"
            | "GaussianDropout"
            | "Flatten"
            | "Reshape"
            | "Permute"
            | "RepeatVector"
            | "ZeroPadding1D"
            | "ZeroPadding2D"
            | "Cropping1D"
            | "Cropping2D"
            | "UpSampling1D"
            | "UpSampling2D"
            | "Concatenate"
            | "Add"
            | "Subtract"
            | "Multiply"
            | "Average"
            | "Maximum"
            | "Minimum"
            | "ReLU"
            | "LeakyReLU"
            | "ELU"
            | "Softmax"
            | "Rescaling"
            | "Resizing"
            | "CenterCrop"
    )
}

/// Every allow-listed name, for the consistency check against Keras
/// (`check_allowlist.py` reads this dump from a test).
#[cfg(test)]
pub(crate) fn dump() -> serde_json::Value {
    serde_json::json!({
        "version": ALLOWLIST_VERSION,
        "classes": CLASSES.iter().map(|(m, c, names)| serde_json::json!({
            "module": m, "category": c.describe(), "names": names,
        })).collect::<Vec<_>>(),
        "activations": ACTIVATIONS,
        "loss_functions": LOSS_FUNCTIONS,
        "loss_aliases": LOSS_ALIASES,
        "metric_functions": METRIC_FUNCTIONS,
        "metric_aliases": METRIC_ALIASES,
        "initializer_names": INITIALIZER_NAMES,
        "regularizer_names": REGULARIZER_NAMES,
        "constraint_names": CONSTRAINT_NAMES,
        "optimizer_names": OPTIMIZER_NAMES,
        "dtypes": DTYPES,
        "policies": POLICIES,
    })
}
