"""Canary worker: plain `keras.Model.fit` under MultiWorkerMirroredStrategy (TF_CONFIG set
by the test). Exits 0 if fit works, 3 if it fails the way Keras 3.15.1 does (keras#20585: a
ValueError converting a PerReplica value, or "Invalid reduction dimension"), 4 on any other error."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402

with strategy.scope():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
data = tf.data.Dataset.from_tensor_slices((np.ones((16, 4), "float32"), np.ones((16, 1), "float32"))).batch(8)
try:
    model.fit(data, epochs=1, verbose=0)
except Exception as error:  # noqa: BLE001 - sorted below into the known failure and others
    known = isinstance(error, ValueError) and ("PerReplica" in str(error)
                                               or "Invalid reduction dimension" in str(error))
    print(f"fit failed ({'known' if known else 'UNKNOWN'}): {type(error).__name__}: {str(error)[:300]}",
          flush=True)
    sys.exit(3 if known else 4)
print("fit worked", flush=True)
