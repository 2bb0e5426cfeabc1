"""A text classifier on raw strings with a Transformer encoder in place of the BiLSTM.

TextVectorization -> Embedding -> PositionEmbedding -> N x TransformerEncoder (Vaswani et al.
2017, https://arxiv.org/abs/1706.03762) -> AttentionPooling -> Dense. Everything else (the
vocabulary saved inside the model, training with stateless dropout, `predict_texts`,
`word_attention`, `represent`, the `embed` / `classify_embeddings` split) is `TextClassifier`'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import tensorflow as tf
from keras import ops

from zoo.layers.transformer import POSITIONS, PositionEmbedding, TransformerEncoder
from zoo.models.text_classifier import TextClassifier


@keras.saving.register_keras_serializable(package="zoo")
class TransformerTextClassifier(TextClassifier):
    """Raw strings -> class logits through Transformer encoder blocks and attention pooling.

    The word embeddings (times `sqrt(embedding_dim)` with sinusoidal positions, as in the paper's
    section 3.4, so words and positions have a like scale) get position vectors added and go
    through `num_layers` encoder blocks (a final layer norm after pre-norm blocks); additive
    attention pooling over the real words and a Dense layer classify. While training, dropout
    inside the blocks uses stateless masks from the step's seed (a different mask per step,
    replica, block and use), like the rest of `TextClassifier`.

    Args:
        class_names: the name of each class, in id order (at least 2).
        max_tokens: vocabulary size, padding and out-of-vocabulary included.
        sequence_length: tokens kept per text (longer texts are cut, shorter ones padded).
        embedding_dim: size of the word embeddings and of the encoder's features.
        num_layers: encoder blocks.
        num_heads: attention heads per block (`embedding_dim` must be divisible by it).
        ff_dim: hidden units of each block's feed-forward network.
        position: `"learned"` or `"sinusoidal"` position embeddings.
        norm_first: pre-norm blocks (plus a final layer norm) instead of post-norm.
        encoder_dropout: dropout on each block's attention and feed-forward outputs.
        attention_dropout: dropout on the attention weights inside the blocks.
        **kwargs: `TextClassifier` arguments (`attention_units`, `dropout` on the embeddings and
            the pooled features, `word_dropout`, `label_smoothing`) and base Model arguments.

    Call arguments:
        inputs: `(B,)` strings; returns float32 `(B, classes)` logits.

    Example:
    >>> model = TransformerTextClassifier(["neg", "pos"], max_tokens=1000, num_layers=1)  # doctest: +SKIP
    >>> model.adapt(train_texts); model.compile(keras.optimizers.Adam(1e-3))  # doctest: +SKIP
    >>> model.fit(tf.data.Dataset.from_tensor_slices((texts, ids)).batch(32))  # doctest: +SKIP
    >>> model.predict_texts(["what a great film"])[0]["label"]  # doctest: +SKIP
    'pos'
    """

    def __init__(self, class_names: Sequence[str], max_tokens: int = 20000, sequence_length: int = 64,
                 embedding_dim: int = 64, num_layers: int = 2, num_heads: int = 4, ff_dim: int = 128,
                 position: str = "learned", norm_first: bool = False, encoder_dropout: float = 0.1,
                 attention_dropout: float = 0.0, **kwargs):
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"TransformerTextClassifier num_layers must be a positive integer, got {num_layers}")
        if position not in POSITIONS:
            raise ValueError(f"TransformerTextClassifier position must be one of {', '.join(POSITIONS)}, "
                             f"got {position!r}")
        if embedding_dim % num_heads:
            raise ValueError(f"TransformerTextClassifier embedding_dim {embedding_dim} is not divisible by "
                             f"num_heads {num_heads}")
        kwargs.pop("units", None)  # the LSTM's; no meaning here
        # Read by _make_encoder, which TextClassifier.__init__ calls: set before it.
        self._transformer = {"num_layers": int(num_layers), "num_heads": int(num_heads), "ff_dim": int(ff_dim),
                             "position": position, "norm_first": bool(norm_first),
                             "encoder_dropout": float(encoder_dropout), "attention_dropout": float(attention_dropout)}
        super().__init__(class_names, max_tokens, sequence_length, embedding_dim, **kwargs)
        for name, value in self._transformer.items():
            setattr(self, name, value)

    def _make_encoder(self) -> keras.layers.Layer:
        """Position embedding, the encoder blocks and (pre-norm) a final layer norm, in order."""
        settings = self._transformer
        layers = [PositionEmbedding(self.sequence_length, settings["position"], name="position")]
        layers += [TransformerEncoder(settings["num_heads"], settings["ff_dim"], dropout=settings["encoder_dropout"],
                                      attention_dropout=settings["attention_dropout"],
                                      norm_first=settings["norm_first"], name=f"block_{i}")
                   for i in range(settings["num_layers"])]
        if settings["norm_first"]:
            layers.append(keras.layers.LayerNormalization(epsilon=1e-5, name="final_norm"))
        return keras.Sequential(layers, name="encoder")

    @property
    def encoded_features(self) -> int:
        return self.embedding_dim

    def _encode(self, x, mask, seed=None, return_attention_scores: bool = False):
        """`(B, T, E)` embeddings -> `(B, T, E)`; with a `seed` (training), stateless dropout in
        every block (seed folded with the block's number). With `return_attention_scores`,
        also each block's float32 `(B, heads, T, T)` attention weights."""
        if self._transformer["position"] == "sinusoidal":
            x = x * ops.cast(math.sqrt(self.embedding_dim), x.dtype)
        position, *blocks = self.encoder.layers
        x, scores = position(x), []
        for i, block in enumerate(blocks):
            if not isinstance(block, TransformerEncoder):
                x = block(x)  # the final layer norm of a pre-norm stack
                continue
            block_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, 1000 + i)
            # training=False: dropout comes from the seed only, never Keras' stateful generator.
            x, weights = block(x, mask=mask, seed=block_seed, training=False, return_attention_scores=True)
            scores.append(weights)
        return (x, scores) if return_attention_scores else x

    def attention_scores(self, texts: Sequence[str]) -> list:
        """Each block's self-attention weights of raw texts: a list of float32 NumPy arrays
        `(N, heads, T, T)`, query by key (padded keys get 0)."""
        x, mask = self.embed(tf.constant(list(texts), tf.string))
        return [ops.convert_to_numpy(w) for w in self._encode(x, mask, return_attention_scores=True)[1]]

    def encoder_settings(self) -> dict:
        """What an encoder's weights and vocabulary depend on: the arguments a classifier that
        `start_from`s this model must be made with."""
        return {"max_tokens": self.max_tokens, "sequence_length": self.sequence_length,
                "embedding_dim": self.embedding_dim, "tokens": self.token_split, "bigrams": self.bigrams,
                **{k: self._transformer[k] for k in ("num_layers", "num_heads", "ff_dim", "position", "norm_first")}}

    def start_from(self, pretrained: keras.Model) -> None:
        """Take the vocabulary and the encoder's weights (token and token-pair embeddings, the
        position embedding, every block) of a pre-trained model: a `MaskedTokenModel`
        (`zoo.models.masked_lm`) or another `TransformerTextClassifier`. The attention pooling
        and class layer stay as they are (new). The two must share `encoder_settings`."""
        source = getattr(pretrained, "backbone", pretrained)
        if not isinstance(source, TransformerTextClassifier):
            raise ValueError(f"start_from needs a MaskedTokenModel or TransformerTextClassifier, got "
                             f"{type(pretrained).__name__}")
        ours, theirs = self.encoder_settings(), source.encoder_settings()
        differ = [f"{k}: {ours[k]} here, {theirs[k]} pre-trained" for k in ours if ours[k] != theirs[k]]
        if differ:
            raise ValueError("the pre-trained encoder has other settings (" + "; ".join(differ) +
                             "): make this model with the pre-trained model's encoder_settings()")
        self.lookup.set_vocabulary(source.vocabulary()[2:])  # without padding and [UNK]
        layers = ["embedding", "encoder"]
        if self.bigrams:
            self.bigram_lookup.set_vocabulary([str(t) for t in source.bigram_lookup.get_vocabulary()[2:]])
            layers.append("bigram_embedding")
        for name in layers:
            getattr(self, name).set_weights(getattr(source, name).get_weights())

    def get_config(self):
        config = {**super().get_config(), **self._transformer}
        config.pop("units", None)
        return config
