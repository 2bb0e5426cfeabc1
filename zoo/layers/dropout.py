"""Stateless dropout for custom train steps (PITFALLS: stateful Keras seeds repeat across replicas)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def stateless_dropout(x, rate: float, seed, noise_shape=None):
    """Inverted dropout of `x` with a mask drawn from `seed` (2 ints, e.g. `step_seed(step)`), so
    every step gets its own mask and a rerun the same one; `noise_shape` broadcasts the mask (e.g.
    `(B, T, 1)` drops whole word vectors). Under tf.distribute the mask of the whole global batch
    is drawn and each replica keeps its own rows, so N replicas drop exactly the units one device
    drops (the first axis is the batch, split evenly, as the trainer's training batches are).
    tf because keras.random takes no tensor seeds."""
    if rate <= 0:
        return x
    shape = tf.shape(x) if noise_shape is None else tf.convert_to_tensor(noise_shape, tf.int32)
    keep = rows_uniform(shape, seed) >= rate
    return ops.where(keep, x / ops.cast(1.0 - rate, x.dtype), ops.zeros_like(x))


def rows_uniform(shape, seed, **kwargs):
    """`tf.random.stateless_uniform(shape, seed, **kwargs)` of this replica's rows of the global
    batch: the values of the whole global batch `(replicas x shape[0], ...)` are drawn and each
    replica keeps its own rows (the first axis is the batch, split evenly), so N replicas draw
    exactly what one device draws for the same batch; on one device, the plain draw."""
    shape = tf.convert_to_tensor(shape, tf.int32)
    context = tf.distribute.get_replica_context()
    replicas = 1 if context is None else context.num_replicas_in_sync
    replica = 0 if context is None else context.replica_id_in_sync_group
    local = shape[0]
    draw = tf.random.stateless_uniform(tf.concat([[local * replicas], shape[1:]], axis=0), seed, **kwargs)
    return draw[replica * local:(replica + 1) * local]


def step_seed(step):
    """The seed of a train step's dropout masks: 2 int32 `(step, 0)`, masks that differ on every
    step and repeat on a rerun (the same on every replica: `stateless_dropout` gives each replica
    its rows of the global batch's mask)."""
    return tf.stack([tf.cast(step, tf.int32), tf.constant(0, tf.int32)])
