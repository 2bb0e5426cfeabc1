"""The keras.io-style peer of the zoo's gan_superres in the phase `train.bench` times, the pixel-loss
pre-training: the same EDSR-style generator trained as keras.io's EDSR example trains it
(https://keras.io/examples/vision/edsr/): `compile(optimizer, loss="mae")` and `fit` on the same
(LR, HR) crops, batch and learning-rate schedule.

The zoo's generator optimizer also keeps an exponential moving average of the weights (`--ema`);
keras.io's does not, so `train.bench` also times the zoo with `ZOO_AS_PEER` (EMA off). The GAN phase
(discriminator updates) has no peer here.

    python -m train.bench gan_superres --preset default --keras-peer

`make_peer(config) -> (compiled model, dataset of batches)` is all the benchmark needs.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from zoo.models import build_sr_generator

ZOO_AS_PEER = {"ema": 0.0}  # the zoo's settings that compute what this peer computes


def make_peer(config) -> tuple[keras.Model, tf.data.Dataset]:
    """The peer for a `train.recipes.gan_superres.Config`: the generator alone, L1 loss."""
    from train.recipes.gan_superres import generator_schedule
    from zoo.data import sr_train_batches

    model = build_sr_generator(config.scale, config.filters, config.blocks, config.residual_scale,
                               channels=config.channels)
    model.compile(optimizer=keras.optimizers.Adam(generator_schedule(config)), loss="mae")
    batches = sr_train_batches(config.data, config.crop_size, config.scale, config.batch_size, config.seed,
                               lr_source=config.lr_data or None, channels=config.channels, cache=config.cache)
    return model, batches(0)
