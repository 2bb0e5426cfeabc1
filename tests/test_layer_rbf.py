"""zoo.layers.RBF: the layer checks, kernels against NumPy, initialisation from data, fitting."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import check_layer

from zoo.errors import UserError
from zoo.layers import RBF
from zoo.layers.rbf import centre_widths, collect_samples, kmeans, nearest_centres


def numpy_rbf(x, centres, widths, kernel):
    """The kernels written out directly: r^2 = sum (x - c)^2."""
    r2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1) / widths ** 2  # (N, K)
    return np.exp(-0.5 * r2) if kernel == "gaussian" else 1.0 / np.sqrt(1.0 + r2)


def blobs(n=600, seed=0):
    """Three well-separated 2-D clusters."""
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [5.0, 5.0], [-5.0, 5.0]])
    return (means[rng.integers(3, size=n)] + 0.3 * rng.standard_normal((n, 2))).astype("float32"), means


@pytest.mark.parametrize("kernel", ["gaussian", "inverse_multiquadric"])
def test_layer_checks(kernel):
    out = check_layer(RBF(5, kernel=kernel, initial_width=2.0), (3, 4))
    assert out.shape == (3, 5) and np.all((out > 0) & (out <= 1))


def test_check_layer_on_sequences():
    assert check_layer(RBF(3), (2, 6, 4)).shape == (2, 6, 3)  # any leading dimensions


@pytest.mark.parametrize("kernel", ["gaussian", "inverse_multiquadric"])
def test_kernels_match_numpy(kernel):
    rng = np.random.default_rng(1)
    layer = RBF(6, kernel=kernel)
    layer.build((None, 3))
    centres, widths = rng.normal(size=(6, 3)).astype("float32"), rng.uniform(0.3, 2.0, 6).astype("float32")
    layer.centres.assign(centres)
    layer.log_widths.assign(np.log(widths))
    x = rng.normal(size=(10, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(layer(x)), numpy_rbf(x, centres, widths, kernel), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(layer.widths), widths, rtol=1e-6)


def test_mixed_bfloat16_computes_distances_in_float32():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(8, 16)).astype("float32") + 30.0  # large norms: |x|^2 - 2x.c + |c|^2 cancels
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = RBF(4, initial_width=1.5)
        layer.build((None, 16))
        layer.centres.assign(x[:4] + 0.5)
        out = layer(x)
        assert layer.centres.dtype == "float32" and keras.backend.standardize_dtype(out.dtype) == "bfloat16"
        model = keras.Sequential([keras.Input((16,)), layer, keras.layers.Dense(1)])
        assert keras.backend.standardize_dtype(model(x).dtype) == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    expected = numpy_rbf(x, x[:4] + 0.5, np.full(4, 1.5), "gaussian")
    np.testing.assert_allclose(np.asarray(out, np.float32), expected, rtol=1e-2, atol=1e-3)  # bf16 output


def test_in_a_sequential_model_trained_with_fit():
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (128, 2)).astype("float32")
    y = (x[:, :1] * x[:, 1:] > 0).astype("float32")
    rbf = RBF(8)
    rbf.adapt(x)
    model = keras.Sequential([keras.Input((2,)), rbf, keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.05), "binary_crossentropy")
    before = np.array(rbf.centres)
    history = model.fit(x, y, epochs=5, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.allclose(before, np.array(rbf.centres))  # centres train too


def test_fits_a_smooth_function_to_low_error():
    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (512, 1)).astype("float32")
    rbf = RBF(16)
    rbf.adapt(x)
    model = keras.Sequential([keras.Input((1,)), rbf, keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.02), "mse")
    model.fit(x, np.sin(5 * x), epochs=60, batch_size=64, verbose=0)
    grid = np.linspace(-1, 1, 400, dtype="float32")[:, None]
    rmse = float(np.sqrt(np.mean((model.predict(grid, verbose=0) - np.sin(5 * grid)) ** 2)))
    assert rmse < 0.05, rmse


def test_kmeans_finds_the_clusters():
    x, means = blobs()
    centres = kmeans(x, 3, 20, np.random.default_rng(0))
    np.testing.assert_allclose(centres[np.argsort(centres[:, 0])], means[np.argsort(means[:, 0])], atol=0.1)
    index, squared = nearest_centres(x, centres)
    assert np.all(squared < 3.0) and len(np.unique(index)) == 3


def test_adapt_from_array_sets_centres_and_widths_from_spacing():
    x, means = blobs()
    rbf = RBF(3)
    info = rbf.adapt(x)
    assert info == {"samples": 600, "seen": 600, "mean_squared_distance": pytest.approx(0.18, abs=0.05)}
    centres = np.array(rbf.centres)
    np.testing.assert_allclose(np.sort(centres[:, 0]), np.sort(means[:, 0]), atol=0.1)
    # nearest rule, p = 2: each centre's mean distance to the other two
    d = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1))
    np.testing.assert_allclose(np.array(rbf.widths), d.sum(1) / 2, rtol=1e-4)
    rbf.adapt(x, width_rule="max", width_scale=2.0)  # Haykin: d_max / sqrt(2K), times 2
    np.testing.assert_allclose(np.array(rbf.widths), 2 * d.max() / np.sqrt(6), rtol=1e-2)


def test_adapt_random_picks_distinct_samples():
    x, _ = blobs(50)
    rbf = RBF(10)
    rbf.adapt(x, method="random", seed=3)
    centres = np.array(rbf.centres)
    assert len(np.unique(centres, axis=0)) == 10
    assert all(np.any(np.all(x == c, axis=1)) for c in centres)


def test_adapt_from_a_tf_data_stream_equals_the_array():
    x, _ = blobs()
    from_array, from_stream = RBF(3), RBF(3)
    from_array.adapt(x, seed=5)
    stream = tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x)))).batch(64)  # (x, y) batches
    info = from_stream.adapt(stream, seed=5)
    assert info["seen"] == 600
    np.testing.assert_allclose(np.array(from_stream.centres), np.array(from_array.centres), atol=1e-5)
    endless = stream.repeat()
    with pytest.raises(ValueError, match="endless"):
        RBF(3).adapt(endless)
    assert RBF(3).adapt(endless, steps=20)["seen"] == 1200  # 2 passes of 600
    assert RBF(3).adapt(endless, steps=20, max_samples=100)["samples"] == 100


def test_reservoir_is_a_uniform_sample_of_the_stream():
    stream = (np.full((10, 1), i, np.float32) for i in range(100))  # values 0..99, 10 of each
    samples, seen = collect_samples(stream, None, 500, None, np.random.default_rng(0))
    assert seen == 1000 and samples.shape == (500, 1)
    assert 40 < samples.mean() < 59  # a sample of the whole stream, not its first half (mean 24.5)


def test_adapt_on_top_of_another_layer():
    x, _ = blobs()
    rbf = RBF(3)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, name="features"), rbf, keras.layers.Dense(1)])
    features = keras.Model(model.inputs, rbf.input)
    rbf.adapt(tf.data.Dataset.from_tensor_slices(x).batch(100), feature_model=features)
    expected = kmeans(np.asarray(model.layers[0](x)), 3, 20, np.random.default_rng(0))
    np.testing.assert_allclose(np.array(rbf.centres), expected, rtol=1e-4, atol=1e-4)
    assert rbf.centres.shape == (3, 4)


def test_bad_inputs():
    x, _ = blobs(20)
    with pytest.raises(UserError, match="has 30 centres but the data holds only 20 distinct samples"):
        RBF(30).adapt(x)
    with pytest.raises(UserError, match="only 1 distinct"):
        RBF(2).adapt(np.ones((50, 3), np.float32))
    with pytest.raises(UserError, match="no samples"):
        RBF(2).adapt(tf.data.Dataset.from_tensor_slices(np.zeros((0, 2), np.float32)).batch(4))
    layer = RBF(2)
    layer.build((None, 3))
    with pytest.raises(ValueError, match="takes 3 features, the data gave 2"):
        layer.adapt(x)
    with pytest.raises(ValueError, match="kernel"):
        RBF(2, kernel="cauchy")
    with pytest.raises(ValueError, match="method"):
        RBF(2).adapt(x, method="pca")


def test_centre_widths_of_one_centre_is_the_rms_distance():
    np.testing.assert_allclose(centre_widths(np.zeros((1, 2), np.float32), "nearest", 2, 4.0), [2.0])
