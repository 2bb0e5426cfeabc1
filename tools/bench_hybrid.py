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
- MLP: Flatten, Dense(256, relu), Dropout(0.2), Dense(10): 203,530 weights.
- CNN: Conv(16, 3x3, relu), MaxPool(2), Conv(32, 3x3, relu), MaxPool(2), Flatten, Dropout(0.3),
  Dense(10): 12,810 weights.
  Both: Adam 1e-3, cross-entropy, shuffled with seed 0; on 1,000 images 30 epochs of batches of
  32, on 60,000 `--baseline-epochs-full` (default 10) epochs of batches of 128: the hybrid's
  passes over the data. No early stopping, no tuning.

    flock /tmp/zoo_heavy.lock python tools/bench_hybrid.py [--sizes 1000 60000] [--json]
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


def train_baseline(kind: str, x, y, epochs: int, batch_size: int):
    """`(model, seconds)`: Adam 1e-3, cross-entropy, seeded shuffles."""
    import keras

    keras.utils.set_random_seed(0)
    model = baseline(kind)
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    return model, time.perf_counter() - started


def train_hybrid(preset: str):
    """`(model, seconds)`: the recipe's preset through the trainer, in a temporary run dir."""
    from train.recipes import get_recipe
    from train.trainer import train

    recipe = get_recipe("som_rbf_attention")
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        model = train(recipe, recipe.presets[preset], Path(run_dir) / "run", "one_device", verbose=False)
        return model, time.perf_counter() - started


def score(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and its binomial standard error."""
    p = float(np.mean(probabilities.argmax(-1) == labels))
    return p, float(np.sqrt(p * (1 - p) / len(labels)))


def run_size(size: int, data, full_epochs: int) -> list[dict]:
    """The three models trained on `size` images, scored on the test set."""
    from train.recipes.som_rbf_attention import stratified_sample

    (x, y), (test_x, test_y) = data
    chosen = stratified_sample(y, 0 if size >= len(y) else size)
    x, y = x[chosen], y[chosen]
    rows = []
    model, seconds = train_hybrid("default" if size == 1000 else "full")
    rows.append({"model": "hybrid", "images": len(x), "seconds": seconds,
                 **dict(zip(("accuracy", "stderr"), score(model.predict_proba(test_x)[0], test_y)))})
    epochs, batch = (30, 32) if size == 1000 else (full_epochs, 128)
    for kind in ("mlp", "cnn"):
        model, seconds = train_baseline(kind, x, y, epochs, batch)
        logits = model.predict(test_x, batch_size=1024, verbose=0)
        rows.append({"model": kind, "images": len(x), "seconds": seconds, "epochs": epochs,
                     **dict(zip(("accuracy", "stderr"), score(logits, test_y)))})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 60000], choices=[1000, 60000],
                        help="training set sizes to run (default both)")
    parser.add_argument("--baseline-epochs-full", type=int, default=10, help="MLP/CNN epochs on 60,000 images")
    parser.add_argument("--json", action="store_true", help="also print the rows as one JSON line")
    args = parser.parse_args(argv)
    data = mnist()
    rows = [row for size in args.sizes for row in run_size(size, data, args.baseline_epochs_full)]
    print(f"MNIST test (10,000 images); CPU: {cpu_name()}, {os.cpu_count()} logical cores")
    print(f"{'model':<8} {'train images':>12} {'accuracy':>9} {'+- s.e.':>8} {'train time':>11}")
    for row in rows:
        print(f"{row['model']:<8} {row['images']:>12,} {100 * row['accuracy']:>8.2f}% {100 * row['stderr']:>7.2f}% "
              f"{row['seconds']:>10.1f}s")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
