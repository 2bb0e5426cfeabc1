"""The shared base of models trained as a generator and a discriminator (SRGAN, DCGAN, ...).

It owns what every GAN needs besides its losses: two optimizers (loss-scaled under
mixed_float16), their slots built up front (tf.distribute needs that, keras#23085), moving
averages swapped in at the end, saving with both optimizers, and `fit` that honours a
subclass's training phases. A subclass writes `train_step` (and `begin_step` if it has
phases) with the helper `apply_gradients`.
"""

from __future__ import annotations

import copy

import keras


def _loss_scaled(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)


class _PhaseSwitch(keras.callbacks.Callback):
    """Inside `fit`: call `begin_step` before every batch and retrace when the phase changes."""

    def __init__(self):
        super().__init__()
        self.key = None

    def _begin(self, force: bool) -> None:
        key = self.model.begin_step(int(self.model.g_optimizer.iterations.numpy()))
        if force or key != self.key:
            self.key = key
            self.model.make_train_function(force=True)

    def on_train_begin(self, logs=None):
        self._begin(force=True)

    def on_train_batch_begin(self, batch, logs=None):
        self._begin(force=False)


class GAN(keras.Model):
    """A generator and a discriminator with one optimizer each.

    Args:
        generator: a Keras model; `call` runs it.
        discriminator: a Keras model.

    Every `train_step` updates the generator once, so `g_optimizer.iterations` counts steps.
    """

    def __init__(self, generator: keras.Model, discriminator: keras.Model, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.g_optimizer = self.d_optimizer = None

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Set both optimizers (Adam 1e-4 by default); wrapped for loss scaling under float16."""
        super().compile(optimizer=None, **kwargs)  # no unused default optimizer (PITFALLS.md)
        g_optimizer = g_optimizer or keras.optimizers.Adam(1e-4)
        d_optimizer = d_optimizer or keras.optimizers.Adam(1e-4)
        if keras.config.dtype_policy().name == "mixed_float16":
            g_optimizer, d_optimizer = _loss_scaled(g_optimizer), _loss_scaled(d_optimizer)
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer

    def named_optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """Every optimizer this model trains with (the trainer checkpoints exactly these)."""
        return {"g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

    def build_optimizers(self) -> None:
        """Create optimizer slots now (needed before a custom step runs under tf.distribute)."""
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    def begin_step(self, step: int):
        """Called before step `step`; returns a key naming the phase (one traced step each)."""
        return None

    def apply_gradients(self, optimizer, tape, loss, variables) -> None:
        """Differentiate `loss` on `tape` and update `variables`. Under mixed_float16 the
        gradients are of the loss-scaled loss (the optimizer unscales them)."""
        scale = optimizer.scale_loss(keras.ops.ones_like(loss))  # 1, or the dynamic loss scale
        grads = tape.gradient(loss, variables, output_gradients=scale)
        optimizer.apply_gradients(zip(grads, variables))

    def finalize_variable_values(self) -> None:
        """End of training: optimizers with `use_ema=True` replace the weights they trained by
        their moving averages (what `fit` does for single-optimizer models)."""
        self.g_optimizer.finalize_variable_values(self.generator.trainable_variables)
        self.d_optimizer.finalize_variable_values(self.discriminator.trainable_variables)

    def fit(self, *args, callbacks=None, **kwargs):
        """`keras.Model.fit`, stepping through the same phases as `python -m train` does.

        Raises:
            ValueError: `steps_per_execution` is not 1 (a phase can only change between steps).
        """
        if self.steps_per_execution != 1:
            raise ValueError(f"{type(self).__name__}.fit needs compile(steps_per_execution=1): its "
                             "training phase is chosen before every step")
        history = super().fit(*args, callbacks=[*(callbacks or []), _PhaseSwitch()], **kwargs)
        self.finalize_variable_values()
        return history

    def get_config(self):
        return {**super().get_config(),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator)}

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)  # deserializing empties nested dicts in place
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    def get_compile_config(self):
        return {name: keras.saving.serialize_keras_object(opt) for name, opt in self.named_optimizers().items()}

    def compile_from_config(self, config):
        self.compile(**{k: keras.saving.deserialize_keras_object(v) for k, v in config.items()})
        self.build_optimizers()
