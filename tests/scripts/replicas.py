"""Run by tests/test_distributed.py in a fresh process: one SRGAN step of each phase on
1 device and on 2 logical CPU replicas with the same global batch; print a JSON report."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from train.strategy import make_strategy  # noqa: E402
from train.trainer import distribute, make_step_function  # noqa: E402
from zoo.models import SRGAN, build_sr_discriminator, build_sr_generator  # noqa: E402


def run(strategy_name: str, weights, batch):
    strategy = make_strategy(strategy_name)
    with strategy.scope():
        model = SRGAN(build_sr_generator(4, 8, 1), build_sr_discriminator(8, 2, 16), 4, pretrain_steps=1)
        # SGD: updates linear in the gradients, so the comparison measures the gradients
        # themselves (Adam's first step amplifies float noise in gradients far below its epsilon).
        model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
        model.build_optimizers()
    if weights is not None:
        model.set_weights(weights)
    iterator = iter(distribute(strategy, tf.data.Dataset.from_tensors(batch).repeat()))
    initial = model.get_weights()
    losses = []
    for step in range(2):  # step 0: pre-training, step 1: adversarial
        model.begin_step(step)
        outputs, _ = make_step_function(strategy, model.train_step)(next(iterator))
        losses.append({k: float(v) for k, v in outputs.items()})
    return strategy.num_replicas_in_sync, initial, model.get_weights(), losses


keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
batch = (rng.random((4, 8, 8, 3), np.float32), rng.random((4, 32, 32, 3), np.float32))
n1, initial, weights1, losses1 = run("one_device", None, batch)
n2, _, weights2, losses2 = run("mirrored", initial, batch)
print(json.dumps({
    "replicas": [n1, n2],
    "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(weights1, weights2)),
    "min_weight_change": min(float(np.abs(a - b).max()) for a, b in zip(initial, weights1)),
    "weight_changes": [float(np.abs(a - b).max()) for a, b in zip(initial, weights1)],  # per weight
    "weight_diffs": [float(np.abs(a - b).max()) for a, b in zip(weights1, weights2)],
    "losses_1": losses1, "losses_2": losses2,
}))
