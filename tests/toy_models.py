"""Small models the trainer tests use: they know nothing of zoo's model families."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from train.config import TrainConfig
from train.recipes import Recipe
from zoo.models import global_mean


@dataclass(frozen=True)
class ToyConfig(TrainConfig):
    precision: str = "float32"


class TrackerClassifier(keras.Model):
    """A keras.io-style classifier: it reports `self.*_tracker.result()` from its steps."""

    def __init__(self, classes: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.out = keras.layers.Dense(classes)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.acc_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def call(self, x, training=False):
        return self.out(self.hidden(x))

    @property
    def metrics(self):
        return [self.loss_tracker, self.acc_tracker]

    def _forward(self, x, y, training):
        logits = self(x, training=training)
        per_example = keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)
        return logits, per_example

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits, per_example = self._forward(x, y, True)
            loss = global_mean(per_example)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        self.loss_tracker.update_state(per_example)
        self.acc_tracker.update_state(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.acc_tracker.result(),
                "global_loss": loss}  # the last is the second kind of the metric contract

    def test_step(self, data):
        x, y = data
        logits, per_example = self._forward(x, y, False)
        self.loss_tracker.update_state(per_example)
        self.acc_tracker.update_state(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.acc_tracker.result(),
                "global_loss": global_mean(per_example)}


def classifier_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")
    return x, y


def _build_classifier(config):
    model = TrackerClassifier()
    model.compile(keras.optimizers.SGD(0.1))
    model(np.zeros((1, 4), "float32"))
    train_data = tf.data.Dataset.from_tensor_slices(classifier_data(64, 0)).repeat().batch(config.batch_size)
    val_data = tf.data.Dataset.from_tensor_slices(classifier_data(17, 1)).batch(config.batch_size)  # 8, 8, 1
    from train.trainer import Built

    return Built(model, train_data, val_data)


TOY_CLASSIFIER = Recipe("toy_classifier", "a classifier with loss and accuracy trackers", ToyConfig,
                        {"default": ToyConfig()}, _build_classifier)
