"""zoo.explain.image (integrated gradients, occlusion, row attention, deletion test) and
zoo.explain.embed (PCA / t-SNE plots, projector), directly and through `python -m zoo explain`."""

from __future__ import annotations

import json
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from helpers import assert_user_error, run_here
from keras import ops
from PIL import Image
from tensorboard.plugins import projector

import zoo
from zoo.__main__ import main
from zoo.data import write_image
from zoo.errors import UserError
from zoo.explain import embed as embed_module
from zoo.explain.embed import can_embed, embed, pca
from zoo.explain.image import (_sr_target, can_explain, deletion_test, explain_images, integrated_gradients,
                               occlusion, receptive_reach, sr_input_window, value_and_gradient)
from zoo.models import SRGAN, VAE, TextClassifier, build_sr_discriminator, build_sr_generator
from zoo.models.som_rbf_attention import SomRbfAttentionClassifier

SHAPE = (8, 8, 1)


# ----------------------------------------------------------------------------- fixtures

def _classifier(shape=SHAPE) -> SomRbfAttentionClassifier:
    x = np.random.default_rng(0).random((24, *shape), dtype=np.float32)
    model = SomRbfAttentionClassifier(["a", "b", "c"], image_shape=shape, som_grid=(2, 3), rbf_units=5,
                                      attention_units=4)
    model.fit_som(x, steps=2)
    model.adapt_rbf(x)
    return model


def _models() -> dict:
    return {"classifier": _classifier(), "vae": VAE.create(SHAPE, 3, 4, 1),
            "super_resolution": SRGAN(build_sr_generator(2, 4, 1), build_sr_discriminator(4, 1, 4), scale=2)}


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """Each image model kind, saved to .keras and loaded back as `python -m zoo` loads it."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for kind, model in _models().items():
        model.save(folder / f"{kind}.keras")
        paths[kind] = folder / f"{kind}.keras"
    return {kind: (path, zoo.load(path, compile=False)) for kind, path in paths.items()}


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(1)
    files = {"gray": folder / "gray.png", "rgb": folder / "rgb.png", "big": folder / "big.png"}
    write_image(files["gray"], rng.integers(0, 256, (8, 8, 1), dtype=np.uint8))
    write_image(files["rgb"], rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))  # converted to gray for 1-channel models
    write_image(files["big"], rng.integers(0, 256, (12, 10, 1), dtype=np.uint8))
    return files


# ----------------------------------------------------------------------------- the methods

def test_integrated_gradients_equal_the_closed_form_of_a_quadratic():
    """f(x) = (w.x)^2 from a black baseline: IG_i = w_i x_i (w.x) exactly; the gradient is linear
    along the path, so the trapezoid rule is exact with any number of steps."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(5, 4, 2)).astype(np.float32)
    x = rng.random((5, 4, 2)).astype(np.float32)

    def f(images, label):
        return ops.square(ops.sum(images * w, axis=(1, 2, 3)))

    attribution, f_x, f_b = integrated_gradients(f, x, steps=3, batch_size=2)
    dot = float(np.sum(w * x, dtype=np.float64))
    np.testing.assert_allclose(attribution, w * x * dot, rtol=1e-4, atol=1e-6)
    assert f_b == 0 and f_x == pytest.approx(dot ** 2, rel=1e-5)
    assert attribution.sum() == pytest.approx(f_x - f_b, rel=1e-4)


def _region_model(height=12, width=12, region=(slice(2, 5), slice(6, 9))):
    """A model that looks only at one region of the image: f = tanh(sum of the region)."""
    mask = np.zeros((height, width, 1), np.float32)
    mask[region] = 1.0
    return (lambda images, label: ops.tanh(ops.sum(images * mask, axis=(1, 2, 3)) / 4.0)), mask[..., 0]


def test_occlusion_and_ig_highlight_the_only_region_a_model_sees():
    f, mask = _region_model()
    image = np.random.default_rng(0).uniform(0.2, 1.0, (12, 12, 1)).astype(np.float32)
    heat, f_x = occlusion(f, image, patch=2, stride=1)
    assert heat.shape == (12, 12) and f_x > 0
    inside, outside = heat[mask > 0], heat[mask == 0]
    assert inside.min() > 0 and np.unravel_index(np.argmax(heat), heat.shape) in set(zip(*np.nonzero(mask)))
    far = np.ones_like(mask, bool)
    far[1:6, 5:10] = False  # pixels no 2x2 patch overlapping the region covers
    assert np.all(heat[far] == 0) and inside.mean() > 3 * max(outside.mean(), 1e-9)
    attribution, f_x2, f_b = integrated_gradients(f, image, steps=64)
    assert np.all(attribution[mask == 0] == 0) and np.all(attribution[mask > 0] > 0)
    assert abs(attribution.sum() - (f_x2 - f_b)) < 1e-3 * (f_x2 - f_b)


def test_deletion_of_the_top_patches_beats_random_patches_and_is_seeded():
    f, mask = _region_model()
    image = np.random.default_rng(0).uniform(0.2, 1.0, (12, 12, 1)).astype(np.float32)
    result = deletion_test(f, image, {"truth": mask, "reversed": -mask}, label=0, seed=[3, 0], ks=(1, 2, 4))
    assert result["patch"] == 2 and result["patches"] == 36 and result["k"] == [1, 2, 4]
    assert all(t > r for t, r in zip(result["truth"], result["random"]))
    assert result["reversed"] == [0.0, 0.0, 0.0]  # the least attributed patches lie outside the region
    assert deletion_test(f, image, {"truth": mask, "reversed": -mask}, 0, [3, 0], (1, 2, 4)) == result
    assert deletion_test(f, image, {"truth": mask}, 0, [4, 0], (1, 2, 4))["random"] != result["random"]


def test_receptive_reach_sums_the_layers_and_gives_up_on_unknown_ones():
    inputs = keras.Input((None, None, 3))
    inner = keras.Sequential([keras.layers.Conv2D(3, 5, padding="same", dilation_rate=2)])  # reaches 4
    x = keras.layers.Conv2D(3, (3, 7), padding="same")(inner(inputs))  # reaches 3
    assert receptive_reach(keras.Model(inputs, keras.layers.ReLU()(keras.layers.Add()([x, inputs])))) == 7
    assert receptive_reach(keras.Model(inputs, keras.layers.Concatenate()([x, inputs]))) == 7
    assert receptive_reach(keras.Model(inputs, keras.layers.Concatenate(axis=1)([x, inputs]))) is None
    for layer in (keras.layers.Conv2D(3, 3, strides=2, padding="same"), keras.layers.Conv2D(3, 3),
                  keras.layers.AveragePooling2D(2), keras.layers.UpSampling2D(2, interpolation="bilinear"),
                  keras.layers.Lambda(lambda x: x[:, ::-1])):
        assert receptive_reach(keras.Sequential([keras.Input((None, None, 3)), layer])) is None, layer
    # SR generator: head 1 + residual block 2 + body 1 + upsampling conv 1 + tail 1 + the bicubic branch 2
    assert receptive_reach(build_sr_generator(2, 4, 1)) == 8


def test_super_resolution_runs_the_generator_only_where_its_window_looks():
    """f and its gradient equal those of the whole image's upscale; the whole image's gradient is
    exactly zero outside the cropped input, so the crop holds everything the window reads."""
    generator = build_sr_generator(2, 4, 3)
    assert receptive_reach(generator) == 12  # 1 + 3 * 2 + 1 + 1 + 1 + 2 (the conv path reads 10)
    model = SRGAN(generator, build_sr_discriminator(4, 1, 4), scale=2)
    x = tf.constant(np.random.default_rng(0).random((2, 64, 56, 3), dtype=np.float32))
    # output 128x112, window rows 32..95 and columns 28..83: input rows 16..47 and columns 14..41, +-12
    top, bottom, left, right = (int(v) for v in sr_input_window(64, 56, 2, receptive_reach(generator)))
    assert (top, bottom, left, right) == (4, 60, 2, 54)
    f_crop, g_crop = value_and_gradient(_sr_target(model).function)(x, tf.constant(0))
    f_full, g_full = value_and_gradient(_sr_target(model, crop=False).function)(x, tf.constant(0))
    np.testing.assert_allclose(f_crop.numpy(), f_full.numpy(), rtol=1e-6)
    np.testing.assert_allclose(g_crop.numpy(), g_full.numpy(), rtol=1e-4, atol=1e-4 * np.abs(g_full).max())
    outside = np.ones((64, 56), bool)
    outside[top:bottom, left:right] = False
    assert np.all(g_full.numpy()[:, outside] == 0) and np.all(g_crop.numpy()[:, outside] == 0)
    inside = g_full.numpy()[:, ~outside]
    assert np.count_nonzero(inside) > 0.5 * inside.size
    # an image smaller than the reach around its window is read whole
    assert [int(v) for v in sr_input_window(10, 12, 2, 8)] == [0, 10, 0, 12]


# ----------------------------------------------------------------------------- each model kind

@pytest.mark.parametrize("kind", ["classifier", "vae", "super_resolution"])
def test_explain_each_image_model_kind(kind, saved, pictures, tmp_path):
    path, model = saved[kind]
    assert can_explain(model)
    inputs = [str(pictures["gray"]), str(pictures["rgb"])]
    inputs += [str(pictures["big"])] if kind == "super_resolution" else []  # any size
    report = explain_images(model, inputs, tmp_path / "out.png", seed=5, steps=32, methods=None)
    assert report["model_kind"] == kind and report["kind"] == "image" and len(report["images"]) == len(inputs)
    expected = ["ig", "occlusion", "attention"] if kind == "classifier" else ["ig", "occlusion"]
    assert report["methods"] == expected
    for entry in report["images"]:
        ig = entry["ig"]
        assert ig["completeness_error"] <= 0.02 * abs(ig["f_difference"]) + 1e-5, ig  # 32 trapezoid steps
        assert entry["f"] - entry["f_baseline"] == pytest.approx(ig["f_difference"], abs=1e-5)
        assert set(entry["deletion"]) >= {"k", "random", *[m for m in expected]}
    if kind == "classifier":
        first = report["images"][0]
        assert first["prediction"]["label"] in model.class_names and len(first["attention"]["rows"]) == 5
    html = (tmp_path / "out.html").read_text()
    assert "data:image/png;base64," in html and "<style>" in html and "src='http" not in html
    with Image.open(tmp_path / "out.png") as png:
        assert png.size[0] > 300 and png.size[1] > 100 * len(inputs)
    json.dumps(report)  # JSON-able as it is
    again = explain_images(model, inputs, tmp_path / "again", seed=5, steps=32, methods=None)
    assert again["images"] == report["images"]  # --seed fixes every random choice
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "out.png").read_bytes()


def test_a_class_conditional_vae_explains_its_rate_averaged_over_classes(pictures, tmp_path):
    model = VAE.create(SHAPE, 2, 4, 1, num_classes=3)
    report = explain_images(model, [str(pictures["gray"])], tmp_path / "c", seed=0, steps=32, methods=["ig"])
    x = np.asarray(Image.open(pictures["gray"]), np.float32)[None, ..., None] / 255.0
    mean, log_var = model.encode(np.repeat(x, 3, axis=0), np.arange(3))
    rate = 0.5 * np.sum(mean ** 2 + np.exp(log_var) - log_var - 1, axis=1).mean()
    entry = report["images"][0]
    assert "class-conditional" in report["target"] and entry["f"] == pytest.approx(rate, rel=1e-4)
    assert entry["ig"]["completeness_error"] <= 0.02 * abs(entry["ig"]["f_difference"]) + 1e-5


def test_bad_requests_are_user_errors(saved, pictures, tmp_path):
    classifier, vae = saved["classifier"][1], saved["vae"][1]
    with pytest.raises(UserError, match=r"big.png is 10x12 pixels but SomRbfAttentionClassifier reads 8x8 images"):
        explain_images(classifier, [str(pictures["big"])], tmp_path / "x", 0, 8, None)
    with pytest.raises(UserError, match="--method attention does not apply to this vae model: use ig, occlusion"):
        explain_images(vae, [str(pictures["gray"])], tmp_path / "x", 0, 8, ["attention"])
    with pytest.raises(UserError, match="--method gradcam does not apply"):
        explain_images(classifier, [str(pictures["gray"])], tmp_path / "x", 0, 8, ["ig", "gradcam"])
    with pytest.raises(UserError, match="--samples must be at least 2 for LIME and SHAP"):
        explain_images(classifier, [str(pictures["gray"])], tmp_path / "x", 0, 8, ["shap"], samples=1)
    with pytest.raises(UserError, match="does not exist"):
        explain_images(classifier, [str(tmp_path / "missing.png")], tmp_path / "x", 0, 8, None)
    with pytest.raises(UserError, match="output folder .* does not exist"):
        explain_images(classifier, [str(pictures["gray"])], tmp_path / "no" / "x", 0, 8, None)
    with pytest.raises(UserError, match="is the input"):
        explain_images(classifier, [str(pictures["gray"])], pictures["gray"].with_suffix(""), 0, 8, None)
    text = TextClassifier(["a", "b"], max_tokens=20, sequence_length=4, embedding_dim=2, units=2)
    assert not can_explain(text) and can_embed(text)
    with pytest.raises(UserError, match="not an image model"):
        explain_images(text, [str(pictures["gray"])], tmp_path / "x", 0, 8, None)
    assert not list(tmp_path.iterdir())  # nothing written by a failed request


def test_cli_explains_images_and_refuses_a_wrong_size(saved, pictures, tmp_path, capsys):
    path = saved["classifier"][0]
    code = main(["explain", str(path), str(pictures["gray"]), "-o", str(tmp_path / "why.html"),
                 "--steps", "16", "--method", "ig,attention", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["methods"] == ["ig", "attention"] and report["steps"] == 16
    assert (tmp_path / "why.png").is_file() and (tmp_path / "why.html").is_file()
    for kind in ("vae", "super_resolution"):
        assert main(["explain", str(saved[kind][0]), str(pictures["rgb"]), "-o", str(tmp_path / kind),
                     "--steps", "8", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["model_kind"] == kind
        assert (tmp_path / f"{kind}.png").is_file() and (tmp_path / f"{kind}.html").is_file()
    result = run_here(["zoo", "explain", str(saved["vae"][0]), str(pictures["big"]), "-o", str(tmp_path / "bad")])
    assert_user_error(result, "is 10x12 pixels but VAE reads 8x8 images (width x height): resize it")
    assert not (tmp_path / "bad.png").exists()


def test_cli_lime_and_shap_on_each_model_kind_and_a_grid_without_scikit_image(saved, pictures, tmp_path, capsys,
                                                                             monkeypatch):
    """Quickshift superpixels of the 8x8 pictures as asked (it merges them into 1: SHAP exact);
    else the 1x1-pixel grid (64 players, sampled): `auto` when quickshift finds fewer than 8
    superpixels, and without scikit-image. SHAP sums to f(x) - f(black)."""
    for kind, (path, _) in saved.items():
        if kind == "vae":  # without scikit-image: the patch grid
            monkeypatch.setitem(sys.modules, "skimage.segmentation", None)
        how = ["--segmentation", "quickshift"] if kind == "classifier" else []
        code = main(["explain", str(path), str(pictures["gray"]), "-o", str(tmp_path / kind), "--method", "lime,shap",
                     "--samples", "60", "--seed", "4", "--json", *how])
        monkeypatch.delitem(sys.modules, "skimage.segmentation", raising=False)
        captured = capsys.readouterr()
        assert code == 0, captured.err
        report = json.loads(captured.out)
        entry = report["images"][0]
        assert report["methods"] == ["lime", "shap"] and report["samples"] == 60
        grid = kind != "classifier"
        assert entry["players"]["segmentation"].startswith("a grid of 1x1" if grid else "quickshift")
        assert ("quickshift found 1 superpixel(s)" in entry["players"]["segmentation"]) == (kind == "super_resolution")
        assert f"note: LIME / SHAP players: {entry['players']['segmentation']}" in captured.err
        shap, lime = entry["shap"], entry["lime"]
        assert len(shap["values"]) == len(lime["weights"]) == entry["players"]["count"] == (64 if grid else 1)
        assert shap["exact"] != grid and shap["seed"] == lime["seed"] == 4 and lime["samples"] == 60
        assert shap["sum"] == pytest.approx(entry["f"] - entry["f_baseline"], abs=1e-5)  # efficiency
        assert shap["efficiency_error"] < 1e-5 and {"lime", "shap"} <= set(entry["deletion"])
        assert "SHAP efficiency error" in (tmp_path / f"{kind}.html").read_text()


# ----------------------------------------------------------------------------- embeddings

def test_pca_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4))
    points, shares = pca(x)
    values, vectors = np.linalg.eigh(np.cov(x.T, bias=True))
    top = vectors[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(points), np.abs((x - x.mean(0)) @ top), atol=1e-8)
    np.testing.assert_allclose(shares, values[::-1][:2] / values.sum(), rtol=1e-8)


def _projector(folder):
    config = text_format.Parse((folder / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    [embedding] = config.embeddings
    checkpoint = tf.train.latest_checkpoint(str(folder))  # how TensorBoard's projector finds the vectors
    return tf.train.load_checkpoint(checkpoint).get_tensor(embedding.tensor_name), \
        (folder / "metadata.tsv").read_text().splitlines()


@pytest.mark.parametrize("kind", ["classifier", "vae"])
def test_embed_image_models_on_mnist(kind, saved, tmp_path, capsys):
    path = saved[kind][0]
    model = _classifier((28, 28, 1)) if kind == "classifier" else VAE.create((28, 28, 1), 3, 4, 1)
    report = embed(model, "", tmp_path / "map", seed=2, limit=60)
    assert report["points"] == 60 and report["tsne"] and report["classes"] == [str(d) for d in range(10)]
    vectors, labels = _projector(tmp_path / "map_projector")
    assert vectors.shape == (60, report["dimensions"]) and len(labels) == 60 and set(labels) <= set(report["classes"])
    assert (tmp_path / "map_projector" / "sprite.png").is_file() and (tmp_path / "map.png").is_file()
    first = (tmp_path / "map.png").read_bytes()
    embed(model, "", tmp_path / "map", seed=2, limit=60)  # replaces the outputs, same bytes
    assert (tmp_path / "map.png").read_bytes() == first and not list(tmp_path.glob(".*"))
    if kind == "vae":  # through the command line, on a saved model of another size: resized data
        assert main(["explain", str(path), "--embed", "assets:mnist", "-o", str(tmp_path / "cli"),
                     "--limit", "30", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["points"] == 30


def test_embed_text_classifier_and_pca_only_without_scikit_learn(tmp_path, monkeypatch, capsys):
    model = TextClassifier(["World", "Sports", "Business", "Sci/Tech"], max_tokens=50, sequence_length=8,
                           embedding_dim=4, units=3)
    model.adapt(["oil prices rise", "the team wins", "stocks fall", "a new chip"])
    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # import fails as if not installed
    report = embed(model, "", tmp_path / "text", seed=0, limit=40)
    assert report["model_kind"] == "text" and report["points"] == 40 and not report["tsne"]
    assert "pip install zoo[explain]" in capsys.readouterr().err
    assert set(report["classes"]) <= set(model.class_names)
    vectors, labels = _projector(tmp_path / "text_projector")
    assert vectors.shape == (40, 6) and len(labels) == 40


def test_embed_refuses_models_without_a_representation(tmp_path):
    generator = SRGAN(build_sr_generator(2, 4, 1), build_sr_discriminator(4, 1, 4), scale=2)
    assert not can_embed(generator) and embed_module.kind_of(generator) is None
    with pytest.raises(UserError, match="has no representation to plot"):
        embed(generator, "", tmp_path / "x", 0, 10)
