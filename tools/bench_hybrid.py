"""The hybrid classifier (SOM of rows -> RBF -> attention) next to a plain MLP and a small CNN, in one run.

Training sets, the same images for the three models:
- 1,000: a fixed stratified sample of MNIST train (100 per class, seed 0:
  `train.recipes.som_rbf_attention.stratified_sample`, what `--train-images 1000` trains on);
- 60,000: all of MNIST train.
Every model is scored on the 10,000 MNIST test images: accuracy, its binomial standard error
`sqrt(p (1 - p) / 10000)`, and training wall time on this CPU (one process, `flock` advised).

- hybrid: `python -m train som_rbf_attention` through the trainer (one device, float32): the
  default preset on 1,000 images (30 epochs x 31 steps of 32), the `full` preset on 60,000
  (10 epochs x 469 steps of 128). Its time includes the SOM's batch map on all training rows
  and the RBF k-means. Its settings were chosen on 5,000 held-out training images outside the
  1,000-image sample, never on the test set.
- sketch (`--models sketch`, not run by default): the founding sketch as written,
  `Sequential([Input((28, 28)), SelfOrganizingMap(8, 8, output_mode="similarities"), RBF(256),
  AttentionPooling(), Dense(10, softmax)])`; the map by Kohonen's batch map on the training rows
  (PCA start, 10 updates), the RBF centres by k-means on the map's similarities, then `fit` like
  the baselines below (the map stays fixed).
- MLP: Flatten, Dense(256, relu), Dropout(0.2), Dense(10): 203,530 weights.
- CNN: Conv(16, 3x3, relu), MaxPool(2), Conv(32, 3x3, relu), MaxPool(2), Flatten, Dropout(0.3),
  Dense(10): 12,810 weights.
  Both: Adam 1e-3, cross-entropy, shuffled with seed 0; on 1,000 images 30 epochs of batches of
  32, on 60,000 `--baseline-epochs-full` (default 10) epochs of batches of 128: the hybrid's
  passes over the data. No early stopping, no tuning.

Every row is the mean +- standard deviation over `--seeds` runs (default 3: seeds 0, 1, 2).
A seed sets the weights, the order of the batches, dropout and (hybrid) the RBF k-means; the
1,000-image sample never changes.

Selection without the test set: `--holdout 5000` scores the 1,000-image models on 5,000
training images outside the sample (a fixed draw, seed 1) instead of the test set, and
`--set NAME=VALUE` (repeatable) changes a field of the hybrid's recipe config (e.g.
`--set epochs=60 --set heads=2`); `--models hybrid` skips the baselines. This is how the
hybrid's settings are chosen (docs/som_rbf_attention.md); its training then runs through `fit`
without the trainer's test-set evaluation.

    flock /tmp/zoo_heavy.lock python tools/bench_hybrid.py [--sizes 1000 60000] [--seeds 3] [--json]
    python tools/bench_hybrid.py --sizes 1000 --holdout 5000 --models hybrid --set epochs=60
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_text import cpu_name  # noqa: E402


def mnist():
    """`(train images, train labels), (test images, test labels)`: float32 (N, 28, 28, 1) in [0, 1]."""
    from zoo.data import load_images

    train = load_images("assets:mnist", "train")[:2]
    test = load_images("assets:mnist", "test")[:2]
    return train, test


def baseline(kind: str):
    """The MLP or the small CNN (module docstring), uncompiled."""
    import keras
    from keras import layers

    if kind == "mlp":
        return keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(256, activation="relu"),
                                 layers.Dropout(0.2), layers.Dense(10)], name="mlp")
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D(),
                             layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
                             layers.Dropout(0.3), layers.Dense(10)], name="cnn")


def sketch():
    """The founding sketch as written (module docstring), uncompiled, its map not fitted."""
    import keras

    from zoo.layers import RBF, AttentionPooling, SelfOrganizingMap

    return keras.Sequential([keras.Input((28, 28)), SelfOrganizingMap(8, 8, output_mode="similarities"), RBF(256),
                             AttentionPooling(), keras.layers.Dense(10, "softmax")], name="sketch")


def train_baseline(kind: str, x, y, epochs: int, batch_size: int, seed: int = 0):
    """`(model, seconds)`: Adam 1e-3, cross-entropy, shuffles and weights seeded by `seed`; the
    sketch first fits its map (batch map) and RBF centres (k-means) on the training images."""
    import keras

    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    if kind == "sketch":
        x = x[..., 0]  # (N, 28, 28): 28 rows per image
        model = sketch()
        som, rbf = model.layers[0], model.layers[1]
        som.initialize(x, "pca")
        som.train_batch_map(x, steps=10)
        rbf.adapt(x, feature_model=som, seed=seed)
        loss = keras.losses.SparseCategoricalCrossentropy()
    else:
        model = baseline(kind)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss)
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    return model, time.perf_counter() - started


def hybrid_config(preset: str, seed: int, overrides: dict | None = None):
    """The recipe's preset with `seed` and the `--set` overrides (checked like command-line flags)."""
    import dataclasses

    from train.recipes import get_recipe

    config = get_recipe("som_rbf_attention").presets[preset]
    return dataclasses.replace(config, seed=seed, **(overrides or {}))


def train_hybrid(config):
    """`(model, seconds)`: the recipe through the trainer, in a temporary run dir."""
    from train.recipes import get_recipe
    from train.trainer import train

    recipe = get_recipe("som_rbf_attention")
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        model = train(recipe, config, Path(run_dir) / "run", "one_device", verbose=False)
        return model, time.perf_counter() - started


def train_hybrid_fit(config, x, y):
    """`(model, seconds)`: the recipe's model and training batches (as `build` makes them) trained
    with `fit` for the recipe's steps: no evaluation on any split while training (selection)."""
    import keras
    import tensorflow as tf

    from train.recipes.som_rbf_attention import make_model

    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()
    model = make_model(config, [str(k) for k in range(10)], tuple(x.shape[1:]), x)
    data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed).repeat()
            .batch(config.batch_size, drop_remainder=True).prefetch(2))
    model.fit(data, epochs=config.epochs, steps_per_epoch=config.steps_per_epoch, verbose=0, shuffle=False)
    return model, time.perf_counter() - started


def score(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and its binomial standard error."""
    p = float(np.mean(probabilities.argmax(-1) == labels))
    return p, float(np.sqrt(p * (1 - p) / len(labels)))


def holdout_indices(labels: np.ndarray, sample: np.ndarray, count: int) -> np.ndarray:
    """`count` training indices outside `sample`, a fixed seeded draw (seed 1)."""
    rest = np.setdiff1d(np.arange(len(labels)), sample)
    return np.sort(np.random.default_rng(1).permutation(rest)[:count])


def run_size(size: int, data, full_epochs: int, seeds: int = 1, holdout: int = 0,
             overrides: dict | None = None, models: tuple[str, ...] = ("hybrid", "mlp", "cnn")) -> list[dict]:
    """The models trained on `size` images with seeds `0..seeds-1`, scored on the test set (or on
    `holdout` training images outside the sample): one row per model and seed."""
    from train.recipes.som_rbf_attention import stratified_sample

    (x, y), (test_x, test_y) = data
    chosen = stratified_sample(y, 0 if size >= len(y) else size)
    if holdout:
        if size >= len(y):
            raise SystemExit("--holdout needs --sizes 1000: all training images are the training set at 60,000")
        held = holdout_indices(y, chosen, holdout)
        test_x, test_y = x[held], y[held]
    x, y = x[chosen], y[chosen]
    rows = []
    for seed in range(seeds):
        if "hybrid" in models:
            config = hybrid_config("default" if size == 1000 else "full", seed, overrides)
            model, seconds = train_hybrid_fit(config, x, y) if holdout else train_hybrid(config)
            rows.append({"model": "hybrid", "images": len(x), "seed": seed, "seconds": seconds,
                         **dict(zip(("accuracy", "stderr"), score(model.predict_proba(test_x)[0], test_y)))})
        epochs, batch = (30, 32) if size == 1000 else (full_epochs, 128)
        for kind in ("sketch", "mlp", "cnn"):
            if kind not in models:
                continue
            model, seconds = train_baseline(kind, x, y, epochs, batch, seed)
            logits = model.predict(test_x[..., 0] if kind == "sketch" else test_x, batch_size=1024, verbose=0)
            rows.append({"model": kind, "images": len(x), "seed": seed, "seconds": seconds, "epochs": epochs,
                         **dict(zip(("accuracy", "stderr"), score(logits, test_y)))})
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """One row per (model, images): mean and standard deviation (ddof=1) over the seeds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["images"]), []).append(row)
    summary = []
    for (model, images), group in groups.items():
        accuracy = np.array([r["accuracy"] for r in group])
        seconds = np.array([r["seconds"] for r in group])
        summary.append({"model": model, "images": images, "seeds": len(group), "accuracy": float(accuracy.mean()),
                        "std": float(accuracy.std(ddof=1)) if len(group) > 1 else 0.0,
                        "accuracies": accuracy.tolist(), "seconds": float(seconds.mean())})
    return summary


def parse_overrides(pairs: list[str]) -> dict:
    """`["epochs=60", "som_grid=10x10"]` -> typed values of the hybrid recipe's config fields."""
    import typing

    from train.config import parse_field
    from train.recipes.som_rbf_attention import Config

    hints = typing.get_type_hints(Config)
    values = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in hints or not value:
            raise SystemExit(f"--set {pair}: expected NAME=VALUE with NAME one of {', '.join(sorted(hints))}")
        try:
            values[name] = parse_field(hints[name], [value])
        except ValueError as error:
            raise SystemExit(f"--set {pair}: {error}") from None
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 60000], choices=[1000, 60000],
                        help="training set sizes to run (default both)")
    parser.add_argument("--seeds", type=int, default=3, help="runs per model, seeds 0..N-1 (default 3)")
    parser.add_argument("--holdout", type=int, default=0,
                        help="score on this many training images outside the 1,000 (selection), not the test set")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="a field of the hybrid's recipe config (repeatable), e.g. epochs=60")
    parser.add_argument("--models", nargs="+", default=["hybrid", "mlp", "cnn"],
                        choices=["hybrid", "sketch", "mlp", "cnn"], help="models to train (default hybrid mlp cnn)")
    parser.add_argument("--baseline-epochs-full", type=int, default=10, help="MLP/CNN epochs on 60,000 images")
    parser.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    overrides = parse_overrides(args.overrides)
    data = mnist()
    rows = [row for size in args.sizes
            for row in run_size(size, data, args.baseline_epochs_full, args.seeds, args.holdout, overrides,
                                tuple(args.models))]
    where = (f"{args.holdout:,} held-out MNIST training images (outside the 1,000)" if args.holdout
             else "MNIST test (10,000 images)")
    settings = " ".join(f"{k}={v}" for k, v in overrides.items()) or "recipe defaults"
    print(f"{where}; hybrid: {settings}; {args.seeds} seed(s); CPU: {cpu_name()}")
    print(f"{'model':<8} {'train images':>12} {'accuracy':>9} {'+- std':>7} {'seeds':>5} {'train time':>11}  per seed")
    for row in summarize(rows):
        each = " ".join(f"{100 * a:.2f}" for a in row["accuracies"])
        print(f"{row['model']:<8} {row['images']:>12,} {100 * row['accuracy']:>8.2f}% {100 * row['std']:>6.2f}% "
              f"{row['seeds']:>5} {row['seconds']:>10.1f}s  {each}")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
