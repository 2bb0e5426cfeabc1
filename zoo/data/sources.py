"""One entry point for image datasets, whatever `--data` names, and the one place for TFDS.

A source is `assets:NAME`, a folder with MNIST idx files, one idx images file, a folder of
images (flat, or `root/<label>/*.png` class subfolders, optionally under `root/train` and
`root/test`), an `.npy` / `.npz` array of images (`zoo.data.arrays`), or `tfds:NAME[/CONFIG]`
(prepared TFDS data only: nothing is ever downloaded).

Folders and arrays can also be listed without decoding (`list_image_source`): `zoo.data.stream`
builds training pipelines on that, decoding each image inside tf.data exactly as `load_images`
does here.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.arrays import is_array_source, load_array, to_uint8_images
from zoo.data.assets import resolve_source
from zoo.data.idx import find_mnist_files, read_idx_pair, read_mnist
from zoo.data.images import _DECODE_ERRORS, MODES_BY_CHANNELS, _decode, image_files
from zoo.data.memory import aligned_empty
from zoo.errors import UserError

TFDS_PREFIX = "tfds:"
# A requested split -> the TFDS splits tried in order when the dataset lists its splits.
_TFDS_SPLITS = {"train": ("train",), "test": ("test", "validation"), "validation": ("validation", "test")}
_IDX_NAME = re.compile(r"idx\d-ubyte$|\.idx$")
_LABEL_KEYS = ("labels", "y")  # the labels of an .npz array source, tried in order
_ARRAY_CHUNK = 1024  # array rows converted at a time (bounds the memory of a float array's conversion)
DECODE_THREADS = max(1, min(8, os.cpu_count() or 1))  # image files decoded at once (PIL releases the GIL)

Loaded = tuple[np.ndarray, np.ndarray | None, list[str] | None]  # images, labels, class names


# ----------------------------------------------------------------------------- TFDS

def tfds_dataset(source: str, split: str):
    """The examples of a prepared TFDS dataset as a `tf.data.Dataset` of feature dicts.

    Only `builder.as_dataset` is called, so nothing downloads; `tfds.testing.mock_data` works.

    Args:
        source: `tfds:NAME[/CONFIG]` (or just `NAME[/CONFIG]`).
        split: a split name; "test" falls back to "validation" and back when the dataset
            lacks it; TFDS slicing such as "train[:10%]" is passed through.

    Returns:
        `(dataset, info)`: the `tf.data.Dataset` and the builder's `tfds.core.DatasetInfo`.

    Raises:
        UserError: unknown dataset or split, or the data is not prepared in the TFDS data dir.
    """
    import tensorflow_datasets as tfds
    from absl import logging as absl_logging

    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # "no dataset_info.json": the error below says it
    try:
        return _tfds_open(tfds, source.removeprefix(TFDS_PREFIX), split)
    finally:
        absl_logging.set_verbosity(verbosity)


def _tfds_open(tfds, name: str, split: str):
    try:
        builder = tfds.builder(name)
    except Exception as error:  # TFDS raises many types: not found, bad config, bad version...
        raise UserError(f"cannot load TFDS dataset {name!r}: {_first_line(error)}") from None
    split = _tfds_split(name, builder.info, split)
    try:
        return builder.as_dataset(split=split), builder.info
    except Exception as error:
        if not builder.is_prepared():
            raise UserError(f"TFDS dataset {name} is not available offline (not prepared in "
                            f"{builder.data_dir}); prepare it on a machine with network access "
                            "(tfds build, then copy the folder) or pass a folder") from None
        raise UserError(f"cannot load TFDS dataset {name!r} split {split!r}: "
                        f"{_first_line(error)}") from None


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _tfds_split(name: str, info, split: str) -> str:
    """The dataset's split for `split`; unchanged when the splits are unknown (mocked, unprepared)."""
    available = list(info.splits)
    if not available or split.split("[")[0] in available:
        return split
    for candidate in _TFDS_SPLITS.get(split, ()):
        if candidate in available:
            return candidate
    raise UserError(f"TFDS dataset {name} has no {split!r} split: it has {', '.join(available)}")


def _from_tfds(source: str, split: str, limit: int | None
               ) -> tuple[list[np.ndarray], np.ndarray | None, list[str] | None]:
    """uint8 images, int32 labels (if the dataset has a "label" feature) and class names."""
    dataset, info = tfds_dataset(source, split)
    if "image" not in info.features:
        raise UserError(f"TFDS dataset {source} has no 'image' feature (it has "
                        f"{', '.join(info.features)}): pass an image dataset")
    has_label = "label" in info.features
    dataset = dataset.take(limit) if limit else dataset
    images, labels = [], []
    for example in dataset.as_numpy_iterator():
        images.append(example["image"] if example["image"].ndim == 3 else example["image"][..., None])
        labels.append(example["label"] if has_label else 0)
    names = getattr(info.features["label"], "names", None) if has_label else None
    return images, np.array(labels, np.int32) if has_label else None, names


# ----------------------------------------------------------------------------- files and folders

def _from_idx(images_path: Path, labels_path: Path | None, limit: int | None) -> Loaded:
    """The first `limit` images (all: None), their labels, and class names from all the labels."""
    images, labels = read_idx_pair(images_path, labels_path, limit)
    if labels is None:
        return images[..., None], None, None
    names = [str(i) for i in range(int(labels.max()) + 1)]
    return images[..., None], labels[:len(images)].astype(np.int32), names


def _labels_beside(path: Path) -> Path | None:
    """The labels file matching an images idx file (train-images-idx3 -> train-labels-idx1)."""
    for name in (path.name.replace("images-idx3", "labels-idx1"), path.name.replace("images", "labels")):
        if name != path.name and (path.parent / name).is_file():
            return path.parent / name
    return None


def _has_images(folder: Path) -> bool:
    return bool(image_files(folder))


def _image_files(root: Path, split: str, limit: int | None
                 ) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """The image files of a folder (flat, or class subfolders) and their labels, if any."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if (root / split).is_dir():
        return _image_files(root / split, split, limit)
    if {"train", "test"} & {p.name for p in folders}:
        raise UserError(f"{root} has no {split!r} subfolder (it has "
                        f"{', '.join(p.name for p in folders)}): add one or pass its parent folder")
    if _has_images(root):
        files, labels, names = image_files(root), None, None
    else:
        classes = [p for p in folders if _has_images(p)]
        if not classes:
            raise UserError(f"{root} holds no images, no class subfolders of images and no MNIST "
                            "idx files: pass a folder of PNG/JPEG/BMP images")
        pairs = [(path, i) for i, folder in enumerate(classes) for path in image_files(folder)]
        files, labels, names = [p for p, _ in pairs], [i for _, i in pairs], [p.name for p in classes]
    if limit and limit < len(files):  # a fixed subset spread over all classes
        keep = np.sort(np.random.default_rng(0).choice(len(files), limit, replace=False))
        files = [files[i] for i in keep]
        labels = None if labels is None else [labels[i] for i in keep]
    return files, labels, names


def _idx_source(path: Path, split: str) -> tuple[Path, Path | None] | None:
    """The idx images file (and its labels file, if any) of `path` for `split`; None for a
    folder without idx files."""
    if path.is_file():
        if not _IDX_NAME.search(path.name.removesuffix(".gz")):
            raise UserError(f"{path} is not an image source: pass a folder of images, an .npy / .npz array, an "
                            "idx images file (*-idx3-ubyte[.gz], *.idx), a folder of MNIST idx files or tfds:NAME")
        return path, _labels_beside(path)
    idx = find_mnist_files(path, split) if split in ("train", "test") else None
    if idx is None and any(_IDX_NAME.search(p.name.removesuffix(".gz")) for p in path.iterdir()):
        read_mnist(path, split)  # raises, naming the files this split lacks
    return idx


def _array_labels(path: Path, count: int) -> np.ndarray | None:
    """The int32 labels of an `.npz` array source (its `labels` or `y` array), or None."""
    if path.suffix.lower() != ".npz":
        return None
    try:
        with np.load(path) as archive:
            key = next((k for k in _LABEL_KEYS if k in archive.files), None)
            if key is None or len(archive.files) < 2:  # a lone array is the images
                return None
            labels = archive[key]
    except ValueError as error:  # e.g. an object array (pickles are never loaded)
        raise UserError(f"cannot read the labels of {path}: {error}") from None
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise UserError(f"{path}: its {key!r} array is {labels.dtype} {labels.shape}, but labels must be one "
                        f"integer class id >= 0 per image, shape ({count},)")
    return labels.astype(np.int32)


# ----------------------------------------------------------------------------- arrays

def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 `(..., C)` images with C in 1..4 -> `(..., channels)`, as PIL's convert would.

    Gray is ITU-R 601 luma with PIL's integer rounding; alpha is dropped, or 255 when added.
    """
    have = images.shape[-1]
    if have == channels:
        return images
    color, alpha = (images[..., :1], images[..., 1:]) if have <= 2 else (images[..., :3], images[..., 3:])
    if alpha.shape[-1] == 0:
        alpha = np.full(images.shape[:-1] + (1,), 255, np.uint8)
    if channels <= 2 and color.shape[-1] == 3:
        weights = np.array([19595, 38470, 7471], np.uint32)
        color = ((color.astype(np.uint32) @ weights + 0x8000) >> 16).astype(np.uint8)[..., None]
    elif channels >= 3 and color.shape[-1] == 1:
        color = np.repeat(color, 3, axis=-1)
    return color if channels in (1, 3) else np.concatenate([color, alpha], axis=-1)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased when shrinking, as PIL does) resize of a uint8 `(H, W, C)` image."""
    if image.shape[:2] == tuple(size):
        return image
    mode = MODES_BY_CHANNELS[image.shape[-1]]
    resized = Image.fromarray(image[..., 0] if mode == "L" else image, mode).resize(
        (size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(resized).reshape(size[0], size[1], image.shape[-1])


def _stack(images: list[np.ndarray], names: list[str], size: tuple[int, int] | None,
           source: str) -> np.ndarray:
    """One `(N, H, W, C)` array: resized to `size`, else all sizes must agree."""
    if size is not None:
        images = [_resize(image, size) for image in images]
    first = images[0].shape
    for name, image in zip(names, images, strict=True):
        if image.shape[:2] != first[:2]:
            raise UserError(f"images of {source} have different sizes: {names[0]} is "
                            f"{first[1]}x{first[0]}, {name} is {image.shape[1]}x{image.shape[0]}; "
                            "pass a size to resize them all")
    return np.stack(images)


def _array_pixels(rows: np.ndarray, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """Rows of a checked array (uint8, or float in [0, 1], rounded to 8 bits) as uint8
    `(N, H, W, channels)`, resized to `size`; converted a chunk at a time."""
    height, width = size if size is not None else rows.shape[1:3]
    pixels = np.empty((len(rows), height, width, channels), np.uint8)
    for start in range(0, len(rows), _ARRAY_CHUNK):
        chunk = to_channels(to_uint8_images(rows[start:start + _ARRAY_CHUNK]), channels)
        if chunk.shape[1:3] != (height, width):
            chunk = [_resize(image, (height, width)) for image in chunk]
        pixels[start:start + len(chunk)] = chunk
    return pixels


def _file_pixels(path: Path, channels: int, size: tuple[int, int] | None) -> np.ndarray:
    """One image file as `load_images` reads it: `read_image`'s rules, then `_resize`."""
    image = _decode(path, channels, size)
    return image if size is None else _resize(image, size)


def _reason(path: Path, error: Exception) -> str:
    return str(error).replace(f"'{path}'", "").replace(str(path), "").strip(" :") or type(error).__name__


# ----------------------------------------------------------------------------- listed, not decoded

@dataclass(frozen=True, eq=False)
class ListedImages:
    """The images of a folder or an array file, listed but not decoded.

    `rows` are image files (decoded with `read_image`'s rules: EXIF orientation, 16-bit,
    palettes) or the rows of a checked `(N, H, W, C)` array (memory-mapped for `.npy`).
    `read` makes one image exactly as `read_all` (and so `load_images`) makes it, so a
    pipeline that decodes them one at a time sees the same pixels.
    """

    source: str  # the folder or array file
    rows: list[Path] | np.ndarray
    labels: np.ndarray | None  # int32 (N,)
    names: list[str] | None  # class names (index = label)

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, index: int, channels: int, size: tuple[int, int] | None) -> np.ndarray:
        """Image `index`: uint8 `(H, W, channels)`, resized to `size` (None: as stored).

        Raises:
            UserError: the file is unreadable (missing, truncated, not an image).
        """
        if isinstance(self.rows, np.ndarray):
            return _array_pixels(self.rows[index:index + 1], channels, size)[0]
        path = self.rows[index]
        try:
            return _file_pixels(path, channels, size)
        except _DECODE_ERRORS as error:
            raise UserError(f"cannot read image {path}: {_reason(path, error)}") from None

    def check_headers(self) -> None:
        """Open every file's header (not its pixels), in parallel: fail early, naming every file
        that is not a readable image. (A file damaged after its header fails when decoded.)

        Raises:
            UserError: naming every unreadable file.
        """
        if isinstance(self.rows, np.ndarray):
            return

        def problem(path: Path) -> str | None:
            try:
                with Image.open(path):
                    return None
            except _DECODE_ERRORS as error:
                return f"{path} ({_reason(path, error)})"

        with ThreadPoolExecutor(DECODE_THREADS) as pool:
            bad = [p for p in pool.map(problem, self.rows) if p is not None]
        if bad:
            raise UserError(f"{len(bad)} unreadable image file(s): " + "; ".join(bad))

    def read_all(self, channels: int, size: tuple[int, int] | None) -> np.ndarray:
        """Every image, uint8 `(N, H, W, channels)`. Files are decoded on parallel threads and
        each is resized at once, so memory holds the result plus one full-size image per thread.

        Raises:
            UserError: unreadable files (every one named at once), or images of different
                sizes without `size`.
        """
        if isinstance(self.rows, np.ndarray):
            return _array_pixels(self.rows, channels, size)

        def decode(path: Path) -> np.ndarray | str:
            try:
                return _file_pixels(path, channels, size)
            except _DECODE_ERRORS as error:
                return f"{path} ({_reason(path, error)})"

        with ThreadPoolExecutor(DECODE_THREADS) as pool:
            images = list(pool.map(decode, self.rows))  # in file order
        bad = [image for image in images if isinstance(image, str)]
        if bad:
            raise UserError(f"{len(bad)} unreadable image file(s): " + "; ".join(bad))
        root = Path(self.source)
        return _stack(images, [str(f.relative_to(root)) for f in self.rows], None, self.source)


def list_image_source(source: str, split: str = "train", limit: int | None = None) -> ListedImages | None:
    """The images of a folder or `.npy` / `.npz` source, listed (files) or memory-mapped
    (`.npy`), never decoded; None for the sources `load_images` reads whole (idx files, TFDS).

    Args:
        source, split, limit: as in `load_images` (an array file has no splits: every split
            is the whole array; `limit` keeps its first rows).

    Raises:
        UserError: a missing or empty source, a bad array (`zoo.data.arrays.load_array`) or
            bad labels in an `.npz`.
    """
    _check_arguments(1, None, limit)
    source = resolve_source(source)
    if source.startswith(TFDS_PREFIX):
        return None
    path = Path(source)
    if not path.exists():
        raise UserError(f"data {path} does not exist: pass a folder of images, an .npy / .npz array, an idx "
                        "file, a folder of MNIST idx files or tfds:NAME")
    if path.is_file() and is_array_source(path):
        array = load_array(path)
        labels = _array_labels(path, len(array))
        names = None if labels is None else [str(i) for i in range(int(labels.max(initial=0)) + 1)]
        return ListedImages(str(path), array[:limit], None if labels is None else labels[:limit], names)
    if _idx_source(path, split) is not None:
        return None
    files, labels, names = _image_files(path, split, limit)
    return ListedImages(str(path), files, None if labels is None else np.array(labels, np.int32), names)


# ----------------------------------------------------------------------------- entry point

def load_images(source: str, split: str = "train", channels: int = 1,
                size: tuple[int, int] | None = None, value_range: tuple[float, float] = (0.0, 1.0),
                limit: int | None = None) -> Loaded:
    """Images (and labels when the source has them) of any supported source, in memory.

    Args:
        source: `assets:NAME`; a folder holding MNIST idx files (`train-images-idx3-ubyte(.gz)`,
            ...); one idx images file (its labels file beside it is used when present); a
            folder of images, flat (no labels) or with class subfolders (labels by sorted
            subfolder name), using its `train`/`test` subfolder when it has one (without one,
            every split reads the same images); an `.npy` / `.npz` array of `(N, H, W)` or
            `(N, H, W, C)` images, uint8 or float in [0, 1] (rounded to 8 bits), labelled by
            an `.npz`'s `labels` (or `y`) array (an array has no splits: every split reads
            the whole array); or `tfds:NAME[/CONFIG]`, prepared offline.
        split: "train" or "test" ("validation" too for TFDS).
        channels: 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); converted as `read_image` does.
        size: `(H, W)` to resize every image to (PIL bilinear, antialiased when shrinking);
            None: all images must already share one size.
        value_range: `(low, high)`: pixel values 0..255 are mapped linearly onto it.
        limit: at most this many images: the first ones for idx, array and TFDS data, a fixed
            (seeded) subset spread over all classes for image folders.

    Returns:
        `(images, labels, class_names)`: float32 `(N, H, W, channels)`, int32 `(N,)` or None,
        and the class names (index = label) or None.

    Raises:
        UserError: a missing, empty or unreadable source, bad arguments, images of different
            sizes without `size`, or TFDS data that is not prepared.
    """
    batch, labels, names = load_pixels(source, split, channels, size, limit)
    return scale_pixels(batch, value_range), labels, names


def scale_pixels(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Pixel values 0..255 mapped linearly onto `value_range`, float32 (`load_images`' rule)."""
    low, high = value_range
    # In place in one new array (the same values as `astype`, `*`, `+`), 64-byte aligned so
    # that TensorFlow can take it without a copy (`zoo.data.memory.shared_tensor`).
    scaled = aligned_empty(pixels.shape, np.float32)
    np.multiply(pixels, np.float32((high - low) / 255.0), out=scaled, dtype=np.float32)
    scaled += np.float32(low)
    return scaled


def load_pixels(source: str, split: str = "train", channels: int = 1, size: tuple[int, int] | None = None,
                limit: int | None = None) -> Loaded:
    """`load_images` before its value mapping: the pixels as uint8 `(N, H, W, channels)` (idx
    files of another dtype keep it), labels and class names. Arguments as in `load_images`."""
    _check_arguments(channels, size, limit)
    source = resolve_source(source)
    if source.startswith(TFDS_PREFIX):
        images, labels, names = _from_tfds(source, split, limit)
        if not images:
            raise UserError(f"TFDS dataset {source} split {split!r} holds no examples")
        return (_stack([to_channels(a, channels) for a in images], [f"example {i}" for i in range(len(images))],
                       size, source), labels, names)
    listed = list_image_source(source, split, limit)
    if listed is not None:
        return listed.read_all(channels, size), listed.labels, listed.names
    images, labels, names = _from_idx(*_idx_source(Path(source), split), limit)
    images = to_channels(images, channels)
    if size is not None and images.shape[1:3] != tuple(size):
        images = np.stack([_resize(image, size) for image in images])
    return images, labels, names


def _check_arguments(channels: int, size: tuple[int, int] | None, limit: int | None) -> None:
    if channels not in MODES_BY_CHANNELS:
        raise UserError(f"channels must be 1, 2, 3 or 4, not {channels!r}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise UserError(f"size must be (height, width) in pixels, not {size!r}")
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1, not {limit}")
