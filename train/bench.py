"""Training throughput of a recipe against this machine's measured peak.

    python -m train.bench gan_superres [--preset full] [--steps 20] [--precisions float32,mixed_bfloat16]
                          [--peer-python PATH]
    python -m train.bench RECIPE --preset default --keras-peer   # every recipe with tools/peers/keras_io_RECIPE.py

For each precision: steps/s and images/s of the recipe's real `train_step` on its real
input pipeline (the median step after 3 warm-up steps: tracing is never timed), the share of
step time spent waiting for input, and achieved GFLOP/s (TF's op-level count of the forward
pass x3 for forward + backward, x7 with adversarial training; "-" where TF cannot count it, e.g.
ops inside an LSTM's loop) at the trainer's rate (K steps per call) next to a large matmul and a
3x3 convolution timed in the same run (the practical peak). With
`--peer-python`, runs `../shared/peers/srresnet_torch.py` under that interpreter and prints the
ratio; with `--keras-peer`, times `tools/peers/keras_io_RECIPE.py` (the same network as a
keras.io-style model trained by `fit`, the same data and batch) in the same run, in steps/s.
Where the zoo's step computes more than the peer (adversarial training, a weight average), the
peer names the zoo settings that compute the same (`ZOO_AS_PEER`) and an extra row times the zoo
with them, so both comparisons show. "steps/s, K per call" times the same step as the trainer
runs it, K steps per traced call (`--steps-per-call`, cut at `--log-every`). With a keras.io
peer, that column, the peer's steps/s and their ratio come from alternate rounds: one zoo call
of K steps, then K steps of the peer's `fit` step (its `train_function`: one step per call, as
keras.io examples run), 7 rounds after 2 untimed calls of each, medians; timed one after the
other, ratios moved by a third between runs on a shared machine. "vs float32,
alternated" is each precision's speed-up over float32 with the two steps timed in alternate
rounds after warm-up (`train.strategy.interleaved_speedup`), exactly what `--precision auto`
measures and prints at the start of a long run. Prints tables; asserts nothing.

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
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from train.recipes import get_recipe  # noqa: E402
from train.sizing import step_runner  # noqa: E402
from train.strategy import STEP_TIMING, interleaved_speedup  # noqa: E402
from train.trainer import (build, distribute, make_step_function, make_steps_function,  # noqa: E402
                           trainer_steps_per_call)

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "srresnet_torch.py"
KERAS_PEERS = Path(__file__).resolve().parents[1] / "tools" / "peers"
WARM_UP = 3  # steps run before timing: tracing, first-run kernel set-up, a full prefetch buffer


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


def forward_gflop(model: keras.Model, spec: tf.TensorSpec) -> float:
    """GFLOP of one forward pass on inputs like `spec`, counted op by op by TensorFlow's profiler."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    graph = tf.function(lambda x: model(x)).get_concrete_function(spec).graph
    if any(op.type in ("While", "StatelessWhile") for op in graph.get_operations()):
        raise TypeError("a loop's body (e.g. an LSTM's) would be counted once, not per iteration")
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(graph, options=options).total_float_ops / 1e9


def _timed_steps(recipe, config, steps: int) -> tuple[list[float], float, keras.Model, tf.data.Dataset, float]:
    """(seconds of each of `steps` steps of the first training phase, one step per call, after
    `WARM_UP` untimed ones; seconds of those spent waiting for input; the model; its batches;
    seconds per step in the trainer's calls of several steps), in `config.precision`."""
    keras.mixed_precision.set_global_policy(config.precision)
    strategy = tf.distribute.get_strategy()
    built = build(recipe, config)
    model = built.model
    if hasattr(model, "begin_step"):
        model.begin_step(0)
    step = make_step_function(strategy, model.train_step, jit_compile=config.xla == "on")  # the trainer's own step
    data = built.batches_from(0)
    iterator = iter(distribute(strategy, data))
    for _ in range(WARM_UP):  # trace, warm up, fill the prefetch buffer
        tf.nest.map_structure(lambda t: t.numpy(), step(next(iterator)))
    waiting, times = 0.0, []
    for _ in range(steps):
        start = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
        waiting += fetched - start
        times.append(time.perf_counter() - start)
    loop = _loop_seconds_per_step(strategy, model, iterator, config, steps)
    keras.mixed_precision.set_global_policy("float32")
    return times, waiting, model, data, loop


def _loop_seconds_per_step(strategy, model, iterator, config, steps: int) -> float:
    """Seconds per step as the trainer runs them: calls of `steps_per_call` steps (cut at
    `log_every`, where the trainer's calls end too) of `make_steps_function`; the median call."""
    per_call = trainer_steps_per_call(config)
    run = make_steps_function(strategy, model.train_step, jit_compile=config.xla == "on", loop=per_call > 1)
    count = tf.constant(per_call)
    run(iterator, count)  # trace, warm up (a call returns numbers: it waits for its steps)
    times = []
    for _ in range(max(3, steps // per_call)):
        start = time.perf_counter()
        run(iterator, count)
        times.append((time.perf_counter() - start) / per_call)
    return statistics.median(times)


def measure(recipe, config, steps: int) -> dict[str, float]:
    """Time `steps` steps of the first training phase after `WARM_UP` untimed ones; split input
    wait from compute. Rates are of the median step (robust to other processes' bursts)."""
    times, waiting, model, data, loop = _timed_steps(recipe, config, steps)
    inputs = data.element_spec[0] if isinstance(data.element_spec, tuple) else data.element_spec
    # Whole shapes, or the counter skips ops (token ids come out of tf.data with no batch size).
    inputs = tf.nest.map_structure(lambda s: tf.TensorSpec([config.batch_size, *s.shape[1:]], s.dtype), inputs)
    spec = tf.nest.flatten(inputs)[0]
    keras.mixed_precision.set_global_policy(config.precision)
    try:  # forward + backward of the network that maps the first input (SR: the generator)
        if spec.dtype == tf.string:  # raw strings: the counter sees no shapes after tokenizing
            raise TypeError("string inputs")
        # Adversarial training: a forward pass, the gradient to the embeddings, a second forward
        # pass and the backward pass of both: about 7 forward passes instead of 3.
        passes = 7 if getattr(model, "adversarial", 0) > 0 else 3
        gflop = passes * forward_gflop(getattr(model, "generator", model), inputs)
    except Exception:  # noqa: BLE001 - a model whose call takes other inputs (a GAN's noise): not counted
        gflop = float("nan")
    keras.mixed_precision.set_global_policy("float32")
    seconds = statistics.median(times)
    return {"steps_s": 1 / seconds, "images_s": config.batch_size / seconds, "wait": waiting / sum(times),
            "gflops": gflop / loop, "gflop_step": gflop, "loop_steps_s": 1 / loop,
            "per_call": trainer_steps_per_call(config)}


def peer_images_per_second(python: str) -> dict[str, float]:
    """images/s of the PyTorch peer script, by precision (fp32, bf16)."""
    out = subprocess.run([python, str(PEER), "2"], capture_output=True, text=True, check=True).stdout
    return {m[1]: float(m[2]) for m in re.finditer(r"(fp32|bf16): ([\d.]+) images/s", out)}


def keras_peer(recipe: str) -> ModuleType:
    """`tools/peers/keras_io_<recipe>.py`: `make_peer(config) -> (compiled model, batches)` and,
    where the zoo's step computes more than the peer, `ZOO_AS_PEER` (the zoo settings that
    compute the same). Peers may import each other (their folder goes on the path)."""
    import importlib.util

    path = KERAS_PEERS / f"keras_io_{recipe}.py"
    if not path.is_file():
        peers = sorted(p.stem.removeprefix("keras_io_") for p in KERAS_PEERS.glob("keras_io_*.py"))
        raise SystemExit(f"error: no keras.io-style peer for {recipe} ({path} does not exist); "
                         f"peers exist for {', '.join(peers)}")
    if str(KERAS_PEERS) not in sys.path:
        sys.path.insert(0, str(KERAS_PEERS))
    spec = importlib.util.spec_from_file_location(f"keras_io_{recipe}", path)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    return peer


def keras_peer_step(peer: ModuleType, config) -> Callable[[], None]:
    """A call that runs one training step of the keras.io-style `peer` as `fit` runs it (its
    `train_function`, set up by one untimed `fit` step) and waits for its logs."""
    keras.mixed_precision.set_global_policy(config.precision)
    model, data = peer.make_peer(config)
    model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)  # builds metrics and optimizer, makes train_function
    iterator = iter(data)
    keras.mixed_precision.set_global_policy("float32")

    def run() -> None:
        tf.nest.map_structure(lambda t: t.numpy(), model.train_function(iterator))

    return run


def alternated_rates(zoo_call: Callable[[], None], zoo_steps: int, peer_call: Callable[[], None],
                     rounds: int = 7) -> tuple[float, float, float]:
    """(zoo steps/s, peer steps/s, zoo / peer): after 2 untimed calls of each, `rounds` rounds
    each time one zoo call (`zoo_steps` steps) and then `zoo_steps` peer steps, so that another
    process's burst of work slows both alike; the medians of the rounds."""
    for _ in range(2):
        zoo_call()
        peer_call()
    zoo, peer = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        zoo_call()
        middle = time.perf_counter()
        for _ in range(zoo_steps):
            peer_call()
        zoo.append(zoo_steps / (middle - start))
        peer.append(zoo_steps / (time.perf_counter() - middle))
    return statistics.median(zoo), statistics.median(peer), statistics.median(z / p for z, p in zip(zoo, peer))


def _settings(overrides: dict) -> str:
    return ", ".join(f"{name}={value}" for name, value in overrides.items())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m train.bench", description=__doc__.split("\n")[0])
    parser.add_argument("recipe", nargs="?", default="gan_superres")
    parser.add_argument("--preset", default="full", help="config preset whose model and batch are timed")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--peer-python", help="python with torch, to run the PyTorch peer in this session")
    parser.add_argument("--xla", choices=("on", "off"), help="compile the step with XLA or not (default: the preset's)")
    parser.add_argument("--keras-peer", action="store_true",
                        help="also time tools/peers/keras_io_RECIPE.py (the same network, keras.io-style fit)")
    args = parser.parse_args()
    recipe = get_recipe(args.recipe)
    base = recipe.presets[args.preset]
    if args.xla:
        base = dataclasses.replace(base, xla=args.xla)
    peer_module = keras_peer(recipe.name) if args.keras_peer else None
    precisions = args.precisions.split(",")
    dtypes = [("float32", tf.float32)] + [("bfloat16", tf.bfloat16)] * any("bfloat16" in p for p in precisions)
    peaks = {name: peak_gflops(dtype) for name, dtype in dtypes}  # float32 only: runs where oneDNN lacks bf16
    print("Peak GFLOP/s here: " + ", ".join(f"{d} matmul {p['matmul']:.0f} conv {p['conv']:.0f}"
                                            for d, p in peaks.items()))
    as_peer = getattr(peer_module, "ZOO_AS_PEER", {})
    rows = {}  # (precision, zoo settings changed) -> measurements
    for precision in precisions:
        rows[precision, ""] = measure(recipe, dataclasses.replace(base, precision=precision), args.steps)
        if as_peer:  # the zoo computing what the peer computes
            rows[precision, _settings(as_peer)] = measure(
                recipe, dataclasses.replace(base, precision=precision, **as_peer), args.steps)
    alternated = {}  # precision -> its speed-up over float32, the two steps timed alternately
    if "float32" in precisions:
        run = step_runner(recipe, base)
        for precision in precisions:
            if precision != "float32":
                alternated[precision] = interleaved_speedup(run("float32"), run(precision), **STEP_TIMING)
                keras.backend.clear_session()
    peer = peer_images_per_second(args.peer_python) if args.peer_python else {}
    peer_key = {"float32": "fp32", "mixed_bfloat16": "bf16"}
    if peer_module:  # the keras.io-style peer in this same run, its steps alternated with the zoo's calls
        for (precision, changed), row in rows.items():
            config = dataclasses.replace(base, precision=precision, **(as_peer if changed else {}))
            peer_call = keras_peer_step(peer_module, config)
            zoo_call = step_runner(recipe, config, steps=row["per_call"])(precision)
            row["loop_steps_s"], row["peer_steps_s"], row["ratio"] = alternated_rates(zoo_call, row["per_call"],
                                                                                     peer_call)
            keras.backend.clear_session()
    peer_cell = "keras.io-style peer steps/s" if peer_module else "PyTorch peer images/s"
    gflop = next(iter(rows.values()))["gflop_step"]
    print(f"\n{recipe.name} --preset {args.preset} (batch {base.batch_size}, XLA {base.xla}): "
          + (f"{gflop:.1f} GFLOP per step" if gflop == gflop else "GFLOP per step not counted"))
    per_call = next(iter(rows.values()))["per_call"]
    print("| precision | steps/s | images/s | input wait | GFLOP/s | of fp32 matmul peak | of matmul / conv peak "
          f"| vs float32, alternated | steps/s, {per_call} per call | {peer_cell} | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (precision, changed), row in rows.items():
        peer_rate = peer.get(peer_key.get(precision, ""))
        peer_cells = f"{peer_rate:.2f} | {row['images_s'] / peer_rate:.2f}x" if peer_rate else "- | -"
        if peer_module:  # a peer's fit step against the trainer's calls, timed alternately
            peer_cells = f"{row['peer_steps_s']:.2f} | {row['ratio']:.2f}x"
        peak = peaks["bfloat16" if "bfloat16" in precision else "float32"]
        shares = (f"{100 * row['gflops'] / peaks['float32']['matmul']:.0f}% | "
                  f"{100 * row['gflops'] / peak['matmul']:.0f}% / {100 * row['gflops'] / peak['conv']:.0f}%")
        if row["gflops"] != row["gflops"]:  # NaN: TF could not count this model's operations
            shares = "- | -"
        gflops = "-" if row["gflops"] != row["gflops"] else f"{row['gflops']:.0f}"
        label = f"{precision}, zoo with {changed}" if changed else precision
        versus = "1.00x" if precision == "float32" and not changed else (
            f"{alternated[precision]:.2f}x" if precision in alternated and not changed else "-")
        print(f"| {label} | {row['steps_s']:.2f} | {row['images_s']:.1f} | {100 * row['wait']:.1f}% | {gflops} | "
              f"{shares} | {versus} | {row['loop_steps_s']:.2f} | {peer_cells} |")


if __name__ == "__main__":
    main()
