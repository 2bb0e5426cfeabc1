"""The keras.io-style peer of the zoo's som_rbf_attention: the same network as a functional model,
images -> rows -> similarities to a self-organizing map's units (+ row height) -> RBF units ->
attention poolings -> dropout -> ReLU layer -> dropout -> Dense, trained by `compile` + `fit`
(sparse categorical cross-entropy, Adam with cosine decay) on the same 1,000 training images and
batch. The map learns by its own rule, not by gradients, so the model's `train_step` is keras.io's
"customizing what happens in fit()": the standard step (`super().train_step`), then one batch-SOM
update of the map on the batch's rows, as the zoo's step does.

The SOM, RBF and attention-pooling layers are the zoo's (Keras has none of them); the map is set up
as the recipe sets it up (PCA start and batch-map steps on all training rows), the RBF centres by
k-means on the row features.

    python -m train.bench som_rbf_attention --preset default --keras-peer

`make_peer(config) -> (compiled model, dataset of batches)` is all the benchmark needs.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.layers.attention import AttentionPooling
from zoo.layers.rbf import RBF
from zoo.layers.som import SelfOrganizingMap, exponential_decay, squared_distances


class RowFeatures(keras.layers.Layer):
    """`(B, H, D)` rows -> `(B, H, U + 1)`: `exp(-d^2 / 2 s^2)` to each of the map's U units and the
    row's height `position_weight * t / (H - 1)`; `update_map` is the in-step batch-SOM update."""

    def __init__(self, som: SelfOrganizingMap, width: float, position_weight: float, rate: float,
                 decay_steps: int, **kwargs):
        super().__init__(dtype="float32", **kwargs)  # distances in float32, as the zoo computes them
        self.som, self.width, self.position_weight = som, width, position_weight
        self.rate, self.decay_steps = rate, decay_steps

    def call(self, rows):
        d2 = squared_distances(ops.reshape(rows, (-1, rows.shape[-1])), ops.stop_gradient(self.som.prototypes))
        similarities = ops.reshape(ops.exp(-d2 / (2.0 * self.width**2)), (-1, rows.shape[1], self.som.units))
        height = np.linspace(0.0, self.position_weight, rows.shape[1], dtype=np.float32)[:, None]  # (H, 1)
        return ops.concatenate([similarities, ops.ones_like(similarities[..., :1]) * height], axis=-1)

    def update_map(self, rows, step) -> None:
        """One batch-SOM update on `rows` at `step` (radius 1 -> 0.5, rate decaying 10x), as the zoo's."""
        rows = ops.reshape(ops.cast(rows, "float32"), (-1, self.som.prototypes.shape[1]))
        progress = ops.cast(step, "float32") / float(max(self.decay_steps - 1, 1))
        sigma = exponential_decay(1.0, 0.5, progress)
        best = self.som.match(rows)[0]
        numerator, denominator = self.som.batch_statistics(rows, sigma, best)
        self.som.apply_batch_update(numerator, denominator, exponential_decay(self.rate, self.rate / 10, progress))


class SomRbfAttentionPeer(keras.Model):
    """keras.io's custom `train_step`: the standard step, then the map's own update."""

    def train_step(self, data):
        logs = super().train_step(data)
        self.get_layer("rows").update_map(self.get_layer("reshape")(data[0]), self.optimizer.iterations - 1)
        return logs


def make_peer(config) -> tuple[keras.Model, tf.data.Dataset]:
    """The peer for a `train.recipes.som_rbf_attention.Config`."""
    from train.recipes.som_rbf_attention import training_images

    images, labels, names, _ = training_images(config)
    height, width, channels = images.shape[1:]
    rows = images.reshape(len(images), height, width * channels)
    som = SelfOrganizingMap(*config.som_grid, name="som")
    som.build((None, width * channels))
    som.initialize(rows.reshape(-1, width * channels), "pca", config.seed)
    som.train_batch_map(rows.reshape(-1, width * channels), config.som_steps, config.som_sigma, 1.0)
    scale = max(som.errors(rows.reshape(-1, width * channels))["quantization_error"], 1e-3) * config.similarity_scale
    features = RowFeatures(som, scale, config.position_weight, config.som_rate, config.total_steps, name="rows")
    rbf = RBF(config.rbf_units)
    rbf.adapt(features(rows), width_scale=config.rbf_width_scale, seed=config.seed)

    inputs = keras.Input(images.shape[1:])
    x = rbf(features(keras.layers.Reshape((height, width * channels), dtype="float32", name="reshape")(inputs)))
    heads = [AttentionPooling(config.attention_units)(x) for _ in range(config.heads)]
    x = keras.layers.Dropout(config.dropout)(keras.layers.Concatenate()(heads) if config.heads > 1 else heads[0])
    if config.hidden_units:
        x = keras.layers.Dropout(config.dropout)(keras.layers.Dense(config.hidden_units, activation="relu")(x))
    model = SomRbfAttentionPeer(inputs, keras.layers.Dense(len(names), dtype="float32")(x))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                                                        config.total_steps)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    data = (tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=config.seed).repeat()
            .batch(config.batch_size, drop_remainder=True).prefetch(2))
    return model, data
