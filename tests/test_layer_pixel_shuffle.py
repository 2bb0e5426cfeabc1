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
