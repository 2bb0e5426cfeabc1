"""A text classifier on raw strings: TextTokenizer, StringLookup, Embedding, BiLSTM, attention pooling, Dense.

The tokenizer (`zoo.layers.TextTokenizer`: NFKC, lower case, punctuation of every script
removed; characters of scripts without spaces such as Chinese, words of the others) and the
vocabulary adapted on the training texts (`adapt`) are saved inside the `.keras` file, so a
loaded model classifies raw strings in any language. The attention weights say which tokens
the decision rests on (`predict_texts`, `word_attention`).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from itertools import chain

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.data.tokens import VocabularyStats, vocabulary_stats
from zoo.layers.attention import AttentionPooling
from zoo.layers.tokenizer import TextTokenizer
from zoo.layers.dropout import stateless_dropout as _dropout, step_seed
from zoo.models.losses import global_mean

OOV = "[UNK]"  # the out-of-vocabulary token (index 1; index 0 is padding)


@keras.saving.register_keras_serializable(package="zoo")
class TextClassifier(keras.Model):
    """Raw strings -> class logits through a bidirectional LSTM and additive attention pooling.

    Args:
        class_names: the name of each class, in id order (at least 2).
        max_tokens: vocabulary size, padding and out-of-vocabulary included.
        sequence_length: tokens kept per text (longer texts are cut, shorter ones padded).
        embedding_dim: size of the token embeddings.
        units: LSTM units per direction.
        attention_units: size of the attention projection; None: `2 * units`.
        dropout: dropout rate on the embeddings and on the pooled features while training.
        word_dropout: share of whole words (embedding vectors) zeroed while training (Iyyer et
            al. 2015, https://aclanthology.org/P15-1162).
        label_smoothing: share of the target probability spread evenly over all classes in the
            training loss (Szegedy et al. 2016); the logged loss stays the plain cross-entropy.
        adversarial: > 0 adds adversarial training on the word embeddings (Miyato et al. 2017,
            https://arxiv.org/abs/1605.07725): each step also fits the text with its embeddings
            moved along the loss gradient, by `adversarial` times the text's mean word-vector norm
            (of the vectors as the network reads them, after dropout) in all, so the size follows
            the embeddings' scale; about twice the step time.
        tokens: `"chars"` (characters of scripts without spaces, such as Chinese, and words of
            the others) or `"words"` (split at whitespace only, e.g. for pre-segmented text);
            see `zoo.layers.TextTokenizer` and `zoo.data.tokens.choose_split`.
        bigrams: also embed each pair of adjacent tokens (a vocabulary of the `max_tokens - 2`
            most frequent pairs) and add it to the first token's embedding, as Chinese models
            often do with character bigrams; the sequence stays one vector per token.

    Call arguments:
        inputs: `(B,)` strings; returns float32 `(B, classes)` logits.

    Example:
    >>> model = TextClassifier(["neg", "pos"], max_tokens=1000)  # doctest: +SKIP
    >>> model.adapt(train_texts); model.compile(keras.optimizers.Adam(1e-3))  # doctest: +SKIP
    >>> model.fit(tf.data.Dataset.from_tensor_slices((texts, ids)).batch(32))  # doctest: +SKIP
    >>> model.predict_texts(["what a great film"])[0]["label"]  # doctest: +SKIP
    'pos'
    """

    def __init__(self, class_names: Sequence[str], max_tokens: int = 20000, sequence_length: int = 64,
                 embedding_dim: int = 64, units: int = 64, attention_units: int | None = None,
                 dropout: float = 0.3, word_dropout: float = 0.0, label_smoothing: float = 0.0,
                 adversarial: float = 0.0, tokens: str = "chars", bigrams: bool = False, **kwargs):
        super().__init__(**kwargs)
        if len(class_names) < 2:
            raise ValueError(f"TextClassifier needs at least 2 classes, got {list(class_names)}")
        self.class_names = [str(name) for name in class_names]
        self.max_tokens, self.sequence_length = int(max_tokens), int(sequence_length)
        self.embedding_dim, self.units, self.dropout = int(embedding_dim), int(units), float(dropout)
        self.attention_units, self.word_dropout = attention_units, float(word_dropout)
        self.label_smoothing, self.adversarial = float(label_smoothing), float(adversarial)
        self.tokenizer, self.bigrams = TextTokenizer(tokens, name="tokenizer"), bool(bigrams)
        self.lookup = keras.layers.StringLookup(mask_token="", oov_token=OOV, name="vocabulary")
        self.embedding = keras.layers.Embedding(self.max_tokens, self.embedding_dim, mask_zero=True,
                                                name="embedding")
        if self.bigrams:
            self.bigram_lookup = keras.layers.StringLookup(mask_token="", oov_token=OOV, name="bigram_vocabulary")
            self.bigram_embedding = keras.layers.Embedding(self.max_tokens, self.embedding_dim, name="bigram_embedding")
        self.encoder = self._make_encoder()
        self.pooling = AttentionPooling(attention_units, return_attention=True, name="attention")
        self.classifier = keras.layers.Dense(len(self.class_names), name="classifier")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.build()  # weights exist from the start: steps never go through __call__

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    # Subclasses change the sequence encoder through these three (see TransformerTextClassifier).

    def _make_encoder(self) -> keras.layers.Layer:
        """The layer between the embeddings and the attention pooling."""
        return keras.layers.Bidirectional(keras.layers.LSTM(self.units, return_sequences=True), name="encoder")

    @property
    def encoded_features(self) -> int:
        """Features per position the encoder returns."""
        return 2 * self.units

    def _encode(self, x, mask, seed=None):
        """`(B, T, E)` embeddings -> `(B, T, encoded_features)`; `seed` is set while training."""
        return self.encoder(x, mask=mask)

    def build(self, input_shape=None):
        """Build every layer from shapes alone (loading builds before the vocabulary arrives)."""
        length, features = self.sequence_length, self.encoded_features
        self.embedding.build((None, length))
        if self.bigrams:
            self.bigram_embedding.build((None, length))
        self.encoder.build((None, length, self.embedding_dim))
        self.pooling.build((None, length, features))
        self.classifier.build((None, features))
        self.built = True

    # ------------------------------------------------------------------------- text

    @property
    def token_split(self) -> str:
        """How texts are split: "chars" or "words" (`TextTokenizer.split`)."""
        return self.tokenizer.split

    def _all_tokens(self, texts: Sequence[str], batch_size: int = 1024) -> list[list[str]]:
        """Every token of each text (not cut to `sequence_length`), decoded."""
        texts, rows = list(texts), []
        for i in range(0, len(texts), batch_size):
            rows += self.tokenizer(tf.constant(texts[i:i + batch_size], tf.string)).to_list()
        return [[t.decode("utf-8", "replace") for t in row] for row in rows]

    def adapt(self, texts: Sequence[str]) -> VocabularyStats:
        """Learn the vocabulary, the `max_tokens - 2` most frequent tokens of the training texts
        (ties in alphabetical order), and return how the texts read as tokens; a degenerate
        reading (`VocabularyStats.problem`) is also a Python warning."""
        token_lists = self._all_tokens(texts)
        self.lookup.set_vocabulary(self._most_frequent(token_lists))
        if self.bigrams:
            self.bigram_lookup.set_vocabulary(self._most_frequent([_pairs(tokens) for tokens in token_lists]))
        return self.reading(texts, token_lists)

    def reading(self, texts: Sequence[str], token_lists: list[list[str]] | None = None) -> VocabularyStats:
        """How `texts` read as this model's tokens (`zoo.data.tokens.vocabulary_stats`); a
        degenerate reading (`VocabularyStats.problem`) is also a Python warning."""
        stats = vocabulary_stats(self._all_tokens(texts) if token_lists is None else token_lists, self.token_split)
        if stats.problem:
            warnings.warn(stats.problem, stacklevel=3)
        return stats

    def _most_frequent(self, token_lists: list[list[str]]) -> list[str]:
        """The `max_tokens - 2` most frequent tokens, ties in alphabetical order (never empty)."""
        counts = Counter(chain.from_iterable(token_lists))
        return sorted(counts, key=lambda t: (-counts[t], t))[:self.max_tokens - 2] or [OOV.lower()]

    def vocabulary(self) -> list[str]:
        """The vocabulary: index 0 is padding, 1 out-of-vocabulary, then by frequency."""
        return [str(token) for token in self.lookup.get_vocabulary()]

    def tokens(self, texts: Sequence[str]) -> list[list[str]]:
        """The tokens the model reads from each text (at most `sequence_length`): position t of
        the attention weights belongs to token t. Joining a text's tokens with spaces gives a
        text that reads as the same tokens (explainers remove tokens that way)."""
        return [row[:self.sequence_length] for row in self._all_tokens(texts)]

    def _tokens(self, texts):
        """`(B, T)` string tokens of `(B,)` raw strings, "" = padding."""
        tokens = self.tokenizer(texts)[:, :self.sequence_length]  # (B, <= T) ragged
        return tokens.to_tensor(default_value="", shape=[None, self.sequence_length])

    def _pair_ids(self, tokens):
        """`(B, T)` int64 ids of the pairs (token t, token t + 1) of `(B, T)` string tokens; 0
        where t + 1 is padding."""
        following = tf.concat([tokens[:, 1:], tf.fill([tf.shape(tokens)[0], 1], "")], axis=1)  # (B, T)
        pairs = tf.where(following == "", "", tf.strings.join([tokens, following], separator=" "))
        return self.bigram_lookup(pairs)

    def _bigram_vectors(self, pair_ids):
        """`(B, T, E)` embeddings of `(B, T)` pair ids; 0 where there is no pair (id 0)."""
        mask = ops.cast(ops.not_equal(pair_ids, 0), self.bigram_embedding.compute_dtype)
        return self.bigram_embedding(pair_ids) * mask[..., None]

    def token_ids(self, texts) -> dict:
        """What the network reads of `(B,)` raw strings: `{"ids": (B, T) int64}` token ids (0 =
        padding), with `"pairs"`, the token-pair ids, when the model embeds bigrams. The string
        work of a step: recipes map it over their batches in `tf.data`, so it runs on the input
        pipeline's threads, ahead of the steps; `embed` and `train_step` take either form."""
        tokens = self._tokens(tf.convert_to_tensor(texts, tf.string))  # (B, T) strings
        ids = {"ids": self.lookup(tokens)}
        if self.bigrams:
            ids["pairs"] = self._pair_ids(tokens)
        return ids

    # ------------------------------------------------------------------------- forward

    def embed(self, texts):
        """`(embeddings float (B, T, E), mask bool (B, T))` of `(B,)` raw strings (or their
        `token_ids`); padding is masked. With `classify_embeddings` this splits the forward pass
        where explainers (e.g. integrated gradients) attribute to the words."""
        read = texts if isinstance(texts, dict) else self.token_ids(texts)
        ids = read["ids"]  # (B, T) int64, 0 = padding
        x = self.embedding(ids)  # (B, T, E)
        if self.bigrams:
            x = x + self._bigram_vectors(read["pairs"])
        return x, ops.not_equal(ids, 0)

    def classify_embeddings(self, x, mask, seed=None):
        """`(float32 (B, K) logits, float32 (B, T) attention weights)` of `(B, T, E)` embeddings;
        with a `seed` (training), dropout on the pooled features (and inside the encoder)."""
        x = self._encode(x, mask, seed)  # (B, T, F)
        pooled, weights = self.pooling(x, mask=mask)  # (B, F), (B, T)
        if seed is not None:
            pooled = _dropout(pooled, self.dropout, seed + 1)
        return ops.cast(self.classifier(pooled), "float32"), weights

    def _forward(self, texts, seed=None):
        """`(float32 (B, K) logits, float32 (B, T) attention weights)` of `(B,)` strings; with a
        `seed` (training), dropout on whole words, the embeddings and the pooled features."""
        return self.classify_embeddings(*self._embed_dropped(texts, seed), seed)

    def _embed_dropped(self, texts, seed=None):
        """`embed`, then (with a training `seed`) dropout on whole words and on the embeddings."""
        x, mask = self.embed(texts)  # (B, T, E), (B, T)
        if seed is not None:
            x = _dropout(x, self.word_dropout, seed + 2, noise_shape=tf.concat([tf.shape(x)[:2], [1]], 0))
            x = _dropout(x, self.dropout, seed)
        return x, mask

    def _adversarial_shift(self, gradient, x, mask):
        """The fast-gradient perturbation of `(B, T, E)` embeddings: along the per-text gradient,
        of total size `adversarial` x the text's mean word-vector norm; a constant (no gradient)."""
        gradient, x, mask = ops.cast(gradient, "float32"), ops.cast(x, "float32"), ops.cast(mask, "float32")
        words = ops.maximum(ops.sum(mask, axis=1), 1.0)  # (B,)
        word_norm = ops.sum(ops.norm(x, axis=-1) * mask, axis=1) / words  # (B,)
        size = self.adversarial * word_norm / (ops.norm(ops.reshape(gradient, (ops.shape(x)[0], -1)), axis=1) + 1e-12)
        return ops.stop_gradient(gradient * size[:, None, None])

    def call(self, inputs, training=False):
        """Logits of raw strings. Dropout belongs to `train_step` (stateless per-replica seeds),
        so `training` changes nothing here."""
        return self._forward(inputs)[0]

    def _training_loss(self, y, logits):
        """Per-example `(B,)` cross-entropy against targets smoothed by `label_smoothing`."""
        if self.label_smoothing == 0:
            return keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        targets = ops.one_hot(ops.cast(y, "int32"), self.num_classes)  # (B, K)
        return keras.losses.categorical_crossentropy(targets, logits, from_logits=True,
                                                     label_smoothing=self.label_smoothing)

    def _embeddings_loss(self, y, x, mask, seed):
        """(the global-batch mean training loss, logits) of `(B, T, E)` embeddings, with dropout."""
        logits, _ = self.classify_embeddings(x, mask, seed)
        return global_mean(self._training_loss(y, logits)), logits

    def _update(self, y, logits):
        per_example = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)  # (B,)
        self.loss_tracker.update_state(per_example)
        self.accuracy_tracker.update_state(y, logits)
        return per_example

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def train_step(self, data):
        texts, y = data  # (B,) strings or their token_ids
        seed = step_seed(self.optimizer.iterations)
        with tf.GradientTape() as tape:
            x, mask = self._embed_dropped(texts, seed)
            if self.adversarial > 0:
                with tf.GradientTape() as inner:  # d loss / d embeddings, for the shift
                    inner.watch(x)
                    loss, logits = self._embeddings_loss(y, x, mask, seed)
                shifted = x + ops.cast(self._adversarial_shift(inner.gradient(loss, x), x, mask), x.dtype)
                loss += self._embeddings_loss(y, shifted, mask, seed)[0]
            else:
                loss, logits = self._embeddings_loss(y, x, mask, seed)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self._update(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    def test_step(self, data):
        texts, y = data
        logits, _ = self._forward(texts)
        self._update(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    # ------------------------------------------------------------------------- inference

    @tf.function(reduce_retracing=True)
    def _infer(self, texts):
        logits, weights = self._forward(texts)
        return ops.softmax(logits, axis=-1), weights

    def predict_proba(self, texts: Sequence[str], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """`(probabilities (N, K), attention weights (N, T))` of raw texts, as NumPy arrays."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.num_classes), np.float32), np.zeros((0, self.sequence_length), np.float32)
        parts = [self._infer(tf.constant(texts[i:i + batch_size], tf.string))
                 for i in range(0, len(texts), batch_size)]
        return (np.concatenate([p.numpy() for p, _ in parts]), np.concatenate([w.numpy() for _, w in parts]))

    @tf.function(reduce_retracing=True)
    def _pooled(self, texts):
        x, mask = self.embed(texts)
        return self.pooling(self._encode(x, mask), mask=mask)[0]

    def represent(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """The attention-pooled `(N, encoded_features)` float32 vectors the classifier reads:
        the model's learned representation of each text (for embedding plots)."""
        texts = list(texts)
        parts = [self._pooled(tf.constant(texts[i:i + batch_size], tf.string)).numpy()
                 for i in range(0, len(texts), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.encoded_features), np.float32)

    def word_attention(self, texts: Sequence[str]) -> list[list[tuple[str, float]]]:
        """Every word each text is read as, with its attention weight (for heat maps)."""
        _, weights = self.predict_proba(texts)
        return [list(zip(words, map(float, row))) for words, row in zip(self.tokens(texts), weights)]

    def predict_texts(self, texts: Sequence[str], top_words: int = 5) -> list[dict]:
        """Label, `{class: probability}` and the `top_words` words with the most attention (a
        word that occurs several times gets the sum of its weights) for each text."""
        probabilities, weights = self.predict_proba(texts)
        results = []
        for p, words, row in zip(probabilities, self.tokens(texts), weights):
            totals: dict[str, float] = {}
            for word, weight in zip(words, row):
                totals[word] = totals.get(word, 0.0) + float(weight)
            top = sorted(totals.items(), key=lambda item: -item[1])[:top_words]
            results.append({"label": self.class_names[int(np.argmax(p))],
                            "probabilities": {n: float(v) for n, v in zip(self.class_names, p)},
                            "attention": [(w, round(v, 4)) for w, v in top]})
        return results

    def get_config(self):
        return {**super().get_config(), "class_names": self.class_names, "max_tokens": self.max_tokens,
                "sequence_length": self.sequence_length, "embedding_dim": self.embedding_dim,
                "units": self.units, "attention_units": self.attention_units, "dropout": self.dropout,
                "word_dropout": self.word_dropout, "label_smoothing": self.label_smoothing,
                "adversarial": self.adversarial, "tokens": self.token_split,
                "bigrams": self.bigrams}


def _pairs(tokens: list[str]) -> list[str]:
    """Adjacent token pairs, "a b", as `TextClassifier` embeds them with `bigrams`."""
    return [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]
