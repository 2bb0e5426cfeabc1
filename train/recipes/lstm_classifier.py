"""lstm_classifier: a text classifier, bidirectional LSTM + attention pooling, on raw strings.

TextTokenizer (any script) -> Embedding (mask_zero, plus token-pair embeddings) -> BiLSTM ->
AttentionPooling -> Dense (zoo.models.TextClassifier), the vocabulary adapted on the training
texts and saved inside the model.
Data, flags, the 80/20 AG News split and the selection slice that chooses the saved epoch
(never the validation texts) are the text recipes' (train/recipes/_text.py): the default
data is the embedded AG News file (7,600 news items, 4 classes), so every run and the
benchmark (tools/bench_text.py) see the same 6,080 training and 1,520 validation texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from train.recipes import Recipe
from train.recipes._text import TextConfig, build_text_classifier


@dataclass(frozen=True)
class Config(TextConfig):
    sizes: ClassVar[tuple[str, ...]] = ("embedding_dim", "units")  # fields that must be >= 1

    units: int = 64  # LSTM units per direction


PRESETS = {
    "default": Config(),
    # A smoke test: adversarial training off (it triples the first call's tracing and graph
    # optimization, about 9 s here; tests that need it pass --adversarial).
    "tiny": Config(epochs=2, steps_per_epoch=3, batch_size=8, log_every=1, checkpoint_every=2, limit=400,
                   adversarial=0.0,
                   max_tokens=500, sequence_length=16, embedding_dim=8, units=4, heatmaps=2),
    # Zhang et al. 2015's scale: the full AG News training set (120,000 texts), where prepared.
    "full": Config(data="tfds:ag_news_subset", epochs=10, steps_per_epoch=1875, sequence_length=96,
                   embedding_dim=128, units=128, dropout=0.3, learning_rate=1e-3, checkpoint_every=2000),
}


def build(config: Config):
    """The BiLSTM classifier on the configured texts; imports TensorFlow."""
    from zoo.models import TextClassifier

    return build_text_classifier(config, lambda names, text: TextClassifier(
        names, config.max_tokens, text["sequence_length"], config.embedding_dim, config.units,
        dropout=config.dropout, word_dropout=config.word_dropout, label_smoothing=config.label_smoothing,
        adversarial=config.adversarial, tokens=text["tokens"], bigrams=text["bigrams"]))


RECIPE = Recipe(
    name="lstm_classifier",
    description="text classifier: BiLSTM + attention pooling on raw strings; AG News 80/20 split",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo predict {model} {example}",  # a validation text of the run (_text.usage_example)
)
