"""The players of LIME and SHAP on images: superpixels (or patches), images with some of them
hidden, and LIME on images as the `lime` package's `LimeImageExplainer` (0.2.0.1) computes it.

- `segment`: scikit-image's quickshift with lime's defaults (kernel_size 4, max_dist 200, ratio
  0.2; a gray image is repeated to RGB first, as lime's `gray2rgb`); without scikit-image (an
  optional extra: `pip install zoo[explain]`), a grid of `patch` x `patch` squares. Quickshift
  merges a lot on small images: on 28x28 MNIST digits it makes 1 to 3 superpixels (median 2,
  200 test digits), on Set5's 280x280 `head.png` 48.
- `lime_image` (Ribeiro et al. 2016, https://arxiv.org/abs/1602.04938): `samples` copies, row 0
  the image itself, the others with each superpixel kept or hidden by a fair coin
  (`numpy.random.RandomState(seed).randint(0, 2, ...)`, after the one draw lime spends on the
  segmentation's seed); hidden superpixels take `hide_color` (None: each superpixel's mean
  colour, lime's "fudged image"); the weighted ridge surrogate of `zoo.explain.text.lime_fit`
  with the cosine distance of the on/off vector to all-on and kernel width 0.25, feature
  selection "auto" on at most `num_features` superpixels (lime's 100000: all of them, in order
  of the alpha-0.01 ridge weights).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from zoo.errors import UserError

QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}  # lime_image's default segmentation
KERNEL_WIDTH = 0.25  # LimeImageExplainer(kernel_width=.25)
NUM_FEATURES = 100000  # LimeImageExplainer.explain_instance(num_features=100000): every superpixel


def grid_segments(height: int, width: int, patch: int) -> np.ndarray:
    """`(H, W)` int labels of the non-overlapping `patch` x `patch` cells, row by row (edge cells
    smaller), the same cells as `zoo.explain.image.patch_grid`."""
    columns = -(-width // patch)
    return (np.arange(height)[:, None] // patch) * columns + np.arange(width)[None, :] // patch


SEGMENTATIONS = ("auto", "quickshift", "grid")
MIN_SUPERPIXELS = 8  # auto: fewer quickshift superpixels than this explain little; the grid is used


def segment(image: np.ndarray, patch: int, how: str = "auto") -> tuple[np.ndarray, str]:
    """`(labels (H, W) int 0..n-1, what they are)`: the players of image LIME and SHAP.

    Args:
        image: `(H, W, C)` float in [0, 1], C 1 (repeated to RGB, as lime does) or 3.
        patch: the grid's cell side.
        how: "quickshift" (scikit-image, lime's defaults), "grid" (`patch` x `patch` cells), or
            "auto": quickshift when scikit-image is installed and it finds at least
            `MIN_SUPERPIXELS` superpixels (a photo), else the grid (e.g. a small digit, which
            quickshift reads as 1 to 3 superpixels: an explanation over so few says little).

    Raises:
        UserError: an unknown `how`, or "quickshift" without scikit-image.
    """
    if how not in SEGMENTATIONS:
        raise UserError(f"--segmentation must be one of {', '.join(SEGMENTATIONS)}, got {how!r}")
    grid = grid_segments(image.shape[0], image.shape[1], patch)
    if how == "grid":
        return grid, f"a grid of {patch}x{patch} patches (--segmentation grid)"
    try:
        from skimage.segmentation import quickshift
    except ImportError:
        if how == "quickshift":
            raise UserError("--segmentation quickshift needs scikit-image: pip install 'zoo[explain]'") from None
        return grid, (f"a grid of {patch}x{patch} patches (scikit-image is not installed: pip install "
                      "'zoo[explain]' for quickshift superpixels)")
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    labels = quickshift(rgb, **QUICKSHIFT)
    labels = np.unique(labels, return_inverse=True)[1].reshape(labels.shape)  # 0..n-1
    count = int(labels.max()) + 1
    if how == "auto" and count < MIN_SUPERPIXELS:
        return grid, (f"a grid of {patch}x{patch} patches (quickshift found {count} superpixel(s), fewer than "
                      f"{MIN_SUPERPIXELS}; --segmentation quickshift uses them anyway)")
    return labels, ("quickshift superpixels (scikit-image; lime's defaults kernel_size=4, max_dist=200, "
                    "ratio=0.2)")


def hidden_image(image: np.ndarray, segments: np.ndarray, hide_color: float | None) -> np.ndarray:
    """The image every superpixel takes where it is hidden: `hide_color` everywhere, or (None)
    each superpixel's mean colour (lime's "fudged image")."""
    if hide_color is not None:
        return np.full_like(image, hide_color)
    fudged = np.array(image, copy=True)
    for label in np.unique(segments):
        fudged[segments == label] = image[segments == label].mean(axis=0)
    return fudged


def compose(image: np.ndarray, hidden: np.ndarray, segments: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """`(N, H, W, C)` float32 copies of `image` with the superpixels whose mask entry is False
    taken from `hidden`; `masks` is `(N, superpixels)` bool."""
    keep = np.asarray(masks, bool)[:, segments][..., None]  # (N, H, W, 1)
    return np.where(keep, image[None], hidden[None]).astype(np.float32)


def per_pixel(values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """`(H, W)` map: each superpixel's value spread evenly over its pixels (the map sums to the
    values' sum)."""
    area = np.bincount(segments.ravel(), minlength=len(values))
    return (np.asarray(values, np.float64) / np.maximum(area, 1))[segments]


@dataclass(frozen=True)
class ImageLime:
    """A LIME explanation of one image's scalar."""

    weights: np.ndarray  # (n,) surrogate weight per superpixel (0 where not selected)
    selected: list[int]
    intercept: float
    score: float  # weighted R^2 of the surrogate on the copies
    local_prediction: float
    samples: int
    seed: int


def lime_image(value: Callable[[np.ndarray], np.ndarray], superpixels: int, samples: int = 1000, seed: int = 0,
               num_features: int = NUM_FEATURES, kernel_width: float = KERNEL_WIDTH,
               feature_selection: str = "auto") -> ImageLime:
    """LIME for one image, as `LimeImageExplainer(random_state=seed).explain_instance(...)`.

    Args:
        value: `masks (N, superpixels) bool -> (N,)` the explained scalar of the image with only
            each mask's superpixels shown (the rest hidden; see `compose`), called once on all copies.
        superpixels: how many superpixels the image has.
        samples: copies, the image itself included (at least 2; lime's default 1000).
        seed: seeds `numpy.random.RandomState`, which draws every copy.
        num_features, kernel_width, feature_selection: lime's (see `zoo.explain.text.select_features`).
    """
    from zoo.explain.text import _cosine_distance, lime_fit

    if superpixels < 1 or samples < 2:
        raise ValueError(f"LIME needs superpixels and samples >= 2, got {superpixels} superpixels, {samples} samples")
    rng = np.random.RandomState(seed)
    rng.randint(0, high=1000)  # lime draws the segmentation's seed first (its quickshift ignores it)
    data = rng.randint(0, 2, samples * superpixels).reshape((samples, superpixels)).astype(np.float64)
    data[0, :] = 1
    y = np.asarray(value(data.astype(bool)), np.float64).reshape(-1)
    weights, used, intercept, score, local = lime_fit(data, y, _cosine_distance(data), kernel_width,
                                                      num_features, feature_selection)
    return ImageLime(weights, used, intercept, score, local, samples, seed)
