"""A Transformer encoder block and position embeddings (Vaswani et al. 2017, "Attention Is All You
Need", https://arxiv.org/abs/1706.03762, sections 3.1-3.5)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.dropout import stateless_dropout

_MASKED = -1e9  # the score of a padded key before the softmax (exp underflows to 0)
POSITIONS = ("learned", "sinusoidal")


@keras.saving.register_keras_serializable(package="zoo")
class TransformerEncoder(keras.layers.Layer):
    """One Transformer encoder block: multi-head self-attention and a position-wise feed-forward
    network, each wrapped in dropout, a residual connection and layer normalization.

    Post-norm (the paper, default): `x = LN(x + drop(MHA(x)))`, `y = LN(x + drop(FFN(x)))`.
    Pre-norm (`norm_first=True`, Xiong et al. 2020, https://arxiv.org/abs/2002.04745):
    `x = x + drop(MHA(LN(x)))`, `y = x + drop(FFN(LN(x)))`; a stack of pre-norm blocks usually
    ends with one more `LayerNormalization`. `MHA(x) = concat_h(softmax(Q_h K_h^T / sqrt(d))
    V_h) W_o` with `Q_h = x W_q^h + b` (likewise K, V), `FFN(x) = act(x W_1 + b_1) W_2 + b_2`.

    Padded positions (mask False) are never attended to: their attention weights are exactly
    zero, so whatever they hold does not change the outputs at real positions. The mask is
    passed on unchanged. Scores, softmax and layer norms run in float32 whatever the dtype
    policy; the output has the layer's compute dtype, the attention weights are float32.

    Dropout (on the attention weights and on each sub-layer's output before the residual sum)
    runs when `training` is true, from the layer's own seed generator; or, when a `seed` tensor
    is passed, from stateless masks derived from it (custom train steps that need different
    masks per replica and step).

    Args:
        num_heads: attention heads.
        ff_dim: hidden units of the feed-forward network.
        key_dim: size of each head's queries, keys and values; None: `features // num_heads`
            (the features must then be divisible by `num_heads`).
        dropout: dropout rate on the attention and feed-forward outputs (the paper's P_drop).
        attention_dropout: dropout rate on the attention weights.
        norm_first: pre-norm instead of post-norm.
        activation: the feed-forward activation (a Keras activation name).
        epsilon: added to the variance in layer normalization.
        kernel_initializer: initializer of every weight matrix.
        seed: seed of the layer's dropout when `training` (None: random).
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, F)` float tensor.
        mask: optional `(B, T)` boolean mask (True = a real position), e.g. from an
            `Embedding(mask_zero=True)` upstream.
        training: apply dropout.
        seed: optional int32 `(2,)` tensor: apply dropout with stateless masks from this seed.
        return_attention_scores: also return the attention weights.

    Returns:
        `(B, T, F)`; with `return_attention_scores=True`, `((B, T, F), (B, heads, T, T))`: the
        softmax weights of each head, query by key.

    Example:
    >>> inputs = keras.Input((None,), dtype="int32")
    >>> x = keras.layers.Embedding(1000, 32, mask_zero=True)(inputs)
    >>> x = PositionEmbedding(64)(x)
    >>> x = TransformerEncoder(num_heads=4, ff_dim=64, dropout=0.1)(x)
    >>> model = keras.Model(inputs, keras.layers.Dense(4)(AttentionPooling()(x)))
    >>> tuple(model.output.shape)
    (None, 4)
    """

    def __init__(self, num_heads: int, ff_dim: int, key_dim: int | None = None, dropout: float = 0.0,
                 attention_dropout: float = 0.0, norm_first: bool = False, activation: str = "relu",
                 epsilon: float = 1e-5, kernel_initializer="glorot_uniform", seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_heads", num_heads), ("ff_dim", ff_dim), ("key_dim", key_dim)):
            if (value is not None or name != "key_dim") and (int(value) != value or value < 1):
                raise ValueError(f"TransformerEncoder {name} must be a positive integer, got {value}")
        for name, value in (("dropout", dropout), ("attention_dropout", attention_dropout)):
            if not 0 <= value < 1:
                raise ValueError(f"TransformerEncoder {name} must be in [0, 1), got {value}")
        self.num_heads, self.ff_dim = int(num_heads), int(ff_dim)
        self.key_dim = None if key_dim is None else int(key_dim)
        self.dropout, self.attention_dropout = float(dropout), float(attention_dropout)
        self.norm_first, self.epsilon = bool(norm_first), float(epsilon)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def _head_size(self, features: int) -> int:
        if self.key_dim is not None:
            return self.key_dim
        if features % self.num_heads:
            raise ValueError(f"TransformerEncoder: {features} features are not divisible by {self.num_heads} "
                             "heads; pass key_dim")
        return features // self.num_heads

    def build(self, input_shape):
        features = input_shape[-1]
        if features is None:
            raise ValueError(f"TransformerEncoder needs a known feature size, got input shape {input_shape}")
        inner = self.num_heads * self._head_size(features)

        def weight(name, shape, initializer):
            return self.add_weight(shape=shape, initializer=initializer, name=name)

        for part in ("query", "key", "value"):
            setattr(self, f"{part}_kernel", weight(f"{part}_kernel", (features, inner), self.kernel_initializer))
            setattr(self, f"{part}_bias", weight(f"{part}_bias", (inner,), "zeros"))
        self.output_kernel = weight("output_kernel", (inner, features), self.kernel_initializer)  # W_o
        self.output_bias = weight("output_bias", (features,), "zeros")
        self.ff_kernel = weight("ff_kernel", (features, self.ff_dim), self.kernel_initializer)  # W_1
        self.ff_bias = weight("ff_bias", (self.ff_dim,), "zeros")
        self.ff_output_kernel = weight("ff_output_kernel", (self.ff_dim, features), self.kernel_initializer)  # W_2
        self.ff_output_bias = weight("ff_output_bias", (features,), "zeros")
        for norm in ("attention_norm", "ff_norm"):
            setattr(self, f"{norm}_gamma", weight(f"{norm}_gamma", (features,), "ones"))
            setattr(self, f"{norm}_beta", weight(f"{norm}_beta", (features,), "zeros"))

    # ------------------------------------------------------------------------- pieces

    def _dense(self, x, kernel, bias):
        return ops.matmul(x, ops.cast(kernel, x.dtype)) + ops.cast(bias, x.dtype)

    def _norm(self, x, name: str):
        """Layer normalization over features, in float32."""
        x32 = ops.cast(x, "float32")
        mean = ops.mean(x32, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(x32 - mean), axis=-1, keepdims=True)
        gamma, beta = (ops.cast(getattr(self, f"{name}_{w}"), "float32") for w in ("gamma", "beta"))
        return ops.cast((x32 - mean) * ops.rsqrt(variance + self.epsilon) * gamma + beta, self.compute_dtype)

    def _dropper(self, training, seed):
        """`drop(x, rate, index)`: dropout by the stateless `seed` (folded with `index`, so each
        use gets its own mask), else Keras' seeded dropout while training, else identity."""
        def drop(x, rate, index):
            if rate <= 0 or (seed is None and not training):
                return x
            if seed is not None:
                return stateless_dropout(x, rate, tf.random.experimental.stateless_fold_in(seed, index))
            return keras.random.dropout(x, rate, seed=self.seed_generator)
        return drop

    def _attend(self, x, mask, drop):
        """Multi-head self-attention: `((B, T, F) output, float32 (B, H, T, T) weights)`."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        heads = self.num_heads
        size = self.query_kernel.shape[-1] // heads

        def split(part):  # (B, T, F) -> (B, T, H, D)
            projected = self._dense(x, getattr(self, f"{part}_kernel"), getattr(self, f"{part}_bias"))
            return ops.reshape(projected, (batch, length, heads, size))

        query, key, value = split("query"), split("key"), split("value")
        scores = ops.einsum("bqhd,bkhd->bhqk", ops.cast(query, "float32"), ops.cast(key, "float32"))
        scores = scores / math.sqrt(size)  # (B, H, T, T)
        if mask is None:
            weights = ops.softmax(scores, axis=-1)
        else:
            keep = ops.cast(mask, "bool")[:, None, None, :]  # (B, 1, 1, T): which keys are real
            weights = ops.where(keep, ops.softmax(ops.where(keep, scores, _MASKED), axis=-1), 0.0)
        dropped = ops.cast(drop(weights, self.attention_dropout, 0), x.dtype)
        attended = ops.einsum("bhqk,bkhd->bqhd", dropped, value)  # (B, T, H, D)
        attended = ops.reshape(attended, (batch, length, heads * size))
        return self._dense(attended, self.output_kernel, self.output_bias), weights

    def _feed_forward(self, x):
        return self._dense(self.activation(self._dense(x, self.ff_kernel, self.ff_bias)),
                           self.ff_output_kernel, self.ff_output_bias)

    # ------------------------------------------------------------------------- call

    def call(self, inputs, mask=None, training=None, seed=None, return_attention_scores=False):
        x = ops.cast(inputs, self.compute_dtype)  # (B, T, F)
        drop = self._dropper(training, seed)
        if self.norm_first:
            attended, weights = self._attend(self._norm(x, "attention_norm"), mask, drop)
            x = x + drop(attended, self.dropout, 1)
            outputs = x + drop(self._feed_forward(self._norm(x, "ff_norm")), self.dropout, 2)
        else:
            attended, weights = self._attend(x, mask, drop)
            x = self._norm(x + drop(attended, self.dropout, 1), "attention_norm")
            outputs = self._norm(x + drop(self._feed_forward(x), self.dropout, 2), "ff_norm")
        return (outputs, weights) if return_attention_scores else outputs

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, inputs, mask=None, training=None, seed=None, return_attention_scores=False):
        outputs = keras.KerasTensor(inputs.shape, self.compute_dtype)
        if not return_attention_scores:
            return outputs
        batch, length = inputs.shape[0], inputs.shape[1]
        return outputs, keras.KerasTensor((batch, self.num_heads, length, length), "float32")

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "ff_dim": self.ff_dim,
                "key_dim": self.key_dim, "dropout": self.dropout, "attention_dropout": self.attention_dropout,
                "norm_first": self.norm_first, "activation": keras.activations.serialize(self.activation),
                "epsilon": self.epsilon, "seed": self.seed,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable(package="zoo")
class PositionEmbedding(keras.layers.Layer):
    """Adds a vector per position to a sequence: learned, or the sinusoids of Vaswani et al.

    `learned`: a trainable `(sequence_length, F)` table; position t adds row t (sequences up to
    `sequence_length` long). `sinusoidal` (no weights, any length): feature 2i of position t is
    `sin(t / max_wavelength^(2i / F))`, feature 2i + 1 is `cos` of the same angle. The output is
    `inputs + positions` (so it fits in a `Sequential` model); the mask is passed on.
    `positions(length)` gives the `(length, F)` vectors alone.

    Args:
        sequence_length: the longest sequence (rows of the learned table).
        kind: `"learned"` or `"sinusoidal"`.
        max_wavelength: the longest sinusoid's wavelength (sinusoidal only).
        initializer: initializer of the learned table.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(B, T, F)` float tensor, e.g. word embeddings.

    Returns:
        `(B, T, F)`: `inputs` plus the position vectors, in the layer's compute dtype.

    Example:
    >>> model = keras.Sequential([keras.Input((16,), dtype="int32"),
    ...                           keras.layers.Embedding(1000, 32, mask_zero=True),
    ...                           PositionEmbedding(16, kind="sinusoidal"),
    ...                           TransformerEncoder(num_heads=2, ff_dim=64),
    ...                           AttentionPooling(), keras.layers.Dense(4)])
    >>> tuple(model(np.ones((2, 16), "int32")).shape)
    (2, 4)
    """

    def __init__(self, sequence_length: int, kind: str = "learned", max_wavelength: float = 10000.0,
                 initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        if int(sequence_length) != sequence_length or sequence_length < 1:
            raise ValueError(f"PositionEmbedding sequence_length must be a positive integer, got {sequence_length}")
        if kind not in POSITIONS:
            raise ValueError(f"PositionEmbedding kind must be one of {', '.join(POSITIONS)}, got {kind!r}")
        if max_wavelength <= 1:
            raise ValueError(f"PositionEmbedding max_wavelength must be > 1, got {max_wavelength}")
        self.sequence_length, self.kind = int(sequence_length), kind
        self.max_wavelength = float(max_wavelength)
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, input_shape):
        length, features = input_shape[-2], input_shape[-1]
        if features is None:
            raise ValueError(f"PositionEmbedding needs a known feature size, got input shape {input_shape}")
        if self.kind == "learned" and length is not None and length > self.sequence_length:
            raise ValueError(f"PositionEmbedding: sequences of {length} positions exceed sequence_length "
                             f"{self.sequence_length}")
        self.features = int(features)
        if self.kind == "learned":
            self.embeddings = self.add_weight(shape=(self.sequence_length, features), initializer=self.initializer,
                                              name="embeddings")

    def positions(self, length):
        """The float32 `(length, F)` position vectors."""
        if self.kind == "learned":
            return ops.cast(self.embeddings, "float32")[:length]
        t = ops.cast(ops.arange(length), "float32")[:, None]  # (T, 1)
        i = ops.arange(self.features)  # (F,)
        rates = ops.power(self.max_wavelength, -ops.cast(2 * (i // 2), "float32") / self.features)
        angles = t * rates[None, :]  # (T, F)
        return ops.where(i % 2 == 0, ops.sin(angles), ops.cos(angles))

    def call(self, inputs):
        positions = self.positions(ops.shape(inputs)[-2])  # (T, F)
        return ops.cast(inputs, self.compute_dtype) + ops.cast(positions, self.compute_dtype)[None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "sequence_length": self.sequence_length, "kind": self.kind,
                "max_wavelength": self.max_wavelength, "initializer": keras.initializers.serialize(self.initializer)}
