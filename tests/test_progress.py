"""The trainer's progress output and metrics.csv: recent values, true on any number of replicas,
plain lines when stdout is not a terminal, a metrics file that a resumed run continues."""

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from toy_models import ToyConfig

from train.progress import MetricsFile, ProgressLine, RecentMeans
from train.recipes import Recipe
from train.trainer import Built, train
from zoo.models import global_mean

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).parents[1]
CONTROL = re.compile(r"[\r\b\x1b]")


class Counting(keras.Model):
    """Reports the step's number (0, 1, 2, ...) both as a Mean tracker's result (`count`, the
    metric contract's first kind) and as a global-mean share (`share`, the second kind), so
    the mean of any window of steps is known."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.count_tracker = keras.metrics.Mean(name="count")

    def call(self, x):
        return self.dense(x)

    @property
    def metrics(self):
        return [self.count_tracker]

    def train_step(self, data):
        x, y = data
        number = tf.fill(tf.shape(x)[:1], tf.cast(self.optimizer.iterations, "float32"))  # (B,)
        with tf.GradientTape() as tape:
            loss = global_mean(tf.reduce_sum((self(x) - y) ** 2, axis=-1))
        self.optimizer.apply_gradients(zip(tape.gradient(loss, self.trainable_variables),
                                           self.trainable_variables))
        self.count_tracker.update_state(number)
        return {"count": self.count_tracker.result(), "share": global_mean(number)}

    def test_step(self, data):
        x, y = data
        return {"loss": global_mean(tf.reduce_sum((self(x) - y) ** 2, axis=-1))}


def _build_counting(config):
    model = Counting()
    model.compile(keras.optimizers.SGD(0.01))
    model(np.zeros((1, 4), "float32"))
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    data = tf.data.Dataset.from_tensor_slices((x, x[:, :1]))
    return Built(model, data.repeat().batch(config.batch_size), data.batch(8))


COUNTING = Recipe("counting", "reports its step number", ToyConfig, {"default": ToyConfig()}, _build_counting)
# Log steps 2, 4 | 6, 8, 10: step 5 ends epoch 1 unlogged, and a window restarts with the epoch.
CONFIG = ToyConfig(epochs=2, steps_per_epoch=5, batch_size=8, log_every=2)
WINDOWS = {2: [0, 1], 4: [2, 3], 6: [5], 8: [6, 7], 10: [8, 9]}  # log step -> step numbers shown


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("step ")]


def _shown(line: str) -> dict[str, float]:
    """`step 4/10  epoch 1/2  count 2.5  share 2.5  3.1 steps/s  eta 2s` -> {"count": 2.5, ...}."""
    pairs = [part.split(" ") for part in line.split("  ")[2:] if not re.search(r"steps/s$|^eta ", part)]
    return {name: float(value) for name, value in pairs}


def _rows(run_dir: Path) -> list[dict]:
    text = (run_dir / "metrics.csv").read_text()
    assert text.startswith("step,epoch,name,value\n") and text.count("step,epoch") == 1 and text.endswith("\n")
    return list(csv.DictReader(io.StringIO(text)))


def test_piped_output_is_one_plain_line_per_log_step_with_recent_means(tmp_path, capsys):
    train(COUNTING, CONFIG, tmp_path / "run", strategy="one_device", verbose=True)
    output = capsys.readouterr().out
    assert not CONTROL.search(output), repr(output[:300])
    lines = _lines(output)
    assert [int(re.match(r"step (\d+)/10  epoch (\d)/2", line)[1]) for line in lines] == list(WINDOWS)
    for line, (step, numbers) in zip(lines, WINDOWS.items()):
        # The mean of the window's steps: neither the epoch so far (2: 1.5) nor the run so far.
        assert _shown(line) == {"count": np.mean(numbers), "share": np.mean(numbers)}, line
        assert line.startswith(f"step {step}/10  epoch {(step - 1) // 5 + 1}/2  count")
    epochs = [line for line in output.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 2 and all(re.fullmatch(r"epoch [12]/2  val_loss \S+", line) for line in epochs), epochs


def test_metrics_file_holds_the_logged_scalars_and_a_resume_continues_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    train(COUNTING, ToyConfig(epochs=1, steps_per_epoch=5, batch_size=8, log_every=2), run_dir,
          strategy="one_device", verbose=False)
    assert capsys.readouterr().out == ""  # verbose=False: no progress, the file all the same
    first = _rows(run_dir)
    assert sorted({int(r["step"]) for r in first}) == [2, 4, 5]
    # Scalars as TensorBoard holds them: a tracker's mean over the epoch so far, a share's step value.
    values = {(int(r["step"]), r["name"]): float(r["value"]) for r in first}
    assert values[4, "train/count"] == 1.5 and values[4, "train/share"] == 3.0
    assert values[5, "epoch/count"] == 2.0 and values[5, "epoch/share"] == 2.0 and (5, "epoch/val_loss") in values
    assert values[2, "learning_rate/optimizer"] == pytest.approx(0.01)
    assert {r["epoch"] for r in first} == {"1"}
    # A crashed attempt wrote rows after the last checkpoint (step 5), the last one cut short.
    with (run_dir / "metrics.csv").open("a") as file:
        file.write("6,2,train/count,999.0\n6,2,train/share,999.0\n8,2,train/co")
    train(COUNTING, CONFIG, run_dir, strategy="one_device", verbose=True)
    lines = _lines(capsys.readouterr().out)
    assert [_shown(line)["count"] for line in lines] == [5.0, 6.5, 8.5]  # steps 6, 8, 10
    rows = _rows(run_dir)
    assert rows[:len(first)] == first  # kept as written
    keys = [(int(r["step"]), r["name"]) for r in rows]
    assert len(keys) == len(set(keys)), "a step logged twice"
    assert sorted({step for step, _ in keys}) == [2, 4, 5, 6, 8, 10]
    values = {key: float(r["value"]) for key, r in zip(keys, rows)}
    assert values[6, "train/count"] == 5.0 and values[10, "epoch/count"] == 7.0
    assert {int(r["epoch"]) for r in rows if int(r["step"]) > 5} == {2}
    assert not list(run_dir.glob(".*tmp*"))


def test_two_replicas_show_the_values_of_one(tmp_path):
    """Tracker results (N times too large if summed over N replicas) and global-mean shares,
    on the progress lines and in metrics.csv, are the same on 2 replicas as on 1."""
    result = subprocess.run([sys.executable, str(SCRIPTS / "progress_replicas.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    one, two = report["one_device"], report["mirrored"]
    assert len(_lines(one["output"])) == len(_lines(two["output"])) == 4  # steps 3, 6, 9, 12
    for line_1, line_2 in zip(_lines(one["output"]), _lines(two["output"])):
        shown_1, shown_2 = _shown(line_1), _shown(line_2)
        assert shown_1.keys() == shown_2.keys() == {"loss", "accuracy", "global_loss"}
        for name in shown_1:
            assert shown_2[name] == pytest.approx(shown_1[name], rel=2e-3, abs=1e-4), (name, line_1, line_2)
        # The loss tracker's window mean is the mean of the window's batch losses.
        assert shown_1["loss"] == pytest.approx(shown_1["global_loss"], rel=2e-3), line_1
    epochs = [[line for line in run["output"].splitlines() if line.startswith("epoch ")] for run in (one, two)]
    assert len(epochs[0]) == 2 and epochs[0] == epochs[1]
    rows_1, rows_2 = (list(csv.DictReader(io.StringIO(run["metrics"]))) for run in (one, two))
    assert [(r["step"], r["name"]) for r in rows_1] == [(r["step"], r["name"]) for r in rows_2]
    np.testing.assert_allclose([float(r["value"]) for r in rows_2], [float(r["value"]) for r in rows_1], rtol=1e-5)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_on_a_terminal_and_elsewhere():
    piped, terminal = io.StringIO(), _Terminal()
    for stream in (piped, terminal):
        line = ProgressLine(total_steps=4, steps_per_epoch=2, epochs=2, start=0, stream=stream)
        for step in range(1, 5):
            line.update(step, {"loss": 1.0 / step} if step % 2 == 0 else None)
            if step % 2 == 0:
                line.epoch_end(step, step // 2 - 1, {"loss": 0.5, "val_loss": 0.25})
    text = piped.getvalue()
    assert not CONTROL.search(text)
    assert [line.split("  ")[:3] for line in text.splitlines()] == [
        ["step 2/4", "epoch 1/2", "loss 0.5"], ["epoch 1/2", "val_loss 0.25"],
        ["step 4/4", "epoch 2/2", "loss 0.25"], ["epoch 2/2", "val_loss 0.25"]]
    drawn = terminal.getvalue()
    assert drawn.count("\r") >= 4 and drawn.count("\n") == 4  # one bar line and one result line per epoch
    # The speed before the values: a bar cut to the terminal's width keeps it.
    assert re.search(r"\r\[={10}\.{10}\] step 2/4  epoch 1/2  \S+ steps/s  eta \S+  loss 0\.5\x1b\[K",
                     drawn), drawn


def test_metrics_file_rows_until_the_resume_step(tmp_path):
    path = tmp_path / "metrics.csv"
    metrics = MetricsFile(path, 0)
    assert path.read_text() == "step,epoch,name,value\n"
    metrics.write(1, 1, {"train/loss": np.float32(0.5), "train/odd, name": 2})
    metrics.write(2, 1, {"train/loss": tf.constant(0.25)})
    MetricsFile(path, 1)  # resumed at step 1: step 2 goes
    assert path.read_text() == 'step,epoch,name,value\n1,1,train/loss,0.5\n1,1,"train/odd, name",2.0\n'
    untouched = path.stat().st_mtime_ns
    MetricsFile(path, 1)  # nothing to drop: the file is not rewritten
    assert path.stat().st_mtime_ns == untouched


def test_recent_means_of_each_kind_of_value():
    """A Mean-style tracker: the change of its total over the change of its count; another
    tracker: its value as logged; anything else (also a `loss` that compile() made a tracker
    for but nothing updates): the batch-size weighted mean of the steps since the last read."""

    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.mean, self.sum = keras.metrics.Mean(name="mean"), keras.metrics.Sum(name="sum")

        def call(self, x):
            return x

    model = Model()
    model.compile(keras.optimizers.SGD())  # no loss: an unused `loss` tracker
    assert "loss" in [m.name for m in model.metrics]
    recent = RecentMeans(model)
    for values, examples in (([1.0, 3.0], 2), ([5.0] * 6, 6)):
        model.mean.update_state(values)
        model.sum.update_state(values)
        recent.add({"mean": 99.0, "sum": 99.0, "loss": sum(values) / examples}, examples)
    logged = {"mean": float(model.mean.result()), "sum": float(model.sum.result()), "loss": 5.0}
    assert recent.read(logged) == {"mean": 4.25, "sum": 34.0, "loss": 4.25}  # 34 / 8
    model.mean.update_state([10.0, 20.0])
    recent.add({"mean": 99.0, "sum": 99.0, "loss": 7.0}, 2)
    assert recent.read({**logged, "loss": 7.0}) == {"mean": 15.0, "sum": 34.0, "loss": 7.0}
