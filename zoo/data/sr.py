"""Super-resolution data: random training crops (LR made on the fly, or given as real pairs) and
evaluation images.

A source is a folder of images (PNG/JPEG/BMP/TIFF..., any sizes and modes), an `.npy` / `.npz`
array of images (`zoo.data.arrays`), `assets:NAME`, or `tfds:NAME[/CONFIG]` (e.g.
`tfds:div2k/bicubic_x4`; its HR image is used and LR is made here by antialiased bicubic, so
training matches the published evaluation protocol).

Files are listed at start, never all decoded: a set whose decoded pixels fit the cache budget
(`zoo.data.cache`, e.g. T91) is decoded once and kept in memory, anything larger streams from
disk, decoded inside tf.data. LR comes from antialiased bicubic of the HR crop, or, with
`lr_source`, from real low-resolution images matched by name (`0001.png` <-> `0001.png` or
DIV2K's `0001x4.png`) or, for arrays, by index. One-channel models see the BT.601 studio-range
Y of colour images (`zoo.data.images.luma`), as SR papers train and score them.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from zoo.data.arrays import LR_NPZ_KEYS, NPZ_KEYS, is_array_source, load_array, to_uint8_images
from zoo.data.assets import resolve_source
from zoo.data.cache import keep_in_memory
from zoo.data.images import (_DECODE_ERRORS, _NATURAL_MODES, bicubic_downscale, crop_to_multiple, list_images,
                             model_channels, model_channels_tf, read_image_files)
from zoo.data.sources import TFDS_PREFIX, tfds_dataset
from zoo.errors import UserError

_TF_DECODES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # decoded by tf.io.decode_image; others by PIL
_MAX_CROPS_PER_IMAGE = 16  # streamed: crops cut from one decoded image (spread over that many batches)


# ----------------------------------------------------------------------------- listed images

@dataclass(frozen=True)
class ImageSet:
    """Images listed but not decoded: files, or the rows of an (uint8 or [0, 1] float) array."""

    source: str
    names: tuple[str, ...]
    sizes: tuple[tuple[int, int, int], ...]  # (H, W, C) of each image as stored (C: its own channels)
    files: tuple[str, ...] = ()
    array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, keep: list[int]) -> ImageSet:
        array = self.array
        if array is not None and list(keep) != list(range(len(array))):
            array = array[keep]  # rows of one array share one size: kept all or none in practice
        return ImageSet(self.source, tuple(self.names[i] for i in keep), tuple(self.sizes[i] for i in keep),
                        tuple(self.files[i] for i in keep) if self.files else (), array)

    def decoded_bytes(self, channels: int) -> int:
        return sum(h * w * channels for h, w, _ in self.sizes)

    def read(self, channels: int | None) -> list[np.ndarray]:
        """Every image decoded, uint8 `(H, W, C)`: as the model sees it (`model_channels`), or
        with its own channels (None)."""
        if self.array is not None:
            images = [to_uint8_images(row) for row in self.array]
        else:
            images = read_image_files([Path(f) for f in self.files], where=f" in {self.source}")
        return images if channels is None else [model_channels(image, channels) for image in images]

    def decode(self, index: tf.Tensor, channels: int) -> tf.Tensor:
        """Image `index` decoded inside tf.data: uint8 `(H, W, channels)`."""
        if self.array is not None:
            rows = self.array
            image = tf.numpy_function(lambda i: to_uint8_images(rows[i]), [index], tf.uint8, stateful=False)
            image.set_shape([None, None, rows.shape[-1]])
        elif all(f.lower().endswith(_TF_DECODES) for f in self.files):
            contents = tf.io.read_file(tf.gather(tf.constant(self.files), index))
            image = tf.io.decode_image(contents, expand_animations=False)  # uint8, its own channels
        else:  # TIFF, WebP...: PIL, as read_image decodes them
            files = self.files
            image = tf.numpy_function(lambda i: read_image_files([Path(files[i])])[0], [index], tf.uint8,
                                      stateful=False)
            image.set_shape([None, None, None])
        return model_channels_tf(image, channels)


def list_image_set(source: str, low_resolution: bool = False) -> ImageSet:
    """List a folder or array source, reading only headers (sizes), never pixels.

    `low_resolution`: an `.npz` of several arrays gives its `lr` array (else `hr` or `images`),
    so one file may hold both.

    Raises:
        UserError: a missing folder or file, no image in the folder, an unreadable header
            (every bad file named at once), or a bad array (see `zoo.data.arrays.load_array`).
    """
    source = resolve_source(source)
    if is_array_source(source):
        array = load_array(source, keys=LR_NPZ_KEYS if low_resolution else NPZ_KEYS)
        n, h, w, c = array.shape
        names = tuple(f"{Path(source).name}[{i}]" for i in range(n))
        return ImageSet(source, names, ((h, w, c),) * n, (), array)
    files = list_images(source)
    sizes, bad = [], []
    for path in files:
        try:
            with Image.open(path) as image:
                sizes.append((image.height, image.width, len(_NATURAL_MODES.get(image.mode, "RGB"))))
        except _DECODE_ERRORS as error:
            bad.append(f"{path.name} ({error})")
    if bad:  # a failure already: check the others' data too (PIL's verify), to name every bad file
        bad += [problem for path in files if path.name not in {b.split(" (")[0] for b in bad}
                for problem in [_verify_problem(path)] if problem]
        raise UserError(f"{len(bad)} unreadable image file(s) in {source}: " + "; ".join(sorted(bad)))
    return ImageSet(source, tuple(p.name for p in files), tuple(sizes), tuple(str(p) for p in files))


def _verify_problem(path: Path) -> str | None:
    """`NAME (reason)` when PIL's verify finds the file damaged (e.g. cut short), else None."""
    try:
        with Image.open(path) as image:
            image.verify()
    except _DECODE_ERRORS as error:
        return f"{path.name} ({error})"
    return None


# ----------------------------------------------------------------------------- LR/HR pairs

def _lr_stem(stem: str, scale: int) -> str:
    """`0001x4` -> `0001` (DIV2K's LR names); other stems unchanged."""
    return re.sub(rf"x{scale}$", "", stem)


def match_pairs(hr: ImageSet, lr: ImageSet, scale: int) -> tuple[ImageSet, ImageSet]:
    """Order `lr` like `hr`: by file stem (`0001.png` <-> `0001.png` or `0001x4.png`), or by index
    for arrays; check every LR image is 1/scale of its HR.

    Raises:
        UserError: an unmatched file (naming it and where its match was looked for), arrays of
            different lengths, or an LR image of the wrong size (naming both images and sizes).
    """
    if (hr.array is None) != (lr.array is None):
        raise UserError(f"HR {hr.source} and LR {lr.source} must both be folders or both be arrays")
    if hr.array is None:
        by_stem = {}
        for i, name in enumerate(lr.names):
            by_stem.setdefault(_lr_stem(Path(name).stem, scale), i)
        order = [by_stem.get(Path(name).stem) for name in hr.names]
        missing = [name for name, i in zip(hr.names, order, strict=True) if i is None]
        extra = sorted(set(range(len(lr))) - set(order))
        if missing or extra:
            what = ([f"HR {n} has no LR image in {lr.source} (looked for {Path(n).stem}.* and "
                     f"{Path(n).stem}x{scale}.*)" for n in missing[:3]]
                    + [f"LR {lr.names[i]} has no HR image in {hr.source}" for i in extra[:3]])
            raise UserError(f"{len(missing) + len(extra)} unmatched file(s): " + "; ".join(what))
        lr = lr.subset(order)
    elif len(hr) != len(lr):
        raise UserError(f"HR array {hr.source} holds {len(hr)} images and LR array {lr.source} "
                        f"{len(lr)}: they pair by index, so they must hold as many")
    for hr_name, (hh, hw, _), lr_name, (lh, lw, _) in zip(hr.names, hr.sizes, lr.names, lr.sizes,
                                                          strict=True):
        if (lh, lw) != (hh // scale, hw // scale):
            raise UserError(f"LR {lr_name} is {lw}x{lh} but HR {hr_name} is {hw}x{hh}: at x{scale} the LR "
                            f"image must be {hw // scale}x{hh // scale}; check --scale and the pairing")
    return hr, lr


# ----------------------------------------------------------------------------- training crops

def _large_enough(hr: ImageSet, lr: ImageSet | None, crop: int) -> list[int]:
    """Indices of the images at least as large as the crop; warns naming the others."""
    small = [i for i, (h, w, _) in enumerate(hr.sizes) if min(h, w) < crop]
    names = ", ".join(f"{hr.names[i]} ({hr.sizes[i][1]}x{hr.sizes[i][0]})" for i in small[:5])
    names += ", ..." if len(small) > 5 else ""
    if len(small) == len(hr):
        raise UserError(f"every image is smaller than the {crop}-pixel HR crop ({names}): "
                        "pass a smaller --crop-size or larger images")
    if small:
        warnings.warn(f"skipping {len(small)} image(s) smaller than the {crop}-pixel crop: {names}",
                      stacklevel=4)
    return [i for i in range(len(hr)) if i not in set(small)]


def _crop(hr: tf.Tensor, lr: tf.Tensor | None, crop: int, scale: int, channels: int,
          seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """A random aligned crop of one image (and of its LR), flipped and rotated by a random
    multiple of 90 degrees; LR by bicubic when not given. float32 in [0, 1]."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if lr is None:
        hr = tf.image.stateless_random_crop(hr, (crop, crop, channels), seeds[0])
    else:  # one LR window, the HR window `scale` times it
        small = crop // scale
        corner = tf.random.stateless_uniform((2,), seeds[0], 0, tf.int32.max, tf.int32)
        corner = corner % (tf.shape(lr)[:2] - small + 1)  # (y, x) of the LR window
        lr = lr[corner[0]:corner[0] + small, corner[1]:corner[1] + small]
        hr = hr[corner[0] * scale:corner[0] * scale + crop, corner[1] * scale:corner[1] * scale + crop]
        hr, lr = tf.ensure_shape(hr, (crop, crop, channels)), tf.ensure_shape(lr, (small, small, channels))
    turns = tf.random.stateless_uniform((), seeds[2], 0, 4, tf.int32)
    hr = tf.image.rot90(tf.image.stateless_random_flip_left_right(hr, seeds[1]), turns)
    if lr is None:
        lr = bicubic_downscale(hr, scale)  # (crop / scale, crop / scale, C)
    else:  # the same flip (its draw depends on the seed only) and turns
        lr = tf.image.rot90(tf.image.stateless_random_flip_left_right(lr, seeds[1]), turns)
    return tf.cast(lr, tf.float32) / 255.0, tf.cast(hr, tf.float32) / 255.0


def _in_memory(images: ImageSet, channels: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """`index -> uint8 image` over images decoded once into one flat buffer (one image decoded
    at a time into it), held as one constant: memory peaks at twice the decoded size."""
    flat = np.empty(images.decoded_bytes(channels), np.uint8)  # EXIF turns keep h * w
    shapes, start = [], 0
    for i in range(len(images)):
        image = images.subset([i]).read(channels)[0]
        flat[start:start + image.size] = image.reshape(-1)
        shapes.append(image.shape)
        start += image.size
    ends = np.cumsum([h * w * c for h, w, c in shapes])
    starts, ends = tf.constant(np.concatenate([[0], ends[:-1]])), tf.constant(ends)
    flat, shapes = tf.constant(flat), tf.constant(np.array(shapes, np.int64))
    return lambda i: tf.reshape(flat[starts[i]:ends[i]], shapes[i])


def _cached_batches(hr: ImageSet, lr: ImageSet | None, crop: int, scale: int, channels: int, batch_size: int,
                    seed: int) -> Callable[[int], tf.data.Dataset]:
    """Every crop from a uniformly drawn image (images kept in memory)."""
    count, read_hr = len(hr), _in_memory(hr, channels)
    read_lr = _in_memory(lr, channels) if lr is not None else None

    def batches(start: int) -> tf.data.Dataset:
        draws = tf.data.Dataset.zip(tf.data.Dataset.random(seed=seed),
                                    tf.data.Dataset.random(seed=seed + 1).batch(2))
        crops = draws.skip(start * batch_size).map(
            lambda r, s: _crop(read_hr(r % count), None if read_lr is None else read_lr(r % count),
                               crop, scale, channels, s), num_parallel_calls=tf.data.AUTOTUNE)
        return crops.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return batches


def crops_per_image(images: ImageSet, crop: int) -> int:
    """Streamed: crops cut from each decoded image, so that decoding is a small share of a step;
    about one per 8 crop areas of the mean image, 1 to 16."""
    area = np.mean([h * w for h, w, _ in images.sizes])
    return int(np.clip(area // (8 * crop * crop), 1, _MAX_CROPS_PER_IMAGE))


def _streamed_batches(hr: ImageSet, lr: ImageSet | None, crop: int, scale: int, channels: int,
                      batch_size: int, seed: int) -> Callable[[int], tf.data.Dataset]:
    """Images decoded from disk in a seeded random order, `batch_size` at a time; each gives
    `crops` crops, one to each of `crops` consecutive batches, so a batch holds crops of
    `batch_size` different images and only `batch_size / crops` decodes are new per batch.
    Batch k depends only on the seed and k, and starting at batch k decodes nothing before it."""
    crops, count = crops_per_image(hr, crop), len(hr)

    def crops_of(draw: tf.Tensor, r: tf.Tensor) -> tf.data.Dataset:
        index = r % count
        images = (hr.decode(index, channels),) + ((lr.decode(index, channels),) if lr is not None else ())
        seeds = tf.data.Dataset.range(crops).map(
            lambda c: tf.stack([tf.cast(seed, tf.int64), draw * crops + c]))
        each = tf.data.Dataset.zip(tf.data.Dataset.from_tensors(images).repeat(crops), seeds)
        return each.map(lambda pair, s: _crop(pair[0], pair[1] if lr is not None else None, crop, scale,
                                              channels, s))

    def batches(start: int) -> tf.data.Dataset:
        group, within = divmod(start, crops)  # batch `start` = crop `within` of image group `group`
        draws = tf.data.Dataset.zip(tf.data.Dataset.counter(), tf.data.Dataset.random(seed=seed))
        pairs = draws.skip(group * batch_size).interleave(
            crops_of, cycle_length=batch_size, block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True)
        pairs = pairs.skip(within * batch_size)
        return pairs.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return batches


def sr_train_batches(source: str, crop: int, scale: int, batch_size: int, seed: int = 0, *,
                     lr_source: str | None = None, channels: int = 3, cache: str = "auto",
                     shuffle_buffer: int = 256) -> Callable[[int], tf.data.Dataset]:
    """`start -> endless batches of (lr, hr) from batch start on`, float32 in [0, 1]:
    `(B, crop/scale, crop/scale, channels)`, `(B, crop, crop, channels)`.

    Every crop is random, flipped and rotated by a random multiple of 90 degrees; LR is
    antialiased bicubic of the HR crop, or the aligned window of the matching real LR image.
    All randomness is stateless and seeded by `seed`: batch k is the same on every run, and
    asking for the batches from k on decodes nothing before batch k (exact, cheap resume).
    Sources are listed at once; images are decoded once and kept in memory when they fit the
    cache budget (`cache`: auto, on, off), else streamed from disk (`crops_per_image`).

    Args:
        source: HR images: folder, `.npy` / `.npz`, `assets:NAME` or `tfds:NAME[/CONFIG]` (train split).
        crop: HR crop size in pixels, a multiple of `scale`.
        scale: downscaling factor.
        batch_size: elements per batch (the global batch; tf.distribute splits it).
        seed: seed of the random stream.
        lr_source: real LR images matching `source` (folder or array; see `match_pairs`).
        channels: 3 (RGB) or 1 (`zoo.data.images.luma`: Y of colour images).
        cache: "auto", "on" or "off" (see `zoo.data.cache.keep_in_memory`).
        shuffle_buffer: images shuffled at once (TFDS sources only).

    Raises:
        UserError: `crop` is not a multiple of `scale`; a missing, unreadable or too small
            source; unmatched or mis-sized LR images; `lr_source` with a TFDS source.
    """
    if crop % scale:
        raise UserError(f"crop size {crop} must be a multiple of the scale {scale}")
    source = resolve_source(source)
    if source.startswith(TFDS_PREFIX):
        if lr_source:
            raise UserError("--lr-data pairs with a folder or array of HR images, not a TFDS dataset: "
                            "TFDS LR is made from HR by bicubic")
        return _tfds_batches(source, crop, scale, channels, batch_size, seed, shuffle_buffer)
    hr = list_image_set(source)
    lr = None
    if lr_source:
        hr, lr = match_pairs(hr, list_image_set(lr_source, low_resolution=True), scale)
    keep = _large_enough(hr, lr, crop)
    hr, lr = hr.subset(keep), None if lr is None else lr.subset(keep)
    size = hr.decoded_bytes(channels) + (lr.decoded_bytes(channels) if lr else 0)
    what = f"training images ({len(hr)}{' pairs' if lr else ''} in {Path(source).name})"
    if keep_in_memory(cache, size, what):
        return _cached_batches(hr, lr, crop, scale, channels, batch_size, seed)
    return _streamed_batches(hr, lr, crop, scale, channels, batch_size, seed)


def sr_train_dataset(source: str, crop: int, scale: int, batch_size: int, seed: int = 0,
                     shuffle_buffer: int = 256, **options) -> tf.data.Dataset:
    """The endless batches of `sr_train_batches(...)` from batch 0 (`start=` for another)."""
    start = options.pop("start", 0)
    batches = sr_train_batches(source, crop, scale, batch_size, seed, shuffle_buffer=shuffle_buffer, **options)
    return batches(start)


def _tfds_images(source: str, split: str) -> tf.data.Dataset:
    """uint8 `(H, W, 3)` images of a TFDS dataset (the "hr" feature if it has one)."""
    dataset, info = tfds_dataset(source, split)
    key = "hr" if "hr" in info.features else "image"
    return dataset.map(lambda example: example[key], num_parallel_calls=tf.data.AUTOTUNE)


def _tfds_batches(source: str, crop: int, scale: int, channels: int, batch_size: int, seed: int,
                  shuffle_buffer: int) -> Callable[[int], tf.data.Dataset]:
    images = _tfds_images(source, "train").filter(lambda a: tf.reduce_min(tf.shape(a)[:2]) >= crop)
    images = images.cache().repeat().shuffle(shuffle_buffer, seed=seed)
    images = images.map(lambda a: model_channels_tf(a, channels))
    seeds = tf.data.Dataset.random(seed=seed + 1).batch(2)
    pairs = tf.data.Dataset.zip(images, seeds).map(lambda hr, s: _crop(hr, None, crop, scale, channels, s),
                                                   num_parallel_calls=tf.data.AUTOTUNE)
    batches = pairs.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return lambda start: batches.skip(start)  # the shuffle buffer: batch k needs the ones before it


# ----------------------------------------------------------------------------- evaluation

def sr_eval_images(source: str, scale: int, lr_source: str | None = None) -> list[tuple]:
    """Evaluation images as `(name, uint8 HR)`, or `(name, HR, LR)` with real LR images.

    HR is cropped to multiples of `scale` (with LR: to exactly `scale` times the LR). Gray
    images stay single-channel `(H, W, 1)` (published SR tables score a gray image on its own
    0..255 values, not as RGB -> Y); colour images are RGB `(H, W, 3)`; alpha is dropped.

    Args:
        source: folder of images, `.npy` / `.npz`, `assets:NAME`, or `tfds:NAME[/CONFIG]`
            (its validation split).
        scale: the evaluation scale.
        lr_source: real LR images matching `source` (folder or array; see `match_pairs`).

    Returns:
        Sorted by file name (arrays and TFDS: by index).

    Raises:
        UserError: the source is missing or unreadable, LR images do not match, or an image
            is too small to score.
    """
    source = resolve_source(source)
    if source.startswith(TFDS_PREFIX):
        if lr_source:
            raise UserError("real LR images pair with a folder or array of HR images, not a TFDS dataset")
        validation = _tfds_images(source, "validation").as_numpy_iterator()
        named = [(f"{i:04d}", a) for i, a in enumerate(validation)]
        lows = [None] * len(named)
    else:
        hr = list_image_set(source)
        lr = None
        if lr_source:
            hr, lr = match_pairs(hr, list_image_set(lr_source, low_resolution=True), scale)
        named = list(zip(hr.names, [_natural_channels(a) for a in hr.read(None)], strict=True))
        lows = [_natural_channels(a) for a in lr.read(None)] if lr else [None] * len(named)
    result = []
    for (name, image), low in zip(named, lows, strict=True):
        if low is None:
            result.append((name, crop_to_multiple(image, scale)))
        else:
            result.append((name, image[:low.shape[0] * scale, :low.shape[1] * scale], low))
    least = 2 * scale + 11  # SSIM's 11x11 window must fit after shaving `scale` pixels per side
    small = [item[0] for item in result if min(item[1].shape[:2]) < least]
    if small:
        raise UserError(f"image(s) too small to evaluate at x{scale} (need at least {least}x{least} "
                        f"pixels): {', '.join(small)}")
    return result


def _natural_channels(image: np.ndarray) -> np.ndarray:
    """Gray stays `(H, W, 1)`, colour becomes RGB `(H, W, 3)`; alpha dropped."""
    return image[..., :1] if image.shape[-1] <= 2 else image[..., :3]


def sr_eval_dataset(images: list[tuple], scale: int, copies: int = 1, channels: int = 3) -> tf.data.Dataset:
    """Validation batches for a model's `test_step`: each image's `(lr, hr)` pair `copies` times,
    float32 in [0, 1], `(copies, H / scale, W / scale, channels)` and `(copies, H, W, channels)`.

    Images differ in size, so a batch holds one image. Pass the number of replicas as `copies`
    so that every replica gets a whole copy: means are unchanged, and no replica gets an empty
    batch (a convolution on an empty batch fails in TF 2.21's oneDNN path under MirroredStrategy).

    Args:
        images: `(name, HR)` or `(name, HR, LR)` uint8, as `sr_eval_images` returns them.
        scale: the downscaling factor; LR (when not given) is antialiased bicubic of HR, rounded to uint8.
        copies: examples per batch, all the same image.
        channels: the model's channels: 3 (gray replicated) or 1 (`zoo.data.images.luma`).
    """
    def pairs():
        for _, hr, *given in images:
            hr = model_channels(hr, channels)
            lr = model_channels(given[0], channels) if given else bicubic_downscale(hr, scale).numpy()
            yield tuple(np.repeat(a[None].astype(np.float32) / 255.0, copies, axis=0) for a in (lr, hr))

    spec = tf.TensorSpec((copies, None, None, channels), tf.float32)
    return tf.data.Dataset.from_generator(pairs, output_signature=(spec, spec))
