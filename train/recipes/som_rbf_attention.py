"""som_rbf_attention: a hybrid image classifier; a SOM of image rows, RBF units, attention over rows.

Each image is read as a sequence of its rows (28 rows of 28 pixels for MNIST).
1. SOM: Kohonen's batch map on every row of the training images (PCA start, `--som-steps`
   updates with learning rate 1, radius `--som-sigma` -> 1), before any gradient step; then one
   small batch-SOM update per training step on the batch's rows (`--som-rate`, decaying 10x),
   summed over replicas. Never trained by gradients.
2. RBF: centres by k-means on the rows' SOM similarities plus their height, widths from the
   centre spacing (`zoo.layers.RBF.adapt`); then trained by gradients.
3. Attention pooling over the rows (`--heads` poolings side by side, each with its own query),
   a ReLU layer and a Dense softmax classifier: trained by gradients (Adam, cosine decay).
Settings (similarity and RBF widths, position weight, heads, learning rate) were chosen on 5,000
training images outside the 1,000-image sample, never on the test split
(`tools/bench_hybrid.py --holdout 5000`, docs/som_rbf_attention.md).
`--train-images 1000` (default) trains on a fixed stratified sample of the training split (the
same number of images per class, chosen with seed 0 whatever `--seed`); 0 trains on all of it.
Validation: the test split (scores and pictures only; nothing is chosen on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from train.config import TrainConfig
from train.recipes import Recipe

SAMPLE_SEED = 0  # the training sample never changes with --seed: runs stay comparable


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 30
    steps_per_epoch: int = 31  # 31 x 32 = about one pass over the 1,000 default training images
    batch_size: int = 32
    log_every: int = 10
    checkpoint_every: int = 500
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # SOM and RBF distances are float32 anyway
    data: str = "assets:mnist"  # labelled images with train/test splits: assets:mnist, MNIST idx folder, tfds:NAME, class folders
    channels: int = 1  # image channels (1 gray, 3 RGB)
    train_images: int = 1000  # a fixed stratified sample of this many training images (seed 0); 0: all of them
    val_images: int = 0  # score on the first this many test images after each epoch (0: all)
    som_grid: tuple[int, int] = (8, 8)  # rows and columns of the map of image rows (--som-grid 8x8)
    som_steps: int = 10  # batch-map updates on all training rows before gradient training
    som_sigma: float = 4.0  # neighbourhood radius of the first of them (grid units; decays to 1)
    som_rate: float = 0.05  # rate of the batch-SOM update in each training step (decays to a tenth; 0: map fixed)
    similarity_scale: float = 2.0  # row similarity exp(-d^2 / 2 s^2), s = this x the rows' mean distance to their best unit
    position_weight: float = 10.0  # scale of the row-height feature next to the similarities (0: no position)
    context_rows: int = 0  # neighbouring rows on each side whose similarities join a row's features
    similarity: Literal["gaussian", "softmax"] = "gaussian"  # row similarities per unit, or normalised over units
    rbf_units: int = 256  # RBF centres, placed by k-means on the row features
    rbf_width_scale: float = 1.0  # factor on the RBF widths from the centre spacing (Moody & Darken, 2 neighbours)
    attention_units: int = 32  # size of the attention projection
    heads: int = 8  # attention poolings side by side (each its own query); row weights shown are their mean
    hidden_units: int = 128  # ReLU layer between the pooled features and the softmax (0: none)
    dropout: float = 0.2  # dropout on the pooled features and the hidden layer while training
    learning_rate: float = 0.01  # Adam, cosine decay to 0 over the run
    heatmaps: int = 4  # test images drawn with their rows shaded by attention, per epoch

    def validate(self) -> None:
        super().validate()
        self.require("channels", self.channels in (1, 2, 3, 4), "1, 2, 3 or 4")
        for name in ("train_images", "val_images", "som_steps", "heatmaps", "hidden_units"):
            self.require(name, getattr(self, name) >= 0, "0 or more")
        self.require("som_grid", min(self.som_grid) >= 1 and self.som_grid[0] * self.som_grid[1] >= 2,
                     "two positive numbers with at least 2 units (e.g. 8x8)")
        for name in ("som_sigma", "similarity_scale", "rbf_width_scale", "learning_rate"):
            self.require(name, getattr(self, name) > 0, "positive")
        self.require("som_rate", 0 <= self.som_rate <= 1, "in [0, 1]")
        self.require("position_weight", self.position_weight >= 0, "0 or more")
        self.require("rbf_units", self.rbf_units >= 1, "at least 1")
        self.require("attention_units", self.attention_units >= 1, "at least 1")
        self.require("heads", self.heads >= 1, "at least 1")
        self.require("context_rows", 0 <= self.context_rows <= 13, "in 0..13")
        self.require("dropout", 0 <= self.dropout < 1, "in [0, 1)")


PRESETS = {
    "default": Config(),
    "tiny": Config(epochs=2, steps_per_epoch=3, batch_size=8, log_every=1, checkpoint_every=2, train_images=40,
                   val_images=32, som_grid=(3, 3), som_steps=2, rbf_units=8, attention_units=4, hidden_units=8,
                   heads=2, heatmaps=2),
    # All 60,000 training images: 469 x 128 = one pass per epoch. Not tuned; 4 heads (as measured
    # before the 1,000-image default moved to 8).
    "full": Config(epochs=10, steps_per_epoch=469, batch_size=128, train_images=0, checkpoint_every=2000,
                   learning_rate=0.005, heads=4),
}


# ----------------------------------------------------------------------------- data

def stratified_sample(labels, count: int, seed: int = SAMPLE_SEED):
    """Sorted indices of `count` examples with the classes as equal as they can be: `count // K`
    of each class (fewer where a class has fewer), the rest drawn from the unused examples, all
    by a seeded permutation; every index when `count` is 0 or at least the number of examples."""
    import numpy as np

    labels = np.asarray(labels)
    if count == 0 or count >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    chosen = [rng.permutation(np.flatnonzero(labels == k))[:count // len(classes)] for k in classes]
    chosen = np.concatenate(chosen)
    rest = rng.permutation(np.setdiff1d(np.arange(len(labels)), chosen))[:count - len(chosen)]
    return np.sort(np.concatenate([chosen, rest]))


def load_split(config: Config, split: str, limit: int | None = None):
    """`(images float32 (N, H, W, C) in [0, 1], labels int32 (N,), class names)` of a split."""
    from zoo.data import load_images
    from zoo.errors import UserError

    images, labels, names = load_images(config.data, split, config.channels, limit=limit)
    if labels is None:
        raise UserError(f"--data {config.data} has no labels: pass labelled images (MNIST idx files with "
                        "their labels, class subfolders, or tfds:NAME)")
    if names is None:
        names = [str(i) for i in range(int(labels.max()) + 1)]
    return images, labels.astype("int32"), names


def training_images(config: Config):
    """The training sample (`--train-images`), its labels, the class names and the number of
    training images the sample was drawn from."""
    images, labels, names = load_split(config, "train")
    chosen = stratified_sample(labels, config.train_images)
    return images[chosen], labels[chosen], names, len(images)


# ----------------------------------------------------------------------------- model and callbacks

def make_model(config: Config, names: list[str], image_shape: tuple, images):
    """The classifier with its map trained on the rows of `images` and its RBF centres placed;
    prints the map's errors. Compiled with Adam (cosine decay over the run)."""
    import keras

    from zoo.models import SomRbfAttentionClassifier

    model = SomRbfAttentionClassifier(
        names, image_shape, config.som_grid, config.rbf_units, config.attention_units,
        position_weight=config.position_weight, similarity_scale=config.similarity_scale,
        hidden_units=config.hidden_units, heads=config.heads, dropout=config.dropout,
        context_rows=config.context_rows, similarity=config.similarity,
        som_sigma_start=1.0, som_sigma_end=0.5,  # in-step updates: the map only fine-tunes
        som_learning_rate_start=config.som_rate, som_learning_rate_end=config.som_rate / 10,
        decay_steps=config.total_steps)
    errors = model.fit_som(images, config.som_steps, config.som_sigma, 1.0, "pca", config.seed)
    model.adapt_rbf(images, width_scale=config.rbf_width_scale, seed=config.seed)
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(config.learning_rate,
                                                                               config.total_steps)))
    print(f"som_rbf_attention: map of {len(images) * image_shape[0]} rows: quantization error "
          f"{errors['quantization_error']:.3f}, topographic error {errors['topographic_error']:.3f}")
    return model


def pictures(images, labels, names: list[str]):
    """`model -> ({}, pictures)` for `EpochEvaluation`: the SOM's map of rows and a few images
    with their rows shaded by attention."""
    from zoo.visualize import row_attention_image

    def evaluate(model):
        pictures = {"som_map": model.som_picture()}
        if len(images):
            _, weights = model.predict_proba(images)
            for i, (image, w) in enumerate(zip(images, weights)):
                pictures[f"rows_{i}_true_{names[labels[i]]}"] = row_attention_image(image, w)
        return {}, pictures

    return evaluate


def build(config: Config):
    """The classifier (map trained, RBF placed), its batches, test batches and picture callbacks."""
    import tensorflow as tf

    from train.callbacks import ConfusionMatrix, EpochEvaluation
    from train.trainer import Built
    from zoo.errors import UserError

    x, y, names, available = training_images(config)
    if config.batch_size > len(x):
        raise UserError(f"--batch-size {config.batch_size} is more than the {len(x)} training images: "
                        f"use --batch-size {len(x)} or less, or more --train-images")
    val_x, val_y, _ = load_split(config, "test", config.val_images or None)
    if val_x.shape[1:] != x.shape[1:]:
        raise UserError(f"--data {config.data}: test images are {val_x.shape[1:3]}, training images "
                        f"{x.shape[1:3]}: they must match")
    model = make_model(config, names, tuple(x.shape[1:]), x)
    sample = "all" if len(x) == available else f"a stratified sample of {available}, seed {SAMPLE_SEED}"
    print(f"som_rbf_attention: {len(x)} training images ({sample}), "
          f"{len(val_x)} test images, {len(names)} classes")
    train_data = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed).repeat()
                  .batch(config.batch_size, drop_remainder=True).prefetch(2))
    val_data = tf.data.Dataset.from_tensor_slices((val_x, val_y)).batch(256)
    shown = min(config.heatmaps, len(val_x))
    callbacks = [ConfusionMatrix(lambda m: (val_y, m.predict_proba(val_x)[0].argmax(-1)), names),
                 EpochEvaluation(pictures(val_x[:shown], val_y[:shown], names), prefix="som_rbf_attention",
                                 description="som_map: each map unit's prototype row in its grid place; "
                                             "rows_*: test images, rows shaded red by attention weight")]
    return Built(model, train_data, val_data, callbacks)


RECIPE = Recipe(
    name="som_rbf_attention",
    description="hybrid image classifier: SOM of image rows, RBF units, attention over rows; 1,000 MNIST digits",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo predict {model} digit.png  (28x28 gray, white digit on black, as MNIST)",
)
