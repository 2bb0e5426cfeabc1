"""SOM vs MiniSom on the same data, map and CPU, in one run; prints tables.

Same setting as the peer script ../shared/peers/minisom_mnist.py: MNIST train[:10000] as
float32 / 255, a 20x20 rectangular map, PCA initialization, Gaussian neighbourhood. MiniSom
(`pip install minisom`, used by this benchmark only) runs `train_random` for 10 epochs
(100,000 single-sample updates, sigma 10, learning rate 0.5, its default asymptotic decay:
sigma ends at 10/3), its converged setting in TARGETS.md; its end-to-end time adds making the
map and `pca_weights_init`. The zoo SOM runs the default preset of `python -m train som`:
10 batch-SOM updates on all 10,000 samples, sigma 10 -> 2, learning rate 1.

Three zoo figures, each named in the output:
- training loop: the recipe's model and tf.data pipeline (`build`), stepped 10 times by the
  trainer's step function (`strategy.run(model.train_step)` in a tf.function); includes
  tracing; median of `--repeats`.
- end to end (`--end-to-end`): `train.trainer.train` of the default preset, as
  `python -m train som` calls it, timed from the call to its return in a fresh process each
  time (nothing warm: AutoGraph, Keras and tf.data caches are per process). That is
  everything a user waits for once TensorFlow is imported (reading MNIST, building the model,
  PCA, tracing, the 10 steps, errors and pictures into TensorBoard, the projector,
  checkpoint, `model.keras`); the imports of TensorFlow, Keras and the trainer (done before
  the clock starts) are timed on their own. Phase by phase, median of `--repeats` runs.
- command line (`--cli`): `python -m train som` in a subprocess, Python and TensorFlow
  start-up included.

Both maps are scored by the zoo's definitions (`SelfOrganizingMap.errors`: mean distance to
the BMU; share of samples whose two best units are not among the 8 neighbours) and by
MiniSom's own `quantization_error` / `topographic_error` (threshold 1.42: the same rule).

    flock /tmp/zoo_heavy.lock python tools/bench_som.py [--end-to-end] [--batch-offline] [--cli]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_text import cpu_name  # noqa: E402

# The phases of an end-to-end run, in the order they happen (`one_end_to_end_run`).
PHASES = (
    ("precision", "precision choice (auto: a bfloat16 measurement)"),
    ("data", "data: read MNIST, flatten"),
    ("initialize", "model: build + PCA initialization"),
    ("build_rest", "rest of the recipe's build (model, compile, tf.data, callbacks)"),
    ("first_step", "first training call (tracing, its steps)"),
    ("steps", "other training calls"),
    ("loop_rest", "training loop, the rest (iterator, logs, metrics.csv)"),
    ("scalars", "TensorBoard scalars, hparams, histograms"),
    ("validation", "validation (test_step over the samples, its tracing)"),
    ("evaluation", "epoch end: errors, U-matrix, prototypes, hit map"),
    ("checkpoints", "checkpoints"),
    ("train_end", "train end: projector"),
    ("save", "save model.keras"),
    ("other", "other (strategy, run folder, summary writer)"),
)


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


def run_minisom(x: np.ndarray, mode: str) -> tuple[float, float, np.ndarray]:
    """(seconds to make the map and PCA-initialize it, seconds of training, weights)."""
    from minisom import MiniSom

    start = time.perf_counter()
    som = MiniSom(20, 20, x.shape[1], sigma=10.0, learning_rate=0.5, random_seed=0)
    som.pca_weights_init(x)
    initialized = time.perf_counter()
    if mode == "random":
        som.train_random(x, 10 * len(x))
    else:
        som.train_batch_offline(x, 50)
    return initialized - start, time.perf_counter() - initialized, som.get_weights()


def run_zoo() -> tuple[float, np.ndarray]:
    """The default preset's model and data pipeline (the recipe's `build`), stepped by the
    trainer's step function: (seconds of the 10 steps, tracing included, weights)."""
    import tensorflow as tf

    from train.recipes import get_recipe
    from train.trainer import build, distribute, make_step_function

    recipe = get_recipe("som")
    config = recipe.presets["default"]
    strategy = tf.distribute.get_strategy()
    built = build(recipe, config)
    iterator = iter(distribute(strategy, built.batches_from(0)))
    step = make_step_function(strategy, built.model.train_step)
    start = time.perf_counter()
    for _ in range(config.total_steps):
        step(next(iterator))
    weights = built.model.som.prototypes.numpy()  # waits for the last step
    return time.perf_counter() - start, weights


# ----------------------------------------------------------------------------- end to end

def _timed(owner, name: str, phase: str, seconds: dict) -> None:
    """Replace `owner.name` by a wrapper adding its wall time to `seconds[phase]`."""
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[phase] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def one_end_to_end_run() -> dict[str, float]:
    """In this (fresh) process: `train.trainer.train` of the default preset, as
    `python -m train som --quiet` calls it. Returns `{"imports": s, "total": s, phase: s}`;
    the phases are measured by wrapping the trainer's and the recipe's functions (each
    wrapper adds a clock read), "other" is the total less the phases."""
    start = time.perf_counter()
    from zoo.quiet import import_tensorflow

    import_tensorflow()  # as `python -m train` does: TensorFlow, then one op (device start-up)
    import train.callbacks as callbacks
    import train.recipes.som as recipe_module
    import train.trainer as trainer
    from train.recipes import get_recipe
    from zoo.models import SOM

    imports = time.perf_counter() - start
    seconds: dict[str, float] = defaultdict(float)
    _timed(trainer, "resolve_precision", "precision", seconds)
    _timed(trainer, "build", "build", seconds)
    _timed(recipe_module, "load_samples", "data", seconds)
    _timed(SOM, "initialize", "initialize", seconds)
    _timed(trainer._Loop, "run_epoch", "epochs", seconds)
    _timed(trainer._Loop, "write_scalars", "scalars", seconds)
    _timed(trainer._Loop, "write_histograms", "scalars", seconds)
    _timed(trainer._Loop, "write_hparams", "hparams", seconds)  # before the first epoch
    _timed(trainer._Loop, "validate", "validation", seconds)
    _timed(trainer._Loop, "save_checkpoint", "checkpoints", seconds)
    _timed(trainer._Loop, "save_model", "save", seconds)
    _timed(callbacks.EpochEvaluation, "on_epoch_end", "evaluation", seconds)
    _timed(callbacks.EmbeddingProjector, "on_train_end", "train_end", seconds)
    # The loop's traced training function: one step per call (`step_function`), or several
    # (`steps_function`, in trainers with `steps_per_call`); the first call traces it.
    name = "steps_function" if hasattr(trainer._Loop, "steps_function") else "step_function"
    traced = getattr(trainer._Loop, name)

    def timed_traced(loop, step: int):
        function = traced(loop, step)

        def timed(*args):
            begin = time.perf_counter()
            outputs = function(*args)
            for value in outputs[0].values():  # numbers; older trainers returned tensors, read
                getattr(value, "numpy", lambda: None)()  # at once by their loop
            seconds["first_step" if step == 0 else "steps"] += time.perf_counter() - begin
            return outputs

        return timed

    setattr(trainer._Loop, name, timed_traced)
    recipe = get_recipe("som")
    with tempfile.TemporaryDirectory() as folder:
        begin = time.perf_counter()
        trainer.train(recipe, recipe.presets["default"], Path(folder) / "run", verbose=False, preset="default")
        total = time.perf_counter() - begin
    # Nested phases: the recipe's build holds data and initialize; the epochs hold the rest of the loop.
    seconds["build_rest"] = seconds.pop("build") - seconds["data"] - seconds["initialize"]
    inside_epochs = ("first_step", "steps", "scalars", "validation", "evaluation", "checkpoints")
    seconds["loop_rest"] = seconds.pop("epochs") - sum(seconds[p] for p in inside_epochs)
    seconds["scalars"] += seconds.pop("hparams")
    seconds["other"] = total - sum(seconds[p] for p, _ in PHASES if p != "other")
    return {"imports": imports, "total": total, **{p: seconds[p] for p, _ in PHASES}}


def run_end_to_end(repeats: int) -> list[dict[str, float]]:
    """`one_end_to_end_run` in `repeats` fresh processes."""
    runs = []
    for _ in range(repeats):
        result = subprocess.run([sys.executable, __file__, "--one-end-to-end-run"], cwd=ROOT, check=True,
                                capture_output=True, text=True)
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(f"end to end: {runs[-1]['total']:.2f} s", flush=True)
    return runs


def print_phases(runs: list[dict[str, float]], minisom_total: float, loop_ratio: float | None) -> None:
    """The phase table (medians over runs) and the end-to-end ratio to MiniSom."""
    median = {name: statistics.median(run[name] for run in runs) for name in runs[0]}
    totals = ", ".join(f"{run['total']:.2f}" for run in runs)
    print(f"\n`python -m train som` (default preset) end to end, in-process, median of {len(runs)} fresh "
          f"processes (totals {totals} s)\n")
    print("| phase | seconds |")
    print("|---|---|")
    for name, description in PHASES:
        print(f"| {description} | {median[name]:.2f} |")
    print(f"| **end to end** (median of the totals) | **{median['total']:.2f}** |")
    print(f"| (before the clock: importing TensorFlow, Keras and the trainer) | ({median['imports']:.2f}) |")
    print(f"\nMiniSom end to end (map + pca_weights_init + train_random): {minisom_total:.1f} s; "
          f"zoo end to end: {median['total']:.2f} s: {minisom_total / median['total']:.1f}x"
          + ("" if loop_ratio is None else f"; training loops alone: {loop_ratio:.1f}x"))


def run_cli() -> float:
    """Wall time of `python -m train som` (default preset) end to end: Python and TensorFlow
    start-up, data loading, PCA, training, errors and pictures, saving."""
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "train", "som", "--run-dir", str(Path(folder) / "run"), "--quiet"],
                       cwd=ROOT, check=True, capture_output=True)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--end-to-end", action="store_true",
                        help="also time `train()` of the default preset phase by phase, in fresh processes")
    parser.add_argument("--batch-offline", action="store_true",
                        help="also MiniSom train_batch_offline, 50 iterations (~8 min)")
    parser.add_argument("--cli", action="store_true", help="also time `python -m train som` in a subprocess")
    parser.add_argument("--repeats", type=int, default=3, help="zoo runs of each kind (medians are reported)")
    parser.add_argument("--one-end-to-end-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_end_to_end_run:
        print(json.dumps(one_end_to_end_run()))
        return
    end_to_end = run_end_to_end(args.repeats) if args.end_to_end else None  # before this process imports TF
    x = mnist_10k()
    rows = []
    runs = [run_zoo() for _ in range(args.repeats)]
    zoo_time, zoo_weights = sorted(runs, key=lambda r: r[0])[len(runs) // 2]
    rows.append(("zoo SOM, 10 batch updates (training loop: the trainer's step, tracing included)",
                 zoo_time, zoo_weights))
    print(f"zoo SOM training loop times: {', '.join(f'{t:.2f}' for t, _ in runs)} s", flush=True)
    peers = [("random", "MiniSom train_random, 10 epochs")] + (
        [("batch", "MiniSom train_batch_offline, 50 iterations")] if args.batch_offline else [])
    minisom_total = None
    for mode, name in peers:
        setup, seconds, weights = run_minisom(x, mode)
        rows.append((name, seconds, weights))
        minisom_total = minisom_total or setup + seconds
        print(f"{name}: {seconds:.1f} s (making the map and pca_weights_init: {setup:.2f} s)", flush=True)
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
        print(f"| python -m train som, command line (Python and TensorFlow start-up included) | {seconds:.1f} "
              f"| | | | | {random_time / seconds:.1f}x |")
    if end_to_end:
        print_phases(end_to_end, minisom_total, random_time / zoo_time)


if __name__ == "__main__":
    main()
