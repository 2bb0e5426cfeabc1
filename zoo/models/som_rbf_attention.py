"""A hybrid image classifier: a self-organizing map of image rows, RBF units, attention over rows.

An image `(H, W, C)` is read as a sequence of H rows of `W * C` values. Each stage learns its own way:

1. `SelfOrganizingMap` (zoo.layers.som): a grid of prototype rows, trained by the batch-SOM rule
   (never by gradients: its prototypes are not trainable and enter the forward pass through
   `stop_gradient`). `fit_som` runs Kohonen's batch map on all training rows before gradient
   training; every `train_step` then applies one more batch-SOM update on the batch's rows at a
   small, decaying rate, with the two sums of the rule summed over replicas (as `zoo.models.SOM`).
   Each row `r_t` becomes its similarities to the U map units, `exp(-|r_t - w_u|^2 / (2 s^2))`,
   differentiable with respect to the image; s is the rows' mean distance to their best unit
   (times `similarity_scale`), fixed when `fit_som` ends.
2. `RBF` (zoo.layers.rbf) on `[similarities, position_weight * t / (H - 1)]`: a unit fires for a
   kind of row at a height. Centres are placed by k-means on these features of training rows
   (`adapt_rbf`, widths from the centre spacing), then trained by gradients.
3. `AttentionPooling` (zoo.layers.attention) over the H rows, then the classifier (an optional
   ReLU layer and a Dense softmax): trained by gradients (Adam, cross-entropy). The attention weights say which rows the decision
   rests on (`predict_proba`, `predict_images`, `zoo.visualize.row_attention_image`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.errors import UserError
from zoo.layers.attention import AttentionPooling
from zoo.layers.dropout import stateless_dropout as _dropout, step_seed
from zoo.layers.rbf import RBF
from zoo.layers.som import SelfOrganizingMap, exponential_decay, squared_distances
from zoo.models.losses import global_mean

_CHUNK_ROWS = 1 << 16  # rows per chunk of the whole-data batch-SOM sums


@keras.saving.register_keras_serializable(package="zoo")
class SomRbfAttentionClassifier(keras.Model):
    """Images -> class logits through a SOM of rows, RBF units and attention pooling over rows.

    Before training: `fit_som(images)` (batch SOM on the rows), then `adapt_rbf(images)`
    (k-means centres); then `compile(optimizer)` and train (`python -m train som_rbf_attention`).

    Args:
        class_names: the name of each class, in id order (at least 2).
        image_shape: `(H, W, C)` of the images; rows are the H axis.
        som_grid: `(rows, cols)` of the map of image rows.
        rbf_units: RBF centres (features per row after the RBF layer).
        attention_units: size of the attention projection; None: `rbf_units`.
        position_weight: scale of the row-position feature appended to the similarities (0:
            the RBF sees no position, only what a row looks like).
        similarity_scale: the similarity width s is this times the rows' mean distance to their
            best-matching unit.
        context_rows: rows on each side whose similarities join a row's features (0: the row
            alone): the RBF then sees a strip of `2 * context_rows + 1` rows centred on the row
            (zeros beyond the image), still one sequence element per row.
        similarity: "gaussian": `exp(-d^2 / (2 s^2))` per unit; "softmax": the same exponents
            normalised over the units (`softmax_u(-d^2 / (2 s^2))`, the layer's "similarities"
            output with temperature `2 s^2`).
        hidden_units: size of a ReLU layer between the pooled features and the softmax (0: none).
        heads: attention poolings side by side, each with its own query; their pooled features
            are concatenated and their row weights averaged (`predict_proba`).
        dropout: dropout rate on the pooled features (and the hidden layer) while training.
        som_sigma_start, som_sigma_end: neighbourhood radius of the batch-SOM updates in
            `train_step` (grid units), decaying exponentially over `decay_steps`.
        som_learning_rate_start, som_learning_rate_end: rate of those updates (0: the map stays
            as `fit_som` left it).
        decay_steps: steps over which the train-step SOM schedules decay.

    Call arguments:
        inputs: float `(B, H, W, C)` (or `(B, H, W)`) images in [0, 1]; returns float32 `(B, K)`
            logits, differentiable with respect to the images.

    Example:
    >>> model = SomRbfAttentionClassifier([str(d) for d in range(10)])
    >>> model.fit_som(x_train, steps=10)  # doctest: +SKIP
    >>> model.adapt_rbf(x_train)  # doctest: +SKIP
    >>> model.compile(keras.optimizers.Adam(3e-3))
    >>> model.fit(x_train, y_train, batch_size=32, epochs=20)  # doctest: +SKIP
    >>> probabilities, row_weights = model.predict_proba(x_test[:4])  # doctest: +SKIP
    """

    def __init__(self, class_names: Sequence[str], image_shape: Sequence[int] = (28, 28, 1),
                 som_grid: Sequence[int] = (8, 8), rbf_units: int = 64, attention_units: int | None = 32,
                 position_weight: float = 1.0, similarity_scale: float = 1.0, hidden_units: int = 0,
                 heads: int = 1, dropout: float = 0.2, context_rows: int = 0, similarity: str = "gaussian",
                 som_sigma_start: float = 1.0, som_sigma_end: float = 0.5, som_learning_rate_start: float = 0.05,
                 som_learning_rate_end: float = 0.005, decay_steps: int = 1000, **kwargs):
        super().__init__(**kwargs)
        if len(class_names) < 2:
            raise ValueError(f"SomRbfAttentionClassifier needs at least 2 classes, got {list(class_names)}")
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"image_shape must be (H, W, C) of positive sizes, got {tuple(image_shape)}")
        if not (0 <= som_learning_rate_end <= 1 and 0 <= som_learning_rate_start <= 1):
            raise ValueError("SOM learning rates must be in [0, 1]")
        self.class_names = [str(name) for name in class_names]
        self.image_shape = tuple(int(v) for v in image_shape)
        self.som_grid = tuple(int(v) for v in som_grid)
        self.rbf_units, self.attention_units = int(rbf_units), attention_units
        self.position_weight, self.similarity_scale = float(position_weight), float(similarity_scale)
        self.hidden_units, self.dropout, self.decay_steps = int(hidden_units), float(dropout), int(decay_steps)
        self.heads = int(heads)
        if self.heads < 1:
            raise ValueError(f"heads must be at least 1, got {heads}")
        self.context_rows = int(context_rows)
        if not 0 <= self.context_rows < self.image_shape[0]:
            raise ValueError(f"context_rows must be in 0..{self.image_shape[0] - 1} (rows of the image), "
                             f"got {context_rows}")
        if similarity not in ("gaussian", "softmax"):
            raise ValueError(f"similarity must be 'gaussian' or 'softmax', got {similarity!r}")
        self.similarity = similarity
        self.som_sigma_start, self.som_sigma_end = float(som_sigma_start), float(som_sigma_end)
        self.som_learning_rate_start = float(som_learning_rate_start)
        self.som_learning_rate_end = float(som_learning_rate_end)
        self.som = SelfOrganizingMap(*self.som_grid, name="som")
        self.rbf = RBF(self.rbf_units, name="rbf")
        self.poolings = [AttentionPooling(attention_units, return_attention=True,
                                          name="attention" if i == 0 else f"attention_{i}") for i in range(self.heads)]
        self.hidden = (keras.layers.Dense(self.hidden_units, activation="relu", name="hidden")
                       if self.hidden_units else None)
        self.classifier = keras.layers.Dense(len(self.class_names), dtype="float32", name="classifier")
        self.similarity_width = self.add_weight(shape=(), initializer="ones", trainable=False,
                                                name="similarity_width", aggregation="only_first_replica")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.build()  # weights exist from the start: steps never go through __call__

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def pooled_features(self) -> int:
        """Features the attention pooling gives the classifier: `heads * rbf_units`."""
        return self.heads * self.rbf_units

    @property
    def row_size(self) -> int:
        """Values per image row: `W * C`."""
        return self.image_shape[1] * self.image_shape[2]

    def build(self, input_shape=None):
        height = self.image_shape[0]
        self.som.build((None, self.row_size))
        self.rbf.build((None, height, self.som.units * (2 * self.context_rows + 1) + 1))
        for pooling in self.poolings:
            pooling.build((None, height, self.rbf_units))
        if self.hidden is not None:
            self.hidden.build((None, self.pooled_features))
        self.classifier.build((None, self.hidden_units or self.pooled_features))
        self.built = True

    # ------------------------------------------------------------------ forward

    def rows(self, images):
        """`(B, H, W * C)` float32 rows of `(B, H, W, C)` or `(B, H, W)` images."""
        return ops.reshape(ops.cast(images, "float32"), (-1, self.image_shape[0], self.row_size))

    def row_similarities(self, images):
        """`(B, H, U)` similarities `exp(-d^2 / (2 s^2))` of every row to every map unit; no
        gradient reaches the prototypes (the map learns by its own rule)."""
        rows = self.rows(images)
        d2 = squared_distances(ops.reshape(rows, (-1, self.row_size)), ops.stop_gradient(self.som.prototypes))
        width = ops.stop_gradient(ops.cast(self.similarity_width, "float32"))
        exponents = -d2 / (2.0 * width * width)
        similarities = ops.softmax(exponents, axis=-1) if self.similarity == "softmax" else ops.exp(exponents)
        return ops.reshape(similarities, (-1, self.image_shape[0], self.som.units))

    def row_features(self, images):
        """`(B, H, U * (2 c + 1) + 1)`: the similarities of the row and of its `c = context_rows`
        neighbours on each side (rows t - c .. t + c, zeros beyond the image) and the row's height
        `position_weight * t / (H - 1)`, what the RBF layer reads."""
        similarities = self.row_similarities(images)
        height, c = self.image_shape[0], self.context_rows
        if c:
            padded = ops.pad(similarities, [[0, 0], [c, c], [0, 0]])  # (B, H + 2c, U)
            similarities = ops.concatenate([padded[:, k:k + height] for k in range(2 * c + 1)], axis=-1)
        position = np.linspace(0.0, 1.0, height, dtype=np.float32) * np.float32(self.position_weight)
        position = ops.ones_like(similarities[..., :1]) * ops.convert_to_tensor(position[:, None])  # (B, H, 1)
        return ops.concatenate([similarities, position], axis=-1)

    def _forward(self, images, seed=None):
        """`(float32 logits (B, K), attention (B, H) averaged over heads, pooled (B, heads * F))`;
        dropout when `seed` is given."""
        hidden = self.rbf(self.row_features(images))  # (B, H, F)
        heads = [pooling(hidden) for pooling in self.poolings]  # [(B, F), (B, H)] per head
        pooled = heads[0][0] if self.heads == 1 else ops.concatenate([p for p, _ in heads], axis=-1)
        weights = heads[0][1] if self.heads == 1 else ops.mean(ops.stack([w for _, w in heads]), axis=0)
        x = pooled if seed is None else _dropout(pooled, self.dropout, seed)
        if self.hidden is not None:
            x = self.hidden(x)  # (B, hidden_units)
            x = x if seed is None else _dropout(x, self.dropout, seed + 1)
        return ops.cast(self.classifier(x), "float32"), weights, pooled

    def call(self, inputs, training=False):
        """Logits of images in [0, 1]; dropout belongs to `train_step` (stateless seeds)."""
        return self._forward(inputs)[0]

    # ------------------------------------------------------------------ steps

    def som_schedules(self, step):
        """`(sigma, learning_rate)` of the train-step batch-SOM update at `step`."""
        progress = ops.cast(step, "float32") / float(max(self.decay_steps - 1, 1))
        rate_end = max(self.som_learning_rate_end, 1e-12) if self.som_learning_rate_start > 0 else 0.0
        rate = (exponential_decay(self.som_learning_rate_start, rate_end, progress)
                if self.som_learning_rate_start > 0 else ops.zeros((), "float32"))
        return exponential_decay(self.som_sigma_start, self.som_sigma_end, progress), rate

    def som_update(self, images, step):
        """One batch-SOM update on the rows of this replica's images, the rule's two sums
        summed over replicas (so N replicas move the map as 1 does). Returns the rows' distances
        to their best unit before the update, `(B * H,)`."""
        rows = ops.reshape(self.rows(images), (-1, self.row_size))
        sigma, rate = self.som_schedules(step)
        best, _, distance, _ = self.som.match(rows)
        numerator, denominator = self.som.batch_statistics(rows, sigma, best)
        context = tf.distribute.get_replica_context()
        if context is not None:  # None only in a cross-replica context, where nothing is split
            numerator, denominator = context.all_reduce("SUM", [numerator, denominator])
        if self.som_learning_rate_start > 0:
            self.som.apply_batch_update(numerator, denominator, rate)
        return distance

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def _update(self, y, logits):
        self.loss_tracker.update_state(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
        self.accuracy_tracker.update_state(y, logits)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    def train_step(self, data):
        """A gradient step on the RBF, attention and classifier, then a batch-SOM update."""
        images, y = data[0], data[1]
        with tf.GradientTape() as tape:
            logits, _, _ = self._forward(images, seed=step_seed(self.optimizer.iterations))
            loss = global_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        distance = self.som_update(images, self.optimizer.iterations - 1)
        logs = self._update(y, logits)
        logs["som_quantization_error"] = global_mean(distance)  # of the map before the update
        return logs

    def test_step(self, data):
        images, y = data[0], data[1]
        logits, _, _ = self._forward(images)
        return self._update(y, logits)

    # ------------------------------------------------------------------ before training

    def image_rows(self, images) -> np.ndarray:
        """`(N * H, W * C)` float32 rows of images checked against `image_shape` (NumPy)."""
        return self.check_images(images).reshape(-1, self.row_size)

    def fit_som(self, images, steps: int = 10, sigma_start: float | None = None, sigma_end: float = 1.0,
                init: str = "pca", seed: int = 0) -> dict[str, float]:
        """Kohonen's batch map on every row of `images`: initialise the prototypes (`init`), then
        `steps` updates with learning rate 1 on all rows, sigma decaying from `sigma_start`
        (default half the grid's longer side) to `sigma_end`; then fix the similarity width.
        Returns the map's quantization and topographic errors on the rows."""
        rows = self.image_rows(images)
        self.som.initialize(rows, init, seed)
        self.som.train_batch_map(rows, steps, sigma_start, sigma_end, chunk_size=_CHUNK_ROWS)
        errors = self.som.errors(rows[:200_000])
        width = max(errors["quantization_error"], 1e-3) * self.similarity_scale
        self.similarity_width.assign(np.float32(width))
        return errors

    def adapt_rbf(self, images, max_samples: int = 10_000, width_scale: float = 1.0, seed: int = 0) -> dict:
        """Place the RBF centres by k-means on the row features (`row_features`) of `images`
        and set their widths from the centre spacing (`RBF.adapt`); call after `fit_som`."""
        images = self.check_images(images)
        return self.rbf.adapt(images, feature_model=self.row_features, max_samples=max_samples,
                              width_scale=width_scale, seed=seed)

    # ------------------------------------------------------------------ inference

    def check_images(self, images) -> np.ndarray:
        """Float32 `(N, H, W, C)` from `(N, H, W, C)` or, with one channel, `(N, H, W)`.

        Raises:
            UserError: the images do not have the model's shape.
        """
        x = np.asarray(images, np.float32)
        if x.ndim == 3 and self.image_shape[2] == 1:
            x = x[..., None]
        if x.ndim != 4 or tuple(x.shape[1:]) != self.image_shape:
            height, width, channels = self.image_shape
            raise UserError(f"this model classifies {height}x{width} images with {channels} channel(s), "
                            f"got an array of shape {x.shape}: resize the images to {height}x{width}")
        return x

    @tf.function(reduce_retracing=True)
    def _infer(self, images):
        logits, weights, pooled = self._forward(images)
        return ops.softmax(logits, axis=-1), weights, pooled

    def _batched(self, images, batch_size: int) -> list:
        x = self.check_images(images)
        return [self._infer(tf.constant(x[i:i + batch_size])) for i in range(0, len(x), batch_size)]

    def predict_proba(self, images, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """`(probabilities (N, K), row attention (N, H))` float32 NumPy arrays of float images in [0, 1]."""
        parts = self._batched(images, batch_size)
        if not parts:
            return np.zeros((0, self.num_classes), np.float32), np.zeros((0, self.image_shape[0]), np.float32)
        return np.concatenate([p[0].numpy() for p in parts]), np.concatenate([p[1].numpy() for p in parts])

    def represent(self, images, batch_size: int = 512) -> np.ndarray:
        """`(N, heads * rbf_units)` float32: the attention-pooled features the classifier reads."""
        parts = self._batched(images, batch_size)
        return np.concatenate([p[2].numpy() for p in parts]) if parts else np.zeros((0, self.pooled_features), np.float32)

    def predict_images(self, images, top_rows: int = 3) -> list[dict]:
        """For `python -m zoo predict`: uint8 `(N, H, W, C)` images -> one dict each with `label`,
        `probabilities` ({class: p}), `rows` (the `top_rows` rows with the most attention, as
        `(row index, weight)`) and `attention` (the same as `("row I", weight)`)."""
        probabilities, weights = self.predict_proba(np.asarray(images, np.float32) / 255.0)
        results = []
        for p, row in zip(probabilities, weights):
            top = [(int(i), round(float(row[i]), 4)) for i in np.argsort(-row, kind="stable")[:top_rows]]
            results.append({"label": self.class_names[int(np.argmax(p))],
                            "probabilities": {n: float(v) for n, v in zip(self.class_names, p)},
                            "rows": top, "attention": [(f"row {i}", w) for i, w in top]})
        return results

    def som_picture(self, scale: int = 3, strip: int = 6) -> np.ndarray:
        """The SOM's map of rows: each unit's prototype row drawn as a strip `strip` pixels tall,
        in its grid place, `scale` x enlarged; uint8 `(h, w, 3)`."""
        from zoo.visualize import image_grid

        width, channels = self.image_shape[1], self.image_shape[2]
        w = np.clip(ops.convert_to_numpy(self.som.prototypes), 0.0, 1.0).reshape(-1, 1, width, channels)
        cells = np.repeat(np.repeat(np.repeat(w, strip, axis=1), scale, axis=1), scale, axis=2)
        cells = cells if channels == 3 else np.repeat(cells[..., :1], 3, axis=-1)
        return image_grid(cells, cols=self.som_grid[1], gutter=2, background=160)

    def get_config(self):
        return {**super().get_config(), "class_names": self.class_names, "image_shape": list(self.image_shape),
                "som_grid": list(self.som_grid), "rbf_units": self.rbf_units,
                "attention_units": self.attention_units, "position_weight": self.position_weight,
                "similarity_scale": self.similarity_scale, "hidden_units": self.hidden_units, "heads": self.heads,
                "dropout": self.dropout, "context_rows": self.context_rows, "similarity": self.similarity,
                "som_sigma_start": self.som_sigma_start, "som_sigma_end": self.som_sigma_end,
                "som_learning_rate_start": self.som_learning_rate_start,
                "som_learning_rate_end": self.som_learning_rate_end, "decay_steps": self.decay_steps}
