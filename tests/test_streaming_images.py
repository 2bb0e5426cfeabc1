"""zoo.data.stream: folders and arrays listed at start, decoded inside tf.data, the same batches
in memory and streamed, exact resume without decoding skipped batches; array sources end to end."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, assert_user_error, run_here, run_main
from PIL import Image

import zoo.data.sources as sources
from zoo.data import load_images
from zoo.data.stream import open_images
from zoo.errors import UserError

SIZE = (8, 8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two class folders, 10 images of mixed sizes and modes: gray, RGB, RGBA, palette, 16-bit
    gray and a JPEG whose EXIF orientation turns it on its side."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (root / label).mkdir()
        for i, mode in enumerate(("L", "RGB", "RGBA", "P")):
            pixels = rng.integers(0, 256, (9 + 3 * i, 20 - 2 * i, 3), np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / label / f"{i}.png")
    Image.fromarray(rng.integers(0, 65536, (12, 10), dtype=np.uint16)).save(root / "cats" / "16bit.png")
    turned = Image.fromarray(rng.integers(0, 256, (6, 14, 3), np.uint8))
    exif = turned.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees when shown
    turned.save(root / "dogs" / "turned.jpg", exif=exif, quality=95)
    return root


@pytest.fixture
def decodes(monkeypatch):
    """Counts the image files decoded (every decode, streamed or not, goes through `_decode`)."""
    calls = []
    decode = sources._decode
    monkeypatch.setattr(sources, "_decode", lambda path, *args: calls.append(path) or decode(path, *args))
    return calls


def _take(batches, start, count):
    return list(batches(start).take(count).as_numpy_iterator())


def test_listing_decodes_nothing_until_batches_are_read(folder, decodes, capsys):
    images = open_images(str(folder), "train", 3, SIZE, (0.0, 1.0), cache="off")
    assert not images.in_memory and len(images) == 10 and images.names == ["cats", "dogs"]
    assert "training images (10 files in" in capsys.readouterr().out
    batches = images.batches(4, seed=0, with_labels=True)
    dataset = batches(0)
    assert decodes == []  # listed (headers read), nothing decoded
    x, y = next(iter(dataset))
    assert x.shape == (4, *SIZE, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert len(decodes) >= 4
    decodes.clear()
    assert open_images(str(folder), "train", 3, SIZE, cache="auto").in_memory  # tiny: decoded at once
    assert len(decodes) == 10


@pytest.mark.parametrize("value_range", [(0.0, 1.0), None])
def test_streamed_batches_equal_in_memory_batches(folder, value_range):
    kept = open_images(str(folder), "train", 3, SIZE, value_range, cache="on")
    streamed = open_images(str(folder), "train", 3, SIZE, value_range, cache="off")
    # In memory: exactly load_images' pixels (and streamed reads give the same pixels).
    loaded, labels, _ = load_images(str(folder), "train", 3, SIZE, value_range or (0.0, 255.0))
    np.testing.assert_array_equal(kept.array, loaded if value_range else loaded.astype(np.uint8))
    np.testing.assert_array_equal(streamed.read(range(10)), kept.array)
    assert kept.labels.tolist() == labels.tolist() == streamed.labels.tolist()
    # 7 batches of 4 over 10 images: batches run on across three epochs.
    a, b = (_take(images.batches(4, seed=3, with_labels=True), 0, 7) for images in (kept, streamed))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    rows = [x.tobytes() for x in np.concatenate([x for x, _ in a])]
    assert sorted(rows[:10]) == sorted(rows[10:20]) == sorted(r.tobytes() for r in kept.array)  # epochs: permutations
    assert rows[:10] != rows[10:20]  # reshuffled every epoch


def test_in_memory_order_is_the_previous_pipelines(folder):
    """The recipes used `from_tensor_slices(images).shuffle(N, seed).repeat().batch(B)`: the same batches."""
    kept = open_images(str(folder), "train", 1, SIZE, (0.0, 1.0), cache="on")
    before = (tf.data.Dataset.from_tensor_slices(kept.array).shuffle(10, seed=5, reshuffle_each_iteration=True)
              .repeat().batch(3, drop_remainder=True))
    for old, new in zip(before.take(8).as_numpy_iterator(), _take(kept.batches(3, seed=5), 0, 8), strict=True):
        np.testing.assert_array_equal(old, new)


def test_resume_at_batch_k_equals_the_tail_and_decodes_nothing_before_it(folder, decodes):
    images = open_images(str(folder), "train", 1, SIZE, None, cache="off")
    batches = images.batches(4, seed=1)
    whole = _take(batches, 0, 53)
    decodes.clear()
    tail = _take(batches, 50, 3)
    for a, b in zip(whole[50:], tail, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(decodes) < 50 * 4 / 2  # skipping 50 batches decoded none of their 200 images


def test_sample_is_spread_and_unreadable_files_are_named_before_training(folder, tmp_path):
    images = open_images(str(folder), "train", 1, SIZE, None, cache="off")
    np.testing.assert_array_equal(images.sample(3), images.read([0, 4, 9]))
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("L", (4, 4)).save(tmp_path / "fine.png")
    with pytest.raises(UserError, match=r"1 unreadable image file\(s\): .*notes.png"):
        open_images(str(tmp_path), "train", 1, SIZE, cache="off")
    with pytest.raises(UserError, match="--cache must be one of auto, on, off"):
        open_images(str(tmp_path), "train", 1, SIZE, cache="maybe")


def test_array_source_streams_from_its_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.random((9, 12, 10, 3)).astype(np.float32))
    np.savez(tmp_path / "xy.npz", images=rng.integers(0, 256, (9, 5, 5), dtype=np.uint8), labels=np.arange(9) % 3)
    for name, labelled in (("x.npy", False), ("xy.npz", True)):
        kept = open_images(str(tmp_path / name), "train", 1, SIZE, (0.0, 1.0), cache="on")
        streamed = open_images(str(tmp_path / name), "train", 1, SIZE, (0.0, 1.0), cache="off")
        np.testing.assert_array_equal(kept.array, load_images(str(tmp_path / name), "train", 1, SIZE)[0])
        for a, b in zip(*(_take(i.batches(4, 0, labelled), 0, 5) for i in (kept, streamed)), strict=True):
            for part_a, part_b in zip(a if labelled else [a], b if labelled else [b], strict=True):
                np.testing.assert_array_equal(part_a, part_b)
    assert isinstance(streamed.listed.rows, np.ndarray) and streamed.labels.tolist() == [0, 1, 2] * 3


_REPLICAS = """
import dataclasses, json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from train.recipes import get_recipe
from train.trainer import train
recipe = get_recipe("vae")
config = dataclasses.replace(recipe.presets["tiny"], data=sys.argv[1], cache="off", val_limit=8, projector_images=8)
one, two = (train(recipe, config, f"{sys.argv[2]}/{s}", strategy=s, verbose=False).get_weights()
            for s in ("one_device", "mirrored"))
print(json.dumps({"diff": max(float(np.abs(a - b).max()) for a, b in zip(one, two))}))
"""


def test_streamed_vae_run_on_two_replicas_matches_one(folder, tmp_path):
    """The whole trainer on a streamed folder: 2 replicas (MirroredStrategy, 2 logical CPUs) end
    with the weights of 1 (the numpy_function pipeline survives the dataset's distribution)."""
    result = subprocess.run([sys.executable, "-c", _REPLICAS, str(folder), str(tmp_path)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1",
                                 "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "streamed from disk" in result.stdout
    assert json.loads(result.stdout.strip().splitlines()[-1])["diff"] < 1e-5


def test_vae_cli_on_an_npy_array_and_zoo_eval(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "digits.npy", rng.integers(0, 256, (40, 20, 20), dtype=np.uint8))
    run_dir = tmp_path / "run"
    result = run_here(["train", "vae", "--preset", "tiny", "--data", tmp_path / "digits.npy", "--run-dir", run_dir])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training images (40 rows of digits.npy): kept in memory" in result.stdout
    assert (run_dir / "model.keras").is_file()
    code, out, err = run_main(["eval", run_dir, "--data", tmp_path / "digits.npy", "--limit", 8, "--k", 2,
                               "--samples", 2, "--json"], capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["vae_images"] == 8
    np.save(tmp_path / "loud.npy", np.full((4, 8, 8), 300, np.int16))
    assert_user_error(run_here(["train", "vae", "--preset", "tiny", "--data", tmp_path / "loud.npy",
                               "--run-dir", tmp_path / "bad"]), "loud.npy", "dtype int16")
    assert not (tmp_path / "bad").exists()


def test_dcgan_streams_a_labelled_npz_with_fcd(tmp_path, capsys):
    """Conditional DCGAN on an .npz with labels, streamed: classes from the labels, FCD reference
    statistics from the first streamed images (28x28 gray: the shipped classifier's shape)."""
    from train.recipes import get_recipe
    from train.recipes.dcgan import frechet_reference
    from train.trainer import train

    rng = np.random.default_rng(1)
    np.savez(tmp_path / "d.npz", x=rng.random((24, 28, 28)).astype(np.float32), y=np.arange(24) % 4)
    recipe = get_recipe("dcgan")
    config = dataclasses.replace(recipe.presets["tiny"], data=str(tmp_path / "d.npz"), cache="off", conditional=True,
                                 val_limit=8, fcd_train_images=10)
    model = train(recipe, config, tmp_path / "run", verbose=False)
    assert "training images (24 rows of d.npz): streamed from disk" in capsys.readouterr().out
    assert model.num_classes == 4 and (tmp_path / "run" / "model.keras").is_file()
    streamed, kept = (open_images(config.data, "train", 1, (28, 28), None, cache=c) for c in ("off", "on"))
    (_, (mu_a, sigma_a)), (_, (mu_b, sigma_b)) = (frechet_reference(config, i) for i in (streamed, kept))
    np.testing.assert_array_equal(mu_a, mu_b)
    np.testing.assert_array_equal(sigma_a, sigma_b)


def test_a_file_that_fails_to_decode_mid_run_ends_the_run(tmp_path):
    """A file whose header reads but whose pixels do not (truncated) fails when it is first
    decoded, naming it, and the process exits (TF 2.21 hung at exit with a live streamed
    iterator: `zoo.data.stream._release_uncaught_exception`)."""
    rng = np.random.default_rng(0)
    (tmp_path / "data").mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (300, 400, 3), np.uint8)).save(tmp_path / "data" / f"{i}.jpg")
    whole = (tmp_path / "data" / "3.jpg").read_bytes()
    (tmp_path / "data" / "3.jpg").write_bytes(whole[:len(whole) // 3])
    result = run_here(["train", "dcgan", "--preset", "tiny", "--limit", 0, "--image-size", 16, "--cache", "off",
                      "--data", tmp_path / "data", "--val-data", "assets:mnist", "--run-dir", tmp_path / "run"])
    assert result.returncode == 1, result.stderr[-2000:]
    assert "cannot read image" in result.stderr and "3.jpg" in result.stderr
