"""The VAE's encoder and decoder: small ResNet-style convolutional networks (plain functional
Keras models, so a user can take either out, save it and load it on its own).

Both work at three resolutions (the image, /2, /4): the image height and width must be
multiples of 4 (MNIST 28 -> 14 -> 7). `width` is the channel count at full resolution (doubled
at each /2), `depth` the residual blocks per lower resolution. A class-conditional pair takes a
one-hot label as a second input, concatenated to the flattened features (encoder) or to the
latent code (decoder).
"""

from __future__ import annotations

import keras
from keras import layers

STAGES = 2  # stride-2 downsamplings in the encoder (upsamplings in the decoder)
LIKELIHOODS = ("bernoulli", "gaussian_fixed", "gaussian_learned")  # see zoo.models.vae


def _check(image_shape: tuple[int, int, int], latent_size: int, width: int, depth: int,
           num_classes: int) -> None:
    """Raise ValueError naming the argument that cannot make a network."""
    if latent_size < 1:
        raise ValueError(f"latent_size must be at least 1, got {latent_size}")
    if width < 1 or depth < 0 or num_classes < 0:
        raise ValueError(f"need width >= 1, depth >= 0, num_classes >= 0; got {width}, {depth}, {num_classes}")
    if len(image_shape) != 3 or any(s % 2 ** STAGES for s in image_shape[:2]):
        raise ValueError(f"image_shape must be (H, W, C) with H and W multiples of {2 ** STAGES}, "
                         f"got {image_shape}")


def _residual(x, filters: int, name: str):
    """x + conv(silu(conv(silu(x)))): a pre-activation residual block at constant width."""
    h = layers.Activation("silu", name=f"{name}_act1")(x)
    h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(h)
    h = layers.Activation("silu", name=f"{name}_act2")(h)
    h = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(h)
    return layers.Add(name=f"{name}_add")([x, h])


def build_vae_encoder(image_shape: tuple[int, int, int], latent_size: int, width: int = 32,
                      depth: int = 1, num_classes: int = 0) -> keras.Model:
    """The inference network q(z | x[, y]): images -> `[mean, log_var]`, each `(B, latent_size)`.

    Args:
        image_shape: `(H, W, C)`, H and W multiples of 4; pixels in [0, 1].
        latent_size: dimensions of z.
        width: channels at full resolution (x2 per downsampling).
        depth: residual blocks at each lower resolution.
        num_classes: > 0 adds a one-hot `(B, num_classes)` label input.
    """
    _check(image_shape, latent_size, width, depth, num_classes)
    image = keras.Input(image_shape, name="image")
    x = layers.Conv2D(width, 3, padding="same", name="stem")(image)  # (B, H, W, width)
    filters = width
    for stage in range(STAGES):
        filters *= 2
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="silu",
                          name=f"down{stage}")(x)  # (B, H / 2^(s+1), W / 2^(s+1), filters)
        for block in range(depth):
            x = _residual(x, filters, f"res{stage}_{block}")
    x = layers.Flatten(name="flatten")(layers.Activation("silu", name="act")(x))
    inputs = [image]
    if num_classes:
        label = keras.Input((num_classes,), name="label_one_hot")
        x = layers.Concatenate(name="with_label")([x, label])
        inputs.append(label)
    mean = layers.Dense(latent_size, dtype="float32", name="mean")(x)  # (B, latent)
    log_var = layers.Dense(latent_size, dtype="float32", name="log_var")(x)
    return keras.Model(inputs if num_classes else image, [mean, log_var], name="encoder")


def build_vae_decoder(image_shape: tuple[int, int, int], latent_size: int, width: int = 32,
                      depth: int = 1, num_classes: int = 0, likelihood: str = "bernoulli",
                      output_bias: float = 0.0) -> keras.Model:
    """The generative network p(x | z[, y]): `(B, latent_size)` -> `(B, H, W, C')` parameters.

    C' is C for "bernoulli" (logits) and "gaussian_fixed" (means), 2C for "gaussian_learned"
    (means, then log standard deviations).

    Args:
        image_shape, latent_size, width, depth, num_classes: as for `build_vae_encoder`.
        likelihood: one of LIKELIHOODS.
        output_bias: initial bias of the output parameters (of the means for "gaussian_learned"):
            e.g. the logit of the mean training pixel for "bernoulli", so training starts from
            the data's average brightness instead of 784 nats of coin flips.
    """
    _check(image_shape, latent_size, width, depth, num_classes)
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, got {likelihood!r}")
    height, cols, channels = image_shape
    factor = 2 ** STAGES
    filters = width * factor
    z = keras.Input((latent_size,), name="z")
    inputs, h = [z], z
    if num_classes:
        label = keras.Input((num_classes,), name="label_one_hot")
        h = layers.Concatenate(name="with_label")([z, label])
        inputs.append(label)
    h = layers.Dense(height // factor * cols // factor * filters, activation="silu", name="project")(h)
    x = layers.Reshape((height // factor, cols // factor, filters), name="grid")(h)  # (B, H/4, W/4, 4w)
    for stage in range(STAGES):
        for block in range(depth):
            x = _residual(x, filters, f"res{stage}_{block}")
        filters //= 2
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="silu",
                                   name=f"up{stage}")(x)  # (B, 2h, 2w, filters)
    out_channels = 2 * channels if likelihood == "gaussian_learned" else channels
    bias = [output_bias] * channels + [0.0] * (out_channels - channels)  # log std starts at 0
    params = layers.Conv2D(out_channels, 3, padding="same", dtype="float32", name="params",
                           bias_initializer=keras.initializers.Constant(bias))(x)
    return keras.Model(inputs if num_classes else z, params, name="decoder")
