"""Checks of the trainer's Keras-globals guard, without pytest.

Run by the slow-tier Rust test `config_guard_catches_every_global_change` as

    <runtime>/bin/python -I -B check_config_guard.py TRAIN_PY MODEL.keras

It imports the trainer from TRAIN_PY (the exact bytes the worker runs) and
checks that `config_snapshot`/`config_changes` see every global a model
could change while loading, and that `load_model_guarded` fails a load that
changes one. A real model cannot do that any more (safe_mode and the Rust
gate refuse the Lambda it would need), so the load is simulated by wrapping
`keras.saving.load_model` here, in the test, never in the trainer.

Prints one line per check and closes with "N passed, M failed"; exit 1 on
any failure.
"""

import importlib.util
import sys

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail and not ok else ''}")


def main():
    train_py, model_path = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("veritrain_trainer", train_py)
    trainer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(trainer)

    import keras
    import tensorflow as tf

    # Each case: (global that must be reported, change, undo).
    cases = [
        ("keras.config.max_epochs", lambda: keras.config.set_max_epochs(1), lambda: keras.config.set_max_epochs(None)),
        (
            "keras.config.max_steps_per_epoch",
            lambda: keras.config.set_max_steps_per_epoch(1),
            lambda: keras.config.set_max_steps_per_epoch(None),
        ),
        ("keras.config.floatx", lambda: keras.config.set_floatx("float16"), lambda: keras.config.set_floatx("float32")),
        ("keras.config.epsilon", lambda: keras.config.set_epsilon(1.0), lambda: keras.config.set_epsilon(1e-7)),
        (
            "keras.config.image_data_format",
            lambda: keras.config.set_image_data_format("channels_first"),
            lambda: keras.config.set_image_data_format("channels_last"),
        ),
        (
            "keras.config.dtype_policy",
            lambda: keras.config.set_dtype_policy("mixed_float16"),
            lambda: keras.config.set_dtype_policy("float32"),
        ),
        (
            "keras.safe_mode_saving",
            keras.config.enable_unsafe_deserialization,
            lambda: __import__("keras.src.backend.common.global_state", fromlist=["x"]).set_global_attribute(
                "safe_mode_saving", None
            ),
        ),
        (
            "keras.config.is_traceback_filtering_enabled",
            keras.config.disable_traceback_filtering,
            keras.config.enable_traceback_filtering,
        ),
        (
            "keras.config.is_interactive_logging_enabled",
            keras.config.disable_interactive_logging,
            keras.config.enable_interactive_logging,
        ),
        (
            # enable_flash_attention() restores the default (None).
            "keras.config.is_flash_attention_enabled",
            keras.config.disable_flash_attention,
            keras.config.enable_flash_attention,
        ),
        (
            "keras.custom_objects",
            lambda: keras.saving.get_custom_objects().__setitem__("Evil>x", object),
            lambda: keras.saving.get_custom_objects().pop("Evil>x"),
        ),
        ("tf.functions_run_eagerly", lambda: tf.config.run_functions_eagerly(True), lambda: tf.config.run_functions_eagerly(False)),
    ]

    baseline = trainer.config_snapshot()
    check("snapshot is stable", trainer.config_changes(baseline, trainer.config_snapshot()) == [])
    for name, change, undo in cases:
        before = trainer.config_snapshot()
        change()
        changed = trainer.config_changes(before, trainer.config_snapshot())
        undo()
        check(f"detects {name}", changed == [name], f"reported {changed}")
        check(f"undo of {name} restores the snapshot", trainer.config_changes(before, trainer.config_snapshot()) == [])

    # The guarded loader on a benign model: loads, reports nothing.
    model, _ = trainer.load_model_guarded(model_path)
    check("benign model loads through the guard", model is not None)

    # A load that flips a global, as a Lambda calling keras.config.set_max_epochs(1) did.
    real = keras.saving.load_model

    def tampering_load(*args, **kwargs):
        m = real(*args, **kwargs)
        keras.config.set_max_epochs(1)
        return m

    keras.saving.load_model = tampering_load
    try:
        trainer.load_model_guarded(model_path)
        check("tampering load is refused", False, "no error raised")
    except trainer.TrainerError as e:
        check("tampering load is refused", e.code == "trainer.config_tampered" and "keras.config.max_epochs" in e.message, f"{e.code}: {e.message}")
    finally:
        keras.saving.load_model = real
        keras.config.set_max_epochs(None)

    # The loader is called with safe_mode=True and compile=False, always.
    seen = {}

    def recording_load(path, **kwargs):
        seen.update(kwargs)
        return real(path, **kwargs)

    keras.saving.load_model = recording_load
    try:
        trainer.load_model_guarded(model_path)
    finally:
        keras.saving.load_model = real
    check("load_model gets safe_mode=True, compile=False", seen == {"safe_mode": True, "compile": False}, repr(seen))

    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
