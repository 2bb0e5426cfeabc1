"""Loss reduction that is right on any number of replicas (see the trainer's metric contract)."""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def global_mean(per_example, count=None):
    """This replica's share of the mean over the *global* batch: `sum(per_example) / N`.

    N is the number of examples on all replicas together (all-reduced, so an uneven or
    empty last batch is exact too); pass `count` to reuse one already computed. Summed over
    replicas, the shares are the global-batch mean, and gradients of it are the gradients of
    that mean, because tf.distribute sums gradients over replicas. On one device it is
    simply the mean.

    Args:
        per_example: `(B,)` per-example values (any float dtype; summed in float32).
        count: the global number of examples, from `global_count`, or None to compute it.

    Example:
    >>> loss = global_mean(ops.mean(ops.abs(y - y_pred), axis=-1))  # doctest: +SKIP
    """
    values = ops.cast(per_example, "float32")
    count = global_count(values) if count is None else count
    return ops.sum(values) / ops.maximum(count, 1.0)


def global_count(batch) -> tf.Tensor:
    """The number of examples in the global batch (the leading dimension, summed over replicas)."""
    count = ops.cast(ops.shape(batch)[0], "float32")
    context = tf.distribute.get_replica_context()
    return count if context is None else context.all_reduce("SUM", count)
