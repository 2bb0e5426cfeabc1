"""The keras.io-style peer of the zoo's lstm_classifier: the same BiLSTM + attention pooling on the
same texts, set up as keras.io's text classifiers are
(https://keras.io/examples/nlp/text_classification_from_scratch/,
https://keras.io/examples/nlp/bidirectional_lstm_imdb/): a `TextVectorization` layer adapted on the
training texts and mapped over the dataset (keras.io's advice for training on a CPU), a functional
model Embedding(mask_zero) -> word dropout -> dropout -> encoder -> attention pooling -> dropout ->
Dense, `compile` with sparse categorical cross-entropy, and `fit`.

The pooling is the zoo's `AttentionPooling` (Keras has no layer that pools time away with a learned
query). The zoo's step also fits adversarially shifted embeddings (`--adversarial`, a second
forward and backward pass); this peer does not, so `train.bench` also times the zoo with
`ZOO_AS_PEER` (adversarial off), which computes what the peer computes.

    python -m train.bench lstm_classifier --preset default --keras-peer

`make_peer(config) -> (compiled model, dataset of batches)` is all the benchmark needs.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from zoo.layers.attention import AttentionPooling

ZOO_AS_PEER = {"adversarial": 0.0}  # the zoo's settings that compute what this peer computes


def text_peer(config, encoder: Callable, name: str) -> tuple[keras.Model, tf.data.Dataset]:
    """A compiled keras.io-style classifier `tokens -> encoder(embeddings) -> logits` and endless
    shuffled batches of `(token ids, label)` of the texts the zoo's recipe fits (its 80/20 split
    less the selection slice), read as the recipe reads them (the same sequence length)."""
    from train.recipes._text import encode, selection_split, text_settings

    (texts, ids), _, names = encode(config, name)
    (texts, ids), _ = selection_split(texts, ids, config.select_fraction)
    length = text_settings(config, texts, name)["sequence_length"]
    vectorize = keras.layers.TextVectorization(config.max_tokens, output_sequence_length=length)
    vectorize.adapt(texts)
    data = (tf.data.Dataset.from_tensor_slices((texts, np.asarray(ids, np.int32)))
            .shuffle(len(texts), seed=config.seed).repeat().batch(config.batch_size, drop_remainder=True)
            .map(lambda x, y: (vectorize(x), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))

    tokens = keras.Input((length,), dtype="int64")
    x = keras.layers.Embedding(config.max_tokens, config.embedding_dim, mask_zero=True)(tokens)
    x = keras.layers.Dropout(config.word_dropout, noise_shape=(None, length, 1))(x)  # whole words
    x = keras.layers.Dropout(config.dropout)(x)
    x = AttentionPooling(name="attention")(encoder(x))
    x = keras.layers.Dropout(config.dropout)(x)
    logits = keras.layers.Dense(len(names), dtype="float32")(x)
    model = keras.Model(tokens, logits)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model, data


def make_peer(config) -> tuple[keras.Model, tf.data.Dataset]:
    """The peer for a `train.recipes.lstm_classifier.Config`."""
    bilstm = keras.layers.Bidirectional(keras.layers.LSTM(config.units, return_sequences=True))
    return text_peer(config, bilstm, "lstm_classifier")
