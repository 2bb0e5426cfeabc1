"""Super-resolution data people really have: folders streamed from disk, real LR/HR pairs,
.npy/.npz arrays and one-channel (Y) models."""

import json

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, run_here
from PIL import Image

import zoo.data.cache
from zoo.data import load_array, sr_eval_dataset, sr_eval_images, sr_train_batches
from zoo.data.images import luma, luma_tf, model_channels
from zoo.data.sr import list_image_set, match_pairs
from zoo.errors import UserError
from zoo.evaluation.sr import sr_triplets
from zoo.models import build_sr_generator
from zoo.models.tiling import upscale_images


def _batches(dataset, n):
    return [tuple(t.numpy() for t in pair) for pair in dataset.take(n)]


def _photo(path, shape, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (*shape, 3), np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _pair_folders(tmp_path, count=3, scale=4, lr_name="{stem}x{scale}.png"):
    """HR images that are LR images blown up by `scale` (every HR block of scale x scale pixels
    is one LR pixel), so an aligned crop's LR is its HR sampled every `scale` pixels."""
    hr, lr = tmp_path / "hr", tmp_path / "lr"
    hr.mkdir(parents=True), lr.mkdir()
    for i in range(count):
        small = np.random.default_rng(i).integers(0, 256, (10 + i, 12, 3), np.uint8)
        Image.fromarray(np.kron(small, np.ones((scale, scale, 1), np.uint8))).save(hr / f"{i:04d}.png")
        Image.fromarray(small).save(lr / lr_name.format(stem=f"{i:04d}", scale=scale))
    return str(hr), str(lr)


# ----------------------------------------------------------------------------- streaming

def test_listing_decodes_nothing_and_a_set_over_the_budget_streams(tmp_path, monkeypatch, capsys):
    for i in range(6):
        _photo(tmp_path / f"{i}.png", (64, 80), seed=i)
    loads = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: loads.append(1) or real_load(self))
    monkeypatch.setattr(zoo.data.cache, "CACHE_BUDGET_BYTES", 6 * 64 * 80 * 3 - 1)  # one byte short
    batches = sr_train_batches(str(tmp_path), crop=32, scale=4, batch_size=4, seed=0)
    assert loads == [], "listing read pixels: it must read headers only"
    assert "streamed from disk" in capsys.readouterr().out
    (lr, hr), = _batches(batches(0), 1)
    assert lr.shape == (4, 8, 8, 3) and hr.shape == (4, 32, 32, 3)
    monkeypatch.setattr(zoo.data.cache, "CACHE_BUDGET_BYTES", 6 * 64 * 80 * 3)  # fits: decoded once
    sr_train_batches(str(tmp_path), crop=32, scale=4, batch_size=4, seed=0)
    assert loads and "kept in memory" in capsys.readouterr().out


@pytest.mark.parametrize("cache", ["on", "off"])
def test_batches_from_k_are_the_tail_of_the_stream(tmp_path, cache):
    for i in range(5):
        _photo(tmp_path / f"{i}.png", (48 + 8 * i, 64), seed=i)
    batches = sr_train_batches(str(tmp_path), crop=16, scale=4, batch_size=2, seed=3, cache=cache)
    whole, tail = _batches(batches(0), 9), _batches(batches(5), 4)
    for (lr1, hr1), (lr2, hr2) in zip(whole[5:], tail, strict=True):
        np.testing.assert_array_equal(hr1, hr2)
        np.testing.assert_array_equal(lr1, lr2)
    other = _batches(sr_train_batches(str(tmp_path), 16, 4, 2, seed=4, cache=cache)(0), 9)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(whole, other, strict=True))


def test_streamed_crops_come_from_several_images_and_lr_is_bicubic(tmp_path):
    for i in range(4):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    (lr, hr), = _batches(sr_train_batches(str(tmp_path), 16, 4, 4, seed=0, cache="off")(0), 1)
    assert len({float(v) for v in hr[:, 0, 0, 0]}) > 1, "a batch mixes images"
    np.testing.assert_array_equal(lr, hr[:, ::4, ::4])  # bicubic of a constant image is that constant


# ----------------------------------------------------------------------------- LR/HR pairs

@pytest.mark.parametrize("cache", ["on", "off"])
def test_pair_crops_are_aligned(tmp_path, cache):
    hr, lr = _pair_folders(tmp_path)
    batches = sr_train_batches(hr, crop=16, scale=4, batch_size=6, seed=1, lr_source=lr, cache=cache)
    for lows, highs in _batches(batches(0), 3):
        np.testing.assert_array_equal(lows, highs[:, ::4, ::4])


@pytest.mark.parametrize("lr_name", ["{stem}x{scale}.png", "{stem}.png", "{stem}x{scale}.bmp"])
def test_pairs_match_by_stem_and_by_div2k_names(tmp_path, lr_name):
    hr, lr = _pair_folders(tmp_path, lr_name=lr_name)
    high, low = match_pairs(list_image_set(hr), list_image_set(lr), 4)
    assert [n[:4] for n in low.names] == [n[:4] for n in high.names] == ["0000", "0001", "0002"]
    images = sr_eval_images(hr, 4, lr)
    assert [len(item) for item in images] == [3, 3, 3]
    np.testing.assert_array_equal(images[0][2], images[0][1][::4, ::4])


def test_pair_mistakes_are_named(tmp_path):
    hr, lr = _pair_folders(tmp_path)
    (tmp_path / "lr" / "0002x4.png").rename(tmp_path / "lr" / "0009x4.png")
    with pytest.raises(UserError, match=r"HR 0002.png has no LR image.*0002x4.*LR 0009x4.png has no HR"):
        sr_train_batches(hr, 16, 4, 2, lr_source=lr)
    (tmp_path / "lr" / "0009x4.png").unlink()
    Image.fromarray(np.zeros((5, 12, 3), np.uint8)).save(tmp_path / "lr" / "0002x4.png")
    with pytest.raises(UserError, match=r"LR 0002x4.png is 12x5 but HR 0002.png is 48x48: at x4 .* 12x12"):
        sr_eval_images(hr, 4, lr)
    hr, lr = _pair_folders(tmp_path / "same", lr_name="{stem}.png")
    with pytest.raises(UserError, match="LR 0000.png is 12x10 but HR 0000.png is 48x40: at x2 the LR image must be 24x20"):
        match_pairs(list_image_set(hr), list_image_set(lr), 2)


def _bad_data(tmp_path, case):
    """Flags for one mistake a user makes with pairs or arrays."""
    hr, lr = _pair_folders(tmp_path)
    if case == "unmatched":
        (tmp_path / "lr" / "0001x4.png").unlink()
        return ["--data", hr, "--lr-data", lr], ("0001.png", "has no LR image", lr)
    if case == "wrong size":
        Image.fromarray(np.zeros((5, 12, 3), np.uint8)).save(tmp_path / "lr" / "0002x4.png")
        return ["--data", hr, "--lr-data", lr], ("LR 0002x4.png is 12x5 but HR 0002.png is 48x48",)
    arrays = {"int16": np.zeros((2, 20, 20), np.int16), "range": np.full((2, 20, 20), 1.5, np.float32),
              "5-D": np.zeros((2, 20, 20, 3, 1), np.uint8)}
    np.save(tmp_path / "bad.npy", arrays[case])
    return ["--data", str(tmp_path / "bad.npy")], ("bad.npy", {"int16": "int16", "range": "[0, 1]",
                                                               "5-D": "shape (2, 20, 20, 3, 1)"}[case])


@pytest.mark.parametrize("case", ["unmatched", "wrong size", "int16", "range", "5-D"])
def test_data_mistakes_are_one_error_line_and_exit_2(tmp_path, case, capsys):
    from train.__main__ import _run

    flags, fragments = _bad_data(tmp_path, case)
    code = _run(["gan_superres", "--preset", "tiny", "--crop-size", "16", *flags,
                 "--run-dir", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_pair_errors_on_the_command_line(tmp_path):
    flags, fragments = _bad_data(tmp_path, "unmatched")
    result = run_here(["train", "gan_superres", "--preset", "tiny", *flags, "--crop-size", "16",
                      "--run-dir", str(tmp_path / "run")])
    assert_user_error(result, *fragments)


# ----------------------------------------------------------------------------- arrays

@pytest.mark.parametrize("shape", [(3, 20, 24), (3, 20, 24, 1), (3, 20, 24, 3)])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_arrays_of_any_layout_train_and_evaluate(tmp_path, shape, dtype):
    pixels = np.random.default_rng(0).integers(0, 256, shape, np.uint8)
    np.save(tmp_path / "hr.npy", pixels if dtype == "uint8" else (pixels / 255.0).astype(dtype))
    images = load_array(tmp_path / "hr.npy")
    assert images.shape == (*shape[:3], shape[3] if len(shape) == 4 else 1)
    channels = 1 if len(shape) == 3 or shape[3] == 1 else 3
    (lr, hr), = _batches(sr_train_batches(str(tmp_path / "hr.npy"), 16, 4, 2, channels=channels, cache="off")(0), 1)
    assert hr.shape == (2, 16, 16, channels) and lr.shape == (2, 4, 4, channels)
    evaluated = sr_eval_images(str(tmp_path / "hr.npy"), 4)
    assert evaluated[0][0] == "hr.npy[0]" and evaluated[0][1].shape == (20, 24, channels)
    np.testing.assert_array_equal(evaluated[1][1], pixels[1].reshape(20, 24, -1))  # float rounds back


def test_lr_and_hr_arrays_pair_by_index(tmp_path):
    small = np.random.default_rng(0).integers(0, 256, (4, 6, 6), np.uint8)
    np.save(tmp_path / "lr.npy", small)
    np.savez(tmp_path / "hr.npz", images=np.kron(small, np.ones((1, 4, 4), np.uint8)))
    batches = sr_train_batches(str(tmp_path / "hr.npz"), 16, 4, 4, lr_source=str(tmp_path / "lr.npy"),
                               channels=1, cache="off")
    for lows, highs in _batches(batches(0), 2):
        np.testing.assert_array_equal(lows, highs[:, ::4, ::4])
    both = str(tmp_path / "both.npz")  # one file: its hr array with its lr array
    np.savez(both, lr=small, hr=np.kron(small, np.ones((1, 4, 4), np.uint8)))
    name, high, low = sr_eval_images(both, 4, both)[2]
    assert name == "both.npz[2]" and high.shape == (24, 24, 1) and low.shape == (6, 6, 1)
    np.testing.assert_array_equal(low, high[::4, ::4])
    np.save(tmp_path / "lr.npy", small[:3])
    with pytest.raises(UserError, match="holds 4 images and LR array .* 3"):
        sr_train_batches(str(tmp_path / "hr.npz"), 16, 4, 4, lr_source=str(tmp_path / "lr.npy"))


@pytest.mark.parametrize("array, message", [
    (np.zeros((2, 8, 8), np.int16), "dtype int16: images must be uint8"),
    (np.full((2, 8, 8), 2.0, np.float32), "values from 2 to 2 .* must lie in \\[0, 1\\]"),
    (np.full((2, 8, 8), np.nan, np.float32), "must lie in \\[0, 1\\]"),
    (np.zeros((2, 8, 8, 3, 1), np.uint8), "shape \\(2, 8, 8, 3, 1\\)"),
    (np.zeros((2, 8, 8, 5), np.uint8), "shape \\(2, 8, 8, 5\\)"),
    (np.zeros((8, 8), np.uint8), "shape \\(8, 8\\)"),
])
def test_bad_arrays_are_named(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(UserError, match=f"array .*bad.npy.*{message}"):
        load_array(tmp_path / "bad.npy")


def test_npz_with_several_arrays_needs_a_known_name(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((1, 4, 4), np.uint8), b=np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(UserError, match="holds arrays a, b: .* images, hr, x"):
        load_array(tmp_path / "two.npz")
    np.save(tmp_path / "bad.npy", np.zeros((2, 20, 20), np.int16))
    result = run_here(["train", "gan_superres", "--preset", "tiny", "--data", str(tmp_path / "bad.npy"),
                      "--crop-size", "16", "--run-dir", str(tmp_path / "run")])
    assert_user_error(result, "bad.npy", "int16")


# ----------------------------------------------------------------------------- one channel

def test_luma_is_studio_range_y_in_numpy_and_in_tf():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), np.uint8)
    y = 16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255
    np.testing.assert_allclose(luma(rgb)[..., 0], y, atol=0.5 + 1e-4)
    np.testing.assert_array_equal(luma(rgb), luma_tf(tf.constant(rgb)).numpy())
    gray = rgb[..., :1]
    np.testing.assert_array_equal(luma(gray), gray)  # gray images are used as they are
    np.testing.assert_array_equal(luma_tf(tf.constant(gray)).numpy(), gray)
    np.testing.assert_array_equal(model_channels(gray, 3), np.repeat(gray, 3, axis=-1))


def test_a_one_channel_model_upscales_y_and_leaves_chroma_to_bicubic():
    generator = build_sr_generator(2, 4, 0, channels=1)
    for weight in generator.get_layer("tail").weights:  # no detail: the model is bicubic on Y
        weight.assign(np.zeros(weight.shape))
    image = np.random.default_rng(1).integers(0, 256, (12, 10, 3), np.uint8)
    out = upscale_images(generator, image, 2, tile=8, overlap=2)
    assert out.shape == (24, 20, 3) and out.dtype == np.uint8
    bicubic = tf.image.resize(image.astype(np.float32), (24, 20), "bicubic").numpy()
    assert np.abs(out.astype(float) - np.clip(bicubic, 0, 255)).mean() < 1.5  # Y, Cb, Cr: all bicubic
    gray = upscale_images(generator, image[..., :1], 2, tile=8, overlap=2)
    assert gray.shape == (24, 20, 1)


def test_one_channel_models_are_scored_on_y(tmp_path):
    class Model:
        channels, scale = 1, 4

        def upscale(self, lr, tile, overlap):
            assert lr.shape[-1] == 1
            return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)

    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), np.uint8)
    triplet, = sr_triplets(Model(), [("x", image)], 4)
    np.testing.assert_array_equal(triplet.hr, luma(image))
    assert triplet.sr.shape == triplet.bicubic.shape == (32, 40, 1)
    (lr, hr), = list(sr_eval_dataset([("x", image)], 4, copies=2, channels=1).as_numpy_iterator())
    assert lr.shape == (2, 8, 10, 1) and hr.shape == (2, 32, 40, 1)


def test_pairs_and_one_channel_end_to_end(tmp_path):
    hr, lr = _pair_folders(tmp_path, count=4)
    run = tmp_path / "run"
    result = run_here(["train", "gan_superres", "--preset", "tiny", "--data", hr, "--lr-data", lr,
                      "--val-data", hr, "--val-lr-data", lr, "--crop-size", "16", "--channels", "1",
                      "--cache", "off", "--run-dir", str(run)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training images (4 pairs in hr): streamed from disk" in result.stdout
    result = run_here(["zoo", "eval", str(run), "--data", hr, "--lr-data", lr, "--json"])
    report = json.loads(result.stdout)
    assert report["lr_data"] == lr and report["channels"] == 1 and report["n_images"] == 4
    result = run_here(["zoo", "upscale", str(run / "model.keras"), str(tmp_path / "hr" / "0000.png"),
                      "-o", str(tmp_path / "up.png")])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "one-channel model: it upscales the Y channel" in result.stdout
    assert Image.open(tmp_path / "up.png").size == (48 * 4, 40 * 4)
