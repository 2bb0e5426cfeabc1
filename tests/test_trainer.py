"""The trainer on models it knows nothing about: metrics, validation, optimizers, signals."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from toy_models import ToyConfig, TrackerClassifier, classifier_data

from train.recipes import Recipe
from train.trainer import Built, Interrupted, optimizers, train

SCRIPTS = Path(__file__).parent / "scripts"


def _build(config):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8),
                              keras.layers.BatchNormalization(), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9), "mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32") + 3.0
    data = tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).repeat().batch(config.batch_size)
    return Built(model, data)


TOY = Recipe("toy", "a Dense + BatchNormalization regression", ToyConfig, {"default": ToyConfig()}, _build)


def test_checkpoint_holds_non_trainable_weights_and_ema_is_applied(tmp_path):
    config = ToyConfig(epochs=1, steps_per_epoch=5, batch_size=8, log_every=1)
    model = train(TOY, config, tmp_path / "run", strategy="one_device", verbose=False)
    assert list(optimizers(model)) == ["optimizer"]
    moving_mean = model.layers[1].moving_mean.numpy()
    assert np.abs(moving_mean).max() > 0  # batch statistics were tracked
    # The checkpoint restores every variable, batch-norm statistics included, into a fresh model.
    fresh = _build(config).model
    checkpoint = tf.train.Checkpoint(model_variables=list(fresh.variables))
    checkpoint.restore(tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))).expect_partial()
    np.testing.assert_allclose(fresh.layers[1].moving_mean.numpy(), moving_mean)
    # The final model holds the optimizer's moving average, as `fit` would leave it.
    average = model.optimizer._model_variables_moving_average
    for weight, ema in zip(model.trainable_variables, average):
        np.testing.assert_allclose(np.asarray(weight), np.asarray(ema))
    saved = keras.saving.load_model(tmp_path / "run" / "model.keras")
    x = np.ones((2, 4), "float32")
    np.testing.assert_allclose(np.asarray(saved(x)), np.asarray(model(x)), rtol=1e-6)


def test_trackers_and_validation_on_two_replicas_equal_one(tmp_path):
    """Tracker results (first kind of the metric contract) and global-mean shares (second
    kind), for training and for validation with an uneven last batch (17 = 8 + 8 + 1: one
    replica gets an empty batch), log the same numbers on 2 replicas as on 1."""
    result = subprocess.run([sys.executable, str(SCRIPTS / "tracker_replicas.py"), str(tmp_path)],
                            capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": "-1"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    one, two = report["one_device"], report["mirrored"]
    for tag in ("train/loss", "train/accuracy", "train/global_loss", "epoch/loss", "epoch/accuracy",
                "epoch/val_loss", "epoch/val_accuracy", "epoch/val_global_loss"):
        assert tag in one, (tag, sorted(one))
    assert one.keys() == two.keys()
    for tag in one:
        np.testing.assert_allclose(np.array(two[tag]), np.array(one[tag]), rtol=1e-5, err_msg=tag)
    # Trackers are reset each epoch and for validation: the validation loss tracker and the
    # global mean agree, and the first train step's tracker equals that step's batch mean.
    np.testing.assert_allclose([v for _, v in one["epoch/val_loss"]],
                               [v for _, v in one["epoch/val_global_loss"]], rtol=1e-5)
    assert one["train/loss"][0][1] == pytest.approx(one["train/global_loss"][0][1], rel=1e-5)
    # The validation accuracy is the final model's on the 17 validation examples (measured 6/17,
    # then 11/17): a tracker that kept training counts, or lost the uneven last batch, differs.
    final = keras.saving.load_model(tmp_path / "one_device" / "model.keras", compile=False,
                                    custom_objects={"TrackerClassifier": TrackerClassifier})
    x, y = classifier_data(17, 1)
    accuracy = np.mean(np.argmax(final.predict(x, verbose=0), axis=1) == y)
    assert one["epoch/val_accuracy"][-1][1] == pytest.approx(accuracy, rel=1e-6), (one["epoch/val_accuracy"], accuracy)


class TwoOptimizerModel(keras.Model):
    """Keeps its optimizers in a dict and declares them."""

    def __init__(self):
        super().__init__()
        self.a, self.b = keras.layers.Dense(1), keras.layers.Dense(1)
        self.opts = {"a": keras.optimizers.Adam(0.1), "b": keras.optimizers.Adam(0.01)}

    def call(self, x):
        return self.a(x) + self.b(x)

    def named_optimizers(self):
        return dict(self.opts)

    def build_optimizers(self):
        self.opts["a"].build(self.a.trainable_variables)
        self.opts["b"].build(self.b.trainable_variables)

    def train_step(self, data):
        x, y = data
        for layer, optimizer in ((self.a, self.opts["a"]), (self.b, self.opts["b"])):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean((self(x) - y) ** 2)
            optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables),
                                          layer.trainable_variables))
        return {"loss": loss}


def _build_two(config):
    model = TwoOptimizerModel()
    model.compile()
    model(np.zeros((1, 4), "float32"))
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    return Built(model, tf.data.Dataset.from_tensor_slices((x, x[:, :1])).repeat().batch(8))


class SignalAt(keras.callbacks.Callback):
    """Sends this process SIGTERM when epoch `epoch` begins, as a scheduler would."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.parametrize("multi_worker", [False, True], ids=["one_device", "multi_worker"])
def test_a_signal_saves_a_checkpoint_except_under_multi_worker(tmp_path, monkeypatch, multi_worker):
    """SIGTERM as epoch 1 (steps 6-10) begins: with a call per step (signals act between calls)
    the run stops after step 6. On one device it saves
    step 6; under multi_worker (a save needs every worker) the last periodic checkpoint, step 5
    at the end of epoch 0, stands. One process stands in: its strategy counts as multi_worker."""
    if multi_worker:
        monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", tf.distribute.OneDeviceStrategy)
    recipe = dataclasses.replace(TOY, build=lambda config: dataclasses.replace(_build(config), callbacks=[SignalAt(1)]))
    where = "the last periodic checkpoint stands" if multi_worker else "checkpoint saved"
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # never pytest's default (exit)
    try:
        with pytest.raises(Interrupted, match=f"^stopped by SIGTERM at step 6: {where}$"):
            train(recipe, ToyConfig(epochs=3, steps_per_epoch=5, batch_size=8, steps_per_call=1), tmp_path / "run",
                  strategy="one_device", verbose=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert latest.endswith("ckpt-5" if multi_worker else "ckpt-6"), latest


def test_declared_optimizers_in_a_dict_are_checkpointed_and_restored(tmp_path):
    recipe = Recipe("two", "two optimizers in a dict", ToyConfig, {"default": ToyConfig()}, _build_two)
    config = ToyConfig(epochs=1, steps_per_epoch=3, batch_size=8)
    model = train(recipe, config, tmp_path / "run", strategy="one_device", verbose=False)
    assert list(optimizers(model)) == ["a", "b"]
    names = [name for name, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")))]
    for key in ("a", "b"):
        assert any(n.startswith(f"{key}/") and "iteration" in n for n in names), (key, names)
    # A resumed run restores both optimizers' state: only epoch 1 trains, 3 more steps -> 6
    # iterations each (a run that restored nothing would train epochs 0 and 1 to 6 as well).
    epochs = []
    again = train(_epochs_logged(recipe, epochs), ToyConfig(epochs=2, steps_per_epoch=3, batch_size=8),
                  tmp_path / "run", strategy="one_device", verbose=False)
    assert epochs == [1] and [int(o.iterations.numpy()) for o in optimizers(again).values()] == [6, 6]


class EpochLog(keras.callbacks.Callback):
    """Records the epochs a run trains: a resumed run starts after its checkpoint's."""

    def __init__(self, epochs: list):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def _epochs_logged(recipe: Recipe, epochs: list) -> Recipe:
    """`recipe` whose runs append the epochs they train to `epochs`."""
    def build(config):
        built = recipe.build(config)
        return dataclasses.replace(built, callbacks=[*built.callbacks, EpochLog(epochs)])

    return dataclasses.replace(recipe, build=build)


def test_a_worker_that_is_not_the_chief_resumes_from_the_run_directory(tmp_path, monkeypatch):
    """Under multi_worker every worker restores the chief's checkpoints from the run directory
    (the README: put it where every worker can read it) and writes nothing there. One process
    plays a second worker: `is_chief` answers no, as it does for worker 1 of a cluster."""
    import train.trainer as trainer

    epochs, run_dir = [], tmp_path / "run"
    recipe = _epochs_logged(TOY, epochs)
    train(recipe, ToyConfig(epochs=1, steps_per_epoch=5, batch_size=8), run_dir, strategy="one_device", verbose=False)
    written = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")}
    monkeypatch.setattr(trainer, "is_chief", lambda strategy: False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the worker's own folder goes
    epochs.clear()
    model = train(recipe, ToyConfig(epochs=2, steps_per_epoch=5, batch_size=8), run_dir, strategy="one_device",
                  verbose=False)
    assert epochs == [1] and int(model.optimizer.iterations.numpy()) == 10  # resumed at step 5
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")} == written  # nothing written there
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # its temporary folder removed


def test_undeclared_optimizers_are_refused():
    class KerasIoGAN(keras.Model):  # optimizers as plain attributes, nothing declared
        def __init__(self):
            super().__init__()
            self.opts = {"a": keras.optimizers.Adam(), "b": keras.optimizers.Adam()}

    with pytest.raises(ValueError, match=r"opts\['a'\], opts\['b'\].*named_optimizers"):
        optimizers(KerasIoGAN())


class PhasedModel(keras.Model):
    """Counts the steps it ran in each phase: "a" before step 4, "b" from step 4 on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(1)
        self.counts = self.add_weight(shape=(2,), initializer="zeros", trainable=False, name="counts")
        self.phase = "a"

    def call(self, x):
        return self.dense(x)

    def begin_step(self, step: int) -> str:
        self.phase = "a" if step < 4 else "b"
        return self.phase

    def train_step(self, data):
        self.counts.assign_add(tf.constant([1.0, 0.0] if self.phase == "a" else [0.0, 1.0]))
        return {"phase_b": tf.constant(0.0 if self.phase == "a" else 1.0)}


def _build_phased(config):
    model = PhasedModel()
    model.compile(keras.optimizers.Adam())
    model(np.zeros((1, 2), "float32"))
    return Built(model, tf.data.Dataset.from_tensors((np.zeros((4, 2), "float32"),)).repeat())


def test_several_steps_per_call_change_nothing_but_round_trips(tmp_path):
    """`steps_per_call` 5 against 1: the same weights (BatchNormalization statistics and the
    optimizer's moving average included), the same logged values at the same steps, the same
    checkpoints; a call never crosses a phase change (`begin_step`)."""
    runs = {}
    for per_call in (1, 5):
        config = ToyConfig(epochs=2, steps_per_epoch=7, batch_size=8, log_every=3, checkpoint_every=4,
                           steps_per_call=per_call)
        model = train(TOY, config, tmp_path / str(per_call), strategy="one_device", verbose=False)
        rows = (tmp_path / str(per_call) / "metrics.csv").read_text().splitlines()
        checkpoints = tf.train.get_checkpoint_state(str(tmp_path / str(per_call) / "checkpoints"))
        runs[per_call] = ([np.array(v) for v in model.variables], rows, checkpoints.all_model_checkpoint_paths)
    (weights_1, rows_1, kept_1), (weights_5, rows_5, kept_5) = runs[1], runs[5]
    for a, b in zip(weights_1, weights_5):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert [r.split(",")[:3] for r in rows_1] == [r.split(",")[:3] for r in rows_5]
    np.testing.assert_allclose([float(r.split(",")[3]) for r in rows_1[1:]],
                               [float(r.split(",")[3]) for r in rows_5[1:]], rtol=1e-5)
    assert [Path(p).name for p in kept_1] == [Path(p).name for p in kept_5]
    phased = Recipe("phased", "two phases", ToyConfig, {"default": ToyConfig()}, _build_phased)
    model = train(phased, ToyConfig(epochs=1, steps_per_epoch=9, batch_size=4, log_every=9, steps_per_call=50),
                  tmp_path / "phased", strategy="one_device", verbose=False)
    assert model.counts.numpy().tolist() == [4.0, 5.0]


def test_one_replica_on_the_cpu_reads_the_dataset_itself():
    """`distribute`: no distributed iterator for one CPU replica (it would only copy each batch
    to the device it is on); other strategies get one. Neither shards a one-worker pipeline."""
    from train.trainer import distribute

    dataset = tf.data.Dataset.range(4).batch(2)
    off = tf.data.experimental.AutoShardPolicy.OFF
    one = distribute(tf.distribute.OneDeviceStrategy("/cpu:0"), dataset)
    assert isinstance(one, tf.data.Dataset)
    assert one.options().experimental_distribute.auto_shard_policy == off
    assert [batch.numpy().tolist() for batch in one] == [[0, 1], [2, 3]]
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    spread = distribute(mirrored, dataset)
    assert not isinstance(spread, tf.data.Dataset)
    assert [mirrored.experimental_local_results(batch)[0].numpy().tolist() for batch in spread] == [[0, 1], [2, 3]]
