"""SelfOrganizingMap: the layer checks, NumPy references of the batch-SOM sums and of every
measure (QE, TE, U-matrix, hit map), chunking, mixed precision and use inside a user's model."""

import keras
import numpy as np
import pytest
from helpers import check_layer

from zoo.layers import SelfOrganizingMap
from zoo.layers import som as som_module


def _data(n=60, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


def _ref_adjacent(a, b, cols, topology):
    """Grid adjacency from (row, col) offsets, independent of the layer's plane positions:
    rectangular = 8-neighbourhood (MiniSom's TE threshold 1.42); hexagonal = 6 neighbours,
    odd rows shifted right."""
    (ra, ca), (rb, cb) = divmod(int(a), cols), divmod(int(b), cols)
    dr, dc = rb - ra, cb - ca
    if topology == "rectangular":
        return max(abs(dr), abs(dc)) == 1
    if dr == 0:
        return abs(dc) == 1
    if abs(dr) != 1:
        return False
    return dc in ((0, 1) if ra % 2 else (-1, 0))


def _ref_positions(rows, cols, topology):
    r, c = np.divmod(np.arange(rows * cols), cols)
    if topology == "hexagonal":
        return np.stack([c + 0.5 * (r % 2), r * np.sqrt(3) / 2], 1)
    return np.stack([c, r], 1).astype(float)


@pytest.mark.parametrize("mode", ["distances", "coordinates", "index"])
def test_layer_checks(mode):
    out = check_layer(SelfOrganizingMap(3, 4, output_mode=mode), (5, 6), atol=1e-5)
    assert out.shape == {"distances": (5, 12), "coordinates": (5, 2), "index": (5,)}[mode]


@pytest.mark.parametrize("mode", ["similarities", "distances", "index"])
def test_layer_checks_on_sequences(mode):
    out = check_layer(SelfOrganizingMap(2, 3, output_mode=mode, temperature=2.0), (4, 5, 6), atol=1e-5)
    assert out.shape == {"similarities": (4, 5, 6), "distances": (4, 5, 6), "index": (4, 5)}[mode]


def test_sequences_are_mapped_vector_by_vector():
    x = _data(36, 4).reshape(3, 2, 6, 4)  # (N, ..., D): 36 vectors of 4
    flat = x.reshape(-1, 4)
    for mode in ("distances", "coordinates", "index", "similarities"):
        layer = SelfOrganizingMap(3, 3, output_mode=mode, temperature=0.5)
        layer.initialize(x, "random", seed=1)  # 36 vectors, not 3 items of 48 values
        assert layer.prototypes.shape == (9, 4)
        out, expected = (keras.ops.convert_to_numpy(layer(v)) for v in (x, flat))
        assert out.shape == (3, 2, 6, *expected.shape[1:])
        assert layer.compute_output_shape(x.shape) == out.shape
        np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=1e-6, atol=1e-6)
    w = keras.ops.convert_to_numpy(layer.prototypes)
    d2 = ((flat[:, None] - w[None]) ** 2).sum(-1)
    soft = np.exp(-(d2 - d2.min(1, keepdims=True)) / 0.5)
    np.testing.assert_allclose(expected, soft / soft.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    everything = SelfOrganizingMap(3, 3, output_mode="all")
    everything.initialize(flat, "random", seed=1)
    outputs = everything(x)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {
        "distances": (3, 2, 6, 9), "coordinates": (3, 2, 6, 2), "index": (3, 2, 6), "distance": (3, 2, 6)}
    assert everything.compute_output_shape(x.shape)["index"] == (3, 2, 6)


def test_similarities_pass_gradients_to_the_inputs_not_to_trainable_prototypes():
    x = _data(20, 3)
    layer = SelfOrganizingMap(2, 2, output_mode="similarities")
    layer.initialize(x, "pca")
    import tensorflow as tf

    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        first = layer(inputs)[:, 0]
    assert np.abs(tape.gradient(first, inputs).numpy()).max() > 0
    assert not layer.trainable_weights  # only the batch rule moves the prototypes
    assert SelfOrganizingMap.from_config(layer.get_config()).temperature == 1.0
    with pytest.raises(ValueError, match="temperature must be positive"):
        SelfOrganizingMap(2, 2, output_mode="similarities", temperature=0)


def test_whole_data_methods_read_sequences_by_their_last_axis():
    x = _data(48, 3, seed=4)
    sequences = x.reshape(4, 4, 3, 3)
    flat, nested = SelfOrganizingMap(2, 3), SelfOrganizingMap(2, 3)
    flat.initialize(x, "pca")
    nested.initialize(sequences, "pca")
    flat.train_batch_map(x, steps=3)
    nested.train_batch_map(sequences, steps=3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(nested.prototypes),
                               keras.ops.convert_to_numpy(flat.prototypes), rtol=1e-5, atol=1e-6)
    assert nested.errors(sequences) == flat.errors(x)
    np.testing.assert_array_equal(nested.hit_map(sequences), flat.hit_map(x))
    items = SelfOrganizingMap(2, 2)  # built for items of 9 values: (N, 3, 3) stays N flattened items
    items.build((None, 9))
    assert items.samples(sequences[0]).shape == (4, 9)
    with pytest.raises(ValueError, match=r"reshape it to \(samples, 9\)"):
        items.samples(np.zeros((2, 4, 5)))


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_call_outputs_match_numpy(topology):
    x = _data(40, 5)
    layer = SelfOrganizingMap(4, 5, topology, output_mode="all")
    layer.initialize(x, "random", seed=1)
    out = {k: keras.ops.convert_to_numpy(v) for k, v in layer(x).items()}
    w = keras.ops.convert_to_numpy(layer.prototypes)
    ref = np.linalg.norm(x[:, None, :] - w[None], axis=-1)  # (N, U)
    np.testing.assert_allclose(out["distances"], ref, rtol=1e-4, atol=2e-3)  # |x|^2 - 2x.w + |w|^2: sqrt(eps)
    np.testing.assert_array_equal(out["index"], ref.argmin(1))
    np.testing.assert_array_equal(out["coordinates"], np.stack(np.divmod(ref.argmin(1), 5), 1))
    np.testing.assert_allclose(out["distance"], ref.min(1), rtol=1e-5, atol=1e-6)  # exact for the BMU
    assert (ref.min(1) == 0).any()  # random init: samples that are prototypes
    assert out["index"].dtype == np.int32


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
@pytest.mark.parametrize("kind", ["gaussian", "bubble"])
def test_batch_statistics_match_numpy(topology, kind, monkeypatch):
    x = _data(50, 4)
    layer = SelfOrganizingMap(5, 6, topology, kind)
    layer.initialize(x, "random")
    sigma = 1.3
    w = keras.ops.convert_to_numpy(layer.prototypes)
    best = np.linalg.norm(x[:, None] - w[None], axis=-1).argmin(1)
    p = _ref_positions(5, 6, topology)
    d2 = ((p[best][:, None, :] - p[None]) ** 2).sum(-1)  # (N, U) grid distance of unit j to b_i
    h = np.exp(-d2 / (2 * sigma**2)) if kind == "gaussian" else (d2 <= sigma**2).astype(float)
    numerator, denominator = (keras.ops.convert_to_numpy(v) for v in layer.batch_statistics(x, sigma))
    np.testing.assert_allclose(numerator, h.T @ x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(denominator, h.sum(0), rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(som_module, "MAX_BLOCK", 64)  # neighbourhood sums in blocks of 2 units
    blocked = [keras.ops.convert_to_numpy(v) for v in layer.batch_statistics(x, sigma)]
    np.testing.assert_allclose(blocked[0], numerator, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(blocked[1], denominator, rtol=1e-5, atol=1e-5)


def test_batch_update_moves_prototypes_to_neighbourhood_means():
    x = _data(30, 3)
    layer = SelfOrganizingMap(3, 3, neighbourhood="bubble")
    layer.initialize(x, "random")
    before = keras.ops.convert_to_numpy(layer.prototypes).copy()
    numerator, denominator = layer.batch_statistics(x, 0.5)  # bubble of radius 0.5: the winner only
    layer.apply_batch_update(numerator, denominator, 0.5)
    after = keras.ops.convert_to_numpy(layer.prototypes)
    best = np.linalg.norm(x[:, None] - before[None], axis=-1).argmin(1)
    for unit in range(9):
        won = x[best == unit]
        expected = before[unit] if len(won) == 0 else 0.5 * before[unit] + 0.5 * won.mean(0)
        np.testing.assert_allclose(after[unit], expected, rtol=1e-5, atol=1e-5)


def test_train_batch_map_is_kohonens_batch_map_in_numpy():
    x = _data(80, 3, seed=2)
    layer = SelfOrganizingMap(3, 4)
    layer.initialize(x, "pca")
    w = keras.ops.convert_to_numpy(layer.prototypes).astype(np.float64)
    p = _ref_positions(3, 4, "rectangular")
    sigmas = 2.0 * (0.5 / 2.0) ** (np.arange(4) / 3)  # 2.0 down to 0.5, exponentially
    for sigma in sigmas:  # every update: each prototype to its neighbourhood-weighted mean
        best = np.linalg.norm(x[:, None] - w[None], axis=-1).argmin(1)
        h = np.exp(-((p[best][:, None, :] - p[None]) ** 2).sum(-1) / (2 * sigma**2))  # (N, U)
        w = (h.T @ x) / h.sum(0)[:, None]
    layer.train_batch_map(x, steps=4, sigma_start=2.0, sigma_end=0.5, chunk_size=7)  # 12 chunks
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.prototypes), w, rtol=1e-4, atol=1e-4)
    assert layer.quantization_error(x) < np.linalg.norm(x - x.mean(0), axis=1).mean()


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_errors_match_numpy_definitions(topology):
    x = _data(200, 3)
    layer = SelfOrganizingMap(5, 4, topology)
    layer.initialize(x, "random", seed=3)
    w = keras.ops.convert_to_numpy(layer.prototypes)
    d = np.linalg.norm(x[:, None] - w[None], axis=-1)
    order = np.argsort(d, axis=1)
    qe = d.min(1).mean()
    te = np.mean([not _ref_adjacent(a, b, 4, topology) for a, b in order[:, :2]])
    errors = layer.errors(x)
    assert errors["quantization_error"] == pytest.approx(qe, rel=1e-5)
    assert errors["topographic_error"] == pytest.approx(te, abs=1e-12)
    assert 0 < te < 1  # a random map: some pairs adjacent, some not
    hits = np.bincount(d.argmin(1), minlength=20).reshape(5, 4)
    np.testing.assert_array_equal(layer.hit_map(x), hits)
    first, second = np.divmod(np.arange(400), 20)  # every pair of units: NumPy in, NumPy out, as in the graph
    first, second = first[first != second], second[first != second]
    expected = [_ref_adjacent(a, b, 4, topology) for a, b in zip(first, second)]
    assert layer.adjacent(first, second).tolist() == expected
    assert keras.ops.convert_to_numpy(layer.adjacent(keras.ops.convert_to_tensor(first),
                                                     keras.ops.convert_to_tensor(second))).tolist() == expected


def test_best_two_units_are_the_two_smallest_distances_ties_to_the_lower_index():
    """`match` finds the two best units by integer argmins over the distances' bits: the order
    of floats >= 0, ties to the lower index (as `top_k` and NumPy's stable sort)."""
    x = _data(30, 4)
    prototypes = np.concatenate([x[:3], x[:3], x[3:5] + 1e-3]).astype("float32")  # 3 units twice: ties
    layer = SelfOrganizingMap(2, 4)
    layer.build((None, 4))
    layer.prototypes.assign(prototypes)
    best, second, distance, d2 = (keras.ops.convert_to_numpy(v) for v in layer.match(x))
    order = np.argsort(keras.ops.convert_to_numpy(d2), axis=1, kind="stable")
    np.testing.assert_array_equal(best, order[:, 0])
    np.testing.assert_array_equal(second, order[:, 1])
    np.testing.assert_array_equal(best[:3], [0, 1, 2])  # a sample that is a prototype: distance 0, twice
    np.testing.assert_array_equal(second[:3], [3, 4, 5])
    np.testing.assert_array_equal(distance[:3], 0.0)
    assert best.dtype == second.dtype == np.int32
    same = SelfOrganizingMap(2, 2)  # every unit alike: the first two
    same.build((None, 4))
    same.prototypes.assign(np.ones((4, 4), "float32"))
    np.testing.assert_array_equal([keras.ops.convert_to_numpy(v) for v in same.match(x)[:2]], [[0] * 30, [1] * 30])


def test_chunked_equals_unchunked():
    x = _data(103, 7)
    layer = SelfOrganizingMap(6, 6, "hexagonal")
    layer.initialize(x, "pca")
    whole = layer.best_matching_units(x, chunk_size=1000)
    chunked = layer.best_matching_units(x, chunk_size=10)
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    assert layer.errors(x, chunk_size=10) == layer.errors(x, chunk_size=1000)
    np.testing.assert_array_equal(layer.hit_map(x, chunk_size=7), layer.hit_map(x))
    # chunks of 1000, 10, 3, 7 and 103 samples, and the prototypes' later values: one trace
    layer.prototypes.assign(layer.prototypes + 0.5)
    moved = layer.best_matching_units(x, chunk_size=3)
    np.testing.assert_allclose(moved[2], np.linalg.norm(x - layer.prototypes.numpy()[moved[0]], axis=1), rtol=1e-5)
    assert layer._traced_match().experimental_get_tracing_count() == 1


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
@pytest.mark.parametrize("blocks", ["whole", "small"])
def test_u_matrix_matches_numpy(topology, blocks, monkeypatch):
    if blocks == "small":  # 20 units a few at a time, their pairs a few at a time
        monkeypatch.setattr(som_module, "MAX_BLOCK", 60)
        monkeypatch.setattr(som_module, "PAIR_BLOCK", 7)
    layer = SelfOrganizingMap(4, 5, topology)
    layer.initialize(_data(50, 3), "random")
    w = keras.ops.convert_to_numpy(layer.prototypes)
    ref = [np.mean([np.linalg.norm(w[i] - w[j]) for j in range(20) if _ref_adjacent(i, j, 5, topology)])
           for i in range(20)]
    np.testing.assert_allclose(layer.u_matrix().ravel(), ref, rtol=1e-5)


def test_pca_init_spans_the_first_two_components():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(500, 2)) * [3.0, 1.0]) @ np.array([[0.6, 0.8, 0, 0], [0, 0, 1, 0]]) + 5  # (500, 4)
    layer = SelfOrganizingMap(3, 4)
    layer.initialize(x, "pca")
    w = keras.ops.convert_to_numpy(layer.prototypes).reshape(3, 4, 4)
    std = np.sqrt(np.sort(np.linalg.eigvalsh(np.cov(x, rowvar=False)))[::-1][:2])
    np.testing.assert_allclose(w[1, :, :].mean(0), x.mean(0), atol=1e-4)  # centre row through the mean
    assert np.linalg.norm(w[2, 0] - w[0, 0]) == pytest.approx(2 * std[0], rel=1e-4)  # rows: +-1 std of PC 1
    assert np.linalg.norm(w[0, 3] - w[0, 0]) == pytest.approx(2 * std[1], rel=1e-4)  # cols: +-1 std of PC 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="rows"):
        SelfOrganizingMap(0, 5)
    with pytest.raises(ValueError, match="topology"):
        SelfOrganizingMap(2, 2, topology="toroidal")


def test_mixed_bfloat16_call_is_float32():
    x = _data(64, 16) + 0.1
    reference = SelfOrganizingMap(4, 4)
    reference.initialize(x, "pca")
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = SelfOrganizingMap(4, 4)
        layer.initialize(x, "pca")
        distances = layer(x)
        inputs = keras.Input((16,))
        symbolic = keras.Model(inputs, layer(inputs))(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert layer.compute_dtype == "bfloat16" and layer.prototypes.dtype == "float32"
    assert distances.dtype == "float32" and symbolic.dtype == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(distances), keras.ops.convert_to_numpy(reference(x)),
                               rtol=1e-5, atol=1e-5)  # no bfloat16 rounding of inputs or distances


def test_frozen_map_feeding_dense_in_a_user_model_trains_with_fit():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    x = (rng.normal(size=(300, 2)) * 0.3 + np.where(labels[:, None] == 1, 2.0, -2.0)).astype("float32")
    som = SelfOrganizingMap(3, 3)
    som.initialize(x, "pca")  # a map trained beforehand would come from zoo.models.SOM
    model = keras.Sequential([keras.Input((2,)), som, keras.layers.Dense(2, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    prototypes = keras.ops.convert_to_numpy(som.prototypes).copy()
    history = model.fit(x, labels, epochs=30, batch_size=32, verbose=0)
    assert not som.trainable_weights  # gradients never move the prototypes
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(som.prototypes), prototypes)
    assert history.history["accuracy"][-1] > 0.95


def _eigh_plane(x, rows, cols):
    """The PCA plane as `np.cov` + `np.linalg.eigh` give it (the layer's method until 2026-12)."""
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    std = np.sqrt(values[[-1, -2]])
    a = np.linspace(-1, 1, rows)[:, None, None] * std[0] * vectors[:, -1]
    b = np.linspace(-1, 1, cols)[None, :, None] * std[1] * vectors[:, -2]
    return x.mean(0) + a + b  # (rows, cols, D)


@pytest.mark.parametrize("n,d,iterations", [(1000, 120, 100), (1000, 120, 2), (400, 40, 100), (5, 100, 100)])
def test_pca_plane_is_the_eigh_plane_up_to_sign(n, d, iterations):
    """`_pca_plane` gives the plane of `np.cov` + `eigh` in float64 up to the signs of the axes
    (a flip of the grid's rows or columns; float32 covariance: to 1e-5), each axis signed so
    that its largest component is positive. Over 64 features by subspace iteration, or by
    `eigh` when that does not converge (2 iterations) and up to 64 features; 5 samples of 100
    features have rank 4. Spectrum: variance of component k = 0.85 ** k."""
    import functools
    from unittest import mock

    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    x = (rng.normal(size=(n, d)) * np.sqrt(0.85 ** np.arange(d))) @ basis.T + 3.0
    axes = functools.partial(som_module._principal_axes, max_iterations=iterations)
    with mock.patch.object(som_module, "_principal_axes", axes):
        plane = som_module._pca_plane(x, 4, 5).reshape(4, 5, d)
    reference = _eigh_plane(x, 4, 5)
    flips = [reference[::r, ::c] for r in (1, -1) for c in (1, -1)]
    assert min(np.abs(plane - f).max() for f in flips) < 1e-5 * np.abs(x).max()
    for axis in (plane[-1, 0] - plane[0, 0], plane[0, -1] - plane[0, 0]):  # along the rows, the columns
        assert axis[np.argmax(np.abs(axis))] > 0
