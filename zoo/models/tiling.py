"""Run a super-resolution generator over images of any size in overlapping tiles."""

from __future__ import annotations

import math
import weakref

import keras
import numpy as np
import tensorflow as tf

from zoo.data.images import bicubic_upscale, luma, rgb_to_ycbcr, ycbcr_to_rgb


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(generator: keras.Model):
    """One traced inference function per generator (not `predict`, which would distribute
    the call over the strategy the model was built under)."""
    if generator not in _COMPILED:
        _COMPILED[generator] = tf.function(lambda x: generator(x, training=False), reduce_retracing=True)
    return _COMPILED[generator]


def upscale_images(generator: keras.Model, images, scale: int, tile: int = 128, overlap: int = 16,
                   batch_size: int = 8) -> np.ndarray:
    """Super-resolve uint8 images of any size with bounded memory.

    Each image is cut into `tile` x `tile` low-resolution windows that overlap by
    `overlap` pixels on every side; only the centre of each output window is kept, so
    the seams see the same context as the rest of the image.

    Args:
        generator: model mapping `(B, h, w, C)` in [0, 1] to `(B, h*scale, w*scale, C)`; C = 3,
            or 1: gray images directly, colour ones by their Y channel (Cb, Cr by bicubic).
        images: `(H, W)`, `(H, W, C)` or `(B, H, W, C)` with values 0..255 and C = 1 (gray),
            3 (RGB) or 4 (RGBA; alpha is upscaled by bicubic).
        scale: the generator's upsampling factor.
        tile: low-resolution window size; memory grows with its square.
        overlap: context pixels on each side of a window (< tile / 2).
        batch_size: windows per generator call.

    Returns:
        uint8 array of the input's layout with height and width times `scale`.
    """
    if not 0 <= overlap < tile / 2:
        raise ValueError(f"overlap must be in [0, tile / 2), got overlap={overlap}, tile={tile}")
    array = np.asarray(images)
    if array.ndim == 2:
        return upscale_images(generator, array[..., None], scale, tile, overlap, batch_size)[..., 0]
    if array.ndim == 4:
        return np.stack([upscale_images(generator, a, scale, tile, overlap, batch_size) for a in array])
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected (H, W), (H, W, C) or (B, H, W, C) with C in 1, 3, 4; got {array.shape}")
    channels = array.shape[-1]
    if int(generator.input_shape[-1]) == 1:
        return _upscale_luma(generator, array, scale, tile, overlap, batch_size)
    rgb = np.repeat(array, 3, axis=-1) if channels == 1 else array[..., :3]
    out = _upscale_windows(generator, rgb.astype(np.float32) / 255.0, scale, tile, overlap, batch_size)
    if channels == 1:  # back to gray with PIL's "L" weights
        return np.round(out @ np.array([0.299, 0.587, 0.114])).clip(0, 255).astype(np.uint8)[..., None]
    if channels == 4:
        alpha = bicubic_upscale(array[..., 3:].astype(np.uint8), scale).numpy()
        return np.concatenate([out, alpha], axis=-1)
    return out


def _upscale_luma(generator, image: np.ndarray, scale: int, tile: int, overlap: int,
                  batch_size: int) -> np.ndarray:
    """A one-channel model: gray images directly; colour ones as SR papers do, the BT.601
    studio-range Y by the model, Cb and Cr (and alpha) by bicubic."""
    def model(y):  # (H, W, 1) uint8 -> (H * scale, W * scale, 1) uint8
        return _upscale_windows(generator, y.astype(np.float32) / 255.0, scale, tile, overlap, batch_size)

    if image.shape[-1] == 1:
        return model(image)
    ycbcr = rgb_to_ycbcr(image[..., :3])  # (H, W, 3) float32
    size = (image.shape[0] * scale, image.shape[1] * scale)
    chroma = tf.image.resize(ycbcr[..., 1:], size, "bicubic").numpy()  # (H * s, W * s, 2)
    out = ycbcr_to_rgb(np.concatenate([model(luma(image)).astype(np.float32), chroma], axis=-1))
    if image.shape[-1] == 4:
        out = np.concatenate([out, bicubic_upscale(image[..., 3:].astype(np.uint8), scale).numpy()], axis=-1)
    return out


def _upscale_windows(generator, image: np.ndarray, scale: int, tile: int, overlap: int,
                     batch_size: int) -> np.ndarray:
    """`(H, W, C)` float in [0, 1] -> `(H * scale, W * scale, C)` uint8, C the generator's."""
    height, width = image.shape[:2]
    step = tile - 2 * overlap
    rows, cols = math.ceil(height / step), math.ceil(width / step)
    pad = ((overlap, rows * step - height + overlap), (overlap, cols * step - width + overlap), (0, 0))
    padded = np.pad(image, pad, mode="symmetric")
    corners = [(r * step, c * step) for r in range(rows) for c in range(cols)]
    out = np.zeros((rows * step * scale, cols * step * scale, image.shape[-1]), np.uint8)
    keep = slice(overlap * scale, (overlap + step) * scale)
    for start in range(0, len(corners), batch_size):
        batch = corners[start:start + batch_size]
        windows = np.stack([padded[y:y + tile, x:x + tile] for y, x in batch])  # (b, tile, tile, C)
        result = _compiled(generator)(windows).numpy()  # (b, tile*s, tile*s, C)
        result = np.round(np.clip(result, 0.0, 1.0) * 255.0).astype(np.uint8)
        for (y, x), window in zip(batch, result):
            out[y * scale:(y + step) * scale, x * scale:(x + step) * scale] = window[keep, keep]
    return out[:height * scale, :width * scale]
