"""The Frechet classifier distance (zoo/evaluation/frechet.py, zoo.evaluation.metrics.frechet_distance) and its
`python -m zoo eval` row.

The distance formula is checked against closed forms and an independent eigenvalue formula; the
FCD against real MNIST (itself ~0, monotone in a growing shift, a replay of held-out images near
the floor); the shipped classifier for safe-mode loading and accuracy; the eval row in-process
through `zoo.__main__.main` (the toy sampler below is registered in this process only).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest

from zoo.__main__ import main
from zoo.data import load_images
from zoo.data.assets import resolve_source
from zoo.errors import UserError
from zoo.evaluation.frechet import (DEFAULT_CLASSIFIER, FrechetClassifierDistance, can_score, default_scorer,
                         feature_statistics, held_out_subset, sample_quality)
from zoo.evaluation.metrics import frechet_distance


# ----------------------------------------------------------------------------- the formula

def _random_covariance(rng, d, rank=None):
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / d


def test_distance_is_zero_for_identical_statistics_even_rank_deficient():
    rng = np.random.default_rng(0)
    for rank in (None, 3):  # ReLU features give singular covariances
        mu, sigma = rng.normal(size=16), _random_covariance(rng, 16, rank)
        assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_distance_matches_one_dimensional_closed_form():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    for m1, s1, m2, s2 in [(0.0, 2.0, 1.0, 3.0), (-4.0, 0.5, 2.5, 0.1), (1.0, 0.0, 1.0, 2.0)]:
        got = frechet_distance([m1], [[s1**2]], [m2], [[s2**2]])
        assert got == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-12, abs=1e-12)


def test_distance_matches_commuting_covariances():
    # same eigenvectors Q: |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2, diagonal and rotated
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 4, 8), rng.uniform(0.0, 4, 8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-10)
    assert frechet_distance(mu1, q * a @ q.T, mu2, q * b @ q.T) == pytest.approx(want, rel=1e-9)


def test_distance_matches_eigenvalues_of_the_product_and_is_symmetric():
    # tr sqrtm(S1 S2) = sum sqrt(eigenvalues of the non-symmetric S1 S2), which are real >= 0
    rng = np.random.default_rng(2)
    s1, s2 = _random_covariance(rng, 12), _random_covariance(rng, 12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    trace_sqrt = np.sqrt(np.linalg.eigvals(s1 @ s2).real.clip(0)).sum()
    want = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-9)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(want, rel=1e-9)


def test_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="one D"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_feature_statistics_are_mean_and_unbiased_covariance():
    x = np.random.default_rng(3).normal(size=(50, 4))
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, (x - mu).T @ (x - mu) / 49)
    with pytest.raises(UserError, match="at least 2"):
        feature_statistics(x[:1])


# ----------------------------------------------------------------------------- the shipped classifier

@pytest.fixture(scope="module")
def fcd() -> FrechetClassifierDistance:
    return default_scorer()


@pytest.fixture(scope="module")
def mnist():
    test, labels, _ = load_images("assets:mnist", "test", limit=2000)
    return test, labels


def test_shipped_classifier_loads_in_safe_mode_and_is_accurate(mnist):
    path = resolve_source(DEFAULT_CLASSIFIER)
    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert model.get_layer("features").output.shape[-1] == 128
    images, labels = mnist
    predicted = np.argmax(model.predict(images[:1000], verbose=0), axis=1)
    accuracy = np.mean(predicted == labels[:1000])
    assert accuracy >= 0.98, accuracy  # the full test set: see zoo/assets/fcd/README.md
    with zipfile.ZipFile(path) as archive:
        assert not any("optimizer" in name for name in archive.namelist())  # inference only
    assert Path(path).stat().st_size < 2_000_000


def test_features_shapes_and_input_conventions(fcd, mnist):
    images = mnist[0][:20]
    assert fcd.image_shape == (28, 28, 1)
    uint8 = np.round(images * 255).astype(np.uint8)
    floats = fcd.features(images)
    assert floats.shape == (20, 128) and floats.dtype == np.float32
    np.testing.assert_allclose(fcd.features(uint8), floats, atol=1e-4)  # uint8 0..255 == float 0..1
    mu, sigma = fcd.statistics(images)
    assert mu.shape == (128,) and sigma.shape == (128, 128) and mu.dtype == np.float64


def test_fcd_of_a_set_with_itself_is_zero_and_grows_with_a_shift(fcd, mnist):
    a, b = mnist[0][:1000], mnist[0][1000:2000]
    assert fcd.distance(a, a) == pytest.approx(0.0, abs=1e-6)
    same_kind = fcd.distance(a, b)
    darker = [fcd.distance(a, b * (1 - t)) for t in (0.25, 0.5, 0.75)]
    rng = np.random.default_rng(0)
    noise = rng.normal(size=b.shape).astype("float32")
    noisier = [fcd.distance(a, np.clip(b + s * noise, 0, 1)) for s in (0.1, 0.2, 0.4)]
    assert same_kind < darker[0] < darker[1] < darker[2], (same_kind, darker)
    assert same_kind < noisier[0] < noisier[1] < noisier[2], (same_kind, noisier)
    stats = fcd.statistics(a)
    assert fcd.distance(stats, b) == pytest.approx(fcd.distance(a, b), rel=1e-9)  # statistics in


@pytest.mark.parametrize("images, fragments", [
    (np.zeros((3, 6, 5, 3), np.uint8), ["(N, 28, 28, 1)", "(3, 6, 5, 3)", "tools/train_fcd_classifier.py"]),
    (np.zeros((28, 28, 1), np.uint8), ["(N, 28, 28, 1)", "retrain"]),
    (np.full((3, 28, 28, 1), 255.0, np.float32), ["[0, 1]", "uint8"]),
    (np.zeros((0, 28, 28, 1), np.uint8), ["(0, 28, 28, 1)"]),
])
def test_bad_images_give_a_user_error(fcd, images, fragments):
    with pytest.raises(UserError) as error:
        fcd.features(images)
    for fragment in fragments:
        assert fragment in str(error.value)


def test_bad_classifiers_give_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        FrechetClassifierDistance(str(tmp_path / "nope.keras"))
    (tmp_path / "text.keras").write_text("not a model")
    with pytest.raises(UserError, match="text.keras"):
        FrechetClassifierDistance(str(tmp_path / "text.keras"))
    plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(UserError, match="no layer named 'features'.*train_fcd_classifier"):
        FrechetClassifierDistance(str(tmp_path / "plain.keras"))


# ----------------------------------------------------------------------------- sample quality

@keras.saving.register_keras_serializable(package="zoo_test_frechet")
class MnistToySampler(keras.Model):
    """A 28x28x1 generative model in miniature: seeded noise through one Dense layer -> uint8."""

    def __init__(self, latent=4, **kwargs):
        super().__init__(**kwargs)
        self.latent = latent
        self.dense = keras.layers.Dense(28 * 28, activation="sigmoid")

    def call(self, z):
        return keras.ops.reshape(self.dense(z), (-1, 28, 28, 1))

    def sample(self, n, seed=None, label=None):
        z = np.random.default_rng(seed).normal(size=(n, self.latent)).astype("float32")
        return np.round(keras.ops.convert_to_numpy(self(z)) * 255).astype(np.uint8)

    def get_config(self):
        return {**super().get_config(), "latent": self.latent}


class Replay:
    """A 'perfect' generative model: it samples real images it was given (held-out ones)."""

    def __init__(self, images):
        self.images = np.round(images * 255).astype(np.uint8)

    def sample(self, n, seed=None):
        return self.images[np.random.default_rng(seed).choice(len(self.images), n, replace=False)]


def test_sample_quality_of_a_toy_sampler_and_of_real_images(fcd, mnist):
    keras.utils.set_random_seed(0)
    toy = MnistToySampler()
    train, _, _ = load_images("assets:mnist", "train", limit=2000)
    test = mnist[0][:1000]
    report = sample_quality(toy, train, test, n=500, seed=1, scorer=fcd)
    assert set(report) == {"fcd", "fcd_floor", "fcd_samples", "fcd_floor_samples", "fcd_classifier"}
    assert (report["fcd_samples"], report["fcd_floor_samples"]) == (500, 500)
    assert report["fcd_classifier"] == DEFAULT_CLASSIFIER
    assert report["fcd"] == pytest.approx(fcd.distance(toy.sample(500, seed=1), train), rel=1e-9)
    assert report["fcd_floor"] == pytest.approx(fcd.distance(held_out_subset(test, 500), train), rel=1e-9)
    assert report["fcd"] > 10 * report["fcd_floor"]  # noise blobs are far from digits
    again = sample_quality(toy, fcd.statistics(train), test, n=500, seed=1, scorer=fcd)
    assert again == pytest.approx(report)  # same seed, statistics in place of images: same score
    replay = sample_quality(Replay(mnist[0][1000:2000]), train, test, n=500, seed=0, scorer=fcd)
    assert replay["fcd"] < 2 * replay["fcd_floor"], replay  # real held-out images score like the floor
    with pytest.raises(UserError, match="at least 2"):
        sample_quality(toy, train, test, n=1, seed=0, scorer=fcd)


def test_held_out_subset_is_fixed_and_spread():
    images = np.arange(100)
    subset = held_out_subset(images, 10)
    assert len(set(subset)) == 10 and subset.max() > 50  # not just the first ten
    np.testing.assert_array_equal(subset, held_out_subset(images, 10))
    assert held_out_subset(images, 200) is images


def test_can_score_decides_from_the_sample_shape(fcd):
    toy = MnistToySampler()
    assert can_score(toy, fcd)
    assert not can_score(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), fcd)
    wrong = Replay(np.zeros((4, 6, 5, 3), np.float32))
    assert not can_score(wrong, fcd)


# ----------------------------------------------------------------------------- python -m zoo eval

@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = MnistToySampler()
    model(np.zeros((1, model.latent), "float32"))
    path = tmp_path_factory.mktemp("fcd") / "toy.keras"
    model.save(path)
    return path


def _main(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_reports_fcd_and_floor(toy_file, capsys, fcd):
    argv = ["eval", toy_file, "--samples", "100", "--limit", "300", "--seed", "2"]
    code, out, err = _main([*argv, "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"fcd", "fcd_floor", "fcd_samples", "fcd_floor_samples", "fcd_classifier",
                           "fcd_data", "fcd_train_images", "fcd_seed"}
    assert report["fcd_samples"] == report["fcd_floor_samples"] == 100
    assert (report["fcd_data"], report["fcd_train_images"], report["fcd_seed"]) == ("assets:mnist", 300, 2)
    model = keras.saving.load_model(toy_file, compile=False)
    train, _, _ = load_images("assets:mnist", "train", limit=300)
    test, _, _ = load_images("assets:mnist", "test", limit=300)  # --limit caps both splits
    assert report["fcd"] == pytest.approx(fcd.distance(model.sample(100, seed=2), train), rel=1e-6)
    assert report["fcd_floor"] == pytest.approx(fcd.distance(held_out_subset(test, 100), train), rel=1e-6)
    code, out, err = _main(argv, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Frechet classifier distance (not FID: features of zoo's MNIST classifier")
    assert f"100 samples (seed 2) vs 300 training images of assets:mnist: {report['fcd']:.3f}" in lines[1]
    assert f"floor: 100 held-out test images vs the same: {report['fcd_floor']:.3f}" in lines[2]


def test_eval_refuses_wrong_shapes_and_bad_sample_counts(toy_file, capsys, tmp_path):
    code, out, err = _main(["eval", toy_file, "--samples", "1", "--limit", "50"], capsys)
    assert (code, out) == (2, "") and "--samples must be at least 2" in err
    from zoo.cli.eval import FCD_NEEDS

    assert "x".join(map(str, default_scorer().image_shape)) in FCD_NEEDS  # the message tells the truth
