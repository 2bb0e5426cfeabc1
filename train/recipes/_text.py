"""What the text-classifier recipes (lstm_classifier, transformer_classifier) share: the config
fields of their data, training and epoch selection (`TextConfig`), and `build_text_classifier`,
which reads and splits the texts, adapts and compiles the model and makes the callbacks.

Default data: the embedded AG News file (7,600 news items, 4 classes; title + description),
split 80/20 by class with a fixed seed (`zoo.data.text.split_texts`), so every run and the
benchmark (tools/bench_text.py) see the same 6,080 training and 1,520 validation texts. Early
stopping never looks at the validation texts: a fixed, stratified `--select-fraction` of the
training texts (608 by default) is held out of fitting (and of the vocabulary) and the saved
model is the epoch with the best accuracy on that selection slice; val_accuracy stays an
untouched score. Not a recipe (the registry skips `_` modules); no TensorFlow at import.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from train.config import TrainConfig

SPLIT_SEED = 0  # the validation split never changes with --seed: runs stay comparable
SELECT_SEED = 1  # the selection slice of the training texts: fixed too
ENCODINGS = "auto or a Python codec name (utf-8, gbk, big5, shift_jis, euc-kr, cp1251, koi8-r, latin-1...)"


def is_encoding(name: str) -> bool:
    """Whether `--encoding` NAME is "auto" or a codec Python knows."""
    try:
        return name == "auto" or bool(codecs.lookup(name))
    except LookupError:
        return False


@dataclass(frozen=True)
class TextConfig(TrainConfig):
    """The fields every text-classifier recipe has; a recipe adds its network's own."""

    sizes: ClassVar[tuple[str, ...]] = ("embedding_dim",)  # fields that must be >= 1

    epochs: int = 8
    steps_per_epoch: int = 85  # 85 x 64 = about one pass over the 5,472 default texts fitted (6,080 less the selection slice)
    batch_size: int = 64
    checkpoint_every: int = 500
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # bf16 is no faster for this LSTM on CPU
    steps_per_call: int = 1  # one step per traced call: a tf.while_loop of these steps ran 10-25% slower (docs/speed.md)
    data: str = "assets:text/ag_news/test.csv"  # labelled texts: CSV/TSV (header optional), tfds:ag_news_subset, tfds:imdb_reviews
    val_data: str = ""  # validation file or TFDS split source; "": hold out --val-fraction of --data (TFDS: its test split)
    val_fraction: float = 0.2  # share of each class of --data held out for validation (fixed seed)
    text_column: str = ""  # name or 0-based index; "": a column named text/review/..., else all but the label joined
    label_column: str = ""  # name or 0-based index; "": a column named label/class/..., else column 0
    encoding: str = "auto"  # of the data files: a Python codec (gbk, big5, shift_jis, cp1251, koi8-r...); auto: UTF-8/16/32 or the code page Excel saves in on a Chinese, Japanese, Korean or Western European Windows, detected
    limit: int = 0  # at most this many texts per source (first ones); 0: all
    labels: int = 0  # learn from only this many labelled training texts (a fixed stratified sample, the selection slice included); 0: all
    max_tokens: int = 10000  # vocabulary size (padding and out-of-vocabulary included)
    tokens: Literal["auto", "chars", "words"] = "auto"  # chars: characters of scripts without spaces (Chinese, Japanese, Thai), words of others; words: split at spaces only; auto: chosen from the training texts
    bigrams: Literal["auto", "on", "off"] = "auto"  # also embed each pair of adjacent tokens; auto: on with chars (character bigrams), off with words
    sequence_length: int = 0  # tokens read per text; 0: auto, 95 in 100 fitted texts whole (a multiple of 8, 64..256; AG News: 64)
    embedding_dim: int = 64  # token embedding size
    dropout: float = 0.5  # dropout on embeddings and pooled features
    word_dropout: float = 0.25  # share of whole words dropped from each training text
    label_smoothing: float = 0.0  # share of the training target spread over all classes
    adversarial: float = 0.5  # adversarial training on the embeddings: shift size in mean word norms; 0: off (2x faster steps)
    learning_rate: float = 2e-3  # Adam
    decay: Literal["none", "cosine"] = "none"  # learning rate schedule over epochs x steps_per_epoch
    select_fraction: float = 0.1  # share of each class of the training texts held out to choose the epoch
    restore_best: bool = True  # save the epoch with the best accuracy on the selection slice (never the validation texts)
    heatmaps: int = 4  # validation texts drawn as attention heat maps per epoch

    def validate(self) -> None:
        super().validate()
        self.require("val_fraction", 0 < self.val_fraction < 1, "between 0 and 1")
        self.require("encoding", is_encoding(self.encoding), ENCODINGS)
        self.require("limit", self.limit >= 0, "0 or more")
        self.require("labels", self.labels == 0 or self.labels >= 2, "0 (all) or at least 2")
        self.require("max_tokens", self.max_tokens >= 3, "at least 3")
        self.require("sequence_length", self.sequence_length >= 0, "0 (auto) or more")
        for name in self.sizes:
            self.require(name, getattr(self, name) >= 1, "at least 1")
        self.require("dropout", 0 <= self.dropout < 1, "in [0, 1)")
        self.require("word_dropout", 0 <= self.word_dropout < 1, "in [0, 1)")
        self.require("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)")
        self.require("adversarial", self.adversarial >= 0, "0 (off) or more")
        self.require("select_fraction", 0 <= self.select_fraction < 1, "in [0, 1)")
        self.require("restore_best", not self.restore_best or self.select_fraction > 0,
                     "false when --select-fraction is 0 (the epoch is chosen on the selection slice)")
        self.require("learning_rate", self.learning_rate > 0, "positive")
        self.require("heatmaps", self.heatmaps >= 0, "0 or more")


# ----------------------------------------------------------------------------- data

def encode(config: TextConfig, name: str = "lstm_classifier"):
    """`(train texts, int32 ids), (validation texts, int32 ids), class names` of the config's
    sources (`zoo.data.text`); notes on what was dropped are printed prefixed by `name`."""
    from zoo.data.text import encode_texts, train_and_validation_texts

    parts = train_and_validation_texts(config.data, config.val_data, config.val_fraction, config.text_column,
                                       config.label_column, config.limit, SPLIT_SEED, config.encoding)
    return encode_texts(*parts, name=name)


LABELS_SEED = 3  # the --labels sample: fixed too


def labelled_sample(texts: list[str], ids, count: int):
    """`(sample texts, ids), (the other texts, ids)`: a fixed stratified sample of exactly
    `count` training texts (each class's share kept: largest remainders, at least one per
    class), for learning from few labels; the other texts are what pre-training may read
    without their labels. Orders as given; `count` 0 or >= all: all texts."""
    import numpy as np

    ids = np.asarray(ids)
    if count == 0 or count >= len(texts):
        return (list(texts), ids), ([], np.zeros(0, np.int32))
    classes, sizes = np.unique(ids, return_counts=True)
    shares = count * sizes / len(texts)
    taken = np.minimum(np.maximum(np.floor(shares).astype(int), 1), sizes)
    for i in np.argsort(-(shares - np.floor(shares)), kind="stable")[:max(count - taken.sum(), 0)]:
        taken[i] = min(taken[i] + 1, sizes[i])
    rng, chosen = np.random.default_rng(LABELS_SEED), np.zeros(len(texts), bool)
    for label, k in zip(classes, taken):
        chosen[rng.permutation(np.flatnonzero(ids == label))[:k]] = True
    pick = lambda keep: ([t for t, c in zip(texts, chosen) if c == keep], ids[chosen == keep])  # noqa: E731
    return pick(True), pick(False)


def selection_split(texts: list[str], ids, fraction: float):
    """`(fit texts, fit ids), (selection texts, selection ids)`: a fixed stratified slice of the
    training texts for choosing the epoch; no slice when `fraction` is 0."""
    import numpy as np

    from zoo.data.text import split_texts

    if fraction == 0:
        return (list(texts), np.asarray(ids)), ([], np.zeros(0, np.int32))
    (fit, fit_ids), (select, select_ids) = split_texts(list(texts), list(ids), fraction, SELECT_SEED)
    return (fit, np.asarray(fit_ids, np.int32)), (select, np.asarray(select_ids, np.int32))


def usage_example(texts: list[str], width: int = 60) -> str | None:
    """A text of the run's own data for the closing usage hint: the first of `texts` with its
    whitespace runs as single spaces, cut to at most `width` terminal columns (a Chinese or
    Japanese character takes two, a combining mark none) at the last space or punctuation of its
    second half when there is one (whole words and clauses in any script), trailing spaces and
    punctuation dropped; None without texts."""
    import unicodedata

    text = next((" ".join(t.split()) for t in texts if t.strip()), None)
    if text is None:
        return None
    columns = 0
    for end, character in enumerate(text):
        columns += 0 if unicodedata.category(character) in ("Mn", "Me") else (
            2 if unicodedata.east_asian_width(character) in "WF" else 1)
        if columns > width:
            break
    else:
        return text
    breaks = [i for i in range(end // 2, end) if unicodedata.category(text[i])[0] in "PZ"]  # punctuation, spaces
    cut = text[:breaks[-1] if breaks else end]
    while len(cut) > 1 and unicodedata.category(cut[-1])[0] in "PZ":
        cut = cut[:-1]
    return cut


# ----------------------------------------------------------------------------- callbacks

def attention_pictures(texts: list[str], labels, names: list[str]):
    """`model -> ({}, pictures)` for `EpochEvaluation`: attention heat maps of a few texts."""
    from zoo.visualize import attention_image

    def evaluate(model):
        probabilities, _ = model.predict_proba(texts)
        pictures = {}
        for i, (words, p) in enumerate(zip(model.word_attention(texts), probabilities)):
            title = f"true {names[labels[i]]} | predicted {names[int(p.argmax())]} {p.max():.2f}"
            pictures[f"text_{i}"] = attention_image(words, title)
        return {}, pictures

    return evaluate


def selection_callback(texts: list[str], ids, restore_best: bool, name: str = "lstm_classifier"):
    """`train.callbacks.SelectBest` scoring the accuracy of `predict_proba` on the selection
    slice (held-out *training* texts, never the validation texts) after each epoch."""
    import numpy as np

    from train.callbacks import SelectBest

    texts, ids = list(texts), np.asarray(ids)

    def accuracy(model) -> float:
        return float(np.mean(model.predict_proba(texts)[0].argmax(-1) == ids))

    return SelectBest(accuracy, restore_best, name, len(texts), "training texts")


def learning_rate(config: TextConfig):
    """Adam's learning rate: constant, or cosine decay to 0 over the whole run."""
    import keras

    if config.decay == "none":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * config.steps_per_epoch)


def text_settings(config: TextConfig, texts: list[str], name: str) -> dict:
    """`{"tokens", "bigrams", "sequence_length"}` for the model: the config's, with each "auto"
    decided from the fitted texts (`zoo.data.tokens`); prints what was chosen and why."""
    from zoo.data.tokens import choose_length, choose_split

    tokens, why = (config.tokens, "--tokens") if config.tokens != "auto" else choose_split(texts)
    bigrams = tokens == "chars" if config.bigrams == "auto" else config.bigrams == "on"
    length, why_length = ((config.sequence_length, "--sequence-length") if config.sequence_length
                          else choose_length(texts, tokens))
    print(f"{name}: tokens {tokens} ({why}); token pairs (bigrams) {'on' if bigrams else 'off'}; "
          f"sequence length {length} ({why_length})")
    return {"tokens": tokens, "bigrams": bigrams, "sequence_length": length}


def adapt(model, texts: list[str], name: str, pretrained=None) -> None:
    """Learn the model's vocabulary (or take a `pretrained` model's vocabulary and encoder:
    `start_from`); print how the texts read, and a warning naming the cause and the fix when
    they read as almost nothing (`zoo.data.tokens.vocabulary_stats`)."""
    import sys
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # printed below, in the run's words
        if pretrained is None:
            stats = model.adapt(texts)
        else:
            model.start_from(pretrained)
            stats = model.reading(texts)
    print(f"{name}: {stats.median_tokens:g} token(s) per text (median), {stats.distinct} distinct; "
          f"vocabulary {len(model.vocabulary())}")
    if stats.problem:
        print(f"{name}: WARNING: {stats.problem}", file=sys.stderr, flush=True)


def build_text_classifier(config: TextConfig, make_model: Callable, name: str = "lstm_classifier",
                          pretrained=None):
    """Read and split the texts, make the model (`make_model(class names, settings)` with the
    `text_settings`, unadapted), adapt its vocabulary (or start it from `pretrained`), compile
    it; the data and callbacks every text-classifier recipe shares."""
    import keras
    import tensorflow as tf

    from train.callbacks import ConfusionMatrix, EpochEvaluation, OneClassAlarm
    from train.trainer import Built

    (all_texts, all_ids), (val_texts, val_ids), names = encode(config, name)
    if config.labels:
        (all_texts, all_ids), (unlabelled, _) = labelled_sample(all_texts, all_ids, config.labels)
        print(f"{name}: --labels {config.labels}: learning from {len(all_texts)} labelled training texts "
              f"(a fixed stratified sample); {len(unlabelled)} others unused")
    (train_texts, train_ids), (select_texts, select_ids) = selection_split(all_texts, all_ids, config.select_fraction)
    print(f"{name}: {len(all_texts)} training / {len(val_texts)} validation texts, "
          f"{len(names)} classes ({', '.join(names)}); {len(train_texts)} fitted, {len(select_texts)} held "
          f"out to choose the epoch")
    model = make_model(names, text_settings(config, train_texts, name) if pretrained is None else {})
    adapt(model, train_texts, name, pretrained)
    model.compile(keras.optimizers.Adam(learning_rate(config)))
    batches = (tf.data.Dataset.from_tensor_slices((train_texts, train_ids))
               .shuffle(len(train_texts), seed=config.seed).repeat().batch(config.batch_size, drop_remainder=True))

    def train_data(start: int) -> tf.data.Dataset:
        """Batches from step `start` on, read as token ids on the input pipeline's threads (the
        steps get no string work; batches skipped on resume are never tokenized)."""
        return (batches.skip(start).map(lambda texts, y: (model.token_ids(texts), y),
                                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(2))

    val_data = tf.data.Dataset.from_tensor_slices((val_texts, val_ids)).batch(config.batch_size)
    predict = lambda m: (val_ids, m.predict_proba(val_texts)[0].argmax(-1))  # noqa: E731
    confusion = ConfusionMatrix(predict, names)
    shown = list(range(min(config.heatmaps, len(val_texts))))
    heatmaps = EpochEvaluation(attention_pictures([val_texts[i] for i in shown], val_ids[shown], names),
                               prefix="attention", description="words shaded by attention weight")
    callbacks = [confusion, heatmaps] + (
        [selection_callback(select_texts, select_ids, config.restore_best, name)] if select_texts else [])
    callbacks.append(OneClassAlarm(predict, names, name))  # after the selection: on the weights saved
    return Built(model, train_data, val_data, callbacks, example=usage_example(val_texts))
