"""Stateless dropout for custom train steps (PITFALLS: stateful Keras seeds repeat across replicas)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def stateless_dropout(x, rate: float, seed, noise_shape=None):
    """Inverted dropout of `x` with a mask drawn from `seed` (2 ints, e.g. step and replica), so
    every replica and step gets its own mask and a rerun the same one; `noise_shape` broadcasts
    the mask (e.g. `(B, T, 1)` drops whole word vectors). tf because keras.random takes no
    tensor seeds."""
    if rate <= 0:
        return x
    keep = tf.random.stateless_uniform(tf.shape(x) if noise_shape is None else noise_shape, seed) >= rate
    return ops.where(keep, x / ops.cast(1.0 - rate, x.dtype), ops.zeros_like(x))


def step_seed(step):
    """The seed `(step, replica id)` of a train step, 2 int32: masks that differ on every step and
    replica and repeat on a rerun."""
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    return tf.stack([tf.cast(step, tf.int32), tf.cast(replica, tf.int32)])
