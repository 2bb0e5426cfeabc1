"""One worker of tests/test_distributed.py's two-worker run (TF_CONFIG set by the test).

argv: RUN_DIR WEIGHTS_OUT. Trains the gan_superres `tiny` preset with the multi_worker
strategy and saves the final weights to WEIGHTS_OUT (.npz)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from train.recipes import get_recipe  # noqa: E402
from train.trainer import train  # noqa: E402

recipe = get_recipe("gan_superres")
model = train(recipe, recipe.presets["tiny"], sys.argv[1], "multi_worker", verbose=False)
np.savez(sys.argv[2], *model.get_weights())
print("worker done", flush=True)
