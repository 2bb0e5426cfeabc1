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


def test_in_a_user_model_trained_with_fit():
    """A block inside a user's model, fitted with `fit` to another block's outputs (same shape,
    other random weights): 150 Adam steps bring the loss down 100-fold (measured 0.131 -> 0.0013)."""
    x = np.random.default_rng(0).normal(size=(64, 5, 5, 4)).astype("float32")
    keras.utils.set_random_seed(1)
    y = keras.ops.convert_to_numpy(ResidualBlock(4, residual_scale=0.5)(x))  # the teacher
    model = keras.Sequential([keras.Input((None, None, 4)), ResidualBlock(4, residual_scale=0.5)])
    model.compile(keras.optimizers.Adam(0.02), "mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(16), steps_per_epoch=150,
              shuffle=False, verbose=0)
    assert model.evaluate(x, y, verbose=0) < 0.03 * before


def test_mixed_bfloat16_call():
    """Under mixed_bfloat16: float32 kernels, bfloat16 output close to the float32 formula."""
    x = np.random.default_rng(2).normal(size=(2, 5, 6, 3)).astype("float32")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        block = ResidualBlock(3, residual_scale=0.5)
        out = block(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert block.conv1.kernel.dtype == "float32" and keras.backend.standardize_dtype(out.dtype) == "bfloat16"
    (k1, b1), (k2, b2) = block.conv1.get_weights(), block.conv2.get_weights()
    hidden = tf.nn.relu(tf.nn.conv2d(x, k1, 1, "SAME") + b1)
    expected = x + 0.5 * (tf.nn.conv2d(hidden, k2, 1, "SAME") + b2).numpy()
    np.testing.assert_allclose(np.asarray(tf.cast(out, tf.float32)), expected, atol=0.05)
