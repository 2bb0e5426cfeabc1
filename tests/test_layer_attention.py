"""AttentionPooling: the layer checks, masking, a NumPy reference, fit in a Sequential model, bf16."""

import os
import tempfile

import keras
import numpy as np
import pytest
from helpers import check_layer

from zoo.layers import AttentionPooling


def reference(layer: AttentionPooling, x: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """score_t = v . tanh(W h_t + b); softmax over kept positions; pooled = sum_t a_t h_t."""
    w, b, v = (np.asarray(weight, np.float64) for weight in (layer.kernel, layer.bias, layer.query))
    scores = np.tanh(x.astype(np.float64) @ w + b) @ v  # (B, T)
    keep = np.ones(scores.shape, bool) if mask is None else mask
    exp = np.where(keep, np.exp(scores - scores.max(axis=1, keepdims=True)), 0.0)
    weights = exp / exp.sum(axis=1, keepdims=True)
    return np.einsum("bt,btf->bf", weights, x), weights


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


def test_layer_checks():
    out = check_layer(AttentionPooling(8), (3, 5, 6), atol=1e-5)
    assert out.shape == (3, 6)


def test_masked_positions_get_zero_weight_and_weights_sum_to_one():
    x = np.random.default_rng(1).normal(size=(3, 6, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)
    layer = AttentionPooling(5, return_attention=True)
    pooled, weights = (keras.ops.convert_to_numpy(t) for t in layer(x, mask=mask))
    assert np.all(weights[~mask] == 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(weights[1], [1, 0, 0, 0, 0, 0], atol=1e-7)  # one kept word takes all
    np.testing.assert_allclose(pooled[1], x[1, 0], atol=1e-6)
    expected_pooled, expected_weights = reference(layer, x, mask)
    np.testing.assert_allclose(weights, expected_weights, atol=1e-6)
    np.testing.assert_allclose(pooled, expected_pooled, atol=1e-5)
    # Padding values must not leak into the output.
    changed = x.copy()
    changed[~mask] = 100.0
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(changed, mask=mask)[0]), pooled, atol=1e-6)


def test_no_mask_and_fully_masked_rows():
    x = np.random.default_rng(2).normal(size=(2, 4, 3)).astype("float32")
    layer = AttentionPooling(return_attention=True)
    pooled, weights = layer(x)
    expected_pooled, expected_weights = reference(layer, x, None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weights), expected_weights, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(pooled), expected_pooled, atol=1e-5)
    pooled, weights = layer(x, mask=np.zeros((2, 4), bool))  # an empty text pools to zeros
    assert np.all(keras.ops.convert_to_numpy(weights) == 0) and np.all(keras.ops.convert_to_numpy(pooled) == 0)


def test_keras_mask_from_embedding_and_return_attention_round_trip():
    ids = np.array([[3, 4, 5, 0, 0], [7, 0, 0, 0, 0]], "int32")
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 6, mask_zero=True)(inputs)
    pooled, weights = AttentionPooling(4, return_attention=True)(x)
    model = keras.Model(inputs, [keras.layers.Dense(2)(pooled), weights])
    logits, attention = (keras.ops.convert_to_numpy(t) for t in model(ids))
    assert logits.shape == (2, 2) and attention.shape == (2, 5)
    np.testing.assert_array_equal(attention[ids == 0], 0.0)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-6)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    for a, b in zip(loaded(ids), (logits, attention)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), b, atol=1e-6)
    assert loaded.layers[2].return_attention and loaded.layers[2].units == 4


def test_in_sequential_model_trained_with_fit():
    """Token sequences whose class is whether token 1 occurs anywhere: pooling must find it."""
    rng = np.random.default_rng(0)
    x = rng.integers(2, 20, size=(256, 10))
    x[rng.random((256, 10)) < 0.3] = 0  # padding inside and at the end
    y = rng.integers(0, 2, size=256)
    x[y == 1, rng.integers(0, 10, size=int(y.sum()))] = 1
    model = keras.Sequential([keras.Input((10,), dtype="int32"),
                              keras.layers.Embedding(20, 16, mask_zero=True),
                              keras.layers.Dense(16, activation="tanh"),
                              AttentionPooling(16),
                              keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


def test_mixed_bfloat16_call():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    layer = AttentionPooling(8, return_attention=True)
    x = np.random.default_rng(3).normal(size=(2, 7, 6)).astype("float32")
    mask = np.arange(7)[None] < np.array([[7], [3]])
    pooled, weights = layer(x, mask=mask)
    assert layer.kernel.dtype == "float32" and pooled.dtype == "bfloat16" and weights.dtype == "float32"
    weights = keras.ops.convert_to_numpy(weights)
    np.testing.assert_array_equal(weights[~mask], 0.0)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)
    bf16_x = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(x, "bfloat16"), "float32"))
    expected_pooled, expected_weights = reference(layer, bf16_x, mask)
    np.testing.assert_allclose(weights, expected_weights, atol=2e-2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(pooled, "float32")), expected_pooled,
                               atol=5e-2)


def test_bad_units():
    with pytest.raises(ValueError, match="units"):
        AttentionPooling(0)
