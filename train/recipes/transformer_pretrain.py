"""transformer_pretrain: masked-token pre-training of the Transformer text encoder on unlabelled texts.

BERT's masked language model (Devlin et al. 2019, https://arxiv.org/abs/1810.04805): 15% of the
tokens of each text are chosen, 80% of them replaced by [MASK], 10% by a random token, 10% kept,
and the encoder learns to predict them (zoo.models.MaskedTokenModel). Any texts, any language:
a plain text file (one text per line), a column of a CSV/TSV file or a TFDS dataset, tokenized
as the text classifiers tokenize (characters of Chinese and other unspaced scripts, words of the
others, chosen from the texts). The saved model.keras holds the vocabulary and the encoder, and

    python -m train transformer_classifier --pretrained RUN_DIR   (or RUN_DIR/model.keras)

starts a classifier from it (the encoder's shape and the vocabulary come from the run).

By default the embedded AG News file is read without its labels, less the texts that
transformer_classifier's 80/20 split validates on (--skip-validation), so a classifier
fine-tuned on the same file is never scored on a text the encoder has read. A fixed share
(--val-fraction) of the pre-training texts is held out to report the masked-token loss and
accuracy after each epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from train.config import TrainConfig
from train.recipes import Recipe
from train.recipes._text import ENCODINGS, is_encoding

SPLIT_SEED = 2  # the held-out share of the pre-training texts; fixed, so runs stay comparable


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 20
    steps_per_epoch: int = 100  # 2,000 steps of 64: about 25 passes over AG News' 5,080 texts outside a 1,000-label sample
    batch_size: int = 64
    checkpoint_every: int = 500
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"
    data: str = "assets:text/ag_news/test.csv"  # unlabelled texts: a text file (one per line), CSV/TSV, tfds:NAME
    text_column: str = ""  # tables: name or 0-based index; "": a column named text/review/..., else all columns
    label_column: str = ""  # only for --skip-validation on a labelled table: its label column ("": found by name)
    encoding: str = "auto"  # of the data file: as transformer_classifier's --encoding
    skip_validation: bool = True  # a labelled table: leave out what transformer_classifier's --val-fraction split validates on
    val_fraction: float = 0.2  # that split's share (transformer_classifier's --val-fraction)
    holdout: float = 0.05  # share of the pre-training texts held out to score masked-token accuracy each epoch
    limit: int = 0  # at most this many texts (the first ones); 0: all
    max_tokens: int = 10000  # vocabulary size (padding, out-of-vocabulary and [MASK] included)
    tokens: Literal["auto", "chars", "words"] = "auto"  # as transformer_classifier's --tokens
    bigrams: Literal["auto", "on", "off"] = "auto"  # as transformer_classifier's --bigrams
    sequence_length: int = 0  # tokens read per text; 0: auto, as transformer_classifier's
    embedding_dim: int = 64  # the encoder's shape: a classifier started from this run gets these
    num_layers: int = 1
    num_heads: int = 4
    ff_dim: int = 128
    position: Literal["learned", "sinusoidal"] = "learned"
    norm_first: bool = False
    encoder_dropout: float = 0.1  # dropout on each block's attention and feed-forward outputs
    attention_dropout: float = 0.1  # dropout on the attention weights
    dropout: float = 0.1  # dropout on the token embeddings (BERT: 0.1)
    mask_rate: float = 0.15  # share of each text's tokens predicted (BERT: 0.15)
    learning_rate: float = 3e-3  # Adam; 1e-3 reached 7.8% masked-token accuracy in 1,000 steps on AG News, 3e-3 14% in 2,000 (docs/text.md)
    decay: Literal["none", "cosine"] = "cosine"  # learning rate schedule over epochs x steps_per_epoch

    def validate(self) -> None:
        super().validate()
        self.require("val_fraction", 0 < self.val_fraction < 1, "between 0 and 1")
        self.require("encoding", is_encoding(self.encoding), ENCODINGS)
        self.require("holdout", 0 <= self.holdout < 1, "in [0, 1)")
        self.require("limit", self.limit >= 0, "0 or more")
        self.require("max_tokens", self.max_tokens >= 4, "at least 4")
        self.require("sequence_length", self.sequence_length >= 0, "0 (auto) or more")
        for name in ("embedding_dim", "num_layers", "num_heads", "ff_dim"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        self.require("embedding_dim", self.embedding_dim % self.num_heads == 0,
                     f"a multiple of --num-heads ({self.num_heads})")
        for name in ("encoder_dropout", "attention_dropout", "dropout"):
            self.require(name, 0 <= getattr(self, name) < 1, "in [0, 1)")
        self.require("mask_rate", 0 < self.mask_rate < 1, "between 0 and 1")
        self.require("learning_rate", self.learning_rate > 0, "positive")


PRESETS = {
    "default": Config(),
    "tiny": Config(epochs=2, steps_per_epoch=3, batch_size=8, log_every=1, checkpoint_every=2, limit=400,
                   max_tokens=500, sequence_length=16, embedding_dim=8, num_heads=2, ff_dim=16),
}


def pretraining_texts(config: Config, name: str = "transformer_pretrain") -> list[str]:
    """The texts to pre-train on: all of `--data`, or with `--skip-validation` on a labelled
    table only those transformer_classifier's split trains on (same fraction and seed)."""
    from train.recipes._text import SPLIT_SEED as CLASSIFIER_SPLIT_SEED
    from zoo.data.text import TABLE_SUFFIXES, load_unlabelled_texts, train_and_validation_texts
    from zoo.errors import UserError

    labelled = config.data.startswith(("tfds:", "assets:")) or config.data.lower().endswith(TABLE_SUFFIXES)
    if config.skip_validation and labelled:
        try:
            (train, _), (validation, _) = train_and_validation_texts(
                config.data, "", config.val_fraction, config.text_column, config.label_column, config.limit,
                CLASSIFIER_SPLIT_SEED, config.encoding)
        except UserError as error:
            print(f"{name}: --data has no labels to split by ({error}); reading all its texts")
        else:
            print(f"{name}: {len(validation)} texts left out: transformer_classifier validates on them "
                  f"(--val-fraction {config.val_fraction}; --skip-validation false reads them too)")
            return train
    return load_unlabelled_texts(config.data, config.text_column, config.limit, config.encoding)


def build(config: Config):
    """The masked-token model on the configured texts; imports TensorFlow."""
    import keras
    import numpy as np
    import tensorflow as tf

    from train.recipes._text import adapt, learning_rate, text_settings
    from train.trainer import Built
    from zoo.models.masked_lm import MaskedTokenModel

    name = "transformer_pretrain"
    texts = pretraining_texts(config, name)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(texts))
    held = round(config.holdout * len(texts)) if len(texts) > 1 else 0
    val_texts = [texts[i] for i in sorted(order[:held])]
    texts = [texts[i] for i in sorted(order[held:])]
    print(f"{name}: {len(texts)} texts to pre-train on, {len(val_texts)} held out to score masked tokens")
    settings = text_settings(config, texts, name)
    model = MaskedTokenModel(config.max_tokens, settings["sequence_length"], config.embedding_dim,
                             num_layers=config.num_layers, num_heads=config.num_heads, ff_dim=config.ff_dim,
                             position=config.position, norm_first=config.norm_first,
                             encoder_dropout=config.encoder_dropout, attention_dropout=config.attention_dropout,
                             dropout=config.dropout, tokens=settings["tokens"], bigrams=settings["bigrams"],
                             mask_rate=config.mask_rate)
    adapt(model, texts, name)
    model.compile(keras.optimizers.Adam(learning_rate(config)))
    train_data = (tf.data.Dataset.from_tensor_slices(texts).shuffle(len(texts), seed=config.seed).repeat()
                  .batch(config.batch_size, drop_remainder=True).prefetch(2))
    val_data = tf.data.Dataset.from_tensor_slices(val_texts).batch(config.batch_size) if val_texts else None
    return Built(model, train_data, val_data, [])


RECIPE = Recipe(
    name="transformer_pretrain",
    description="masked-token pre-training (BERT) of the Transformer text encoder on unlabelled texts, any language",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m train transformer_classifier --pretrained {model}",
)
