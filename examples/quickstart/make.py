"""The quickstart example: a synthetic dataset and an untrained model.

`veritrain quickstart` trains `model.keras` on `data.csv` as described by
`definition.yaml` and `job.yaml`. This script makes the two generated files;
run it with the installed trainer runtime's interpreter, from the repository
root:

  .venv/runtime/venv/bin/python -I -B examples/quickstart/make.py --out examples/quickstart

Everything comes from a seed and nothing is downloaded: `data.csv` is the
same bytes on every run; `model.keras` differs between runs only in the save
date Keras writes into it (`metadata.json`, and the zip entries' times).

The data is made up. Each row is one reading of a greenhouse plant's
sensors, labelled with the plant's watering state. Each state is a gaussian
cluster around a typical reading, wide enough that the clusters overlap: a
small MLP learns most of it (about 0.85-0.9 validation accuracy after 10
epochs), not all of it.
"""

import argparse
import os
import sys

# Column name -> (decimals written, noise standard deviation). The header and
# the definition's `columns` must list these in this order.
FEATURES = {
    "air_temp_c": (2, 2.2),
    "air_humidity_pct": (1, 7.2),
    "soil_moisture_pct": (1, 6.8),
    "light_klux": (2, 5.5),
}
# Class -> the typical reading of each feature, in FEATURES order. The order
# of the classes is the order of the definition's category `values`.
CENTERS = {
    "healthy": (22.0, 60.0, 35.0, 30.0),
    "underwatered": (25.5, 50.0, 22.0, 36.0),
    "overwatered": (20.5, 70.0, 48.0, 25.0),
}
LABEL = "category"
# Physical ranges the readings are clipped to, so no cell reads as nonsense
# (negative humidity) and none rounds to "-0.0".
RANGES = {
    "air_temp_c": (5.0, 45.0),
    "air_humidity_pct": (5.0, 100.0),
    "soil_moisture_pct": (1.0, 100.0),
    "light_klux": (0.5, 100.0),
}


def make_data(path, rows, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    classes = list(CENTERS)
    # Balanced classes, in a seeded random order (the split is by row).
    labels = rng.permutation(np.arange(rows) % len(classes))
    stds = np.array([sd for _, sd in FEATURES.values()])
    lines = [",".join([*FEATURES, LABEL])]
    for k in labels:
        x = np.array(CENTERS[classes[k]]) + rng.normal(0.0, 1.0, size=len(FEATURES)) * stds
        cells = []
        for (name, (decimals, _)), value in zip(FEATURES.items(), x):
            lo, hi = RANGES[name]
            cells.append(f"{min(max(float(value), lo), hi):.{decimals}f}")
        lines.append(",".join([*cells, classes[k]]))
    # newline="" and explicit "\n": the same bytes on every platform.
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")


def make_model(path, seed):
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(len(FEATURES),), name="readings")
    # An explicit dtype gives each layer its own dtype policy object. With
    # the default, the layers share the global one and Keras writes that
    # object's memory address into config.json ("shared_object_id"), which
    # would change the file's bytes from run to run.
    x = keras.layers.Dense(16, activation="relu", dtype="float32", name="hidden")(inputs)
    outputs = keras.layers.Dense(
        len(CENTERS), activation="softmax", dtype="float32", name="watering_state"
    )(x)
    model = keras.Model(inputs, outputs, name="quickstart_classifier")
    # Saved compiled: the trainer takes optimizer, loss and metrics from the
    # model's compile_config, so job.yaml must not choose them.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--out", required=True, help="folder to write data.csv and model.keras to")
    p.add_argument("--rows", type=int, default=600)
    p.add_argument("--seed", type=int, default=20240611)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    make_data(os.path.join(args.out, "data.csv"), args.rows, args.seed)
    make_model(os.path.join(args.out, "model.keras"), args.seed)


if __name__ == "__main__":
    sys.exit(main())
