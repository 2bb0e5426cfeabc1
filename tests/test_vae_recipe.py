"""`python -m train vae` end to end (tiny preset), `zoo sample` / `zoo eval` on its model, bad inputs."""

import gzip
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, run_here
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import zoo  # noqa: F401


def train_vae(*args):
    return run_here(["train", "vae", "--preset", "tiny", *map(str, args)])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "vae"
    result = train_vae("--run-dir", run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Two class folders of PNGs of mixed sizes and modes (gray, RGB, RGBA, palette)."""
    root = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    for label, folder in enumerate(("circles", "squares")):
        (root / folder).mkdir()
        for i, (mode, size) in enumerate([("L", (20, 17)), ("RGB", (40, 40)), ("RGBA", (9, 31)),
                                          ("P", (28, 28)), ("L", (64, 12))] * 2):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), np.uint8)
            Image.fromarray(pixels).convert(mode).save(root / folder / f"{label}_{i}.png")
    return root


def test_tiny_run_writes_model_and_tensorboard(tiny_run):
    assert (tiny_run / "model.keras").is_file()
    events = EventAccumulator(str(tiny_run / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    for tag in ("train/loss", "train/reconstruction", "train/kl", "train/negative_elbo", "epoch/val_loss",
                "epoch/val_reconstruction", "epoch/val_kl", "epoch/val_negative_elbo",
                "vae/reconstructions", "vae/samples", "vae/interpolations",
                "vae/manifold", "vae/latent_scatter"):  # tiny has a 2-D latent
        assert tag in tags, (tag, sorted(tags))
    elbo = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("epoch/val_negative_elbo")]
    # The last value is the saved model's -ELBO on the 16 binarized validation digits (batches
    # of 8, as logged), below 784 ln 2 = 543.4 nats, what a decoder that knows nothing scores
    # (p = 0.5 per pixel). Measured 280.43 then 280.41: the decoder starts from the training
    # pixel means (the untrained model scores 280.43), which 6 steps barely move.
    from train.recipes.vae import PRESETS, build

    model = keras.saving.load_model(tiny_run / "model.keras")
    model.reset_metrics()
    for batch in build(PRESETS["tiny"]).val_data:
        logs = model.test_step(batch)  # the trackers' running means over the batches so far
    assert len(elbo) == 2 and elbo[-1] == pytest.approx(float(logs["negative_elbo"]), rel=1e-5), (elbo, logs)
    assert elbo[-1] < 28 * 28 * np.log(2), elbo
    logs = tiny_run / "logs"
    assert (logs / "projector_config.pbtxt").is_file() and (logs / "sprite.png").is_file()
    assert len((logs / "metadata.tsv").read_text().splitlines()) == 16  # digit labels


def test_sample_grid_and_interpolation_repeatable(tiny_run, tmp_path):
    outputs = []
    for name in ("a.png", "b.png"):
        result = run_here(["zoo", "sample", tiny_run, "-n", 9, "-o", tmp_path / name, "--seed", 3])
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    loaded = keras.saving.load_model(tiny_run / "model.keras")
    grid = np.asarray(Image.open(tmp_path / "a.png"))
    assert grid.shape[:2] == (3 * 28 + 2 * 2, 3 * 28 + 2 * 2)
    assert np.array_equal(loaded.sample(9, seed=3), loaded.sample(9, seed=3))
    result = run_here(["zoo", "sample", tiny_run, "-n", 6, "-o", tmp_path / "strip.png", "--seed", 1,
                      "--interpolate"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "strip.png").size == (6 * 28 + 5 * 2, 28)
    assert_user_error(run_here(["zoo", "sample", tiny_run, "-n", 4, "-o", tmp_path / "c.png",
                               "--label", 1]), "not class-conditional")
    assert not (tmp_path / "c.png").exists()


def test_eval_reports_elbo_and_iw_nll_with_k(tiny_run):
    result = run_here(["zoo", "eval", tiny_run, "--limit", 20, "--k", 4, "--samples", 2, "--json"])
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["vae_k"] == 4 and report["vae_images"] == 20 and report["vae_data"] == "assets:mnist"
    assert "dynamic" in report["vae_binarization"] and "seed 0" in report["vae_binarization"]
    assert 0 < report["vae_iw_nll"] < report["vae_negative_elbo"] + 1
    table = run_here(["zoo", "eval", tiny_run, "--limit", 10, "--k", 3, "--samples", 2])
    assert table.returncode == 0 and "k=3 importance samples" in table.stdout, table.stdout


def test_conditional_run_on_mixed_images_samples_by_label(mixed_folder, tmp_path):
    run_dir = tmp_path / "cond"
    result = train_vae("--data", mixed_folder, "--conditional", "true", "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.conditional and model.num_classes == 2
    for label in (0, 1):
        out = tmp_path / f"label{label}.png"
        result = run_here(["zoo", "sample", run_dir, "-n", 4, "-o", out, "--seed", 0, "--label", label])
        assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "label0.png").read_bytes() != (tmp_path / "label1.png").read_bytes()
    assert_user_error(run_here(["zoo", "sample", run_dir, "-n", 2, "-o", tmp_path / "x.png", "--label", 2]),
                      "out of range")


def test_bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(train_vae("--data", empty, "--run-dir", tmp_path / "r1"), str(empty), "no images")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (corrupt / name).write_bytes(b"\x1f\x8b not really gzip")
    assert_user_error(train_vae("--data", corrupt, "--run-dir", tmp_path / "r2"), "train-images-idx3-ubyte.gz")
    assert_user_error(train_vae("--latent-size", 0, "--run-dir", tmp_path / "r3"), "--latent-size", "at least 1")
    # int16 idx images with values up to 510: load_images maps 0..255 to [0, 1], so up to 2.0.
    loud = tmp_path / "loud"
    loud.mkdir()
    images = np.random.default_rng(0).integers(0, 511, (40, 28, 28)).astype(">i2")
    header = bytes([0, 0, 0x0B, 3]) + np.array([40, 28, 28], ">u4").tobytes()
    (loud / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + images.tobytes()))
    labels = bytes([0, 0, 8, 1]) + np.array([40], ">u4").tobytes() + bytes(40)
    (loud / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    assert_user_error(train_vae("--data", loud, "--val-data", "assets:mnist", "--run-dir", tmp_path / "r4"),
                      "Bernoulli likelihood needs", str(loud))
    for run in ("r1", "r2", "r3", "r4"):
        assert not (tmp_path / run).exists()  # nothing written


def test_tfds_mnist_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    from train.recipes import get_recipe
    from train.trainer import train

    recipe = get_recipe("vae")
    config = type(recipe.presets["tiny"])(**{**recipe.presets["tiny"].__dict__, "data": "tfds:mnist"})
    with warnings.catch_warnings(), tfds.testing.mock_data(num_examples=40):
        warnings.simplefilter("ignore")
        model = train(recipe, config, tmp_path / "run", verbose=False)
    assert model.image_shape == (28, 28, 1) and (tmp_path / "run" / "model.keras").is_file()
    assert model.sample(2, seed=0).shape == (2, 28, 28, 1)


def test_help_lists_the_vae_flags():
    result = run_here(["train", "vae", "--help"])
    assert result.returncode == 0, result.stderr[-2000:]
    for flag in ("--latent-size", "--beta", "--likelihood", "--width", "--depth", "--conditional"):
        assert flag in result.stdout
