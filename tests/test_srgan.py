"""SRGAN model family: network shapes, both training phases, saving with optimizer state."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo  # noqa: F401
from helpers import check_train_step
from zoo.models import SRGAN, build_sr_discriminator, build_sr_generator


def tiny_srgan(pretrain_steps=1, **kwargs):
    model = SRGAN(build_sr_generator(4, 8, 1), build_sr_discriminator(8, 2, 16), 4,
                  pretrain_steps=pretrain_steps, **kwargs)
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    return model


def batch(size=2, lr=8, scale=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((size, lr, lr, 3), np.float32),
            rng.random((size, lr * scale, lr * scale, 3), np.float32))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generator_shapes(scale):
    generator = build_sr_generator(scale, filters=8, blocks=2)
    assert generator(np.zeros((2, 7, 5, 3), np.float32)).shape == (2, 7 * scale, 5 * scale, 3)
    assert generator.output.dtype == "float32"


def test_generator_rejects_bad_scale():
    with pytest.raises(ValueError, match="scale"):
        build_sr_generator(5)


def test_discriminator_outputs_logits_and_features():
    logits, *features = build_sr_discriminator(8, stages=3, dense=16)(np.zeros((2, 32, 32, 3), np.float32))
    assert logits.shape == (2, 1)
    assert [f.shape for f in features] == [(2, 16, 16, 8), (2, 8, 8, 16), (2, 4, 4, 32)]


def test_generator_adds_detail_to_bicubic():
    """The global skip: with a zero tail convolution the generator is exactly bicubic."""
    generator = build_sr_generator(4, filters=8, blocks=1)
    tail = generator.get_layer("tail")
    tail.set_weights([np.zeros_like(w) for w in tail.get_weights()])
    lr = np.random.default_rng(0).random((1, 9, 7, 3), np.float32)
    expected = tf.image.resize(lr, (36, 28), method="bicubic").numpy()
    np.testing.assert_allclose(np.asarray(generator(lr)), expected, atol=1e-6)


def _step(model, step, data):
    model.begin_step(step)
    return {k: float(v) for k, v in model.train_step(data).items()}


def test_pretrain_then_gan_steps_train_the_right_networks():
    model = tiny_srgan(pretrain_steps=1)
    g0, d0 = model.generator.get_weights(), model.discriminator.get_weights()
    logs = _step(model, 0, batch())
    assert model.phase == "pretrain" and set(logs) == {"pixel_loss"}
    g1, d1 = model.generator.get_weights(), model.discriminator.get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(g0, g1))
    assert all(np.array_equal(a, b) for a, b in zip(d0, d1))  # D untouched while pre-training
    logs = _step(model, 1, batch(seed=1))
    assert model.phase == "gan"
    assert set(logs) >= {"pixel_loss", "content_loss", "adversarial_loss", "g_loss", "d_loss"}
    assert all(np.isfinite(v) for v in logs.values())
    assert all(not np.array_equal(a, b) for a, b in zip(d1, model.discriminator.get_weights()))
    assert int(model.g_optimizer.iterations.numpy()) == 2 and int(model.d_optimizer.iterations.numpy()) == 1


def test_keras_round_trip_keeps_outputs_and_optimizer_state(tmp_path):
    model = tiny_srgan(pretrain_steps=1)
    for step in range(3):
        _step(model, step, batch(seed=step))
    path = tmp_path / "srgan.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    lr, _ = batch()
    np.testing.assert_array_equal(np.asarray(loaded(lr)), np.asarray(model(lr)))
    assert loaded.scale == 4 and loaded.pretrain_steps == 1
    for original, restored in ((model.g_optimizer, loaded.g_optimizer), (model.d_optimizer, loaded.d_optimizer)):
        assert len(original.variables) == len(restored.variables)
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Training continues identically after loading.
    assert _step(loaded, 3, batch(seed=9)) == pytest.approx(_step(model, 3, batch(seed=9)), rel=1e-6)


def test_two_steps_train_every_weight():
    check_train_step(tiny_srgan(pretrain_steps=1), [batch(seed=0), batch(seed=1)], steps=2)


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_steps(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = tiny_srgan(pretrain_steps=1)
        scaled = isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy == "mixed_float16")
        check_train_step(model, [batch(seed=0), batch(seed=1)], steps=2)
        assert model(batch()[0]).dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _srgan_sgd(policy: str) -> SRGAN:
    """A tiny SRGAN in its GAN phase from step 0, seeded, with SGD on both networks."""
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        model = SRGAN(build_sr_generator(4, 8, 1), build_sr_discriminator(8, 2, 16), 4, pretrain_steps=0)
        model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
        model.build_optimizers()
        return model
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mixed_float16_loss_scaling_on_both_optimizers():
    """Under mixed_float16 both optimizers are loss-scaled and the scale reaches the gradients:
    one GAN step moves each network as the float32 step from the same weights does (measured:
    1.3% and 1.1% apart, float16 rounding). Unscaled gradients that the optimizer unscales
    would move it 32768 times less; a network without loss scaling would lose small gradients."""
    reference, model = _srgan_sgd("float32"), _srgan_sgd("mixed_float16")
    assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    networks = ("generator", "discriminator")
    start = {name: getattr(reference, name).get_weights() for name in networks}
    for name in networks:
        getattr(model, name).set_weights(start[name])
    data = batch(seed=3)
    _step(reference, 0, data), _step(model, 0, data)
    for name in networks:
        moved = [np.concatenate([(w - w0).ravel() for w, w0 in zip(getattr(m, name).get_weights(), start[name])])
                 for m in (reference, model)]
        gap = np.linalg.norm(moved[1] - moved[0]) / np.linalg.norm(moved[0])
        assert gap < 0.05, (name, gap)
    assert [int(o.iterations.numpy()) for o in (model.g_optimizer, model.d_optimizer)] == [1, 1]


def test_vgg_content_loss_from_a_weights_file(tmp_path):
    weights = tmp_path / "vgg19_notop.weights.h5"
    keras.applications.VGG19(include_top=False, weights=None).save_weights(weights)
    model = tiny_srgan(pretrain_steps=0, vgg_weights=str(weights))
    assert model.content_loss_used == "vgg19"
    logs = _step(model, 0, batch(lr=8))
    assert np.isfinite(logs["content_loss"]) and logs["content_loss"] > 0
    assert model.get_config()["vgg_weights"] is None  # inference never needs VGG


def test_missing_vgg_weights_is_a_clear_error():
    with pytest.raises(zoo.UserError, match="VGG19 weights file"):
        tiny_srgan(vgg_weights="/nonexistent/vgg19.h5")


def test_upscale_keeps_layout_and_tiles_seamlessly():
    model = tiny_srgan()
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8)
    whole = model.upscale(image, tile=128, overlap=8)
    tiled = model.upscale(image, tile=24, overlap=8)
    assert whole.shape == (148, 212, 3) and whole.dtype == np.uint8
    np.testing.assert_array_equal(whole, tiled)
    assert model.upscale(np.stack([image, image])).shape == (2, 148, 212, 3)
    assert model.upscale(image[..., 0]).shape == (148, 212)
    assert model.upscale(np.concatenate([image, image[..., :1]], -1)).shape == (148, 212, 4)


def test_finalize_swaps_in_the_generator_moving_average():
    model = SRGAN(build_sr_generator(4, 8, 1), build_sr_discriminator(8, 2, 16), 4, pretrain_steps=5)
    model.compile(keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.5), keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    seen = []
    for step in range(3):
        _step(model, step, batch(seed=step))
        seen.append([np.array(w) for w in model.generator.trainable_weights])
    # Keras' EMA: the average starts at the first step's weights, then m * avg + (1 - m) * w.
    expected = [0.5 * (0.5 * a + 0.5 * b) + 0.5 * c for a, b, c in zip(*seen)]
    model.finalize_variable_values()
    for weight, value in zip(model.generator.trainable_weights, expected):
        np.testing.assert_allclose(np.array(weight), value, rtol=1e-5, atol=1e-7)


def test_recipe_finds_vgg19_weights_in_the_keras_cache(tmp_path, monkeypatch):
    from train.recipes.gan_superres import vgg19_weights

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert vgg19_weights("auto") is None  # nothing cached: feature matching
    cached = tmp_path / "models" / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cached.parent.mkdir()
    cached.write_bytes(b"")
    assert vgg19_weights("auto") == str(cached)
    assert vgg19_weights("none") is None and vgg19_weights("/w.h5") == "/w.h5"


def test_fit_goes_through_both_phases_like_the_trainer():
    """`model.fit` (what a Keras user tries first) trains as `python -m train` does on one
    device: the pre-training phase, then the adversarial one, never skipping a phase."""
    from train.trainer import make_step_function

    batches = [batch(seed=i) for i in range(4)]
    dataset = tf.data.Dataset.from_tensor_slices(tuple(np.stack(t) for t in zip(*batches))).unbatch().batch(2)

    def make(weights=None):
        model = SRGAN(build_sr_generator(4, 8, 1), build_sr_discriminator(8, 2, 16), 4, pretrain_steps=2)
        model.compile(keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05))
        model.build_optimizers()
        if weights is not None:
            model.set_weights(weights)
        return model

    fitted = make()
    initial = fitted.get_weights()
    fitted.fit(dataset, epochs=1, verbose=0, shuffle=False)
    looped = make(initial)
    strategy = tf.distribute.get_strategy()
    for step, data in enumerate(batches):
        looped.begin_step(step)
        make_step_function(strategy, looped.train_step)(data)
    for model in (fitted, looped):
        assert int(model.g_optimizer.iterations.numpy()) == 4
        assert int(model.d_optimizer.iterations.numpy()) == 2  # two adversarial steps
    for a, b in zip(fitted.get_weights(), looped.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fit_refuses_several_steps_per_execution():
    model = tiny_srgan()
    model.compile(keras.optimizers.Adam(), keras.optimizers.Adam(), steps_per_execution=2)
    with pytest.raises(ValueError, match="steps_per_execution=1"):
        model.fit(tf.data.Dataset.from_tensors(batch()), epochs=1, verbose=0)


def test_short_runs_average_with_a_lower_ema_momentum():
    """The EMA starts from the random initial weights: a short plan must forget them."""
    from train.recipes.gan_superres import PRESETS, ema_momentum, resize

    default = PRESETS["default"]
    assert ema_momentum(default) == 0.999  # 10,000 steps: 0.999^10000 = 4.5e-5
    short = resize(default, 0.16)  # what --minutes plans on a CPU about 6x slower
    assert short.total_steps == 1600 and short.pretrain_steps == 1280
    momentum = ema_momentum(short)
    assert momentum == pytest.approx(1 - 7 / 1600) and momentum ** 1600 <= np.exp(-7) + 1e-12
    assert ema_momentum(PRESETS["tiny"]) == 0.0
