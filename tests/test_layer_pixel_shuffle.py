"""PixelShuffle: the layer contract and equality with tf.nn.depth_to_space."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import check_layer

from zoo.layers import PixelShuffle


def test_layer_contract():
    out = check_layer(PixelShuffle(2, name="shuffle"), (2, 3, 5, 12))
    assert out.shape == (2, 6, 10, 3)


@pytest.mark.parametrize("scale, channels", [(2, 4), (2, 8), (3, 18), (4, 16)])
def test_equals_depth_to_space(scale, channels):
    x = np.random.default_rng(scale).normal(size=(2, 4, 5, channels)).astype("float32")
    expected = tf.nn.depth_to_space(x, scale).numpy()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(PixelShuffle(scale)(x)), expected)


def test_unknown_height_and_width_in_tf_function():
    layer = PixelShuffle(2)
    run = tf.function(layer, input_signature=[tf.TensorSpec((None, None, None, 8), tf.float32)])
    for shape in [(1, 3, 4, 8), (2, 5, 2, 8)]:
        x = np.random.default_rng(0).normal(size=shape).astype("float32")
        np.testing.assert_array_equal(run(x).numpy(), tf.nn.depth_to_space(x, 2).numpy())


def test_scale_one_is_identity():
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 5)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(PixelShuffle(1)(x)), x)


@pytest.mark.parametrize("scale", [0, -2, 1.5])
def test_invalid_scale(scale):
    with pytest.raises(ValueError, match="positive integer"):
        PixelShuffle(scale)


def test_channels_not_divisible():
    with pytest.raises(ValueError, match="divisible by 4"):
        PixelShuffle(2)(np.zeros((1, 2, 2, 6), "float32"))


def test_in_a_user_model_trained_with_fit():
    """A learned 2x upsampling: a 1x1 convolution to 4 channels, then the shuffle, fitted to
    nearest-neighbour upsampling (each output pixel a copy of its input pixel) learns an
    all-ones kernel. The loss is linear least squares in the kernel: SGD(1) halves each
    kernel error per step (32 steps; measured: the kernel exactly 1, the loss 0)."""
    x = np.random.default_rng(0).normal(size=(64, 4, 4, 1)).astype("float32")
    y = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)  # (64, 8, 8, 1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(4, 1, use_bias=False),
                              PixelShuffle(2)])
    model.compile(keras.optimizers.SGD(1.0), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=1, batch_size=2, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 1e-6 * before
    np.testing.assert_allclose(model.layers[0].kernel.numpy().ravel(), np.ones(4), atol=1e-3)


def test_mixed_bfloat16_call():
    """Under mixed_bfloat16 the shuffle moves bfloat16 values unchanged."""
    x = np.random.default_rng(1).normal(size=(2, 3, 5, 8)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        out = PixelShuffle(2)(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    expected = tf.nn.depth_to_space(tf.cast(x, tf.bfloat16), 2)
    np.testing.assert_array_equal(np.asarray(tf.cast(out, tf.float32)), np.asarray(tf.cast(expected, tf.float32)))
