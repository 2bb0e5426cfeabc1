"""gan_superres: SRGAN-style x2/x3/x4 super-resolution (the flagship).

Pixel-loss pre-training of an EDSR-style generator, then adversarial training with a
VGG-style discriminator (Ledig et al. 2017, https://arxiv.org/abs/1609.04802).
Default: a CPU demo on the embedded T91 images, validated on Set5.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

from train.config import TrainConfig
from train.recipes import Recipe

SCALES = (2, 3, 4)  # what the generator (zoo.models.build_sr_generator) supports


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 10
    steps_per_epoch: int = 1000
    batch_size: int = 16
    checkpoint_every: int = 1000
    data: str = "assets:sr/T91"  # training images: a folder (PNG/JPEG/BMP), .npy/.npz, tfds:NAME[/CONFIG] or assets:NAME (embedded)
    val_data: str = "assets:sr/Set5"  # validation images (folder, .npy/.npz, tfds:NAME validation split, or assets:NAME)
    lr_data: str = ""  # real LR images matching --data (0001.png <-> 0001.png or 0001x4.png; arrays by index); empty: bicubic
    val_lr_data: str = ""  # real LR images matching --val-data; empty: bicubic of --val-data
    channels: int = 3  # 3: RGB; 1: gray, colour images as their BT.601 Y (Cb, Cr by bicubic when upscaling)
    cache: str = "auto"  # decoded training images in memory: auto (when within 256 MiB), on, off (stream from disk)
    scale: int = 4  # upscaling factor: 2, 3 or 4
    crop_size: int = 64  # HR training crop in pixels (LR crop = crop_size / scale)
    filters: int = 64  # generator width
    blocks: int = 8  # generator residual blocks
    residual_scale: float = 1.0  # factor on each residual branch (EDSR uses 0.1 for wide nets)
    d_filters: int = 32  # discriminator width of the first stage (doubles per stage)
    d_stages: int = 4  # discriminator stride-2 stages
    pretrain_steps: int = 8000  # pixel-loss (L1) steps before adversarial training starts
    g_learning_rate: float = 4e-4  # Adam; /4 for the last third of pre-training, /10 in the GAN phase
    d_learning_rate: float = 1e-4  # Adam for the discriminator
    pixel_weight: float = 1.0  # L1 weight in the GAN phase
    content_weight: float = 0.1  # VGG54 or discriminator feature-matching weight
    adversarial_weight: float = 1e-3  # adversarial weight (SRGAN: 1e-3)
    ema: float = 0.999  # generator weights saved as their exponential moving average (momentum, lowered for short runs); 0: off
    vgg_weights: str = "auto"  # VGG19 notop ImageNet .h5 for the perceptual loss; auto: Keras' cache if there; none
    val_images: int = 5  # validation images scored per epoch (first N)

    def validate(self) -> None:
        super().validate()
        self.require("scale", self.scale in SCALES, "one of " + ", ".join(map(str, SCALES)))
        self.require("crop_size", self.crop_size >= 4 * self.scale and self.crop_size % self.scale == 0,
                     f"a multiple of the scale and at least {4 * self.scale}")
        for name in ("filters", "d_filters", "d_stages", "val_images"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        for name in ("blocks", "pretrain_steps"):
            self.require(name, getattr(self, name) >= 0, "0 or more")
        for name in ("g_learning_rate", "d_learning_rate", "residual_scale"):
            self.require(name, getattr(self, name) > 0, "positive")
        for name in ("pixel_weight", "content_weight", "adversarial_weight"):
            self.require(name, getattr(self, name) >= 0, "0 or more")
        self.require("ema", 0 <= self.ema < 1, "in [0, 1)")
        self.require("channels", self.channels in (1, 3), "1 (gray / Y) or 3 (RGB)")
        self.require("cache", self.cache in ("auto", "on", "off"), "auto, on or off")


PRESETS = {
    # The CPU demo: 10 epochs whose length is planned from the speed measured at the start, so
    # that training takes about 10 minutes on any machine (--minutes 0: exactly 10 x 1000 steps).
    "default": Config(minutes=10.0),
    "tiny": Config(epochs=2, steps_per_epoch=3, batch_size=4, crop_size=32, filters=8, blocks=1,
                   d_filters=8, d_stages=2, pretrain_steps=3, log_every=1, checkpoint_every=2,
                   val_images=2, vgg_weights="none"),
    # The published scale (SRGAN: SRResNet 16x64, 96-pixel crops, batch 16, Adam 1e-4,
    # 1e6 pre-training steps then 2e5 GAN steps). Meant for GPUs and a large dataset, e.g.
    # --data tfds:div2k/bicubic_x4 or T91 + BSD200.
    "full": Config(epochs=120, steps_per_epoch=10_000, crop_size=96, filters=64, blocks=16,
                   d_filters=64, pretrain_steps=1_000_000, g_learning_rate=1e-4,
                   d_learning_rate=1e-4, content_weight=1.0, checkpoint_every=5000),
}


def resize(config: Config, factor: float) -> Config:
    """`factor` times the steps (`--minutes`), pre-training the same share of them."""
    steps = max(1, round(config.steps_per_epoch * factor))
    pretrain = round(config.pretrain_steps * steps / config.steps_per_epoch)
    return dataclasses.replace(config, steps_per_epoch=steps, pretrain_steps=pretrain)


def ema_momentum(config: Config) -> float:
    """`--ema`, lowered for a short run so that the average forgets the random initial weights
    it starts from (momentum^steps <= e^-7, about 0.001): 0.999 needs 7,000 steps; a 1,600-step
    run (--minutes on a slow CPU) averages with 0.9956."""
    steps = config.total_steps
    return config.ema if config.ema ** steps <= math.exp(-7) else max(0.0, 1 - 7 / steps)


def generator_schedule(config: Config):
    """Constant, /4 for the last third of pre-training, /10 in the GAN phase."""
    import keras

    lr, pretrain = config.g_learning_rate, config.pretrain_steps
    if pretrain == 0:
        return lr / 10
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [2 * pretrain // 3, pretrain], [lr, lr / 4, lr / 10])


def vgg19_weights(setting: str) -> str | None:
    """The VGG19 weights file for `--vgg-weights`: a path, `none`, or `auto` (the file Keras
    downloads to ~/.keras/models, or $KERAS_HOME/models, if it is there; nothing downloads)."""
    if setting == "none":
        return None
    if setting != "auto":
        return setting
    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    cached = home / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    return str(cached) if cached.is_file() else None


def sr_validation(images: list, scale: int, pictures: int = 3, crop: int = 192):
    """`model -> (scalars, pictures)` for `EpochEvaluation`: PSNR-Y / SSIM-Y of the model and of
    bicubic (zoo.evaluation.sr, the published convention) and bicubic | model | ground truth crops."""
    from zoo.evaluation.sr import sr_report, sr_triplets
    from zoo.visualize import side_by_side

    def evaluate(model):
        triplets = list(sr_triplets(model, images, scale))
        report = sr_report(triplets, scale)
        scalars = {**report["model"], **{f"bicubic_{k}": v for k, v in report["bicubic"].items()}}
        return scalars, {t.name: side_by_side([t.bicubic, t.sr, t.hr], crop=crop) for t in triplets[:pictures]}

    return evaluate


def build(config: Config):
    """The SRGAN, T91 crops, Set5 validation (test_step losses + PSNR/SSIM); imports TensorFlow."""
    import keras
    import tensorflow as tf

    from train.callbacks import EpochEvaluation
    from train.trainer import Built
    from zoo.data import sr_eval_dataset, sr_eval_images, sr_train_batches
    from zoo.models import SRGAN, build_sr_discriminator, build_sr_generator

    generator = build_sr_generator(config.scale, config.filters, config.blocks, config.residual_scale,
                                   channels=config.channels)
    discriminator = build_sr_discriminator(config.d_filters, config.d_stages, channels=config.channels)
    model = SRGAN(generator, discriminator, config.scale, config.pretrain_steps, config.pixel_weight,
                  config.content_weight, config.adversarial_weight, vgg19_weights(config.vgg_weights))
    ema = dict(use_ema=True, ema_momentum=ema_momentum(config)) if config.ema else {}
    model.compile(g_optimizer=keras.optimizers.Adam(generator_schedule(config), **ema),
                  d_optimizer=keras.optimizers.Adam(config.d_learning_rate, beta_1=0.5))
    print(f"gan_superres: content loss in the GAN phase: {model.content_loss_used}")
    data = sr_train_batches(config.data, config.crop_size, config.scale, config.batch_size, config.seed,
                            lr_source=config.lr_data or None, channels=config.channels, cache=config.cache)
    images = sr_eval_images(config.val_data, config.scale, config.val_lr_data or None)[:config.val_images]
    validation = EpochEvaluation(sr_validation(images, config.scale), description="bicubic | model | ground truth")
    replicas = tf.distribute.get_strategy().num_replicas_in_sync  # build runs in the strategy scope
    return Built(model, data, sr_eval_dataset(images, config.scale, replicas, config.channels), [validation])


RECIPE = Recipe(
    name="gan_superres",
    description="SRGAN-style x4 super-resolution (pixel pre-training, then adversarial); T91 -> Set5",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo upscale {model} photo.png -o photo_x4.png",
    resize=resize,
)
