"""Generic callbacks. They log with `tf.summary.*`; the trainer makes its writer the default.

They know no model and no data format: a recipe hands them a function from zoo that does
the model-specific work (e.g. `zoo.evaluation.evaluate_sr`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

Scalars = dict[str, float]
Pictures = dict[str, np.ndarray]


def write_picture(tag: str, picture: np.ndarray, description: str = "") -> None:
    """One picture into TensorBoard's images as `tag`, at the default writer's step: what
    `tf.summary.image` writes (the tensor `[width, height, PNG]`, the image plugin's metadata),
    the PNG made by Pillow at zlib level 1. TensorFlow's encoder spent 20-30 ms more on the
    first pictures of a process, and level 6 three times as long per picture, for files about
    10% smaller (a 560x560 grid of MNIST prototypes: 11 ms against 4.6).

    Args:
        tag: the image's name in TensorBoard (e.g. `som/u_matrix`).
        picture: `(H, W)` or `(H, W, C)`, C in 1, 3, 4: uint8, or floats in [0, 1]
            (`zoo.visualize.to_uint8_image`).
        description: shown under the image.
    """
    from PIL import Image
    from tensorboard.plugins.image import metadata

    from zoo.visualize import to_uint8_image

    picture = to_uint8_image(picture)
    png = io.BytesIO()
    Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(png, "PNG", compress_level=1)
    height, width = picture.shape[:2]
    tf.summary.write(tag, tf.constant([str(width), str(height), png.getvalue()]),
                     metadata=metadata.create_summary_metadata(display_name=None, description=description))


class EpochEvaluation(keras.callbacks.Callback):
    """After each epoch: `evaluate(model) -> (scalars, pictures)`; scalars join the epoch logs
    as `val_<name>` (the trainer writes them as `epoch/val_<name>`), pictures go to
    TensorBoard as `<prefix>/<name>`.

    Args:
        evaluate: computes scalars (`{name: float}`) and pictures (`{name: (H, W, C) uint8}`)
            from the model.
        prefix: the TensorBoard folder of the pictures.
        description: shown under the pictures in TensorBoard.
    """

    def __init__(self, evaluate: Callable[[keras.Model], tuple[Scalars, Pictures]],
                 prefix: str = "val_images", description: str = ""):
        super().__init__()
        self.evaluate, self.prefix, self.description = evaluate, prefix, description

    def on_epoch_end(self, epoch, logs=None):
        scalars, pictures = self.evaluate(self.model)
        if logs is not None:
            logs.update({f"val_{name}": float(value) for name, value in scalars.items()})
        for name, picture in pictures.items():
            write_picture(f"{self.prefix}/{name}", picture, self.description)


class SelectBest(keras.callbacks.Callback):
    """After each epoch: `score(model)` on held-out *training* examples (never the validation
    data), logged as `select_accuracy`; with `restore_best`, the weights of the epoch with the
    best score are put back when training ends (before the trainer saves the model). The
    trainer sets `run_dir`: the best epoch's weights are kept there too (`select_best.npz`), so
    a run resumed after a crash goes on with the same search instead of starting a new one.

    Args:
        score: `model -> float`, higher is better (e.g. the accuracy on a selection slice).
        restore_best: put back (and keep in `run_dir`) the best epoch's weights.
        name: the prefix of the printed message (e.g. the recipe's name).
        count: how many held-out examples `score` reads, for the message.
        examples: what they are, for the message.
    """

    best, weights, epoch = -1.0, None, None
    run_dir = None  # set by the trainer

    def __init__(self, score: Callable[[keras.Model], float], restore_best: bool, name: str, count: int,
                 examples: str = "training examples"):
        super().__init__()
        self.score, self.restore_best, self.name, self.count, self.examples = (
            score, restore_best, name, count, examples)

    @property
    def state_path(self) -> Path | None:
        return Path(self.run_dir) / "select_best.npz" if self.run_dir and self.restore_best else None

    def on_train_begin(self, logs=None):
        if self.state_path is not None and self.state_path.exists():  # a resumed run
            with np.load(self.state_path) as state:
                self.best, self.epoch = float(state["best"]), int(state["epoch"])
                self.weights = [state[f"weight_{i}"] for i in range(int(state["count"]))]

    def on_epoch_end(self, epoch, logs=None):
        value = float(self.score(self.model))
        if logs is not None:
            logs["select_accuracy"] = value
        if self.restore_best and value > self.best:
            self.best, self.weights, self.epoch = value, self.model.get_weights(), epoch
            if self.state_path is not None:  # under a temporary name, then renamed: never half-written
                tmp = self.state_path.with_name(".select_best.tmp.npz")
                np.savez(tmp, best=self.best, epoch=epoch, count=len(self.weights),
                         **{f"weight_{i}": w for i, w in enumerate(self.weights)})
                tmp.replace(self.state_path)

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)
            print(f"\n{self.name}: saving the weights of epoch {self.epoch + 1} "
                  f"(best select_accuracy {self.best:.4f}, on {self.count} held-out {self.examples})")


class EmbeddingProjector(keras.callbacks.Callback):
    """At the end of training (or every `every` epochs): vectors into TensorBoard's projector,
    with labels and image sprites. Keras' own projector option is broken (keras#20210), so
    `zoo.visualize.write_projector_files` writes the checkpoint, metadata and
    `projector_config.pbtxt` itself.

    Args:
        embed: `model -> (vectors (N, D), labels (N,) or None, images (N, h, w, C) uint8 or None)`.
        log_dir: the TensorBoard folder; the trainer sets it to the run's `logs/` when None.
        every: epochs between writes; 0 writes only when training ends.
    """

    def __init__(self, embed: Callable, log_dir: str | None = None, every: int = 0):
        super().__init__()
        self.embed, self.log_dir, self.every = embed, log_dir, every

    def on_epoch_end(self, epoch, logs=None):
        if self.every and (epoch + 1) % self.every == 0:
            self.write()

    def on_train_end(self, logs=None):
        self.write()

    def write(self) -> None:
        """Write the projector files of `embed(model)` into `log_dir` (`write_projector_files`)."""
        from zoo.visualize import write_projector_files

        write_projector_files(self.log_dir, *self.embed(self.model))


class ConfusionMatrix(keras.callbacks.Callback):
    """After each epoch: the confusion matrix of `predict(model) -> (true ids, predicted ids)` as
    a TensorBoard image `<tag>`: rows are true classes, columns predicted ones, each row
    normalised, darker is more.

    Args:
        predict: returns integer class ids, true and predicted, for the validation data.
        class_names: the names of the classes, in id order.
        cell: pixels per cell of the picture.
    """

    def __init__(self, predict: Callable, class_names: list[str], tag: str = "confusion_matrix",
                 cell: int = 24):
        super().__init__()
        self.predict, self.class_names, self.tag, self.cell = predict, list(class_names), tag, cell

    def matrix(self) -> np.ndarray:
        """`(K, K)` counts: row = true class, column = predicted class."""
        true, predicted = (np.asarray(a, np.int64) for a in self.predict(self.model))
        k = len(self.class_names)
        return np.bincount(true * k + predicted, minlength=k * k).reshape(k, k)

    def on_epoch_end(self, epoch, logs=None):
        counts = self.matrix()
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # each true class sums to 1
        cells = (255 * (1 - share)).astype(np.uint8)  # white = none, black = all
        picture = np.kron(cells, np.ones((self.cell, self.cell), np.uint8))[..., None]
        write_picture(self.tag, np.repeat(picture, 3, axis=-1),
                      "rows: true " + ", ".join(self.class_names) + "; columns: predicted")


class OneClassAlarm(keras.callbacks.Callback):
    """When training ends: a warning on stderr if the model gives (nearly) every validation
    example the same class while the labels are not (nearly) all that class: the signature of
    a model that learned nothing from its inputs (e.g. texts it cannot read), whose accuracy
    is just the majority share.

    Args:
        predict: `model -> (true ids, predicted ids)` on the validation data.
        class_names: the names of the classes, in id order.
        name: the prefix of the message (e.g. the recipe's name).
        share: the share of one predicted class that raises the alarm.
    """

    def __init__(self, predict: Callable, class_names: list[str], name: str, share: float = 0.98):
        super().__init__()
        self.predict, self.class_names, self.name, self.share = predict, list(class_names), name, share

    def message(self) -> str | None:
        """The warning, or None when the predictions are spread over the classes."""
        true, predicted = (np.asarray(a, np.int64) for a in self.predict(self.model))
        if len(predicted) == 0:
            return None
        top = int(np.bincount(predicted).argmax())
        predicted_share, true_share = float(np.mean(predicted == top)), float(np.mean(true == top))
        if predicted_share < self.share or true_share >= self.share:
            return None
        return (f"the model predicts {self.class_names[top]!r} for {predicted_share:.0%} of the "
                f"{len(predicted)} validation examples, where {true_share:.0%} have that label: it "
                "has learned (almost) nothing from its inputs. Check that the inputs are read as "
                "intended (for text: the tokens per text printed at the start, --tokens, --text-column)")

    def on_train_end(self, logs=None):
        import sys

        message = self.message()
        if message:
            print(f"\n{self.name}: WARNING: {message}", file=sys.stderr, flush=True)
