"""Training throughput of a recipe against this machine's measured peak.

    python -m train.bench gan_superres [--preset full] [--steps 20] [--precisions float32,mixed_bfloat16]
                          [--peer-python PATH]
    python -m train.bench vae --preset default --keras-peer      # also dcgan

For each precision: steps/s and images/s of the recipe's real `train_step` on its real
input pipeline, the share of step time spent waiting for input, and achieved GFLOP/s
(TF's op-level count of the forward pass x3 for forward + backward) next to a large
matmul and a 3x3 convolution timed in the same run (the practical peak). With
`--peer-python`, runs `../shared/peers/srresnet_torch.py` under that interpreter and
prints the ratio; with `--keras-peer`, times `tools/peers/keras_io_RECIPE.py` (the same network
as a keras.io-style model trained by `fit`) in the same run. Prints tables; asserts nothing.

Without an AMD EPYC at hand, `ONEDNN_MAX_CPU_ISA=AVX2 taskset -c 0 python -m train.bench ...
--precisions float32` on the AMX Intel stands in for it in float32 (README: Speed); bfloat16 peaks
are only measured when a bfloat16 precision is asked for, since that cap has no bfloat16 kernels.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from train.recipes import get_recipe  # noqa: E402
from train.trainer import build, distribute, make_step_function  # noqa: E402

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "srresnet_torch.py"


def _median_seconds(fn, repeats: int) -> float:
    fn()  # trace and warm up
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_gflops(dtype: tf.DType) -> dict[str, float]:
    """GFLOP/s of a 2048^2 matmul and a 3x3 64->64 conv on 16x96x96, in `dtype`."""
    a = tf.random.normal((2048, 2048), dtype=tf.float32)
    x = tf.random.normal((16, 96, 96, 64))
    k = tf.random.normal((3, 3, 64, 64))
    a, x, k = (tf.cast(t, dtype) for t in (a, x, k))
    matmul = tf.function(lambda: tf.linalg.matmul(a, a))
    conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
    t_matmul = _median_seconds(lambda: matmul().numpy(), 10)
    t_conv = _median_seconds(lambda: conv().numpy(), 10)
    return {"matmul": 2 * 2048**3 / t_matmul / 1e9, "conv": 2 * 16 * 96 * 96 * 9 * 64 * 64 / t_conv / 1e9}


def forward_gflop(model: keras.Model, shape: tuple[int, ...]) -> float:
    """GFLOP of one forward pass on `shape`, counted op by op by TensorFlow's profiler."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    graph = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec(shape)).graph
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops / 1e9


def measure(recipe, config, steps: int) -> dict[str, float]:
    """Run `steps` timed steps of the first training phase; split input wait from compute."""
    keras.mixed_precision.set_global_policy(config.precision)
    strategy = tf.distribute.get_strategy()
    built = build(recipe, config)
    model = built.model
    if hasattr(model, "begin_step"):
        model.begin_step(0)
    step = make_step_function(strategy, model.train_step)  # the trainer's own step
    data = built.batches_from(0)
    iterator = iter(distribute(strategy, data))
    for _ in range(3):  # trace, warm up, fill the prefetch buffer
        tf.nest.map_structure(lambda t: t.numpy(), step(next(iterator)))
    waiting = computing = 0.0
    for _ in range(steps):
        start = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
        waiting, computing = waiting + fetched - start, computing + time.perf_counter() - fetched
    first_input = tuple(tf.nest.flatten(data.element_spec)[0].shape)
    try:  # forward + backward of the network that maps the first input (SR: the generator)
        gflop = 3 * forward_gflop(getattr(model, "generator", model), first_input)
    except Exception:  # noqa: BLE001 - a model whose call takes other inputs (a GAN's noise): not counted
        gflop = float("nan")
    seconds = (waiting + computing) / steps
    keras.mixed_precision.set_global_policy("float32")
    return {"steps_s": 1 / seconds, "images_s": first_input[0] / seconds, "wait": waiting / (waiting + computing),
            "gflops": gflop / seconds, "gflop_step": gflop}


def peer_images_per_second(python: str) -> dict[str, float]:
    """images/s of the PyTorch peer script, by precision (fp32, bf16)."""
    out = subprocess.run([python, str(PEER), "2"], capture_output=True, text=True, check=True).stdout
    return {m[1]: float(m[2]) for m in re.finditer(r"(fp32|bf16): ([\d.]+) images/s", out)}


def keras_peer_images_per_second(recipe: str, config, steps: int) -> float:
    """images/s of `tools/peers/keras_io_<recipe>.py`: the same network as a keras.io-style
    model (a `train_step` with trackers) trained by `fit`, timed in this process."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tools" / "peers" / f"keras_io_{recipe}.py"
    if not path.is_file():
        raise SystemExit(f"error: no keras.io-style peer for {recipe} ({path} does not exist)")
    spec = importlib.util.spec_from_file_location(f"keras_io_{recipe}", path)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    keras.mixed_precision.set_global_policy(config.precision)
    model, data = peer.make_peer(config)
    timer = _FitTimer()
    model.fit(data, steps_per_epoch=steps + 3, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    keras.mixed_precision.set_global_policy("float32")
    return config.batch_size / statistics.median(timer.times[3:])  # after trace and warm-up


class _FitTimer(keras.callbacks.Callback):
    """Seconds of each `fit` step, waiting for the step's results."""

    def __init__(self):
        super().__init__()
        self.times, self.start = [], 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        [float(value) for value in (logs or {}).values()]  # the step has finished
        self.times.append(time.perf_counter() - self.start)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m train.bench", description=__doc__.split("\n")[0])
    parser.add_argument("recipe", nargs="?", default="gan_superres")
    parser.add_argument("--preset", default="full", help="config preset whose model and batch are timed")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--peer-python", help="python with torch, to run the PyTorch peer in this session")
    parser.add_argument("--keras-peer", action="store_true",
                        help="also time tools/peers/keras_io_RECIPE.py (the same network, keras.io-style fit)")
    args = parser.parse_args()
    recipe = get_recipe(args.recipe)
    base = recipe.presets[args.preset]
    precisions = args.precisions.split(",")
    dtypes = [("float32", tf.float32)] + [("bfloat16", tf.bfloat16)] * any("bfloat16" in p for p in precisions)
    peaks = {name: peak_gflops(dtype) for name, dtype in dtypes}  # float32 only: runs where oneDNN lacks bf16
    print("Peak GFLOP/s here: " + ", ".join(f"{d} matmul {p['matmul']:.0f} conv {p['conv']:.0f}"
                                            for d, p in peaks.items()))
    rows = {}
    for precision in precisions:
        rows[precision] = measure(recipe, dataclasses.replace(base, precision=precision), args.steps)
    peer = peer_images_per_second(args.peer_python) if args.peer_python else {}
    peer_key = {"float32": "fp32", "mixed_bfloat16": "bf16"}
    if args.keras_peer:  # the same table columns: the keras.io-style peer, in this same run
        peer = {peer_key.get(p, p): keras_peer_images_per_second(recipe.name, dataclasses.replace(base, precision=p),
                                                                  args.steps) for p in rows}
    peer_name = "keras.io-style peer" if args.keras_peer else "PyTorch peer"
    print(f"\n{recipe.name} --preset {args.preset}: {next(iter(rows.values()))['gflop_step']:.1f} GFLOP per step")
    print("| precision | steps/s | images/s | input wait | GFLOP/s | of fp32 matmul peak | vs float32 "
          f"| {peer_name} images/s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    first = rows[next(iter(rows))]
    for precision, row in rows.items():
        peer_rate = peer.get(peer_key.get(precision, ""))
        peer_cells = f"{peer_rate:.1f} | {row['images_s'] / peer_rate:.2f}x" if peer_rate else "- | -"
        print(f"| {precision} | {row['steps_s']:.2f} | {row['images_s']:.1f} | {100 * row['wait']:.1f}% | "
              f"{row['gflops']:.0f} | {100 * row['gflops'] / peaks['float32']['matmul']:.0f}% | "
              f"{row['steps_s'] / first['steps_s']:.2f}x | {peer_cells} |")


if __name__ == "__main__":
    main()
