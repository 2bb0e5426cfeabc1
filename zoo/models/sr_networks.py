"""The two networks of SRGAN-style super-resolution, as plain functional Keras models.

Generator: EDSR-style residual blocks (no batch norm), a long skip over the body,
sub-pixel upsampling, plus a global bicubic skip so that the network only learns the
detail bicubic misses. Discriminator: SRGAN's VGG-style stack of strided convolutions
(https://arxiv.org/abs/1609.04802, Fig. 4) with global pooling so any crop size works;
it also returns its intermediate features for feature-matching losses.
"""

from __future__ import annotations

import math

import keras

from zoo.layers import BicubicUpsampling, PixelShuffle, ResidualBlock

SCALES = (2, 3, 4)


def build_sr_generator(scale: int = 4, filters: int = 64, blocks: int = 16,
                    residual_scale: float = 1.0, name: str = "generator", channels: int = 3) -> keras.Model:
    """SR generator: `(B, h, w, C)` images in [0, 1] -> `(B, h * scale, w * scale, C)`.

    Args:
        scale: upsampling factor, 2, 3 or 4.
        filters: channels of the body.
        blocks: number of residual blocks.
        residual_scale: factor on each block's residual branch.
        channels: C, 3 (RGB) or 1 (gray, or the Y channel of colour images).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale}")
    lr = keras.Input((None, None, channels), name="lr")  # (B, h, w, C)
    head = keras.layers.Conv2D(filters, 3, padding="same", name="head")(lr)  # (B, h, w, F)
    x = head
    for i in range(blocks):
        x = ResidualBlock(filters, residual_scale=residual_scale, name=f"block{i}")(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", name="body_out")(x)
    x = keras.layers.Add(name="long_skip")([head, x])
    steps = [3] if scale == 3 else [2] * int(math.log2(scale))
    for i, s in enumerate(steps):
        x = keras.layers.Conv2D(filters * s * s, 3, padding="same", name=f"up{i}_conv")(x)
        x = PixelShuffle(s, name=f"up{i}_shuffle")(x)  # (B, h * s, w * s, F)
        x = keras.layers.ReLU(name=f"up{i}_relu")(x)
    detail = keras.layers.Conv2D(channels, 3, padding="same", name="tail")(x)  # (B, H, W, C)
    bicubic = BicubicUpsampling(scale, name="bicubic")(lr)
    sr = keras.layers.Add(name="global_skip")([bicubic, detail])
    sr = keras.layers.Activation("linear", dtype="float32", name="sr")(sr)
    return keras.Model(lr, sr, name=name)


def build_sr_discriminator(filters: int = 64, stages: int = 4, dense: int = 1024,
                        name: str = "discriminator", channels: int = 3) -> keras.Model:
    """VGG-style critic: `(B, H, W, C)` in [0, 1] -> `[logits (B, 1), *features]`.

    Each stage is a 3x3 convolution and a strided 3x3 convolution with LeakyReLU(0.2);
    channels double per stage from `filters`. No normalization, so the output does not
    depend on how the batch is split across replicas.

    Args:
        filters: channels of the first stage.
        stages: number of stride-2 stages (the SRGAN paper uses 4).
        dense: width of the hidden dense layer.
        channels: C of the images, 3 or 1.
    """
    images = keras.Input((None, None, channels), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(images)
    features = []
    for i in range(stages):
        width = filters * 2**i
        for j, stride in enumerate((1, 2)):
            x = keras.layers.Conv2D(width, 3, strides=stride, padding="same", name=f"s{i}_conv{j}")(x)
            x = keras.layers.LeakyReLU(0.2, name=f"s{i}_act{j}")(x)
        features.append(x)  # (B, H / 2**(i+1), W / 2**(i+1), width)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(dense, name="dense")(x)
    x = keras.layers.LeakyReLU(0.2, name="dense_act")(x)
    logits = keras.layers.Dense(1, dtype="float32", name="logits")(x)
    return keras.Model(images, [logits, *features], name=name)
