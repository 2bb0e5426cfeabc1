"""The keras.io-style peer of the zoo's rbf recipe: the same RBF network (the zoo's `RBF` layer,
which Keras lacks, then a Dense layer) as a `keras.Sequential` model, `compile(optimizer, "mse")`
and `fit` on the same noisy sin(5x) points, batch and learning-rate schedule; the centres are placed
by the same k-means `adapt`. Regression (the default task) fits by mean squared error, `--task
classify` by sparse categorical cross-entropy.

    python -m train.bench rbf --preset default --keras-peer

`make_peer(config) -> (compiled model, dataset of batches)` is all the benchmark needs.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from zoo.layers.rbf import RBF


def make_peer(config) -> tuple[keras.Model, tf.data.Dataset]:
    """The peer for a `train.recipes.rbf.Config`."""
    from train.recipes.rbf import load_data

    x, y, _, _, classes = load_data(config)
    rbf = RBF(config.units, kernel=config.kernel)
    rbf.adapt(x, method=config.init, max_samples=config.init_samples, iterations=config.kmeans_iterations,
              neighbours=config.width_neighbours, width_scale=config.width_scale, seed=config.seed)
    outputs = y.shape[1] if classes is None else len(classes)
    model = keras.Sequential([keras.Input((x.shape[1],)), rbf, keras.layers.Dense(outputs, dtype="float32")])
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.total_steps, alpha=0.01)
    loss = "mse" if classes is None else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss)
    data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed).repeat()
            .batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    return model, data
