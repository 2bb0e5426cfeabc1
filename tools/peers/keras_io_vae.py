"""The keras.io-style peer of the zoo's VAE: the same encoder and decoder, trained the way the
keras.io example does it (https://keras.io/examples/generative/vae/): a `Sampling` layer
drawing `keras.random.normal` noise, a model whose `train_step` sums binary cross-entropy over
the pixels plus the KL term, `keras.metrics.Mean` trackers, and `model.fit`.

    python -m train.bench vae --preset default --keras-peer   # times this peer and the zoo's step, same run

`make_peer(config) -> (compiled model, dataset of batches)` is all the benchmark needs.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from zoo.models import build_vae_decoder, build_vae_encoder  # noqa: E402  (the same network)


class Sampling(keras.layers.Layer):
    """z = mean + exp(log_var / 2) * eps, as in the keras.io example."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        mean, log_var = inputs
        eps = keras.random.normal(ops.shape(mean), dtype=mean.dtype, seed=self.seed_generator)
        return mean + ops.exp(0.5 * log_var) * eps


class KerasIoVAE(keras.Model):
    """The keras.io VAE: trackers, a GradientTape `train_step`, trained with `fit`."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder, self.sampling = encoder, decoder, Sampling()
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def call(self, data):
        mean, log_var = self.encoder(data)
        return ops.sigmoid(self.decoder(self.sampling([mean, log_var])))

    def train_step(self, data):
        with tf.GradientTape() as tape:
            mean, log_var = self.encoder(data)
            reconstruction = ops.sigmoid(self.decoder(self.sampling([mean, log_var])))
            reconstruction_loss = ops.mean(ops.sum(
                keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + log_var - ops.square(mean) - ops.exp(log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


def make_peer(config) -> tuple[keras.Model, tf.data.Dataset]:
    """The peer for a `train.recipes.vae.Config`: a compiled model and endless batches of
    `config.batch_size` MNIST training images (binarized once, as keras.io feeds fixed data)."""
    from zoo.data import load_images

    shape = (config.image_size, config.image_size, config.channels)
    model = KerasIoVAE(build_vae_encoder(shape, config.latent_size, config.width, config.depth),
                       build_vae_decoder(shape, config.latent_size, config.width, config.depth))
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
    images, _, _ = load_images(config.data, "train", config.channels, shape[:2], limit=config.batch_size * 16)
    images = (np.random.default_rng(0).random(images.shape, dtype=np.float32) < images).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(images).repeat().batch(config.batch_size, drop_remainder=True)
    return model, data.prefetch(4)
