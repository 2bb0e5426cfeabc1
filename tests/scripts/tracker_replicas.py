"""Run by tests/test_trainer.py in a fresh process: the whole trainer on a keras.io-style
classifier (loss and accuracy trackers, a validation set whose last batch is uneven) on 1
device and on 2 logical CPU replicas; print every logged scalar of both runs as JSON."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from pathlib import Path  # noqa: E402

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toy_models import TOY_CLASSIFIER, ToyConfig  # noqa: E402

from train.trainer import train  # noqa: E402


def scalars(run_dir: Path) -> dict:
    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    return {tag: [[e.step, float(tf.make_ndarray(e.tensor_proto))] for e in events.Tensors(tag)]
            for tag in events.Tags()["tensors"] if tag.split("/")[0] in ("train", "epoch")}


root = Path(sys.argv[1])
config = ToyConfig(epochs=2, steps_per_epoch=3, batch_size=8, log_every=1)
report = {}
for strategy in ("one_device", "mirrored"):
    train(TOY_CLASSIFIER, config, root / strategy, strategy=strategy, verbose=False)
    report[strategy] = scalars(root / strategy)
print(json.dumps(report))
