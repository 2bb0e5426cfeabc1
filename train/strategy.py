"""Pick a tf.distribute strategy by name. Call `make_strategy` before any other TF op runs."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from train.config import STRATEGIES, ConfigError


def _tf_config() -> dict:
    """TF_CONFIG as a dict, checked for the shape TensorFlow expects."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {error}") from None
    cluster = config.get("cluster", {}) if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not all(isinstance(v, list) for v in cluster.values()):
        raise ConfigError('TF_CONFIG must look like {"cluster": {"worker": ["host:port", ...]}, '
                          f'"task": {{"type": "worker", "index": 0}}}}, got {os.environ["TF_CONFIG"][:200]}')
    return config


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """A strategy for `name`.

    - `auto`: multi_worker if TF_CONFIG names several workers, mirrored over several
      GPUs, else one_device.
    - `one_device`: the first GPU, else the CPU.
    - `mirrored`: data parallel over all local GPUs (over logical CPU devices when there
      is no GPU and the CPU was split, as the tests do).
    - `multi_worker`: MultiWorkerMirroredStrategy over the cluster in TF_CONFIG.
    - `tpu`: TPUStrategy on the TPU the environment provides.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}")
    gpus = tf.config.list_physical_devices("GPU")  # physical: does not start the TF runtime
    if name == "auto":
        workers = sum(len(v) for k, v in _tf_config().get("cluster", {}).items() if k in ("chief", "worker"))
        name = "multi_worker" if workers > 1 else "mirrored" if len(gpus) > 1 else "one_device"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        if not _tf_config().get("cluster"):
            raise ConfigError("--strategy multi_worker needs TF_CONFIG with a cluster and this task's "
                            'type and index, e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                            '"task": {"type": "worker", "index": 0}}')
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"TF_CONFIG does not describe a usable cluster ({_reason(error)}): "
                              "check its cluster addresses and this task's type and index") from None
    return _tpu_strategy()


def _reason(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _tpu_strategy() -> tf.distribute.Strategy:
    """TPUStrategy on the TPU this environment names (a TPU VM, or TPU_NAME)."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ConfigError(f"--strategy tpu found no TPU ({_reason(error)}): run on a TPU VM or set "
                          "TPU_NAME, or choose --strategy auto") from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the one worker that writes the run directory (always true off a cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief) or task_type is None


def resolve_precision(precision: str, measure: bool = True,
                      step_runner: Callable[[str], Callable[[], object]] | None = None) -> tuple[str, str]:
    """The Keras dtype policy for `--precision`, and why it was chosen.

    `auto`: on a GPU, `mixed_bfloat16` from compute capability 8.0, else `float32`. On a CPU
    without bfloat16 instructions (AVX512_BF16 or AMX-BF16), `float32`. On a CPU with them, a
    measurement picks `mixed_bfloat16` if it is at least 1.1x faster: of the run's own training
    step when the caller passes `step_runner(policy) -> a call that runs one step` (e.g.
    `train.bench.step_runner`; timed by `interleaved_speedup`, warm-up excluded), else of a 3x3
    convolution and a matmul (`bfloat16_speedup`, about half a second, whose ratio can differ
    from the model's). With `measure=False` (multi-worker runs, where every worker must choose
    alike) it is picked without measuring.
    """
    if precision != "auto":
        return precision, "as asked"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return ("mixed_bfloat16" if capability >= (8, 0) else "float32"), f"GPU compute capability {capability}"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    if " avx512_bf16" not in flags and " amx_bf16" not in flags:
        return "float32", "this CPU has no bfloat16 instructions"
    if not measure:
        return "mixed_bfloat16", "this CPU has bfloat16 instructions (not measured under multi_worker)"
    if step_runner is not None:
        speedup = interleaved_speedup(step_runner("float32"), step_runner("mixed_bfloat16"), **STEP_TIMING)
        what = "the training step"
    else:
        speedup, what = bfloat16_speedup(), "a 3x3 convolution and a matmul"
    choice = "mixed_bfloat16" if speedup >= 1.1 else "float32"
    return choice, f"{what} ran {speedup:.2f}x as fast in bfloat16 as in float32 here (measured now)"


# How `interleaved_speedup` times a run's own training calls (train.sizing.step_runner: several
# steps each): 2 untimed calls of each kind, then 5 alternated rounds.
STEP_TIMING = {"warm_up": 2, "repeats": 5}


def interleaved_speedup(float32_call: Callable[[], object], bfloat16_call: Callable[[], object],
                        repeats: int = 7, warm_up: int = 2,
                        clock: Callable[[], float] = time.perf_counter) -> float:
    """float32 seconds / bfloat16 seconds of two calls that each finish their work (or, as
    `--xla auto` uses it, seconds without XLA / seconds with it).

    Each call runs `warm_up` times untimed first (tracing, oneDNN's first-run kernel set-up,
    the process's first-op costs), both before either is timed; then `repeats` timed rounds
    alternate the two, so that another process's burst of work slows both alike, and the
    result is the median of the rounds' ratios.
    """
    for call in (float32_call, bfloat16_call):
        for _ in range(warm_up):
            call()
    ratios = []
    for _ in range(repeats):
        start = clock()
        float32_call()
        middle = clock()
        bfloat16_call()
        ratios.append((middle - start) / max(clock() - middle, 1e-9))
    return statistics.median(ratios)


def bfloat16_speedup(repeats: int = 7) -> float:
    """float32 time / bfloat16 time of a 3x3 64->64 convolution on 8x64x64 plus a 1024^2 matmul
    (`interleaved_speedup`: warm-up excluded, rounds alternated; about half a second)."""

    def work(dtype) -> Callable[[], object]:
        x = tf.cast(tf.random.stateless_normal((8, 64, 64, 64), (1, 2)), dtype)
        k = tf.cast(tf.random.stateless_normal((3, 3, 64, 64), (3, 4)), dtype)
        a = tf.cast(tf.random.stateless_normal((1024, 1024), (5, 6)), dtype)
        both = tf.function(lambda: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, k, 1, "SAME"), tf.float32))
                           + tf.reduce_sum(tf.cast(tf.linalg.matmul(a, a), tf.float32)))
        return lambda: both().numpy()

    return interleaved_speedup(work(tf.float32), work(tf.bfloat16), repeats)
