"""Super-resolution data: random HR crops with LR made on the fly, and evaluation images.

`source` is a folder of images (PNG/JPEG/BMP/TIFF..., any sizes and modes), `assets:NAME`,
or `tfds:NAME[/CONFIG]` (e.g. `tfds:div2k/bicubic_x4`; the HR image is used and LR is always
made here by antialiased bicubic, so training matches the published evaluation protocol).
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from zoo.data.assets import resolve_source
from zoo.data.images import bicubic_downscale, crop_to_multiple, read_images
from zoo.data.sources import TFDS_PREFIX, tfds_dataset
from zoo.errors import UserError


def _tfds_images(source: str, split: str) -> tf.data.Dataset:
    """uint8 `(H, W, 3)` images of a TFDS dataset (the "hr" feature if it has one)."""
    dataset, info = tfds_dataset(source, split)
    key = "hr" if "hr" in info.features else "image"
    return dataset.map(lambda example: example[key], num_parallel_calls=tf.data.AUTOTUNE)


def _large_enough(images: list[tuple[str, np.ndarray]], crop: int) -> list[tuple[str, np.ndarray]]:
    """Drop (with a warning naming them) images smaller than the crop; fail if none is left."""
    small = [f"{name} ({a.shape[1]}x{a.shape[0]})" for name, a in images if min(a.shape[:2]) < crop]
    names = ", ".join(small[:5]) + (", ..." if len(small) > 5 else "")
    if len(small) == len(images):
        raise UserError(f"every image is smaller than the {crop}-pixel HR crop ({names}): "
                        "pass a smaller --crop-size or larger images")
    if small:
        warnings.warn(f"skipping {len(small)} image(s) smaller than the {crop}-pixel crop: {names}",
                      stacklevel=3)
    return [(name, a) for name, a in images if min(a.shape[:2]) >= crop]


def _folder_images(folder: str, crop: int, seed: int) -> tf.data.Dataset:
    """Endless uint8 images drawn uniformly at random, decoded once and kept in memory."""
    images = _large_enough(read_images(folder, channels=3), crop)
    flat = tf.constant(np.concatenate([a.reshape(-1) for _, a in images]))  # all pixels
    ends = np.cumsum([a.size for _, a in images])
    starts = tf.constant(np.concatenate([[0], ends[:-1]]))
    ends = tf.constant(ends)
    shapes = tf.constant(np.array([a.shape for _, a in images], np.int64))
    count = len(images)
    return tf.data.Dataset.random(seed=seed).map(
        lambda r: tf.reshape(flat[starts[r % count]:ends[r % count]], shapes[r % count]))


def _augment(hr: tf.Tensor, crop: int, scale: int, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Random crop, flip and 90-degree rotation of one uint8 image; LR by bicubic."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    hr = tf.image.stateless_random_crop(hr, (crop, crop, 3), seeds[0])
    hr = tf.image.stateless_random_flip_left_right(hr, seeds[1])
    hr = tf.image.rot90(hr, tf.random.stateless_uniform((), seeds[2], 0, 4, tf.int32))
    lr = bicubic_downscale(hr, scale)  # (crop / scale, crop / scale, 3) uint8
    return tf.cast(lr, tf.float32) / 255.0, tf.cast(hr, tf.float32) / 255.0


def sr_train_dataset(source: str, crop: int, scale: int, batch_size: int, seed: int = 0,
                     shuffle_buffer: int = 256) -> tf.data.Dataset:
    """Endless batches of `(lr, hr)` float32 in [0, 1]: `(B, crop/scale, crop/scale, 3)`, `(B, crop, crop, 3)`.

    Every element picks a random image and a random crop of it, flips and rotates it by
    a random multiple of 90 degrees, and makes LR by antialiased bicubic. All randomness
    is stateless and seeded by `seed`, so the stream is the same on every run.

    Args:
        source: folder of images (any mode, read as RGB), `assets:NAME`, or
            `tfds:NAME[/CONFIG]` (its train split).
        crop: HR crop size in pixels, a multiple of `scale`.
        scale: downscaling factor.
        batch_size: elements per batch (the global batch; tf.distribute splits it).
        seed: seed of the random stream.
        shuffle_buffer: images shuffled at once (TFDS sources only).

    Returns:
        The endless, batched `tf.data.Dataset`.

    Raises:
        UserError: `crop` is not a multiple of `scale`, or the source is missing, unreadable
            or has no image as large as the crop.
    """
    source = resolve_source(source)
    if crop % scale:
        raise UserError(f"crop size {crop} must be a multiple of the scale {scale}")
    if source.startswith(TFDS_PREFIX):
        images = _tfds_images(source, "train").filter(lambda a: tf.reduce_min(tf.shape(a)[:2]) >= crop)
        images = images.cache().repeat().shuffle(shuffle_buffer, seed=seed)
    else:
        images = _folder_images(source, crop, seed)
    seeds = tf.data.Dataset.random(seed=seed + 1).batch(2)
    pairs = tf.data.Dataset.zip(images, seeds).map(
        lambda hr, s: _augment(hr, crop, scale, s), num_parallel_calls=tf.data.AUTOTUNE)
    return pairs.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def sr_eval_images(source: str, scale: int) -> list[tuple[str, np.ndarray]]:
    """Evaluation images as `(name, uint8 image)`, cropped to multiples of `scale`.

    Gray images stay single-channel `(H, W, 1)` (published SR tables score a gray image on
    its own 0..255 values, not as RGB -> Y); colour images are RGB `(H, W, 3)`; alpha is dropped.

    Args:
        source: folder of images, `assets:NAME`, or `tfds:NAME[/CONFIG]` (its validation split).
        scale: the evaluation scale.

    Returns:
        `(name, image)` pairs, sorted by file name (TFDS: "0000", "0001", ...).

    Raises:
        UserError: the source is missing or unreadable, or an image is too small to score.
    """
    source = resolve_source(source)
    if source.startswith(TFDS_PREFIX):
        named = [(f"{i:04d}", a) for i, a in enumerate(_tfds_images(source, "validation").as_numpy_iterator())]
    else:
        named = [(name, a[..., :1] if a.shape[-1] <= 2 else a[..., :3]) for name, a in read_images(source)]
    cropped = [(name, crop_to_multiple(a, scale)) for name, a in named]
    least = 2 * scale + 11  # SSIM's 11x11 window must fit after shaving `scale` pixels per side
    small = [name for name, a in cropped if min(a.shape[:2]) < least]
    if small:
        raise UserError(f"image(s) too small to evaluate at x{scale} (need at least {least}x{least} "
                        f"pixels): {', '.join(small)}")
    return cropped


def sr_eval_dataset(images: list[tuple[str, np.ndarray]], scale: int, copies: int = 1) -> tf.data.Dataset:
    """Validation batches for a model's `test_step`: each image's `(lr, hr)` pair `copies` times,
    float32 in [0, 1], `(copies, H / scale, W / scale, 3)` and `(copies, H, W, 3)` (gray as RGB).

    Images differ in size, so a batch holds one image. Pass the number of replicas as `copies`
    so that every replica gets a whole copy: means are unchanged, and no replica gets an empty
    batch (a convolution on an empty batch fails in TF 2.21's oneDNN path under MirroredStrategy).

    Args:
        images: `(name, (H, W, C) uint8)` as `sr_eval_images` returns them.
        scale: the downscaling factor; LR is antialiased bicubic of HR, rounded to uint8.
        copies: examples per batch, all the same image.
    """
    def pairs():
        for _, hr in images:
            hr = np.repeat(hr, 3, axis=-1) if hr.shape[-1] == 1 else hr
            lr = bicubic_downscale(hr, scale).numpy()
            yield tuple(np.repeat(a[None].astype(np.float32) / 255.0, copies, axis=0) for a in (lr, hr))

    spec = tf.TensorSpec((copies, None, None, 3), tf.float32)
    return tf.data.Dataset.from_generator(pairs, output_signature=(spec, spec))
