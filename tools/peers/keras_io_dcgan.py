"""The keras.io-style peer of the zoo's DCGAN: the same generator and discriminator, trained the
way the keras.io example does it (https://keras.io/examples/generative/dcgan_overriding_train_step/):
noise from `keras.random.normal` with a `SeedGenerator`, one discriminator update on real and
generated images concatenated (noisy labels, binary cross-entropy), one generator update,
`keras.metrics.Mean` trackers, and `model.fit`.

    python -m train.bench dcgan --preset default --keras-peer   # times this peer and the zoo's step, same run

`make_peer(config) -> (compiled model, dataset of batches)` is all the benchmark needs.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from zoo.models import build_dcgan_discriminator, build_dcgan_generator  # noqa: E402  (the same networks)


class KerasIoGAN(keras.Model):
    """The keras.io GAN: trackers, two GradientTape updates per `train_step`, trained with `fit`.
    (keras.io calls the nets without `training=`; here `training=True`, as the zoo does, so both
    run the same batch-norm work.)"""

    def __init__(self, discriminator, generator, latent_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator, self.latent_dim = discriminator, generator, latent_dim
        self.seed_generator = keras.random.SeedGenerator(1337)

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def call(self, z):
        return self.generator(z)

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(z, training=True)
        combined = ops.concatenate([generated, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined, training=True))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            predictions = self.discriminator(self.generator(z, training=True), training=True)
            g_loss = self.loss_fn(ops.zeros((batch_size, 1)), predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


def make_peer(config) -> tuple[keras.Model, tf.data.Dataset]:
    """The peer for a `train.recipes.dcgan.Config` (non-saturating loss): a compiled model and
    endless shuffled batches of `config.batch_size` training images in [-1, 1]."""
    from train.recipes.dcgan import _dataset, _load

    size, channels = config.image_size, config.channels
    model = KerasIoGAN(build_dcgan_discriminator(size, channels, config.d_width),
                       build_dcgan_generator(config.latent_size, size, channels, config.g_width),
                       config.latent_size)
    g_lr, d_lr, beta_1, beta_2 = config.optimizer_settings()
    model.compile(d_optimizer=keras.optimizers.Adam(d_lr, beta_1, beta_2),
                  g_optimizer=keras.optimizers.Adam(g_lr, beta_1, beta_2),
                  loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    images, _, _ = _load(config, config.data, "train", config.limit or None)
    return model, _dataset(images, None, config.batch_size, config.seed)
