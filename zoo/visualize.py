"""Pictures of model outputs: panels side by side, sample grids, attention heat maps of rows and
words, and TensorBoard projector files.

Used by `python -m zoo sample`, `python -m zoo explain`, tools/readme_figure.py and the training
callbacks, so that every picture of the zoo is laid out the same way. NumPy and PIL only at
import; the projector writer imports TensorFlow when called.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from zoo.fonts import draw_text, text_width

__all__ = ["attention_image", "confusion_image", "image_grid", "row_attention_image", "side_by_side", "to_uint8_image",
           "write_projector_files"]


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


def confusion_image(counts: np.ndarray, class_names: Sequence[str], title: str = "",
                    font_size: int = 13) -> np.ndarray:
    """A confusion matrix as a picture: rows are true classes, columns predicted ones, each cell
    shows its count and is shaded by its share of the row (white 0 to dark blue 1), class names
    on both axes, `title` on top; uint8 `(H, W, 3)`. Long names are cut to fit (`..`).

    Args:
        counts: int `(K, K)` counts, rows true, columns predicted (`zoo.evaluation.classifier`).
        class_names: the K names, in id order.
        title: a line above the matrix.
        font_size: pixel size of the text.

    Example:
    >>> confusion_image(np.array([[5, 1], [0, 4]]), ["cat", "dog"], "2 classes").dtype
    dtype('uint8')
    """
    counts, names = np.asarray(counts, np.int64), [str(name) for name in class_names]
    k = len(names)
    if counts.shape != (k, k):
        raise ValueError(f"counts must be ({k}, {k}) for {k} class names, got {counts.shape}")
    def length(text: str) -> int:
        return text_width(text, font_size)

    def write(draw, xy, text: str, width: float, fill, anchor: str) -> None:
        while len(text) > 1 and length(text) > width:
            text = text[:-3] + ".." if len(text) > 3 else text[:-1]
        draw_text(draw, xy, text, fill, font_size, anchor)

    line, pad = font_size + 8, 8
    longest = max([length(n) for n in names] + [length(str(int(counts.max(initial=0))))])
    cell_w, cell_h = int(max(40, min(longest, 110) + 12)), line + 10
    label_w = int(min(max([length(n) for n in names] + [length("true class")]), 160)) + 2 * pad
    top = 2 * line + line + pad  # title, "predicted class", column names
    width = max(label_w + k * cell_w + pad, length(title) + 2 * pad)
    image = Image.new("RGB", (width, top + k * cell_h + pad), "white")
    draw = ImageDraw.Draw(image)
    write(draw, (pad, pad // 2), title, width - 2 * pad, (0, 0, 0), "la")
    write(draw, (pad, line + pad // 2), "true class", label_w - pad, (90, 90, 90), "la")
    write(draw, (label_w + k * cell_w / 2, line + pad // 2), "predicted class", k * cell_w, (90, 90, 90), "ma")
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)  # each true class sums to 1
    light, dark = np.array([247.0, 251.0, 255.0]), np.array([8.0, 48.0, 107.0])
    for j, name in enumerate(names):
        write(draw, (label_w + (j + 0.5) * cell_w, top - 4), name, cell_w - 4, (0, 0, 0), "ms")
    for i, name in enumerate(names):
        y = top + i * cell_h
        write(draw, (label_w - pad, y + cell_h / 2), name, label_w - 2 * pad, (0, 0, 0), "rm")
        for j in range(k):
            colour = tuple(int(round(v)) for v in light + share[i, j] * (dark - light))
            box = (label_w + j * cell_w, y, label_w + (j + 1) * cell_w, y + cell_h)
            draw.rectangle(box, fill=colour, outline=(200, 200, 200))
            ink = (255, 255, 255) if share[i, j] > 0.5 else (0, 0, 0)
            write(draw, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), str(int(counts[i, j])), cell_w - 4, ink, "mm")
    return np.asarray(image, np.uint8)


def attention_image(word_weights: Sequence[tuple[str, float]], title: str = "", width: int = 640,
                    line_height: int = 14, positive: tuple = (255, 0, 0),
                    negative: tuple | None = None) -> np.ndarray:
    """A heat map of words: each word on a background as strong as its weight's size relative to
    the text's largest, in `positive`'s colour (in `negative`'s where a weight is below 0, for
    signed attributions); any script (`zoo.fonts`: Chinese is drawn as characters).

    Args:
        word_weights: `(word, weight)` pairs in reading order (e.g. `model.word_attention`).
        title: a line above the words; "" for none.
        width: the picture's width in pixels; words wrap to new lines.
        line_height: pixels per line of words.
        positive: the RGB colour of positive weights.
        negative: the RGB colour of negative weights; None: `positive` for both.

    Returns:
        uint8 `(H, width, 3)`.
    """
    peak = max([abs(w) for _, w in word_weights] + [1e-9])
    boxes, x, y = [], 4, line_height + 6 if title else 4
    for word, weight in word_weights:
        size = text_width(word) + 6
        if x + size > width - 4 and x > 4:
            x, y = 4, y + line_height + 2
        boxes.append((x, y, size, word, weight / peak))
        x += size + 2
    image = Image.new("RGB", (width, y + line_height + 4), "white")
    draw = ImageDraw.Draw(image)
    if title:
        draw_text(draw, (4, 2), title, (0, 0, 160))
    for x, y, size, word, share in boxes:
        tint = negative if share < 0 and negative is not None else positive
        fill = tuple(int(255 - abs(share) * (255 - c)) for c in tint)
        draw.rectangle((x, y, x + size, y + line_height), fill=fill)
        draw_text(draw, (x + 3, y + 1), word, (0, 0, 0))
    return np.asarray(image)


def write_projector_files(folder: str | Path, vectors: np.ndarray, labels: Sequence | None = None,
                          images: np.ndarray | None = None) -> None:
    """Vectors for TensorBoard's projector (`tensorboard --logdir FOLDER`, the Projector tab):
    `embedding.ckpt` with the `checkpoint` index file the plugin looks for, `metadata.tsv`
    (one label a line), `sprite.png` (the images in a square grid) and `projector_config.pbtxt`.

    Args:
        folder: where to write (made if missing; files of the same names are replaced).
        vectors: `(N, D)` points.
        labels: `(N,)` labels, or None.
        images: `(N, h, w, C)` uint8 thumbnails, or None.
    """
    import keras
    import tensorflow as tf
    from tensorboard.plugins import projector

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tf.train.Checkpoint(embedding=tf.Variable(np.asarray(vectors, np.float32))).write(str(folder / "embedding.ckpt"))
    # The projector plugin reads the folder's latest checkpoint: `write` makes no index file.
    (folder / "checkpoint").write_text('model_checkpoint_path: "embedding.ckpt"\n'
                                       'all_model_checkpoint_paths: "embedding.ckpt"\n')
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "embedding/.ATTRIBUTES/VARIABLE_VALUE"
    if labels is not None:
        (folder / "metadata.tsv").write_text("".join(f"{label}\n" for label in labels))
        embedding.metadata_path = "metadata.tsv"
    if images is not None:
        images = np.asarray(images)
        cols = int(np.ceil(np.sqrt(len(images))))  # the projector wants a square sprite
        square = np.concatenate([images, np.zeros((cols * cols - len(images), *images.shape[1:]), images.dtype)])
        keras.utils.save_img(str(folder / "sprite.png"), image_grid(square, cols=cols, gutter=0), scale=False,
                             compress_level=1)  # zlib level 1: 20x20 MNIST thumbnails 4.6 ms against 11, 11% larger
        embedding.sprite.image_path = "sprite.png"
        embedding.sprite.single_image_dim.extend([images.shape[2], images.shape[1]])
    projector.visualize_embeddings(str(folder), config)
