"""lstm_classifier: a text classifier, bidirectional LSTM + attention pooling, on raw strings.

Embedding (mask_zero) -> BiLSTM -> AttentionPooling -> Dense (zoo.models.TextClassifier), the
TextVectorization vocabulary adapted on the training texts and saved inside the model.
Default data: the embedded AG News file (7,600 news items, 4 classes; title + description),
split 80/20 by class with a fixed seed (`split_texts`), so every run and the benchmark
(tools/bench_text.py) see the same 6,080 training and 1,520 validation texts. Early stopping
never looks at the validation texts: a fixed, stratified `--select-fraction` of the training
texts (608 by default) is held out of fitting (and of the vocabulary) and the saved model is the
epoch with the best accuracy on that selection slice; val_accuracy stays an untouched score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from train.config import TrainConfig
from train.recipes import Recipe

SPLIT_SEED = 0  # the validation split never changes with --seed: runs stay comparable
SELECT_SEED = 1  # the selection slice of the training texts: fixed too


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 8
    steps_per_epoch: int = 85  # 85 x 64 = about one pass over the 5,472 default texts fitted (6,080 less the selection slice)
    batch_size: int = 64
    checkpoint_every: int = 500
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # bf16 is no faster for this LSTM on CPU
    data: str = "assets:text/ag_news/test.csv"  # labelled texts: CSV/TSV (header optional), tfds:ag_news_subset, tfds:imdb_reviews
    val_data: str = ""  # validation file or TFDS split source; "": hold out --val-fraction of --data (TFDS: its test split)
    val_fraction: float = 0.2  # share of each class of --data held out for validation (fixed seed)
    text_column: str = ""  # name or 0-based index; "": a column named text/review/..., else all but the label joined
    label_column: str = ""  # name or 0-based index; "": a column named label/class/..., else column 0
    limit: int = 0  # at most this many texts per source (first ones); 0: all
    max_tokens: int = 10000  # vocabulary size (padding and out-of-vocabulary included)
    sequence_length: int = 64  # tokens read per text (AG News title + description: 99 in 100 have <= 68)
    embedding_dim: int = 64  # word embedding size
    units: int = 64  # LSTM units per direction
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
        self.require("limit", self.limit >= 0, "0 or more")
        self.require("max_tokens", self.max_tokens >= 3, "at least 3")
        for name in ("sequence_length", "embedding_dim", "units"):
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


PRESETS = {
    "default": Config(),
    "tiny": Config(epochs=2, steps_per_epoch=3, batch_size=8, log_every=1, checkpoint_every=2, limit=400,
                   max_tokens=500, sequence_length=16, embedding_dim=8, units=4, heatmaps=2),
    # Zhang et al. 2015's scale: the full AG News training set (120,000 texts), where prepared.
    "full": Config(data="tfds:ag_news_subset", epochs=10, steps_per_epoch=1875, sequence_length=96,
                   embedding_dim=128, units=128, dropout=0.3, learning_rate=1e-3, checkpoint_every=2000),
}


# ----------------------------------------------------------------------------- data

def split_texts(texts: list[str], labels: list[str], fraction: float, seed: int = SPLIT_SEED):
    """A stratified split: `fraction` of each class (rounded, kept >= 1 from classes of 2 or more
    texts) to validation, chosen by a seeded permutation; order inside each part as in the file."""
    import numpy as np

    rng, labels_array, val = np.random.default_rng(seed), np.array(labels), []
    for name in sorted(set(labels)):
        members = np.flatnonzero(labels_array == name)
        count = min(max(round(fraction * len(members)), 1), len(members) - 1)
        val += rng.permutation(members)[:count].tolist()
    chosen = np.zeros(len(texts), bool)
    chosen[val] = True

    def part(keep: bool) -> tuple[list[str], list[str]]:
        rows = [i for i in range(len(texts)) if chosen[i] == keep]
        return [texts[i] for i in rows], [labels[i] for i in rows]

    return part(False), part(True)


def _column(value: str) -> int | str | None:
    return None if value == "" else int(value) if value.strip().lstrip("-").isdigit() else value


def _class_names_beside(path: str, labels: list[str]) -> list[str]:
    """Labels 1..K mapped to the names in a `classes.txt` beside the file (the AG News / DBpedia
    CSV convention of Zhang et al. 2015); other labels unchanged."""
    from zoo.data.assets import resolve_source

    names_file = Path(resolve_source(path)).parent / "classes.txt"
    if not names_file.is_file():
        return labels
    names = [line.strip() for line in names_file.read_text(errors="replace").splitlines() if line.strip()]
    if not all(l.isdigit() and 1 <= int(l) <= len(names) for l in labels):
        return labels
    return [names[int(l) - 1] for l in labels]


def _read_file(path: str, config: Config) -> tuple[list[str], list[str]]:
    from zoo.data.text import read_text_table

    texts, labels = read_text_table(path, _column(config.text_column), _column(config.label_column))
    texts, labels = (texts[:config.limit], labels[:config.limit]) if config.limit else (texts, labels)
    return texts, _class_names_beside(path, labels)


def _read_tfds(source: str, split: str, config: Config) -> tuple[list[str], list[str]]:
    """Texts (a `text` feature, else title + description) and label names of a TFDS split."""
    from zoo.data.sources import tfds_dataset
    from zoo.errors import UserError

    dataset, info = tfds_dataset(source, split)
    features = list(info.features)
    text_keys = [config.text_column] if config.text_column else (
        ["text"] if "text" in features else [k for k in ("title", "description") if k in features])
    label_key = config.label_column or "label"
    missing = [k for k in [*text_keys, label_key] if k not in features] or ([] if text_keys else ["text"])
    if missing:
        raise UserError(f"TFDS dataset {source} has no feature {', '.join(map(repr, missing))}: it has "
                        f"{', '.join(features)}; pass --text-column and --label-column")
    names = getattr(info.features[label_key], "names", None)
    texts, labels = [], []
    for example in (dataset.take(config.limit) if config.limit else dataset).as_numpy_iterator():
        texts.append(" ".join(example[k].decode("utf-8", "replace") for k in text_keys))
        label = example[label_key]
        labels.append(names[int(label)] if names else (label.decode("utf-8", "replace")
                                                       if isinstance(label, bytes) else str(label)))
    return texts, labels


def load_texts(config: Config):
    """`(train texts, train labels), (val texts, val labels)` as strings, from the config's sources."""
    tfds = config.data.startswith("tfds:")
    read = (lambda source, split: _read_tfds(source, split, config)) if tfds else (
        lambda source, split: _read_file(source, config))
    train = read(config.data, "train")
    if config.val_data:
        return train, read(config.val_data, "test")
    if tfds:
        return train, read(config.data, "test")
    return split_texts(*train, config.val_fraction)


def encode(config: Config):
    """Texts and int32 label ids of both parts, and the class names; prints what it dropped."""
    import numpy as np

    from zoo.data.text import encode_labels
    from zoo.errors import UserError

    (train_texts, train_labels), (val_texts, val_labels) = load_texts(config)
    names, train_ids, val_ids = encode_labels(train_labels, val_labels)
    unseen = sorted({l for l, i in zip(val_labels, val_ids) if i < 0})
    if unseen:
        print(f"lstm_classifier: note: {int(np.sum(val_ids < 0))} validation text(s) have labels the "
              f"training data lacks ({', '.join(map(repr, unseen[:5]))}): dropped")
        val_texts = [t for t, i in zip(val_texts, val_ids) if i >= 0]
        val_ids = val_ids[val_ids >= 0]
    if not val_texts:
        raise UserError("no validation texts with a label of the training data: check --val-data and "
                        "the label column")
    replaced = sum("\ufffd" in t for t in train_texts + val_texts)
    if replaced:
        print(f"lstm_classifier: note: {replaced} text(s) hold bytes that are not UTF-8; they were read "
              "with U+FFFD replacement characters")
    return (train_texts, train_ids), (val_texts, val_ids), names


# ----------------------------------------------------------------------------- callbacks

def attention_pictures(texts: list[str], labels, names: list[str]):
    """`model -> ({}, pictures)` for `EpochEvaluation`: attention heat maps of a few texts."""
    from zoo.models.text_classifier import attention_image

    def evaluate(model):
        probabilities, _ = model.predict_proba(texts)
        pictures = {}
        for i, (words, p) in enumerate(zip(model.word_attention(texts), probabilities)):
            title = f"true {names[labels[i]]} | predicted {names[int(p.argmax())]} {p.max():.2f}"
            pictures[f"text_{i}"] = attention_image(words, title)
        return {}, pictures

    return evaluate


def selection_callback(texts: list[str], ids, restore_best: bool, name: str = "lstm_classifier"):
    """A callback scoring the model on the selection slice (held-out *training* texts) after each
    epoch, logged as `select_accuracy`; with `restore_best`, the weights of the epoch with the
    best selection accuracy are put back when training ends (before the trainer saves the
    model). It never sees the validation texts. The trainer sets `run_dir`: the best epoch's
    weights are kept there too (`select_best.npz`), so a run resumed after a crash goes on with
    the same search instead of starting a new one."""
    import keras
    import numpy as np

    class SelectBest(keras.callbacks.Callback):
        best, weights, epoch = -1.0, None, None
        run_dir = None  # set by the trainer

        def __init__(self):
            super().__init__()
            self.texts, self.ids = list(texts), np.asarray(ids)

        @property
        def state_path(self) -> Path | None:
            return Path(self.run_dir) / "select_best.npz" if self.run_dir and restore_best else None

        def on_train_begin(self, logs=None):
            if self.state_path is not None and self.state_path.exists():  # a resumed run
                with np.load(self.state_path) as state:
                    self.best, self.epoch = float(state["best"]), int(state["epoch"])
                    self.weights = [state[f"weight_{i}"] for i in range(int(state["count"]))]

        def on_epoch_end(self, epoch, logs=None):
            accuracy = float(np.mean(self.model.predict_proba(self.texts)[0].argmax(-1) == self.ids))
            if logs is not None:
                logs["select_accuracy"] = accuracy
            if restore_best and accuracy > self.best:
                self.best, self.weights, self.epoch = accuracy, self.model.get_weights(), epoch
                if self.state_path is not None:  # under a temporary name, then renamed: never half-written
                    tmp = self.state_path.with_name(".select_best.tmp.npz")
                    np.savez(tmp, best=self.best, epoch=epoch, count=len(self.weights),
                             **{f"weight_{i}": w for i, w in enumerate(self.weights)})
                    tmp.replace(self.state_path)

        def on_train_end(self, logs=None):
            if self.weights is not None:
                self.model.set_weights(self.weights)
                print(f"\n{name}: saving the weights of epoch {self.epoch + 1} "
                      f"(best select_accuracy {self.best:.4f}, on {len(self.texts)} held-out training texts)")

    return SelectBest()


def selection_split(texts: list[str], ids, fraction: float):
    """`(fit texts, fit ids), (selection texts, selection ids)`: a fixed stratified slice of the
    training texts for choosing the epoch; no slice when `fraction` is 0."""
    import numpy as np

    if fraction == 0:
        return (list(texts), np.asarray(ids)), ([], np.zeros(0, np.int32))
    (fit, fit_ids), (select, select_ids) = split_texts(list(texts), list(ids), fraction, SELECT_SEED)
    return (fit, np.asarray(fit_ids, np.int32)), (select, np.asarray(select_ids, np.int32))


def learning_rate(config: Config):
    """Adam's learning rate: constant, or cosine decay to 0 over the whole run."""
    import keras

    if config.decay == "none":
        return config.learning_rate
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * config.steps_per_epoch)


def build_text_classifier(config: Config, make_model, name: str = "lstm_classifier"):
    """Read and split the texts, make the model (`make_model(class names)`, unadapted), adapt its
    vocabulary, compile it; the data and callbacks every text-classifier recipe shares."""
    import keras
    import tensorflow as tf

    from train.callbacks import ConfusionMatrix, EpochEvaluation
    from train.trainer import Built

    (all_texts, all_ids), (val_texts, val_ids), names = encode(config)
    (train_texts, train_ids), (select_texts, select_ids) = selection_split(all_texts, all_ids, config.select_fraction)
    model = make_model(names)
    model.adapt(train_texts)
    model.compile(keras.optimizers.Adam(learning_rate(config)))
    print(f"{name}: {len(all_texts)} training / {len(val_texts)} validation texts, "
          f"{len(names)} classes ({', '.join(names)}); {len(train_texts)} fitted, {len(select_texts)} held "
          f"out to choose the epoch; vocabulary {len(model.vocabulary())}")
    train_data = (tf.data.Dataset.from_tensor_slices((train_texts, train_ids))
                  .shuffle(len(train_texts), seed=config.seed).repeat()
                  .batch(config.batch_size, drop_remainder=True).prefetch(2))
    val_data = tf.data.Dataset.from_tensor_slices((val_texts, val_ids)).batch(config.batch_size)
    confusion = ConfusionMatrix(lambda m: (val_ids, m.predict_proba(val_texts)[0].argmax(-1)), names)
    shown = list(range(min(config.heatmaps, len(val_texts))))
    heatmaps = EpochEvaluation(attention_pictures([val_texts[i] for i in shown], val_ids[shown], names),
                               prefix="attention", description="words shaded by attention weight")
    callbacks = [confusion, heatmaps] + (
        [selection_callback(select_texts, select_ids, config.restore_best, name)] if select_texts else [])
    return Built(model, train_data, val_data, callbacks)


def build(config: Config):
    """The BiLSTM classifier on the configured texts; imports TensorFlow."""
    from zoo.models import TextClassifier

    return build_text_classifier(config, lambda names: TextClassifier(
        names, config.max_tokens, config.sequence_length, config.embedding_dim, config.units,
        dropout=config.dropout, word_dropout=config.word_dropout, label_smoothing=config.label_smoothing,
        adversarial=config.adversarial))


RECIPE = Recipe(
    name="lstm_classifier",
    description="text classifier: BiLSTM + attention pooling on raw strings; AG News 80/20 split",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage='python -m zoo predict {model} "Oil prices rise as stocks fall"',
)
