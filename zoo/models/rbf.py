"""An RBF network: `zoo.layers.RBF` units, then a linear (Dense) output layer.

Regression (squared error) or classification (softmax cross-entropy). The model owns its
steps; losses are per-example values reduced with `global_mean`, so logs are true means and
1 replica equals N replicas.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.errors import UserError
from zoo.layers.rbf import RBF
from zoo.models.losses import global_mean

TASKS = ("regression", "classification")


@keras.saving.register_keras_serializable(package="zoo")
class RBFNetwork(keras.Model):
    """`Dense(outputs)(RBF(units)(x))`: an RBF network for regression or classification.

    Put the centres on the data before training with `model.rbf.adapt(x)` (k-means, widths
    from the centre spacing); then `fit` (or `python -m train rbf`) trains centres, widths and
    output weights together.

    Args:
        input_dim: features per sample (D).
        units: RBF centres.
        outputs: regression targets per sample, or classes.
        task: "regression" (mean squared error) or "classification" (softmax cross-entropy on
            logits; targets are integer class ids).
        kernel: the RBF kernel, "gaussian" or "inverse_multiquadric".
        class_names: names of the classes (classification), in id order; default "0", "1", ...

    Call arguments:
        inputs: `(B, D)` samples; returns `(B, outputs)` values or logits, float32.

    Example:
    >>> model = RBFNetwork(1, 16, 1)
    >>> _ = model.rbf.adapt(x)  # doctest: +SKIP
    >>> model.compile(keras.optimizers.Adam(0.01))
    >>> model.fit(x, y, epochs=10)  # doctest: +SKIP
    """

    def __init__(self, input_dim: int, units: int, outputs: int = 1, task: str = "regression",
                 kernel: str = "gaussian", class_names: list[str] | None = None, **kwargs):
        super().__init__(**kwargs)
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if task == "classification" and outputs < 2:
            raise ValueError(f"a classifier needs at least 2 outputs, got {outputs}")
        names = [str(i) for i in range(outputs)] if class_names is None else [str(n) for n in class_names]
        if task == "classification" and len(names) != outputs:
            raise ValueError(f"{len(names)} class names for {outputs} outputs")
        self.input_dim, self.units, self.outputs = input_dim, units, outputs
        self.task, self.kernel, self.class_names = task, kernel, names
        self.rbf = RBF(units, kernel=kernel, name="rbf")
        self.head = keras.layers.Dense(outputs, dtype="float32", name="head")  # float32 values / logits
        self.build((None, input_dim))

    @property
    def num_classes(self) -> int:
        return self.outputs if self.task == "classification" else 0

    def build(self, input_shape):
        self.rbf.build(input_shape)
        self.head.build((*input_shape[:-1], self.units))
        self.built = True

    def call(self, inputs, training=False):
        return self.head(self.rbf(inputs))  # (B, outputs)

    def _per_example(self, x, y, training: bool) -> dict:
        """Per-example loss (`mse` or `cross_entropy`; not `loss`, the name of compile()'s own
        tracker) and, to classify, `accuracy` (1 when right), `(B,)` each."""
        out = self(x, training=training)
        if self.task == "regression":
            y = ops.reshape(ops.cast(y, "float32"), ops.shape(out))
            return {"mse": ops.mean(ops.square(out - y), axis=-1)}
        y = ops.cast(ops.reshape(y, (-1,)), "int32")
        loss = keras.losses.sparse_categorical_crossentropy(y, out, from_logits=True)
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(out, axis=-1), "int32"), y), "float32")
        return {"cross_entropy": loss, "accuracy": correct}

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            per_example = self._per_example(x, y, training=True)
            logs = {name: global_mean(value) for name, value in per_example.items()}
            loss = logs["mse" if self.task == "regression" else "cross_entropy"]
        scale = self.optimizer.scale_loss(ops.ones_like(loss))  # 1, or the float16 loss scale
        grads = tape.gradient(loss, self.trainable_variables, output_gradients=scale)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return logs

    def test_step(self, data):
        x, y = data[0], data[1]
        return {name: global_mean(value) for name, value in self._per_example(x, y, training=False).items()}

    def predict_values(self, samples: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """`(N, outputs)` float32 predictions (values, or class probabilities) of `(N, D)` samples."""
        samples = self._check_samples(samples)
        out = np.concatenate([ops.convert_to_numpy(self(samples[i:i + batch_size]))
                              for i in range(0, len(samples), batch_size)] or [np.zeros((0, self.outputs))])
        if self.task == "classification":
            out = ops.convert_to_numpy(ops.softmax(out, axis=-1))
        return out.astype(np.float32)

    def predict_samples(self, samples: np.ndarray) -> list[dict]:
        """One dict per sample for `python -m zoo predict`: a classifier gives `label` (the class
        name) and `probabilities` ({name: p}); a regressor gives `label` (the value as text,
        comma-separated when there are several outputs), `value` (the floats) and no
        probabilities."""
        out = self.predict_values(samples)
        if self.task == "classification":
            return [{"label": self.class_names[int(np.argmax(p))],
                     "probabilities": {n: float(v) for n, v in zip(self.class_names, p)}} for p in out]
        return [{"label": ",".join(f"{v:.6g}" for v in row), "value": [float(v) for v in row],
                 "probabilities": {}} for row in out]

    def _check_samples(self, samples) -> np.ndarray:
        samples = np.asarray(samples, np.float32)
        if samples.ndim != 2 or samples.shape[1] != self.input_dim:
            got = samples.shape[1] if samples.ndim == 2 else f"shape {samples.shape}"
            raise UserError(f"this RBF network takes samples of {self.input_dim} value(s), got {got}")
        return samples

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "units": self.units,
                "outputs": self.outputs, "task": self.task, "kernel": self.kernel,
                "class_names": self.class_names}

