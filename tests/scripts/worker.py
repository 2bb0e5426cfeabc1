"""One worker of tests/test_distributed.py's two-worker run (TF_CONFIG set by the test).

argv: RUN_DIR WEIGHTS_OUT [STRATEGY]. Trains the gan_superres `tiny` preset in float32 with the
multi_worker strategy (or STRATEGY: the test's 1-process reference uses one_device), saves the
final weights to WEIGHTS_OUT (.npz); the chief prints the number of replicas in sync."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

from train.recipes import get_recipe  # noqa: E402
from train.trainer import train  # noqa: E402

recipe = get_recipe("gan_superres")
config = dataclasses.replace(recipe.presets["tiny"], precision="float32")
model = train(recipe, config, sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else "multi_worker")
np.savez(sys.argv[2], *model.get_weights())
