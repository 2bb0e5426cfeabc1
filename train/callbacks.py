"""Generic callbacks. They log with `tf.summary.*`; the trainer makes its writer the default.

They know no model and no data format: a recipe hands them a function from zoo that does
the model-specific work (e.g. `zoo.evaluation.evaluate_sr`).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

Scalars = dict[str, float]
Pictures = dict[str, np.ndarray]


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
            tf.summary.image(f"{self.prefix}/{name}", np.asarray(picture)[None], description=self.description)


class EmbeddingProjector(keras.callbacks.Callback):
    """At the end of training (or every `every` epochs): vectors into TensorBoard's projector,
    with labels and image sprites. Keras' own projector option is broken (keras#20210), so this
    writes the checkpoint, metadata and `projector_config.pbtxt` itself.

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
        from pathlib import Path

        from tensorboard.plugins import projector

        from zoo.visualize import image_grid

        vectors, labels, images = self.embed(self.model)
        folder = Path(self.log_dir)
        folder.mkdir(parents=True, exist_ok=True)
        tf.train.Checkpoint(embedding=tf.Variable(np.asarray(vectors, np.float32))).write(
            str(folder / "embedding.ckpt"))
        # The projector plugin reads the folder's latest checkpoint: `write` makes no index file.
        (folder / "checkpoint").write_text('model_checkpoint_path: "embedding.ckpt"\n'
                                           'all_model_checkpoint_paths: "embedding.ckpt"\n')
        config = projector.ProjectorConfig()
        embedding = config.embeddings.add()
        embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
        if labels is not None:
            (folder / "metadata.tsv").write_text("".join(f"{label}\n" for label in labels))
            embedding.metadata_path = "metadata.tsv"
        if images is not None:
            images = np.asarray(images)
            cols = int(np.ceil(np.sqrt(len(images))))  # the projector wants a square sprite
            square = np.concatenate([images, np.zeros((cols * cols - len(images), *images.shape[1:]), images.dtype)])
            keras.utils.save_img(str(folder / "sprite.png"), image_grid(square, cols=cols, gutter=0), scale=False)
            embedding.sprite.image_path = "sprite.png"
            embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])
        projector.visualize_embeddings(str(folder), config)


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
        tf.summary.image(self.tag, np.repeat(picture, 3, axis=-1)[None],
                         description="rows: true " + ", ".join(self.class_names) + "; columns: predicted")
