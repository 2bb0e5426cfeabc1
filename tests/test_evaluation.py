"""zoo.evaluation.sr (SR scoring, RGB and gray) against NumPy formulas, and zoo.visualize layouts."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from zoo.data import bicubic_downscale, bicubic_upscale
from zoo.evaluation.sr import evaluate_sr, score_sr, sr_report, sr_triplets
from zoo.evaluation.metrics import ssim_y
from zoo.models import SRGAN, build_sr_discriminator, build_sr_generator
from zoo.visualize import image_grid, side_by_side

SCALE = 2


class NearestSR:
    """A stand-in SR model: pixel repetition, so every number below is known exactly."""

    scale = SCALE

    def upscale(self, images, tile=128, overlap=16):
        return np.repeat(np.repeat(np.asarray(images), SCALE, axis=0), SCALE, axis=1)


def _images(channels: int, count: int = 2, size=(32, 36)) -> list[tuple[str, np.ndarray]]:
    """Smooth-ish uint8 images (a gradient plus noise), H and W multiples of SCALE."""
    rng = np.random.default_rng(channels)
    ramp = np.add.outer(np.arange(size[0]), np.arange(size[1])) * 3.0
    out = []
    for i in range(count):
        noise = rng.normal(0, 20, (*size, channels))
        out.append((f"im{i}.png", np.clip(ramp[..., None] + noise + 40 * i, 0, 255).astype(np.uint8)))
    return out


def _psnr_reference(a: np.ndarray, b: np.ndarray, border: int, studio_y: bool) -> float:
    """PSNR by its formula: on BT.601 studio-range Y for RGB, on the raw values for gray."""
    def luma(x):
        x = x.astype(np.float64)
        if studio_y:
            return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0
        return x[..., 0]
    d = (luma(a) - luma(b))[border:-border, border:-border]
    return 10.0 * math.log10(255.0**2 / np.mean(d**2))


def _bicubic(hr):
    return bicubic_upscale(bicubic_downscale(hr, SCALE).numpy(), SCALE).numpy()


def _nearest(hr):
    return NearestSR().upscale(bicubic_downscale(hr, SCALE).numpy())


@pytest.mark.parametrize("channels", [3, 1])
def test_evaluate_sr_matches_the_formula(channels):
    images = _images(channels)
    report = evaluate_sr(NearestSR(), images, SCALE)
    assert set(report) == {"scale", "n_images", "model", "bicubic", "images"}
    assert report["scale"] == SCALE and report["n_images"] == 2
    assert [row["name"] for row in report["images"]] == ["im0.png", "im1.png"]
    for row, (_, hr) in zip(report["images"], images):
        for kind, make in (("model", _nearest), ("bicubic", _bicubic)):
            want = _psnr_reference(make(hr), hr, SCALE, studio_y=channels == 3)
            assert row[kind]["psnr_y"] == pytest.approx(want, abs=1e-9), kind
            assert 0 < row[kind]["ssim_y"] < 1
    for kind in ("model", "bicubic"):
        for key in ("psnr_y", "ssim_y"):
            assert report[kind][key] == pytest.approx(np.mean([r[kind][key] for r in report["images"]]))
    assert report["bicubic"]["psnr_y"] > report["model"]["psnr_y"]  # bicubic beats pixel repetition


def test_gray_is_scored_on_its_values_not_on_studio_range_y():
    """Gray test sets (e.g. BSD gray, Set12) are scored on 0..255 gray; scoring the image
    replicated to RGB would use studio-range Y = 16 + 219/255 * gray and read 1.3219 dB higher."""
    gray = _images(1, count=1)
    rgb = [(name, np.repeat(hr, 3, axis=-1)) for name, hr in gray]
    on_gray, on_rgb = evaluate_sr(NearestSR(), gray, SCALE), evaluate_sr(NearestSR(), rgb, SCALE)
    offset = 20 * math.log10(255 / 219)
    for kind in ("model", "bicubic"):
        assert on_rgb[kind]["psnr_y"] - on_gray[kind]["psnr_y"] == pytest.approx(offset, abs=1e-9)
        _, hr = gray[0]
        sr = _nearest(hr) if kind == "model" else _bicubic(hr)
        assert on_gray[kind]["ssim_y"] == pytest.approx(ssim_y(sr[..., 0], hr[..., 0], SCALE), abs=1e-12)
    assert offset == pytest.approx(1.3219, abs=1e-4)


@pytest.fixture(scope="module")
def srgan():
    keras.utils.set_random_seed(0)
    model = SRGAN(build_sr_generator(SCALE, filters=8, blocks=1),
                  build_sr_discriminator(8, stages=2, dense=16), scale=SCALE)
    model(np.zeros((1, 8, 8, 3), "float32"))
    return model


@pytest.mark.parametrize("channels", [1, 3])
def test_triplets_of_a_real_model(srgan, channels):
    images = _images(channels)
    triplets = list(sr_triplets(srgan, images, SCALE, tile=12, overlap=4))
    assert [t.name for t in triplets] == ["im0.png", "im1.png"]
    for t, (_, hr) in zip(triplets, images):
        lr = bicubic_downscale(hr, SCALE).numpy()
        assert t.sr.shape == t.bicubic.shape == hr.shape and t.sr.dtype == np.uint8
        np.testing.assert_array_equal(t.sr, srgan.upscale(lr, tile=12, overlap=4))
        np.testing.assert_array_equal(t.bicubic, _bicubic(hr))
        assert t.hr is hr or np.array_equal(t.hr, hr)
    report = sr_report(triplets, SCALE)
    assert report == evaluate_sr(srgan, images, SCALE, tile=12, overlap=4)
    assert report["images"][0]["model"] == score_sr(triplets[0].sr, triplets[0].hr, SCALE)
    want = _psnr_reference(triplets[0].sr, triplets[0].hr, SCALE, studio_y=channels == 3)
    assert report["images"][0]["model"]["psnr_y"] == pytest.approx(want, abs=1e-9)


def test_progress_sees_every_image_and_bad_images_fail():
    seen = []
    evaluate_sr(NearestSR(), _images(3), SCALE, progress=lambda items: seen.extend(items) or items)
    assert [name for name, _ in seen] == ["im0.png", "im1.png"]
    with pytest.raises(ValueError, match="multiples of 2"):
        evaluate_sr(NearestSR(), [("odd", np.zeros((31, 36, 3), np.uint8))], SCALE)
    with pytest.raises(ValueError, match="1 or 3"):
        evaluate_sr(NearestSR(), [("rgba", np.zeros((32, 36, 4), np.uint8))], SCALE)
    with pytest.raises(ValueError, match="no image"):
        evaluate_sr(NearestSR(), [], SCALE)


# ----------------------------------------------------------------------------- visualize

def test_side_by_side_layout():
    a, b = np.full((5, 4, 3), 10, np.uint8), np.full((5, 6, 3), 20, np.uint8)
    row = side_by_side([a, b, a], gutter=3)
    assert row.shape == (5, 4 + 3 + 6 + 3 + 4, 3) and row.dtype == np.uint8
    assert (row[:, :4] == 10).all() and (row[:, 4:7] == 255).all() and (row[:, 7:13] == 20).all()
    assert (row[:, 13:16] == 255).all() and (row[:, 16:] == 10).all()
    assert side_by_side([a], gutter=3).shape == (5, 4, 3)


def test_side_by_side_crop_gray_and_float():
    big = np.arange(10 * 12, dtype=np.uint8).reshape(10, 12, 1)  # gray
    colour = np.zeros((10, 12, 3), np.float32)  # float in [0, 1]
    colour[..., 0] = 1.0
    row = side_by_side([big, colour], gutter=2, crop=4, background=0)
    assert row.shape == (4, 4 + 2 + 4, 3)
    np.testing.assert_array_equal(row[:, :4, 1], big[3:7, 4:8, 0])  # centre crop, gray -> RGB
    assert (row[:, 4:6] == 0).all() and (row[:, 6:, 0] == 255).all() and (row[:, 6:, 1:] == 0).all()
    assert side_by_side([big, big], crop=(20, 3)).shape == (10, 3 + 4 + 3, 1)  # crop limited to size
    with pytest.raises(ValueError, match="height"):
        side_by_side([np.zeros((4, 4, 3)), np.zeros((5, 4, 3))])


@pytest.mark.parametrize("n, cols, grid", [(1, None, (1, 1)), (4, None, (2, 2)), (5, None, (2, 3)),
                                           (10, None, (3, 4)), (5, 5, (1, 5)), (3, 8, (1, 3)),
                                           (5, 1, (5, 1))])
def test_image_grid_shapes(n, cols, grid):
    images = np.zeros((n, 6, 5, 3), np.uint8)
    rows, columns = grid
    out = image_grid(images, cols=cols, gutter=2)
    assert out.shape == (rows * 6 + (rows - 1) * 2, columns * 5 + (columns - 1) * 2, 3)


def test_image_grid_layout_row_by_row():
    images = [np.full((3, 2), i * 40, np.uint8) for i in range(5)]  # (H, W) gray, values 0..160
    grid = image_grid(images, gutter=1, background=7)  # 3 columns, 2 rows
    assert grid.shape == (3 + 1 + 3, 2 + 1 + 2 + 1 + 2, 1)
    for i in range(5):
        top, left = (i // 3) * 4, (i % 3) * 3
        assert (grid[top:top + 3, left:left + 2] == i * 40).all(), i
    assert (grid[3] == 7).all() and (grid[:, 2] == 7).all()  # gutters
    assert (grid[4:, 6:] == 7).all()  # the empty sixth cell
    floats = image_grid(np.ones((2, 4, 4, 1), np.float32) * 0.5, gutter=0)
    assert floats.shape == (4, 8, 1) and floats.dtype == np.uint8 and (floats == 128).all()
    with pytest.raises(ValueError, match="one shape"):
        image_grid([np.zeros((3, 3, 3)), np.zeros((3, 4, 3))])
    with pytest.raises(ValueError, match="cols"):
        image_grid(np.zeros((2, 3, 3, 3)), cols=0)
