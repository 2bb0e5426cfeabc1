"""Additive attention pooling over time (Bahdanau et al. 2015, https://arxiv.org/abs/1409.0473;
as a pooling layer for classification: Yang et al. 2016, https://aclanthology.org/N16-1174)."""

from __future__ import annotations

import keras
from keras import ops

_MASKED = -1e9  # the score of a padded position before the softmax (exp underflows to 0)


@keras.saving.register_keras_serializable(package="zoo")
class AttentionPooling(keras.layers.Layer):
    """Pools `(B, T, F)` to `(B, F)` with learned additive attention over time.

    `score_t = v^T tanh(W h_t + b)`, `weights = softmax_t(score)` over the positions the Keras
    mask keeps, `output = sum_t weights_t h_t`. Padded positions get exactly zero weight and
    the weights of every sequence sum to 1 (a sequence with no unmasked position pools to
    zeros). Keras' built-in `Attention`, `AdditiveAttention` and `MultiHeadAttention` layers
    map a query sequence to an output *sequence*: none of them pools time away with a learned
    query, which is what a classifier on top of an RNN needs.

    Scores, the softmax and the weighted sum are computed in float32, so the layer is exact
    under mixed precision (`mixed_bfloat16`, `mixed_float16`); the pooled output is cast to
    the layer's compute dtype, the attention weights are float32.

    Args:
        units: size of the hidden attention projection `W`; None: the number of features.
        return_attention: also return the attention weights `(B, T)` (e.g. for heat maps):
            the call then returns a list `[pooled, weights]`.
        kernel_initializer: initializer of `W` and `v`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, F)` float tensor, e.g. the `return_sequences=True` output of an RNN.
        mask: optional `(B, T)` boolean mask (True = keep), passed on by Keras from an
            `Embedding(mask_zero=True)` or `Masking` layer upstream.

    Returns:
        `(B, F)` pooled features; with `return_attention=True`, `[(B, F), (B, T) weights]`.
        No mask is propagated (time is pooled away).

    Example:
    >>> inputs = keras.Input((None,), dtype="int32")
    >>> x = keras.layers.Embedding(1000, 32, mask_zero=True)(inputs)
    >>> x = keras.layers.Bidirectional(keras.layers.LSTM(16, return_sequences=True))(x)
    >>> pooled, weights = AttentionPooling(return_attention=True)(x)
    >>> model = keras.Model(inputs, [keras.layers.Dense(4)(pooled), weights])
    >>> [tuple(t.shape) for t in model.outputs]
    [(None, 4), (None, None)]
    """

    def __init__(self, units: int | None = None, return_attention: bool = False,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if units is not None and (int(units) != units or units < 1):
            raise ValueError(f"AttentionPooling units must be a positive integer or None, got {units}")
        self.units = None if units is None else int(units)
        self.return_attention = bool(return_attention)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.supports_masking = True

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"AttentionPooling needs a known feature size, got input shape {input_shape}")
        units = self.units or features
        self.kernel = self.add_weight(shape=(features, units), initializer=self.kernel_initializer,
                                      name="kernel")  # W
        self.bias = self.add_weight(shape=(units,), initializer="zeros", name="bias")  # b
        self.query = self.add_weight(shape=(units,), initializer=self.kernel_initializer, name="query")  # v

    def attention_weights(self, inputs, mask=None):
        """The float32 `(B, T)` attention weights of `inputs` `(B, T, F)` (zero where masked)."""
        hidden = ops.tanh(ops.matmul(inputs, ops.cast(self.kernel, inputs.dtype))
                          + ops.cast(self.bias, inputs.dtype))  # (B, T, U)
        scores = ops.matmul(ops.cast(hidden, "float32"), ops.cast(self.query, "float32"))  # (B, T)
        if mask is None:
            return ops.softmax(scores, axis=-1)
        keep = ops.cast(mask, "bool")
        weights = ops.softmax(ops.where(keep, scores, _MASKED), axis=-1)
        return ops.where(keep, weights, 0.0)  # exact zeros, also for a fully masked row

    def call(self, inputs, mask=None):
        weights = self.attention_weights(inputs, mask)  # (B, T) float32
        pooled = ops.einsum("bt,btf->bf", weights, ops.cast(inputs, "float32"))  # (B, F)
        pooled = ops.cast(pooled, self.compute_dtype)
        return [pooled, weights] if self.return_attention else pooled

    def compute_mask(self, inputs, mask=None):
        return [None, None] if self.return_attention else None

    def compute_output_shape(self, input_shape):
        pooled = (input_shape[0], input_shape[-1])
        return [pooled, tuple(input_shape[:2])] if self.return_attention else pooled

    def compute_output_spec(self, inputs, mask=None):
        shapes = self.compute_output_shape(inputs.shape)
        if not self.return_attention:
            return keras.KerasTensor(shapes, self.compute_dtype)
        return [keras.KerasTensor(shapes[0], self.compute_dtype), keras.KerasTensor(shapes[1], "float32")]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "return_attention": self.return_attention,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
