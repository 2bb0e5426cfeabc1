"""Reading and writing image files (outputs checked before any work, written atomically), and the
bicubic resampling that defines super-resolution data."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from zoo.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files (PNG, JPEG, BMP, TIFF, GIF, WebP) directly inside `folder`.

    Args:
        folder: the folder to list (not recursive).

    Returns:
        The image paths, sorted by name.

    Raises:
        UserError: the folder is missing, is not a folder, or holds no image.
    """
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"data folder {folder} does not exist: pass --data with a folder of images")
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder: pass --data with a folder of PNG/JPEG/BMP images")
    files = image_files(folder)
    if not files:
        raise UserError(f"data folder {folder} holds no PNG, JPEG or BMP image "
                        "(TIFF, GIF and WebP are read too): pass a folder of images")
    return files


def image_files(folder: Path) -> list[Path]:
    """The image files directly in `folder` (by suffix), sorted; hidden files skipped."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())


MODES_BY_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_CHANNELS_BY_MODE = {mode: channels for channels, mode in MODES_BY_CHANNELS.items()}
# PIL modes kept as they are (up to premultiplied alpha); "P" and all others are handled apart.
_NATURAL_MODES = {"1": "L", "L": "L", "LA": "LA", "La": "LA", "RGB": "RGB", "RGBA": "RGBA",
                  "RGBa": "RGBA", "PA": "RGBA"}
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def read_image(path: str | Path, channels: int | str | None = None, *, mode: str | None = None) -> np.ndarray:
    """Decode one image file of any mode and bit depth to a `(H, W, C)` uint8 array.

    The EXIF orientation (phone photos) is applied, as image viewers do. 16-bit gray
    (PIL modes I;16, I;16B; also I and F when their values exceed 255) is scaled by 1/257
    and rounded, so 65535 -> 255. Palette images become RGBA if they have transparency,
    else RGB; 1-bit images become gray 0/255; CMYK, YCbCr and other modes become RGB.

    Args:
        path: the image file (PNG, JPEG, BMP, TIFF, ... anything PIL reads).
        channels: None keeps the image's own channels (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA);
            1 converts to gray (ITU-R 601 luma, as PIL "L"; alpha dropped), 2 to gray+alpha,
            3 to RGB (gray replicated, alpha dropped), 4 to RGBA (opaque alpha added if none).
            A PIL mode name ("L", "LA", "RGB", "RGBA") is accepted too.
        mode: the former name of `channels` as a PIL mode name; kept for old callers.

    Returns:
        uint8 array `(H, W, C)`.

    Raises:
        UserError: the file is missing, unreadable, truncated or not an image, or `channels`
            is not one of the values above.
    """
    channels = _channels(mode if mode is not None else channels)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image {path} does not exist")
    try:
        return _decode(path, channels)
    except _DECODE_ERRORS as error:
        raise UserError(f"cannot read image {path}: {error}") from None


def _channels(channels: int | str | None) -> int | None:
    """A channel count (or None) from a count or a PIL mode name; UserError for anything else."""
    if isinstance(channels, str) and channels in _CHANNELS_BY_MODE:
        return _CHANNELS_BY_MODE[channels]
    if channels is None or channels in MODES_BY_CHANNELS:
        return channels
    raise UserError(f"cannot convert images to {channels!r} channels: use 1 (gray), 2 (gray + alpha), "
                    "3 (RGB) or 4 (RGBA)")


def _decode(path: Path, channels: int | None, shrink_to: tuple[int, int] | None = None) -> np.ndarray:
    """Open, orient and convert one image; PIL's errors pass through.

    `shrink_to` `(H, W)`: the image will be shrunk to that size next, so a JPEG may be decoded
    at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling, never below `shrink_to` on either
    side): a 2040x1356 photo for a 28x28 model decodes about 8x faster.
    """
    with Image.open(path) as opened:
        if shrink_to is not None and opened.format == "JPEG":
            side = max(shrink_to)  # either orientation: EXIF may turn the image after decoding
            opened.draft(opened.mode, (side, side))
        image = _natural(ImageOps.exif_transpose(opened))  # exif_transpose returns a loaded copy
    if channels is not None and image.mode != MODES_BY_CHANNELS[channels]:
        image = image.convert(MODES_BY_CHANNELS[channels])
    array = np.asarray(image)
    return array if array.ndim == 3 else array[..., None]


def _natural(image: Image.Image) -> Image.Image:
    """The image in the nearest of the 8-bit modes L, LA, RGB, RGBA."""
    if image.mode.startswith("I") or image.mode == "F":
        return Image.fromarray(_gray_to_uint8(image), "L")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.convert(_NATURAL_MODES.get(image.mode, "RGB"))


def _gray_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit, 32-bit integer or float gray -> `(H, W)` uint8; 0..65535 is scaled by 1/257."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or array.max(initial=0) > 255:
        array = array / 257.0
    return np.clip(np.round(array), 0, 255).astype(np.uint8)


def read_images(folder: str | Path, channels: int | None = None) -> list[tuple[str, np.ndarray]]:
    """All images of a folder as `(file name, (H, W, C) uint8)`, naming every bad file at once.

    Args:
        folder: a folder of image files (see `list_images`; other files are ignored).
        channels: as in `read_image`; None keeps each image's own channels.

    Returns:
        `(file name, image)` pairs sorted by file name.

    Raises:
        UserError: the folder is missing or holds no image, or some files are unreadable
            (all of them named in one message).
    """
    files = list_images(folder)
    return list(zip([p.name for p in files], read_image_files(files, channels, f" in {folder}"), strict=True))


def read_image_files(files: list[Path], channels: int | None = None, where: str = "") -> list[np.ndarray]:
    """Decode every file as `read_image` does, or raise one UserError naming every bad file.

    Args:
        files: image paths.
        channels: as in `read_image`.
        where: added to the message after "unreadable image file(s)", e.g. " in data/".
    """
    channels = _channels(channels)
    images, bad = [], []
    for path in files:
        try:
            images.append(_decode(path, channels))
        except _DECODE_ERRORS as error:
            reason = str(error).replace(f"'{path}'", "").replace(str(path), "").strip(" :")
            bad.append(f"{path} ({reason or type(error).__name__})")
    if bad:
        raise UserError(f"{len(bad)} unreadable image file(s){where}: " + "; ".join(bad))
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


def check_writable(path: Path, mode: str) -> None:
    """Fail before any work if `path`'s folder is missing or its format cannot hold an image of
    `mode` (e.g. RGBA as JPEG).

    Args:
        path: the output image file.
        mode: the PIL mode of the image to write (L, LA, RGB, RGBA).

    Raises:
        UserError: the folder is missing, the suffix names no image format, or the format
            cannot hold `mode`.
    """
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist: create it or choose another -o")
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise UserError(f"cannot write {path}: unknown image format {path.suffix!r}; "
                        "use a .png, .jpg, .bmp or .tif name")
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format=image_format)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot write {path}: {error}; use a .png name") from None


def refuse_overwriting(outputs: Iterable[Path], inputs: Iterable[str | Path]) -> None:
    """Fail if an output file is one of the inputs, whatever the spelling (`./a.png`, a
    relative or absolute path, a symbolic or hard link).

    Args:
        outputs: the files about to be written.
        inputs: the files read.

    Raises:
        UserError: naming the output and the input it would overwrite.
    """
    existing = [Path(p) for p in inputs if Path(p).exists()]
    for output in outputs:
        if not output.exists():
            continue  # an input exists, so a missing output is none of them
        for source in existing:
            if os.path.samefile(output, source):
                raise UserError(f"output {output} is the input {source}: zoo does not overwrite its "
                                "inputs; choose another -o")


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


# ----------------------------------------------------------------------------- Y channel (BT.601 studio range)
# The YCbCr of MATLAB's rgb2ycbcr, which every SR paper trains one-channel models on and scores in.
_YCBCR = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
                  np.float32) / np.float32(255.0)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """`(..., 3)` RGB 0..255 -> float32 `(..., 3)` YCbCr, BT.601 studio range (Y 16..235)."""
    return np.asarray(rgb, np.float32) @ _YCBCR.T + _YCBCR_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """The inverse of `rgb_to_ycbcr`, rounded and clipped to uint8 RGB."""
    rgb = (np.asarray(ycbcr, np.float32) - _YCBCR_OFFSET) @ np.linalg.inv(_YCBCR).T.astype(np.float32)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def luma(image: np.ndarray) -> np.ndarray:
    """What a one-channel SR model sees: uint8 `(H, W, 1)`, the studio-range Y of a colour image
    (alpha ignored), or the values themselves of a gray one (as published tables score gray sets)."""
    image = np.asarray(image)
    if image.shape[-1] <= 2:
        return image[..., :1].astype(np.uint8)
    y = 16.0 + (65.481 * image[..., 0:1].astype(np.float32) + 128.553 * image[..., 1:2]
                + 24.966 * image[..., 2:3]) / 255.0
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def luma_tf(image: tf.Tensor) -> tf.Tensor:
    """`luma` inside a tf.data pipeline: uint8 `(H, W, C)` with any C in 1..4 -> `(H, W, 1)`."""
    def y_of_rgb():
        rgb = tf.cast(image[..., :3], tf.float32)
        y = 16.0 + (65.481 * rgb[..., 0:1] + 128.553 * rgb[..., 1:2] + 24.966 * rgb[..., 2:3]) / 255.0
        return tf.cast(tf.clip_by_value(tf.round(y), 0.0, 255.0), tf.uint8)
    return tf.cond(tf.shape(image)[-1] <= 2, lambda: image[..., :1], y_of_rgb)


def model_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """A uint8 `(H, W, C)` image as an SR model of `channels` (1 or 3) sees it: `luma`, or RGB
    (gray replicated, alpha dropped)."""
    if channels == 1:
        return luma(image)
    image = np.asarray(image)
    return np.repeat(image[..., :1], 3, axis=-1) if image.shape[-1] <= 2 else image[..., :3]


def model_channels_tf(image: tf.Tensor, channels: int) -> tf.Tensor:
    """`model_channels` inside a tf.data pipeline."""
    if channels == 1:
        return luma_tf(image)
    return tf.cond(tf.shape(image)[-1] <= 2, lambda: tf.repeat(image[..., :1], 3, axis=-1),
                   lambda: image[..., :3])
