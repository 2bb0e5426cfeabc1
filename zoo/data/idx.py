"""idx files (the MNIST format), raw or gzip-compressed.

An idx file is a big-endian header, then the values in C order:
two zero bytes, a dtype byte, the number of dimensions, one uint32 size per dimension.
MNIST images have magic 0x00000803 (2051: uint8, 3 dimensions (N, rows, cols)),
labels 0x00000801 (2049: uint8, 1 dimension (N,)). See http://yann.lecun.com/exdb/mnist/.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from zoo.data.assets import resolve_source
from zoo.errors import UserError

# dtype byte -> big-endian NumPy dtype
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def read_idx(path: str | Path, limit: int | None = None) -> np.ndarray:
    """Read an idx file (raw, or gzip when its name ends in `.gz` or its bytes start like gzip).

    Args:
        path: the file, e.g. `train-images-idx3-ubyte.gz` (or `assets:NAME`).
        limit: read only the first `limit` entries along the first axis (None: all). Only the
            bytes they need are decompressed and checked: MNIST's first 10,000 training images
            cost a sixth of the whole file.

    Returns:
        The array in native byte order, of the file's dtype (uint8, int8, int16, int32,
        float32, float64) and shape (MNIST images: uint8 `(N, 28, 28)`, labels uint8 `(N,)`).

    Raises:
        UserError: the file is missing, its gzip stream is corrupt, its header is not idx
            (wrong magic, unknown dtype) or its size does not match the header.
    """
    return _read_idx(Path(resolve_source(str(path))), limit)[0]


def _read_idx(path: Path, limit: int | None) -> tuple[np.ndarray, tuple[int, ...]]:
    """`(the first `limit` entries (None: all), the shape the header gives)`, read as a stream."""
    if not path.is_file():
        raise UserError(f"idx file {path} does not exist")
    with path.open("rb") as raw:
        compressed = path.suffix == ".gz" or raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        try:
            return _read_idx_stream(path, gzip.GzipFile(fileobj=raw) if compressed else raw, limit)
        except (OSError, EOFError, zlib.error) as error:
            if not compressed:
                raise
            raise UserError(f"idx file {path} is not a valid gzip file ({error}): "
                            "download it again or pass the uncompressed file") from None


def _read_idx_stream(path: Path, stream, limit: int | None) -> tuple[np.ndarray, tuple[int, ...]]:
    magic = stream.read(4)
    if len(magic) < 4 or magic[0] or magic[1] or magic[2] not in IDX_DTYPES:
        raise UserError(f"{path} is not an idx file (wrong magic number {magic.hex() or 'none'}; "
                        "expected 0000 then a dtype byte and the number of dimensions): pass an "
                        "idx file such as train-images-idx3-ubyte.gz")
    ndim, dtype = magic[3], np.dtype(IDX_DTYPES[magic[2]])
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise UserError(f"idx file {path} is truncated inside its header: download it again")
    shape = tuple(int(n) for n in np.frombuffer(sizes, ">u4", ndim))
    header = 4 + 4 * ndim
    whole = limit is None or not shape or limit >= shape[0]
    kept = shape if whole else (limit, *shape[1:])
    needed = dtype.itemsize * math.prod(kept)
    data = stream.read(needed)
    extra = len(stream.read()) if whole else 0  # past the last value: none in a sound file
    if len(data) != needed or extra:
        raise UserError(f"idx file {path} has {header + len(data) + extra} bytes but its header {shape} "
                        f"{dtype.name} needs {header + dtype.itemsize * math.prod(shape)}: the file is "
                        "truncated or damaged, download it again")
    return np.frombuffer(data, dtype).reshape(kept).astype(dtype.newbyteorder("=")), shape


def find_mnist_files(folder: str | Path, split: str) -> tuple[Path, Path] | None:
    """The `(images, labels)` idx files of `split` in `folder` (raw or `.gz`), or None if both miss.

    Raises:
        UserError: `split` is not "train" or "test", or only one of the two files is there.
    """
    if split not in MNIST_FILES:
        raise UserError(f"unknown MNIST split {split!r}: use 'train' or 'test'")
    folder = Path(folder)
    found = [_first_existing(folder, name) for name in MNIST_FILES[split]]
    if found == [None, None]:
        return None
    missing = [name for name, path in zip(MNIST_FILES[split], found, strict=True) if path is None]
    if missing:
        raise UserError(f"MNIST folder {folder} lacks {', '.join(n + '(.gz)' for n in missing)} "
                        f"for the {split} split: add the missing file")
    return found[0], found[1]


def _first_existing(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def read_mnist(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST (or Fashion-MNIST, same file names) from a folder of the four idx files.

    Args:
        folder: the folder holding `train-images-idx3-ubyte(.gz)`, `train-labels-idx1-ubyte(.gz)`,
            `t10k-images-idx3-ubyte(.gz)` and `t10k-labels-idx1-ubyte(.gz)` (or `assets:NAME`).
        split: "train" or "test" (the t10k files).

    Returns:
        `(images, labels)`: uint8 `(N, rows, cols)` and uint8 `(N,)`.

    Raises:
        UserError: the folder or a file of the split is missing (the message lists which),
            a file is damaged, or images and labels disagree.
    """
    folder = Path(resolve_source(str(folder)))
    if not folder.is_dir():
        raise UserError(f"MNIST folder {folder} does not exist: pass a folder of idx files")
    files = find_mnist_files(folder, split)
    if files is None:
        names = ", ".join(f"{n}(.gz)" for n in MNIST_FILES[split])
        raise UserError(f"MNIST folder {folder} lacks {names} for the {split} split: "
                        "pass the folder that holds them")
    return read_idx_pair(*files)


def read_idx_pair(images_path: Path, labels_path: Path | None,
                  limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """An images idx file `(N, H, W)` and its labels file `(N,)`, checked to agree; with
    `limit`, the first `limit` images (`read_idx`) and all the labels.

    Raises:
        UserError: a file is damaged, images are not 3-D, labels not 1-D, or counts differ.
    """
    images, shape = _read_idx(Path(images_path), limit)
    if images.ndim != 3:
        raise UserError(f"idx file {images_path} holds shape {images.shape}, not images (N, H, W): "
                        "pass an images file such as train-images-idx3-ubyte.gz")
    if labels_path is None:
        return images, None
    labels = read_idx(labels_path)
    if labels.ndim != 1 or len(labels) != shape[0]:
        raise UserError(f"labels file {labels_path} holds shape {labels.shape} but {images_path} "
                        f"holds {shape[0]} images: pass matching files")
    return images, labels
