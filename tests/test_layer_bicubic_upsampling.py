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
