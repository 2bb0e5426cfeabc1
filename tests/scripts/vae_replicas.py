"""Run by tests/test_vae.py in a fresh process (argument: plain or conditional): two VAE training steps (dynamic binarization
and latent noise on) on 1 device and on 2 logical CPU replicas with the same global batch;
print a JSON report of the weights and the logged (tracker) values."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from train.strategy import make_strategy  # noqa: E402
from train.trainer import distribute, make_step_function  # noqa: E402
from zoo.models import VAE  # noqa: E402


def run(strategy_name: str, weights, batch, conditional: bool):
    strategy = make_strategy(strategy_name)
    with strategy.scope():
        model = VAE.create((8, 8, 1), 3, 4, 1, num_classes=3 if conditional else 0, seed=5)
        model.compile(keras.optimizers.SGD(0.1))  # updates linear in the gradients (see replicas.py)
        model.optimizer.build(model.trainable_variables)
    if weights is not None:
        model.set_weights(weights)
    iterator = iter(distribute(strategy, tf.data.Dataset.from_tensors(batch if conditional else batch[0]).repeat()))
    step = make_step_function(strategy, model.train_step)
    initial, logs = model.get_weights(), []
    for _ in range(2):
        model.reset_metrics()  # logs of each step alone
        step(next(iterator))
        logs.append({name: float(value) for name, value in model.get_metrics_result().items()})
    return strategy.num_replicas_in_sync, initial, model.get_weights(), logs


keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
batch = (rng.random((8, 8, 8, 1), np.float32), np.arange(8) % 3)
conditional = sys.argv[1:] == ["conditional"]  # one MirroredStrategy per process
n1, initial, weights1, logs1 = run("one_device", None, batch, conditional)
n2, _, weights2, logs2 = run("mirrored", initial, batch, conditional)
print(json.dumps({
    "replicas": [n1, n2],
    "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(weights1, weights2)),
    "min_weight_change": min(float(np.abs(a - b).max()) for a, b in zip(initial, weights1)),
    "weight_changes": [float(np.abs(a - b).max()) for a, b in zip(initial, weights1)],  # per weight
    "weight_diffs": [float(np.abs(a - b).max()) for a, b in zip(weights1, weights2)],
    "logs_1": logs1, "logs_2": logs2}))
