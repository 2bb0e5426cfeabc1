"""BicubicUpsampling: the layer contract, equality with tf.image.resize, unknown sizes."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import check_layer

from zoo.layers import BicubicUpsampling


def test_layer_contract():
    out = check_layer(BicubicUpsampling(3, name="bicubic"), (2, 4, 5, 3))
    assert out.shape == (2, 12, 15, 3)
    assert out.dtype == np.float32


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_equals_tf_image_resize(scale):
    x = np.random.default_rng(scale).uniform(size=(2, 5, 7, 3)).astype("float32")
    expected = tf.image.resize(x, (5 * scale, 7 * scale), method="bicubic").numpy()
    actual = keras.ops.convert_to_numpy(BicubicUpsampling(scale)(x))
    np.testing.assert_allclose(actual, expected, atol=1e-6)


def test_unknown_height_and_width_in_tf_function():
    layer = BicubicUpsampling(2)
    run = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    for shape in [(1, 3, 4, 3), (2, 6, 5, 3)]:
        x = np.random.default_rng(0).uniform(size=shape).astype("float32")
        expected = tf.image.resize(x, (shape[1] * 2, shape[2] * 2), method="bicubic").numpy()
        np.testing.assert_allclose(run(x).numpy(), expected, atol=1e-6)
    assert run.experimental_get_tracing_count() == 1


def test_in_functional_model_with_unknown_size():
    inputs = keras.Input((None, None, 1))
    model = keras.Model(inputs, BicubicUpsampling(2)(inputs))
    assert model(np.ones((1, 3, 5, 1), "float32")).shape == (1, 6, 10, 1)


@pytest.mark.parametrize("scale", [0, -1, 2.5])
def test_invalid_scale(scale):
    with pytest.raises(ValueError, match="positive integer"):
        BicubicUpsampling(scale)


def test_in_a_user_model_trained_with_fit():
    """Gradients flow through the upsampling: a 1x1 convolution in front of it, fitted to
    bicubic(3x + 1), learns 3x + 1 (bicubic weights sum to 1, so the constant passes through).
    Linear least squares: 40 SGD steps (measured: 3.0000 and 1.0000, the loss 3.07 -> 7e-10)."""
    x = np.random.default_rng(0).uniform(-1, 1, size=(160, 6, 6, 1)).astype("float32")
    y = tf.image.resize(3 * x + 1, (12, 12), method="bicubic").numpy()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(1, 1), BicubicUpsampling(2)])
    model.compile(keras.optimizers.SGD(0.5), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 1e-6 * before
    kernel, bias = model.layers[0].get_weights()
    np.testing.assert_allclose([kernel.item(), bias.item()], [3.0, 1.0], atol=1e-3)


def test_mixed_bfloat16_call():
    """Under mixed_bfloat16: a bfloat16 output, bicubic of the bfloat16-rounded input."""
    x = np.random.default_rng(1).uniform(size=(2, 5, 7, 3)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((None, None, 3))
        model = keras.Model(inputs, BicubicUpsampling(2)(inputs))
        out = model(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    rounded = tf.cast(tf.cast(x, tf.bfloat16), tf.float32)
    expected = tf.image.resize(rounded, (10, 14), method="bicubic").numpy()
    np.testing.assert_allclose(np.asarray(tf.cast(out, tf.float32)), expected, atol=1e-2)  # bfloat16: 8 bits
