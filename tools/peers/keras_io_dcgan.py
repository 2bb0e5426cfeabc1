"""The keras.io-style peer of the zoo's DCGAN: the same generator and discriminator, trained the
way the keras.io example does it (https://keras.io/examples/generative/dcgan_overriding_train_step/):
noise from `keras.random.normal` with a `SeedGenerator`, one discriminator update on real and
generated images concatenated (noisy labels, binary cross-entropy), one generator update,
`keras.metrics.Mean` trackers, and `model.fit`.

    python tools/peers/keras_io_dcgan.py [--preset default] [--steps 30] [--batch-size 64]

`make_peer(config) -> (compiled model, dataset of batches)` is what a benchmark needs to time
it beside the zoo's step; `__main__` times both (non-saturating loss, float32, the same batch
size and CPU) and prints a table (images/s, zoo / peer). It asserts nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

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


class _Timer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(logs["g_loss"])  # wait for the step
        self.times.append(time.perf_counter() - self.start)


def time_peer(config, steps: int) -> float:
    """Median seconds per `fit` step of the peer (after 3 warm-up steps)."""
    model, data = make_peer(config)
    timer = _Timer()
    model.fit(data, steps_per_epoch=steps + 3, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    return statistics.median(timer.times[3:])


def time_zoo(config, steps: int) -> float:
    """Median seconds per step of the zoo's DCGAN `train_step` in the trainer's step function."""
    from train.recipes import get_recipe
    from train.trainer import build, make_step_function

    strategy = tf.distribute.get_strategy()
    built = build(get_recipe("dcgan"), config)
    step = make_step_function(strategy, built.model.train_step)
    iterator = iter(built.train_data)
    times = []
    for i in range(steps + 3):
        batch = next(iterator)
        start = time.perf_counter()
        outputs, _ = step(batch)
        float(outputs["g_loss"])
        if i >= 3:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    from train.recipes import get_recipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int)
    args = parser.parse_args()
    config = get_recipe("dcgan").presets[args.preset]
    if args.batch_size:
        config = dataclasses.replace(config, batch_size=args.batch_size)
    # Non-saturating loss (the peer's); no FCD or validation to prepare.
    config = dataclasses.replace(config, loss="nonsaturating", fcd_samples=0, val_limit=16)
    keras.mixed_precision.set_global_policy("float32")
    zoo_s, peer_s = time_zoo(config, args.steps), time_peer(config, args.steps)
    b = config.batch_size
    print(f"DCGAN train step (1 D + 1 G update), preset {args.preset} (widths {config.g_width}/{config.d_width}, "
          f"latent {config.latent_size}, {config.image_size}x{config.image_size}x{config.channels}), batch {b}, "
          f"float32, median of {args.steps} steps, {cpu_name()}, {os.cpu_count()} CPUs")
    print(f"{'':28} {'images/s':>9} {'ms/step':>8}")
    print(f"{'zoo DCGAN (trainer step)':28} {b / zoo_s:9.0f} {1000 * zoo_s:8.1f}")
    print(f"{'keras.io-style peer (fit)':28} {b / peer_s:9.0f} {1000 * peer_s:8.1f}")
    print(f"zoo / peer: {peer_s / zoo_s:.2f}x")


if __name__ == "__main__":
    main()
