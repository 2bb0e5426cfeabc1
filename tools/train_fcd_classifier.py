"""Train the classifier whose features define zoo's Frechet classifier distance (FCD).

    python tools/train_fcd_classifier.py [--data assets:mnist] [--out zoo/assets/fcd/mnist.keras]
                                         [--epochs E] [--batch-size B] [--channels C]
                                         [--size H W] [--seed S] [--limit N]

`--data` is any labelled image source `zoo.data.load_images` reads (assets:NAME, a folder of
MNIST idx files, a folder with class subfolders, tfds:NAME); it trains on the "train" split and
prints the accuracy on the "test" split. The model is a plain Keras functional CNN (no custom
classes, so it loads in safe mode anywhere) whose penultimate layer is named "features"
(Dense 128, ReLU): `zoo.evaluation.frechet.FrechetClassifierDistance` reads it. It is written to a
temporary name, then renamed, so an interrupted run leaves the old file in place.
See zoo/assets/fcd/README.md for the shipped one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from zoo.data import load_images  # noqa: E402
from zoo.errors import ArgumentParser, UserError  # noqa: E402
from zoo.evaluation.frechet import FEATURE_LAYER  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "zoo" / "assets" / "fcd" / "mnist.keras"


def build_classifier(image_shape: tuple[int, int, int], classes: int) -> keras.Model:
    """Two conv blocks (valid 3x3 convs, 2x2 max-pool) -> Dense 128 "features" -> logits."""
    inputs = keras.Input(image_shape, name="images")  # (B, H, W, C) in [0, 1]
    x = inputs
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, activation="relu")(x)
        x = keras.layers.Conv2D(filters, 3, activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)  # MNIST: (B, 12, 12, 32), then (B, 4, 4, 64)
    x = keras.layers.Flatten()(x)
    features = keras.layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)  # (B, 128)
    x = keras.layers.Dropout(0.5)(features)
    logits = keras.layers.Dense(classes, name="logits")(x)  # (B, classes)
    return keras.Model(inputs, logits, name="fcd_classifier")


def load_split(args: argparse.Namespace, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """float32 images in [0, 1] and int labels of one split; UserError without labels."""
    images, labels, names = load_images(args.data, split, channels=args.channels,
                                        size=tuple(args.size) if args.size else None, limit=args.limit)
    if labels is None:
        raise UserError(f"{args.data} has no labels: the FCD classifier needs labelled data (MNIST idx "
                        "files, class subfolders or a TFDS dataset with a 'label' feature)")
    return images, labels, names


def save_atomically(model: keras.Model, out: Path) -> None:
    """Save without optimizer state under a temporary name, then rename over `out`."""
    plain = keras.Model(model.inputs, model.outputs, name=model.name)  # uncompiled: no optimizer
    tmp = out.with_name(f".{out.stem}.tmp.keras")
    try:
        plain.save(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def train(args: argparse.Namespace) -> float:
    """Train, save, and return the test accuracy."""
    keras.utils.set_random_seed(args.seed)
    x_train, y_train, names = load_split(args, "train")
    x_test, y_test, _ = load_split(args, "test")
    classes = max(len(names or []), int(y_train.max()) + 1)
    model = build_classifier(x_train.shape[1:], classes)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2,
              validation_data=(x_test, y_test))
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    save_atomically(model, args.out)
    print(f"test accuracy {accuracy:.4f} on {len(x_test)} {args.data} test images; "
          f"trained {args.epochs} epochs on {len(x_train)} images in {seconds:.0f} s; wrote {args.out} "
          f"({args.out.stat().st_size / 1e6:.2f} MB)")
    return accuracy


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python tools/train_fcd_classifier.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="assets:mnist", help="labelled images (default assets:mnist)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .keras file to write")
    parser.add_argument("--epochs", type=int, default=4, help="passes over the training split (default 4)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--channels", type=int, default=1, help="1 gray (default), 3 RGB, ...")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="resize images to H W (default: their own size)")
    parser.add_argument("--limit", type=int, help="at most this many images per split (for tests)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1:
        parser.error("--epochs and --batch-size must be at least 1")
    if not args.out.parent.is_dir():
        parser.error(f"output folder {args.out.parent} does not exist: create it or choose another --out")
    if args.out.suffix != ".keras":
        parser.error(f"--out {args.out} must end in .keras")
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        train(parse(argv))
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
