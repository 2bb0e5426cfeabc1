"""SOM vs MiniSom on the same data, map and CPU, in one run; prints a table.

Same setting as the peer script ../shared/peers/minisom_mnist.py: MNIST train[:10000] as
float32 / 255, a 20x20 rectangular map, PCA initialization, Gaussian neighbourhood. MiniSom
(`pip install minisom`, used by this benchmark only) runs `train_random` for 10 epochs
(100,000 single-sample updates, sigma 10, learning rate 0.5, its default asymptotic decay:
sigma ends at 10/3), its converged setting in TARGETS.md. The zoo SOM runs the default
preset of `python -m train som`: 10 batch-SOM updates on all 10,000 samples, sigma 10 -> 2,
learning rate 1, each step the trainer's own step function (`strategy.run(model.train_step)`
in a tf.function, fed by the recipe's tf.data pipeline); its time includes tracing.

Both maps are scored by the zoo's definitions (`SelfOrganizingMap.errors`: mean distance to
the BMU; share of samples whose two best units are not among the 8 neighbours) and by
MiniSom's own `quantization_error` / `topographic_error` (threshold 1.42: the same rule).

    flock /tmp/zoo_heavy.lock python tools/bench_som.py [--batch-offline] [--cli]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_text import cpu_name  # noqa: E402


def mnist_10k() -> np.ndarray:
    """MNIST train[:10000], (10000, 784) float32 / 255, exactly as the peer script makes it."""
    from zoo.data import load_images

    images = load_images("assets:mnist", "train", value_range=(0.0, 255.0), limit=10_000)[0]
    return (images.reshape(len(images), -1).astype(np.uint8).astype("float32") / 255.0).astype("float32")


def minisom_errors(weights: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """MiniSom's own QE and TE of a (20, 20, 784) map."""
    from minisom import MiniSom

    som = MiniSom(20, 20, x.shape[1], sigma=10.0, learning_rate=0.5, random_seed=0)
    som._weights = weights.astype(np.float64)
    return {"qe": float(som.quantization_error(x)), "te": float(som.topographic_error(x))}


def zoo_errors(weights: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """The zoo's QE and TE (one definition for every map) of a (400, 784) map."""
    from zoo.layers import SelfOrganizingMap

    layer = SelfOrganizingMap(20, 20)
    layer.build((None, x.shape[1]))
    layer.prototypes.assign(weights.reshape(400, -1).astype("float32"))
    errors = layer.errors(x)
    return {"qe": errors["quantization_error"], "te": errors["topographic_error"]}


def run_minisom(x: np.ndarray, mode: str) -> tuple[float, np.ndarray]:
    from minisom import MiniSom

    som = MiniSom(20, 20, x.shape[1], sigma=10.0, learning_rate=0.5, random_seed=0)
    som.pca_weights_init(x)
    start = time.perf_counter()
    if mode == "random":
        som.train_random(x, 10 * len(x))
    else:
        som.train_batch_offline(x, 50)
    return time.perf_counter() - start, som.get_weights()


def run_zoo(x: np.ndarray) -> tuple[float, np.ndarray]:
    """The default preset's model and data pipeline, stepped by the trainer's step function."""
    import tensorflow as tf

    from train.recipes.som import PRESETS
    from train.trainer import distribute, make_step_function
    from zoo.models import SOM

    config = PRESETS["default"]
    strategy = tf.distribute.get_strategy()
    model = SOM(*config.grid, config.topology, config.neighbourhood, config.sigma_start, config.sigma_end,
                config.learning_rate_start, config.learning_rate_end, decay_steps=config.total_steps)
    model.initialize(x, config.init, config.seed)
    model.compile()
    data = (tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=config.seed).repeat()
            .batch(config.batch_size, drop_remainder=True).prefetch(1))
    iterator = iter(distribute(strategy, data))
    step = make_step_function(strategy, model.train_step)
    start = time.perf_counter()
    for _ in range(config.total_steps):
        step(next(iterator))
    weights = model.som.prototypes.numpy()  # waits for the last step
    return time.perf_counter() - start, weights


def run_cli() -> float:
    """Wall time of `python -m train som` (default preset) end to end: Python and TensorFlow
    start-up, data loading, PCA, training, per-epoch pictures and errors, saving."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "train", "som", "--run-dir", str(Path(folder) / "run"), "--quiet"],
                       cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-offline", action="store_true",
                        help="also MiniSom train_batch_offline, 50 iterations (~8 min)")
    parser.add_argument("--cli", action="store_true", help="also time `python -m train som` end to end")
    parser.add_argument("--repeats", type=int, default=3, help="zoo SOM runs (the median time is reported)")
    args = parser.parse_args()
    x = mnist_10k()
    rows = []
    runs = [run_zoo(x) for _ in range(args.repeats)]
    zoo_time, zoo_weights = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    rows.append(("zoo SOM, 10 batch updates (python -m train som step)", zoo_time, zoo_weights))
    print(f"zoo SOM times: {', '.join(f'{t:.2f}' for t, _ in runs)} s", flush=True)
    peers = [("random", "MiniSom train_random, 10 epochs")] + (
        [("batch", "MiniSom train_batch_offline, 50 iterations")] if args.batch_offline else [])
    for mode, name in peers:
        seconds, weights = run_minisom(x, mode)
        rows.append((name, seconds, weights))
        print(f"{name}: {seconds:.1f} s", flush=True)
    random_time = rows[1][1]
    print(f"\nCPU: {cpu_name()}; MNIST train[:10000], 20x20 rectangular map, PCA init\n")
    print("| run | wall time (s) | QE (zoo) | TE (zoo) | QE (MiniSom's) | TE (MiniSom's) "
          "| speed vs MiniSom train_random |")
    print("|---|---|---|---|---|---|---|")
    for name, seconds, weights in rows:
        ours, theirs = zoo_errors(weights, x), minisom_errors(weights.reshape(20, 20, -1), x)
        print(f"| {name} | {seconds:.2f} | {ours['qe']:.3f} | {ours['te']:.4f} | {theirs['qe']:.3f} | "
              f"{theirs['te']:.4f} | {random_time / seconds:.1f}x |")
    if args.cli:
        seconds = run_cli()
        print(f"| python -m train som, end to end (start-up, data, pictures, save) | {seconds:.1f} | | | | | "
              f"{random_time / seconds:.1f}x |")


if __name__ == "__main__":
    main()
