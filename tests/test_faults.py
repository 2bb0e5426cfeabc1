"""Faults a long run meets: SIGKILL at any moment (exact resume), NaN losses, damaged
checkpoints, unwritable or full run directories, and settings that cannot work."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, assert_user_error, run_cli, run_here
from toy_models import ToyConfig

from train.recipes import Recipe
from train.trainer import Built, Diverged, train

TINY = ["gan_superres", "--preset", "tiny"]


# ----------------------------------------------------------------------------- exact resume

def test_crash_campaign_two_real_sigkills_end_with_the_uninterrupted_weights(tmp_path):
    """The short version of tools/crash_campaign.py (the README has the 20-kill table), on the
    quickest recipe: the tool itself is tested here; every recipe's exact resume after a
    mid-epoch SIGKILL is in test_recipe_guarantees.py (gan_superres there streams its folder).
    Tiny rbf checkpoints only at its epoch end (step 5 of 10), so kill 1 lands after it and
    kill 2, with no checkpoint left before the end, during start-up."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "crash_campaign.py"), "rbf", "--kills", "2", "--work", str(tmp_path),
         "--", "--preset", "tiny"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.split()[:1] in (["1"], ["2"])]
    assert [row.split()[-1] for row in rows] == ["killed", "killed"] and "s after start" in rows[1], result.stdout
    assert "real interruptions (SIGKILL of a running process): 2 of the 2 asked" in result.stdout, result.stdout
    assert "final weights identical to the uninterrupted run: True" in result.stdout, result.stdout


class CounterModel(keras.Model):
    """Records which batches it was trained on (the batch value is its index in the stream)."""

    def __init__(self):
        super().__init__()
        self.seen = self.add_weight(shape=(12,), initializer="zeros", trainable=False, name="seen")
        self.w = self.add_weight(shape=(), initializer="ones", name="w")

    def call(self, x):
        return x * self.w

    def train_step(self, batch):
        self.seen.assign(self.seen + tf.one_hot(tf.cast(batch[0], tf.int32), 12))
        return {"loss": tf.reduce_sum(batch) * 0.0}


def _build_counter(config):
    model = CounterModel()
    model.compile(keras.optimizers.SGD())
    model(np.zeros((1,), "float32"))
    return Built(model, tf.data.Dataset.range(1000).map(lambda i: tf.cast(i, tf.float32)).batch(1))


def test_resume_continues_the_data_stream_where_it_stopped(tmp_path):
    """Batch k of a resumed run is batch k of the stream: each of 12 batches seen exactly once."""
    recipe = Recipe("counter", "counts batches", ToyConfig, {"default": ToyConfig()}, _build_counter)
    train(recipe, ToyConfig(epochs=1, steps_per_epoch=5, batch_size=1), tmp_path / "run",
          strategy="one_device", verbose=False)
    model = train(recipe, ToyConfig(epochs=2, steps_per_epoch=5, batch_size=1), tmp_path / "run",
                  strategy="one_device", verbose=False)
    np.testing.assert_array_equal(model.seen.numpy(), [1] * 10 + [0] * 2)


# ----------------------------------------------------------------------------- NaN

class DivergingModel(keras.Model):
    """Trains normally, then its weights become NaN at step `bad`."""

    def __init__(self, bad: int):
        super().__init__()
        self.bad, self.dense = bad, keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "bad": self.bad}

    def train_step(self, batch):
        x, y = batch
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x) - y))
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        if self.optimizer.iterations >= self.bad:  # step `bad` leaves NaN weights behind
            self.dense.kernel.assign(self.dense.kernel * np.nan)
        return {"loss": loss}


def _build_diverging(config, bad: int = 5):
    model = DivergingModel(bad=bad)
    model.compile(keras.optimizers.SGD(0.01))
    model(np.zeros((1, 2), "float32"))
    x = np.ones((8, 2), "float32")
    return Built(model, tf.data.Dataset.from_tensor_slices((x, x[:, :1])).repeat().batch(4))


def test_nan_stops_training_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    recipe = Recipe("diverging", "NaN at step 5", ToyConfig, {"default": ToyConfig()}, _build_diverging)
    config = ToyConfig(epochs=1, steps_per_epoch=10, batch_size=4, checkpoint_every=2)
    with pytest.raises(Diverged, match=r"by step 5|at step 6"):
        train(recipe, config, tmp_path / "run", strategy="one_device", verbose=False)
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert latest.endswith("ckpt-4"), latest  # step 5's NaN weights were not saved
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        assert not np.issubdtype(np.asarray(value).dtype, np.floating) or np.isfinite(value).all(), name
    assert not (tmp_path / "run" / "model.keras").exists()


def test_nan_loss_exits_3_with_the_step(tmp_path):
    result = run_here(["train", *TINY, "--g-learning-rate", "1e30", "--d-learning-rate", "1e30",
                      "--run-dir", tmp_path / "run"])
    assert result.returncode == 3, result.stderr
    assert "training diverged" in result.stderr and "step" in result.stderr
    assert "Traceback" not in result.stderr


class InfiniteModel(DivergingModel):
    """Trains normally, then its loss (`where="loss"`, from step 3) or its weights
    (`where="weights"`, from step 4, a checkpoint step whose loss is still finite) become +inf."""

    def __init__(self, where: str):
        super().__init__(bad=10**6)
        self.where = where

    def train_step(self, batch):
        loss = super().train_step(batch)["loss"]
        if self.where == "loss" and self.optimizer.iterations >= 3:
            loss = loss + np.inf
        if self.where == "weights" and self.optimizer.iterations >= 4:
            self.dense.kernel.assign(tf.fill(self.dense.kernel.shape, np.inf))
        return {"loss": loss}


def _build_infinite(where: str):
    built = _build_diverging(None)
    model = InfiniteModel(where)
    model.compile(keras.optimizers.SGD(0.01))
    model(np.zeros((1, 2), "float32"))
    return Built(model, built.train_data)


@pytest.mark.parametrize("where, message", [
    ("loss", r"^loss became inf at step 3; the last good checkpoint is .*ckpt-2"),
    ("weights", r"^weights became NaN or infinite by step 4 \(\S*dense\S*/kernel\); nothing was saved"),
], ids=["loss", "weights"])
@pytest.mark.parametrize("per_call", [1, 10], ids=["one-step-calls", "looped-calls"])
def test_inf_stops_training_like_nan(tmp_path, where, message, per_call):
    """+inf, not only NaN: an infinite loss stops at that step; infinite weights are never
    saved. Both kinds of trainer call: one step each (checked in Python) and several in a loop."""
    recipe = Recipe("infinite", "inf late", ToyConfig, {"default": ToyConfig()}, lambda config: _build_infinite(where))
    config = ToyConfig(epochs=1, steps_per_epoch=10, batch_size=4, checkpoint_every=2, steps_per_call=per_call)
    with pytest.raises(Diverged, match=message):
        train(recipe, config, tmp_path / "run", strategy="one_device", verbose=False)
    latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    assert latest.endswith("ckpt-2"), latest
    assert not (tmp_path / "run" / "model.keras").exists()


# ----------------------------------------------------------------------------- bad settings

@pytest.mark.parametrize("args, fragments", [
    (["--seed", "-1"], ["--seed must be in 0..2147483647", "-1"]),
    (["--seed", "99999999999"], ["--seed must be in 0..2147483647"]),
    (["--g-learning-rate", "inf"], ["--g-learning-rate must be a finite number", "inf"]),
    (["--residual-scale", "nan"], ["--residual-scale must be a finite number"]),
])
def test_bad_numbers(args, fragments):
    assert_user_error(run_cli(["train", *TINY, *args]), *fragments)


def test_damaged_and_foreign_checkpoints_are_refused(tmp_path):
    run = tmp_path / "run"
    assert run_here(["train", *TINY, "--epochs", "1", "--run-dir", run]).returncode == 0
    config = (run / "config.json").read_text()
    data = sorted((run / "checkpoints").glob("ckpt-*.data-*"))[-1]
    data.write_bytes(b"\0" * 100)  # damaged
    assert_user_error(run_here(["train", *TINY, "--epochs", "2", "--run-dir", run]),
                      "cannot be restored", "damaged or from another model")
    foreign = tmp_path / "foreign"  # another model's checkpoint under this run's config
    assert run_here(["train", *TINY, "--epochs", "1", "--filters", "4", "--run-dir", foreign]).returncode == 0
    (foreign / "config.json").write_text(config)
    assert_user_error(run_here(["train", *TINY, "--epochs", "2", "--run-dir", foreign]),
                      "cannot be restored")


def test_unwritable_and_full_run_dirs(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert_user_error(run_here(["train", *TINY, "--run-dir", blocker / "run"]),
                      "cannot create the run directory")
    full = tmp_path / "full"
    full.mkdir()
    (full / ".config.json.tmp").symlink_to("/dev/full")  # every write there: no space left
    assert_user_error(run_here(["train", *TINY, "--run-dir", full]),
                      "cannot write", "config.json")
    assert sorted(p.name for p in full.iterdir()) == [], list(full.iterdir())  # no .tmp left


def test_batch_that_replicas_cannot_split(tmp_path):
    script = ("import tensorflow as tf\n"
              "cpu = tf.config.list_physical_devices('CPU')[0]\n"
              "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
              "import sys\nfrom train.__main__ import _run\n"
              f"sys.argv = ['train', 'gan_superres', '--preset', 'tiny', '--batch-size', '3', "
              f"'--strategy', 'mirrored', '--run-dir', {str(tmp_path / 'run')!r}]\nsys.exit(_run())\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                            cwd=ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert_user_error(result, "--batch-size 3 cannot be split evenly over 2 replicas")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("tf_config, fragments", [
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 5}}',
     ["TF_CONFIG does not describe a usable cluster", "index"]),
    ("[1, 2]", ["TF_CONFIG must look like"]),
    ("{not json", ["TF_CONFIG is not valid JSON"]),
])
def test_bad_tf_config(tmp_path, tf_config, fragments):
    result = run_cli(["train", *TINY, "--strategy", "multi_worker", "--run-dir", tmp_path / "run"],
                     env={"TF_CONFIG": tf_config})
    assert_user_error(result, *fragments)


def test_tpu_strategy_without_a_tpu(tmp_path):
    assert_user_error(run_cli(["train", *TINY, "--strategy", "tpu", "--run-dir", tmp_path / "run"]),
                      "--strategy tpu found no TPU")


@pytest.mark.parametrize("content", [b"", b"not an HDF5 file"])
def test_empty_or_wrong_vgg_weights(tmp_path, content):
    weights = tmp_path / "vgg.h5"
    weights.write_bytes(content)
    assert_user_error(run_here(["train", *TINY, "--vgg-weights", weights, "--run-dir", tmp_path / "run"]),
                      "VGG19 weights file", "cannot be loaded")


def test_tfds_dataset_that_is_not_prepared(tmp_path):
    result = run_cli(["train", *TINY, "--data", "tfds:div2k/bicubic_x4", "--run-dir", tmp_path / "run"],
                     env={"TFDS_DATA_DIR": str(tmp_path / "tfds")}, timeout=120)
    assert_user_error(result, "not available offline")


def test_config_json_is_unchanged_by_a_refused_resume(tmp_path):
    run = tmp_path / "run"
    assert run_here(["train", *TINY, "--epochs", "1", "--run-dir", run]).returncode == 0
    before = (run / "config.json").read_text()
    assert_user_error(run_here(["train", *TINY, "--seed", "5", "--run-dir", run]), "--seed 0 -> 5")
    assert (run / "config.json").read_text() == before and json.loads(before)["config"]["seed"] == 0


def test_a_step_loss_named_loss_is_logged_when_compile_had_no_loss(tmp_path):
    """compile() without a loss still makes a `loss` tracker that nothing updates: the value
    the step returned must be logged, not that tracker's 0."""
    recipe = Recipe("diverging", "NaN late", ToyConfig, {"default": ToyConfig()},
                    lambda config: _build_diverging(config, bad=10**6))
    train(recipe, ToyConfig(epochs=1, steps_per_epoch=4, batch_size=4, log_every=1), tmp_path / "run",
          strategy="one_device", verbose=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "run" / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    values = [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors("train/loss")]
    assert len(values) == 4 and min(values) > 0, values


# ----------------------------------------------------------------------------- auto precision, --minutes

def test_auto_precision_measures_where_bfloat16_exists(monkeypatch):
    import train.strategy as strategy

    class FakeCpuinfo:
        flags = ""

        def __init__(self, path):
            pass

        def read_text(self):
            return f"flags\t\t: fpu sse2 avx2{self.flags}\n"

    monkeypatch.setattr(strategy, "Path", FakeCpuinfo)
    assert strategy.resolve_precision("auto") == ("float32", "this CPU has no bfloat16 instructions")
    FakeCpuinfo.flags = " avx512_bf16"
    monkeypatch.setattr(strategy, "bfloat16_speedup", lambda: 1.65)
    choice, why = strategy.resolve_precision("auto")
    assert choice == "mixed_bfloat16" and "1.65x" in why and "measured" in why
    monkeypatch.setattr(strategy, "bfloat16_speedup", lambda: 0.4)  # emulated bf16: slower
    assert strategy.resolve_precision("auto")[0] == "float32"
    assert strategy.resolve_precision("auto", measure=False)[0] == "mixed_bfloat16"
    assert strategy.resolve_precision("float32") == ("float32", "as asked")


def test_auto_precision_threshold_and_gpus(monkeypatch):
    """README: bfloat16 if it measured at least 1.1x as fast; a GPU from compute capability 8.0."""
    import train.strategy as strategy

    class Cpuinfo:
        def __init__(self, path):
            pass

        def read_text(self):
            return "flags\t\t: fpu avx2 amx_bf16\n"

    monkeypatch.setattr(strategy, "Path", Cpuinfo)
    for speedup, choice in ((1.1, "mixed_bfloat16"), (1.0999, "float32")):
        monkeypatch.setattr(strategy, "bfloat16_speedup", lambda speedup=speedup: speedup)
        assert strategy.resolve_precision("auto")[0] == choice, speedup
    monkeypatch.setattr(strategy.tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    for capability, choice in (((8, 0), "mixed_bfloat16"), ((9, 0), "mixed_bfloat16"), ((7, 5), "float32")):
        monkeypatch.setattr(strategy.tf.config.experimental, "get_device_details",
                            lambda gpu, capability=capability: {"compute_capability": capability})
        assert strategy.resolve_precision("auto") == (choice, f"GPU compute capability {capability}")


def test_auto_precision_times_neither_tracing_nor_warm_up(monkeypatch):
    """The measured ratio leaves out each precision's first calls (tracing, kernel set-up), both
    warmed up before either is timed, and the rounds alternate; fake calls on a fake clock."""
    import train.strategy as strategy

    now, calls = [0.0], {"float32": 0, "bfloat16": 0}

    def fake(name: str, first: float, after: float):
        def call():
            calls[name] += 1
            now[0] += first if calls[name] == 1 else after  # the first call traces: 100x slower
        return call

    float32, bfloat16 = fake("float32", 200.0, 2.0), fake("bfloat16", 100.0, 1.0)
    speedup = strategy.interleaved_speedup(float32, bfloat16, repeats=5, warm_up=2, clock=lambda: now[0])
    assert speedup == 2.0 and calls == {"float32": 7, "bfloat16": 7}

    class Cpuinfo:
        def __init__(self, path):
            pass

        def read_text(self):
            return "flags\t\t: fpu avx2 avx512_bf16\n"

    def no_microbenchmark():
        raise AssertionError("the run's own step was given: no convolution microbenchmark")

    timed = []

    def fake_interleaved(float32_call, bfloat16_call, repeats=7, warm_up=2):
        timed.append((float32_call, bfloat16_call, warm_up))
        return 1.5

    monkeypatch.setattr(strategy, "Path", Cpuinfo)
    monkeypatch.setattr(strategy, "bfloat16_speedup", no_microbenchmark)
    monkeypatch.setattr(strategy, "interleaved_speedup", fake_interleaved)
    steps = {"float32": float32, "mixed_bfloat16": bfloat16}  # policy -> one training step
    choice, why = strategy.resolve_precision("auto", step_runner=steps.__getitem__)
    assert choice == "mixed_bfloat16" and why.startswith("the training step ran 1.50x as fast"), why
    assert timed == [(float32, bfloat16, 2)]  # the run's own steps, 2 warm-up calls each untimed


def test_auto_precision_times_the_runs_own_step_on_long_runs(monkeypatch, tmp_path):
    """A long run (--minutes, or from OWN_STEP_FROM steps) chooses on its own training step, in
    the run's strategy, as train.bench's "vs float32, alternated" does; a short one on the
    convolution and matmul; an explicit precision measures nothing."""
    import dataclasses

    import train.sizing
    import train.trainer as trainer
    from train.recipes import get_recipe

    recipe = get_recipe("gan_superres")
    tiny = dataclasses.replace(recipe.presets["tiny"], precision="auto")
    runners, asked = [], []
    monkeypatch.setattr(train.sizing, "step_runner", lambda recipe, config: runners.append(config) or "own step")

    def fake_resolve(precision, measure=True, step_runner=None):
        asked.append((step_runner, tf.distribute.has_strategy()))
        return "float32", "faked"

    monkeypatch.setattr(trainer, "resolve_precision", fake_resolve)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    long_runs = [dataclasses.replace(tiny, minutes=1.0),
                 dataclasses.replace(tiny, epochs=1, steps_per_epoch=trainer.OWN_STEP_FROM)]
    for config in [tiny, *long_runs, dataclasses.replace(tiny, precision="float32")]:
        trainer._planned(recipe, tmp_path, config, strategy)
    assert asked == [(None, True), ("own step", True), ("own step", True)]
    assert runners == long_runs


def test_xla_auto_measures_long_runs_on_one_replica_only(monkeypatch):
    """--xla: on or off as asked on one replica, always off on several; auto measures a new long
    run (on from 1.1x), and a step XLA cannot compile is off with the operation named."""
    import dataclasses

    import train.sizing
    import train.trainer as trainer
    from train.recipes import get_recipe

    recipe = get_recipe("rbf")
    tiny = recipe.presets["tiny"]
    long = dataclasses.replace(tiny, epochs=1, steps_per_epoch=trainer.OWN_STEP_FROM, xla="auto")
    one = tf.distribute.OneDeviceStrategy("/cpu:0")

    class TwoReplicas:
        num_replicas_in_sync = 2

    speedups = iter([1.1, 1.0999])
    monkeypatch.setattr(train.sizing, "xla_speedup", lambda recipe, config: next(speedups))
    assert trainer._planned_xla(recipe, dataclasses.replace(tiny, xla="on"), one, False) == (
        dataclasses.replace(tiny, xla="on"), "as configured")
    config, why = trainer._planned_xla(recipe, dataclasses.replace(tiny, xla="on"), TwoReplicas(), False)
    assert config.xla == "off" and "several replicas" in why
    config, why = trainer._planned_xla(recipe, dataclasses.replace(tiny, xla="auto"), one, False)
    assert config.xla == "off" and "short run" in why
    assert trainer._planned_xla(recipe, long, one, False)[0].xla == "on"
    config, why = trainer._planned_xla(recipe, long, one, False)
    assert config.xla == "off" and "1.10x" in why
    assert trainer._planned_xla(recipe, long, one, True)[0].xla == "off"  # resumed, started before --xla

    def uncompilable(recipe, config):
        raise tf.errors.InvalidArgumentError(None, None, "Detected unsupported operations when trying to compile "
                                             "graph train_step on XLA_CPU_JIT: ResizeBicubic (No registered ...)")

    monkeypatch.setattr(train.sizing, "xla_speedup", uncompilable)
    config, why = trainer._planned_xla(recipe, long, one, False)
    assert config.xla == "off" and "unsupported: ResizeBicubic" in why, why


def test_minutes_plans_the_steps_once_and_a_resume_keeps_the_plan(tmp_path):
    run = tmp_path / "run"
    args = ["train", *TINY, "--minutes", "0.03", "--steps-per-epoch", "1000", "--epochs", "1",
            "--run-dir", run]
    first = run_here(args)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "--minutes 0.03: measured" in first.stdout, first.stdout
    saved = json.loads((run / "config.json").read_text())
    plan = saved["plan"]
    assert saved["config"]["steps_per_epoch"] == 1000 and 1 <= plan["steps_per_epoch"] < 1000, plan
    assert plan["pretrain_steps"] == round(3 * plan["steps_per_epoch"] / 1000)  # the same share
    assert plan["precision"] in ("float32", "mixed_bfloat16")
    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert model.generator.get_layer("head").dtype_policy.name == plan["precision"]  # trained as planned
    again = run_here([*args[:-4], "--epochs", "2", "--run-dir", run])  # one more epoch
    assert again.returncode == 0, again.stderr[-3000:]
    assert "measured" not in again.stdout and "as planned when the run started" in again.stdout
    assert json.loads((run / "config.json").read_text())["plan"] == plan
    steps = tf.train.latest_checkpoint(str(run / "checkpoints")).rsplit("-", 1)[1]
    assert int(steps) == 2 * plan["steps_per_epoch"]
