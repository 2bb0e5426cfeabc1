"""som: a self-organizing map (Kohonen) trained by the batch-SOM rule.

Default: 20x20 map of 10,000 embedded MNIST digits (flattened, [0, 1]), PCA initialization,
one batch-SOM update per step on the whole sample (Kohonen 2013,
https://doi.org/10.1016/j.neunet.2012.09.018), 10 steps in one epoch: the errors and pictures
of the map come once, at the end (`--epochs 10 --steps-per-epoch 1` draws them after every
update, each time a pass over the samples, the pictures and a checkpoint). `--data` also
takes a CSV/TSV of numeric columns (any table), or any image source (folder, idx file, tfds:NAME).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from train.config import TrainConfig
from train.recipes import Recipe

TABLE_SUFFIXES = (".csv", ".tsv", ".txt")  # --data with these suffixes is a numeric table


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 1
    steps_per_epoch: int = 10  # batch-SOM updates per epoch (errors and pictures after each epoch)
    batch_size: int = 10_000  # samples per batch-SOM update (all of them: Kohonen's batch SOM)
    log_every: int = 1
    checkpoint_every: int = 100
    data: str = "assets:mnist"  # image source (assets:NAME, folder, idx file, tfds:NAME) or a .csv/.tsv numeric table
    val_data: str = "train"  # errors per epoch on: train (the training samples: the usual SOM figures), none, a source
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # SOM distances are float32 anyway (auto would only measure)
    samples: int = 10_000  # use at most this many samples (0: all)
    image_size: tuple[int, int] = (0, 0)  # resize images to HEIGHT WIDTH (0 0: keep; all must share one size)
    channels: int = 1  # image channels (1 gray, 3 RGB)
    grid: tuple[int, int] = (20, 20)  # map rows and columns (--grid 20x20)
    topology: Literal["rectangular", "hexagonal"] = "rectangular"  # 8 or 6 neighbours per unit
    neighbourhood: Literal["gaussian", "bubble"] = "gaussian"  # h(d): exp(-d^2 / 2 sigma^2), or 1 if d <= sigma
    sigma_start: float = 10.0  # neighbourhood radius at the first step (grid units)
    sigma_end: float = 2.0  # radius at the last step (exponential decay in between)
    learning_rate_start: float = 1.0  # update rate at the first step (1: move to the neighbourhood mean)
    learning_rate_end: float = 1.0  # update rate at the last step (< 1 for mini-batches, e.g. 0.05)
    init: Literal["pca", "random"] = "pca"  # prototypes from the first two principal components, or random samples

    def validate(self) -> None:
        super().validate()
        self.require("grid", min(self.grid) >= 1, "two positive numbers, rows and columns (e.g. 20x20)")
        self.require("grid", self.grid[0] * self.grid[1] >= 2, "at least 2 units")
        self.require("samples", self.samples >= 0, "0 (all) or more")
        self.require("image_size", min(self.image_size) >= 1 or self.image_size == (0, 0),
                     "two positive numbers, or 0 0 to keep the images' size")
        self.require("channels", self.channels in (1, 2, 3, 4), "1, 2, 3 or 4")
        for name in ("sigma_start", "sigma_end", "learning_rate_start", "learning_rate_end"):
            self.require(name, getattr(self, name) > 0, "positive")
        for name in ("learning_rate_start", "learning_rate_end"):
            self.require(name, getattr(self, name) <= 1, "at most 1")


PRESETS = {
    # MiniSom's comparison setting (tools/bench_som.py): 20x20, MNIST train[:10000], PCA init.
    "default": Config(),
    "tiny": Config(epochs=2, steps_per_epoch=2, batch_size=64, samples=256, grid=(4, 5), sigma_start=2.0,
                   sigma_end=0.8, learning_rate_end=0.5, checkpoint_every=2),
    # All 60,000 training digits on a 40x40 map, mini-batches of 10,000.
    "full": Config(epochs=30, steps_per_epoch=6, grid=(40, 40), samples=0, sigma_start=20.0, sigma_end=2.0,
                   learning_rate_end=0.2),
}


def load_samples(config: Config, source: str, split: str):
    """`(x (N, D) float32, labels (N,) or None, class names or None, image shape or None)`."""
    from zoo.data import load_images, read_numeric_table
    from zoo.errors import UserError

    limit = config.samples or None
    if source.lower().endswith(TABLE_SUFFIXES):
        x, _ = read_numeric_table(source)
        return x[:limit], None, None, None
    size = None if config.image_size == (0, 0) else config.image_size
    images, labels, names = load_images(source, split, config.channels, size, limit=limit)
    if len(images) == 0:
        raise UserError(f"--data {source} holds no images")
    x = images.reshape(len(images), -1)
    if labels is not None and names is None:
        names = [str(i) for i in range(int(labels.max()) + 1)]
    return x, labels, names, tuple(images.shape[1:])


def som_evaluation(x, labels, errors: bool = False):
    """`model -> (scalars, pictures)` for `EpochEvaluation`, from one pass over the training
    samples `x` (`SOM.survey`): labels the units (majority label of the samples they win),
    draws the U-matrix, the prototypes and the hit map and, with `errors`, returns the map's
    quantization and topographic error on `x` (logged as `epoch/val_*`, as `--val-data train`
    promises: the same values a `test_step` pass gives, without a second pass and its tracing)."""
    from zoo.models.som import hit_map_picture, prototypes_picture, u_matrix_picture

    def evaluate(model):
        survey = model.survey(x, labels)
        pictures = {"u_matrix": u_matrix_picture(model), "prototypes": prototypes_picture(model),
                    "hit_map": hit_map_picture(model, survey["hits"])}
        scalars = {name: survey[name] for name in ("quantization_error", "topographic_error")} if errors else {}
        return scalars, pictures

    return evaluate


def projector_embedding(model):
    """The prototypes for TensorBoard's projector, named `row,col label`, with image sprites."""
    import numpy as np
    from keras import ops

    from zoo.visualize import to_uint8_image

    vectors = ops.convert_to_numpy(model.som.prototypes)
    ids = model.unit_labels()
    names = [f"{i // model.cols},{i % model.cols}"
             + ("" if ids is None or ids[i] < 0 else f" {model.class_names[ids[i]]}") for i in range(len(vectors))]
    images = None
    if model.image_shape is not None:
        images = np.stack([to_uint8_image(np.clip(v.reshape(model.image_shape), 0, 1)) for v in vectors])
    return vectors, names, images


def _validation_samples(config: Config, x, train_split_source: str):
    """The samples of `--val-data SOURCE` for `test_step`; None for "none" and for "train",
    whose errors the evaluation callback measures (`som_evaluation`)."""
    from zoo.errors import UserError

    if config.val_data in ("none", "train"):
        return None
    val = load_samples(config, config.val_data, "test")[0]
    if val.shape[1] != x.shape[1]:
        raise UserError(f"--val-data {config.val_data} has {val.shape[1]} values per sample, the training "
                        f"data {train_split_source} {x.shape[1]}: they must match")
    return val


def build(config: Config):
    """The SOM initialised from the data, its batches, validation data and picture callbacks."""
    import tensorflow as tf

    from train.callbacks import EmbeddingProjector, EpochEvaluation
    from train.trainer import Built
    from zoo.data.memory import shared_tensor
    from zoo.errors import UserError
    from zoo.models import SOM

    x, labels, names, image_shape = load_samples(config, config.data, "train")
    if config.batch_size > len(x):
        raise UserError(f"--batch-size {config.batch_size} is more than the {len(x)} samples of {config.data}: "
                        f"use --batch-size {len(x)} or less")
    if config.init == "pca" and (x.shape[1] < 2 or len(x) < 2):
        raise UserError(f"--init pca needs at least 2 samples of 2 or more values; {config.data} has {x.shape}: "
                        "use --init random")
    model = SOM(*config.grid, config.topology, config.neighbourhood, config.sigma_start, config.sigma_end,
                config.learning_rate_start, config.learning_rate_end, decay_steps=config.total_steps,
                class_names=names, image_shape=image_shape)
    model.initialize(x, config.init, config.seed)
    model.compile()
    if config.batch_size == len(x):
        # Every batch is all samples, and a batch-SOM step does not depend on their order: no
        # shuffle. The samples' own memory (`shared_tensor`; x is only read from here on),
        # repeated: nothing to optimize, and the default rewrites would copy the data into the
        # pipeline's graph (0.02 s for MNIST 10k at the iterator's start).
        train_data = tf.data.Dataset.from_tensors(shared_tensor(x)).repeat()
        options = tf.data.Options()
        options.experimental_optimization.apply_default_optimizations = False
        train_data = train_data.with_options(options)
    else:
        train_data = (tf.data.Dataset.from_tensor_slices(x).shuffle(len(x), seed=config.seed).repeat()
                      .batch(config.batch_size, drop_remainder=True).prefetch(1))
    val = _validation_samples(config, x, config.data)
    val_data = None if val is None else tf.data.Dataset.from_tensor_slices(val).batch(config.batch_size)
    callbacks = [EpochEvaluation(som_evaluation(x, labels, errors=config.val_data == "train"), prefix="som",
                                 description="U-matrix (light = cluster border); hit map coloured by "
                                             "majority label (Tableau 10 order), paler = fewer samples"),
                 EmbeddingProjector(projector_embedding)]
    return Built(model, train_data, val_data, callbacks)


RECIPE = Recipe(
    name="som",
    description="self-organizing map (batch SOM), 20x20 on 10k MNIST digits; --data also takes a numeric CSV",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo predict {model} --file samples.npy  (rows of values -> grid positions)",
)
