"""`python -m train dcgan` end to end: tiny runs (non-saturating on MNIST; conditional WGAN-GP on a
folder of mixed sizes and modes; hinge on mocked TFDS), TensorBoard contents, `zoo sample` on the
runs, and the errors a user can cause."""

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, run_here
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import zoo
from zoo.__main__ import main


def train(*args):
    return run_here(["train", "dcgan", "--preset", "tiny", *map(str, args)])


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "ns"
    result = train("--run-dir", run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def _tags(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    return events


def test_tiny_run_logs_losses_fixed_noise_samples_and_fcd(mnist_run):
    events = _tags(mnist_run)
    tags = set(events.Tags()["tensors"])
    for tag in ("train/d_loss", "train/g_loss", "train/real_score", "epoch/val_d_real_loss", "epoch/val_fcd",
                "learning_rate/g_optimizer", "samples/samples"):
        assert tag in tags, (tag, sorted(tags))
    fcd = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("epoch/val_fcd")]
    assert len(fcd) == 2 and all(np.isfinite(fcd))
    grids = [tf.io.decode_png(tf.make_ndarray(e.tensor_proto)[2]).numpy() for e in events.Tensors("samples/samples")]
    assert len(grids) == 2 and grids[0].shape == (4 * 28 + 3 * 2, 4 * 28 + 3 * 2, 1)  # 16 samples
    # The grid comes from the same noise every epoch: the last one is the saved model's.
    model = zoo.load(mnist_run, compile=False)
    from train.recipes.dcgan import GRID_SEED
    from zoo.visualize import image_grid
    np.testing.assert_array_equal(grids[-1], image_grid(model.sample(16, seed=GRID_SEED)))
    # The last FCD is the saved model's: its 50 FCD samples against the first 100 training
    # digits. A 2-epoch generator is far from digits: measured 465.6 against 87.3 for 50
    # held-out real digits (the floor; uniform noise: 400, black images: 471).
    from train.recipes.dcgan import FCD_SEED
    from zoo.data import load_images
    from zoo.evaluation.frechet import FrechetClassifierDistance, held_out_subset

    scorer, train_digits = FrechetClassifierDistance(), load_images("assets:mnist", "train", limit=100)[0]
    assert fcd[-1] == pytest.approx(scorer.distance(model.sample(50, seed=FCD_SEED), train_digits), rel=1e-5)
    floor = scorer.distance(held_out_subset(load_images("assets:mnist", "test", limit=200)[0], 50), train_digits)
    assert fcd[-1] > 2 * floor, (fcd, floor)
    saved = json.loads((mnist_run / "config.json").read_text())["config"]
    assert saved["loss"] == "nonsaturating" and saved["fcd_samples"] == 50


def test_zoo_sample_is_repeatable_byte_for_byte(mnist_run, tmp_path):
    outputs = [tmp_path / "a.png", tmp_path / "b.png"]
    for output in outputs:
        result = run_here(["zoo", "sample", mnist_run, "-n", "16", "-o", output, "--seed", "1"])
        assert result.returncode == 0, result.stderr[-2000:]
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    assert np.asarray(Image.open(outputs[0])).shape == (4 * 28 + 3 * 2, 4 * 28 + 3 * 2)


def test_zoo_sample_interpolates_and_refuses_a_label(mnist_run, tmp_path, capsys):
    assert main(["sample", str(mnist_run), "-n", "7", "--interpolate", "-o", str(tmp_path / "strip.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "strip.png")).shape == (28, 7 * 28 + 6 * 2)
    code = main(["sample", str(mnist_run), "-n", "4", "--label", "7", "-o", str(tmp_path / "seven.png")])
    assert code == 2 and "not class-conditional" in capsys.readouterr().err
    assert not (tmp_path / "seven.png").exists()


def _write_mixed_folder(root: Path) -> None:
    """Two classes of images in every size and mode the loader handles."""
    rng = np.random.default_rng(0)
    for label, sizes in (("a", [(20, 31), (40, 40), (28, 28)]), ("b", [(64, 17), (33, 50), (28, 28)])):
        (root / label).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            image = [Image.fromarray(rgb), Image.fromarray(rgb).convert("L"),
                     Image.fromarray(np.dstack([rgb, rgb[..., :1]]))][i]
            image.save(root / label / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)).quantize(8).save(root / "b" / "p.png")


def test_conditional_wgan_gp_on_a_folder_of_mixed_images(tmp_path, capsys):
    _write_mixed_folder(tmp_path / "data")
    run_dir = tmp_path / "run"
    result = train("--run-dir", run_dir, "--data", tmp_path / "data", "--loss", "wgan-gp", "--conditional", "true",
                   "--n-critic", "2", "--image-size", "32", "--channels", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no Frechet classifier distance" in result.stdout  # 32x32 RGB: not the classifier's shape
    model = zoo.load(run_dir, compile=False)
    assert model.conditional and model.num_classes == 2 and model.loss_name == "wgan-gp" and model.n_critic == 2
    assert main(["sample", str(run_dir), "-n", "4", "--label", "1", "--seed", "0", "-o", str(tmp_path / "b.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "b.png")).shape == (2 * 32 + 2, 2 * 32 + 2, 3)
    code = main(["upscale", str(run_dir), str(tmp_path / "b.png"), "-o", str(tmp_path / "up.png")])
    assert code == 2 and "cannot upscale" in capsys.readouterr().err


def test_hinge_on_mocked_tfds_mnist(tmp_path):
    import tensorflow_datasets as tfds

    from train.recipes import get_recipe
    from train.trainer import train as train_recipe

    recipe = get_recipe("dcgan")
    config = dataclasses.replace(recipe.presets["tiny"], data="tfds:mnist", loss="hinge", conditional=True,
                                 fcd_samples=0)
    with warnings.catch_warnings(), tfds.testing.mock_data(num_examples=24):
        warnings.simplefilter("ignore")
        model = train_recipe(recipe, config, tmp_path / "run", verbose=False)
    assert model.num_classes == 10 and model.loss_name == "hinge"
    assert model.sample(3, seed=0, label=4).shape == (3, 28, 28, 1)
    assert (tmp_path / "run" / "model.keras").is_file()


def test_folder_without_images_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = train("--run-dir", tmp_path / "run", "--data", tmp_path / "empty")
    assert_user_error(result, "holds no images")
    assert not (tmp_path / "run" / "config.json").exists()


@pytest.mark.parametrize("flags,fragment", [
    (["--loss", "wgan-gp", "--d-norm", "batch"], "--d-norm"),
    (["--image-size", "30"], "--image-size"),
    (["--loss", "lsgan"], "--loss"),
    (["--fcd-samples", "1"], "--fcd-samples"),
])
def test_bad_flags_are_refused_before_training(tmp_path, flags, fragment):
    assert_user_error(train("--run-dir", tmp_path / "run", *flags), fragment)
    assert not (tmp_path / "run").exists()
