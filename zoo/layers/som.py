"""Self-organizing map (Kohonen 1982) trained by the batch-SOM rule (Kohonen 2013,
"Essentials of the self-organizing map", https://doi.org/10.1016/j.neunet.2012.09.018).

The layer holds the prototypes and everything a map is measured by; it learns by the batch
rule, not by gradients. One batch-SOM update is two sums over the batch (`batch_statistics`)
followed by `apply_batch_update`; a model sums the two over replicas in between, so any
number of replicas gives the same map (`zoo.models.SOM` does that).

Grid conventions (the same everywhere in zoo, and MiniSom's for the error definitions):
- Unit `i` sits at grid row `i // cols`, column `i % cols`.
- Its position in the plane: rectangular `(col, row)`; hexagonal `(col + 0.5 * (row % 2),
  row * sqrt(3) / 2)` (odd rows shifted right), so every inner unit has 6 neighbours at
  distance 1. Neighbourhood functions use the Euclidean distance between positions.
- Adjacent units: rectangular, the 8-neighbourhood (position distance <= sqrt 2, as MiniSom's
  topographic error with its threshold 1.42); hexagonal, the 6 units at distance 1.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

TOPOLOGIES = ("rectangular", "hexagonal")
NEIGHBOURHOODS = ("gaussian", "bubble")
OUTPUTS = ("distances", "coordinates", "index", "all", "similarities")
_ADJACENT = {"rectangular": math.sqrt(2) + 1e-3, "hexagonal": 1 + 1e-3}  # position distance
MAX_BLOCK = 2**24  # elements of a (samples x units) or (units x units) block held at once (64 MB)
# Elements of a block of samples (or of their distances) read at once by whole-data passes
# (PCA, best units): 8 MB, reused from block to block instead of fresh memory the size of the data.
SAMPLE_BLOCK = 2**21
PAIR_BLOCK = 2**16  # values of the prototype differences the U-matrix holds at once (in cache)


# ----------------------------------------------------------------------------- pure functions

def grid_positions(rows: int, cols: int, topology: str = "rectangular") -> np.ndarray:
    """`(rows * cols, 2)` float32 positions `(x, y)` of the units in the plane (module docstring)."""
    row, col = np.divmod(np.arange(rows * cols), cols)
    if topology == "hexagonal":
        return np.stack([col + 0.5 * (row % 2), row * math.sqrt(3) / 2], axis=1).astype(np.float32)
    return np.stack([col, row], axis=1).astype(np.float32)


def squared_distances(x, prototypes):
    """`(N, U)` squared Euclidean distances in float32, as `|x|^2 - 2 x.w + |w|^2` (one matmul,
    no `(N, U, D)` intermediate), clipped at 0 against rounding.

    Args:
        x: `(N, D)` samples, any float dtype (cast to float32).
        prototypes: `(U, D)` prototypes.
    """
    x, w = ops.cast(x, "float32"), ops.cast(prototypes, "float32")
    xx = ops.sum(ops.square(x), axis=1, keepdims=True)  # (N, 1)
    ww = ops.sum(ops.square(w), axis=1)  # (U,), broadcast over the rows
    return ops.maximum(xx - 2.0 * ops.matmul(x, ops.transpose(w)) + ww, 0.0)  # (N, U)


def neighbourhood_function(grid_squared_distance, sigma, kind: str = "gaussian"):
    """The neighbourhood weight of a unit at squared grid distance `d2` from the winner:
    gaussian `exp(-d2 / (2 sigma^2))`; bubble `1 if d2 <= sigma^2 else 0`."""
    sigma = ops.cast(sigma, "float32")
    if kind == "bubble":
        return ops.cast(grid_squared_distance <= ops.square(sigma), "float32")
    return ops.exp(-grid_squared_distance / (2.0 * ops.square(sigma)))


def exponential_decay(start: float, end: float, progress):
    """`start * (end / start) ** progress`, progress clipped to [0, 1]: `start` at the first
    step, `end` from the last one on (the radius and learning-rate schedules)."""
    progress = ops.clip(ops.cast(progress, "float32"), 0.0, 1.0)
    return start * ops.power(end / start, progress)


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield slice(start, min(start + size, total))


# ----------------------------------------------------------------------------- the layer

@keras.saving.register_keras_serializable(package="zoo")
class SelfOrganizingMap(keras.layers.Layer):
    """A grid of `rows x cols` prototype vectors that maps each sample to its best-matching unit.

    The prototypes are weights that gradients do not train (`trainable=False`): the map learns
    by the batch-SOM rule, `w_j <- (1 - lr) w_j + lr * sum_i h(b_i, j) x_i / sum_i h(b_i, j)`,
    where `b_i` is sample i's best-matching unit (BMU) and `h` the neighbourhood function of
    radius sigma. `lr = 1` on the whole data set is Kohonen's batch SOM; `lr < 1` on
    mini-batches averages over batches. `batch_statistics` gives the two sums (sum them over
    replicas), `apply_batch_update` moves the prototypes; `zoo.models.SOM` does both per step.
    Initialise from data first with `initialize(x, "pca" | "random")`.

    Distances are computed in float32 also under a mixed-precision policy, and the inputs are
    not down-cast to the compute dtype. Whole-data methods (`best_matching_units`,
    `quantization_error`, `topographic_error`, `hit_map`) work in chunks of samples so that a
    million samples or a 200x200 map fit in memory.

    Sequences: inputs `(N, ..., D)` are mapped vector by vector along the last axis (one map
    for every time step, or every image row), and every output gets the leading axes back:
    `(N, 28, 28)` images read as 28 rows of 28 pixels give `(N, 28, rows * cols)` distances or
    similarities. `initialize`, `train_batch_map` and the whole-data measures read such data
    the same way (each last-axis vector is one sample; see `samples`).

    Inside a model trained by gradients, use `output_mode="similarities"`: the softmax over the
    units of `-|x - w_u|^2 / temperature`, differentiable with respect to the inputs (the
    best-matching unit's index or coordinates are an argmin and pass no gradient). The
    prototypes stay non-trainable: `fit` never moves them (mathematically the similarities
    depend on them, but they are not among the trainable weights). Fit the map by the batch
    rule before `fit`, on the same data the model reads:
    `som.initialize(x_train, "pca"); som.train_batch_map(x_train)`.

    Args:
        rows: grid rows (>= 1).
        cols: grid columns (>= 1).
        topology: "rectangular" (8 neighbours) or "hexagonal" (6 neighbours, odd rows shifted).
        neighbourhood: "gaussian" or "bubble" (`neighbourhood_function`).
        output_mode: what a call returns: "distances" `(N, rows * cols)` Euclidean distances to
            every prototype (from the expanded square, so absolute errors of about
            `sqrt(1e-7) * |x|` near 0); "coordinates" `(N, 2)` BMU grid (row, col) as float32; "index"
            `(N,)` int32 BMU index; "all" a dict of these three plus "distance" `(N,)` (the
            BMU's distance, computed exactly as `|x - w_bmu|`); "similarities" `(N, rows * cols)`
            float32 `softmax_u(-|x - w_u|^2 / temperature)`: soft memberships that sum to 1,
            differentiable with respect to `x` (for a model trained by gradients).
        temperature: the "similarities" softmax temperature, in squared input units (> 0). Small:
            close to a one-hot of the BMU (little gradient); large: close to uniform. Start
            near the squared quantization error after `train_batch_map`
            (`quantization_error(x) ** 2`, 0.46 for MNIST rows). Other modes ignore it.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(N, D)` samples, or `(N, ..., D)`: each vector along the last axis is mapped,
            the outputs above get the leading axes `(N, ...)` in place of `(N,)`.

    Example:
    >>> som = SelfOrganizingMap(10, 10, output_mode="coordinates")
    >>> som.initialize(np.random.rand(500, 3), "pca")
    >>> som(np.random.rand(4, 3)).shape
    (4, 2)
    >>> # a frozen map feeding a classifier:
    >>> model = keras.Sequential([keras.Input((3,)), SelfOrganizingMap(10, 10), keras.layers.Dense(2)])
    >>> # a map of image rows feeding RBF units and attention over the rows, trained by `fit`:
    >>> from zoo.layers import RBF, AttentionPooling
    >>> images = np.random.rand(64, 28, 28).astype("float32")
    >>> som = SelfOrganizingMap(8, 8, output_mode="similarities", temperature=1.0)
    >>> som.initialize(images, "pca")  # 64 * 28 rows of 28 pixels
    >>> som.train_batch_map(images, steps=5)
    >>> model = keras.Sequential([keras.Input((28, 28)), som, RBF(256), AttentionPooling(),
    ...                           keras.layers.Dense(10, "softmax")])
    >>> model.output_shape
    (None, 10)
    """

    def __init__(self, rows: int, cols: int, topology: str = "rectangular",
                 neighbourhood: str = "gaussian", output_mode: str = "distances", temperature: float = 1.0,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("rows", rows), ("cols", cols)):
            if int(value) != value or value < 1:
                raise ValueError(f"SelfOrganizingMap {name} must be a positive integer, got {value!r}")
        for name, value, allowed in (("topology", topology, TOPOLOGIES),
                                     ("neighbourhood", neighbourhood, NEIGHBOURHOODS),
                                     ("output_mode", output_mode, OUTPUTS)):
            if value not in allowed:
                raise ValueError(f"SelfOrganizingMap {name} must be one of {', '.join(allowed)}, got {value!r}")
        if not float(temperature) > 0:
            raise ValueError(f"SelfOrganizingMap temperature must be positive, got {temperature!r}: it divides "
                             "the squared distances in the 'similarities' softmax")
        self.temperature = float(temperature)
        self.rows, self.cols = int(rows), int(cols)
        self.topology, self.neighbourhood, self.output_mode = topology, neighbourhood, output_mode
        self.units = self.rows * self.cols
        self.positions = grid_positions(self.rows, self.cols, topology)  # (U, 2)
        self.grid = np.stack(np.divmod(np.arange(self.units), self.cols), axis=1).astype(np.int32)  # (U, 2) row, col

    @property
    def input_dtype(self):
        """Inputs are converted to float32, not to a mixed policy's compute dtype."""
        return "float32"

    def build(self, input_shape):
        # Random prototypes, or the values `initialize` computed before building (then no random
        # values are drawn only to be replaced: a process's first random op took 0.02 s).
        initial, self._initial_prototypes = getattr(self, "_initial_prototypes", None), None
        initializer = "random_uniform" if initial is None else (
            lambda shape, dtype=None: initial.astype(dtype or "float32"))
        self.prototypes = self.add_weight(shape=(self.units, int(input_shape[-1])), name="prototypes",
                                          initializer=initializer, trainable=False, autocast=False,
                                          aggregation="only_first_replica")  # (U, D), equal on every replica

    # ------------------------------------------------------------------ call

    def match(self, inputs):
        """Graph-friendly BMUs of one batch: `(best (N,) int32, second (N,) int32, distance (N,)
        float32 to the best, squared distances (N, U))`."""
        d2 = squared_distances(inputs, self.prototypes)  # (N, U)
        if self.units == 1:
            best = ops.zeros((ops.shape(d2)[0],), "int32")
            return best, best, self._distance_to(inputs, best), d2
        # Two argmins over the distances' bits read as int32: for floats >= 0 (-0.0 reads as the
        # smallest) the order is the float order, and an integer argmin skips the negative-zero
        # pass of Keras' float one. Ties go to the lower index, as `top_k`'s. MNIST 10k x 400 on 2
        # cores: 6.8 ms against 11 for `top_k(-d2, 2)`.
        bits = ops.view(d2, "int32")
        best = ops.cast(ops.argmin(bits, axis=1), "int32")  # (N,)
        taken = ops.arange(self.units, dtype="int32") == ops.expand_dims(best, 1)  # (N, U)
        second = ops.cast(ops.argmin(ops.where(taken, np.iinfo(np.int32).max, bits), axis=1), "int32")
        return best, second, self._distance_to(inputs, best), d2

    def _distance_to(self, inputs, units):
        """`(N,)` exact Euclidean distance of each sample to one unit's prototype (the expanded
        form loses digits when a sample is close to its prototype: `sqrt(rounding error)`)."""
        delta = ops.cast(inputs, "float32") - ops.take(ops.cast(self.prototypes, "float32"), units, axis=0)
        return ops.sqrt(ops.sum(ops.square(delta), axis=-1))

    def call(self, inputs):
        if len(inputs.shape) == 2:
            return self._call_samples(inputs)
        leading = ops.shape(inputs)[:-1]  # (N, ...): mapped vector by vector, then put back
        outputs = self._call_samples(ops.reshape(inputs, (-1, inputs.shape[-1])))

        def restore(tensor):
            return ops.reshape(tensor, (*leading, *tensor.shape[1:]))

        return {k: restore(v) for k, v in outputs.items()} if isinstance(outputs, dict) else restore(outputs)

    def _call_samples(self, inputs):
        """The call on `(N, D)` samples."""
        if self.output_mode == "similarities":
            d2 = squared_distances(inputs, self.prototypes)  # (N, U)
            return ops.softmax(-d2 / self.temperature, axis=-1)
        best, _, distance, d2 = self.match(inputs)
        coordinates = ops.take(ops.convert_to_tensor(self.grid.astype(np.float32)), best, axis=0)  # (N, 2)
        outputs = {"distances": ops.sqrt(d2), "coordinates": coordinates, "index": best, "distance": distance}
        return outputs if self.output_mode == "all" else outputs[self.output_mode]

    def compute_output_shape(self, input_shape):
        leading = tuple(input_shape[:-1])  # (N,) or (N, ...)
        shapes = {"distances": (*leading, self.units), "coordinates": (*leading, 2), "index": leading,
                  "distance": leading, "similarities": (*leading, self.units)}
        return {k: shapes[k] for k in ("distances", "coordinates", "index", "distance")} \
            if self.output_mode == "all" else shapes[self.output_mode]

    def compute_output_spec(self, inputs):
        shapes = self.compute_output_shape(tuple(inputs.shape))
        dtypes = {"index": "int32"}
        if self.output_mode != "all":
            return keras.KerasTensor(shapes, dtype=dtypes.get(self.output_mode, "float32"))
        return {k: keras.KerasTensor(s, dtype=dtypes.get(k, "float32")) for k, s in shapes.items()}

    # ------------------------------------------------------------------ learning

    def adjacent(self, first, second):
        """Whether units `first` and `second` (int tensors of one shape) are grid neighbours;
        NumPy arrays (shapes that broadcast) in, a NumPy array out: the whole-data measures and
        the U-matrix, with no eager ops to start."""
        if isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
            delta = self.positions[first] - self.positions[second]
            return np.sqrt(np.sum(np.square(delta), axis=-1)) <= _ADJACENT[self.topology]
        # One gather for both units (each `take` adds a negative-index fix to the graph).
        at_first, at_second = ops.unstack(ops.take(ops.convert_to_tensor(self.positions),
                                                   ops.stack([first, second]), axis=0))  # (..., 2) each
        return ops.sqrt(ops.sum(ops.square(at_first - at_second), axis=-1)) <= _ADJACENT[self.topology]

    def neighbourhood_sums(self, values, sigma):
        """`H @ values` for the `(U, U)` neighbourhood matrix `H[j, k] = h(k, j)` of radius
        `sigma`, built in blocks of units (a 200x200 map never holds all of H)."""
        positions = ops.convert_to_tensor(self.positions)  # (U, 2)
        block = max(1, MAX_BLOCK // self.units)
        parts = []
        for rows in _chunks(self.units, block):
            delta = ops.expand_dims(ops.convert_to_tensor(self.positions[rows]), 1) - positions  # (B, U, 2)
            h = neighbourhood_function(ops.sum(ops.square(delta), axis=-1), sigma, self.neighbourhood)
            parts.append(ops.matmul(h, values))  # (B, ...)
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=0)

    def batch_statistics(self, inputs, sigma, best=None):
        """The batch-SOM sums of one batch: `numerator (U, D) = sum_i h(b_i, j) x_i` and
        `denominator (U,) = sum_i h(b_i, j)`, float32. Both are sums over samples, so sum
        them over replicas (or batches) before `apply_batch_update`.

        Args:
            inputs: `(N, D)` samples.
            sigma: the neighbourhood radius (grid units).
            best: `(N,)` BMU indices when already known (from `match`).
        """
        x = ops.cast(inputs, "float32")
        if best is None:
            best = self.match(x)[0]
        sums = ops.segment_sum(x, best, num_segments=self.units)  # (U, D) per-winner sums
        counts = ops.segment_sum(ops.ones_like(x[:, 0]), best, num_segments=self.units)  # (U,)
        both = self.neighbourhood_sums(ops.concatenate([sums, counts[:, None]], axis=1), sigma)
        return both[:, :-1], both[:, -1]

    def apply_batch_update(self, numerator, denominator, learning_rate=1.0):
        """`w_j <- (1 - lr) w_j + lr * numerator_j / denominator_j` where `denominator_j > 0`
        (units no sample reaches under a bubble neighbourhood keep their prototype)."""
        w = ops.cast(self.prototypes, "float32")
        reached = (denominator > 1e-12)[:, None]
        target = numerator / ops.where(reached, denominator[:, None], 1.0)
        new = ops.where(reached, (1.0 - learning_rate) * w + learning_rate * target, w)
        self.prototypes.assign(ops.cast(new, self.prototypes.dtype))

    def samples(self, data, dtype=np.float32) -> np.ndarray:
        """`(M, D)` NumPy samples of data for the whole-data methods.

        `(N, D)`: as it is. `(N, ..., D)`: every vector along the last axis is a sample, `M = N *
        ...` (a map of image rows reads `(N, 28, 28)` images as `28 N` rows). One exception keeps
        the earlier reading: a built map whose prototypes have `prod(...) * D` values (not `D`)
        takes each item `(...)` flattened as one sample. `(N,)`: N one-value samples.

        Raises:
            ValueError: a built map's prototype size matches neither reading.
        """
        data = np.asarray(data, dtype)
        if data.ndim <= 2:
            return data.reshape(len(data), -1)
        features = int(self.prototypes.shape[1]) if self.built else data.shape[-1]
        if data.shape[-1] == features:
            return data.reshape(-1, features)
        if int(np.prod(data.shape[1:])) == features:
            return data.reshape(len(data), features)
        raise ValueError(f"SelfOrganizingMap {self.name!r} has prototypes of {features} values; data of shape "
                         f"{data.shape} has neither {features} values on its last axis nor per item: reshape it "
                         f"to (samples, {features})")

    def initialize(self, data, method: str = "pca", seed: int = 0) -> None:
        """Set the prototypes from data (builds the layer if needed).

        Args:
            data: `(N, D)` samples, or `(N, ..., D)`: every last-axis vector is one (`samples`).
            method: "random": `rows * cols` samples drawn without replacement (with, if fewer);
                "pca": the plane of the first two principal components through the mean, rows
                along the first and columns along the second, spanning +-1 standard deviation
                of each (MiniSom's `pca_weights_init` spans +-1 unit vector instead, which does
                not follow the data's scale).
            seed: seed of the random draw.
        """
        data = self.samples(data, np.float64 if np.asarray(data).dtype == np.float64 else np.float32)
        if method == "random":
            rng = np.random.default_rng(seed)
            prototypes = data[rng.choice(len(data), self.units, replace=len(data) < self.units)]
        elif method == "pca":
            prototypes = _pca_plane(data, self.rows, self.cols)
        else:
            raise ValueError(f"initialize method must be 'random' or 'pca', got {method!r}")
        if self.built:
            self.prototypes.assign(prototypes.astype(np.float32))
        else:  # the prototypes are made with these values (`build`)
            self._initial_prototypes = prototypes.astype(np.float32)
            self.build((None, data.shape[1]))

    def train_batch_map(self, data, steps: int = 10, sigma_start: float | None = None, sigma_end: float = 1.0,
                        chunk_size: int | None = None) -> None:
        """Kohonen's batch map on the whole data set: `steps` updates with learning rate 1, each
        on the `batch_statistics` of every sample (summed over chunks), the radius decaying
        exponentially from `sigma_start` to `sigma_end`. Call `initialize` first.

        Args:
            data: `(N, D)` samples, or `(N, ..., D)`: every last-axis vector is one (`samples`).
            steps: updates, one pass over `data` each.
            sigma_start: radius of the first update in grid units (default: half the longer side).
            sigma_end: radius of the last update.
            chunk_size: samples per chunk of the sums (default: about 16M values per chunk).
        """
        data = self.samples(data)
        chunk_size = chunk_size or max(1, MAX_BLOCK // max(self.units, data.shape[1]))
        sigma_start = max(self.rows, self.cols) / 2 if sigma_start is None else sigma_start
        for step in range(steps):
            sigma = exponential_decay(sigma_start, sigma_end, step / max(steps - 1, 1))
            sums = [self.batch_statistics(data[rows], sigma) for rows in _chunks(len(data), chunk_size)]
            self.apply_batch_update(sum(s[0] for s in sums), sum(s[1] for s in sums), 1.0)

    # ------------------------------------------------------------------ whole-data measures

    def best_matching_units(self, data, chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`(best, second, distance)` of every sample as NumPy arrays, computed in chunks of
        `chunk_size` samples (default: about 2M values or distances per chunk); `(N, ..., D)` data gives
        one entry per last-axis vector (`samples`)."""
        data = self.samples(data)
        chunk_size = chunk_size or max(1, SAMPLE_BLOCK // max(self.units, data.shape[1]))
        match = self._traced_match()
        parts = [match(data[rows]) for rows in _chunks(len(data), chunk_size)]
        return tuple(np.concatenate([ops.convert_to_numpy(p[k]) for p in parts]) for k in range(3))

    def _traced_match(self):
        """`match` without the squared distances, traced once for chunks of any length: run
        op by op, its (N, D) temporaries are fresh memory at every call (MNIST 10k on a 2-core
        VM: 0.07-0.2 s the first time, against 0.06 traced, tracing included)."""
        import tensorflow as tf  # tf.function: Keras has no backend-neutral way to trace a function

        if getattr(self, "_match_function", None) is None:
            spec = tf.TensorSpec((None, int(self.prototypes.shape[1])), "float32")
            function = tf.function(lambda x: self.match(x)[:3], input_signature=[spec], autograph=False)
            object.__setattr__(self, "_match_function", function)  # a cache: not tracked, not saved
        return self._match_function

    def errors(self, data, chunk_size: int | None = None) -> dict[str, float]:
        """`{"quantization_error", "topographic_error"}` over `data` in one pass.

        Quantization error: the mean Euclidean distance from a sample to its BMU. Topographic
        error: the share of samples whose best and second-best units are not adjacent (module
        docstring: 8-neighbourhood on rectangular grids, 6 on hexagonal ones; MiniSom's
        definitions); NaN for a 1-unit map.
        """
        best, second, distance = self.best_matching_units(data, chunk_size)
        adjacent = self.adjacent(best, second)
        return {"quantization_error": float(np.mean(distance, dtype=np.float64)),
                "topographic_error": float("nan") if self.units == 1 else float(1.0 - adjacent.mean())}

    def quantization_error(self, data, chunk_size: int | None = None) -> float:
        """Mean Euclidean distance from each sample to its BMU (see `errors`)."""
        return self.errors(data, chunk_size)["quantization_error"]

    def topographic_error(self, data, chunk_size: int | None = None) -> float:
        """Share of samples whose two best units are not grid neighbours (see `errors`)."""
        return self.errors(data, chunk_size)["topographic_error"]

    def hit_map(self, data, chunk_size: int | None = None) -> np.ndarray:
        """`(rows, cols)` int64: how many samples each unit is the BMU of."""
        best = self.best_matching_units(data, chunk_size)[0]
        return np.bincount(best, minlength=self.units).reshape(self.rows, self.cols)

    def u_matrix(self) -> np.ndarray:
        """`(rows, cols)` float32: each unit's mean Euclidean distance to the prototypes of its
        adjacent units (high values = borders between clusters)."""
        w = ops.convert_to_numpy(self.prototypes).astype(np.float64)
        out = np.zeros(self.units)
        for rows in _chunks(self.units, max(1, MAX_BLOCK // self.units)):  # (B, U) adjacency at once
            near = self.adjacent(np.arange(rows.start, rows.stop)[:, None], np.arange(self.units)[None, :])
            near[np.arange(rows.stop - rows.start), np.arange(rows.start, rows.stop)] = False
            i, j = np.nonzero(near)
            d = np.empty(len(i))
            for pairs in _chunks(len(i), max(1, PAIR_BLOCK // w.shape[1])):  # small blocks stay in cache
                diff = w[rows.start + i[pairs]] - w[j[pairs]]
                d[pairs] = np.sqrt(np.einsum("pd,pd->p", diff, diff))
            out[rows] = np.bincount(i, d, rows.stop - rows.start) / np.maximum(near.sum(1), 1)
        return out.reshape(self.rows, self.cols).astype(np.float32)

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "cols": self.cols, "topology": self.topology,
                "neighbourhood": self.neighbourhood, "output_mode": self.output_mode,
                "temperature": self.temperature}


def _pca_plane(data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """`(rows * cols, D)` prototypes on the plane of the first two principal components
    (of the first 100,000 samples at most; `_principal_axes`)."""
    if data.shape[1] < 2 or len(data) < 2:
        raise ValueError("PCA initialization needs at least 2 samples with at least 2 features")
    mean = data.mean(axis=0, dtype=np.float64)
    variances, axes = _principal_axes(data[:100_000])
    std = np.sqrt(np.maximum(variances, 0.0))
    a = np.linspace(-1, 1, rows)[:, None, None] * std[0] * axes[:, 0]  # (rows, 1, D)
    b = np.linspace(-1, 1, cols)[None, :, None] * std[1] * axes[:, 1]  # (1, cols, D)
    return (mean + a + b).reshape(rows * cols, -1)


def _covariance(sample: np.ndarray):
    """`(D, D)` float64 covariance of `(N, D)` samples, summed over blocks of `SAMPLE_BLOCK` values.

    Each block is centred in the samples' own dtype around their float64 mean (no float64 copy
    of the data) and gives one float32 matmul (`einsum`: no transposed copy), added in float64.
    Blocks, not the whole array at once: a tensor the size of the data is fresh memory, and on
    a VM every page of it costs (MNIST 10k on a 2-core VM, fresh processes: PCA 0.25 -> 0.15 s).
    (Centring every block into one reused buffer read in place cut this function's page faults
    from 9,100 to 6,200, but the first training step then made 3,500 more: no faster.)
    """
    mean = np.mean(sample, axis=0, dtype=np.float64).astype(sample.dtype)
    blocks = (ops.cast(ops.convert_to_tensor(sample[rows]) - mean, "float32")
              for rows in _chunks(len(sample), max(1, SAMPLE_BLOCK // sample.shape[1])))
    total = sum(ops.cast(ops.einsum("nd,ne->de", c, c), "float64") for c in blocks)
    return total / float(max(len(sample) - 1, 1))


def _principal_axes(sample: np.ndarray, block: int = 16, tolerance: float = 1e-10,
                    max_iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """`(variances (2,), axes (D, 2))`: the two largest eigenvalues of the covariance `C` of
    `sample` `(N, D)` and their unit eigenvectors, each signed so that its largest component
    (in absolute value) is positive (scikit-learn's `svd_flip` rule; eigensolvers leave the
    sign to chance).

    The large products by the backend's ops: TensorFlow's thread pool keeps its speed on a
    busy machine, where NumPy's multi-threaded BLAS and LAPACK stall (MNIST 10,000 x 784 on 2
    cores shared with other jobs, 5 runs each: `np.cov` + `eigh` 0.35-2.8 s, median 2.3; this
    function 0.14-0.37 s, median 0.16). `C` is float32 matmuls of blocks of the centred samples
    added in float64 (`_covariance`; on MNIST its two leading axes are those of the float64 `C`
    to 2.3e-7 radians).
    Then, over `4 * block` features, subspace iteration on `C` for the leading pairs: `block`
    seeded directions, until the residuals `|C v - lambda v|` are at most
    `tolerance * lambda_1` (MNIST: 15 products `(D, D) x (D, 16)` and QRs, by the backend; the
    `block x block` Rayleigh-Ritz step in NumPy without BLAS); when it does not converge (the
    leading variances all alike: no plane stands out) or for fewer features, `eigh` of `C`.
    """
    d = sample.shape[1]
    covariance = _covariance(sample)
    vectors = None
    if d > 4 * block:
        basis = ops.qr(ops.convert_to_tensor(np.random.default_rng(0).standard_normal((d, block))))[0]
        for _ in range(max_iterations):
            product = ops.matmul(covariance, basis)  # (D, block)
            # The Rayleigh-Ritz step on `block` columns: NumPy without BLAS (einsum's loops,
            # LAPACK on a block x block matrix), a few microseconds where the backend's eager
            # ops cost a few milliseconds an iteration.
            b, p = ops.convert_to_numpy(basis), ops.convert_to_numpy(product)
            ritz, small = np.linalg.eigh(np.einsum("dk,dl->kl", b, p))  # ascending
            variances, small = ritz[::-1][:2], small[:, ::-1][:, :2]
            residual = np.linalg.norm(np.einsum("dk,kl->dl", p, small) - np.einsum("dk,kl->dl", b, small) * variances,
                                      axis=0)
            if residual.max() <= tolerance * max(variances[0], np.finfo(np.float64).tiny):
                vectors = np.einsum("dk,kl->dl", b, small)  # (D, 2)
                break
            basis = ops.qr(product)[0]
    if vectors is None:
        variances, vectors = ops.eigh(covariance)  # ascending
        variances, vectors = ops.flip(variances, axis=0)[:2], ops.flip(vectors, axis=1)[:, :2]
    variances, vectors = ops.convert_to_numpy(variances), ops.convert_to_numpy(vectors)
    largest = np.argmax(np.abs(vectors), axis=0)
    return variances, vectors * np.sign(vectors[largest, [0, 1]])
