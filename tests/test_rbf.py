"""RBFNetwork and `python -m train rbf`: steps, saving, tiny runs of both tasks, `zoo predict`,
and the bad inputs (more centres than samples, an empty CSV, a missing label column)."""

import json
import os
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, check_train_step, run_here
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from train.recipes.rbf import PRESETS, plot_fit, sine_data
from zoo.data.text import numeric_label_column as label_index
from zoo.errors import UserError
from zoo.models import RBFNetwork


def tensorboard_tags(run_dir):
    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    return events, set(events.Tags()["tensors"])


def test_regression_steps_and_keras_round_trip():
    x, y = sine_data(64, 0.1, seed=0)
    model = RBFNetwork(1, 8, 1)
    model.rbf.adapt(x)
    model.compile(keras.optimizers.Adam(0.01))
    logs = check_train_step(model, [(x[:32], y[:32]), (x[32:], y[32:])])
    assert set(logs[0]) == {"mse"}
    assert model.test_step((x, y))["mse"] > 0
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rbf.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    assert isinstance(loaded, RBFNetwork) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict_values(x), model.predict_values(x), atol=1e-6)
    result = loaded.predict_samples(x[:2])
    assert result[0]["probabilities"] == {}
    assert float(result[0]["label"]) == pytest.approx(result[0]["value"][0], rel=1e-5)


def test_classifier_predicts_labels_and_probabilities():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = RBFNetwork(3, 6, 2, "classification", class_names=["neg", "pos"])
    model.rbf.adapt(x)
    model.compile(keras.optimizers.Adam(0.05))
    assert set(check_train_step(model, [(x, y)])[0]) == {"cross_entropy", "accuracy"}
    history = model.fit(x, y, epochs=20, batch_size=20, verbose=0)
    assert history.history["accuracy"][-1] >= 0.8
    results = model.predict_samples(x[:3])
    assert all(r["label"] in ("neg", "pos") and sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-5)
               for r in results)
    with pytest.raises(UserError, match="takes samples of 3 value"):
        model.predict_samples(np.zeros((1, 2)))


def test_plot_fit_draws_target_model_points_and_centres():
    grid = np.linspace(-1, 1, 50)
    picture = plot_fit(np.stack([grid, np.sin(5 * grid)], 1), grid, np.sin(5 * grid), np.zeros(50), [0.0],
                       size=(60, 100))
    assert picture.shape == (60, 100, 3) and picture.dtype == np.uint8
    colours = {tuple(c) for c in picture.reshape(-1, 3)}
    assert {(40, 90, 220), (220, 40, 40), (0, 0, 0), (150, 150, 150)} <= colours


def test_label_column_by_name_index_or_last():
    names = ["a", "b", "Label"]
    assert label_index("", names, "f.csv") == 2 and label_index("0", names, "f.csv") == 0
    assert label_index("label", names, "f.csv") == 2
    with pytest.raises(UserError, match="'target' does not exist in f.csv: the columns are 0: 'a', 1: 'b', 2: 'Label'"):
        label_index("target", names, "f.csv")


def test_presets_are_valid():
    assert PRESETS["default"].units == 24 and PRESETS["tiny"].units == 8


# ----------------------------------------------------------------------------- command lines

def train(run_dir, *flags):
    return run_here(["train", "rbf", "--preset", "tiny", "--quiet", "--run-dir", str(run_dir), *flags])


def test_tiny_regression_run_and_predict(tmp_path):
    result = train(tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    events, tags = tensorboard_tags(tmp_path / "run")
    assert {"epoch/val_rmse", "epoch/val_mse", "train/mse", "fit/fit"} <= tags, tags
    png = tf.make_ndarray(events.Tensors("fit/fit")[-1].tensor_proto)[2]
    assert tf.io.decode_png(png).shape == (240, 480, 3)
    predicted = run_here(["zoo", "predict", str(tmp_path / "run"), "0.3", "-0.5", "--json"])
    assert predicted.returncode == 0, predicted.stderr
    values = [p["value"][0] for p in json.loads(predicted.stdout)["predictions"]]
    assert len(values) == 2 and all(np.isfinite(values))
    line = run_here(["zoo", "predict", str(tmp_path / "run"), "0.3"])
    assert line.returncode == 0 and line.stdout.split()[-1] == "0.3", line.stdout


def test_tiny_classification_run_on_mnist_and_predict(tmp_path):
    result = train(tmp_path / "run", "--task", "classify")
    assert result.returncode == 0, result.stderr[-3000:]
    _, tags = tensorboard_tags(tmp_path / "run")
    assert {"epoch/val_accuracy", "epoch/val_cross_entropy", "confusion_matrix"} <= tags, tags
    samples = tmp_path / "digits.npy"
    np.save(samples, np.zeros((2, 784), np.float32))
    predicted = run_here(["zoo", "predict", str(tmp_path / "run"), "--file", str(samples), "--json"])
    assert predicted.returncode == 0, predicted.stderr
    for p in json.loads(predicted.stdout)["predictions"]:
        assert p["label"] in [str(i) for i in range(10)] and len(p["probabilities"]) == 10


def test_tiny_classification_of_a_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    rows = [f"{a:.4f},{b:.4f},{int(a > 0)}" for a, b in x]
    (tmp_path / "t.csv").write_text("f1,f2,label\n" + "\n".join(rows) + "\n")
    result = train(tmp_path / "run", "--task", "classify", "--data", tmp_path / "t.csv", "--centres", "4")
    assert result.returncode == 0, result.stderr[-3000:]
    predicted = run_here(["zoo", "predict", str(tmp_path / "run"), "1.5,0", "--json"])
    assert json.loads(predicted.stdout)["predictions"][0]["label"] in ("0", "1")


def test_more_centres_than_samples(tmp_path):
    result = train(tmp_path / "run", "--centres", "100", "--samples", "50")
    assert_user_error(result, "--centres 100 is more than the 50 training samples")
    assert not (tmp_path / "run").exists()


def test_empty_csv_and_missing_label_column(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    assert_user_error(train(tmp_path / "a", "--data", tmp_path / "empty.csv"), "empty.csv is empty")
    (tmp_path / "t.csv").write_text("f1,f2,y\n1,2,3\n4,5,6\n")
    assert_user_error(train(tmp_path / "b", "--data", tmp_path / "t.csv", "--label-column", "target"),
                      "--label-column 'target' does not exist", "0: 'f1', 1: 'f2', 2: 'y'")
