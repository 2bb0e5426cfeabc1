"""SOM: a self-organizing map trained by the batch-SOM rule, one update per training step.

The map itself is `zoo.layers.SelfOrganizingMap`; this model adds the step counter that
drives the radius and learning-rate schedules, the sum of the batch statistics over replicas
(so 2 replicas give exactly the map of 1 replica on the same global batch), the error metrics
as true global means, the labels of the units, and `predict_samples` for `python -m zoo predict`.
It has no optimizer: gradients train nothing here.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from zoo.errors import UserError
from zoo.layers.som import SelfOrganizingMap, exponential_decay
from zoo.models.losses import global_count, global_mean


def _features(data):
    """`(x, labels or None)` of a batch `x`, `(x,)`, `(x, y)` or `(x, y, weights)`; images are
    flattened to `(N, D)` float32."""
    x, y = (data[0], data[1] if len(data) > 1 else None) if isinstance(data, tuple | list) else (data, None)
    x = ops.cast(x, "float32")
    return ops.reshape(x, (ops.shape(x)[0], -1)), y


@keras.saving.register_keras_serializable(package="zoo")
class SOM(keras.Model):
    """A self-organizing map that `python -m train som`, `fit` and `python -m zoo predict` use.

    Each training step is one batch-SOM update on the (global) batch, with
    `sigma(t) = sigma_start * (sigma_end / sigma_start) ** p` and
    `lr(t) = learning_rate_start * (learning_rate_end / learning_rate_start) ** p`, where
    `p = min(t / (decay_steps - 1), 1)` and t counts steps (a weight saved with the model, so
    resuming continues the schedules). With the whole data set as the batch and `lr = 1`
    every step is Kohonen's batch SOM; with mini-batches let the rate decay (e.g. to 0.05).

    Args:
        rows, cols, topology, neighbourhood: the grid (`SelfOrganizingMap`).
        sigma_start: neighbourhood radius at the first step, in grid units; default
            `max(rows, cols) / 2`.
        sigma_end: radius from step `decay_steps - 1` on.
        learning_rate_start, learning_rate_end: the update's rate at the first and last step.
        decay_steps: steps over which both decay (the length of training).
        class_names: names of the data's labels, if known; `label_units` then gives every
            unit the majority label of the samples it wins, shown by `predict_samples`.
        image_shape: `(H, W, C)` when the samples are flattened images (to draw prototypes).

    Example:
    >>> som = SOM(10, 10, decay_steps=20)
    >>> som.initialize(x, "pca")  # doctest: +SKIP
    >>> som.compile()
    >>> som.fit(x, batch_size=len(x), epochs=20)  # doctest: +SKIP
    >>> som.predict_samples(x[:2])  # doctest: +SKIP
    """

    def __init__(self, rows: int, cols: int, topology: str = "rectangular", neighbourhood: str = "gaussian",
                 sigma_start: float | None = None, sigma_end: float = 1.0, learning_rate_start: float = 1.0,
                 learning_rate_end: float = 1.0, decay_steps: int = 1000, class_names: Sequence[str] | None = None,
                 image_shape: Sequence[int] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.som = SelfOrganizingMap(rows, cols, topology, neighbourhood, output_mode="all", name="map")
        self.rows, self.cols, self.topology, self.neighbourhood = self.som.rows, self.som.cols, topology, neighbourhood
        self.sigma_start = float(sigma_start if sigma_start is not None else max(rows, cols) / 2)
        self.sigma_end, self.decay_steps = float(sigma_end), int(decay_steps)
        self.learning_rate_start, self.learning_rate_end = float(learning_rate_start), float(learning_rate_end)
        if min(self.sigma_start, self.sigma_end, self.learning_rate_start, self.learning_rate_end) <= 0:
            raise ValueError("SOM radii and learning rates must be positive")
        if int(decay_steps) < 1:
            raise ValueError(f"SOM decay_steps must be at least 1, got {decay_steps}")
        self.class_names = None if class_names is None else [str(name) for name in class_names]
        self.image_shape = None if image_shape is None else tuple(int(v) for v in image_shape)
        self.steps_done = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                          name="steps_done", aggregation="only_first_replica")
        self.label_counts = None if self.class_names is None else self.add_weight(
            shape=(self.som.units, len(self.class_names)), initializer="zeros", trainable=False,
            name="label_counts", aggregation="only_first_replica")  # (U, K) samples per unit and label

    def build(self, input_shape):
        if not self.som.built:  # `initialize` builds the map with its first prototypes
            self.som.build((None, int(np.prod(input_shape[1:]))))

    def call(self, inputs):
        """`{"index" (N,), "coordinates" (N, 2) grid row/col, "distance" (N,), "distances" (N, U)}`."""
        return self.som(_features(inputs)[0])

    def compile(self, **kwargs):
        """Compile without an optimizer: the batch-SOM rule needs none."""
        super().compile(optimizer=None, **kwargs)

    def get_compile_config(self):
        return {}

    def compile_from_config(self, config):
        self.compile()

    # ------------------------------------------------------------------ schedules and steps

    def schedules(self, step=None) -> tuple:
        """`(sigma, learning_rate)` at `step` (default: the next step)."""
        step = self.steps_done if step is None else step
        progress = ops.cast(step, "float32") / float(max(self.decay_steps - 1, 1))
        return (exponential_decay(self.sigma_start, self.sigma_end, progress),
                exponential_decay(self.learning_rate_start, self.learning_rate_end, progress))

    def _errors(self, best, second, distance, count=None) -> dict:
        """Per-example QE and TE as this replica's shares of the global means (`count`: the
        global number of examples, if known)."""
        count = global_count(distance) if count is None else count
        wrong = 1.0 - ops.cast(self.som.adjacent(best, second), "float32")
        return {"quantization_error": global_mean(distance, count), "topographic_error": global_mean(wrong, count)}

    # Neither step has Python control flow on tensors: AutoGraph would only rewrite their source
    # (and that of every zoo and Keras function they call) at trace time, most of the first
    # step's time (2.75 -> 0.31 s on 2 busy cores, docs/speed.md), so it leaves them as they are.
    @tf.autograph.experimental.do_not_convert
    def train_step(self, data):
        """One batch-SOM update; numerators and denominators are summed over replicas."""
        x, _ = _features(data)
        sigma, learning_rate = self.schedules()
        best, second, distance, _ = self.som.match(x)
        numerator, denominator = self.som.batch_statistics(x, sigma, best)
        context = tf.distribute.get_replica_context()
        if context is not None:  # None only in a cross-replica context, where nothing is split
            numerator, denominator = context.all_reduce("SUM", [numerator, denominator])
        count = global_count(distance)
        logs = self._errors(best, second, distance, count)  # of the map before this update
        self.som.apply_batch_update(numerator, denominator, learning_rate)
        self.steps_done.assign_add(1)
        ones = ops.ones_like(distance)  # a schedule value as replica shares, so that they sum to it
        logs.update(sigma=global_mean(ones * sigma, count), learning_rate=global_mean(ones * learning_rate, count))
        return logs

    @tf.autograph.experimental.do_not_convert
    def test_step(self, data):
        """Quantization and topographic error of the batch, as global-batch means."""
        best, second, distance, _ = self.som.match(_features(data)[0])
        return self._errors(best, second, distance)

    # ------------------------------------------------------------------ data-level methods

    def initialize(self, data, method: str = "pca", seed: int = 0) -> None:
        """Build the model and set the prototypes from `(N, ...)` data (`SelfOrganizingMap.initialize`)."""
        data = np.asarray(data, np.float32).reshape(len(data), -1)
        with keras.name_scope(self.name):  # as in `build`: the prototypes are `NAME/map/prototypes`
            self.som.initialize(data, method, seed)
        if not self.built:
            self.build((None, data.shape[1]))

    def label_units(self, data, labels) -> None:
        """Count, for every unit, the samples of each label it wins (the majority is its label)."""
        if self.label_counts is None:  # before the pass over the data
            raise ValueError("this SOM was made without class_names, so it keeps no labels")
        best = self.som.best_matching_units(np.asarray(data, np.float32).reshape(len(data), -1))[0]
        self._count_labels(best, labels)

    def _count_labels(self, best: np.ndarray, labels) -> None:
        """Set `label_counts` from the samples' best units `(N,)` and their labels `(N,)`."""
        if self.label_counts is None:
            raise ValueError("this SOM was made without class_names, so it keeps no labels")
        k = len(self.class_names)
        counts = np.bincount(best * k + np.asarray(labels, np.int64), minlength=self.som.units * k)
        self.label_counts.assign(counts.reshape(self.som.units, k).astype(np.float32))

    def unit_labels(self) -> np.ndarray | None:
        """`(U,)` majority label id of every unit, -1 where no labelled sample fell; None without labels."""
        if self.label_counts is None:
            return None
        counts = ops.convert_to_numpy(self.label_counts)
        return np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)

    def errors(self, data) -> dict[str, float]:
        """Quantization and topographic error over all of `data` (in chunks)."""
        return self.som.errors(np.asarray(data, np.float32).reshape(len(data), -1))

    def hit_map(self, data) -> np.ndarray:
        """`(rows, cols)` number of samples each unit wins."""
        return self.som.hit_map(np.asarray(data, np.float32).reshape(len(data), -1))

    def survey(self, data, labels=None) -> dict:
        """`errors`, `hit_map` and (with labels) `label_units` from one pass over `data`.

        Returns:
            `{"quantization_error": float, "topographic_error": float, "hits": (rows, cols) int64}`,
            the values those three methods give; the label counts are set when `labels` is given.
        """
        data = np.asarray(data, np.float32).reshape(len(data), -1)
        best, second, distance = self.som.best_matching_units(data)
        if labels is not None:
            self._count_labels(best, labels)
        adjacent = self.som.adjacent(best, second)
        return {"quantization_error": float(np.mean(distance, dtype=np.float64)),
                "topographic_error": float("nan") if self.som.units == 1 else float(1.0 - adjacent.mean()),
                "hits": np.bincount(best, minlength=self.som.units).reshape(self.rows, self.cols)}

    def predict_samples(self, samples) -> list[dict]:
        """Map samples to the grid: one dict per sample, for `python -m zoo predict`.

        Each dict: `label` (the unit's majority label, or "unit I" when labels are unknown),
        `probabilities` (the unit's label shares, when known), `position` [row, col], `unit`
        (index) and `distance` (Euclidean, to the unit's prototype).

        Raises:
            UserError: the samples do not have the model's number of values.
        """
        x = np.asarray(samples, np.float32)
        x = x.reshape(len(x), -1)
        dim = int(self.som.prototypes.shape[1])
        if x.shape[1] != dim:
            raise UserError(f"this SOM maps samples of {dim} values, got {x.shape[1]}: pass rows of {dim} "
                            "numbers (flattened images are height x width x channels values)")
        best, _, distance = self.som.best_matching_units(x)
        counts = None if self.label_counts is None else ops.convert_to_numpy(self.label_counts)
        return [self._describe(int(unit), float(d), counts) for unit, d in zip(best, distance)]

    def _describe(self, unit: int, distance: float, counts: np.ndarray | None) -> dict:
        result = {"label": f"unit {unit}", "position": [unit // self.cols, unit % self.cols],
                  "unit": unit, "distance": distance}
        if counts is not None and counts[unit].sum() > 0:
            shares = counts[unit] / counts[unit].sum()
            result["label"] = self.class_names[int(shares.argmax())]
            result["probabilities"] = {name: float(p) for name, p in zip(self.class_names, shares)}
        return result

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "cols": self.cols, "topology": self.topology,
                "neighbourhood": self.neighbourhood, "sigma_start": self.sigma_start, "sigma_end": self.sigma_end,
                "learning_rate_start": self.learning_rate_start, "learning_rate_end": self.learning_rate_end,
                "decay_steps": self.decay_steps, "class_names": self.class_names,
                "image_shape": None if self.image_shape is None else list(self.image_shape)}


# ----------------------------------------------------------------------------- pictures (NumPy)

# Ten distinct colours (Tableau 10) for the labels of a hit map.
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]], np.uint8)


def grid_picture(cells: np.ndarray, topology: str, cell: int = 12) -> np.ndarray:
    """`(rows, cols, C)` uint8 cell colours as a picture, `cell` pixels per unit; on a
    hexagonal grid odd rows are shifted right by half a cell, as the units are."""
    rows, cols, channels = cells.shape
    shift = cell // 2 if topology == "hexagonal" else 0
    picture = np.full((rows * cell, cols * cell + shift, channels), 255, np.uint8)
    for r in range(rows):
        left = shift if r % 2 else 0
        picture[r * cell:(r + 1) * cell, left:left + cols * cell] = np.repeat(cells[r], cell, axis=0)[None]
    return picture


def u_matrix_picture(model: SOM) -> np.ndarray:
    """The U-matrix in gray levels: dark = close neighbours (a cluster), light = a border."""
    u = model.som.u_matrix()
    scaled = (u - u.min()) / max(float(u.max() - u.min()), 1e-12)
    return grid_picture(np.round(255 * scaled).astype(np.uint8)[..., None], model.topology)


def hit_map_picture(model: SOM, hits: np.ndarray) -> np.ndarray:
    """Each unit coloured by its majority label (PALETTE, label i -> colour i mod 10; gray
    without labels), paler the fewer samples it wins; white: no sample."""
    labels = model.unit_labels()
    labels = np.full(model.som.units, -1) if labels is None else labels
    colours = np.where((labels >= 0)[:, None], PALETTE[np.maximum(labels, 0) % len(PALETTE)], 64).astype(np.float32)
    hits = hits.reshape(-1)
    strength = np.where(hits > 0, 0.4 + 0.6 * np.sqrt(hits / max(int(hits.max()), 1)), 0.0)  # (U,)
    cells = 255 - strength[:, None] * (255 - colours)
    return grid_picture(np.round(cells).astype(np.uint8).reshape(model.rows, model.cols, 3), model.topology)


def prototypes_picture(model: SOM) -> np.ndarray:
    """The prototypes as a grid: images when the model knows `image_shape` (values clipped to
    [0, 1]), else one component plane per feature (each scaled to its own range), side by side."""
    from zoo.visualize import image_grid

    w = ops.convert_to_numpy(model.som.prototypes)  # (U, D)
    if model.image_shape is not None:
        images = np.clip(w.reshape(-1, *model.image_shape), 0.0, 1.0)
        return image_grid(images, cols=model.cols, gutter=1)
    low, high = w.min(axis=0), w.max(axis=0)
    planes = (w - low) / np.maximum(high - low, 1e-12)  # (U, D)
    planes = [grid_picture(np.round(255 * p).astype(np.uint8).reshape(model.rows, model.cols, 1),
                           model.topology, cell=6) for p in planes.T]
    return image_grid(np.stack(planes[:64]), gutter=4)
