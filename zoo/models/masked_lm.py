"""Masked-token pre-training of the Transformer text encoder on unlabelled texts (Devlin et al. 2019).

BERT's masked language model (https://arxiv.org/abs/1810.04805, section 3.1 and appendix A.1):
15% of each text's tokens are chosen; a chosen token is replaced by `[MASK]` 80% of the time,
by a random vocabulary token 10% of the time and kept 10% of the time; the network predicts
the original token at every chosen position (cross-entropy there only). The prediction head is
BERT's: Dense + GELU, layer norm, then the word-embedding matrix (tied) and a bias.

The encoder being trained is a `TransformerTextClassifier`'s own (`backbone`: tokenizer,
vocabulary, word and token-pair embeddings, position embedding, encoder blocks), so a classifier
starts from it with `TransformerTextClassifier.start_from(model)` (what `python -m train
transformer_classifier --pretrained RUN` does): the vocabulary comes with it. The backbone's own
attention pooling and class layer are not trained here (a classifier makes new ones).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.dropout import rows_uniform, stateless_dropout, step_seed
from zoo.models.transformer_classifier import TransformerTextClassifier

MASK = "[MASK]"  # vocabulary index 2; the tokenizer never makes it (it removes brackets)
MASK_ID = 2
FIRST_WORD = 3  # ids below: padding, out-of-vocabulary, [MASK]
NO_CLASSES = ("pre-training", "no classes")  # the backbone's unused head (a classifier makes its own)
_SELECT, _KIND, _RANDOM = 10, 11, 12  # seed offsets of the three draws


@keras.saving.register_keras_serializable(package="zoo")
class MaskedTokenModel(keras.Model):
    """Pre-trains a Transformer text encoder by predicting masked tokens of unlabelled raw strings.

    Args:
        max_tokens: vocabulary size (padding, out-of-vocabulary and `[MASK]` included).
        sequence_length: tokens read per text.
        embedding_dim: token embedding size = the encoder's features.
        num_layers, num_heads, ff_dim, position, norm_first: the encoder's shape, as in
            `TransformerTextClassifier`.
        encoder_dropout: dropout on each block's attention and feed-forward outputs.
        attention_dropout: dropout on the attention weights.
        dropout: dropout on the token embeddings.
        tokens: `"chars"` or `"words"` (`zoo.layers.TextTokenizer`).
        bigrams: also embed adjacent token pairs (pairs touching a chosen token are hidden).
        mask_rate: share of each text's known tokens chosen for prediction (BERT: 0.15).

    Call arguments:
        inputs: `(B,)` strings; returns float32 `(B, T, embedding_dim)` encoded tokens.

    Example:
    >>> model = MaskedTokenModel(max_tokens=5000, sequence_length=64)  # doctest: +SKIP
    >>> model.adapt(unlabelled_texts); model.compile(keras.optimizers.Adam(5e-4))  # doctest: +SKIP
    >>> model.fit(tf.data.Dataset.from_tensor_slices(unlabelled_texts).batch(64))  # doctest: +SKIP
    >>> classifier.start_from(model)  # doctest: +SKIP
    """

    purpose = ("it is a pre-trained text encoder, not a classifier: start a classifier from it with "
               "`python -m train transformer_classifier --pretrained RUN`")  # what `python -m zoo` says

    def __init__(self, max_tokens: int = 10000, sequence_length: int = 64, embedding_dim: int = 64,
                 num_layers: int = 1, num_heads: int = 4, ff_dim: int = 128, position: str = "learned",
                 norm_first: bool = False, encoder_dropout: float = 0.1, attention_dropout: float = 0.1,
                 dropout: float = 0.1, tokens: str = "chars", bigrams: bool = False, mask_rate: float = 0.15,
                 **kwargs):
        super().__init__(**kwargs)
        if not 0 < mask_rate < 1:
            raise ValueError(f"MaskedTokenModel mask_rate must be in (0, 1), got {mask_rate}")
        if max_tokens < FIRST_WORD + 1:
            raise ValueError(f"MaskedTokenModel max_tokens must be at least {FIRST_WORD + 1}, got {max_tokens}")
        self.mask_rate = float(mask_rate)
        self.backbone = TransformerTextClassifier(
            NO_CLASSES, max_tokens, sequence_length, embedding_dim, num_layers=num_layers, num_heads=num_heads,
            ff_dim=ff_dim, position=position, norm_first=norm_first, encoder_dropout=encoder_dropout,
            attention_dropout=attention_dropout, dropout=dropout, tokens=tokens, bigrams=bigrams, name="backbone")
        self.backbone.pooling.trainable = False  # a classifier makes its own: not trained here
        self.backbone.classifier.trainable = False
        self.transform = keras.layers.Dense(embedding_dim, activation="gelu", name="mlm_transform")
        self.transform_norm = keras.layers.LayerNormalization(epsilon=1e-12, name="mlm_norm")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.build()

    @property
    def predictions(self) -> int:
        """Positions predicted per text (BERT's max_predictions_per_seq): the most a text's
        `mask_rate` share can be."""
        return max(1, math.ceil(self.mask_rate * self.backbone.sequence_length))

    def build(self, input_shape=None):
        features = self.backbone.embedding_dim
        self.transform.build((None, None, features))
        self.transform_norm.build((None, None, features))
        self.output_bias = self.add_weight(shape=(self.backbone.max_tokens,), initializer="zeros",
                                           name="mlm_bias")
        self.built = True

    def adapt(self, texts):
        """Learn the vocabulary from unlabelled texts: `[MASK]`, then the most frequent tokens
        (`TextClassifier.adapt`); returns how the texts read as tokens."""
        stats = self.backbone.adapt(texts)
        words = self.backbone.vocabulary()[2:]  # without padding and [UNK]
        self.backbone.lookup.set_vocabulary([MASK] + words[:self.backbone.max_tokens - FIRST_WORD])
        return stats

    def vocabulary(self) -> list[str]:
        """Index 0 padding, 1 out-of-vocabulary, 2 `[MASK]`, then by frequency."""
        return self.backbone.vocabulary()

    # ------------------------------------------------------------------------- masking

    def choose(self, ids, seed):
        """BERT's masking of `(B, T)` token ids with a 2-int `seed`: `(inputs (B, T) ids with the
        chosen tokens replaced, positions (B, K) int32, targets (B, K) the original ids, weights
        (B, K) float32: 1 where a position is really chosen)`. Each text gets round(mask_rate x
        its known tokens), at least 1, chosen uniformly; of those, 80% become `[MASK]`, 10% a
        random known token, 10% stay. Out-of-vocabulary tokens are never chosen."""
        ids = tf.cast(ids, tf.int64)
        known = ids >= FIRST_WORD
        count = tf.reduce_sum(tf.cast(known, tf.float32), axis=1)  # (B,)
        chosen_count = tf.where(count > 0, tf.maximum(tf.round(self.mask_rate * count), 1.0), 0.0)
        score = tf.where(known, rows_uniform(tf.shape(ids), seed + _SELECT), -1.0)
        _, positions = tf.math.top_k(score, k=self.predictions, sorted=True)  # (B, K)
        rank = tf.range(self.predictions, dtype=tf.float32)[None, :]
        weights = tf.cast(rank < chosen_count[:, None], tf.float32)  # the first round(rate x n) of a random order
        targets = tf.gather(ids, positions, batch_dims=1)  # (B, K)
        kind = rows_uniform(tf.shape(positions), seed + _KIND)
        size = tf.cast(self.backbone.lookup.vocabulary_size(), tf.int64)
        random_ids = rows_uniform(tf.shape(positions), seed + _RANDOM, minval=FIRST_WORD,
                                  maxval=tf.maximum(size, FIRST_WORD + 1), dtype=tf.int64)
        replaced = tf.where(kind < 0.8, tf.constant(MASK_ID, tf.int64), tf.where(kind < 0.9, random_ids, targets))
        replaced = tf.where(weights > 0, replaced, targets)
        rows = tf.broadcast_to(tf.range(tf.shape(ids)[0])[:, None], tf.shape(positions))
        indices = tf.reshape(tf.stack([rows, positions], axis=-1), (-1, 2))
        inputs = tf.tensor_scatter_nd_update(ids, indices, tf.reshape(replaced, (-1,)))
        return inputs, positions, targets, weights

    # ------------------------------------------------------------------------- forward

    def masked_embeddings(self, tokens, inputs, positions, weights):
        """`(B, T, E)` embeddings of token ids `inputs` (the chosen tokens replaced) of `(B, T)`
        string `tokens`; token pairs (bigrams) that touch a chosen position are left out, so a
        pair cannot give the chosen token away."""
        backbone = self.backbone
        x = backbone.embedding(inputs)
        if backbone.bigrams:
            rows = tf.broadcast_to(tf.range(tf.shape(inputs)[0])[:, None], tf.shape(positions))
            chosen = tf.scatter_nd(tf.reshape(tf.stack([rows, positions], -1), (-1, 2)),
                                   tf.reshape(weights, (-1,)), tf.shape(inputs))  # (B, T) 1 = chosen
            following = tf.concat([chosen[:, 1:], tf.zeros_like(chosen[:, :1])], axis=1)
            visible = ops.cast(tf.maximum(chosen, following) == 0, x.dtype)[..., None]
            x = x + backbone._bigram_vectors(backbone._pair_ids(tokens)) * visible
        return x

    def token_logits(self, encoded, positions):
        """float32 `(B, K, max_tokens)` logits of the tokens at `positions` of `(B, T, E)` encoder
        output: BERT's head, the output matrix tied to the word embeddings."""
        picked = tf.gather(encoded, positions, batch_dims=1)  # (B, K, E)
        hidden = self.transform_norm(self.transform(picked))
        embeddings = ops.cast(self.backbone.embedding.embeddings, hidden.dtype)
        logits = ops.einsum("bke,ve->bkv", hidden, embeddings)
        return ops.cast(logits, "float32") + self.output_bias

    def call(self, inputs, training=False):
        """`(B, T, E)` encoded tokens of `(B,)` raw strings (nothing masked)."""
        x, mask = self.backbone.embed(inputs)
        return self.backbone._encode(x, mask)

    def _masked_losses(self, texts, seed, dropout: bool):
        """Per-position `(B, K)` cross-entropy, `(B, K)` correct predictions and weights, the
        masks drawn from `seed` (and, with `dropout`, the dropout masks too)."""
        tokens = self.backbone._tokens(texts)
        inputs, positions, targets, weights = self.choose(self.backbone.lookup(tokens), seed)
        x = self.masked_embeddings(tokens, inputs, positions, weights)
        if dropout:
            x = stateless_dropout(x, self.backbone.dropout, seed)
        encoded = self.backbone._encode(x, ops.not_equal(inputs, 0), seed if dropout else None)
        logits = self.token_logits(encoded, positions)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        correct = ops.cast(ops.equal(ops.argmax(logits, axis=-1), targets), "float32")
        return cross_entropy, correct, weights

    def _update(self, cross_entropy, correct, weights):
        self.loss_tracker.update_state(cross_entropy, sample_weight=weights)
        self.accuracy_tracker.update_state(correct, sample_weight=weights)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def train_step(self, data):
        texts = data[0] if isinstance(data, tuple) else data
        seed = step_seed(self.optimizer.iterations)
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            cross_entropy, correct, weights = self._masked_losses(texts, seed, dropout=True)
            chosen = ops.sum(weights)
            context = tf.distribute.get_replica_context()
            total = chosen if context is None else context.all_reduce("SUM", chosen)
            loss = ops.sum(cross_entropy * weights) / ops.maximum(total, 1.0)  # global mean over chosen tokens
            scaled = self.optimizer.scale_loss(loss)
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        self._update(cross_entropy, correct, weights)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    def test_step(self, data):
        """Masked-token loss and accuracy without dropout; the masks are drawn from a fixed seed,
        so every evaluation of the same texts masks the same tokens."""
        texts = data[0] if isinstance(data, tuple) else data
        self._update(*self._masked_losses(texts, tf.constant([7, 7], tf.int32), dropout=False))
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    def get_config(self):
        backbone = self.backbone
        return {**super().get_config(), "max_tokens": backbone.max_tokens,
                "sequence_length": backbone.sequence_length, "embedding_dim": backbone.embedding_dim,
                **{k: v for k, v in backbone._transformer.items()}, "dropout": backbone.dropout,
                "tokens": backbone.token_split, "bigrams": backbone.bigrams, "mask_rate": self.mask_rate}
