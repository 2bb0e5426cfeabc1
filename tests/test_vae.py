"""zoo.models.VAE: shapes, saving, sampling, training steps, likelihood estimates, replicas."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import assert_same_updates, check_train_step

from zoo.models import VAE, build_vae_decoder, build_vae_encoder
from zoo.models.vae import _log_likelihood
from zoo.evaluation.vae import binarize, latent_scatter, likelihood_report

ROOT = Path(__file__).parents[1]
SHAPE = (8, 8, 1)


def _vae(latent=3, classes=0, likelihood="bernoulli", width=4, depth=1, **kwargs):
    model = VAE.create(SHAPE, latent, width, depth, classes, likelihood, **kwargs)
    model.compile(keras.optimizers.Adam(1e-2))
    return model


def _images(n=6, seed=0):
    return np.random.default_rng(seed).random((n, *SHAPE), dtype=np.float32)


@pytest.mark.parametrize("likelihood, channels", [("bernoulli", 1), ("gaussian_fixed", 1), ("gaussian_learned", 2)])
def test_shapes(likelihood, channels):
    model = _vae(likelihood=likelihood)
    x = _images()
    mean, log_var = model.encode(x)
    assert mean.shape == log_var.shape == (6, 3)
    assert model.decoder(mean).shape == (6, 8, 8, channels)
    assert model(x).shape == (6, 8, 8, 1) and model.decode(mean).shape == (6, 8, 8, 1)
    samples = model.sample(5, seed=1)
    assert samples.shape == (5, 8, 8, 1) and samples.dtype == np.uint8
    assert model.interpolate(7, seed=1).shape == (7, 8, 8, 1)
    assert not model.conditional and model.num_classes == 0 and model.latent_size == 3


def test_bad_configurations_are_refused():
    with pytest.raises(ValueError, match="latent_size must be at least 1"):
        VAE.create(SHAPE, 0)
    with pytest.raises(ValueError, match="multiples of 4"):
        VAE.create((10, 10, 1), 2)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        VAE.create(SHAPE, 2, likelihood="poisson")


def test_bernoulli_data_outside_unit_range_is_refused():
    model = _vae()
    raw = np.round(_images() * 255)  # pixel values up to 255
    raw[0, 0, 0, 0] = 255
    with pytest.raises(ValueError, match=r"values from \d+ to 255, but the Bernoulli likelihood needs"):
        model.elbo(raw)
    with pytest.raises(ValueError, match="Bernoulli"):
        model.importance_weighted_nll(raw, 2)


def test_config_and_keras_round_trip(tmp_path):
    model = _vae(classes=3, likelihood="gaussian_learned", beta=2.0, seed=7)
    check_train_step(model, [(_images(), np.arange(6) % 3)], steps=1)
    config = model.get_config()
    assert VAE.from_config(config).get_config() == config
    path = tmp_path / "vae.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode stays on
    assert isinstance(loaded, VAE)
    assert json.loads(json.dumps(loaded.get_config())) == json.loads(json.dumps(config))  # tuples: lists
    assert (loaded.beta, loaded.likelihood, loaded.seed, loaded.num_classes) == (2.0, "gaussian_learned", 7, 3)
    assert np.array_equal(loaded.sample(9, seed=3, label=2), model.sample(9, seed=3, label=2))
    x, y = _images(), np.arange(6) % 3
    np.testing.assert_array_equal(loaded.elbo(x, y, seed=4), model.elbo(x, y, seed=4))


def test_encoder_and_decoder_are_plain_models_saved_alone(tmp_path):
    model = _vae()
    for part in (model.encoder, model.decoder):
        part.save(tmp_path / f"{part.name}.keras")
        loaded = keras.saving.load_model(tmp_path / f"{part.name}.keras")
        assert type(loaded).__name__ == "Functional"  # a plain functional keras.Model, no zoo class
    z = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    decoder = keras.saving.load_model(tmp_path / "decoder.keras")
    np.testing.assert_allclose(decoder(z), model.decoder(z), atol=1e-6)
    alone = build_vae_decoder(SHAPE, 3, 4, 1)
    assert [w.shape for w in alone.weights] == [w.shape for w in model.decoder.weights]
    assert len(build_vae_encoder(SHAPE, 3, 4, 0, num_classes=5).inputs) == 2


def test_sampling_is_repeatable_by_seed():
    model = _vae()
    assert np.array_equal(model.sample(6, seed=11), model.sample(6, seed=11))
    assert not np.array_equal(model.sample(6, seed=11), model.sample(6, seed=12))
    assert np.array_equal(model.interpolate(5, seed=2), model.interpolate(5, seed=2))


def test_conditional_sampling_by_label():
    model = _vae(classes=4)
    check_train_step(model, [(_images(8), np.arange(8) % 4)], steps=2)
    three, zero = model.sample(5, seed=0, label=3), model.sample(5, seed=0, label=0)
    assert three.shape == (5, 8, 8, 1) and not np.array_equal(three, zero)
    with pytest.raises(ValueError, match="labels must be in 0..3"):
        model.sample(2, seed=0, label=4)
    with pytest.raises(ValueError, match="not class-conditional"):
        _vae().sample(2, seed=0, label=1)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian_fixed", "gaussian_learned"])
def test_train_steps_change_weights_and_log_terms(likelihood):
    model = _vae(likelihood=likelihood)
    logs = check_train_step(model, [_images(8), _images(8, seed=1)], steps=2)
    assert set(logs[0]) == {"loss", "reconstruction", "kl", "negative_elbo"}
    assert np.isclose(logs[1]["negative_elbo"], logs[1]["reconstruction"] + logs[1]["kl"], rtol=1e-5)


def test_log_likelihoods_match_numpy_formulas():
    rng = np.random.default_rng(0)
    x = (rng.random((3, 4, 4, 1)) < 0.5).astype(np.float32)
    logits = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(_log_likelihood(x, logits, "bernoulli", 0.1), expected, rtol=1e-5)
    mean, log_sigma = logits, rng.normal(size=(3, 4, 4, 1)).astype(np.float32) * 0.3
    gauss = lambda s: (-0.5 * ((x - mean) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(_log_likelihood(x, mean, "gaussian_fixed", 0.2), gauss(0.2), rtol=1e-5)
    both = np.concatenate([mean, log_sigma], axis=-1)
    np.testing.assert_allclose(_log_likelihood(x, both, "gaussian_learned", 0.1), gauss(np.exp(log_sigma)),
                               rtol=1e-5)


def _sharp_one_dimensional_vae():
    """A 1-D latent VAE whose decoder depends strongly on z and whose encoder's q(z | x)
    is shifted off the posterior and the ELBO, the IW bounds and log p(x) differ clearly."""
    keras.utils.set_random_seed(1)
    model = _vae(latent=1, depth=0, seed=0)
    project = model.decoder.get_layer("project")
    project.kernel.assign(project.kernel * 20.0)  # p(x | z) varies fast with z
    model.encoder.get_layer("mean").bias.assign([1.5])  # q(z | x) off the posterior
    return model


def _exact_nll(model, x):
    """-log p(x) by quadrature over the 1-D latent: an independent reference."""
    z = np.linspace(-9, 9, 6001, dtype=np.float32)[:, None]
    logits = model.decoder(z).numpy().reshape(len(z), -1).astype(np.float64)  # (Z, D)
    flat = x.reshape(len(x), -1).astype(np.float64)
    log_px_z = flat @ logits.T - np.logaddexp(0, logits).sum(axis=1)  # (N, Z)
    joint = log_px_z - 0.5 * z[:, 0] ** 2 - 0.5 * np.log(2 * np.pi)
    top = joint.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(joint - top).sum(axis=1) * (z[1, 0] - z[0, 0])))


def test_importance_weighted_nll_bounds_and_tightens():
    model = _sharp_one_dimensional_vae()
    x = binarize(_images(24), seed=0)
    exact = _exact_nll(model, x)
    negative_elbo = -np.mean([model.elbo(x, seed=s) for s in range(8)], axis=0)
    k1 = model.importance_weighted_nll(x, 1, seed=1)
    k64 = model.importance_weighted_nll(x, 64, seed=1, budget=100)  # several chunks
    k2000 = model.importance_weighted_nll(x, 2000, seed=2)
    # -ELBO >= IW-NLL(k) >= -log p(x) on average; IW-NLL decreases towards -log p(x) as k grows.
    assert negative_elbo.mean() > k64.mean() + 1.0
    assert k1.mean() > k64.mean() + 1.0 and k64.mean() > k2000.mean()
    assert k2000.mean() >= exact.mean() - 0.05
    np.testing.assert_allclose(k2000, exact, atol=0.3)
    np.testing.assert_array_equal(model.importance_weighted_nll(x, 64, seed=1, budget=100), k64)  # repeatable


def test_likelihood_report_and_pictures():
    model = _vae()
    x = binarize(_images(10), seed=0)
    report = likelihood_report(model, x, k=4, batch_size=4)
    assert report["k"] == 4 and report["images"] == 10
    assert report["iw_nll"] <= report["negative_elbo"] + 1.0
    canvas = latent_scatter(np.array([[0.0, 0.0], [2.0, 2.0], [9.0, 0.0]]), np.array([0, 1, 2]))
    assert canvas.shape == (256, 256, 3) and canvas.dtype == np.uint8
    assert tuple(canvas[128, 128]) == (31, 119, 180) and tuple(canvas[64, 191]) == (255, 127, 14)


@pytest.mark.parametrize("variant", ["plain", "conditional"])
def test_two_replicas_match_one_replica(variant):
    """Noise comes from (step, row of the global batch): 2 replicas draw what 1 draws, per example."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "tests/scripts/vae_replicas.py"), variant],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == [1, 2]
    assert_same_updates(report)  # every weight trained, and alike to 1% of its update
    assert report["max_weight_diff"] < 1e-6
    for one, two in zip(report["logs_1"], report["logs_2"]):
        assert one.keys() == two.keys() == {"loss", "reconstruction", "kl", "negative_elbo"}
        for name in one:  # true means, not divided by the replica count
            assert np.isclose(one[name], two[name], rtol=1e-5), name
