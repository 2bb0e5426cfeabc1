"""NumPy arrays of images as a data source: `.npy` (memory-mapped, so never read whole) and `.npz`.

An array source holds `(N, H, W)` or `(N, H, W, C)` images (C in 1..4), uint8 0..255 or float
in [0, 1]. Wherever a folder of images is accepted, such a file is accepted too.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from zoo.errors import UserError

ARRAY_SUFFIXES = (".npy", ".npz")
NPZ_KEYS = ("images", "hr", "x")  # tried in order when an .npz holds several arrays
LR_NPZ_KEYS = ("lr", "images", "x")  # the same for low-resolution images (`--lr-data`)
_CHECK_ROWS = 4096  # rows of a float array read at a time to check its range


def is_array_source(source: str | Path) -> bool:
    """True for a path ending in `.npy` or `.npz` (whether or not it exists)."""
    return str(source).lower().endswith(ARRAY_SUFFIXES)


def load_array(path: str | Path, key: str | None = None, keys: tuple[str, ...] = NPZ_KEYS) -> np.ndarray:
    """The images of an `.npy` or `.npz` file as a `(N, H, W, C)` array, checked.

    An `.npy` file is memory-mapped: only the rows used are read from disk. An `.npz` file
    (zip) is read whole; it must hold one array, or `key`, or one named as in `keys`.

    Args:
        path: the `.npy` / `.npz` file.
        key: the array to use in an `.npz` file; None: see above.
        keys: names tried in order in an `.npz` file of several arrays (`LR_NPZ_KEYS` for
            low-resolution images, so one file can hold both `hr` and `lr`).

    Returns:
        uint8 or floating `(N, H, W, C)` (a `(N, H, W)` array gets C = 1), not copied.

    Raises:
        UserError: a missing or unreadable file, a shape other than `(N, H, W)` or
            `(N, H, W, C)` with C in 1..4, a dtype other than uint8 or float, or float values
            outside [0, 1] — each named with the file.

    Example:
    >>> images = load_array("lr.npy")  # doctest: +SKIP
    >>> images.shape  # doctest: +SKIP
    (1000, 32, 32, 1)
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"array file {path} does not exist: pass an existing .npy or .npz file")
    try:
        array = np.load(path, mmap_mode="r") if path.suffix.lower() == ".npy" else _from_npz(path, key, keys)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise UserError(f"cannot read array file {path}: {error}") from None
    return _checked(array, path)


def _from_npz(path: Path, key: str | None, keys: tuple[str, ...]) -> np.ndarray:
    with np.load(path) as archive:
        names = list(archive.files)
        if key is None:
            key = names[0] if len(names) == 1 else next((k for k in keys if k in names), None)
        if key not in names:
            raise UserError(f"{path} holds arrays {', '.join(names) or '(none)'}: save one array, "
                            f"or name the images one of {', '.join(keys)}")
        return archive[key]


def _checked(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 3:
        array = array[..., None]  # (N, H, W) -> (N, H, W, 1)
    if array.ndim != 4 or not 1 <= array.shape[-1] <= 4 or 0 in array.shape:
        raise UserError(f"array {path} has shape {array.shape}: images must be (N, H, W) or "
                        "(N, H, W, C) with C = 1 (gray), 2, 3 (RGB) or 4 (RGBA), N, H, W > 0")
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise UserError(f"array {path} has dtype {array.dtype}: images must be uint8 (0..255) or "
                        "float in [0, 1]; convert it, e.g. (a / a.max()).astype('float32')")
    for start in range(0, len(array), _CHECK_ROWS):
        rows = np.asarray(array[start:start + _CHECK_ROWS])
        low, high = float(rows.min()), float(rows.max())
        if not (0.0 <= low and high <= 1.0):  # also catches NaN
            raise UserError(f"array {path} is {array.dtype} with values from {low:g} to {high:g} "
                            f"(in rows {start}..{start + len(rows) - 1}): float images must lie in "
                            "[0, 1]; divide by 255 or save as uint8")
    return array


def to_uint8_images(rows: np.ndarray) -> np.ndarray:
    """Rows of a checked array (uint8, or float in [0, 1]) as uint8 0..255, rounded."""
    if rows.dtype == np.uint8:
        return np.asarray(rows)
    return np.round(np.asarray(rows, np.float32) * 255.0).astype(np.uint8)
