"""Pick a tf.distribute strategy by name. Call `make_strategy` before any other TF op runs."""

from __future__ import annotations

import json
import os
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


def resolve_precision(precision: str) -> str:
    """`auto` -> `mixed_bfloat16` on hardware with bfloat16 matrix units (GPUs of compute
    capability 8.0 and newer, CPUs with AMX-BF16), else `float32`; other names unchanged."""
    if precision != "auto":
        return precision
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return "mixed_bfloat16" if capability >= (8, 0) else "float32"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "mixed_bfloat16" if " amx_bf16" in flags else "float32"
