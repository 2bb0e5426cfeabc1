"""dcgan: an image GAN (DCGAN networks) with a non-saturating, hinge or WGAN-GP loss.

Radford et al. 2016 (https://arxiv.org/abs/1511.06434); WGAN-GP: Gulrajani et al. 2017
(https://arxiv.org/abs/1704.00028). Default: MNIST from the embedded idx files; validation
(the discriminator on held-out real images) uses the test split. After every epoch
TensorBoard gets a grid of samples from one fixed noise batch and the Frechet classifier
distance (zoo.evaluation.frechet, not FID) of samples against the training images.

Training images from a folder (or an .npy/.npz array) are kept in memory when they fit the
cache budget, else streamed from disk (`--cache`; `zoo.data.stream`): the same batches either
way. Validation images (at most `--val-limit`) are always read into memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from train.config import TrainConfig
from train.recipes import Recipe

GRID_SEED, FCD_SEED = 1234, 4321  # the fixed noise of the per-epoch grid and FCD samples
# Adam settings by loss when left at 0 / -1: DCGAN (Radford et al.) and WGAN-GP (Gulrajani et al.).
OPTIMIZER_DEFAULTS = {"nonsaturating": (2e-4, 0.5, 0.999), "hinge": (2e-4, 0.5, 0.999),
                      "wgan-gp": (1e-4, 0.0, 0.9)}


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 5
    steps_per_epoch: int = 400
    batch_size: int = 64  # real images per discriminator update (a step takes n_critic such batches)
    log_every: int = 25
    checkpoint_every: int = 500
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # bf16 is no faster at this size
    data: str = "assets:mnist"  # a folder of images (any size/mode), .npy/.npz, an idx file, tfds:NAME or assets:NAME
    val_data: str = ""  # validation images (test split); empty: the test split of --data
    cache: str = "auto"  # decoded images in memory: auto (when within 256 MiB), on, off (stream from disk)
    limit: int = 0  # at most this many training images (0: all)
    val_limit: int = 10000  # held-out images the discriminator scores after every epoch
    image_size: int = 28  # height = width of the generated images: s * 2**k, s in 4..8 (28, 32, 64, ...)
    channels: int = 1  # 1 gray, 3 RGB (the data is converted)
    conditional: bool = False  # class-conditional nets (the data needs labels: idx, TFDS or class subfolders)
    loss: Literal["nonsaturating", "hinge", "wgan-gp"] = "nonsaturating"  # adversarial loss
    n_critic: int = 0  # discriminator updates per generator update; 0: 1, or 5 for wgan-gp
    gp_weight: float = 10.0  # gradient-penalty weight (wgan-gp only; the paper's 10)
    latent_size: int = 100  # size of the noise vector z
    g_width: int = 64  # generator channels of its last hidden feature map (doubled per stage back to the start)
    d_width: int = 64  # discriminator channels of the first convolution (doubled per stage)
    d_norm: Literal["auto", "batch", "layer", "none"] = "auto"  # auto: batch, or layer for wgan-gp
    g_learning_rate: float = 0.0  # Adam; 0: 2e-4 (DCGAN), 1e-4 for wgan-gp
    d_learning_rate: float = 0.0  # Adam; 0: as g_learning_rate's default
    beta_1: float = -1.0  # Adam beta_1 of both; -1: 0.5 (DCGAN), 0.0 for wgan-gp
    beta_2: float = -1.0  # Adam beta_2 of both; -1: 0.999 (DCGAN), 0.9 for wgan-gp
    fcd_samples: int = 2000  # samples scored by the Frechet classifier distance each epoch (0: off)
    fcd_train_images: int = 10000  # training images of the FCD reference statistics
    grid_samples: int = 64  # samples in the per-epoch grid (fixed noise)

    def validate(self) -> None:
        super().validate()
        from train.config import ConfigError

        try:
            _resolution_plan(self.image_size)
        except ValueError as error:
            raise ConfigError(f"--image-size: {error}") from None
        self.require("channels", self.channels in (1, 3), "1 or 3")
        for name in ("latent_size", "g_width", "d_width", "grid_samples", "fcd_train_images", "val_limit"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        for name in ("limit", "n_critic", "g_learning_rate", "d_learning_rate", "gp_weight"):
            self.require(name, getattr(self, name) >= 0, "0 or more")
        for name in ("beta_1", "beta_2"):
            self.require(name, getattr(self, name) == -1 or 0 <= getattr(self, name) < 1, "in [0, 1), or -1")
        self.require("fcd_samples", self.fcd_samples == 0 or self.fcd_samples >= 2, "0 (off) or at least 2")
        self.require("cache", self.cache in ("auto", "on", "off"), "auto, on or off")
        self.require("d_norm", not (self.loss == "wgan-gp" and self.d_norm == "batch"),
                     "layer, none or auto with --loss wgan-gp (batch norm breaks the per-example gradient penalty)")

    def optimizer_settings(self) -> tuple[float, float, float, float]:
        """`(g_learning_rate, d_learning_rate, beta_1, beta_2)` with the loss's defaults filled in."""
        lr, beta_1, beta_2 = OPTIMIZER_DEFAULTS[self.loss]
        return (self.g_learning_rate or lr, self.d_learning_rate or lr,
                beta_1 if self.beta_1 == -1 else self.beta_1, beta_2 if self.beta_2 == -1 else self.beta_2)


def _resolution_plan(image_size: int):
    """The rule of `zoo.models.dcgan_networks.resolution_plan`, repeated here so that flag
    errors answer without importing TensorFlow."""
    start, stages = image_size, 0
    while start % 2 == 0 and start // 2 >= 4:
        start, stages = start // 2, stages + 1
    if stages < 1 or not 4 <= start <= 8:
        raise ValueError(f"{image_size} is not supported: it must be s * 2**k with s in 4..8 and "
                         "k >= 1 (e.g. 28, 32, 48, 64, 128)")
    return start, stages


PRESETS = {
    # A CPU demo: 2,000 steps of batch 64 (about 2 passes over MNIST), float32.
    "default": Config(),
    "tiny": Config(epochs=2, steps_per_epoch=2, batch_size=8, log_every=1, checkpoint_every=2, limit=256, val_limit=16,
                   latent_size=16, g_width=4, d_width=4, fcd_samples=50, fcd_train_images=100, grid_samples=16),
    # The DCGAN paper's scale: batch 128, width 128, Adam 2e-4 / 0.5, ~25 epochs of MNIST.
    "full": Config(epochs=25, steps_per_epoch=470, batch_size=128, g_width=128, d_width=128,
                   precision="auto", fcd_samples=10000, fcd_train_images=60000),
}


def fixed_noise_evaluation(grid_samples: int, scorer=None, reference=None, fcd_samples: int = 0):
    """`model -> (scalars, pictures)` for `EpochEvaluation`: a grid of samples from the same
    noise every epoch and, with a scorer, the FCD of `fcd_samples` samples vs `reference`."""
    from zoo.visualize import image_grid

    def evaluate(model):
        pictures = {"samples": image_grid(model.sample(grid_samples, seed=GRID_SEED))}
        if scorer is None:
            return {}, pictures
        return {"fcd": scorer.distance(model.sample(fcd_samples, seed=FCD_SEED), reference)}, pictures

    return evaluate


def _load(config: Config, source: str, split: str, limit: int | None):
    """uint8 images `(N, S, S, C)` and labels (or None) of a source, in the config's shape."""
    import numpy as np

    from zoo.data import load_images

    size = (config.image_size, config.image_size)
    images, labels, names = load_images(source, split, config.channels, size, (0.0, 255.0), limit)
    return np.round(images).astype(np.uint8), labels, names


def _training_images(config: Config):
    """uint8 training images `(N, S, S, C)`: in memory, or streamed from disk (`--cache`)."""
    from zoo.data.stream import open_images

    size = (config.image_size, config.image_size)
    return open_images(config.data, "train", config.channels, size, None, config.limit or None, config.cache)


def _scaled(images):
    """uint8 images -> float32 in [-1, 1]."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def _training_batches(train, batch: int, seed: int, conditional: bool):
    """`start -> endless shuffled batches of images in [-1, 1] (and labels)` from batch start on."""
    import tensorflow as tf

    batches = train.batches(batch, seed, conditional)
    scale = (lambda x, y: (_scaled(x), y)) if conditional else _scaled
    return lambda start: batches(start).map(scale, num_parallel_calls=tf.data.AUTOTUNE)


def _dataset(images, labels, batch: int, seed: int | None = None):
    """Batches of `(images in [-1, 1], labels)` or images: shuffled and endless when `seed` is set."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(images if labels is None else (images, labels))
    if seed is not None:
        data = data.shuffle(len(images), seed=seed).repeat()
    data = data.batch(batch, drop_remainder=seed is not None)
    data = data.map(_scaled if labels is None else lambda x, y: (_scaled(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def frechet_reference(config: Config, train):
    """`(scorer, training-set statistics)` over the first `fcd_train_images` training images
    (`zoo.data.stream.Images`; streamed ones decoded once, at the classifier's small size), or
    `(None, None)` with a printed note when the FCD is off or the shipped classifier does not
    fit the data's image shape."""
    if not config.fcd_samples:
        return None, None
    from zoo.errors import UserError
    from zoo.evaluation.frechet import FrechetClassifierDistance

    try:
        scorer = FrechetClassifierDistance()
    except UserError as error:
        print(f"dcgan: no Frechet classifier distance ({error})")
        return None, None
    if tuple(train.shape) != scorer.image_shape:
        print(f"dcgan: no Frechet classifier distance: its classifier takes {scorer.image_shape} "
              f"images, this data is {tuple(train.shape)}")
        return None, None
    return scorer, scorer.statistics(train.read(range(min(config.fcd_train_images, len(train)))))


def build(config: Config):
    """The DCGAN, shuffled training batches, held-out validation, the per-epoch evaluation."""
    import keras

    from train.callbacks import EpochEvaluation
    from train.trainer import Built
    from zoo.errors import UserError
    from zoo.models import DCGAN, build_dcgan_discriminator, build_dcgan_generator

    train = _training_images(config)
    labels, names = train.labels, train.names
    if config.conditional and labels is None:
        raise UserError(f"--conditional needs labelled data, and {config.data} has none: use idx files, "
                        "an .npz with labels, tfds:NAME or a folder with one subfolder of images per class")
    classes = (len(names) if names else int(labels.max()) + 1) if config.conditional else 0
    val_source = config.val_data or config.data
    val_images, val_labels, _ = _load(config, val_source, "test", config.val_limit)
    if config.conditional and val_labels is None:
        raise UserError(f"--conditional needs labelled validation data, and {val_source} has none: "
                        "pass --val-data with labels (idx files, .npz with labels, tfds:NAME or class subfolders)")
    norm = ("layer" if config.loss == "wgan-gp" else "batch") if config.d_norm == "auto" else config.d_norm
    generator = build_dcgan_generator(config.latent_size, config.image_size, config.channels, config.g_width,
                                      classes)
    discriminator = build_dcgan_discriminator(config.image_size, config.channels, config.d_width, classes, norm,
                                              logit_bias=config.loss != "wgan-gp")  # a WGAN critic needs no bias
    model = DCGAN(generator, discriminator, config.loss, config.n_critic or None, config.gp_weight, classes, config.seed)
    g_lr, d_lr, beta_1, beta_2 = config.optimizer_settings()
    model.compile(g_optimizer=keras.optimizers.Adam(g_lr, beta_1, beta_2),
                  d_optimizer=keras.optimizers.Adam(d_lr, beta_1, beta_2))
    scorer, reference = frechet_reference(config, train)
    evaluation = EpochEvaluation(fixed_noise_evaluation(config.grid_samples, scorer, reference, config.fcd_samples),
                                 prefix="samples", description="the same noise every epoch")
    batches = _training_batches(train, config.batch_size * model.n_critic, config.seed, config.conditional)
    val = _dataset(val_images, val_labels if config.conditional else None, config.batch_size)
    return Built(model, batches, val, [evaluation])


RECIPE = Recipe(
    name="dcgan",
    description="DCGAN image GAN (non-saturating, hinge or WGAN-GP loss; optional class labels); MNIST",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo sample {model} -n 64 -o grid.png --seed 0",
)
