"""transformer_classifier: a text classifier, Transformer encoder + attention pooling, on raw strings.

Embedding (mask_zero) -> PositionEmbedding -> N x TransformerEncoder (Vaswani et al. 2017,
https://arxiv.org/abs/1706.03762) -> AttentionPooling -> Dense
(zoo.models.TransformerTextClassifier). Data, flags, the 80/20 AG News split, the selection
slice that chooses the saved epoch (never the validation texts) and the callbacks are the
text recipes' (train/recipes/_text.py: `TextConfig`, `build_text_classifier`), as for
lstm_classifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from train.recipes import Recipe
from train.recipes._text import TextConfig, build_text_classifier


@dataclass(frozen=True)
class Config(TextConfig):
    epochs: int = 16  # with adversarial training the selection accuracy still rises after epoch 8 (README)
    steps_per_epoch: int = 85  # 85 x 64 = about one pass over the 5,472 texts fitted (6,080 less the selection slice)
    embedding_dim: int = 64  # word embedding size = the encoder's features (divisible by --num-heads)
    num_layers: int = 1  # Transformer encoder blocks
    num_heads: int = 4  # attention heads per block
    ff_dim: int = 128  # hidden units of each block's feed-forward network
    position: Literal["learned", "sinusoidal"] = "learned"  # a trained table of position vectors, or sinusoids
    norm_first: bool = False  # pre-norm blocks (Xiong et al. 2020) instead of the paper's post-norm
    encoder_dropout: float = 0.1  # dropout on each block's attention and feed-forward outputs (the paper's P_drop)
    attention_dropout: float = 0.1  # dropout on the attention weights inside the blocks
    dropout: float = 0.5  # dropout on embeddings and pooled features
    learning_rate: float = 5e-4  # Adam (1e-3 peaked at epoch 2 and then overfitted on the selection slice)
    adversarial: float = 0.5  # as the LSTM's: with 16 epochs, 0.902 on the selection slice against 0.891 off (README)
    pretrained: str = ""  # a transformer_pretrain run (or its model.keras): start from its encoder and vocabulary (their shape flags are its)

    def validate(self) -> None:
        super().validate()
        for name in ("num_layers", "num_heads", "ff_dim"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        self.require("embedding_dim", self.embedding_dim % self.num_heads == 0,
                     f"a multiple of --num-heads ({self.num_heads})")
        self.require("encoder_dropout", 0 <= self.encoder_dropout < 1, "in [0, 1)")
        self.require("attention_dropout", 0 <= self.attention_dropout < 1, "in [0, 1)")


PRESETS = {
    "default": Config(),
    # A smoke test: adversarial training off (it triples the first call's tracing and graph
    # optimization, about 9 s here; tests that need it pass --adversarial).
    "tiny": Config(epochs=2, steps_per_epoch=3, batch_size=8, log_every=1, checkpoint_every=2, limit=400,
                   adversarial=0.0,
                   max_tokens=500, sequence_length=16, embedding_dim=8, num_heads=2, ff_dim=16, heatmaps=2),
    # The full AG News training set (120,000 texts, Zhang et al. 2015), where prepared.
    "full": Config(data="tfds:ag_news_subset", epochs=10, steps_per_epoch=1875, sequence_length=96,
                   embedding_dim=128, num_layers=2, num_heads=4, ff_dim=256, dropout=0.3, learning_rate=5e-4,
                   checkpoint_every=2000),
}


def load_pretrained(path: str, name: str = "transformer_classifier"):
    """The `MaskedTokenModel` of a transformer_pretrain run folder or `.keras` file; a clear
    error for anything else."""
    from pathlib import Path

    import keras

    from zoo.errors import UserError
    from zoo.models.masked_lm import MaskedTokenModel

    file = Path(path) / "model.keras" if Path(path).is_dir() else Path(path)
    if not file.is_file():
        raise UserError(f"--pretrained {path}: {file} does not exist; pass a finished transformer_pretrain run folder "
                        "(python -m train transformer_pretrain) or its model.keras")
    try:
        model = keras.saving.load_model(file)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise UserError(f"--pretrained {path}: cannot load {file} ({type(error).__name__}: {error})") from None
    if not isinstance(model, MaskedTokenModel):
        raise UserError(f"--pretrained {path}: {file} is a {type(model).__name__}, not a pre-trained encoder; "
                        "pass a transformer_pretrain run")
    print(f"{name}: starting from the encoder and vocabulary of {file}: " + ", ".join(
        f"{k} {v}" for k, v in model.backbone.encoder_settings().items()) + " (the pre-trained run's)")
    return model


def build(config: Config):
    """The Transformer classifier on the configured texts; imports TensorFlow."""
    from zoo.models import TransformerTextClassifier

    pretrained = load_pretrained(config.pretrained) if config.pretrained else None

    def make(names, text):
        shape = pretrained.backbone.encoder_settings() if pretrained is not None else {
            "max_tokens": config.max_tokens, "sequence_length": text["sequence_length"],
            "embedding_dim": config.embedding_dim, "num_layers": config.num_layers, "num_heads": config.num_heads,
            "ff_dim": config.ff_dim, "position": config.position, "norm_first": config.norm_first,
            "tokens": text["tokens"], "bigrams": text["bigrams"]}
        return TransformerTextClassifier(
            names, **shape, encoder_dropout=config.encoder_dropout, attention_dropout=config.attention_dropout,
            dropout=config.dropout, word_dropout=config.word_dropout, label_smoothing=config.label_smoothing,
            adversarial=config.adversarial)

    return build_text_classifier(config, make, "transformer_classifier", pretrained)


RECIPE = Recipe(
    name="transformer_classifier",
    description="text classifier: Transformer encoder + attention pooling on raw strings; AG News 80/20 split",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo predict {model} {example}",  # a validation text of the run (_text.usage_example)
)
