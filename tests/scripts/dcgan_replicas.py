"""Run by tests/test_dcgan.py in a fresh process: two DCGAN steps on 1 device and on 2 logical
CPU replicas with the same global batches, for WGAN-GP (n_critic 2, layer-norm critic) and the
non-saturating loss (synchronized batch norm in both nets); print one JSON report per loss.

Equal weights prove that every loss is a global-batch mean, that the gradient penalty is
per example, that batch norm uses global statistics, and that each replica draws the noise
of its own examples (the same noise 1 replica draws for them, so not the same on both)."""

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
from zoo.models import DCGAN, build_dcgan_discriminator, build_dcgan_generator  # noqa: E402


def make(loss: str) -> DCGAN:
    norm = "layer" if loss == "wgan-gp" else "batch"
    critic = build_dcgan_discriminator(28, 1, 4, norm=norm, logit_bias=loss != "wgan-gp")
    model = DCGAN(build_dcgan_generator(8, 28, 1, width=4), critic,
                  loss=loss, n_critic=2 if loss == "wgan-gp" else 1)
    # SGD: updates linear in the gradients, so the comparison measures the gradients themselves.
    model.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
    model.build_optimizers()
    return model


# One strategy of each kind for the whole process: a second MirroredStrategy in the same
# process reuses collective instance keys of the first and fails ("Shape mismatch in the
# collective instance 108"), measured on TF 2.21.
STRATEGIES = {name: make_strategy(name) for name in ("one_device", "mirrored")}


def run(strategy_name: str, loss: str, weights, batches):
    strategy = STRATEGIES[strategy_name]
    with strategy.scope():
        model = make(loss)
    if weights is not None:
        model.set_weights(weights)
    iterator = iter(distribute(strategy, tf.data.Dataset.from_tensor_slices(batches)))
    step = make_step_function(strategy, model.train_step)
    initial = model.get_weights()
    losses = [{k: float(v) for k, v in step(next(iterator))[0].items()} for _ in range(len(batches))]
    return strategy.num_replicas_in_sync, initial, model.get_weights(), losses


def compare(loss: str) -> dict:
    keras.utils.set_random_seed(0)
    per_step = 8 if loss == "wgan-gp" else 4  # n_critic * B, B = 4 (2 per replica)
    batches = np.random.default_rng(0).uniform(-1, 1, (2, per_step, 28, 28, 1)).astype(np.float32)
    n1, initial, weights1, losses1 = run("one_device", loss, None, batches)
    n2, _, weights2, losses2 = run("mirrored", loss, initial, batches)
    return {"replicas": [n1, n2],
            "max_weight_diff": max(float(np.abs(a - b).max()) for a, b in zip(weights1, weights2)),
            "min_weight_change": min(float(np.abs(a - b).max()) for a, b in zip(initial, weights1)),
            "weight_changes": [float(np.abs(a - b).max()) for a, b in zip(initial, weights1)],  # per weight
            "weight_diffs": [float(np.abs(a - b).max()) for a, b in zip(weights1, weights2)],
            "losses_1": losses1, "losses_2": losses2}


print(json.dumps({loss: compare(loss) for loss in ("wgan-gp", "nonsaturating")}))
