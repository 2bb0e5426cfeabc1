"""The trainer on a model it knows nothing about: a plain compiled Keras model with batch norm."""

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from train.config import TrainConfig
from train.trainer import Built, Recipe, optimizers, train


@dataclass(frozen=True)
class ToyConfig(TrainConfig):
    precision: str = "float32"


def _build(config):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9), "mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32") + 3.0
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).repeat().batch(config.batch_size)
    return Built(model, data)


TOY = Recipe("toy", "a Dense + BatchNormalization regression", ToyConfig, {"default": ToyConfig()}, _build)


def test_checkpoint_holds_non_trainable_weights_and_ema_is_applied(tmp_path):
    config = ToyConfig(epochs=1, steps_per_epoch=5, batch_size=8, log_every=1)
    model = train(TOY, config, tmp_path / "run", strategy="one_device", verbose=False)
    assert list(optimizers(model)) == ["optimizer"]
    moving_mean = model.layers[1].moving_mean.numpy()
    assert np.abs(moving_mean).max() > 0  # batch statistics were tracked
    # The checkpoint restores every variable, batch-norm statistics included, into a fresh model.
    fresh = _build(config).model
    checkpoint = tf.train.Checkpoint(model_variables=list(fresh.variables))
    checkpoint.restore(tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))).expect_partial()
    np.testing.assert_allclose(fresh.layers[1].moving_mean.numpy(), moving_mean)
    # The final model holds the optimizer's moving average, as `fit` would leave it.
    average = model.optimizer._model_variables_moving_average
    for weight, ema in zip(model.trainable_variables, average):
        np.testing.assert_allclose(np.asarray(weight), np.asarray(ema))
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(np.asarray(saved(x)), np.asarray(model(x)), rtol=1e-6)
