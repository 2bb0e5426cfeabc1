"""LIME on images (zoo.explain.superpixels) against the `lime` package's LimeImageExplainer, and
the players: quickshift superpixels with lime's defaults, or a patch grid without scikit-image."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.errors import UserError
from zoo.explain import superpixels
from zoo.explain.image import patch_grid

TOLERANCE = 1e-9  # the same copies and the same weighted ridge: rounding only


def _blocks(seed: int) -> np.ndarray:
    """A 48x48 RGB picture of 3x3 blocks in saturated colours: quickshift with lime's defaults
    finds several superpixels in it (6 for seed 0), unlike small or gray pictures."""
    colors = np.random.default_rng(seed).integers(0, 2, (3, 3, 3)).astype(np.float32)
    return np.kron(colors, np.ones((16, 16, 1), np.float32))


WEIGHTS = np.random.default_rng(3).normal(size=(48, 48, 3))


def _proba(images: np.ndarray) -> np.ndarray:
    """A two-class logistic model of the pixels, `(N, 48, 48, 3) -> (N, 2)`."""
    p = 1 / (1 + np.exp(-(images * WEIGHTS).sum(axis=(1, 2, 3)) / 40))
    return np.stack([1 - p, p], axis=1)


@pytest.mark.parametrize("hide_color", [0.0, None])  # black (zoo explain), superpixel means (lime's default)
def test_lime_image_equals_the_lime_package(hide_color):
    from lime.lime_image import LimeImageExplainer  # the reference (the `test` extra installs it)

    image = _blocks(0)
    reference = LimeImageExplainer(random_state=9).explain_instance(
        image, _proba, labels=(1,), top_labels=None, hide_color=hide_color, num_samples=300)
    segments, what = superpixels.segment(image, 7, "quickshift")
    assert what.startswith("quickshift") and np.array_equal(segments, reference.segments)
    count = int(segments.max()) + 1
    assert count == 6
    hidden = superpixels.hidden_image(image, segments, hide_color)
    ours = superpixels.lime_image(lambda masks: _proba(superpixels.compose(image, hidden, segments, masks))[:, 1],
                                  count, samples=300, seed=9)
    expected = dict(reference.local_exp[1])
    assert sorted(expected) == sorted(ours.selected) == list(range(count))  # every superpixel, as lime
    np.testing.assert_allclose(ours.weights, [expected[j] for j in range(count)], atol=TOLERANCE, rtol=0)
    assert ours.intercept == pytest.approx(reference.intercept[1], abs=TOLERANCE)
    assert ours.score == pytest.approx(reference.score, abs=TOLERANCE)
    assert ours.local_prediction == pytest.approx(float(np.ravel(reference.local_pred)[0]), abs=TOLERANCE)


def test_gray_images_are_segmented_as_rgb_and_a_grid_stands_in_without_scikit_image(monkeypatch):
    from lime.wrappers.scikit_image import SegmentationAlgorithm
    from skimage.color import gray2rgb

    gray = _blocks(1).mean(axis=-1, keepdims=True)  # (48, 48, 1)
    segments, _ = superpixels.segment(gray, 7, "quickshift")
    lime_default = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2)
    assert np.array_equal(segments, lime_default(gray2rgb(gray[..., 0])))  # lime's gray2rgb, then quickshift
    monkeypatch.setitem(sys.modules, "skimage.segmentation", None)  # scikit-image missing
    grid, what = superpixels.segment(gray, 7)
    assert what.startswith("a grid of 7x7 patches (scikit-image is not installed")
    cells = patch_grid(48, 48, 7)
    assert grid.max() + 1 == len(cells) == 49
    for label, cell in enumerate(cells):  # the deletion test's cells, in its order
        assert np.all(grid[cell] == label)
    values = np.arange(49.0)
    spread = superpixels.per_pixel(values, grid)
    assert spread.sum() == pytest.approx(values.sum()) and spread[0, 0] == 0 and spread[47, 47] == pytest.approx(48 / 36)


def test_auto_uses_the_grid_when_quickshift_finds_too_few_superpixels():
    image = _blocks(0)  # quickshift: 6 superpixels, fewer than superpixels.MIN_SUPERPIXELS
    grid, what = superpixels.segment(image, 16)
    assert what.startswith("a grid of 16x16 patches (quickshift found 6 superpixel(s)") and grid.max() + 1 == 9
    from PIL import Image

    head = Image.open(Path(__file__).parents[1] / "zoo" / "assets" / "sr" / "Set5" / "head.png").convert("RGB")
    photo = np.asarray(head.resize((140, 140)), np.float64) / 255  # a photo: quickshift finds 12
    segments, what = superpixels.segment(photo, 16)
    assert what.startswith("quickshift") and segments.max() + 1 >= superpixels.MIN_SUPERPIXELS
    with pytest.raises(UserError, match="--segmentation must be one of auto, quickshift, grid"):
        superpixels.segment(photo, 16, "slic")
