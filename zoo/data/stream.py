"""Training images as tf.data batches: kept in memory when they fit, else streamed from disk,
with the same batches either way.

`open_images` lists a folder's files (or memory-maps an `.npy` array) at start, decoding
nothing, and decides with `zoo.data.cache.keep_in_memory` from the size of the images once
decoded at the requested size (float32, or uint8 when no value range is asked for). In memory,
every image is decoded once at start (on parallel threads); streamed, each is decoded,
converted and resized inside tf.data by the very same code (`ListedImages.read` in a
`tf.numpy_function`: PIL, so EXIF orientation, 16-bit and palette images are handled as
`load_images` handles them), in parallel, in order, prefetched. idx files and TFDS data are
read whole, as `load_images` reads them.

Shuffling works on a stream of indices: every epoch is a permutation of the images by tf.data's
seeded shuffle over all indices, so batch k depends only on the seed and k (given TensorFlow's
global seed, which the trainer sets from the same `--seed`), and it is the same batch in memory
and streamed (and the batch the recipes made before streaming existed). `Images.batches(...)`
returns `start -> batches from batch start on`: the `start` batches are skipped on the index
stream, so a resumed run decodes nothing it does not train on.

A file that fails to decode when streamed (its header read at start, its pixels damaged)
stops the run with a TensorFlow error naming it. Keep a streamed iterator in a function, not in
a module global: a live one at interpreter exit can hang TF 2.21 (`_release_uncaught_exception`
covers the iterators held by an uncaught exception's frames, e.g. the trainer's).
"""

from __future__ import annotations

import atexit
import gc
import math
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.data.cache import CACHE_SETTINGS, keep_in_memory
from zoo.data.sources import DECODE_THREADS, ListedImages, list_image_source, load_pixels, scale_pixels
from zoo.errors import UserError


@dataclass(frozen=True, eq=False)
class Images:
    """The images of one source and split at one size: an array in memory, or listed files
    (array rows) decoded when read. Pixels are float32 in `value_range`, or uint8 0..255 when
    `value_range` is None.

    Example:
    >>> images = open_images("photos/", "train", 3, (64, 64), (0.0, 1.0))  # doctest: +SKIP
    >>> batches = images.batches(32, seed=0)  # doctest: +SKIP
    >>> first = next(iter(batches(0)))  # (32, 64, 64, 3) float32  # doctest: +SKIP
    """

    shape: tuple[int, int, int]  # (H, W, C) of every image
    labels: np.ndarray | None  # int32 (N,)
    names: list[str] | None  # class names (index = label)
    value_range: tuple[float, float] | None
    array: np.ndarray | None = None  # in memory: (N, H, W, C)
    listed: ListedImages | None = None  # streamed

    def __len__(self) -> int:
        return len(self.array) if self.array is not None else len(self.listed)

    @property
    def in_memory(self) -> bool:
        return self.array is not None

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """The images at `indices`, in that order, as one `(n, H, W, C)` array (streamed ones
        are decoded now, on parallel threads).

        Raises:
            UserError: an unreadable file.
        """
        indices = np.asarray(indices, np.int64)
        if self.in_memory:
            return self.array[indices]
        height, width, channels = self.shape
        with ThreadPoolExecutor(DECODE_THREADS) as pool:
            images = list(pool.map(lambda i: self.listed.read(int(i), channels, (height, width)), indices))
        pixels = np.stack(images) if images else np.zeros((0, *self.shape), np.uint8)
        return pixels if self.value_range is None else scale_pixels(pixels, self.value_range)

    def sample(self, count: int) -> np.ndarray:
        """At most `count` images spread evenly over the set (first and last included), in order."""
        return self.read(np.unique(np.linspace(0, len(self) - 1, min(count, len(self))).round()))

    def batches(self, batch_size: int, seed: int, with_labels: bool = False) -> Callable[[int], tf.data.Dataset]:
        """`start -> endless shuffled batches from batch start on`: `(B, H, W, C)` images, or
        `(images, int32 labels)` with `with_labels`; every epoch a seeded permutation.

        Args:
            batch_size: images per batch (the last images of an epoch run on into the next).
            seed: the shuffle's seed.
            with_labels: also give each image's label (the set must have labels).
        """
        if with_labels and self.labels is None:
            raise UserError("labels were asked for, but these images have none")
        count, labels = len(self), tf.constant(self.labels) if with_labels else None
        read, finish = self._reader()

        def from_batch(start: int) -> tf.data.Dataset:
            order = tf.data.Dataset.range(count).shuffle(count, seed=seed, reshuffle_each_iteration=True)
            order = order.repeat().skip(start * batch_size)  # nothing decoded for skipped batches
            batches = read(order).batch(batch_size, drop_remainder=True).map(finish)  # (images, indices)
            if with_labels:
                return batches.map(lambda x, i: (x, tf.gather(labels, i))).prefetch(tf.data.AUTOTUNE)
            return batches.map(lambda x, i: x).prefetch(tf.data.AUTOTUNE)

        return from_batch

    def _reader(self):
        """`(indices -> (image or index, index) elements, batch -> (images, indices))`: in memory
        a batch of indices is gathered from one constant; streamed, each image is decoded (in
        parallel, in order) and a batch is mapped onto the value range. Neither holds `self`."""
        if self.in_memory:
            pixels = tf.constant(self.array)
            return (lambda order: order.map(lambda i: (i, i)),
                    lambda _, i: (tf.gather(pixels, i), i))
        decode, value_range = _decoder(self.listed, self.shape), self.value_range

        def to_range(images, i):
            if value_range is None:
                return images, i
            low, high = value_range
            return tf.cast(images, tf.float32) * np.float32((high - low) / 255.0) + np.float32(low), i

        return (lambda order: order.map(lambda i: (decode(i), i), num_parallel_calls=tf.data.AUTOTUNE,
                                        deterministic=True),
                to_range)


def _release_uncaught_exception() -> None:
    """At exit, before Python finalizes: drop the frames of an uncaught exception and collect
    them, so that a streamed iterator they hold is destroyed while Python can still run its
    decode function. (TF 2.21's distributed iterator otherwise waits forever in its destructor
    for a `numpy_function` that finalization stopped: the process hangs after the traceback.)"""
    for name in ("last_exc", "last_type", "last_value", "last_traceback"):
        if hasattr(sys, name):
            setattr(sys, name, None)
    gc.collect()


atexit.register(_release_uncaught_exception)


def _decoder(listed: ListedImages, shape: tuple[int, int, int]) -> Callable[[tf.Tensor], tf.Tensor]:
    """`index -> uint8 (H, W, C) image` inside tf.data: `ListedImages.read` (PIL) in a numpy_function."""
    height, width, channels = shape

    def read(index: np.ndarray) -> np.ndarray:
        return listed.read(int(index), channels, (height, width))

    def decode(index: tf.Tensor) -> tf.Tensor:
        image = tf.numpy_function(read, [index], tf.uint8, stateful=False)
        image.set_shape(shape)
        return image

    return decode


def open_images(source: str, split: str, channels: int, size: tuple[int, int],
                value_range: tuple[float, float] | None = None, limit: int | None = None, cache: str = "auto",
                what: str = "training images") -> Images:
    """The images of `source` at `size`, in memory or listed for streaming (`keep_in_memory`).

    Args:
        source, split, channels, size, limit: as in `zoo.data.load_images`.
        value_range: `(low, high)` that pixel values 0..255 map onto (float32), as in
            `load_images`; None: uint8 0..255.
        cache: "auto" (in memory when the decoded images take at most the cache budget), "on"
            or "off" (stream). Only folders of image files and array files can stream; idx
            files and TFDS data are always read whole.
        what: names the images in the printed decision, e.g. "training images".

    Returns:
        `Images` (the decision is printed for folders and array files).

    Raises:
        UserError: a missing, empty or unreadable source (headers of streamed files are read
            to catch non-images at once), bad arguments, or an unknown `cache`.
    """
    if cache not in CACHE_SETTINGS:
        raise UserError(f"--cache must be one of {', '.join(CACHE_SETTINGS)}, not {cache!r}")
    shape = (*size, channels)
    listed = list_image_source(source, split, limit)
    if listed is None:  # idx or TFDS: read whole
        if cache == "off":
            print(f"data: {what} ({source}): idx files and tfds: data are read whole; --cache off streams "
                  "folders and array files", flush=True)
        pixels, labels, names = load_pixels(source, split, channels, size, limit)
        return Images(shape, labels, names, value_range, array=_held(pixels, value_range))
    held = len(listed) * math.prod(shape) * (1 if value_range is None else 4)
    rows = "rows of" if isinstance(listed.rows, np.ndarray) else "files in"
    if keep_in_memory(cache, held, f"{what} ({len(listed)} {rows} {Path(listed.source).name})"):
        return Images(shape, listed.labels, listed.names, value_range,
                      array=_held(listed.read_all(channels, size), value_range))
    listed.check_headers()
    return Images(shape, listed.labels, listed.names, value_range, listed=listed)


def _held(pixels: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Pixels as held in memory: float32 in `value_range`, or uint8 (other idx dtypes rounded, clipped)."""
    if value_range is not None:
        return scale_pixels(pixels, value_range)
    if pixels.dtype == np.uint8:
        return pixels
    return np.clip(np.round(pixels.astype(np.float32)), 0, 255).astype(np.uint8)
