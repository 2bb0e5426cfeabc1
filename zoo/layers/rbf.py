"""Radial basis function units with centres and widths initialised from data.

An RBF network (Broomhead & Lowe 1988; Moody & Darken 1989) is a layer of radial units
followed by a linear layer. The usual recipe, followed by `RBF.adapt`: place the centres by
k-means on (a sample of) the data, set each width from the spacing of the centres, then train
the linear layer, or everything, by gradient descent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import keras
import numpy as np
from keras import ops

from zoo.errors import UserError

KERNELS = ("gaussian", "inverse_multiquadric")
METHODS = ("kmeans", "random")
WIDTH_RULES = ("nearest", "max")
_CHUNK_VALUES = 1 << 22  # distances computed per chunk during initialisation (16 MB of float32)


@keras.saving.register_keras_serializable(package="zoo")
class RBF(keras.layers.Layer):
    """Radial basis units: `phi_j(x) = k(||x - c_j|| / sigma_j)` for `units` centres `c_j`.

    Kernels, with `r = ||x - c_j||` and width `sigma_j`:
    - `gaussian`: `exp(-r^2 / (2 sigma_j^2))`;
    - `inverse_multiquadric`: `1 / sqrt(1 + r^2 / sigma_j^2)`.

    Centres `(units, D)` and per-unit widths are trainable. Widths are stored as their
    logarithm (`log_widths`, `sigma = exp(log_widths)`), so they stay positive and a gradient
    step changes them by a ratio. Distances and kernels are computed in float32 whatever the
    dtype policy (the expansion `|x|^2 - 2 x.c + |c|^2` would cancel catastrophically in
    bfloat16); the output is cast to the layer's compute dtype.

    Call `adapt(data)` before training to put the centres on the data (k-means by default) and
    set the widths from their spacing; see its docstring (streams, layers below the RBF).

    Args:
        units: number of centres (output features).
        kernel: "gaussian" or "inverse_multiquadric".
        initial_width: every sigma before `adapt` (or without it).
        centres_initializer: initializer of the centres before `adapt`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(..., D)` tensor; returns `(..., units)` activations in (0, 1].

    Example:
    >>> x = np.random.default_rng(0).uniform(-1, 1, (256, 1)).astype("float32")
    >>> rbf = RBF(16)
    >>> info = rbf.adapt(x)  # k-means centres, widths from the centre spacing
    >>> model = keras.Sequential([keras.Input((1,)), rbf, keras.layers.Dense(1)])
    >>> model.compile("adam", "mse")
    >>> _ = model.fit(x, np.sin(5 * x), epochs=1, verbose=0)
    >>> model(x[:2]).shape
    TensorShape([2, 1])

    On top of other layers, adapt on the features they produce:
    `rbf.adapt(dataset, feature_model=keras.Model(model.inputs, rbf.input))`.
    """

    def __init__(self, units: int, kernel: str = "gaussian", initial_width: float = 1.0,
                 centres_initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        if units < 1:
            raise ValueError(f"RBF units must be at least 1, got {units}")
        if kernel not in KERNELS:
            raise ValueError(f"RBF kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        if not initial_width > 0:
            raise ValueError(f"RBF initial_width must be positive, got {initial_width}")
        self.units, self.kernel, self.initial_width = units, kernel, initial_width
        self.centres_initializer = keras.initializers.get(centres_initializer)
        self.autocast = False  # float32 inputs stay float32 in call (mixed precision); so do the
        # variables (autocast=False in build: the layer's flag alone does not stop a mixed layer's scope)

    def build(self, input_shape):
        dim = input_shape[-1]
        self.centres = self.add_weight(shape=(self.units, dim), initializer=self.centres_initializer,
                                       name="centres", autocast=False)
        self.log_widths = self.add_weight(
            shape=(self.units,), initializer=keras.initializers.Constant(float(np.log(self.initial_width))),
            name="log_widths", autocast=False)

    @property
    def widths(self):
        """The per-unit widths sigma, `(units,)`."""
        return ops.exp(self.log_widths)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")  # (..., D)
        centres = ops.cast(self.centres, "float32")  # (K, D)
        cross = ops.matmul(x, ops.transpose(centres))  # (..., K)
        r2 = ops.sum(x * x, axis=-1, keepdims=True) - 2.0 * cross + ops.sum(centres * centres, axis=-1)
        scaled = ops.maximum(r2, 0.0) * ops.exp(-2.0 * ops.cast(self.log_widths, "float32"))  # r^2 / sigma^2
        phi = ops.exp(-0.5 * scaled) if self.kernel == "gaussian" else ops.rsqrt(1.0 + scaled)
        return ops.cast(phi, self.compute_dtype)  # (..., K)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "kernel": self.kernel,
                "initial_width": self.initial_width,
                "centres_initializer": keras.initializers.serialize(self.centres_initializer)}

    def adapt(self, data, feature_model: Callable | None = None, method: str = "kmeans",
              max_samples: int = 10_000, iterations: int = 20, width_rule: str = "nearest",
              neighbours: int = 2, width_scale: float = 1.0, steps: int | None = None,
              seed: int = 0) -> dict:
        """Set the centres from data and the widths from the centre spacing (before training).

        1. Samples: a uniform random sample of at most `max_samples` input vectors, drawn in
           one pass by reservoir sampling (Vitter's algorithm R), so `data` may be an array,
           a `tf.data.Dataset` or any iterable of batches (`x` or `(x, y, ...)` tuples) and is
           never held in memory whole. `feature_model` maps each batch to the RBF's inputs
           when the layer sits on top of other layers.
        2. Centres: `kmeans`: k-means++ seeding (Arthur & Vassilvitskii 2007) then up to
           `iterations` Lloyd iterations, distances in chunks (an empty cluster takes the
           sample farthest from its centre); `random`: distinct random samples.
        3. Widths: `nearest`: sigma_j = mean distance from c_j to its `neighbours` nearest
           other centres (Moody & Darken 1989's p-nearest-neighbour rule); `max`: one
           sigma = d_max / sqrt(2 K) for all units (Haykin, "Neural Networks", 2nd ed.,
           sec. 5.13). Both multiplied by `width_scale`. With one centre: the RMS distance
           of the samples to it.

        Args:
            data: `(N, ..., D)` array or tensor, `tf.data.Dataset` or iterable of batches.
            feature_model: callable (e.g. `keras.Model(model.inputs, rbf.input)`) applied to
                every batch; its output `(B, ..., D)` is what the centres are fitted to.
            method: "kmeans" or "random".
            max_samples: size of the reservoir of samples.
            iterations: Lloyd iterations at most (stops early when no sample moves).
            width_rule: "nearest" or "max" (above).
            neighbours: the p of the `nearest` rule.
            width_scale: factor on every width.
            steps: batches to read at most; needed for an endless dataset.
            seed: seeds the reservoir, the seeding and the random choice.

        Returns:
            `{"samples": used, "seen": read, "mean_squared_distance": mean squared distance of
            the samples to their nearest centre}`.

        Raises:
            UserError: fewer distinct samples than units, or no samples at all.
            ValueError: a bad argument, an endless dataset without `steps`, or samples whose
                size differs from the layer's input size.
        """
        _check_choice("method", method, METHODS)
        _check_choice("width_rule", width_rule, WIDTH_RULES)
        if max_samples < 1 or neighbours < 1 or iterations < 0 or not width_scale > 0:
            raise ValueError("max_samples and neighbours must be at least 1, iterations 0 or more "
                             "and width_scale positive")
        rng = np.random.default_rng(seed)
        samples, seen = collect_samples(data, feature_model, max_samples, steps, rng)
        self._check_samples(samples, seen)
        if method == "kmeans":
            centres = kmeans(samples, self.units, iterations, rng)
        else:
            distinct = np.unique(samples, axis=0)
            centres = distinct[rng.choice(len(distinct), self.units, replace=False)]
        _, squared = nearest_centres(samples, centres)
        widths = centre_widths(centres, width_rule, neighbours, float(np.mean(squared))) * width_scale
        if not self.built:
            self.build((None, samples.shape[1]))
        self.centres.assign(centres.astype(self.centres.dtype))
        self.log_widths.assign(np.log(np.maximum(widths, 1e-12)).astype(self.log_widths.dtype))
        return {"samples": len(samples), "seen": seen, "mean_squared_distance": float(np.mean(squared))}

    def _check_samples(self, samples: np.ndarray, seen: int) -> None:
        if self.built and samples.shape[1] != self.centres.shape[1]:
            raise ValueError(f"RBF {self.name!r} takes {self.centres.shape[1]} features, the data "
                             f"gave {samples.shape[1]}")
        distinct = len(np.unique(samples, axis=0))
        if distinct < self.units:
            more = f" (a sample of {len(samples)} of {seen})" if seen > len(samples) else ""
            raise UserError(f"RBF {self.name!r} has {self.units} centres but the data holds only "
                            f"{distinct} distinct samples{more}: use at most {distinct} centres or "
                            "give more data")


# ----------------------------------------------------------------------------- initialisation

def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _batches(data, steps: int | None) -> Iterable:
    """The batches of `data`: an array is split into chunks; iterables are read as they come."""
    if hasattr(data, "shape") and hasattr(data, "dtype"):  # NumPy array or tensor
        array = np.asarray(keras.ops.convert_to_numpy(data))
        if array.ndim < 2:
            raise ValueError(f"RBF.adapt needs samples of shape (N, ..., D), got shape {array.shape}")
        return (array[i:i + 4096] for i in range(0, len(array), 4096))
    if hasattr(data, "cardinality") and int(data.cardinality()) == -1 and steps is None:
        raise ValueError("RBF.adapt got an endless dataset: pass steps= (batches to read) or .take(n)")
    return data


def collect_samples(data, feature_model: Callable | None, max_samples: int, steps: int | None,
                    rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A uniform sample of at most `max_samples` feature vectors from a stream of batches.

    Returns:
        `(samples (n, D) float32, vectors read)`.
    """
    reservoir, seen = None, 0
    for step, batch in enumerate(_batches(data, steps)):
        if steps is not None and step >= steps:
            break
        x = batch[0] if isinstance(batch, tuple | list) else batch
        if feature_model is not None:
            x = feature_model(x)
        x = np.asarray(keras.ops.convert_to_numpy(x), np.float32)
        x = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x[None]  # (b, D)
        if reservoir is None:
            reservoir = np.empty((max_samples, x.shape[1]), np.float32)
        seen = _reservoir_add(reservoir, seen, x, rng)
    if reservoir is None or seen == 0:
        raise UserError("RBF.adapt got no samples: the data is empty")
    return reservoir[:min(seen, max_samples)], seen


def _reservoir_add(reservoir: np.ndarray, seen: int, x: np.ndarray, rng: np.random.Generator) -> int:
    """Algorithm R over one batch: fill the reservoir, then sample i replaces a random slot with
    probability size / (i + 1). Returns the number of vectors read so far."""
    size = len(reservoir)
    fill = max(0, min(size - seen, len(x)))
    reservoir[seen:seen + fill] = x[:fill]
    rest = x[fill:]
    if len(rest):
        index = seen + fill + np.arange(len(rest))  # 0-based position in the stream
        slot = np.floor(rng.random(len(rest)) * (index + 1)).astype(np.int64)
        keep = slot < size
        reservoir[slot[keep]] = rest[keep]
    return seen + len(x)


def nearest_centres(samples: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every sample, the index of its nearest centre and the squared distance, in chunks."""
    norms = np.sum(centres * centres, axis=1)  # (K,)
    chunk = max(1, _CHUNK_VALUES // len(centres))
    index, squared = np.empty(len(samples), np.int64), np.empty(len(samples), np.float32)
    for start in range(0, len(samples), chunk):
        x = samples[start:start + chunk]
        d2 = np.sum(x * x, axis=1, keepdims=True) - 2.0 * (x @ centres.T) + norms  # (b, K)
        index[start:start + chunk] = np.argmin(d2, axis=1)
        squared[start:start + chunk] = np.maximum(d2[np.arange(len(x)), index[start:start + chunk]], 0)
    return index, squared


def kmeans_plus_plus(samples: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding: each next centre is a sample drawn with probability ~ D(x)^2."""
    norms = np.sum(samples * samples, axis=1)  # (N,)

    def squared_to(i: int) -> np.ndarray:  # (N,) squared distances to sample i
        return np.maximum(norms - 2.0 * (samples @ samples[i]) + norms[i], 0.0)

    chosen = [int(rng.integers(len(samples)))]
    closest = squared_to(chosen[0])
    for _ in range(1, k):
        total = float(closest.sum(dtype=np.float64))
        if total <= 0:
            raise UserError(f"k-means needs {k} distinct samples, the data has fewer")
        chosen.append(int(rng.choice(len(samples), p=closest / total)))
        closest = np.minimum(closest, squared_to(chosen[-1]))
    return samples[chosen].copy()


def kmeans(samples: np.ndarray, k: int, iterations: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding then Lloyd iterations until no assignment changes. `(k, D)` float32."""
    samples = samples.astype(np.float32)
    centres = kmeans_plus_plus(samples, k, rng)
    previous = None
    for _ in range(iterations):
        index, squared = nearest_centres(samples, centres)
        if previous is not None and np.array_equal(index, previous):
            break
        counts = np.bincount(index, minlength=k)
        sums = _cluster_sums(samples, index, k)
        empty = np.flatnonzero(counts == 0)
        centres = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        centres[empty] = samples[np.argsort(squared)[::-1][:len(empty)]]  # farthest samples
        previous = index
    return centres


def _cluster_sums(samples: np.ndarray, index: np.ndarray, k: int) -> np.ndarray:
    """`(k, D)` float64 sums of the samples assigned to each centre (sorted segments)."""
    order = np.argsort(index, kind="stable")
    ordered, ids = samples[order], index[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sums = np.zeros((k, samples.shape[1]), np.float64)
    sums[ids[starts]] = np.add.reduceat(ordered.astype(np.float64), starts, axis=0)
    return sums


def centre_widths(centres: np.ndarray, rule: str, neighbours: int, mean_squared: float) -> np.ndarray:
    """Per-unit widths from the spacing of the centres (see `RBF.adapt`), `(K,)` float64."""
    k = len(centres)
    if k == 1:
        return np.array([np.sqrt(mean_squared) or 1.0])
    norms = np.sum(centres.astype(np.float64) ** 2, axis=1)
    d2 = np.maximum(norms[:, None] - 2.0 * centres.astype(np.float64) @ centres.T.astype(np.float64)
                    + norms[None], 0.0)  # (K, K)
    np.fill_diagonal(d2, np.inf)
    if rule == "max":
        return np.full(k, np.sqrt(np.max(d2[np.isfinite(d2)])) / np.sqrt(2.0 * k))
    p = min(neighbours, k - 1)
    nearest = np.sqrt(np.partition(d2, p - 1, axis=1)[:, :p])  # (K, p)
    return np.maximum(nearest.mean(axis=1), 1e-6)
