"""SRGAN-style super-resolution: pixel-loss pre-training, then adversarial training.

Ledig et al. 2017, https://arxiv.org/abs/1609.04802. Phase 1 ("pretrain", the first
`pretrain_steps` steps) trains the generator alone on L1 pixel loss (PSNR-oriented, the
"SRResNet" of the paper). Phase 2 ("gan") alternates a discriminator update and a generator
update on `pixel_weight * L1 + content_weight * content + adversarial_weight * adversarial`.
The content loss is VGG19 feature distance when ImageNet weights are given (as in the
paper), else discriminator feature matching (Salimans et al. 2016), which needs no
download. `content_loss_used` says which one is in force.
"""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.models.gan import GAN
from zoo.models.losses import global_count, global_mean
from zoo.models.tiling import upscale_images

PHASES = ("pretrain", "gan")


def _bce(logits, label: float):
    labels = ops.full_like(logits, label)
    return ops.mean(ops.binary_crossentropy(labels, logits, from_logits=True), axis=-1)  # (B,)


def _l1(a, b):
    return ops.mean(ops.abs(ops.cast(a, "float32") - ops.cast(b, "float32")), axis=(1, 2, 3))  # (B,)


@keras.saving.register_keras_serializable(package="zoo")
class SRGAN(GAN):
    """A generator and a discriminator trained together for x`scale` super-resolution.

    Args:
        generator: model mapping `(B, h, w, C)` in [0, 1] to `(B, h*scale, w*scale, C)`, C = 3 or 1.
        discriminator: model mapping images to `[logits, *features]`.
        scale: the upsampling factor of the generator.
        pretrain_steps: steps of pixel-loss-only training before adversarial training.
        pixel_weight, content_weight, adversarial_weight: weights of the phase-2 losses.
        vgg_weights: path to VGG19 ImageNet weights (`include_top=False`) for the
            perceptual content loss; None uses discriminator feature matching instead.

    Call arguments:
        inputs: `(B, h, w, C)` low-resolution images in [0, 1]; returns the generator output.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, scale: int = 4,
                 pretrain_steps: int = 0, pixel_weight: float = 1.0, content_weight: float = 1.0,
                 adversarial_weight: float = 1e-3, vgg_weights: str | None = None, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        self.scale = scale
        self.pretrain_steps = pretrain_steps
        self.pixel_weight = pixel_weight
        self.content_weight = content_weight
        self.adversarial_weight = adversarial_weight
        self.vgg_weights = vgg_weights
        self.phase = PHASES[0] if pretrain_steps > 0 else PHASES[1]
        # A plain function is not tracked, so VGG19 never ends up inside the saved model.
        self._vgg_features = _vgg19_features(vgg_weights) if vgg_weights else None
        self.content_loss_used = "vgg19" if vgg_weights else "discriminator_feature_matching"
        self.built = generator.built and discriminator.built  # both are built functional models

    def begin_step(self, step: int) -> str:
        """Pick the phase for global step `step`; the trainer traces one step per phase."""
        self.phase = PHASES[0] if step < self.pretrain_steps else PHASES[1]
        return self.phase

    def train_step(self, data):
        lr, hr = data  # (B, h, w, C), (B, H, W, C) in [0, 1]
        if self.phase == "pretrain":
            return self._pretrain_step(lr, hr)
        return self._gan_step(lr, hr)

    def _pretrain_step(self, lr, hr):
        with tf.GradientTape() as tape:
            pixel = global_mean(_l1(self.generator(lr, training=True), hr))
        self.apply_gradients(self.g_optimizer, tape, pixel, self.generator.trainable_variables)
        return {"pixel_loss": pixel}

    def _gan_step(self, lr, hr):
        n = global_count(lr)
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)  # (B, H, W, C); one forward serves both updates
            with tape.stop_recording():
                d_loss, real_logits = self._discriminator_update(hr, sr, n)
            fake_logits, *fake_features = self.discriminator(sr, training=True)
            pixel = global_mean(_l1(sr, hr), n)
            adversarial = global_mean(_bce(fake_logits, 1.0), n)
            content = global_mean(self._content_loss(sr, hr, fake_features), n)
            g_loss = (self.pixel_weight * pixel + self.content_weight * content
                      + self.adversarial_weight * adversarial)
        self.apply_gradients(self.g_optimizer, tape, g_loss, self.generator.trainable_variables)
        return {"pixel_loss": pixel, "content_loss": content, "adversarial_loss": adversarial,
                "g_loss": g_loss, "d_loss": d_loss,
                "d_real": global_mean(ops.sigmoid(real_logits)[:, 0], n),
                "d_fake": global_mean(ops.sigmoid(fake_logits)[:, 0], n)}

    def _discriminator_update(self, hr, sr, n):
        """One discriminator step on real `hr` vs generated `sr`; returns its loss and real logits."""
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(hr, training=True)[0]
            fake_logits = self.discriminator(ops.stop_gradient(sr), training=True)[0]
            d_loss = global_mean(_bce(real_logits, 1.0) + _bce(fake_logits, 0.0), n)
        self.apply_gradients(self.d_optimizer, tape, d_loss, self.discriminator.trainable_variables)
        return d_loss, real_logits

    def _content_loss(self, sr, hr, fake_features):
        if self._vgg_features is not None:
            # SRGAN's VGG54 loss; features rescaled by 1/12.75 as in the paper.
            if sr.shape[-1] == 1:  # VGG sees a one-channel (Y) model's images as gray RGB
                sr, hr = ops.repeat(sr, 3, axis=-1), ops.repeat(hr, 3, axis=-1)
            return _mse(self._vgg_features(sr) / 12.75, ops.stop_gradient(self._vgg_features(hr)) / 12.75)
        real_features = self.discriminator(hr, training=True)[1:]
        return sum(_l1(f, ops.stop_gradient(r)) for f, r in zip(fake_features, real_features))

    def test_step(self, data):
        lr, hr = data
        sr = ops.clip(self.generator(lr, training=False), 0.0, 1.0)
        return {"pixel_loss": global_mean(_l1(sr, hr))}

    @property
    def channels(self) -> int:
        """The channels the generator reads and writes: 3 (RGB) or 1 (gray / Y)."""
        return int(self.generator.input_shape[-1])

    def upscale(self, images, tile: int = 128, overlap: int = 16, batch_size: int = 8) -> np.ndarray:
        """Super-resolve uint8 images of any size; see `zoo.models.tiling.upscale_images`."""
        return upscale_images(self.generator, images, self.scale, tile, overlap, batch_size)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "pretrain_steps": self.pretrain_steps,
                "pixel_weight": self.pixel_weight, "content_weight": self.content_weight,
                "adversarial_weight": self.adversarial_weight, "vgg_weights": None}


def _mse(a, b):
    return ops.mean(ops.square(ops.cast(a, "float32") - ops.cast(b, "float32")), axis=(1, 2, 3))


def _vgg19_features(weights: str):
    """A frozen VGG19 up to block5_conv4 as a plain function of [0, 1] RGB images."""
    if not Path(weights).is_file():
        from zoo.errors import UserError
        raise UserError(f"VGG19 weights file {weights} does not exist: give the path of "
                        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, or leave it empty")
    try:
        vgg = keras.applications.VGG19(include_top=False, weights=weights)
    except (OSError, ValueError) as error:  # empty, not HDF5, or other layers' weights
        from zoo.errors import UserError
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"VGG19 weights file {weights} cannot be loaded ({reason}): give Keras' "
                        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5, or --vgg-weights none") from None
    features = keras.Model(vgg.input, vgg.get_layer("block5_conv4").output)
    features.trainable = False
    preprocess = functools.partial(keras.applications.vgg19.preprocess_input, data_format="channels_last")
    return lambda images: features(preprocess(ops.cast(images, "float32") * 255.0), training=False)
