"""Pictures of model outputs: panels side by side, and sample grids (NumPy only).

Used by `python -m zoo sample`, tools/readme_figure.py and the training callbacks, so that every
picture of the zoo is laid out the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["image_grid", "side_by_side", "to_uint8_image"]


def to_uint8_image(image: np.ndarray) -> np.ndarray:
    """One image as `(H, W, C)` uint8: uint8 is kept, floats in [0, 1] are scaled by 255 and
    rounded, other integers are clipped to 0..255; `(H, W)` becomes `(H, W, 1)`."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W) or (H, W, C) image with C in 1, 3, 4; got {array.shape}")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        array = np.round(array.astype(np.float64) * 255.0)
    return np.clip(array, 0, 255).astype(np.uint8)


def _same_channels(images: list[np.ndarray]) -> list[np.ndarray]:
    """Gray panels next to colour ones are repeated to the most channels (1 -> 3 or 4)."""
    channels = max(image.shape[-1] for image in images)
    out = []
    for image in images:
        if image.shape[-1] == 1 and channels > 1:
            image = np.repeat(image, 3, axis=-1)
        if image.shape[-1] == 3 and channels == 4:
            image = np.concatenate([image, np.full(image.shape[:2] + (1,), 255, np.uint8)], axis=-1)
        out.append(image)
    return out


def _centre_crop(image: np.ndarray, crop: int | tuple[int, int]) -> np.ndarray:
    height, width = (crop, crop) if isinstance(crop, int) else crop
    height, width = min(height, image.shape[0]), min(width, image.shape[1])
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top:top + height, left:left + width]


def side_by_side(images: Sequence[np.ndarray], gutter: int = 4, crop: int | tuple[int, int] | None = None,
                 background: int = 255) -> np.ndarray:
    """Panels of one height in a row, e.g. bicubic | model | ground truth.

    Args:
        images: `(h, w_i, C_i)` or `(h, w_i)` arrays, uint8 or float in [0, 1]; gray panels are
            repeated to colour when others are colour.
        gutter: pixels of `background` between panels.
        crop: the centre crop shown of each panel, `side` or `(height, width)` (limited to the
            panel's size); None shows whole panels.
        background: gutter value, 0..255.

    Returns:
        `(h, sum(w_i) + gutter * (len(images) - 1), C)` uint8.

    Example:
    >>> side_by_side([np.zeros((8, 8, 3), np.uint8)] * 3, gutter=4).shape
    (8, 32, 3)
    """
    panels = [to_uint8_image(image) for image in images]
    if not panels:
        raise ValueError("side_by_side needs at least one image")
    if crop is not None:
        panels = [_centre_crop(panel, crop) for panel in panels]
    if len({panel.shape[0] for panel in panels}) > 1:
        raise ValueError(f"panels differ in height: {[panel.shape[0] for panel in panels]}")
    panels = _same_channels(panels)
    height, channels = panels[0].shape[0], panels[0].shape[-1]
    gap = np.full((height, gutter, channels), background, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return np.concatenate(row, axis=1)


def image_grid(images: np.ndarray | Sequence[np.ndarray], cols: int | None = None, gutter: int = 2,
               background: int = 255) -> np.ndarray:
    """N same-size images in a near-square grid, row by row (e.g. VAE or GAN samples).

    Args:
        images: `(N, H, W, C)` or `(N, H, W)` array, or a sequence of same-shape images; uint8 or
            float in [0, 1]; C = 1, 3 or 4.
        cols: images per row; default `ceil(sqrt(N))` (rows = `ceil(N / cols)`; the cells
            after the last image stay `background`).
        gutter: pixels of `background` between cells (none around the grid).
        background: gutter and empty-cell value, 0..255.

    Returns:
        `(rows * H + (rows - 1) * gutter, cols * W + (cols - 1) * gutter, C)` uint8.

    Example:
    >>> image_grid(np.zeros((5, 4, 4, 1), np.uint8), gutter=1).shape
    (9, 14, 1)
    """
    cells = [to_uint8_image(image) for image in images]
    if not cells:
        raise ValueError("image_grid needs at least one image")
    if len({cell.shape for cell in cells}) > 1:
        raise ValueError(f"image_grid needs images of one shape, got {sorted({c.shape for c in cells})}")
    cols = math.ceil(math.sqrt(len(cells))) if cols is None else cols
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    cols = min(cols, len(cells))
    rows = math.ceil(len(cells) / cols)
    height, width, channels = cells[0].shape
    grid = np.full((rows * height + (rows - 1) * gutter, cols * width + (cols - 1) * gutter, channels),
                   background, np.uint8)
    for i, cell in enumerate(cells):
        top, left = (i // cols) * (height + gutter), (i % cols) * (width + gutter)
        grid[top:top + height, left:left + width] = cell
    return grid


def row_attention_image(image: np.ndarray, weights: np.ndarray, scale: int = 4, bar: int = 12) -> np.ndarray:
    """The image with each row shaded red by its attention weight (relative to the largest),
    and a bar beside each row as long as its weight; uint8 `(H * scale, (W + bar) * scale, 3)`.

    Args:
        image: `(H, W)` or `(H, W, C)` float in [0, 1] or uint8.
        weights: `(H,)` attention weights of the rows.
        scale: pixels per image pixel.
        bar: width of the bar column, in image pixels.
    """
    pixels = to_uint8_image(image).astype(np.float32)
    pixels = pixels[..., :3] if pixels.shape[-1] >= 3 else np.repeat(pixels[..., :1], 3, axis=-1)
    share = np.asarray(weights, np.float32) / max(float(np.max(weights)), 1e-12)  # (H,)
    alpha = 0.6 * share[:, None, None]
    red = np.array([255.0, 40.0, 40.0], np.float32)
    shaded = (1 - alpha) * pixels + alpha * red  # (H, W, 3)
    height = len(share)
    bars = np.full((height, bar, 3), 255.0, np.float32)
    for row, length in enumerate(np.round(share * bar).astype(int)):
        bars[row, :length] = red
    picture = np.concatenate([shaded, bars], axis=1)
    return np.repeat(np.repeat(np.round(picture).astype(np.uint8), scale, axis=0), scale, axis=1)
