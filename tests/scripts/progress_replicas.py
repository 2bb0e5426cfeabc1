"""Run by tests/test_progress.py in a fresh process: the trainer's progress output (stdout not a
terminal) and metrics.csv for a keras.io-style classifier (loss and accuracy trackers, a
global-mean share) on 1 device and on 2 logical CPU replicas; print both as JSON. argv: DIR."""

import contextlib
import io
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_models import TOY_CLASSIFIER, ToyConfig  # noqa: E402

from train.trainer import train  # noqa: E402

root = Path(sys.argv[1])
config = ToyConfig(epochs=2, steps_per_epoch=6, batch_size=8, log_every=3)
report = {}
for strategy in ("one_device", "mirrored"):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        train(TOY_CLASSIFIER, config, root / strategy, strategy=strategy, verbose=True)
    report[strategy] = {"output": out.getvalue(), "metrics": (root / strategy / "metrics.csv").read_text()}
print(json.dumps(report))
