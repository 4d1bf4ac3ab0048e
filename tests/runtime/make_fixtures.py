"""Test fixtures for the trainer, made with the installed runtime itself.

Run by the slow-tier Rust tests as `<runtime>/bin/python -I -B
make_fixtures.py WHAT ...`. Everything is generated from a seed; nothing is
downloaded. Models are tiny on purpose: the tests check behaviour, not
accuracy records.

  model --arch mlp|cnn --input SHAPE --output N [--activation A]
        [--compile OPTIMIZER:LOSS[:METRIC,...]] [--learning-rate LR] --out M.keras
  images --classes K --per-class N --size H,W [--mode rgb|grayscale]
         [--odd-size] [--jpeg] [--flat] --out DIR|FILE.zip
  tfrecord --rows N --features F --classes K --seed S --out FILE
"""

import argparse
import io
import os
import sys
import zipfile


def shape(text):
    return tuple(int(d) for d in text.split(","))


def make_model(args):
    import keras

    keras.utils.set_random_seed(args.seed)
    inputs = keras.Input(shape(args.input))
    if args.arch == "mlp":
        x = keras.layers.Dense(args.hidden, activation="relu")(inputs)
    elif args.arch == "cnn":
        x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Conv2D(16, 3, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(args.hidden, activation="relu")(x)
    elif args.arch == "lambda":
        # Marshalled Python bytecode in config.json: safe_mode must refuse it.
        x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    else:
        raise SystemExit(f"unknown arch {args.arch}")
    outputs = keras.layers.Dense(args.output, activation=args.activation)(x)
    model = keras.Model(inputs, outputs)
    if args.compile:
        parts = args.compile.split(":")
        optimizer = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}[parts[0]](
            learning_rate=args.learning_rate
        )
        metrics = parts[2].split(",") if len(parts) > 2 and parts[2] else []
        # jit_compile=False is saved in compile_config; the trainer must
        # ignore it (tests check metrics.json's ignored_from_model).
        model.compile(optimizer=optimizer, loss=parts[1], metrics=metrics, jit_compile=False)
    model.save(args.out)


def make_images(args):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(args.seed)
    h, w = shape(args.size)
    mode = {"rgb": "RGB", "grayscale": "L"}[args.mode]
    files = {}
    labels = []
    for k in range(args.classes):
        for i in range(args.per_class):
            hh, ww = (h + 3, w + 5) if args.odd_size and i % 2 else (h, w)
            # Class k is a brightness band: learnable by a tiny CNN.
            base = 40 + k * (160 // max(args.classes - 1, 1))
            pixels = np.clip(rng.normal(base, 12, size=(hh, ww, len(mode))), 0, 255).astype(np.uint8)
            img = Image.fromarray(pixels[:, :, 0] if mode == "L" else pixels)
            buf = io.BytesIO()
            fmt, ext = ("JPEG", "jpg") if args.jpeg and i % 3 == 0 else ("PNG", "png")
            img.save(buf, format=fmt)
            name = f"img{k}_{i:04d}.{ext}" if args.flat else f"class{k}/img{i:04d}.{ext}"
            files[name] = buf.getvalue()
            labels.append((name, f"class{k}"))
    if args.flat:
        files["meta/labels.csv"] = ("filename,label\n" + "".join(f"{n},{c}\n" for n, c in labels)).encode()
    if args.out.endswith(".zip"):
        with zipfile.ZipFile(args.out, "w") as z:
            for name, data in sorted(files.items()):
                z.writestr(name, data)
    else:
        for name, data in files.items():
            path = os.path.join(args.out, *name.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)


def make_tfrecord(args):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(args.seed)
    centers = rng.normal(0, 3, size=(args.classes, args.features))
    with tf.io.TFRecordWriter(args.out) as writer:
        for _ in range(args.rows):
            label = int(rng.integers(args.classes))
            x = centers[label] + rng.normal(0, 1, size=args.features)
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "x": tf.train.Feature(float_list=tf.train.FloatList(value=x.astype(np.float32))),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    }
                )
            )
            writer.write(example.SerializeToString())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    m = sub.add_parser("model")
    m.add_argument("--arch", required=True)
    m.add_argument("--input", required=True)
    m.add_argument("--output", type=int, required=True)
    m.add_argument("--hidden", type=int, default=16)
    m.add_argument("--activation", default="softmax")
    m.add_argument("--compile")
    m.add_argument("--learning-rate", type=float, default=0.01)
    m.add_argument("--seed", type=int, default=1)
    m.add_argument("--out", required=True)
    i = sub.add_parser("images")
    i.add_argument("--classes", type=int, required=True)
    i.add_argument("--per-class", type=int, required=True)
    i.add_argument("--size", required=True)
    i.add_argument("--mode", default="rgb")
    i.add_argument("--odd-size", action="store_true")
    i.add_argument("--jpeg", action="store_true")
    i.add_argument("--flat", action="store_true")
    i.add_argument("--seed", type=int, default=1)
    i.add_argument("--out", required=True)
    t = sub.add_parser("tfrecord")
    t.add_argument("--rows", type=int, required=True)
    t.add_argument("--features", type=int, required=True)
    t.add_argument("--classes", type=int, required=True)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--out", required=True)
    args = p.parse_args()
    {"model": make_model, "images": make_images, "tfrecord": make_tfrecord}[args.what](args)


if __name__ == "__main__":
    sys.exit(main())
