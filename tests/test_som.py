"""SOM model (batch-SOM train_step, errors, predict_samples, saving, 2 replicas = 1) and the
`python -m train som` / `python -m zoo predict` command lines, with their bad inputs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, run_here
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from zoo.errors import UserError
from zoo.models import SOM

ROOT = Path(__file__).parents[1]


def _uniform_grid(n=30):
    g = np.linspace(0, 1, n)
    return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2).astype("float32")  # (n*n, 2)


def _fit(model, x, steps):
    model.compile()
    return model.fit(x, batch_size=len(x), epochs=steps, verbose=0, shuffle=False)


def test_quantization_error_falls():
    x = np.random.default_rng(0).random((400, 3)).astype("float32") ** 2  # a curved cloud: PCA is not the answer
    model = SOM(6, 6, sigma_start=3.0, sigma_end=0.6, decay_steps=25)
    model.initialize(x, "pca")
    before = model.errors(x)["quantization_error"]
    history = _fit(model, x, 25)
    qe = history.history["quantization_error"]  # of the map before each step
    assert model.errors(x)["quantization_error"] < 0.7 * before
    assert qe[-1] < 0.8 * qe[0] and all(b <= a + 1e-6 for a, b in zip(qe[5:], qe[6:])), qe  # steady fall


@pytest.mark.parametrize("topology", ["rectangular", "hexagonal"])
def test_topographic_error_small_on_a_uniform_grid(topology):
    x = _uniform_grid()
    model = SOM(8, 8, topology, sigma_start=6.0, sigma_end=0.7, decay_steps=40)
    model.initialize(x, "random", seed=0)  # a tangled start
    assert model.errors(x)["topographic_error"] > 0.5
    _fit(model, x, 40)
    errors = model.errors(x)
    assert errors["topographic_error"] < 0.02, errors
    assert errors["quantization_error"] < 0.06, errors  # about half a cell of the 8x8 map over [0, 1]^2


def test_schedules_decay_from_start_to_end():
    model = SOM(3, 3, sigma_start=4.0, sigma_end=0.5, learning_rate_start=1.0, learning_rate_end=0.1,
                decay_steps=11)
    start, middle, end, after = (tuple(float(v) for v in model.schedules(s)) for s in (0, 5, 10, 30))
    assert start == pytest.approx((4.0, 1.0)) and end == pytest.approx((0.5, 0.1)) and after == end
    assert middle == pytest.approx((np.sqrt(4.0 * 0.5), np.sqrt(0.1)))  # geometric halfway


def test_train_step_logs_and_counts_steps():
    x = _uniform_grid(10)
    model = SOM(3, 4, sigma_start=2.0, decay_steps=5)
    model.initialize(x, "pca")
    before = keras.ops.convert_to_numpy(model.som.prototypes).copy()
    logs = model.train_step(tf.constant(x))
    assert set(logs) == {"quantization_error", "topographic_error", "sigma", "learning_rate"}
    assert float(logs["quantization_error"]) == pytest.approx(
        np.linalg.norm(x[:, None] - before[None], axis=-1).min(1).mean(), rel=1e-5)  # of the map before the update
    assert float(logs["sigma"]) == pytest.approx(2.0) and int(model.steps_done.numpy()) == 1
    assert not np.allclose(keras.ops.convert_to_numpy(model.som.prototypes), before)
    assert not model.trainable_weights


def _labelled_clusters():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    x = (rng.normal(size=(200, 4)) * 0.2 + np.where(labels[:, None] == 1, 1.0, -1.0)).astype("float32")
    return x, labels


def test_predict_samples_and_keras_round_trip(tmp_path):
    x, labels = _labelled_clusters()
    model = SOM(4, 4, "hexagonal", sigma_start=2.0, decay_steps=10, class_names=["minus", "plus"])
    model.initialize(x, "pca")
    _fit(model, x, 10)
    model.label_units(x, labels)
    results = model.predict_samples(x[:20])
    best = model(x[:20])["index"].numpy()
    for result, unit, label in zip(results, best, labels[:20]):
        assert result["unit"] == unit and result["position"] == [unit // 4, unit % 4]
        assert result["label"] == ["minus", "plus"][label]  # the clusters are apart: every unit is pure
        assert result["probabilities"][result["label"]] == 1.0
    np.testing.assert_allclose([r["distance"] for r in results], model(x[:20])["distance"], rtol=1e-6)
    model.save(tmp_path / "som.keras")
    loaded = keras.saving.load_model(tmp_path / "som.keras")  # safe mode
    assert isinstance(loaded, SOM) and loaded.get_config() == model.get_config()
    assert int(loaded.steps_done.numpy()) == 10
    assert loaded.predict_samples(x[:20]) == results
    np.testing.assert_array_equal(loaded.hit_map(x), model.hit_map(x))
    with pytest.raises(UserError, match="samples of 4 values, got 3"):
        loaded.predict_samples(x[:2, :3])


def test_predict_samples_without_labels():
    x = _uniform_grid(8)
    model = SOM(2, 3)
    model.initialize(x, "pca")
    result = model.predict_samples(x[:1])[0]
    assert result["label"] == f"unit {result['unit']}" and "probabilities" not in result


@pytest.mark.parametrize("grid", [("rectangular", "gaussian"), ("hexagonal", "bubble")])
def test_two_replicas_equal_one_replica(grid):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "tests/scripts/som_replicas.py"), *grid],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == [1, 2] and report["steps"] == [3, 3]
    assert report["min_prototype_change"] > 1e-3  # every unit moved
    assert report["max_prototype_diff"] < 1e-5
    for one, two in zip(report["logs_1"], report["logs_2"]):  # train steps, then test_step
        assert one.keys() == two.keys()
        for name in one:
            assert np.isclose(one[name], two[name], rtol=1e-5), (name, one, two)


# ----------------------------------------------------------------------------- command lines

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("som") / "run"
    result = run_here(["train", "som", "--preset", "tiny", "--run-dir", run_dir, "--quiet"])
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_tiny_run_writes_pictures_errors_and_projector(tiny_run):
    assert (tiny_run / "model.keras").is_file()
    events = EventAccumulator(str(tiny_run / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"som/u_matrix", "som/prototypes", "som/hit_map", "epoch/val_quantization_error",
            "epoch/val_topographic_error", "train/quantization_error", "train/sigma"} <= tags, tags
    hit_map = tf.image.decode_png(tf.make_ndarray(events.Tensors("som/hit_map")[-1].tensor_proto)[2]).numpy()
    assert hit_map.shape[-1] == 3 and len(np.unique(hit_map.reshape(-1, 3), axis=0)) > 2  # coloured by label
    config = (tiny_run / "logs" / "projector_config.pbtxt").read_text()
    assert "sprite.png" in config and "metadata.tsv" in config
    assert len((tiny_run / "logs" / "metadata.tsv").read_text().splitlines()) == 20  # 4x5 prototypes


def test_scalars_are_what_tf_summary_scalar_writes(tiny_run, tmp_path):
    events = EventAccumulator(str(tiny_run / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    with tf.summary.create_file_writer(str(tmp_path)).as_default(step=1):
        tf.summary.scalar("reference", 0.5)
    reference = EventAccumulator(str(tmp_path))
    reference.Reload()
    assert events.SummaryMetadata("train/sigma") == reference.SummaryMetadata("reference")  # the scalars plugin
    first = events.Tensors("train/sigma")[0]
    value = tf.make_ndarray(first.tensor_proto)
    assert first.step == 1 and value.dtype == np.float32 and value.shape == ()
    rows = [line.split(",") for line in (tiny_run / "metrics.csv").read_text().splitlines()]
    logged = next(float(r[3]) for r in rows if r[0] == "1" and r[2] == "train/sigma")
    assert float(value) == np.float32(logged)


def test_predict_maps_samples_to_grid_positions(tiny_run, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((3, 784)).astype("float32"))
    row = ",".join(["0.1"] * 784)
    result = run_here(["zoo", "predict", tiny_run, row, "--file", tmp_path / "x.npy", "--json"])
    assert result.returncode == 0, result.stderr[-2000:]
    predictions = json.loads(result.stdout)["predictions"]
    assert len(predictions) == 4
    for p in predictions:
        row_, col = p["position"]
        assert 0 <= row_ < 4 and 0 <= col < 5 and p["unit"] == row_ * 5 + col and p["distance"] > 0
        assert p["label"] in [str(d) for d in range(10)]  # MNIST digits: each unit's majority label
    text = run_here(["zoo", "predict", tiny_run, "--file", tmp_path / "x.npy"])
    assert text.returncode == 0 and text.stdout.count("grid position (") == 3, text.stdout
    assert_user_error(run_here(["zoo", "predict", tiny_run, "0.1,0.2"]), "784 values, got 2")


def test_numeric_csv_run_and_predict(tmp_path):
    rows = np.random.default_rng(0).random((80, 3))
    (tmp_path / "table.csv").write_text("a,b,c\n" + "".join(f"{r[0]:.4f},{r[1]:.4f},{r[2]:.4f}\n" for r in rows))
    run_dir = tmp_path / "run"
    result = run_here(["train", "som", "--preset", "tiny", "--data", tmp_path / "table.csv", "--grid", "3x3",
                      "--topology", "hexagonal", "--run-dir", run_dir, "--quiet"])
    assert result.returncode == 0, result.stderr[-3000:]
    predicted = run_here(["zoo", "predict", run_dir, "0.5,0.5,0.5"])
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert "grid position (" in predicted.stdout and predicted.stdout.startswith("unit ")


def test_bad_inputs(tmp_path):
    assert_user_error(run_here(["train", "som", "--grid", "0x20"]), "--grid", "positive")
    (tmp_path / "empty.csv").write_text("")
    assert_user_error(run_here(["train", "som", "--preset", "tiny", "--data", tmp_path / "empty.csv",
                               "--run-dir", tmp_path / "r1"]), "empty.csv")
    (tmp_path / "words.csv").write_text("x,name\n1.0,cat\n2.0,dog\n")
    assert_user_error(run_here(["train", "som", "--preset", "tiny", "--data", tmp_path / "words.csv",
                               "--run-dir", tmp_path / "r2"]), "words.csv", "'cat' is not a finite number")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()  # nothing half-written


def _numpy_batch_som(x, w, cols, steps, sigma, rate, decay_steps):
    """Kohonen's batch SOM written out in float64 NumPy (rectangular grid, Gaussian): `steps`
    updates `w <- (1 - lr) w + lr * sum_i h(b_i, j) x_i / sum_i h(b_i, j)`, radius and rate
    decaying exponentially from `sigma[0]`, `rate[0]` to `sigma[1]`, `rate[1]` over
    `decay_steps`. Returns the prototypes and the quantization error before each update."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    row, col = np.divmod(np.arange(len(w)), cols)
    positions = np.stack([col, row], axis=1).astype(np.float64)
    errors = []
    for step in range(steps):
        progress = min(step / max(decay_steps - 1, 1), 1.0)
        s, lr = (a * (b / a) ** progress for a, b in (sigma, rate))
        distance = np.linalg.norm(x[:, None] - w[None], axis=-1)  # (N, U)
        best = distance.argmin(axis=1)
        errors.append(distance.min(axis=1).mean())
        h = np.exp(-((positions[best][:, None] - positions[None]) ** 2).sum(-1) / (2 * s**2))  # (N, U)
        w = (1 - lr) * w + lr * (h.T @ x) / h.sum(axis=0)[:, None]
    return w, errors


def test_recipe_run_trains_the_numpy_batch_som(tmp_path):
    """`python -m train som`'s path in-process (the recipe's pipeline, the trainer's step, the
    errors from the evaluation's pass) on a whole-batch table: the NumPy batch SOM's prototypes
    and errors, step by step."""
    import csv

    from train.recipes import get_recipe
    from train.recipes.som import load_samples
    from train.trainer import train

    rng = np.random.default_rng(3)
    table = rng.normal(size=(300, 6)) * [3.0, 2.0, 1.0, 1.0, 0.5, 0.5] + rng.integers(0, 2, (300, 1)) * 4.0
    (tmp_path / "table.csv").write_text("".join(",".join(f"{v:.5f}" for v in row) + "\n" for row in table))
    recipe = get_recipe("som")
    config = recipe.config_class(data=str(tmp_path / "table.csv"), samples=0, batch_size=300, grid=(4, 5),
                                 epochs=1, steps_per_epoch=6, sigma_start=2.5, sigma_end=0.7,
                                 learning_rate_start=1.0, learning_rate_end=0.5, precision="float32")
    x = load_samples(config, config.data, "train")[0]
    start = SOM(4, 5)
    start.initialize(x, "pca")
    expected, errors = _numpy_batch_som(x, start.som.prototypes.numpy(), 5, 6, (2.5, 0.7), (1.0, 0.5), 6)
    built = recipe.build(config)  # every batch is the whole sample: one tensor, which rewrites would only copy
    assert built.train_data.options().experimental_optimization.apply_default_optimizations is False
    model = train(recipe, config, tmp_path / "run", verbose=False)
    np.testing.assert_allclose(model.som.prototypes.numpy(), expected, rtol=1e-5, atol=1e-5)
    with (tmp_path / "run" / "metrics.csv").open() as file:
        logged = {(int(row["step"]), row["name"]): float(row["value"]) for row in csv.DictReader(file)}
    np.testing.assert_allclose([logged[step + 1, "train/quantization_error"] for step in range(6)], errors,
                               rtol=1e-5)  # of the map before each update
    final = np.linalg.norm(x[:, None] - expected[None], axis=-1).min(axis=1).mean()
    assert logged[6, "epoch/val_quantization_error"] == pytest.approx(final, rel=1e-5)  # of the trained map
    assert logged[6, "epoch/val_topographic_error"] == pytest.approx(model.errors(x)["topographic_error"])
