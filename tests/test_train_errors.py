"""`python -m train` on bad input: one `error:` line, exit 2, no traceback, nothing overwritten."""

import json

import numpy as np
import pytest
from PIL import Image

from helpers import assert_user_error, run_here

TINY = ["gan_superres", "--preset", "tiny"]


def train(*args):
    return run_here(["train", *args])


@pytest.mark.parametrize("args, fragments", [
    (["gan_superes"], ["unknown recipe", "did you mean gan_superres"]),
    ([*TINY, "--bogus", "1"], ["unrecognized arguments: --bogus"]),
    ([*TINY, "--epochs", "abc"], ["--epochs", "invalid int value"]),
    ([*TINY, "--epochs", "-1"], ["--epochs must be at least 1", "-1"]),
    ([*TINY, "--scale", "5"], ["--scale must be one of 2, 3, 4", "5"]),
    ([*TINY, "--precision", "float8"], ["--precision", "expected one of auto, float32"]),
    ([*TINY, "--preset", "huge"], ["--preset", "invalid choice"]),
])
def test_bad_flags(args, fragments):
    assert_user_error(train(*args), *fragments)


def test_run_dir_that_is_a_file(tmp_path):
    path = tmp_path / "run"
    path.write_text("keep me")
    assert_user_error(train(*TINY, "--run-dir", str(path)), "is a file")
    assert path.read_text() == "keep me"


def test_run_dir_of_another_recipe_or_other_settings(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"recipe": "vae", "config": {}}))
    assert_user_error(train(*TINY, "--run-dir", str(other)), "holds a 'vae' run")
    assert sorted(p.name for p in other.iterdir()) == ["config.json"]
    same = tmp_path / "same"
    same.mkdir()
    config = {"recipe": "gan_superres", "config": {"filters": 16}}
    (same / "config.json").write_text(json.dumps(config))
    assert_user_error(train(*TINY, "--run-dir", str(same)), "other settings", "--filters 16 -> 8")
    assert json.loads((same / "config.json").read_text()) == config


def _data_error(tmp_path, data, *fragments):
    run_dir = tmp_path / "run"
    assert_user_error(train(*TINY, "--data", str(data), "--run-dir", str(run_dir)), *fragments)
    assert not run_dir.exists()  # nothing written before the data was checked


def test_missing_and_empty_data_folders(tmp_path):
    _data_error(tmp_path, tmp_path / "nowhere", "does not exist")
    (tmp_path / "empty").mkdir()
    _data_error(tmp_path, tmp_path / "empty", "holds no PNG, JPEG or BMP image")


def test_corrupt_images_are_named(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "good.png")
    (folder / "text.png").write_text("not an image")
    png = (folder / "good.png").read_bytes()
    (folder / "cut.png").write_bytes(png[: len(png) // 2])
    _data_error(tmp_path, folder, "2 unreadable image file(s)", "text.png", "cut.png")


def test_images_smaller_than_the_crop(tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(folder / "a.png")
    _data_error(tmp_path, folder, "smaller than the 32-pixel HR crop", "a.png (24x20)")
