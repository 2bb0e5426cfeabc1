"""TransformerEncoder and PositionEmbedding: the layer checks, a NumPy reference of one block (post-
and pre-norm), the padding mask, dropout, fit in a user's Sequential model, mixed_bfloat16."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import check_layer

from zoo.layers import AttentionPooling, PositionEmbedding, TransformerEncoder


def numpy_block(layer: TransformerEncoder, x: np.ndarray, mask: np.ndarray | None):
    """One encoder block in float64 NumPy, written from the paper: `(outputs, weights (B, H, T, T))`."""
    w = {v.name: np.asarray(v, np.float64) for v in layer.trainable_weights}
    heads = layer.num_heads

    def norm(h, name):
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        return (h - mean) / np.sqrt(var + layer.epsilon) * w[f"{name}_gamma"] + w[f"{name}_beta"]

    def attention(h):
        batch, length, _ = h.shape
        q, k, v = (h @ w[f"{p}_kernel"] + w[f"{p}_bias"] for p in ("query", "key", "value"))
        size = q.shape[-1] // heads
        out, all_weights = np.zeros_like(q), np.zeros((batch, heads, length, length))
        for b in range(batch):
            keys = np.arange(length) if mask is None else np.flatnonzero(mask[b])
            for i in range(heads):
                cols = slice(i * size, (i + 1) * size)
                scores = q[b, :, cols] @ k[b][keys, cols].T / np.sqrt(size)  # (T, kept keys)
                e = np.exp(scores - scores.max(1, keepdims=True))
                a = e / e.sum(1, keepdims=True)
                all_weights[b, i][:, keys] = a
                out[b, :, cols] = a @ v[b][keys, cols]
        return out @ w["output_kernel"] + w["output_bias"], all_weights

    def ffn(h):
        return np.maximum(h @ w["ff_kernel"] + w["ff_bias"], 0) @ w["ff_output_kernel"] + w["ff_output_bias"]

    x = x.astype(np.float64)
    if layer.norm_first:
        a, weights = attention(norm(x, "attention_norm"))
        x = x + a
        return x + ffn(norm(x, "ff_norm")), weights
    a, weights = attention(x)
    x = norm(x + a, "attention_norm")
    return norm(x + ffn(x), "ff_norm"), weights


def randomize(layer: keras.layers.Layer, seed: int = 0) -> None:
    """Non-trivial biases and norm weights, so the reference checks every weight's role."""
    rng = np.random.default_rng(seed)
    for v in layer.trainable_weights:
        v.assign(np.asarray(v) + 0.3 * rng.normal(size=v.shape).astype("float32"))


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], bool)


@pytest.mark.parametrize("norm_first", [False, True])
def test_layer_checks(norm_first):
    out = check_layer(TransformerEncoder(2, 12, dropout=0.1, norm_first=norm_first), (2, 5, 8), atol=1e-5)
    assert out.shape == (2, 5, 8)


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_position_embedding_layer_checks(kind):
    out = check_layer(PositionEmbedding(7, kind=kind), (2, 5, 6), atol=1e-6)
    assert out.shape == (2, 5, 6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_matches_numpy_reference_with_mask(norm_first):
    x = np.random.default_rng(1).normal(size=(3, 6, 8)).astype("float32")
    layer = TransformerEncoder(2, 16, norm_first=norm_first)
    layer.build(x.shape)
    randomize(layer)
    out, weights = layer(x, mask=MASK, return_attention_scores=True)
    expected, expected_weights = numpy_block(layer, x, MASK)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(weights), expected_weights, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), expected, atol=1e-4)
    unmasked, _ = numpy_block(layer, x, None)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), unmasked, atol=1e-4)


def test_key_dim_not_features_over_heads_matches_reference():
    x = np.random.default_rng(2).normal(size=(2, 4, 6)).astype("float32")
    layer = TransformerEncoder(3, 5, key_dim=4)  # 3 heads x 4 != 6 features
    layer.build(x.shape)
    assert layer.query_kernel.shape == (6, 12) and layer.output_kernel.shape == (12, 6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), numpy_block(layer, x, None)[0], atol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_padded_positions_do_not_change_real_positions(norm_first):
    x = np.random.default_rng(3).normal(size=(3, 6, 8)).astype("float32")
    layer = TransformerEncoder(4, 16, norm_first=norm_first)
    out, weights = (keras.ops.convert_to_numpy(t) for t in layer(x, mask=MASK, return_attention_scores=True))
    changed = x.copy()
    changed[~MASK] = 50.0 * np.random.default_rng(4).normal(size=changed[~MASK].shape)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(changed, mask=MASK))[MASK], out[MASK], atol=1e-5)
    assert np.all(weights.transpose(0, 3, 1, 2)[~MASK] == 0.0)  # no query attends to a padded key
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-6)
    # Without the mask the padding does leak: the test above could fail.
    leaked = keras.ops.convert_to_numpy(layer(changed)) - keras.ops.convert_to_numpy(layer(x))
    assert np.abs(leaked[MASK]).max() > 1e-2


def test_mask_from_embedding_flows_through_position_embedding():
    ids = np.array([[3, 4, 5, 0, 0, 0], [7, 8, 0, 0, 0, 0]], "int32")
    inputs = keras.Input((6,), dtype="int32")
    x = PositionEmbedding(6)(keras.layers.Embedding(10, 8, mask_zero=True)(inputs))
    x, weights = TransformerEncoder(2, 8)(x, return_attention_scores=True)
    model = keras.Model(inputs, [x, weights])
    _, attention = (keras.ops.convert_to_numpy(t) for t in model(ids))
    assert attention.shape == (2, 2, 6, 6)
    assert np.all(attention.transpose(0, 3, 1, 2)[ids == 0] == 0.0)


def test_dropout_training_and_stateless_seed():
    x = np.random.default_rng(5).normal(size=(2, 5, 8)).astype("float32")
    layer = TransformerEncoder(2, 16, dropout=0.3, attention_dropout=0.3)
    plain = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), plain)
    assert np.abs(keras.ops.convert_to_numpy(layer(x, training=True)) - plain).max() > 1e-3
    a, b, c = (keras.ops.convert_to_numpy(layer(x, seed=tf.constant(s))) for s in ([3, 0], [3, 0], [3, 1]))
    np.testing.assert_array_equal(a, b)  # the same (step, replica): the same masks
    assert np.abs(a - c).max() > 1e-3 and np.abs(a - plain).max() > 1e-3


def test_sinusoidal_positions_match_the_paper_and_learned_table_is_used():
    layer = PositionEmbedding(50, kind="sinusoidal", max_wavelength=10000.0)
    x = np.zeros((1, 9, 7), "float32")
    out = keras.ops.convert_to_numpy(layer(x))[0]
    t, i = np.arange(9)[:, None], np.arange(7)[None]
    angle = t / 10000.0 ** (2 * (i // 2) / 7)
    np.testing.assert_allclose(out, np.where(i % 2 == 0, np.sin(angle), np.cos(angle)), atol=1e-5)
    learned = PositionEmbedding(5)
    x = np.random.default_rng(6).normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(learned(x)), x + np.asarray(learned.embeddings)[None, :3],
                               atol=1e-6)
    with pytest.raises(ValueError, match="exceed sequence_length"):
        PositionEmbedding(4)(np.zeros((1, 5, 2), "float32"))


def test_in_sequential_model_trained_with_fit():
    """Class 1 iff token 1 comes before token 2: word order matters, so positions must be used."""
    rng = np.random.default_rng(0)
    x = rng.integers(3, 20, size=(384, 8))
    y = rng.integers(0, 2, size=384)
    for row, label in zip(x, y):
        a, b = sorted(rng.choice(6, size=2, replace=False))
        row[a], row[b] = (1, 2) if label else (2, 1)
    x[:, 6:] = 0  # padding
    model = keras.Sequential([keras.Input((8,), dtype="int32"), keras.layers.Embedding(20, 16, mask_zero=True),
                              PositionEmbedding(8), TransformerEncoder(2, 32), AttentionPooling(),
                              keras.layers.Dense(2)])
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=25, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < 0.3 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9


def test_mixed_bfloat16_call():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    x = np.random.default_rng(7).normal(size=(3, 6, 8)).astype("float32")
    position, layer = PositionEmbedding(6, kind="sinusoidal"), TransformerEncoder(2, 16)
    out, weights = layer(position(x), mask=MASK, return_attention_scores=True)
    assert layer.query_kernel.dtype == "float32" and out.dtype == "bfloat16" and weights.dtype == "float32"
    keras.mixed_precision.set_global_policy("float32")
    reference = TransformerEncoder.from_config({**layer.get_config(), "dtype": "float32"})
    reference.build(x.shape)
    reference.set_weights(layer.get_weights())
    expected = keras.ops.convert_to_numpy(reference(PositionEmbedding(6, kind="sinusoidal")(x), mask=MASK))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(out, "float32"))[MASK], expected[MASK],
                               atol=0.1)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(weights).transpose(0, 3, 1, 2)[~MASK], 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        TransformerEncoder(0, 4)
    with pytest.raises(ValueError, match="key_dim"):
        TransformerEncoder(2, 4, key_dim=0)
    with pytest.raises(ValueError, match="dropout"):
        TransformerEncoder(2, 4, dropout=1.0)
    with pytest.raises(ValueError, match="divisible"):
        TransformerEncoder(3, 4)(np.zeros((1, 2, 8), "float32"))
    with pytest.raises(ValueError, match="kind"):
        PositionEmbedding(4, kind="rotary")
