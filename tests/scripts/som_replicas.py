"""Run by tests/test_som.py in a fresh process: three SOM train steps (batch-SOM updates) on
1 device and on 2 logical CPU replicas with the same global batches; print a JSON report."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from train.strategy import make_strategy  # noqa: E402
from train.trainer import distribute, make_step_function  # noqa: E402
from zoo.models import SOM  # noqa: E402


def run(strategy_name: str, x: np.ndarray, topology: str, neighbourhood: str):
    strategy = make_strategy(strategy_name)
    with strategy.scope():
        model = SOM(4, 5, topology, neighbourhood, sigma_start=2.0, sigma_end=0.8, learning_rate_start=0.9,
                    learning_rate_end=0.3, decay_steps=3)
        model.initialize(x, "random", seed=0)
        model.compile()
    initial = model.som.prototypes.numpy().copy()
    batches = tf.data.Dataset.from_tensor_slices(x).batch(16, drop_remainder=True)  # 3 global batches
    step = make_step_function(strategy, model.train_step)
    logs = []
    for batch in distribute(strategy, batches):
        outputs, _ = step(batch)
        logs.append({k: float(v) for k, v in outputs.items()})
    evaluate = make_step_function(strategy, model.test_step)
    outputs, _ = evaluate(next(iter(distribute(strategy, tf.data.Dataset.from_tensors(x[:30])))))
    logs.append({k: float(v) for k, v in outputs.items()})  # errors of the trained map on 30 samples
    return strategy.num_replicas_in_sync, initial, model.som.prototypes.numpy(), int(model.steps_done.numpy()), logs


topology, neighbourhood = sys.argv[1], sys.argv[2]
x = np.random.default_rng(0).normal(size=(48, 3)).astype(np.float32)
n1, initial, w1, steps1, logs1 = run("one_device", x, topology, neighbourhood)
n2, _, w2, steps2, logs2 = run("mirrored", x, topology, neighbourhood)
print(json.dumps({
    "replicas": [n1, n2], "steps": [steps1, steps2],
    "max_prototype_diff": float(np.abs(w1 - w2).max()),
    "min_prototype_change": float(np.abs(w1 - initial).max(axis=1).min()),
    "logs_1": logs1, "logs_2": logs2,
}))
