"""The DCGAN generator and discriminator as plain functional Keras models.

Radford et al. 2016, https://arxiv.org/abs/1511.06434: the generator projects the latent
vector to a small feature map and doubles its resolution with stride-2 transposed
convolutions (batch norm + ReLU, tanh output in [-1, 1]); the discriminator halves it with
stride-2 convolutions (LeakyReLU 0.2, no normalization on the first one) down to one logit.
A WGAN-GP critic must not use batch norm (the gradient penalty is per example,
Gulrajani et al. 2017, https://arxiv.org/abs/1704.00028): it uses layer norm or none.

Class-conditional nets take `[z, label]` / `[image, label]`: the generator concatenates a
label embedding to z, the discriminator adds a projection term `<embed(label), features>`
(Miyato & Koyama 2018, https://arxiv.org/abs/1802.05637).

Batch norm is synchronized over replicas, so its statistics are those of the global batch
and a step on 2 replicas equals a step on 1.
"""

from __future__ import annotations

from typing import Literal

import keras
from keras import layers

NORMS = ("batch", "layer", "none")
MIN_START, MAX_START = 4, 8  # the generator's first feature map is between 4x4 and 8x8


def resolution_plan(image_size: int) -> tuple[int, int]:
    """`(start, stages)`: image_size = start * 2**stages with start in 4..8, stages >= 1
    (28 -> 7x7 and 2 stages, 32 -> 4x4 and 3, 64 -> 4x4 and 4).

    Raises:
        ValueError: no such split exists (e.g. 17, 9, or 200).
    """
    start, stages = image_size, 0
    while start % 2 == 0 and start // 2 >= MIN_START:
        start, stages = start // 2, stages + 1
    if stages < 1 or not MIN_START <= start <= MAX_START:
        raise ValueError(f"image size {image_size} is not supported: it must be s * 2**k with s in "
                         f"{MIN_START}..{MAX_START} and k >= 1 (e.g. 28, 32, 48, 64, 128)")
    return start, stages


def _label_input(num_classes: int, name: str):
    return keras.Input((), dtype="int32", name=name) if num_classes else None


def build_dcgan_generator(latent_dim: int = 100, image_size: int = 28, channels: int = 1,
                          width: int = 64, num_classes: int = 0) -> keras.Model:
    """The DCGAN generator: `z (B, latent_dim)` [and `label (B,)`] -> images `(B, S, S, C)` in [-1, 1].

    Args:
        latent_dim: size of the noise vector z.
        image_size: output height and width (see `resolution_plan`).
        channels: output channels (1 gray, 3 RGB).
        width: channels of the last hidden feature map; doubled per stage towards the start.
        num_classes: 0 for an unconditional generator, else the number of labels it takes.

    Example:
    >>> build_dcgan_generator(16, 28, 1, width=8)(np.zeros((2, 16))).shape  # doctest: +SKIP
    (2, 28, 28, 1)
    """
    if latent_dim < 1 or width < 1 or channels < 1:
        raise ValueError(f"latent_dim, width and channels must be >= 1, got {latent_dim}, {width}, {channels}")
    start, stages = resolution_plan(image_size)
    z = keras.Input((latent_dim,), name="z")
    label = _label_input(num_classes, "label")
    x = z
    if label is not None:
        embedded = layers.Embedding(num_classes, min(latent_dim, 50), name="label_embedding")(label)
        x = layers.Concatenate(name="z_and_label")([z, embedded])  # (B, latent + E)
    filters = width * 2 ** (stages - 1)
    x = layers.Dense(start * start * filters, use_bias=False, name="project")(x)
    x = layers.Reshape((start, start, filters))(x)  # (B, s, s, F)
    x = layers.ReLU()(layers.BatchNormalization(synchronized=True, name="project_bn")(x))
    for stage in range(1, stages):
        filters //= 2
        x = layers.Conv2DTranspose(max(filters, 1), 4, strides=2, padding="same", use_bias=False,
                                   name=f"up{stage}")(x)  # (B, s * 2**stage, ..., F)
        x = layers.ReLU()(layers.BatchNormalization(synchronized=True, name=f"up{stage}_bn")(x))
    x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", name="to_image")(x)  # (B, S, S, C)
    images = layers.Activation("tanh", dtype="float32", name="tanh")(x)
    return keras.Model([z, label] if label is not None else z, images, name="generator")


def _norm(kind: str, name: str) -> layers.Layer | None:
    if kind == "batch":
        return layers.BatchNormalization(synchronized=True, name=name)
    if kind == "layer":
        return layers.LayerNormalization(axis=(1, 2, 3), name=name)  # per example: WGAN-GP safe
    return None


def build_dcgan_discriminator(image_size: int = 28, channels: int = 1, width: int = 64,
                              num_classes: int = 0,
                              norm: Literal["batch", "layer", "none"] = "batch",
                              logit_bias: bool = True) -> keras.Model:
    """The DCGAN discriminator (critic): images `(B, S, S, C)` [and `label (B,)`] -> logits `(B, 1)`.

    Args:
        image_size: input height and width (see `resolution_plan`).
        channels: input channels.
        width: channels of the first convolution; doubled per stage.
        num_classes: 0 for an unconditional discriminator, else the number of labels it takes.
        norm: normalization after every convolution but the first: "batch" (DCGAN),
            "layer" (per example, for WGAN-GP) or "none".
        logit_bias: whether the logit has a bias; False for a WGAN critic, whose loss
            D(fake) - D(real) cannot see a constant (the bias would never train).

    Example:
    >>> build_dcgan_discriminator(28, 1, width=8)(np.zeros((2, 28, 28, 1))).shape  # doctest: +SKIP
    (2, 1)
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    _, stages = resolution_plan(image_size)
    images = keras.Input((image_size, image_size, channels), name="image")
    label = _label_input(num_classes, "label")
    x = images
    for stage in range(stages):
        normalize = _norm(norm, f"down{stage}_norm") if stage > 0 else None
        x = layers.Conv2D(width * 2 ** stage, 4, strides=2, padding="same", name=f"down{stage}",
                          use_bias=norm != "batch" or normalize is None)(x)  # batch norm removes a bias
        x = layers.LeakyReLU(0.2)(normalize(x) if normalize else x)  # (B, S / 2**(stage+1), ..., F)
    features = layers.Flatten()(x)  # (B, D)
    logits = layers.Dense(1, use_bias=logit_bias, dtype="float32", name="logit")(features)
    if label is not None:  # projection discriminator: + <embed(label), features>
        embedded = layers.Embedding(num_classes, features.shape[-1], name="label_projection")(label)
        projection = layers.Dot(axes=1, dtype="float32")([embedded, features])  # (B, 1)
        logits = layers.Add(dtype="float32", name="logit_and_projection")([logits, projection])
    return keras.Model([images, label] if label is not None else images, logits, name="discriminator")
