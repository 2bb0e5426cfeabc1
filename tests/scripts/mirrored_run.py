"""Run by tests/test_distributed.py: the whole trainer (`python -m train`'s code path) with
`--strategy mirrored` over 2 logical CPU devices. argv: RUN_DIR."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from train.__main__ import main  # noqa: E402

sys.exit(main(["gan_superres", "--preset", "tiny", "--strategy", "mirrored", "--run-dir", sys.argv[1]]))
