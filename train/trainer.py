"""The one training loop for every recipe: strategy, loop, validation, checkpoints, TensorBoard, save.

Nothing here knows a model by name. A recipe's `build(config)` returns a `Built`: a compiled
model, endless training batches, optional finite validation batches and callbacks.

The loop is the trainer's own (`strategy.run(model.train_step)` inside a `tf.function`),
not `model.fit`: Keras 3.15's fit fails under MultiWorkerMirroredStrategy with two real
workers (keras#20585), and one loop for every strategy keeps behaviour identical. AutoGraph
converts a model's `train_step` / `test_step` (unless marked `do_not_convert`), not the
trainer's own functions around them: rewriting those was most of the first call's time (the
SOM's: 0.35-0.42 -> 0.14 s).

## The metric contract (what `train_step` / `test_step` return)
A step returns a dict of scalars. Each value is one of two kinds, and both come out as the
true mean over the global batch on any number of replicas:

1. **A Keras metric tracker's result** (a key of `model.get_metrics_result()`, e.g. a
   `keras.metrics.Mean` in `model.metrics` updated with per-example values, or compiled
   metrics): the trainer ignores the per-replica value the step returned and reads the
   tracker itself, across replicas (Keras sums its on-read variables over replicas). Trackers
   are reset at the start of every epoch and before validation, so train values are means
   over the epoch so far, as in `fit`.
2. **Anything else: the replica's share of a global-batch mean**, i.e. per-example values
   summed on the replica and divided by the number of examples in the *global* batch
   (`zoo.models.global_mean`; exact also for an uneven last validation batch). The same
   value is the loss to differentiate: gradients are summed over replicas. The trainer sums
   the shares over replicas; epoch values are means over steps weighted by batch size.

TensorBoard and `metrics.csv` get these values every `log_every` steps and after every epoch;
the progress line shows their means since the previous log step (`train.progress`).

## The data contract (what makes resume exact)
`train_data` is an endless stream whose batch k depends only on the config (its seed), not on
time or on earlier runs: seeded shuffles and stateless random ops. Resuming at step k skips
k batches (or asks a callable `train_data` for the batches from k on, which streamed pipelines
use to skip without decoding), so a run killed at any moment (even by SIGKILL) and restarted
ends with the same weights as an uninterrupted run. Randomness inside a step must come from the step counter
(e.g. stateless ops seeded by the optimizer's iterations), never from Python or global state.

## Failures
A non-finite loss stops training with `Diverged`, naming the step; checkpoints and the
final model are only written from finite weights, so the last good checkpoint survives.

## Optional model hooks (plain Python)
- `named_optimizers() -> {name: optimizer}`: every optimizer the model trains with (a GAN
  has two). Without it, the model's `optimizer`. Checkpoints hold exactly these; a model
  that keeps other optimizers as attributes is refused rather than silently losing them.
- `begin_step(step) -> key`: called before each step with the global step; one step
  function is traced per distinct key (a GAN's pre-training and adversarial phases, which
  cannot switch inside one traced function under tf.distribute).
- `finalize_variable_values()`: called once when training ends, e.g. to swap in moving
  averages of optimizers built with `use_ema=True` (one-optimizer models get `fit`'s
  behaviour without it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api
from tensorboard.plugins.scalar import metadata as scalar_metadata

from train.config import ConfigError, TrainConfig, changed_fields, read_run
from train.progress import MetricsFile, ProgressLine, RecentMeans, epoch_of
from train.recipes import Recipe
from train.strategy import is_chief, make_strategy, resolve_precision

# TensorBoard's scalar plugin metadata, as `tf.summary.scalar` makes it (`_Loop.write_scalars`).
SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)


@dataclass
class Built:
    """What a recipe's `build(config)` returns (called inside the strategy scope)."""

    model: keras.Model  # compiled; owns train_step, test_step and its optimizers
    # Endless batches of the global batch size, or `start -> those batches from batch start on`
    # for pipelines that can jump ahead without making the skipped batches (streamed files).
    train_data: tf.data.Dataset | Callable[[int], tf.data.Dataset]
    val_data: tf.data.Dataset | None = None  # finite batches; test_step after every epoch -> epoch/val_*
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)  # may log with tf.summary
    example: str | None = None  # an input from the run's own data, quoted by the recipe's usage hint ("{example}")

    def batches_from(self, start: int) -> tf.data.Dataset:
        """The training batches from batch `start` on (batch k of a resumed run is batch k)."""
        if callable(self.train_data):
            return self.train_data(start)
        return self.train_data.skip(start)


class Diverged(RuntimeError):
    """A loss became NaN or infinite (or the weights did); nothing was saved from that state."""


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal (SIGINT, SIGTERM) after saving a checkpoint where it could."""

    def __init__(self, signum: int, step: int, saved: bool):
        where = "checkpoint saved" if saved else "the last periodic checkpoint stands"
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}: {where}")
        self.signum, self.step = signum, step


# ----------------------------------------------------------------------------- optimizers

def _held_optimizers(model: keras.Model) -> list[tuple[str, keras.optimizers.Optimizer]]:
    """Optimizers a model keeps as public attributes, also inside a list or dict attribute."""
    found = []
    for name, value in vars(model).items():
        if name.startswith("_"):
            continue
        if isinstance(value, Mapping):
            items = [(f"{name}[{key!r}]", v) for key, v in value.items()]
        elif isinstance(value, Sequence) and not isinstance(value, str):
            items = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
        else:
            items = [(name, value)]
        found += [(n, v) for n, v in items if isinstance(v, keras.optimizers.Optimizer)]
    return found


def optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """The optimizers a model declares: `named_optimizers()`, else `{"optimizer": model.optimizer}`.

    Raises:
        ValueError: the model holds an optimizer it does not declare (a checkpoint would
            silently lose its state).
    """
    if hasattr(model, "named_optimizers"):
        declared = dict(model.named_optimizers())
    else:
        optimizer = getattr(model, "optimizer", None)  # None before compile()
        declared = {"optimizer": optimizer} if optimizer is not None else {}
    undeclared = [name for name, opt in _held_optimizers(model)  # `optimizer`: compile()'s default
                  if not any(opt is d for d in declared.values()) and name != "optimizer"]
    if undeclared:
        raise ValueError(f"{type(model).__name__} holds optimizer(s) {', '.join(undeclared)} that it does "
                         "not declare: define `named_optimizers()` returning every optimizer it "
                         "trains with, so that checkpoints hold their state")
    return declared


# ----------------------------------------------------------------------------- helpers

def _number(value) -> float:
    """A Python float from a tensor or a (mirrored) variable: `float()` fails on the latter."""
    return float(value.numpy() if hasattr(value, "numpy") else value)


def _floats(values: dict) -> dict[str, float]:
    return {name: _number(value) for name, value in values.items()}


def check_run_dir(run_dir: Path, recipe: Recipe, config: TrainConfig) -> None:
    """Raise a ConfigError unless `run_dir` is new or holds a run of this recipe and config."""
    saved = read_run(run_dir, recipe.name)
    if saved is None:
        return
    changed = changed_fields(config, saved["config"])
    if changed:
        raise ConfigError(f"--run-dir {run_dir} was started with other settings ({'; '.join(changed)}): "
                          "resume with the same flags (only --epochs may change) or choose another --run-dir")


def write_atomic(path: Path, text: str) -> None:
    """Write a text file under a temporary name, then rename it into place; on failure (disk
    full, no permission) remove the temporary file and raise ConfigError."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path} ({error.strerror or error}): free some space or "
                          "choose a writable --run-dir") from None


def build(recipe: Recipe, config: TrainConfig):
    """`recipe.build(config)` with the model's optimizers built (call inside the strategy scope)."""
    built = recipe.build(config)
    if hasattr(built.model, "build_optimizers"):
        built.model.build_optimizers()
    else:
        for optimizer in optimizers(built.model).values():
            optimizer.build(built.model.trainable_variables)  # keras#23085
    return built


def _batch_size(batch) -> tf.Tensor:
    return tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.float32)


def make_step_function(strategy: tf.distribute.Strategy, step_fn, reduce_retracing: bool = False,
                       jit_compile: bool = False):
    """`step(batch) -> ({name: value}, examples)`: `step_fn` (a model's `train_step` or
    `test_step`) on every replica's part of a distributed batch, each value summed over
    replicas (the metric contract's second kind), and the number of examples in the batch.
    With `jit_compile`, `step_fn` is compiled by XLA (`--xla`)."""
    step_fn = _compiled(step_fn, jit_compile)

    @tf.function(reduce_retracing=reduce_retracing, autograph=False)
    def step(batch):
        return _summed_step(strategy, step_fn, batch)

    return step


def trainer_steps_per_call(config: TrainConfig) -> int:
    """Steps in the trainer's longest calls: `--steps-per-call`, cut at `--log-every`."""
    return max(1, min(config.steps_per_call, config.log_every))


def _compiled(step_fn, jit_compile: bool):
    """`step_fn` as a function XLA compiles (the replica's step: the loop around it and the
    input pipeline stay TensorFlow's), or `step_fn` under AutoGraph: the trainer's functions are
    traced without it, the model's step with it (a Python `if` on a tensor works there;
    `do_not_convert` skips it). Not a nested `tf.function`: `strategy.run` cannot reduce across
    replicas (`merge_call`) inside one."""
    if jit_compile:
        return tf.function(step_fn, jit_compile=True)
    # What `tf.function` applies to the function it traces (TensorFlow's internal API, as Keras 2 used it).
    return tf.__internal__.autograph.tf_convert(step_fn, tf.__internal__.autograph.control_status_ctx())


def _summed_step(strategy: tf.distribute.Strategy, step_fn, batch):
    """`step_fn` on every replica's part of `batch`: `({name: value summed over replicas},
    examples in the batch)` (inside a traced function)."""
    outputs, size = strategy.run(lambda part: (step_fn(part), _batch_size(part)), args=(batch,))
    summed = {name: strategy.reduce("SUM", value, axis=None) for name, value in outputs.items()}
    return summed, strategy.reduce("SUM", size, axis=None)


def make_steps_function(strategy: tf.distribute.Strategy, step_fn, jit_compile: bool = False, loop: bool = True):
    """`steps(iterator, count) -> (outputs, sums, examples, first_bad, its outputs)`: `count`
    (>= 1) training steps, each `step_fn` on every replica's part of the iterator's next batch,
    in one traced call (a `tf.while_loop`, as Keras' `steps_per_execution`): one Python round
    trip instead of `count`. Returns Python numbers (so a call waits for its steps): the last
    step's outputs (summed over replicas, as `make_step_function`), each output's sum over the
    steps weighted by batch size, the examples of all the steps, the index of the first step
    with a NaN or infinite output (-1: none) and that step's outputs ({} when none). With
    `jit_compile`, `step_fn` is compiled by XLA. With `loop=False` (calls of one step:
    `--steps-per-call 1` or `--log-every 1`) every call runs one step (`count` is 1), traced
    without the `tf.while_loop` and with its batch fetched in Python: both made the text models'
    steps slower (docs/speed.md), and tracing the loop cost the SOM's one-step calls 0.16 s of
    its 1.6 s run."""
    step_fn = _compiled(step_fn, jit_compile)

    def summed(batch):
        outputs, size = _summed_step(strategy, step_fn, batch)
        return {name: tf.cast(value, tf.float32) for name, value in outputs.items()}, size

    def finite(outputs: dict):
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in outputs.values()]))

    def first(outputs: dict, examples):
        """The returned values after one step."""
        return outputs, {name: value * examples for name, value in outputs.items()}, examples, \
            tf.where(finite(outputs), -1, 0), outputs

    if not loop:  # the batch fetched in Python and the step traced alone, as make_step_function:
        # fetching it inside the traced call measured 15% slower (the Transformer's step); the
        # sums and the finiteness check made in Python: 50 graph ops fewer to trace
        @tf.function(autograph=False)
        def single(batch):
            return summed(batch)

        def call_one(iterator, count):
            outputs, examples = single(next(iterator))
            outputs, examples = _floats(outputs), _number(examples)
            bad = -1 if all(math.isfinite(value) for value in outputs.values()) else 0
            return outputs, {name: value * examples for name, value in outputs.items()}, examples, bad, outputs

        return call_one

    @tf.function(autograph=False)  # traced once, called twice below: before the loop and in its body
    def one_step(iterator):
        return summed(next(iterator))

    @tf.function(autograph=False)
    def steps(iterator, count):
        outputs, sums, examples, bad, _ = first(*one_step(iterator))

        def body(i, outputs, sums, examples, bad, bad_outputs):
            outputs, size = one_step(iterator)
            sums = {name: sums[name] + value * size for name, value in outputs.items()}
            newly_bad = tf.logical_and(bad < 0, tf.logical_not(finite(outputs)))
            bad_outputs = {name: tf.where(newly_bad, outputs[name], value) for name, value in bad_outputs.items()}
            return i + 1, outputs, sums, examples + size, tf.where(newly_bad, i, bad), bad_outputs

        _, outputs, sums, examples, bad, bad_outputs = tf.while_loop(
            lambda i, *_: i < count, body, (tf.constant(1), outputs, sums, examples, bad, outputs))
        return outputs, sums, examples, bad, bad_outputs

    def call(iterator, count):
        outputs, sums, examples, bad, bad_outputs = steps(iterator, count)
        bad = int(bad)
        return _floats(outputs), _floats(sums), _number(examples), bad, _floats(bad_outputs) if bad >= 0 else {}

    return call


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """Split each global batch over the replicas; several workers shard by element (the data
    pipelines are seeded random streams, not files). One worker reads the whole pipeline:
    sharding it would be a no-op that still rewrites the pipeline's graph, data included (the
    SOM's 31 MB of samples: 0.09 s). One replica on the CPU reads the dataset itself: the
    distributed iterator would only copy each batch to the device it is already on, and making
    it took 0.05-0.08 s on a 2-core AMD EPYC (the recipes' pipelines end in their own prefetch)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        else tf.data.experimental.AutoShardPolicy.OFF)
    dataset = dataset.with_options(options)
    if isinstance(strategy, tf.distribute.OneDeviceStrategy) and all(
            tf.DeviceSpec.from_string(device).device_type == "CPU" for device in strategy.extended.worker_devices):
        return dataset
    return strategy.experimental_distribute_dataset(dataset)


class MeanLogs:
    """Means over steps of the step outputs, weighted by batch size; tracker values are read
    from the model (the metric contract in the module docstring)."""

    def __init__(self, model: keras.Model):
        self.model, self.sums, self.examples = model, {}, 0.0

    def add(self, outputs: dict, examples) -> dict[str, float]:
        """Add one step; return its logs (tracker values are filled in by `read`)."""
        examples, logs = _number(examples), _floats(outputs)
        return self.add_sums(logs, {name: value * examples for name, value in logs.items()}, examples)

    def add_sums(self, last: dict[str, float], sums: dict[str, float], examples: float) -> dict[str, float]:
        """Add several steps (`make_steps_function`'s outputs): each value's sum weighted by
        batch size and their examples; return the last step's logs."""
        for name, total in sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + total
        self.examples += examples
        return dict(last)

    def read(self, logs: dict[str, float] | None = None) -> dict[str, float]:
        """`logs` (default: the weighted means so far) with tracker results put in, across replicas."""
        logs = dict(logs if logs is not None else
                    {name: total / max(self.examples, 1.0) for name, total in self.sums.items()})
        for name, value in self._trackers().items():
            if name in logs:  # trackers the step reports
                logs[name] = _number(value)
        return logs

    def _trackers(self) -> dict:
        """The model's tracker results, without the `loss` tracker that compile() makes and
        only `compute_loss` updates, when the model was compiled without a loss."""
        results = self.model.get_metrics_result()
        compiled_loss = getattr(self.model, "_loss_tracker", None)
        if getattr(self.model, "loss", None) is None and any(m is compiled_loss for m in self.model.metrics):
            results.pop("loss", None)
        return results


class _StopSignals:
    """Turn SIGINT / SIGTERM into a flag the loop checks between steps, so that a signal is
    never lost inside TensorFlow and a checkpoint is saved; a second signal acts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received, self.previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.received = signum
        signal.signal(signum, self.previous.get(signum, signal.SIG_DFL))  # the next one is not deferred

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


# ----------------------------------------------------------------------------- the loop

# `--precision auto` times the run's own step (a few seconds: two throwaway models) from this
# many planned steps on, and a convolution and a matmul (half a second) below it.
OWN_STEP_FROM = 1000


def train(recipe: Recipe, config: TrainConfig, run_dir: str | Path, strategy: str = "auto",
          verbose: bool = True, preset: str | None = None) -> keras.Model:
    """Train `recipe` with `config` into `run_dir` (resuming if it holds a checkpoint).

    The chief writes `run_dir/config.json` (with `preset`, the name of the preset `config`
    came from, so that `--run-dir` alone resumes it), `logs/`, `metrics.csv` (`train.progress`),
    `checkpoints/` and, at the end, `model.keras`; other workers write to a temporary folder.
    Returns the trained model; its `usage_example` attribute is the recipe's `Built.example`
    (what `python -m train` quotes in its closing hint; not saved with the model).

    Raises:
        Interrupted: SIGINT or SIGTERM arrived; a checkpoint was saved (except under
            multi_worker, where the last periodic checkpoint stands).
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, recipe, config)
    distribution = make_strategy(strategy)  # before any other TF op (PITFALLS.md)
    requested, (config, why, planned) = config, _planned(recipe, run_dir, config, distribution)
    config, why_xla = _planned_xla(recipe, config, distribution, planned)
    keras.mixed_precision.set_global_policy(config.precision)
    replicas = distribution.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(f"--batch-size {config.batch_size} cannot be split evenly over {replicas} "
                          f"replicas: use a multiple of {replicas}, e.g. "
                          f"{max(replicas, config.batch_size // replicas * replicas)}")
    chief = is_chief(distribution)
    if verbose and chief:
        print(f"{recipe.name}: {distribution.num_replicas_in_sync} replica(s) "
              f"({type(distribution).__name__}), precision {config.precision} ({why}), XLA {config.xla} "
              f"({why_xla}), run dir {run_dir}")
    if config.minutes > 0 and not planned:
        config = _sized(recipe, config, distribution, verbose and chief)  # a new run: measure
    keras.utils.set_random_seed(config.seed)  # the same weights whether or not sizing built a model
    work_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="zoo-worker-"))
    try:
        return _Loop(recipe, requested, config, distribution, run_dir, work_dir, chief, verbose, preset).run()
    finally:
        if not chief:
            shutil.rmtree(work_dir, ignore_errors=True)


def _planned(recipe: Recipe, run_dir: Path, config: TrainConfig, strategy) -> tuple[TrainConfig, str, bool]:
    """(the config to train, why its precision, whether it is a saved plan): a resumed run
    trains its config.json "plan" (what `auto` precision and `--minutes` chose when it
    started); a new run resolves `auto` now: on its own training step (both precisions'
    throwaway copies, steps alternated, as `python -m train.bench` times them) when the run is
    long (`--minutes`, or at least `OWN_STEP_FROM` steps), else on a convolution and a matmul."""
    saved = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").exists() else {}
    plan = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.get("plan", {}).items()}
    config = dataclasses.replace(config, **plan)
    if config.precision != "auto":
        return config, "as planned when the run started" if "precision" in plan else "as asked", "plan" in saved
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    runner = None
    if not multi_worker and (config.minutes > 0 or config.total_steps >= OWN_STEP_FROM):
        from train.sizing import step_runner

        runner = step_runner(recipe, config)
    with strategy.scope():
        precision, why = resolve_precision(config.precision, measure=not multi_worker, step_runner=runner)
    if runner is not None:
        keras.backend.clear_session()  # drop the throwaway models (this also resets the dtype policy)
    return dataclasses.replace(config, precision=precision), why, "plan" in saved


def _planned_xla(recipe: Recipe, config: TrainConfig, strategy, planned: bool) -> tuple[TrainConfig, str]:
    """(the config with `xla` "on" or "off", why). On several replicas or under multi_worker
    always off: a replica's step synchronizes with the others (gradients, global-batch means),
    which TensorFlow cannot do inside an XLA-compiled function. `--xla auto` on a new, long run
    (as `_planned` counts long) compiles every phase's step with XLA and times the first
    phase's step with and without it (`train.sizing.xla_speedup`: about a minute for the LSTM's
    default run, so recipes choose on or off from `train.bench` measurements instead); XLA is on
    if it ran at least 1.1x as fast. A short run or a step XLA cannot compile: off."""
    if strategy.num_replicas_in_sync > 1 or isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        why = "several replicas: a replica's step waits on the others', which XLA cannot compile here"
        return dataclasses.replace(config, xla="off"), why if config.xla != "off" else "as asked"
    if config.xla != "auto":
        return config, "as planned when the run started" if planned else "as configured"
    if planned:  # resumed: its plan has no XLA choice, so it started before --xla existed
        return dataclasses.replace(config, xla="off"), "as the run started"
    if not (config.minutes > 0 or config.total_steps >= OWN_STEP_FROM):
        return dataclasses.replace(config, xla="off"), f"a short run (under {OWN_STEP_FROM} steps): not measured"
    from train.sizing import xla_speedup

    keras.mixed_precision.set_global_policy(config.precision)
    try:
        with strategy.scope():
            speedup = xla_speedup(recipe, config)
    except tf.errors.OpError as error:
        return dataclasses.replace(config, xla="off"), f"XLA cannot compile this step ({_unsupported(error)})"
    finally:
        keras.backend.clear_session()  # drop the throwaway models (this also resets the dtype policy)
    choice = "on" if speedup >= 1.1 else "off"
    return (dataclasses.replace(config, xla=choice),
            f"the training step ran {speedup:.2f}x as fast with XLA as without here (measured now)")


def _unsupported(error: Exception) -> str:
    """The operation XLA could not compile, from its error, e.g. "ResizeBicubic"."""
    import re

    found = re.search(r"unsupported operations[^:]*: ([\w, ]+)", str(error))
    return f"unsupported: {found[1].strip()}" if found else (str(error).strip().splitlines() or ["error"])[0][:200]


def _sized(recipe: Recipe, config: TrainConfig, strategy, verbose: bool) -> TrainConfig:
    """`--minutes`: the config with its steps planned from this machine's measured speed."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if verbose:  # workers would measure different speeds and plan different runs
            print(f"{recipe.name}: --minutes is ignored under multi_worker: training "
                  f"{config.total_steps} steps as configured")
        return config
    from train.sizing import size_to_minutes

    keras.utils.set_random_seed(config.seed)
    return size_to_minutes(recipe, config, strategy, verbose)


class _Loop:
    """One training run; split into small methods so each part reads on its own."""

    def __init__(self, recipe, requested, config, distribution, run_dir, work_dir, chief, verbose, preset=None):
        self.recipe, self.config, self.strategy = recipe, config, distribution
        self.run_dir, self.work_dir, self.chief, self.verbose = run_dir, work_dir, chief, verbose and chief
        with distribution.scope():
            self.built = build(recipe, config)  # data errors surface here, before anything is written
            self.model = self.built.model
            self.optimizers = optimizers(self.model)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        try:
            work_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"cannot create the run directory {work_dir} ({error.strerror or error}): "
                              "choose a writable --run-dir") from None
        if chief:  # the config as asked, and what auto precision and --minutes chose ("plan")
            asked, trained = requested.to_dict(), config.to_dict()
            plan = {name: value for name, value in trained.items() if asked[name] != value and name != "epochs"}
            write_atomic(run_dir / "config.json", json.dumps(
                {"recipe": recipe.name, "preset": preset, "config": asked, "plan": plan}, indent=2) + "\n")
        # Every model variable by position (trainable or not, e.g. batch-norm statistics),
        # each declared optimizer with its slots, and the global step.
        self.checkpoint = tf.train.Checkpoint(model_variables=list(self.model.variables), step=self.step,
                                              **self.optimizers)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(work_dir / "checkpoints"), max_to_keep=2)
        self.writer = (tf.summary.create_file_writer(str(run_dir / "logs")) if chief
                       else tf.summary.create_noop_writer())
        self.callbacks = self.built.callbacks
        for callback in self.callbacks:
            callback.set_model(self.model)
            if getattr(callback, "log_dir", "") is None:  # callbacks that write files, e.g. the projector
                callback.log_dir = str(work_dir / "logs")
            if getattr(callback, "run_dir", "") is None:  # callbacks whose state must survive a resume
                callback.run_dir = str(work_dir)
        self.step_functions = {}
        self.test_function = make_step_function(distribution, self.model.test_step, reduce_retracing=True)
        self.signals = _StopSignals()

    def restore(self) -> int:
        """Restore the chief's latest checkpoint, if any; return the step to start from.

        Raises:
            ConfigError: the checkpoint is damaged or belongs to another model.
        """
        folder = self.run_dir / "checkpoints"
        try:
            latest = tf.train.latest_checkpoint(str(folder))
            if latest:
                self.checkpoint.restore(latest).assert_existing_objects_matched()
        except Exception as error:  # noqa: BLE001 - TF raises OpError, IndexError, ValueError, AssertionError...
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
            tf.get_logger().setLevel("ERROR")  # no "unrestored values" warnings as the run ends
            raise ConfigError(f"the checkpoint in {folder} cannot be restored ({reason}): it is damaged "
                              "or from another model; move that folder away to start again, or "
                              "choose another --run-dir") from None
        if latest:
            if self.verbose:
                print(f"Resuming from {latest} at step {int(self.step.numpy())}")
        return int(self.step.numpy())

    def phase(self, step: int):
        """The model's phase key for `step` (`begin_step` in the module docstring; None without)."""
        return self.model.begin_step(step) if hasattr(self.model, "begin_step") else None

    def steps_function(self, step: int):
        """The traced steps for this step's phase (call right before running them: the model's
        phase is set by `begin_step(step)`)."""
        key = self.phase(step)
        if key not in self.step_functions:
            self.step_functions[key] = make_steps_function(self.strategy, self.model.train_step,
                                                           jit_compile=self.config.xla == "on",
                                                           loop=trainer_steps_per_call(self.config) > 1)
        return self.step_functions[key]

    def steps_in_call(self, step: int, end: int) -> int:
        """How many steps from `step` the next call runs: at most `steps_per_call`, ending at
        the next log step, checkpoint step or `end` (the epoch's), and never across a phase
        change, so everything promised at a step (logs, checkpoints, exact resume) still is."""
        config = self.config
        last = min(end, step + config.steps_per_call,
                   *((step // every + 1) * every for every in (config.log_every, config.checkpoint_every)))
        key = self.phase(step)
        return next((s for s in range(step + 1, last) if self.phase(s) != key), last) - step

    def notify(self, hook: str, *args) -> None:
        """Call a Keras callback hook on every callback (in order; they share `logs`)."""
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def write_scalars(self, prefix: str, logs: dict, step: int) -> None:
        """Scalars `prefix/name` (with `train`, also `learning_rate/*`) into TensorBoard and metrics.csv."""
        scalars = {f"{prefix}/{name}": value for name, value in logs.items()}
        if prefix == "train":
            scalars.update({f"learning_rate/{name}": _number(optimizer.learning_rate)
                            for name, optimizer in self.optimizers.items()})
        with self.writer.as_default(step=step):  # what tf.summary.scalar writes, without the first call's
            for tag, value in scalars.items():  # import of every TensorBoard summary plugin (0.025 s)
                tf.summary.write(tag, tf.constant(value, tf.float32), metadata=SCALAR_METADATA)
        if self.metrics_file:
            self.metrics_file.write(step, epoch_of(step, self.config.steps_per_epoch), scalars)

    def write_histograms(self, step: int) -> None:
        """Every trainable weight's distribution, once per epoch, named `weights/<layer>/<path>`."""
        with self.writer.as_default(step=step):
            for layer in self.model.layers or [self.model]:
                for weight in layer.trainable_weights:
                    path = weight.path if weight.path.startswith(layer.name + "/") else f"{layer.name}/{weight.path}"
                    tf.summary.histogram(f"weights/{path}", weight.value)

    def write_hparams(self) -> None:
        values = {name: str(value) if isinstance(value, list) else value
                  for name, value in self.config.to_dict().items()}
        values.update(recipe=self.recipe.name, replicas=self.strategy.num_replicas_in_sync)
        with self.writer.as_default(step=0):
            hparams_api.hparams(values, trial_id=self.run_dir.name)

    def check_finite_weights(self) -> None:
        """Raise Diverged if any model or optimizer variable holds NaN or Inf."""
        variables = [v for v in self.checkpoint_variables() if keras.backend.is_float_dtype(v.dtype)]
        bad = [v.path for v in variables if not bool(tf.reduce_all(tf.math.is_finite(v)))]
        if bad:
            raise Diverged(f"weights became NaN or infinite by step {int(self.step.numpy())} "
                           f"({', '.join(bad[:3])}); nothing was saved from them")

    def checkpoint_variables(self) -> list:
        return [*self.model.variables, *(v for o in self.optimizers.values() for v in o.variables)]

    def save_checkpoint(self) -> None:
        """Save a checkpoint of finite weights (a partial write leaves the previous one readable)."""
        self.check_finite_weights()
        self.manager.save(checkpoint_number=int(self.step.numpy()))

    def run(self) -> keras.Model:
        start = self.restore()
        if start == 0:
            self.write_hparams()
        iterator = iter(distribute(self.strategy, self.built.batches_from(start)))  # batch k is batch k
        config = self.config  # the bar: recent means on a terminal; plain lines in a file or pipe
        progress = (ProgressLine(config.total_steps, config.steps_per_epoch, config.epochs, start)
                    if self.verbose else None)
        self.metrics_file = MetricsFile(self.run_dir / "metrics.csv", start) if self.chief else None
        self.notify("on_train_begin")
        with self.signals:
            for epoch in range(start // self.config.steps_per_epoch, self.config.epochs):
                self.run_epoch(epoch, iterator, progress)
        self.finalize_weights()
        self.notify("on_train_end")
        self.save_model()
        self.model.usage_example = self.built.example
        return self.model

    def stop_if_signalled(self) -> None:
        """After a step: on SIGINT/SIGTERM save a checkpoint (all but multi_worker) and stop."""
        if self.signals.received is None:
            return
        saved = not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
        if saved:  # under multi_worker saving needs every worker: the last periodic checkpoint stands
            self.save_checkpoint()
        raise Interrupted(self.signals.received, int(self.step.numpy()), saved)

    def check_finite(self, logs: dict[str, float], step: int) -> None:
        """Raise Diverged, naming the step and the last checkpoint, if a logged value is NaN/Inf."""
        bad = [name for name, value in logs.items() if not math.isfinite(value)]
        if bad:
            kept = self.manager.latest_checkpoint
            raise Diverged(f"{', '.join(bad)} became {logs[bad[0]]} at step {step}; the last good "
                           f"checkpoint is {kept or 'none (no checkpoint was written yet)'}. Lower the "
                           "learning rate(s), or try --precision float32")

    def run_epoch(self, epoch: int, iterator, progress) -> None:
        """Steps to the end of `epoch`; then validation, callbacks, epoch scalars and a checkpoint."""
        config, means = self.config, MeanLogs(self.model)
        self.model.reset_metrics()
        recent = RecentMeans(self.model)  # the progress line's values: means since the last log step
        self.notify("on_epoch_begin", epoch)
        step, logs, end = int(self.step.numpy()), {}, (epoch + 1) * config.steps_per_epoch
        while step < end:
            count = self.steps_in_call(step, end)
            last, sums, examples, bad, bad_outputs = self.steps_function(step)(iterator, tf.constant(count))
            self.step.assign_add(count)
            step += count
            logs = means.add_sums(last, sums, examples)
            if bad >= 0:  # the first step with a NaN or infinite value, named
                self.check_finite(bad_outputs, step - count + bad + 1)
            if step % config.log_every == 0:
                logs = means.read(logs)
                self.write_scalars("train", logs, step)
            if step % config.checkpoint_every == 0:
                self.save_checkpoint()
            recent.add_sums(sums, examples)  # read on every worker: under multi_worker reading a tracker is collective
            shown = recent.read(logs) if step % config.log_every == 0 else None
            if progress:
                progress.update(step, shown)
            self.stop_if_signalled()
        logs = means.read()  # epoch means
        logs.update(self.validate())
        with self.writer.as_default(step=step):
            self.notify("on_epoch_end", epoch, logs)  # callbacks may add to logs
        self.write_scalars("epoch", logs, step)
        self.write_histograms(step)
        if progress:
            progress.epoch_end(step, epoch, logs)
        self.writer.flush()
        self.save_checkpoint()
        self.stop_if_signalled()

    def validate(self) -> dict[str, float]:
        """`test_step` over the whole validation data on every replica: `{"val_<name>": mean}`."""
        if self.built.val_data is None:
            return {}
        self.model.reset_metrics()
        means = MeanLogs(self.model)
        for batch in distribute(self.strategy, self.built.val_data):
            means.add(*self.test_function(batch))
        return {f"val_{name}": value for name, value in means.read().items()}

    def finalize_weights(self) -> None:
        """Swap in moving-average weights where an optimizer keeps them (`use_ema=True`), as
        `fit` does; a model with several optimizers says how in `finalize_variable_values()`."""
        if hasattr(self.model, "finalize_variable_values"):
            self.model.finalize_variable_values()
        elif self.model.optimizer is not None:
            self.model.optimizer.finalize_variable_values(self.model.trainable_variables)

    def save_model(self) -> None:
        """Write `model.keras` atomically (chief only)."""
        self.check_finite_weights()
        if self.chief:
            path = self.run_dir / "model.keras"
            tmp = path.with_name(".model.tmp.keras")
            try:
                self.model.save(tmp)
                os.replace(tmp, path)
            except OSError as error:
                tmp.unlink(missing_ok=True)
                raise ConfigError(f"cannot write {path} ({error.strerror or error}): free some space; "
                                  "the last checkpoint is kept, so the same command finishes the run") from None
            self.writer.flush()
