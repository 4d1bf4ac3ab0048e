//! The job spec: the one JSON document the trainer reads.
//!
//! The worker builds it from things it has already checked: the paths of the
//! gated model and data (as the trainer will see them, e.g. `/in/...` in the
//! sandbox), the validated dataset definition (the JSON that
//! `veritrain_intake::definition::Definition` serializes to: same shape as the
//! YAML, defaults written out), the fit parameters resolved here against
//! their ranges and allow-lists, and the platform's execution settings. Every
//! value is explicit, so `metrics.json` can record each one as used.
//! docs/runtime.md has the full format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// Version of the spec format (the trainer refuses others).
pub const SPEC_VERSION: u32 = 1;

/// Optimizers a job may choose for a model saved without compile settings.
pub const OPTIMIZERS: &[&str] = &[
    "adam", "adamw", "sgd", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
];
/// Losses a job may choose.
pub const LOSSES: &[&str] = &[
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_squared_logarithmic_error",
    "huber",
    "hinge",
    "kl_divergence",
    "poisson",
];
/// Metrics a job may choose.
pub const METRICS: &[&str] = &[
    "accuracy",
    "sparse_categorical_accuracy",
    "categorical_accuracy",
    "binary_accuracy",
    "mean_squared_error",
    "mean_absolute_error",
    "root_mean_squared_error",
    "auc",
    "precision",
    "recall",
];

const MAX_EPOCHS: u32 = 100_000;
const MAX_BATCH: u32 = 1 << 20;
const MAX_STEPS: u32 = 1 << 30;

/// An optimizer chosen by the job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerChoice {
    /// One of [`OPTIMIZERS`].
    pub name: String,
    /// Learning rate; Keras's default for the optimizer when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f64>,
}

/// Fit parameters as a user or API caller gives them: everything optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitRequest {
    /// Number of epochs (default 10).
    pub epochs: Option<u32>,
    /// Batch size (default 32).
    pub batch_size: Option<u32>,
    /// Fraction held out for validation (default: the definition's
    /// `split.validation_fraction`).
    pub validation_split: Option<f64>,
    /// Epoch to start at (default 0).
    pub initial_epoch: Option<u32>,
    /// Batches per epoch (default: one pass over the training split).
    pub steps_per_epoch: Option<u32>,
    /// Validation batches per validation run (default: the whole split).
    pub validation_steps: Option<u32>,
    /// Validate every N epochs (default 1).
    pub validation_freq: Option<u32>,
    /// Shuffle the training split every epoch (default true).
    pub shuffle: Option<bool>,
    /// Seed of weights, dropout and the shuffle, below 2^32 (default: the
    /// definition's split seed modulo 2^32, else chosen by the platform).
    pub seed: Option<u64>,
    /// For uncompiled models only.
    pub optimizer: Option<OptimizerChoice>,
    /// For uncompiled models only; one of [`LOSSES`].
    pub loss: Option<String>,
    /// For uncompiled models only; each one of [`METRICS`].
    pub metrics: Option<Vec<String>>,
}

/// Fit parameters with every value decided: what the trainer uses and
/// `metrics.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitParams {
    /// Number of epochs.
    pub epochs: u32,
    /// Batch size.
    pub batch_size: u32,
    /// Fraction held out for validation, in `[0, 1)`.
    pub validation_split: f64,
    /// First epoch (0-based), below `epochs`.
    pub initial_epoch: u32,
    /// Batches per epoch; `None` = one pass.
    pub steps_per_epoch: Option<u32>,
    /// Validation batches; `None` = the whole validation split.
    pub validation_steps: Option<u32>,
    /// Validate every N epochs.
    pub validation_freq: u32,
    /// Shuffle the training split each epoch.
    pub shuffle: bool,
    /// Seed of Python, NumPy, TensorFlow and the shuffle, below 2^32.
    pub seed: u64,
    /// Seed of the train/validation split (`crate::split`).
    pub split_seed: u64,
    /// Job-chosen optimizer (uncompiled models).
    pub optimizer: Option<OptimizerChoice>,
    /// Job-chosen loss (uncompiled models).
    pub loss: Option<String>,
    /// Job-chosen metrics (uncompiled models).
    pub metrics: Option<Vec<String>>,
}

impl FitRequest {
    /// Decide every value, checking ranges and allow-lists. `dataset` is the
    /// definition JSON (its `split` supplies defaults); `platform_seed` is
    /// called only when neither the request nor the definition has a seed.
    ///
    /// # Errors
    /// [`Error::SpecInvalid`] naming the field.
    pub fn resolve(
        &self,
        dataset: &Value,
        platform_seed: impl FnOnce() -> u64,
    ) -> Result<FitParams> {
        let split = dataset.get("split");
        let def_fraction = split
            .and_then(|s| s.get("validation_fraction"))
            .and_then(Value::as_f64);
        let def_seed = split.and_then(|s| s.get("seed")).and_then(Value::as_u64);
        let epochs = self.epochs.unwrap_or(10);
        check_range("fit.epochs", epochs, 1, MAX_EPOCHS)?;
        let batch_size = self.batch_size.unwrap_or(32);
        check_range("fit.batch_size", batch_size, 1, MAX_BATCH)?;
        let validation_split = self.validation_split.or(def_fraction).unwrap_or(0.2);
        if !(0.0..1.0).contains(&validation_split) {
            return Err(Error::spec("fit.validation_split", "must be in [0, 1)"));
        }
        let initial_epoch = self.initial_epoch.unwrap_or(0);
        if initial_epoch >= epochs {
            return Err(Error::spec(
                "fit.initial_epoch",
                format!("must be below epochs ({epochs})"),
            ));
        }
        if let Some(s) = self.steps_per_epoch {
            check_range("fit.steps_per_epoch", s, 1, MAX_STEPS)?;
        }
        if let Some(s) = self.validation_steps {
            check_range("fit.validation_steps", s, 1, MAX_STEPS)?;
        }
        let validation_freq = self.validation_freq.unwrap_or(1);
        check_range("fit.validation_freq", validation_freq, 1, MAX_EPOCHS)?;
        if let Some(o) = &self.optimizer {
            if !OPTIMIZERS.contains(&o.name.as_str()) {
                return Err(Error::spec(
                    "fit.optimizer.name",
                    format!("{:?} is not one of {}", o.name, OPTIMIZERS.join(", ")),
                ));
            }
            if let Some(lr) = o.learning_rate
                && !(lr.is_finite() && lr > 0.0)
            {
                return Err(Error::spec(
                    "fit.optimizer.learning_rate",
                    "must be a positive number",
                ));
            }
        }
        if let Some(l) = &self.loss
            && !LOSSES.contains(&l.as_str())
        {
            return Err(Error::spec(
                "fit.loss",
                format!("{l:?} is not one of {}", LOSSES.join(", ")),
            ));
        }
        if let Some(ms) = &self.metrics {
            for m in ms {
                if !METRICS.contains(&m.as_str()) {
                    return Err(Error::spec(
                        "fit.metrics",
                        format!("{m:?} is not one of {}", METRICS.join(", ")),
                    ));
                }
            }
        }
        // NumPy's global seed is 32-bit (and tf.data's is a signed 64-bit
        // integer), so the training seed is kept below 2^32; a larger split
        // seed from the definition still drives the split unchanged.
        let seed = match (self.seed, def_seed) {
            (Some(s), _) if s > u64::from(u32::MAX) => {
                return Err(Error::spec(
                    "fit.seed",
                    format!("must be below 2^32, got {s}"),
                ));
            }
            (Some(s), _) => s,
            (None, Some(d)) => d & u64::from(u32::MAX),
            (None, None) => platform_seed() & u64::from(u32::MAX),
        };
        Ok(FitParams {
            epochs,
            batch_size,
            validation_split,
            initial_epoch,
            steps_per_epoch: self.steps_per_epoch,
            validation_steps: self.validation_steps,
            validation_freq,
            shuffle: self.shuffle.unwrap_or(true),
            seed,
            split_seed: def_seed.unwrap_or(seed),
            optimizer: self.optimizer.clone(),
            loss: self.loss.clone(),
            metrics: self.metrics.clone(),
        })
    }
}

fn check_range(field: &str, v: u32, lo: u32, hi: u32) -> Result<()> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(Error::spec(
            field,
            format!("must be between {lo} and {hi}, got {v}"),
        ))
    }
}

/// A seed from the operating system, for jobs that gave none.
pub fn os_seed() -> u64 {
    use rand_core::RngCore;
    rand_core::OsRng.next_u64()
}

/// How the platform runs `fit`. The model file has no say: a saved
/// `jit_compile=false` changed training speed three- to six-fold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionSettings {
    /// XLA compilation of the train step.
    pub jit_compile: bool,
    /// Batches per compiled call.
    pub steps_per_execution: u32,
}

impl Default for ExecutionSettings {
    /// The platform's choice, from `benches/execution.rs`
    /// (docs/benchmarks.md): 32 batches per call cut Python
    /// round trips on small tabular models and cost nothing measurable on
    /// the image model; XLA (`jit_compile`) gave no consistent gain on CPU
    /// and adds a compiler that can refuse some layers, so it stays off.
    fn default() -> Self {
        ExecutionSettings {
            jit_compile: false,
            steps_per_execution: 32,
        }
    }
}

/// Limits the trainer enforces while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainerLimits {
    /// Largest image, in pixels (Pillow's decompression-bomb limit).
    pub max_image_pixels: u64,
}

impl Default for TrainerLimits {
    /// 8192 x 8192, the largest side a dataset definition allows.
    fn default() -> Self {
        TrainerLimits {
            max_image_pixels: 8192 * 8192,
        }
    }
}

/// Where the trainer finds its inputs and writes its outputs, as paths the
/// trainer process sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPaths {
    /// The gated `.keras` model.
    pub model: String,
    /// The dataset: a CSV file; an image ZIP or extracted directory; a
    /// TFRecord file or a directory of them.
    pub data: String,
    /// Where `model.keras`, `metrics.json`, `split.json` and `training.log`
    /// go.
    pub output_dir: String,
}

/// The job spec document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// [`SPEC_VERSION`].
    pub spec_version: u32,
    /// The model path.
    pub model: String,
    /// The data path.
    pub data: String,
    /// The validated dataset definition as JSON.
    pub dataset: Value,
    /// Fit parameters, all decided.
    pub fit: FitParams,
    /// Platform execution settings.
    pub execution: ExecutionSettings,
    /// Decoder limits.
    pub limits: TrainerLimits,
    /// The output directory.
    pub output_dir: String,
}

impl JobSpec {
    /// Assemble a spec. `dataset` is checked for the fields the trainer
    /// dispatches on (`type`, `input_shape`, `output_shape`); the rest was
    /// validated by the intake gate.
    ///
    /// # Errors
    /// [`Error::SpecInvalid`].
    pub fn new(
        paths: JobPaths,
        dataset: Value,
        fit: FitParams,
        execution: ExecutionSettings,
        limits: TrainerLimits,
    ) -> Result<JobSpec> {
        match dataset.get("type").and_then(Value::as_str) {
            Some("csv" | "image" | "tfrecord") => {}
            other => {
                return Err(Error::spec(
                    "dataset.type",
                    format!("{other:?} is not csv, image or tfrecord"),
                ));
            }
        }
        for key in ["input_shape", "output_shape"] {
            let ok = dataset.get(key).and_then(Value::as_array).is_some_and(|a| {
                !a.is_empty() && a.iter().all(|d| d.as_u64().is_some_and(|d| d >= 1))
            });
            if !ok {
                return Err(Error::spec(
                    format!("dataset.{key}"),
                    "must be a list of positive integers",
                ));
            }
        }
        if execution.steps_per_execution == 0 {
            return Err(Error::spec(
                "execution.steps_per_execution",
                "must be at least 1",
            ));
        }
        for (field, value) in [
            ("model", &paths.model),
            ("data", &paths.data),
            ("output_dir", &paths.output_dir),
        ] {
            if value.is_empty() || value.contains('\0') {
                return Err(Error::spec(field, "must be a non-empty path"));
            }
        }
        Ok(JobSpec {
            spec_version: SPEC_VERSION,
            model: paths.model,
            data: paths.data,
            dataset,
            fit,
            execution,
            limits,
            output_dir: paths.output_dir,
        })
    }

    /// The JSON the trainer reads.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain data cannot fail; fall back to an empty object
        // that the trainer refuses rather than panic.
        serde_json::to_vec_pretty(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn csv_def() -> Value {
        json!({"version": 1, "type": "csv", "input_shape": [4], "output_shape": [3],
               "split": {"validation_fraction": 0.25, "seed": 42}})
    }

    #[test]
    fn defaults_come_from_the_definition_then_the_platform() {
        let fit = FitRequest::default()
            .resolve(&csv_def(), || unreachable!())
            .unwrap();
        assert_eq!(fit.validation_split, 0.25);
        assert_eq!((fit.seed, fit.split_seed), (42, 42));
        assert_eq!(
            (
                fit.epochs,
                fit.batch_size,
                fit.validation_freq,
                fit.initial_epoch
            ),
            (10, 32, 1, 0)
        );
        assert!(fit.shuffle);

        let no_seed = json!({"type": "csv", "input_shape": [1], "output_shape": [1]});
        let fit = FitRequest::default().resolve(&no_seed, || 7).unwrap();
        assert_eq!(
            (fit.seed, fit.split_seed, fit.validation_split),
            (7, 7, 0.2)
        );
        let fit = FitRequest::default()
            .resolve(&no_seed, || u64::MAX)
            .unwrap();
        assert_eq!(fit.seed, u64::from(u32::MAX));

        // A 64-bit split seed: the split uses it whole, training its low 32 bits.
        let big = json!({"type": "csv", "input_shape": [1], "output_shape": [1],
                         "split": {"validation_fraction": 0.2, "seed": u64::MAX - 1}});
        let fit = FitRequest::default().resolve(&big, || 0).unwrap();
        assert_eq!(
            (fit.seed, fit.split_seed),
            (u64::from(u32::MAX) - 1, u64::MAX - 1)
        );

        // The job's seed drives training; the definition's seed still
        // fixes the split.
        let req = FitRequest {
            seed: Some(5),
            validation_split: Some(0.1),
            ..FitRequest::default()
        };
        let fit = req.resolve(&csv_def(), || 0).unwrap();
        assert_eq!(
            (fit.seed, fit.split_seed, fit.validation_split),
            (5, 42, 0.1)
        );
    }

    #[test]
    fn out_of_range_and_unlisted_values_are_refused_by_field() {
        let cases: Vec<(FitRequest, &str)> = vec![
            (
                FitRequest {
                    epochs: Some(0),
                    ..Default::default()
                },
                "fit.epochs",
            ),
            (
                FitRequest {
                    batch_size: Some(0),
                    ..Default::default()
                },
                "fit.batch_size",
            ),
            (
                FitRequest {
                    validation_split: Some(1.0),
                    ..Default::default()
                },
                "fit.validation_split",
            ),
            (
                FitRequest {
                    validation_split: Some(f64::NAN),
                    ..Default::default()
                },
                "fit.validation_split",
            ),
            (
                FitRequest {
                    epochs: Some(3),
                    initial_epoch: Some(3),
                    ..Default::default()
                },
                "fit.initial_epoch",
            ),
            (
                FitRequest {
                    steps_per_epoch: Some(0),
                    ..Default::default()
                },
                "fit.steps_per_epoch",
            ),
            (
                FitRequest {
                    validation_steps: Some(0),
                    ..Default::default()
                },
                "fit.validation_steps",
            ),
            (
                FitRequest {
                    validation_freq: Some(0),
                    ..Default::default()
                },
                "fit.validation_freq",
            ),
            (
                FitRequest {
                    optimizer: Some(OptimizerChoice {
                        name: "evil".into(),
                        learning_rate: None,
                    }),
                    ..Default::default()
                },
                "fit.optimizer.name",
            ),
            (
                FitRequest {
                    optimizer: Some(OptimizerChoice {
                        name: "sgd".into(),
                        learning_rate: Some(-1.0),
                    }),
                    ..Default::default()
                },
                "fit.optimizer.learning_rate",
            ),
            (
                FitRequest {
                    loss: Some("os.system".into()),
                    ..Default::default()
                },
                "fit.loss",
            ),
            (
                FitRequest {
                    seed: Some(1 << 32),
                    ..Default::default()
                },
                "fit.seed",
            ),
            (
                FitRequest {
                    metrics: Some(vec!["accuracy".into(), "x".into()]),
                    ..Default::default()
                },
                "fit.metrics",
            ),
        ];
        for (req, field) in cases {
            let err = req.resolve(&csv_def(), || 0).unwrap_err();
            assert_eq!(err.code(), "runtime.spec_invalid");
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn unknown_request_fields_are_refused() {
        let err = serde_json::from_value::<FitRequest>(json!({"epochs": 2, "jit_compile": false}));
        assert!(err.is_err());
    }

    #[test]
    fn spec_json_has_every_field_the_trainer_requires() {
        let fit = FitRequest::default().resolve(&csv_def(), || 0).unwrap();
        let paths = JobPaths {
            model: "/in/model.keras".into(),
            data: "/in/data.csv".into(),
            output_dir: "/out".into(),
        };
        let spec = JobSpec::new(
            paths,
            csv_def(),
            fit,
            ExecutionSettings::default(),
            TrainerLimits::default(),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&spec.to_json()).unwrap();
        assert_eq!(v["spec_version"], 1);
        for key in [
            "model",
            "data",
            "dataset",
            "fit",
            "execution",
            "limits",
            "output_dir",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        for key in [
            "epochs",
            "batch_size",
            "validation_split",
            "initial_epoch",
            "steps_per_epoch",
            "validation_steps",
            "validation_freq",
            "shuffle",
            "seed",
            "split_seed",
        ] {
            assert!(v["fit"].get(key).is_some(), "fit.{key}");
        }
        assert_eq!(v["limits"]["max_image_pixels"], 8192 * 8192);
        let back: JobSpec = serde_json::from_value(v).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn spec_refuses_unknown_dataset_types_and_bad_shapes() {
        let fit = FitRequest::default().resolve(&csv_def(), || 0).unwrap();
        let paths = || JobPaths {
            model: "m".into(),
            data: "d".into(),
            output_dir: "o".into(),
        };
        let mut def = csv_def();
        def["type"] = json!("parquet");
        let err = JobSpec::new(
            paths(),
            def,
            fit.clone(),
            ExecutionSettings::default(),
            TrainerLimits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("dataset.type"), "{err}");
        let mut def = csv_def();
        def["input_shape"] = json!([0]);
        let err = JobSpec::new(
            paths(),
            def,
            fit.clone(),
            ExecutionSettings::default(),
            TrainerLimits::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("dataset.input_shape"), "{err}");
        let bad = JobPaths {
            model: String::new(),
            ..paths()
        };
        assert!(
            JobSpec::new(
                bad,
                csv_def(),
                fit,
                ExecutionSettings::default(),
                TrainerLimits::default()
            )
            .is_err()
        );
    }
}
