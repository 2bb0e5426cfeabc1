"""One entry point for image datasets, whatever `--data` names, and the one place for TFDS.

A source is `assets:NAME`, a folder with MNIST idx files, one idx images file, a folder of
images (flat, or `root/<label>/*.png` class subfolders, optionally under `root/train` and
`root/test`), or `tfds:NAME[/CONFIG]` (prepared TFDS data only: nothing is ever downloaded).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from zoo.data.assets import resolve_source
from zoo.data.idx import find_mnist_files, read_idx_pair, read_mnist
from zoo.data.images import MODES_BY_CHANNELS, image_files, read_image_files
from zoo.errors import UserError

TFDS_PREFIX = "tfds:"
# A requested split -> the TFDS splits tried in order when the dataset lists its splits.
_TFDS_SPLITS = {"train": ("train",), "test": ("test", "validation"), "validation": ("validation", "test")}
_IDX_NAME = re.compile(r"idx\d-ubyte$|\.idx$")

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

def _from_idx(images_path: Path, labels_path: Path | None) -> Loaded:
    images, labels = read_idx_pair(images_path, labels_path)
    if labels is None:
        return images[..., None], None, None
    return images[..., None], labels.astype(np.int32), [str(i) for i in range(int(labels.max()) + 1)]


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
            every split reads the same images); or `tfds:NAME[/CONFIG]`, prepared offline.
        split: "train" or "test" ("validation" too for TFDS).
        channels: 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); converted as `read_image` does.
        size: `(H, W)` to resize every image to (PIL bilinear, antialiased when shrinking);
            None: all images must already share one size.
        value_range: `(low, high)`: pixel values 0..255 are mapped linearly onto it.
        limit: at most this many images: the first ones for idx and TFDS data, a fixed
            (seeded) subset spread over all classes for image folders.

    Returns:
        `(images, labels, class_names)`: float32 `(N, H, W, channels)`, int32 `(N,)` or None,
        and the class names (index = label) or None.

    Raises:
        UserError: a missing, empty or unreadable source, bad arguments, images of different
            sizes without `size`, or TFDS data that is not prepared.
    """
    _check_arguments(channels, size, limit)
    source = resolve_source(source)
    if source.startswith(TFDS_PREFIX):
        images, labels, names = _from_tfds(source, split, limit)
        if not images:
            raise UserError(f"TFDS dataset {source} split {split!r} holds no examples")
        batch = _stack([to_channels(a, channels) for a in images],
                       [f"example {i}" for i in range(len(images))], size, source)
    else:
        batch, labels, names = _from_path(Path(source), split, channels, size, limit)
    low, high = value_range
    scaled = batch.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(low)
    return scaled, labels, names


def _from_path(path: Path, split: str, channels: int, size: tuple[int, int] | None,
               limit: int | None) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """uint8 `(N, H, W, channels)` images, labels and class names of a file or folder."""
    if not path.exists():
        raise UserError(f"data {path} does not exist: pass a folder of images, an idx file, "
                        "a folder of MNIST idx files or tfds:NAME")
    if path.is_file():
        if not _IDX_NAME.search(path.name.removesuffix(".gz")):
            raise UserError(f"{path} is not an image source: pass a folder of images, an idx images "
                            "file (*-idx3-ubyte[.gz], *.idx), a folder of MNIST idx files or tfds:NAME")
        idx = (path, _labels_beside(path))
    else:
        idx = find_mnist_files(path, split) if split in ("train", "test") else None
        if idx is None and any(_IDX_NAME.search(p.name.removesuffix(".gz")) for p in path.iterdir()):
            read_mnist(path, split)  # raises, naming the files this split lacks
    if idx is not None:
        images, labels, names = _from_idx(*idx)
        images, labels = images[:limit], None if labels is None else labels[:limit]
        images = to_channels(images, channels)
        if size is not None and images.shape[1:3] != tuple(size):
            images = np.stack([_resize(image, size) for image in images])
        return images, labels, names
    files, labels, names = _image_files(path, split, limit)
    batch = _stack(read_image_files(files, channels), [str(f.relative_to(path)) for f in files], size, str(path))
    return batch, None if labels is None else np.array(labels, np.int32), names


def _check_arguments(channels: int, size: tuple[int, int] | None, limit: int | None) -> None:
    if channels not in MODES_BY_CHANNELS:
        raise UserError(f"channels must be 1, 2, 3 or 4, not {channels!r}")
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise UserError(f"size must be (height, width) in pixels, not {size!r}")
    if limit is not None and limit < 1:
        raise UserError(f"limit must be at least 1, not {limit}")
