"""PSNR/SSIM on Y against independent references: formulas, a per-window loop, tf.image.ssim,
and the published bicubic x4 number on Set5."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from zoo.data import bicubic_downscale, bicubic_upscale, crop_to_multiple, read_images
from zoo.evaluation.metrics import psnr_y, rgb_to_y, shave, ssim_y

SET5 = Path(__file__).resolve().parents[1] / "zoo" / "assets" / "sr" / "Set5"


def _pair(seed=0, shape=(24, 24, 3)):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    noise = rng.integers(-30, 31, shape)
    return a, np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)


def _y(image):
    """BT.601 studio-range Y written out independently (ITU-R BT.601 matrix row / 255)."""
    return 16.0 + np.asarray(image, np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0


@pytest.mark.parametrize("rgb, y", [((255, 255, 255), 235.0), ((0, 0, 0), 16.0),
                                    ((255, 0, 0), 81.481), ((0, 255, 0), 144.553),
                                    ((0, 0, 255), 40.966)])
def test_rgb_to_y_known_values(rgb, y):
    assert rgb_to_y(np.full((2, 3, 3), rgb, np.uint8)) == pytest.approx(np.full((2, 3), y))


def test_rgb_to_y_gray_is_y_already():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(rgb_to_y(gray), gray)
    np.testing.assert_array_equal(rgb_to_y(gray[..., None]), gray)


def test_shave():
    image = np.arange(10 * 12 * 3).reshape(10, 12, 3)
    np.testing.assert_array_equal(shave(image, 2), image[2:8, 2:10])
    assert shave(image, 0) is image


@pytest.mark.parametrize("border", [0, 3])
def test_psnr_by_formula(border):
    a, b = _pair(1)
    diff = shave(_y(a) - _y(b), border)
    expected = 20 * np.log10(255.0) - 10 * np.log10(np.mean(diff**2))
    assert psnr_y(a, b, border=border) == pytest.approx(expected, abs=1e-10)


def test_psnr_identical_is_infinite_and_shapes_must_match():
    a, _ = _pair(2)
    assert psnr_y(a, a) == float("inf")
    with pytest.raises(ValueError, match="differ in shape"):
        psnr_y(a, a[:-1])


def _ssim_loop(x, y):
    """SSIM by the definition (Wang et al. 2004): one 11x11 Gaussian window at a time."""
    g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize("border", [0, 2])
def test_ssim_matches_per_window_loop(border):
    a, b = _pair(3)
    expected = _ssim_loop(shave(_y(a), border), shave(_y(b), border))
    assert ssim_y(a, b, border=border) == pytest.approx(expected, abs=1e-10)


def test_ssim_matches_tf_image_ssim_on_y():
    a, b = _pair(4, (32, 28, 3))
    ya, yb = (tf.constant(_y(v)[..., None], tf.float64) for v in (a, b))
    expected = tf.image.ssim(ya, yb, max_val=255.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03)
    assert ssim_y(a, b) == pytest.approx(float(expected), abs=1e-6)


def test_ssim_identical_and_too_small():
    a, _ = _pair(5)
    assert ssim_y(a, a) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="11x11"):
        ssim_y(a, a, border=7)


def test_published_bicubic_x4_on_set5():
    """Bicubic x4 on Set5 in the paper convention: 28.42 dB / 0.8104 (data/README.md)."""
    psnrs, ssims = [], []
    for _, image in read_images(SET5):
        hr = crop_to_multiple(image, 4)
        sr = bicubic_upscale(bicubic_downscale(hr, 4), 4).numpy()
        psnrs.append(psnr_y(sr, hr, border=4))
        ssims.append(ssim_y(sr, hr, border=4))
    assert len(psnrs) == 5
    assert np.mean(psnrs) == pytest.approx(28.42, abs=0.05)
    assert np.mean(ssims) == pytest.approx(0.810, abs=0.002)
