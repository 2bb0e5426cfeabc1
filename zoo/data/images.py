"""Reading image files, and the bicubic resampling that defines super-resolution data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from zoo.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (PNG, JPEG, BMP) directly inside `folder`.

    Raises:
        UserError: the folder is missing, is not a folder, or holds no image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"data folder {folder} does not exist: pass --data with a folder of images")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: pass --data with a folder of PNG/JPEG/BMP images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UserError(f"data folder {folder} holds no PNG, JPEG or BMP image")
    return files


def read_image(path: str | Path, mode: str = "RGB") -> np.ndarray:
    """Decode one image file to a `(H, W, C)` uint8 array (`mode` as in PIL: RGB, RGBA, L).

    Raises:
        UserError: the file is missing, unreadable, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {path} does not exist")
    try:
        return _decode(path, mode)
    except _DECODE_ERRORS as error:
        raise UserError(f"cannot read image {path}: {error}") from None


_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


def _decode(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as image:
        image.load()
        array = np.asarray(image.convert(mode))
    return array if array.ndim == 3 else array[..., None]


def read_images(folder: str | Path) -> list[tuple[str, np.ndarray]]:
    """All images of a folder as `(file name, (H, W, 3) uint8)`, naming every bad file at once."""
    images, bad = [], []
    for path in list_images(folder):
        try:
            images.append((path.name, _decode(path, "RGB")))
        except _DECODE_ERRORS as error:
            reason = str(error).replace(f"'{path}'", "").replace(str(path), "").strip(" :")
            bad.append(f"{path.name} ({reason or type(error).__name__})")
    if bad:
        raise UserError(f"{len(bad)} unreadable image file(s) in {folder}: " + "; ".join(bad))
    return images


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 image atomically (temporary name, then rename); the folder must exist."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist: create it or choose another -o")
    squeezed = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        Image.fromarray(np.asarray(squeezed, np.uint8)).save(tmp)
    except (ValueError, KeyError, OSError) as error:  # OSError: e.g. RGBA as JPEG
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error} (use a .png, .jpg or .bmp name)") from None
    tmp.replace(path)


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Round and clip float pixel values in 0..255 to uint8, as a saved image file would."""
    return tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)


def bicubic_downscale(hr: tf.Tensor | np.ndarray, scale: int) -> tf.Tensor:
    """Antialiased bicubic downscaling by `scale` (like MATLAB imresize), uint8 in and out.

    `hr` is `(H, W, C)` or `(B, H, W, C)` with H and W multiples of `scale`.
    """
    hr = tf.convert_to_tensor(hr)
    height, width = hr.shape[-3], hr.shape[-2]
    if height is None:
        height, width = tf.shape(hr)[-3], tf.shape(hr)[-2]
    size = (height // scale, width // scale)
    return to_uint8(tf.image.resize(tf.cast(hr, tf.float32), size, "bicubic", antialias=True))


def bicubic_upscale(lr: tf.Tensor | np.ndarray, scale: int) -> tf.Tensor:
    """Bicubic upscaling by `scale`, uint8 in and out: the baseline every SR table reports."""
    lr = tf.convert_to_tensor(lr)
    size = (tf.shape(lr)[-3] * scale, tf.shape(lr)[-2] * scale)
    return to_uint8(tf.image.resize(tf.cast(lr, tf.float32), size, "bicubic"))


def crop_to_multiple(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right edge so that height and width are multiples of `scale`."""
    height, width = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    return image[:height, :width]
