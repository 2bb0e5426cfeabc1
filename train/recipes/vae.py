"""vae: a convolutional variational autoencoder (optionally beta-VAE, class-conditional).

Kingma & Welling 2014 (https://arxiv.org/abs/1312.6114); the model is zoo.models.VAE. Default:
the embedded MNIST, trained on its 60k training images with dynamic binarization (a fresh
Bernoulli(pixel) sample every step) and validated on its 10k test images, binarized once by
sampling with a fixed seed (the IWAE convention, Burda et al. 2016). Score a run with
`python -m zoo eval RUN_DIR` (test ELBO and importance-weighted NLL in nats).

Training images from a folder (or an .npy/.npz array) are kept in memory when they fit the
cache budget, else streamed from disk (`--cache`; `zoo.data.stream`): the same batches either
way. Validation images (at most `--val-limit`) are always read into memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from train.config import TrainConfig
from train.recipes import Recipe

VAL_BINARIZATION_SEED = 0  # held-out images are binarized once with this seed, as `zoo eval` does by default
OUTPUT_BIAS_SAMPLE = 1000  # streamed training images whose mean pixel sets the decoder's initial output


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 4  # about 4.5 min on a 2-core AMX Intel in float32, about 8 without AMX (README)
    steps_per_epoch: int = 938  # one pass over MNIST's 60k training images at batch 64
    batch_size: int = 64
    checkpoint_every: int = 1000
    log_every: int = 50
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # likelihoods in float32 (bf16 is faster on AMX CPUs)
    data: str = "assets:mnist"  # training images (train split): folder, .npy/.npz, idx file(s), tfds:NAME, assets:NAME
    val_data: str = ""  # validation images (test split); empty: the test split of --data
    cache: str = "auto"  # decoded images in memory: auto (when within 256 MiB), on, off (stream from disk)
    limit: int = 0  # use at most this many training images (0: all)
    val_limit: int = 10000  # validation images scored by test_step after every epoch
    image_size: int = 28  # images are resized to image_size x image_size (a multiple of 4)
    channels: int = 1  # 1 gray, 3 RGB (images are converted)
    latent_size: int = 32  # dimensions of z (2 adds the manifold and latent scatter pictures)
    beta: float = 1.0  # weight of the KL term (beta-VAE, Higgins et al. 2017); 1: the ELBO
    likelihood: Literal["bernoulli", "gaussian_fixed", "gaussian_learned"] = "bernoulli"  # p(x|z); bernoulli: binarized data
    gaussian_scale: float = 0.1  # standard deviation of the gaussian_fixed likelihood
    width: int = 16  # decoder channels at full resolution (x2 at /2 and /4)
    depth: int = 2  # decoder residual blocks at each of the two lower resolutions
    encoder_width: int = 8  # encoder channels at full resolution; 0: --width (the decoder matters more)
    encoder_depth: int = 1  # encoder residual blocks per lower resolution; -1: --depth
    conditional: bool = False  # class-conditional (needs labelled data): `zoo sample --label 7`
    learning_rate: float = 2e-3  # Adam peak; cosine decay to a hundredth of it after a linear warmup
    warmup_steps: int = 200  # linear learning-rate warmup
    projector_images: int = 1000  # validation images in the embedding projector (with sprites)

    def validate(self) -> None:
        super().validate()
        self.require("latent_size", self.latent_size >= 1, "at least 1")
        self.require("image_size", self.image_size >= 4 and self.image_size % 4 == 0, "a multiple of 4")
        self.require("channels", self.channels in (1, 3), "1 or 3")
        for name in ("width", "val_limit", "projector_images"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        for name in ("depth", "limit", "warmup_steps", "encoder_width"):
            self.require(name, getattr(self, name) >= 0, "0 or more")
        self.require("encoder_depth", self.encoder_depth >= -1, "-1 (--depth) or more")
        self.require("cache", self.cache in ("auto", "on", "off"), "auto, on or off")
        for name in ("beta", "learning_rate", "gaussian_scale"):
            self.require(name, getattr(self, name) > 0, "positive")


PRESETS = {
    "default": Config(),
    "tiny": Config(epochs=2, steps_per_epoch=3, batch_size=8, limit=64, val_limit=16, latent_size=2, width=4,
                   depth=1, encoder_width=4, log_every=1, checkpoint_every=2, warmup_steps=0,
                   projector_images=16),
    # The longer run for the published single-layer VAE (~86.8 nats IW-NLL): the default network
    # trained 30 epochs instead of 4 (about half an hour on 2 cores; measured in the README).
    "full": Config(epochs=30, checkpoint_every=2000),
}


def _load(config: Config, source: str, split: str, limit: int):
    from zoo.data import load_images

    size = (config.image_size, config.image_size)
    return load_images(source, split, config.channels, size, (0.0, 1.0), limit or None)


def _training_images(config: Config):
    """The training images in [0, 1]: in memory, or streamed from disk (`--cache`)."""
    from zoo.data.stream import open_images

    size = (config.image_size, config.image_size)
    return open_images(config.data, "train", config.channels, size, (0.0, 1.0), config.limit or None, config.cache)


def _checked(config: Config, images, labels, names, source: str):
    """Refuse data the likelihood cannot model and conditional training without labels.
    `images` None: streamed 8-bit pixels scaled to [0, 1], in range by construction."""
    from zoo.errors import UserError
    from zoo.models.vae import check_unit_range

    if config.likelihood == "bernoulli" and images is not None:
        try:
            check_unit_range(images, f"--data {source}")
        except ValueError as error:
            raise UserError(str(error)) from None
    if config.conditional and labels is None:
        raise UserError(f"--conditional needs labelled data, but {source} has no labels: pass "
                        "class subfolders, idx files with labels, an .npz with labels or a TFDS dataset with a label")
    return images, labels, len(names) if config.conditional else 0


def _binarized(config: Config, images):
    """Held-out images binarized once by sampling Bernoulli(pixel) with a fixed seed."""
    from zoo.evaluation.vae import binarize

    return binarize(images, VAL_BINARIZATION_SEED) if config.likelihood == "bernoulli" else images


def _val_dataset(images, labels, batch_size: int, conditional: bool):
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((images, labels) if conditional else images)
    return data.batch(batch_size).prefetch(2)


def schedule(config: Config):
    import keras

    warmup = min(config.warmup_steps, config.total_steps - 1)  # a short run keeps some decay
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup > 0 else config.learning_rate, max(1, config.total_steps - warmup),
        alpha=0.01, warmup_target=config.learning_rate if warmup > 0 else None, warmup_steps=max(0, warmup))


def _output_bias(config: Config, train) -> float:
    """The decoder's initial output: the mean training pixel (its logit for Bernoulli), over all
    images in memory, or over 1,000 spread evenly over a streamed set."""
    import math

    images = train.array if train.in_memory else train.sample(OUTPUT_BIAS_SAMPLE)
    mean = min(max(float(images.mean()), 1e-3), 1 - 1e-3)
    return math.log(mean / (1 - mean)) if config.likelihood == "bernoulli" else mean


def _model(config: Config, classes: int, train):
    """The VAE: an encoder of `encoder_width`/`encoder_depth`, a decoder of `width`/`depth`."""
    from zoo.models import VAE
    from zoo.models.vae_networks import build_vae_decoder, build_vae_encoder

    shape = (config.image_size, config.image_size, config.channels)
    encoder = build_vae_encoder(shape, config.latent_size, config.encoder_width or config.width,
                                config.depth if config.encoder_depth < 0 else config.encoder_depth, classes)
    decoder = build_vae_decoder(shape, config.latent_size, config.width, config.depth, classes, config.likelihood,
                                _output_bias(config, train))
    return VAE(encoder, decoder, beta=config.beta, likelihood=config.likelihood,
               gaussian_scale=config.gaussian_scale, seed=config.seed)


def build(config: Config):
    """The VAE, shuffled training batches, binarized validation batches, pictures and projector."""
    import keras

    from train.callbacks import EmbeddingProjector, EpochEvaluation
    from train.trainer import Built
    from zoo.evaluation.vae import vae_embedding, vae_evaluation

    val_source = config.val_data or config.data
    train = _training_images(config)
    _, _, classes = _checked(config, train.array, train.labels, train.names, config.data)
    val_images, val_labels, _ = _checked(config, *_load(config, val_source, "test", config.val_limit), val_source)
    val_images = _binarized(config, val_images)
    model = _model(config, classes, train)
    model.compile(keras.optimizers.Adam(schedule(config)))
    shown = slice(0, config.projector_images)
    val_shown = None if val_labels is None else val_labels[shown]
    callbacks = [EpochEvaluation(vae_evaluation(val_images[shown], val_shown), prefix="vae",
                                 description="reconstructions: input | output pairs"),
                 EmbeddingProjector(vae_embedding(val_images[shown], val_shown))]
    return Built(model, train.batches(config.batch_size, config.seed, config.conditional),
                 _val_dataset(val_images, val_labels, config.batch_size, config.conditional), callbacks)


RECIPE = Recipe(
    name="vae",
    description="convolutional VAE (beta, Bernoulli/Gaussian, optional class-conditional) on MNIST",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo sample {model} -n 64 -o samples.png; python -m zoo eval {model}",
)
