"""ResidualBlock: the layer contract and its formula x + s * conv(relu(conv(x)))."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import check_layer

from zoo.layers import ResidualBlock


def test_layer_contract():
    out = check_layer(ResidualBlock(4, kernel_size=3, residual_scale=0.5, name="block"), (2, 6, 5, 4))
    assert out.shape == (2, 6, 5, 4)


def test_formula():
    block = ResidualBlock(3, kernel_size=3, residual_scale=0.1)
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(block(x))
    (k1, b1), (k2, b2) = block.conv1.get_weights(), block.conv2.get_weights()
    hidden = tf.nn.relu(tf.nn.conv2d(x, k1, 1, "SAME") + b1)
    expected = x + 0.1 * (tf.nn.conv2d(hidden, k2, 1, "SAME") + b2).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_zero_residual_scale_is_identity():
    x = np.random.default_rng(1).normal(size=(1, 4, 4, 2)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ResidualBlock(2, residual_scale=0.0)(x)), x)


def test_channel_mismatch():
    with pytest.raises(ValueError, match="3 input channels"):
        ResidualBlock(4)(np.zeros((1, 4, 4, 3), "float32"))
