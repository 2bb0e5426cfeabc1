"""The keras.io-style peer of the zoo's transformer_classifier: the keras.io text setup of
`keras_io_lstm_classifier.py` (TextVectorization mapped over the dataset, Embedding, word dropout,
dropout, attention pooling, Dense, `compile` + `fit`) with the encoder of keras.io's
https://keras.io/examples/nlp/text_classification_with_transformer/: learned position embeddings
added to the word vectors and `TransformerBlock`s (MultiHeadAttention, a ReLU feed-forward network,
dropout, residual sums, post-norm LayerNormalization). As the zoo does, the attention skips padded
words (keras.io's example attends to them) and each head has `embedding_dim / num_heads` features
(keras.io's uses `key_dim=embed_dim`).

The zoo's step also fits adversarially shifted embeddings (`--adversarial`); this peer does not,
so `train.bench` also times the zoo with `ZOO_AS_PEER` (adversarial off).

    python -m train.bench transformer_classifier --preset default --keras-peer
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from keras_io_lstm_classifier import text_peer  # noqa: E402  (train.bench puts tools/peers on the path)

ZOO_AS_PEER = {"adversarial": 0.0}  # the zoo's settings that compute what this peer computes


class PositionEmbedding(keras.layers.Layer):
    """keras.io's TokenAndPositionEmbedding, position half: adds a learned vector per position."""

    def __init__(self, length: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.positions = keras.layers.Embedding(length, dim)
        self.supports_masking = True  # the padding mask passes through to the blocks

    def call(self, x):
        return x + self.positions(ops.arange(ops.shape(x)[1]))


class TransformerBlock(keras.layers.Layer):
    """keras.io's TransformerBlock, with the padding mask passed to the attention."""

    def __init__(self, dim: int, num_heads: int, ff_dim: int, rate: float, attention_rate: float, **kwargs):
        super().__init__(**kwargs)
        self.att = keras.layers.MultiHeadAttention(num_heads, dim // num_heads, dropout=attention_rate)
        self.ffn = keras.Sequential([keras.layers.Dense(ff_dim, activation="relu"), keras.layers.Dense(dim)])
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.dropout1, self.dropout2 = keras.layers.Dropout(rate), keras.layers.Dropout(rate)
        self.supports_masking = True

    def call(self, inputs, mask=None, training=None):
        keys = None if mask is None else ops.expand_dims(mask, 1)  # (B, 1, T): skip padded words
        attention = self.dropout1(self.att(inputs, inputs, attention_mask=keys, training=training), training=training)
        x = self.layernorm1(inputs + attention)
        return self.layernorm2(x + self.dropout2(self.ffn(x), training=training))


def make_peer(config) -> tuple[keras.Model, tf.data.Dataset]:
    """The peer for a `train.recipes.transformer_classifier.Config` (learned positions, post-norm)."""

    def encoder(x):
        x = PositionEmbedding(x.shape[1], config.embedding_dim)(x)
        for _ in range(config.num_layers):
            x = TransformerBlock(config.embedding_dim, config.num_heads, config.ff_dim, config.encoder_dropout,
                                 config.attention_dropout)(x)
        return x

    return text_peer(config, encoder, "transformer_classifier")
