"""Veritrain trainer: train one user model on one validated dataset.

Run by the worker as

    <runtime venv>/bin/python -I -B train.py <job-spec.json>

inside the sandbox (or, in development and tests, directly). The job spec is
written by the trusted worker (`veritrain_runtime::spec::JobSpec`); the model
and the dataset have already passed the Rust intake gate. docs/runtime.md
describes the spec, the events and the failure codes; keep it true.

What this program guarantees, in the order it runs:

1. The model is loaded only with `keras.saving.load_model(path,
   safe_mode=True, compile=False)`, and every Keras/TensorFlow global that a
   model could change while loading is compared before and after: any change
   fails the job (`trainer.config_tampered`).
2. The model is compiled with the platform's execution settings
   (`jit_compile`, `steps_per_execution`, `run_eagerly=False`), never the
   ones saved in the file. Optimizer, loss and metrics come from the model's
   own `compile_config`, or, for an uncompiled model, from the job's
   allow-listed choice.
3. The dataset is split ONCE into train and validation, before any
   shuffling, by a seeded rule anyone can recompute (`split_indices`). Only
   the training split is shuffled, and normalization statistics come from
   the training split only.
4. Progress goes to stdout as JSON lines, one object per line, and nothing
   else does: the original stdout is kept for events and file descriptor 1
   is pointed at stderr, so stray prints from libraries cannot corrupt the
   stream.
5. Any failure ends with an `{"event": "error", "code": "trainer.*"}` line
   and exit status 1. Success is a `done` event after `model.keras`,
   `metrics.json`, `split.json` and `training.log` are written.

Heavy imports (numpy, TensorFlow, Keras) happen after the spec is checked, so
a malformed spec fails in milliseconds.
"""

import csv
import hashlib
import io
import json
import math
import os
import sys
import time
import traceback
import zipfile

SPEC_VERSION = 1
METRICS_SCHEMA = "veritrain.metrics/v1"
SPLIT_ALGORITHM = "sha256-rank-v1"
SPLIT_DOMAIN = b"veritrain.split.v1\x00"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

# Allow-lists for models saved without a compile_config. The Rust spec
# builder refuses anything else first; these are the second check.
OPTIMIZERS = {
    "adam": "Adam",
    "adamw": "AdamW",
    "sgd": "SGD",
    "rmsprop": "RMSprop",
    "adagrad": "Adagrad",
    "adadelta": "Adadelta",
    "adamax": "Adamax",
    "nadam": "Nadam",
}
LOSSES = {
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
}
METRICS = {
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
}
# Losses that expect one-hot labels; every other classification loss gets
# class indices. Compared after lower-casing and dropping underscores, so
# both "categorical_crossentropy" and class_name "CategoricalCrossentropy"
# match.
ONE_HOT_LOSSES = {
    "categoricalcrossentropy",
    "categoricalfocalcrossentropy",
    "categoricalhinge",
    "kldivergence",
    "kld",
    "kullbackleiblerdivergence",
}

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
STEP_EVENT_INTERVAL_S = 0.5
MAX_MESSAGE = 2000


class TrainerError(Exception):
    """A failure with a stable code (`trainer.*`) and a sentence."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


# ---- events ----------------------------------------------------------------


def finite_or_none(value):
    """JSON has no NaN/Infinity: non-finite numbers become null."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def clean_logs(logs):
    return {str(k): finite_or_none(v) for k, v in sorted((logs or {}).items())}


class Events:
    """The JSON-lines event stream on the original stdout, mirrored as text
    into training.log once the output directory is known."""

    def __init__(self, stream):
        self.stream = stream
        self.log = None
        self.pending = []

    def open_log(self, path):
        self.log = open(path, "w", encoding="utf-8")
        for line in self.pending:
            self.log.write(line)
        self.pending = []
        self.log.flush()

    def note(self, text):
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n"
        if self.log is None:
            self.pending.append(line)
        else:
            self.log.write(line)
            self.log.flush()

    def emit(self, event, **fields):
        record = {"event": event, **fields}
        line = json.dumps(record, allow_nan=False, sort_keys=False, separators=(",", ":"))
        self.stream.write(line + "\n")
        self.stream.flush()
        self.note(line)

    def close(self):
        if self.log is not None:
            self.log.close()
            self.log = None


# ---- the job spec ------------------------------------------------------------


def require(obj, key, kind, where):
    if not isinstance(obj, dict) or key not in obj:
        raise TrainerError("trainer.spec_invalid", f"{where}.{key} is missing")
    value = obj[key]
    if kind is int and isinstance(value, bool):
        raise TrainerError("trainer.spec_invalid", f"{where}.{key} must be an integer")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise TrainerError("trainer.spec_invalid", f"{where}.{key} has the wrong type")
    return value


def optional_int(obj, key, where, minimum):
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TrainerError("trainer.spec_invalid", f"{where}.{key} must be an integer >= {minimum}")
    return value


def read_spec(path):
    try:
        with open(path, "rb") as f:
            raw = f.read(4 * 1024 * 1024 + 1)
    except OSError as e:
        raise TrainerError("trainer.spec_invalid", f"cannot read the job spec: {e.strerror}")
    if len(raw) > 4 * 1024 * 1024:
        raise TrainerError("trainer.spec_invalid", "the job spec is larger than 4 MiB")
    try:
        spec = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise TrainerError("trainer.spec_invalid", f"the job spec is not JSON: {e}")
    return check_spec(spec)


def check_spec(spec):
    """Check the fields the trainer relies on; fill nothing in silently."""
    if not isinstance(spec, dict):
        raise TrainerError("trainer.spec_invalid", "the job spec must be a JSON object")
    if spec.get("spec_version") != SPEC_VERSION:
        raise TrainerError("trainer.spec_invalid", f"spec_version must be {SPEC_VERSION}")
    for key in ("model", "data", "output_dir"):
        require(spec, key, str, "spec")
    dataset = require(spec, "dataset", dict, "spec")
    kind = require(dataset, "type", str, "dataset")
    if kind not in ("csv", "image", "tfrecord"):
        raise TrainerError("trainer.spec_invalid", f"dataset.type {kind!r} is not csv, image or tfrecord")
    for key in ("input_shape", "output_shape"):
        shape = require(dataset, key, list, "dataset")
        if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
            raise TrainerError("trainer.spec_invalid", f"dataset.{key} must be a list of positive integers")

    fit = require(spec, "fit", dict, "spec")
    epochs = require(fit, "epochs", int, "fit")
    batch_size = require(fit, "batch_size", int, "fit")
    split = require(fit, "validation_split", float, "fit")
    initial_epoch = require(fit, "initial_epoch", int, "fit")
    freq = require(fit, "validation_freq", int, "fit")
    require(fit, "shuffle", bool, "fit")
    seed = require(fit, "seed", int, "fit")
    require(fit, "split_seed", int, "fit")
    if epochs < 1 or batch_size < 1 or freq < 1:
        raise TrainerError("trainer.spec_invalid", "fit.epochs, fit.batch_size and fit.validation_freq must be >= 1")
    if not 0 <= initial_epoch < epochs:
        raise TrainerError("trainer.spec_invalid", "fit.initial_epoch must be >= 0 and < fit.epochs")
    if not (0.0 <= split < 1.0):
        raise TrainerError("trainer.spec_invalid", "fit.validation_split must be in [0, 1)")
    # NumPy's global seed is 32-bit; the split seed only feeds SHA-256.
    if not 0 <= seed < 2**32:
        raise TrainerError("trainer.spec_invalid", "fit.seed must be in [0, 2^32)")
    if not 0 <= fit["split_seed"] < 2**64:
        raise TrainerError("trainer.spec_invalid", "fit.split_seed must be an unsigned 64-bit integer")
    optional_int(fit, "steps_per_epoch", "fit", 1)
    optional_int(fit, "validation_steps", "fit", 1)
    check_compile_choice(fit)

    execution = require(spec, "execution", dict, "spec")
    require(execution, "jit_compile", bool, "execution")
    if require(execution, "steps_per_execution", int, "execution") < 1:
        raise TrainerError("trainer.spec_invalid", "execution.steps_per_execution must be >= 1")
    limits = require(spec, "limits", dict, "spec")
    if require(limits, "max_image_pixels", int, "limits") < 1:
        raise TrainerError("trainer.spec_invalid", "limits.max_image_pixels must be >= 1")
    return spec


def check_compile_choice(fit):
    opt = fit.get("optimizer")
    if opt is not None:
        if not isinstance(opt, dict) or set(opt) - {"name", "learning_rate"}:
            raise TrainerError("trainer.spec_invalid", "fit.optimizer must be {name, learning_rate}")
        if opt.get("name") not in OPTIMIZERS:
            raise TrainerError("trainer.spec_invalid", f"optimizer {opt.get('name')!r} is not on the allow-list")
        lr = opt.get("learning_rate")
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0):
            raise TrainerError("trainer.spec_invalid", "fit.optimizer.learning_rate must be a positive number")
    loss = fit.get("loss")
    if loss is not None and loss not in LOSSES:
        raise TrainerError("trainer.spec_invalid", f"loss {loss!r} is not on the allow-list")
    metrics = fit.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list) or any(m not in METRICS for m in metrics):
            raise TrainerError("trainer.spec_invalid", f"metrics {metrics!r} are not all on the allow-list")


# ---- the train/validation split ----------------------------------------------


def split_indices(n, validation_fraction, seed):
    """The one train/validation split of a job, decided before any shuffle.

    Every example index i gets the key SHA-256(domain || seed || i) (both
    unsigned 64-bit little-endian); the n_val indices with the smallest keys
    form the validation split, the rest the training split, each returned in
    ascending order. n_val = n - floor(n * (1 - fraction)) in IEEE double
    arithmetic, the rule Keras uses for `validation_split`. The split depends
    only on (n, fraction, seed), never on the epoch, and an auditor can
    recompute it from split.json without this program.
    """
    n_train = math.floor(n * (1.0 - validation_fraction))
    n_val = n - n_train
    prefix = SPLIT_DOMAIN + int(seed).to_bytes(8, "little")
    keyed = sorted(
        (hashlib.sha256(prefix + i.to_bytes(8, "little")).digest(), i) for i in range(n)
    )
    validation = sorted(i for _, i in keyed[:n_val])
    train = sorted(i for _, i in keyed[n_val:])
    return train, validation


def indices_digest(indices):
    """SHA-256 over the indices as unsigned 64-bit little-endian, in order."""
    h = hashlib.sha256()
    for i in indices:
        h.update(int(i).to_bytes(8, "little"))
    return h.hexdigest()


# ---- Keras global state ----------------------------------------------------------


def config_snapshot():
    """Every Keras/TensorFlow global that a model could change while loading
    and that would silently change how it trains (a Lambda calling
    `keras.config.set_max_epochs(1)` caps every later fit), as plain values."""
    import keras
    import tensorflow as tf
    from keras.src.backend.common import global_state
    from keras.src.saving import serialization_lib
    from tensorflow.python.framework import config as tf_config

    cfg = keras.config
    policy = cfg.dtype_policy()
    snap = {
        "keras.config.backend": cfg.backend(),
        "keras.config.floatx": cfg.floatx(),
        "keras.config.epsilon": cfg.epsilon(),
        "keras.config.image_data_format": cfg.image_data_format(),
        "keras.config.dtype_policy": getattr(policy, "name", repr(policy)),
        "keras.config.max_epochs": cfg.max_epochs(),
        "keras.config.max_steps_per_epoch": cfg.max_steps_per_epoch(),
        "keras.config.is_flash_attention_enabled": cfg.is_flash_attention_enabled(),
        "keras.config.is_interactive_logging_enabled": cfg.is_interactive_logging_enabled(),
        "keras.config.is_nnx_enabled": cfg.is_nnx_enabled(),
        "keras.config.is_traceback_filtering_enabled": cfg.is_traceback_filtering_enabled(),
        # enable_unsafe_deserialization() flips this global (CVE-2025-9906).
        "keras.safe_mode_saving": serialization_lib.in_safe_mode(),
        "keras.distribution": repr(keras.distribution.distribution()),
        "keras.custom_objects": sorted(keras.saving.get_custom_objects().keys()),
        "keras.custom_objects_scope": sorted(
            (global_state.get_global_attribute("custom_objects_scope_dict") or {}).keys()
        ),
        "tf.functions_run_eagerly": tf.config.functions_run_eagerly(),
        "tf.op_determinism": tf_config.is_op_determinism_enabled(),
        "tf.inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "tf.intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf.soft_device_placement": tf.config.get_soft_device_placement(),
    }
    return snap


def config_changes(before, after):
    """Names of the globals whose value differs, sorted."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def load_model_guarded(path):
    """Load with safe_mode and compile=False; fail on any global change."""
    import keras

    before = config_snapshot()
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except (MemoryError, TrainerError):
        raise
    except Exception as e:  # noqa: BLE001 - any loader failure is the model's
        raise TrainerError("trainer.model_load_failed", f"{type(e).__name__}: {e}")
    after = config_snapshot()
    changed = config_changes(before, after)
    if changed:
        raise TrainerError(
            "trainer.config_tampered",
            "loading the model changed Keras/TensorFlow globals: " + ", ".join(changed),
        )
    return model, before


# ---- compiling with platform settings ------------------------------------------------


def read_compile_config(model_path):
    """The model's own compile_config, read from config.json in the .keras
    zip (already checked by the Rust gate), or None when it was saved
    uncompiled."""
    try:
        with zipfile.ZipFile(model_path) as z:
            with z.open("config.json") as f:
                config = json.loads(f.read(64 * 1024 * 1024).decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise TrainerError("trainer.model_load_failed", f"cannot read config.json from the model: {e}")
    cc = config.get("compile_config") if isinstance(config, dict) else None
    return cc if isinstance(cc, dict) and cc else None


def loss_name(loss):
    if isinstance(loss, str):
        name = loss
    elif isinstance(loss, dict):
        name = str(loss.get("class_name") or (loss.get("config") or {}).get("name") or "")
    else:
        name = type(loss).__name__
    return name.replace("_", "").lower()


def effective_steps_per_execution(requested, step_counts):
    """The largest number of batches per call, up to the platform's, that
    divides every explicit step count (`steps_per_epoch`,
    `validation_steps`). Those run over a repeated dataset, where Keras runs
    whole calls: with 3 steps per epoch and 32 per call it would train 32
    steps. Over a finite dataset the last call simply stops at the end of
    the data, so no constraint is needed there."""
    for d in range(max(1, min([requested, *step_counts])), 0, -1):
        if all(c % d == 0 for c in step_counts):
            return d
    return 1


def compile_model(model, model_path, fit, execution, steps_per_execution):
    """Compile with the platform's execution settings. Returns the record of
    what was used for metrics.json."""
    import keras
    from keras.src.saving import serialization_lib

    job_choice = {k: fit.get(k) for k in ("optimizer", "loss", "metrics") if fit.get(k) is not None}
    saved = read_compile_config(model_path)
    record = {
        "jit_compile": execution["jit_compile"],
        "steps_per_execution": steps_per_execution,
        "steps_per_execution_platform": execution["steps_per_execution"],
        "run_eagerly": False,
    }
    if saved is not None:
        if job_choice:
            raise TrainerError(
                "trainer.spec_invalid",
                "the model was saved compiled; optimizer, loss and metrics from the job "
                f"apply only to uncompiled models (given: {', '.join(sorted(job_choice))})",
            )
        before = config_snapshot()
        try:
            # Only these keys are taken from the file. run_eagerly,
            # jit_compile and steps_per_execution decide speed (a saved
            # jit_compile=false made training 3-6x slower), so the platform
            # sets them.
            wanted = {
                k: saved.get(k)
                for k in ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics")
            }
            objects = serialization_lib.deserialize_keras_object(wanted, safe_mode=True)
        except Exception as e:  # noqa: BLE001
            raise TrainerError("trainer.compile_failed", f"cannot rebuild the saved compile settings: {e}")
        changed = config_changes(before, config_snapshot())
        if changed:
            raise TrainerError(
                "trainer.config_tampered",
                "the model's compile_config changed Keras/TensorFlow globals: " + ", ".join(changed),
            )
        if objects.get("optimizer") is None or objects.get("loss") is None:
            raise TrainerError("trainer.compile_failed", "the model's compile_config has no optimizer or no loss")
        record["source"] = "compile_config"
        record["ignored_from_model"] = {
            k: saved.get(k) for k in ("run_eagerly", "jit_compile", "steps_per_execution") if k in saved
        }
        record["optimizer"] = saved.get("optimizer")
        record["loss"] = saved.get("loss")
        record["metrics"] = saved.get("metrics")
        one_hot = loss_name(saved.get("loss")) in ONE_HOT_LOSSES
        compile_args = objects
    else:
        if "optimizer" not in job_choice or "loss" not in job_choice:
            raise TrainerError(
                "trainer.not_compiled",
                "the model was saved without compile settings; the job must choose an optimizer and a loss",
            )
        opt = job_choice["optimizer"]
        cls = getattr(keras.optimizers, OPTIMIZERS[opt["name"]])
        optimizer = cls(learning_rate=opt["learning_rate"]) if opt.get("learning_rate") is not None else cls()
        compile_args = {
            "optimizer": optimizer,
            "loss": job_choice["loss"],
            "metrics": list(job_choice.get("metrics") or []),
        }
        record["source"] = "job"
        record["optimizer"] = {"name": opt["name"], "learning_rate": float(optimizer.learning_rate.numpy())}
        record["loss"] = job_choice["loss"]
        record["metrics"] = compile_args["metrics"]
        one_hot = loss_name(job_choice["loss"]) in ONE_HOT_LOSSES
    try:
        model.compile(
            **compile_args,
            run_eagerly=False,
            jit_compile=execution["jit_compile"],
            steps_per_execution=steps_per_execution,
        )
    except Exception as e:  # noqa: BLE001
        raise TrainerError("trainer.compile_failed", f"{type(e).__name__}: {e}")
    record["label_encoding"] = "one_hot" if one_hot else "index"
    return record


def check_model_shapes(model, dataset):
    """One input and one output, matching the dataset definition."""
    inputs, outputs = model.inputs, model.outputs
    if inputs is None or outputs is None or len(inputs) != 1 or len(outputs) != 1:
        raise TrainerError(
            "trainer.bad_shape",
            "the model must have exactly one input and one output "
            f"(it has {len(inputs or [])} and {len(outputs or [])})",
        )

    def matches(tensor_shape, declared):
        dims = list(tensor_shape)[1:]
        return len(dims) == len(declared) and all(d is None or d == w for d, w in zip(dims, declared))

    for what, tensor, declared in (
        ("input", inputs[0], dataset["input_shape"]),
        ("output", outputs[0], dataset["output_shape"]),
    ):
        if not matches(tensor.shape, declared):
            raise TrainerError(
                "trainer.bad_shape",
                f"the model's {what} shape {tuple(tensor.shape)} does not match the dataset's "
                f"{what}_shape {declared} (batch dimension first)",
            )


# ---- reading the validated data ----------------------------------------------------


def csv_label_classes(dataset):
    """Class names of a CSV label, or None for regression."""
    label = dataset["label"]
    column = label if isinstance(label, str) else label.get("column")
    col = next((c for c in dataset["columns"] if c.get("name") == column), None)
    if col is None:
        raise TrainerError("trainer.spec_invalid", f"label column {column!r} is not declared")
    kind = col.get("type")
    if kind == "category":
        return col, [str(v) for v in col["values"]]
    if kind == "bool":
        return col, ["false", "true"]
    if kind == "int" and isinstance(label, dict) and label.get("classes"):
        return col, [str(c) for c in label["classes"]]
    if kind in ("int", "float"):
        return col, None
    raise TrainerError("trainer.spec_invalid", f"a {kind} column cannot be the label")


BOOL_WORDS = {"true": 1.0, "True": 1.0, "TRUE": 1.0, "1": 1.0, "false": 0.0, "False": 0.0, "FALSE": 0.0, "0": 0.0}


def parse_cell(col, cell, where):
    """A cell as a float; None when missing. Values were validated by the
    Rust gate; a failure here means the data changed after intake."""
    if cell == "":
        return None
    kind = col["type"]
    try:
        if kind in ("int", "float"):
            value = float(cell)
            if not math.isfinite(value):
                raise ValueError(cell)
            return value
        if kind == "bool":
            return BOOL_WORDS[cell]
        if kind == "category":
            return float([str(v) for v in col["values"]].index(cell))
    except (ValueError, KeyError):
        pass
    raise TrainerError("trainer.data_invalid", f"{where}: {cell[:80]!r} is not a valid {kind}")


def load_csv(path, dataset):
    import numpy as np

    columns = dataset["columns"]
    label_col, classes = csv_label_classes(dataset)
    inputs = [c for c in columns if c.get("input", True) and c is not label_col]
    names = [c["name"] for c in columns]
    delimiter = dataset.get("delimiter", ",")
    xs, ys = [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter=delimiter, strict=True)
            header = next(reader, None)
            if header != names:
                raise TrainerError("trainer.data_invalid", f"the CSV header {header!r:.200} is not the declared columns")
            positions = {c["name"]: i for i, c in enumerate(columns)}
            for row in reader:
                line = reader.line_num
                if len(row) != len(columns):
                    raise TrainerError("trainer.data_invalid", f"CSV line {line} has {len(row)} fields, not {len(columns)}")
                x = []
                for c in inputs:
                    v = parse_cell(c, row[positions[c["name"]]], f"CSV line {line}, column {c['name']!r}")
                    x.append(math.nan if v is None else v)
                cell = row[positions[label_col["name"]]]
                y = parse_cell(label_col, cell, f"CSV line {line}, label {label_col['name']!r}")
                if y is None:
                    raise TrainerError("trainer.data_invalid", f"CSV line {line}: the label is missing")
                if classes is not None and not (0 <= y < len(classes) and y == int(y)):
                    raise TrainerError("trainer.data_invalid", f"CSV line {line}: label {cell!r} is not a class index")
                xs.append(x)
                ys.append(y)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise TrainerError("trainer.data_invalid", f"cannot read the CSV: {e}")
    x = np.asarray(xs, dtype=np.float32).reshape(len(xs), len(inputs))
    return x, np.asarray(ys, dtype=np.float32), classes


class ImageSource:
    """Images from an extracted directory or straight from the ZIP (never
    extracted here), addressed by '/'-separated relative names."""

    def __init__(self, path):
        self.path = path
        self.zip = None
        if os.path.isfile(path):
            try:
                self.zip = zipfile.ZipFile(path)
            except (OSError, zipfile.BadZipFile) as e:
                raise TrainerError("trainer.data_invalid", f"cannot open the image ZIP: {e}")

    def names(self):
        if self.zip is not None:
            return sorted(n for n in self.zip.namelist() if not n.endswith("/"))
        found = []
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            rel = os.path.relpath(root, self.path)
            for f in sorted(files):
                found.append(f if rel == "." else f"{rel}/{f}".replace(os.sep, "/"))
        return sorted(found)

    def read(self, name):
        try:
            if self.zip is not None:
                return self.zip.read(name)
            with open(os.path.join(self.path, *name.split("/")), "rb") as f:
                return f.read()
        except (OSError, KeyError) as e:
            raise TrainerError("trainer.data_invalid", f"cannot read image {name!r}: {e}")


def list_images(source, dataset):
    """(name, class index) pairs in a fixed order: the example index of an
    image is its position here."""
    classes = [str(c) for c in dataset["label"]["classes"]]
    layout = dataset.get("layout", {"kind": "folders"})
    kind = layout if isinstance(layout, str) else layout.get("kind")
    names = source.names()
    if kind == "folders":
        items = []
        for index, cls in enumerate(classes):
            prefix = cls + "/"
            items += [
                (n, index)
                for n in names
                if n.startswith(prefix) and "/" not in n[len(prefix):] and n.lower().endswith(IMAGE_EXTENSIONS)
            ]
        return items, classes
    if kind == "flat":
        text = source.read(layout["labels_csv"]).decode("utf-8")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        items = []
        for row in reader:
            name, cls = row.get(layout["file_column"]), row.get(layout["label_column"])
            if name is None or cls not in classes:
                raise TrainerError("trainer.data_invalid", f"labels CSV line {reader.line_num}: unknown class {cls!r}")
            items.append((name, classes.index(cls)))
        return items, classes
    raise TrainerError("trainer.spec_invalid", f"unknown image layout {kind!r}")


def load_images(path, dataset, max_pixels):
    import numpy as np
    import tensorflow as tf
    import warnings
    from PIL import Image

    # Decompression bombs: refuse, do not warn (the gate checked headers).
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    height, width = dataset["image_size"]
    mode = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}[dataset.get("color_mode", "rgb")]
    pre = dataset.get("preprocessing") or {}
    method = pre.get("resize", "bilinear")
    source = ImageSource(path)
    items, classes = list_images(source, dataset)
    if not items:
        raise TrainerError("trainer.data_invalid", "the image dataset holds no images")
    xs = np.empty((len(items), height, width, len(mode)), dtype=np.float32)
    ys = np.empty((len(items),), dtype=np.float32)
    for i, (name, label) in enumerate(items):
        try:
            with Image.open(io.BytesIO(source.read(name))) as im:
                if im.format not in ("PNG", "JPEG"):
                    raise TrainerError("trainer.data_invalid", f"{name!r} is {im.format}, not PNG or JPEG")
                pixels = np.asarray(im.convert(mode), dtype=np.float32)
        except TrainerError:
            raise
        except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise TrainerError("trainer.data_invalid", f"cannot decode image {name!r}: {e}")
        pixels = pixels.reshape(pixels.shape[0], pixels.shape[1], len(mode))
        if pixels.shape[:2] != (height, width):
            if method == "none":
                raise TrainerError(
                    "trainer.bad_shape",
                    f"image {name!r} is {pixels.shape[1]}x{pixels.shape[0]}, not {width}x{height}, and resize is none",
                )
            pixels = tf.image.resize(pixels, (height, width), method=method).numpy()
        xs[i] = pixels
        ys[i] = label
    if pre.get("rescale") is not None:
        xs *= np.float32(pre["rescale"])
    return xs, ys, classes


TF_DTYPES = {"int64": "int64", "float32": "float32", "bytes": "string", "string": "string"}


def load_tfrecord(path, dataset):
    import numpy as np
    import tensorflow as tf

    features = dataset["features"]
    label = dataset["label"]
    spec = {
        f["name"]: tf.io.FixedLenFeature(f["shape"], getattr(tf, TF_DTYPES[f["dtype"]])) for f in features
    }
    inputs = [f for f in features if f["name"] != label["feature"]]
    classes = [str(c) for c in label["classes"]] if label.get("classes") else None
    files = sorted(os.path.join(path, n) for n in os.listdir(path)) if os.path.isdir(path) else [path]
    flatten = dataset.get("flatten_features", True)
    input_shape = dataset["input_shape"]
    xs, ys = [], []
    try:
        for n, record in enumerate(tf.data.TFRecordDataset(files)):
            example = tf.io.parse_single_example(record, spec)
            parts = [np.asarray(example[f["name"]].numpy(), dtype=np.float32).reshape(-1) for f in inputs]
            x = np.concatenate(parts) if flatten else parts[0]
            xs.append(x.reshape(input_shape))
            value = example[label["feature"]].numpy()
            if classes is None:
                ys.append(np.asarray(value, dtype=np.float32).reshape(-1))
            elif label["dtype"] == "int64":
                index = int(np.asarray(value).reshape(-1)[0])
                if not 0 <= index < len(classes):
                    raise TrainerError("trainer.data_invalid", f"record {n}: label {index} is not a class index")
                ys.append(float(index))
            else:
                word = np.asarray(value).reshape(-1)[0].decode("utf-8", errors="replace")
                if word not in classes:
                    raise TrainerError("trainer.data_invalid", f"record {n}: label {word[:80]!r} is not a class")
                ys.append(float(classes.index(word)))
    except tf.errors.OpError as e:
        raise TrainerError("trainer.data_invalid", f"cannot parse the TFRecord data: {e.message[:500]}")
    if not xs:
        raise TrainerError("trainer.data_invalid", "the TFRecord dataset holds no examples")
    y = np.asarray(ys, dtype=np.float32)
    return np.stack(xs).astype(np.float32), y, classes


# ---- preprocessing, with statistics from the training split only -----------------------


def preprocess(x, train_idx, dataset):
    """Apply scale, clip, missing-value imputation and normalization in that
    order (resize and rescale happened at decode time). Every statistic is
    computed on the training rows only. Returns the record for metrics.json."""
    import numpy as np

    pre = dataset.get("preprocessing") or {}
    record = {}
    if pre.get("scale") is not None:
        x *= np.float32(pre["scale"])
        record["scale"] = pre["scale"]
    if pre.get("clip") is not None:
        lo, hi = pre["clip"]
        np.clip(x, lo, hi, out=x)
        record["clip"] = [lo, hi]
    train = x[train_idx]
    axes = tuple(range(x.ndim - 1))
    if np.isnan(x).any():
        # Missing CSV cells: the training split's mean of that feature
        # (0 where the training split has no value at all).
        with np.errstate(invalid="ignore"):
            fill = np.nanmean(train, axis=axes) if len(train_idx) else np.zeros(x.shape[-1])
        fill = np.where(np.isnan(fill), 0.0, fill).astype(np.float32)
        missing = int(np.isnan(x).sum())
        x[:] = np.where(np.isnan(x), fill, x)
        record["imputation"] = {"missing_values": missing, "fill": fill.tolist(), "computed_on": "train"}
        train = x[train_idx]
    if pre.get("normalize"):
        mean = train.mean(axis=axes, dtype=np.float64)
        std = train.std(axis=axes, dtype=np.float64)
        std = np.where(std < 1e-12, 1.0, std)
        x -= mean.astype(np.float32)
        x /= std.astype(np.float32)
        record["normalization"] = {
            "mean": mean.tolist(),
            "std": std.tolist(),
            "computed_on": "train",
            "examples": int(len(train_idx)),
        }
    return record


def encode_labels(y, classes, dataset, one_hot):
    import numpy as np

    out_shape = dataset["output_shape"]
    if classes is None:
        return y.reshape((len(y), *out_shape)).astype(np.float32), "regression"
    k = len(classes)
    if out_shape == [1] and k == 2:
        return y.reshape(len(y), 1).astype(np.float32), "binary"
    if one_hot:
        return np.eye(k, dtype=np.float32)[y.astype(np.int64)], "one_hot"
    return y.astype(np.int64), "index"


# ---- training ----------------------------------------------------------------------


def make_progress_callback(events, steps_per_epoch):
    import keras

    class Progress(keras.callbacks.Callback):
        """Streams epoch/step events and stops on a non-finite loss
        (TerminateOnNaN's check, but recorded so the job fails instead of
        reporting a shortened run as success)."""

        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.last = 0.0
            self.non_finite = None
            self.history = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            events.emit("epoch_begin", epoch=self.epoch)

        def on_train_batch_end(self, batch, logs=None):
            logs = logs or {}
            loss = logs.get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self.non_finite = (self.epoch, min(batch + 1, steps_per_epoch), float(loss))
                self.model.stop_training = True
            now = time.monotonic()
            if batch == 0 or now - self.last >= STEP_EVENT_INTERVAL_S or self.non_finite:
                self.last = now
                metrics = clean_logs({k: v for k, v in logs.items() if k != "loss"})
                # Keras reports the last step a call could have run; the
                # last call of a finite epoch may stop earlier.
                step = min(batch + 1, steps_per_epoch)
                events.emit("step", epoch=self.epoch, step=step, loss=finite_or_none(loss), metrics=metrics)

        def on_epoch_end(self, epoch, logs=None):
            loss = (logs or {}).get("loss")
            if self.non_finite is None and loss is not None and not math.isfinite(float(loss)):
                self.non_finite = (epoch + 1, None, float(loss))
                self.model.stop_training = True
            logs = clean_logs(logs)
            self.history.append({"epoch": epoch + 1, **logs})
            events.emit("epoch", epoch=epoch + 1, metrics=logs)

    return Progress()


def train(spec, events):
    t0 = time.monotonic()
    timing = {}
    out = spec["output_dir"]
    os.makedirs(out, exist_ok=True)
    events.open_log(os.path.join(out, "training.log"))

    import numpy as np
    import keras
    import tensorflow as tf

    # Python warnings (Keras's "skipping optimizer variables", ...) and
    # library logging (absl, TensorFlow's Python side) go to training.log.
    import logging
    import warnings

    class ToTrainingLog(logging.Handler):
        def emit(self, record):
            events.note(f"{record.levelname} {record.name}: {record.getMessage()}")

    logging.getLogger().addHandler(ToTrainingLog(logging.INFO))
    logging.captureWarnings(True)
    warnings.simplefilter("default")

    events.emit(
        "start",
        python=sys.version.split()[0],
        tensorflow=tf.__version__,
        keras=keras.__version__,
        numpy=np.__version__,
    )
    timing["import_s"] = time.monotonic() - t0
    dataset, fit, execution = spec["dataset"], spec["fit"], spec["execution"]

    keras.utils.set_random_seed(fit["seed"])
    tf.config.experimental.enable_op_determinism()

    t = time.monotonic()
    model, config_before = load_model_guarded(spec["model"])
    check_model_shapes(model, dataset)
    timing["load_s"] = time.monotonic() - t
    events.emit(
        "model_loaded",
        parameters=int(model.count_params()),
        compile_source="compile_config" if read_compile_config(spec["model"]) else "job",
    )

    t = time.monotonic()
    kind = dataset["type"]
    if kind == "csv":
        x, y, classes = load_csv(spec["data"], dataset)
    elif kind == "image":
        x, y, classes = load_images(spec["data"], dataset, spec["limits"]["max_image_pixels"])
    else:
        x, y, classes = load_tfrecord(spec["data"], dataset)
    n = len(x)
    train_idx, val_idx = split_indices(n, fit["validation_split"], fit["split_seed"])
    if not train_idx:
        raise TrainerError("trainer.data_invalid", f"the training split is empty ({n} examples)")
    applied = preprocess(x, np.asarray(train_idx, dtype=np.int64), dataset)
    expected = tuple(dataset["input_shape"])
    if x.shape[1:] != expected:
        raise TrainerError("trainer.bad_shape", f"the data has shape {x.shape[1:]}, the definition says {expected}")
    split_record = {
        "algorithm": SPLIT_ALGORITHM,
        "examples": n,
        "validation_fraction": fit["validation_split"],
        "seed": fit["split_seed"],
        "train": len(train_idx),
        "validation": len(val_idx),
        "train_indices_sha256": indices_digest(train_idx),
        "validation_indices_sha256": indices_digest(val_idx),
    }
    with open(os.path.join(out, "split.json"), "w", encoding="utf-8") as f:
        json.dump({**split_record, "train_indices": train_idx, "validation_indices": val_idx}, f)
    timing["data_s"] = time.monotonic() - t
    events.emit("data", kind=kind, examples=n, train=len(train_idx), validation=len(val_idx))

    t = time.monotonic()
    batch = fit["batch_size"]
    train_steps = fit.get("steps_per_epoch") or math.ceil(len(train_idx) / batch)
    explicit = [fit[k] for k in ("steps_per_epoch", "validation_steps") if fit.get(k) and (k != "validation_steps" or val_idx)]
    spe = effective_steps_per_execution(execution["steps_per_execution"], explicit)
    compiled = compile_model(model, spec["model"], fit, execution, spe)
    y, label_encoding = encode_labels(y, classes, dataset, compiled["label_encoding"] == "one_hot")
    compiled["label_encoding"] = label_encoding
    timing["compile_s"] = time.monotonic() - t

    # Materialized once: the training pipeline only ever sees train rows.
    x_train, y_train = x[train_idx], y[train_idx]
    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    if fit["shuffle"]:
        train_ds = train_ds.shuffle(len(train_idx), seed=fit["seed"], reshuffle_each_iteration=True)
    if fit.get("steps_per_epoch") is not None:
        train_ds = train_ds.repeat()
    train_ds = train_ds.batch(fit["batch_size"]).prefetch(tf.data.AUTOTUNE)
    val_ds = None
    if val_idx:
        val_base = tf.data.Dataset.from_tensor_slices((x[val_idx], y[val_idx]))
        val_ds = val_base.repeat() if fit.get("validation_steps") is not None else val_base
        val_ds = val_ds.batch(fit["batch_size"])

    progress = make_progress_callback(events, train_steps)
    t = time.monotonic()
    model.fit(
        train_ds,
        epochs=fit["epochs"],
        initial_epoch=fit["initial_epoch"],
        steps_per_epoch=fit.get("steps_per_epoch"),
        validation_data=val_ds,
        validation_steps=fit.get("validation_steps") if val_ds is not None else None,
        validation_freq=fit["validation_freq"],
        callbacks=[progress],
        verbose=0,
    )
    timing["fit_s"] = time.monotonic() - t
    if progress.non_finite is not None:
        epoch, step, value = progress.non_finite
        where = f"epoch {epoch}" + (f", step {step}" if step else "")
        raise TrainerError("trainer.nan_loss", f"the training loss became {value} at {where}; training stopped")
    done_epochs = len(progress.history)
    if done_epochs != fit["epochs"] - fit["initial_epoch"]:
        raise TrainerError(
            "trainer.incomplete",
            f"training ran {done_epochs} epochs, not {fit['epochs'] - fit['initial_epoch']}",
        )
    # The loaded model must not have changed a global during training either
    # (e.g. a layer that calls a setter the first time it runs).
    changed = config_changes(config_before, config_snapshot())
    if changed:
        raise TrainerError("trainer.config_tampered", "training changed Keras/TensorFlow globals: " + ", ".join(changed))

    final = None
    if val_idx:
        t = time.monotonic()
        full_val = tf.data.Dataset.from_tensor_slices((x[val_idx], y[val_idx])).batch(fit["batch_size"])
        result = model.evaluate(full_val, return_dict=True, verbose=0)
        timing["evaluate_s"] = time.monotonic() - t
        final = {"split": "validation", "examples": len(val_idx), **clean_logs(result)}
        events.emit("evaluation", examples=len(val_idx), metrics=clean_logs(result))

    t = time.monotonic()
    model.save(os.path.join(out, "model.keras"))
    timing["save_s"] = time.monotonic() - t
    timing["total_s"] = time.monotonic() - t0
    metrics = {
        "schema": METRICS_SCHEMA,
        "history": progress.history,
        # Optimizer steps actually taken: proves steps_per_epoch and
        # initial_epoch were honoured ((epochs - initial_epoch) * steps).
        "steps_run": int(model.optimizer.iterations.numpy()),
        "final_evaluation": final,
        "fit": {
            k: fit.get(k)
            for k in (
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
                "optimizer",
                "loss",
                "metrics",
            )
        },
        "compile": compiled,
        "split": split_record,
        "preprocessing": applied,
        "keras_config": config_before,
        "versions": {
            "python": sys.version.split()[0],
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "timing": {k: round(v, 4) for k, v in timing.items()},
    }
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=1, allow_nan=False, default=finite_or_none)
    events.emit("done", epochs=done_epochs, outputs=["model.keras", "metrics.json", "split.json", "training.log"])


def error_code_for(exc):
    """Map an unexpected exception to a code."""
    if isinstance(exc, MemoryError):
        return "trainer.out_of_memory"
    name = type(exc).__name__
    if name == "ResourceExhaustedError":
        return "trainer.out_of_memory"
    # Keras reports incompatible tensors as ValueError, TensorFlow as
    # InvalidArgumentError; the model and data shapes were checked up front,
    # so these are the cases that check cannot see (e.g. inside the model).
    if name in ("ValueError", "InvalidArgumentError") and "shape" in str(exc).lower():
        return "trainer.bad_shape"
    return "trainer.exception"


def main(argv):
    # Events own the original stdout; fd 1 now goes to stderr, so nothing a
    # library prints can end up in the event stream.
    event_stream = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    events = Events(event_stream)
    if len(argv) != 2:
        events.emit("error", code="trainer.usage", message="usage: train.py <job-spec.json>")
        return EXIT_USAGE
    try:
        spec = read_spec(argv[1])
        train(spec, events)
        return EXIT_OK
    except TrainerError as e:
        events.emit("error", code=e.code, message=e.message[:MAX_MESSAGE])
    except BaseException as e:  # noqa: BLE001 - report everything, then fail
        if isinstance(e, KeyboardInterrupt):
            code, message = "trainer.interrupted", "interrupted"
        else:
            code, message = error_code_for(e), f"{type(e).__name__}: {e}"
        events.note(traceback.format_exc())
        try:
            events.emit("error", code=code, message=message[:MAX_MESSAGE])
        except BaseException:  # noqa: BLE001 - the stream itself failed
            pass
    finally:
        events.close()
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main(sys.argv))
