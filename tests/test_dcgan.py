"""DCGAN: network shapes, each loss's train step, the gradient penalty against NumPy, sampling
and `.keras` round trips, and 2 replicas against 1 (in a subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_same_updates, check_train_step

import zoo  # noqa: F401
from zoo.models import DCGAN, build_dcgan_discriminator, build_dcgan_generator, gradient_penalty
from zoo.models.dcgan_networks import resolution_plan

ROOT = Path(__file__).parents[1]


def tiny_gan(loss="nonsaturating", classes=0, n_critic=None, size=28, channels=1, optimizer=None):
    norm = "layer" if loss == "wgan-gp" else "batch"
    model = DCGAN(build_dcgan_generator(8, size, channels, width=4, num_classes=classes),
                  build_dcgan_discriminator(size, channels, width=4, num_classes=classes, norm=norm,
                                            logit_bias=loss != "wgan-gp"),
                  loss=loss, n_critic=n_critic, num_classes=classes)
    optimizer = optimizer or (lambda: keras.optimizers.Adam(1e-3))
    model.compile(optimizer(), optimizer())
    model.build_optimizers()
    return model


def real_batch(n, size=28, channels=1, classes=0, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n, size, size, channels)).astype(np.float32)
    return (images, (np.arange(n) % classes).astype(np.int32)) if classes else images


@pytest.mark.parametrize("size,start,stages", [(28, 7, 2), (32, 4, 3), (64, 4, 4), (48, 6, 3)])
def test_shapes_for_each_supported_size(size, start, stages):
    assert resolution_plan(size) == (start, stages)
    generator = build_dcgan_generator(8, size, 3, width=4)
    images = generator(np.zeros((2, 8), np.float32))
    assert images.shape == (2, size, size, 3) and generator.output.dtype == "float32"
    assert build_dcgan_discriminator(size, 3, width=4)(images).shape == (2, 1)


@pytest.mark.parametrize("size", [30, 17, 9, 200])
def test_unsupported_sizes_are_refused(size):
    with pytest.raises(ValueError, match=f"image size {size} is not supported"):
        build_dcgan_generator(8, size)


def test_conditional_networks_take_labels():
    generator = build_dcgan_generator(8, 28, 1, width=4, num_classes=10)
    images = generator([np.zeros((3, 8), np.float32), np.array([0, 5, 9])])
    assert images.shape == (3, 28, 28, 1)
    discriminator = build_dcgan_discriminator(28, 1, width=4, num_classes=10)
    assert discriminator([np.asarray(images), np.array([0, 5, 9])]).shape == (3, 1)


def test_bad_combinations_are_refused():
    with pytest.raises(ValueError, match="must not use batch norm"):
        DCGAN(build_dcgan_generator(8, width=4), build_dcgan_discriminator(width=4, norm="batch"), loss="wgan-gp")
    with pytest.raises(ValueError, match="must take 2 input"):
        DCGAN(build_dcgan_generator(8, width=4), build_dcgan_discriminator(width=4), num_classes=10)
    with pytest.raises(ValueError, match="loss must be one of"):
        DCGAN(build_dcgan_generator(8, width=4), build_dcgan_discriminator(width=4), loss="lsgan")


@pytest.mark.parametrize("loss,classes", [("nonsaturating", 0), ("hinge", 10), ("wgan-gp", 0), ("wgan-gp", 10)])
def test_train_steps_change_every_weight(loss, classes):
    model = tiny_gan(loss, classes, n_critic=2 if loss == "wgan-gp" else None)
    if loss == "hinge":
        # The hinge loss gives the logit bias the gradient (#{D(fake) > -1} - #{D(real) < 1}) / B,
        # exactly 0 whenever the two counts match (always while |D| < 1, as at initialisation).
        # Without the bias the logits of this random network reach |2.9| (measured over 20 inits),
        # so a bias of 50 puts every real logit above 1 and every fake one above -1: the first
        # critic step gives the bias a gradient of exactly +1 whatever the initialisation.
        # (A bias of 1.5 left the counts to chance and failed once in CI.)
        logit = model.discriminator.get_layer("logit")
        logit.bias.assign(np.full(logit.bias.shape, 50.0, np.float32))
    batches = [real_batch(4 * model.n_critic, classes=classes, seed=s) for s in range(2)]
    logs = check_train_step(model, batches)
    expected = {"d_loss", "g_loss", "real_score", "fake_score"}
    expected |= {"gradient_penalty"} if loss == "wgan-gp" else set()
    assert set(logs[0]) == expected
    assert int(model.g_optimizer.iterations.numpy()) == 2
    assert int(model.d_optimizer.iterations.numpy()) == 2 * model.n_critic  # n_critic critic updates per step


def test_wgan_gp_defaults_to_five_critic_updates():
    model = tiny_gan("wgan-gp")
    assert model.n_critic == 5 and tiny_gan("hinge").n_critic == 1
    model.train_step(real_batch(10))
    assert int(model.d_optimizer.iterations.numpy()) == 5 and int(model.g_optimizer.iterations.numpy()) == 1


def _mixed_batch(seed=0, n=3):
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(2, n, 4, 5, 2)).astype(np.float32)
    return real, fake, rng.uniform(size=n).astype(np.float32)


def test_gradient_penalty_of_a_linear_critic_matches_numpy():
    """D(x) = <w, x> + b has gradient w everywhere: the penalty is (|w| - 1)^2 for every example."""
    real, fake, eps = _mixed_batch()
    critic = keras.Sequential([keras.Input((4, 5, 2)), keras.layers.Flatten(), keras.layers.Dense(1)])
    w = np.random.default_rng(1).normal(size=(40, 1)).astype(np.float32) * 0.3
    critic.set_weights([w, np.array([0.7], np.float32)])
    penalty = np.asarray(gradient_penalty(critic, real, fake, eps))
    np.testing.assert_allclose(penalty, np.full(3, (np.linalg.norm(w) - 1) ** 2), rtol=1e-5)


def test_gradient_penalty_is_taken_at_the_interpolates():
    """D(x) = <w, x*x> has gradient 2 w x: the penalty depends on x_hat = eps real + (1 - eps) fake."""
    real, fake, eps = _mixed_batch(seed=2)
    x = keras.Input((4, 5, 2))
    squares = keras.layers.Flatten()(keras.layers.Multiply()([x, x]))
    critic = keras.Model(x, keras.layers.Dense(1, use_bias=False)(squares))
    w = np.random.default_rng(3).normal(size=(40, 1)).astype(np.float32)
    critic.set_weights([w])
    mixed = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
    grads = 2 * w[:, 0] * mixed.reshape(3, -1)
    expected = (np.linalg.norm(grads, axis=1) - 1) ** 2
    np.testing.assert_allclose(np.asarray(gradient_penalty(critic, real, fake, eps)), expected, rtol=1e-5)


def test_gradient_penalty_is_finite_where_the_critic_gradient_is_zero():
    real, fake, eps = _mixed_batch()
    critic = keras.Sequential([keras.Input((4, 5, 2)), keras.layers.Flatten(), keras.layers.Dense(1)])
    critic.set_weights([np.zeros((40, 1), np.float32), np.zeros(1, np.float32)])
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(critic, real, fake, eps)
        total = tf.reduce_sum(penalty)
    kernel_grad, bias_grad = tape.gradient(total, critic.trainable_variables)
    np.testing.assert_allclose(np.asarray(penalty), 1.0, atol=1e-5)  # (sqrt(0 + 1e-12) - 1)^2
    assert bias_grad is None  # a constant does not change the critic's gradient
    assert np.isfinite(np.asarray(kernel_grad)).all()


def test_wgan_gp_step_from_an_all_zero_critic_stays_finite():
    model = tiny_gan("wgan-gp", n_critic=1)
    model.discriminator.set_weights([np.zeros_like(w) for w in model.discriminator.get_weights()])
    logs = model.train_step(real_batch(4))
    assert all(np.isfinite(float(v)) for v in logs.values()), logs
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_sampling_is_repeatable_and_uint8():
    model = tiny_gan()
    first, again = model.sample(6, seed=3), model.sample(6, seed=3)
    assert first.shape == (6, 28, 28, 1) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, model.sample(6, seed=4))
    strip = model.interpolate(5, seed=1)
    assert strip.shape == (5, 28, 28, 1) and np.array_equal(strip, model.interpolate(5, seed=1))
    np.testing.assert_array_equal(model.sample(3, seed=3), first[:3])  # a prefix of the same draw
    assert model.image_shape == (28, 28, 1) and not model.conditional and model.num_classes == 0
    with pytest.raises(ValueError, match="not class-conditional"):
        model.sample(2, label=1)


def test_conditional_sampling_follows_the_label():
    # non-saturating: a hinge loss gives the logit bias no gradient while every logit is inside
    # the margin (see test_train_steps_change_every_weight), which failed this test once in CI
    model = tiny_gan("nonsaturating", classes=10)
    check_train_step(model, [real_batch(8, classes=10)])
    assert model.conditional and model.num_classes == 10
    sevens, threes = model.sample(4, seed=0, label=7), model.sample(4, seed=0, label=3)
    assert sevens.shape == (4, 28, 28, 1) and not np.array_equal(sevens, threes)
    np.testing.assert_array_equal(model.sample(4, seed=0, label=7), sevens)
    with pytest.raises(ValueError, match="out of range"):
        model.sample(2, label=10)
    assert model.interpolate(3, seed=0, label=2).shape == (3, 28, 28, 1)


@pytest.mark.parametrize("loss,classes", [("nonsaturating", 0), ("wgan-gp", 10)])
def test_keras_round_trip_keeps_samples_config_and_optimizers(tmp_path, loss, classes):
    model = tiny_gan(loss, classes, n_critic=2 if loss == "wgan-gp" else None)
    check_train_step(model, [real_batch(4 * model.n_critic, classes=classes)])
    path = tmp_path / "dcgan.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode stays on
    own = lambda config: {k: v for k, v in config.items() if k not in ("generator", "discriminator")}  # noqa: E731
    assert isinstance(loaded, DCGAN) and own(loaded.get_config()) == own(model.get_config())
    assert (loaded.loss_name, loaded.n_critic, loaded.num_classes) == (loss, model.n_critic, classes)
    np.testing.assert_array_equal(loaded.sample(8, seed=11), model.sample(8, seed=11))
    for name in ("g_optimizer", "d_optimizer"):
        assert int(getattr(loaded, name).iterations.numpy()) == int(getattr(model, name).iterations.numpy())
    # The generator is a plain Keras model: it is saved and loaded on its own.
    model.generator.save(tmp_path / "generator.keras")
    generator = keras.saving.load_model(tmp_path / "generator.keras")
    z = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)
    inputs = [z, np.array([1, 2])] if classes else z
    np.testing.assert_allclose(np.asarray(generator(inputs)), np.asarray(model.generator(inputs)), atol=1e-6)


def test_test_step_scores_held_out_real_images():
    model = tiny_gan("hinge")
    logs = {k: float(v) for k, v in model.test_step(real_batch(6)).items()}
    logits = np.asarray(model.discriminator(real_batch(6), training=False))[:, 0]
    assert logs["real_score"] == pytest.approx(logits.mean(), rel=1e-5)
    assert logs["d_real_loss"] == pytest.approx(np.maximum(0, 1 - logits).mean(), rel=1e-5)


def test_two_replicas_match_one_replica():
    """WGAN-GP (n_critic 2) and non-saturating (synchronized batch norm) steps: weights and
    logged losses on 2 logical CPUs equal 1 device on the same global batch."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "tests" / "scripts" / "dcgan_replicas.py")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(reports) == {"wgan-gp", "nonsaturating"}
    for loss, report in reports.items():
        assert report["replicas"] == [1, 2]
        assert_same_updates(report)  # every weight trained, and alike to 1% of its update
        assert report["max_weight_diff"] < 1e-5, (loss, report["max_weight_diff"])
        for one, two in zip(report["losses_1"], report["losses_2"]):  # logged values not divided by 2
            assert one.keys() == two.keys()
            for name in one:
                assert np.isclose(one[name], two[name], rtol=1e-4, atol=1e-6), (loss, name, one[name], two[name])
    assert "gradient_penalty" in reports["wgan-gp"]["losses_2"][0]
