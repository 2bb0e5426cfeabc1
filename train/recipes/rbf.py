"""rbf: an RBF network (zoo.models.RBFNetwork): RBF units, then a linear layer.

Centres are placed on the training data by k-means before training (widths from the centre
spacing, `zoo.layers.RBF.adapt`), then centres, widths and output weights train together.
- `--task regress` (default): y = sin(5x) + Gaussian noise on x in [-1, 1], drawn from the
  seed; validated on a noise-free grid (RMSE) with a plot of the fit in TensorBoard.
- `--task classify`: MNIST (embedded) as flattened pixels in [0, 1], validated on its test
  split (accuracy, confusion matrix).
`--data` takes a numeric CSV (features, and the label or target in the last column or
`--label-column`) for either task, or any image source (`zoo.data.load_images`) to classify.
Sources without a test split are split deterministically: 10% for validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from train.config import TrainConfig
from train.recipes import Recipe

DEFAULT_CENTRES = {"regress": 24, "classify": 800}  # --centres 0
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")
GRID_POINTS = 512  # noise-free validation grid of the default regression


@dataclass(frozen=True)
class Config(TrainConfig):
    epochs: int = 20
    steps_per_epoch: int = 200
    batch_size: int = 64
    checkpoint_every: int = 1000
    log_every: int = 50  # 4 points per epoch; a traced call of steps ends at each, so this lets calls run 50 steps (docs/speed.md)
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "float32"  # RBF distances: float32 anyway
    task: Literal["regress", "classify"] = "regress"  # regression of a 1-D function, or classification
    data: str = ""  # empty: sin(5x) + noise (regress) or assets:mnist (classify); else a numeric CSV or an image source
    label_column: str = ""  # CSV: the label / target column, a header name or 0-based index; empty: the last column
    centres: int = 0  # RBF units; 0: 24 to regress, 800 to classify
    kernel: Literal["gaussian", "inverse_multiquadric"] = "gaussian"  # RBF kernel
    init: Literal["kmeans", "random"] = "kmeans"  # how centres are placed on the data before training
    init_samples: int = 10_000  # samples (a uniform reservoir) the centres are initialised from
    kmeans_iterations: int = 20  # Lloyd iterations at most (after k-means++ seeding)
    width_neighbours: int = 2  # sigma_j = mean distance to the p nearest other centres (Moody & Darken)
    width_scale: float = 1.0  # factor on every initial width
    learning_rate: float = 0.01  # Adam, cosine decay to a hundredth over the run
    samples: int = 1000  # regress default: noisy training points
    noise: float = 0.1  # regress default: standard deviation of the noise on y
    limit: int = 0  # at most this many training samples (0: all)
    val_limit: int = 0  # at most this many validation samples (0: all)

    def validate(self) -> None:
        super().validate()
        for name in ("centres", "limit", "val_limit"):
            self.require(name, getattr(self, name) >= 0, "0 or more")
        for name in ("init_samples", "width_neighbours", "samples"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        self.require("kmeans_iterations", self.kmeans_iterations >= 0, "0 or more")
        for name in ("width_scale", "learning_rate"):
            self.require(name, getattr(self, name) > 0, "positive")
        self.require("noise", self.noise >= 0, "0 or more")
        self.require("init_samples", self.init_samples >= self.units,
                     f"at least --centres ({self.units}): the centres are chosen among them")

    @property
    def units(self) -> int:
        """The number of RBF centres (`--centres`, or the task's default)."""
        return self.centres or DEFAULT_CENTRES[self.task]


PRESETS = {
    "default": Config(),
    "tiny": Config(epochs=2, steps_per_epoch=5, batch_size=16, centres=8, samples=64,
                   init_samples=256, limit=256, val_limit=128, log_every=1, checkpoint_every=5),
    # Longer, with more centres to classify (--task classify: about 8 passes over MNIST).
    "full": Config(epochs=40, steps_per_epoch=500, batch_size=128, centres=0, samples=5000,
                   init_samples=20_000, learning_rate=0.005),
}


# ----------------------------------------------------------------------------- data

def sine_data(samples: int, noise: float, seed: int):
    """`(x, y)` training points of y = sin(5x) + noise, x uniform in [-1, 1]; float32 (N, 1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (samples, 1))
    y = np.sin(5.0 * x) + noise * rng.standard_normal((samples, 1))
    return x.astype(np.float32), y.astype(np.float32)


def sine_grid():
    """The noise-free validation grid `(x, sin(5x))`, float32 (GRID_POINTS, 1)."""
    import numpy as np

    x = np.linspace(-1.0, 1.0, GRID_POINTS)[:, None]
    return x.astype(np.float32), np.sin(5.0 * x).astype(np.float32)


def split(x, y, seed: int, share: float = 0.1):
    """A deterministic (seeded) split: `(x_train, y_train, x_val, y_val)`, `share` for validation."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(x))
    cut = max(1, int(round(share * len(x))))
    val, train = order[:cut], order[cut:]
    return x[train], y[train], x[val], y[val]


def table_data(config: Config):
    """Features and labels / targets of a numeric CSV: `(x, y, x_val, y_val, class names)`."""
    import numpy as np

    from zoo.data import encode_labels, read_numeric_table
    from zoo.data.text import numeric_label_column
    from zoo.errors import UserError

    values, names = read_numeric_table(config.data)
    if len(names) < 2:
        raise UserError(f"{config.data} has one column: it needs feature columns and a label column")
    label = numeric_label_column(config.label_column, names, config.data)
    x, target = np.delete(values, label, axis=1), values[:, label]
    x, y, x_val, y_val = split(x, target, config.seed)
    if config.task == "regress":
        return x, y[:, None], x_val, y_val[:, None], None
    as_text = [f"{v:g}" for v in y]
    classes, y, y_val = encode_labels(as_text, [f"{v:g}" for v in y_val])
    return x, y, x_val[y_val >= 0], y_val[y_val >= 0], classes  # validation labels unseen in training: dropped


def image_data(config: Config):
    """Flattened images in [0, 1] and labels: `(x, y, x_val, y_val, class names)`."""
    import numpy as np

    from zoo.data import load_images
    from zoo.errors import UserError

    source = config.data or "assets:mnist"
    limit = config.limit or None
    x, y, names = load_images(source, "train", limit=limit)
    if y is None:
        raise UserError(f"{source} has no labels: to classify, pass images in class subfolders, "
                        "MNIST idx files with labels, or a CSV with a label column")
    x_val, y_val, _ = load_images(source, "test", limit=limit)
    if y_val is None or (x_val.shape == x.shape and np.array_equal(x_val, x)):  # no test split
        x, y, x_val, y_val = split(x, y, config.seed)
    return (x.reshape(len(x), -1), y, x_val.reshape(len(x_val), -1), y_val,
            names or [str(i) for i in range(int(y.max()) + 1)])


def load_data(config: Config):
    """`(x, y, x_val, y_val, class names or None)` for the task and `--data`, limits applied."""
    from zoo.errors import UserError

    if config.data.lower().endswith(TABLE_SUFFIXES):
        data = table_data(config)
    elif config.task == "classify":
        data = image_data(config)
    elif config.data:
        raise UserError(f"--data {config.data}: to regress, pass a numeric CSV (features, then the "
                        "target in the last column or --label-column), or no --data for sin(5x)")
    else:
        data = (*sine_data(config.samples, config.noise, config.seed), *sine_grid(), None)
    x, y, x_val, y_val, classes = data
    train_limit, val_limit = config.limit or len(x), config.val_limit or len(x_val)
    return x[:train_limit], y[:train_limit], x_val[:val_limit], y_val[:val_limit], classes


# ----------------------------------------------------------------------------- pictures

def _rows(values, low: float, high: float, height: int):
    """Canvas rows of y values (top = high)."""
    import numpy as np

    return np.clip(np.round((high - values) / (high - low) * (height - 1)), 0, height - 1).astype(int)


def _draw_curve(canvas, rows, colour) -> None:
    """A 2-pixel polyline through one row per column, joined vertically between columns."""
    for col in range(canvas.shape[1]):
        ahead = rows[min(col + 1, len(rows) - 1)]
        top, bottom = min(rows[col], ahead), max(rows[col], ahead)
        canvas[max(top - 1, 0):bottom + 1, col:col + 2] = colour


def plot_fit(points, grid, target, prediction, centres, size=(240, 480)):
    """The fit as a picture: noisy points (grey), target (blue), model (red), centres (black
    ticks at the bottom). `points` `(N, 2)`, the rest 1-D; x spans the grid. uint8 `(H, W, 3)`."""
    import numpy as np

    height, width = size
    canvas = np.full((height, width, 3), 255, np.uint8)
    low, high = min(points[:, 1].min(), target.min()), max(points[:, 1].max(), target.max())
    low, high = low - 0.05 * (high - low), high + 0.05 * (high - low)
    cols = np.linspace(grid[0], grid[-1], width)

    def to_col(x):
        return np.clip(np.round((x - grid[0]) / (grid[-1] - grid[0]) * (width - 1)), 0, width - 1).astype(int)

    if low < 0 < high:
        canvas[_rows(np.zeros(1), low, high, height)[0], :] = 220  # y = 0
    for col, row in zip(to_col(points[:, 0]), _rows(points[:, 1], low, high, height)):
        canvas[max(row - 1, 0):row + 1, max(col - 1, 0):col + 1] = 150
    _draw_curve(canvas, _rows(np.interp(cols, grid, target), low, high, height), (40, 90, 220))
    _draw_curve(canvas, _rows(np.interp(cols, grid, prediction), low, high, height), (220, 40, 40))
    for col in to_col(np.asarray(centres)):
        canvas[height - 8:, col] = 0
    return canvas


# ----------------------------------------------------------------------------- evaluation

def regression_evaluation(x, y, x_val, y_val):
    """`model -> (scalars, pictures)`: RMSE on the validation data and, for 1-D inputs, the fit."""
    import numpy as np

    order = np.argsort(x_val[:, 0])

    def evaluate(model):
        prediction = model.predict_values(x_val)
        scalars = {"rmse": float(np.sqrt(np.mean((prediction - y_val) ** 2)))}
        if x.shape[1] != 1:
            return scalars, {}
        centres = np.asarray(model.rbf.centres)[:, 0]
        picture = plot_fit(np.concatenate([x, y[:, :1]], axis=1), x_val[order, 0], y_val[order, 0],
                           prediction[order, 0], centres)
        return scalars, {"fit": picture}

    return evaluate


def class_predictions(x_val, y_val):
    """`model -> (true ids, predicted ids)` on the validation data, for ConfusionMatrix."""
    import numpy as np

    return lambda model: (y_val, np.argmax(model.predict_values(x_val), axis=-1))


# ----------------------------------------------------------------------------- build

def datasets(config: Config, x, y, x_val, y_val):
    """Endless shuffled training batches and finite validation batches."""
    import tensorflow as tf

    train = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=config.seed)
             .repeat().batch(config.batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE))
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(max(config.batch_size, 256))
    return train, val


def make_model(config: Config, x, classes):
    """The compiled RBFNetwork with centres and widths initialised from `x`."""
    import time

    import keras

    from zoo.errors import UserError
    from zoo.models import RBFNetwork

    if config.units > len(x):
        raise UserError(f"--centres {config.units} is more than the {len(x)} training samples: use "
                        f"--centres {len(x)} or fewer, or more data")
    task = "regression" if classes is None else "classification"
    model = RBFNetwork(x.shape[1], config.units, 1 if classes is None else len(classes), task,
                       config.kernel, classes, name="rbf_network")
    started = time.time()
    info = model.rbf.adapt(x, method=config.init, max_samples=config.init_samples,
                           iterations=config.kmeans_iterations, neighbours=config.width_neighbours,
                           width_scale=config.width_scale, seed=config.seed)
    print(f"rbf: {config.units} centres by {config.init} on {info['samples']} of {info['seen']} samples "
          f"in {time.time() - started:.1f} s; mean width {float(keras.ops.mean(model.rbf.widths)):.4g}")
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, config.total_steps, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule))
    return model


def build(config: Config):
    """Data, the RBF network (centres from data) and its validation callbacks; imports TensorFlow."""
    from train.callbacks import ConfusionMatrix, EpochEvaluation
    from train.trainer import Built

    x, y, x_val, y_val, classes = load_data(config)
    model = make_model(config, x, classes)
    train, val = datasets(config, x, y, x_val, y_val)
    if classes is None:
        callback = EpochEvaluation(regression_evaluation(x, y, x_val, y_val), prefix="fit",
                                   description="grey: training points; blue: target; red: model; "
                                               "ticks: centres")
    else:
        callback = ConfusionMatrix(class_predictions(x_val, y_val), classes)
    return Built(model, train, val, [callback])


RECIPE = Recipe(
    name="rbf",
    description="RBF network, centres by k-means: regress sin(5x) + noise, or --task classify (MNIST)",
    config_class=Config,
    presets=PRESETS,
    build=build,
    usage="python -m zoo predict {model} 0.3   (one comma-separated sample per argument, or --file F.csv/.npy)",
)
