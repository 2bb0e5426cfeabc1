"""The one training loop for every recipe: strategy, loop, checkpoints, TensorBoard, final save.

Nothing here knows a model by name. A recipe's `build(config)` returns a `Built`: a
model whose `train_step(batch)` returns a dict of scalar losses, each already averaged
over the *global* batch (per-example losses summed and divided by the global batch size,
e.g. with `tf.nn.compute_average_loss`); the trainer sums them over replicas, so the
logged numbers are the true batch means on any number of devices.

The loop is the trainer's own (`strategy.run(model.train_step)` inside a `tf.function`),
not `model.fit`: Keras 3.15's fit fails under MultiWorkerMirroredStrategy with two real
workers (keras#20585), and one loop for every strategy keeps behaviour identical.

Optional model hooks, both plain Python:
- `build_optimizers()`: create optimizer slots inside the strategy scope (needed by
  custom steps under tf.distribute, keras#23085).
- `begin_step(step) -> key`: called before each step with the global step; one step
  function is traced per distinct key (a GAN's pre-training and adversarial phases,
  which cannot switch inside one traced function under tf.distribute).
- `finalize_variable_values()`: called once when training ends, e.g. to swap in the
  moving averages of optimizers built with `use_ema=True` (models with one `optimizer`
  get `fit`'s behaviour without it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import keras
import tensorflow as tf
from tensorboard.plugins.hparams import api as hparams_api

from train.config import TrainConfig, flag
from train.strategy import is_chief, make_strategy, resolve_precision
from zoo.errors import UserError


@dataclass
class Built:
    """What a recipe's `build(config)` returns (called inside the strategy scope)."""

    model: keras.Model  # compiled; owns train_step and its optimizers
    train_data: tf.data.Dataset  # endless batches of the global batch size
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)  # may log with tf.summary


@dataclass(frozen=True)
class Recipe:
    """A named model + data + presets, registered in `train.recipes`."""

    name: str
    description: str  # one line, shown by `python -m train --list`
    config_class: type  # a frozen TrainConfig subclass
    presets: dict  # preset name -> config; "default" is used when no --preset is given
    build: object  # build(config) -> Built
    usage: str = ""  # how to use the saved model; "{model}" is replaced by its path


def optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """The optimizers a model holds as attributes (`optimizer`, or a GAN's two)."""
    return {name: value for name, value in vars(model).items()
            if isinstance(value, keras.optimizers.Optimizer)}


def _number(value) -> float:
    """A Python float from a tensor or a (mirrored) variable: `float()` fails on the latter."""
    return float(value.numpy() if hasattr(value, "numpy") else value)


def check_run_dir(run_dir: Path, recipe: Recipe, config: TrainConfig) -> None:
    """Raise a UserError unless `run_dir` is new or holds a run of this recipe and config."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"--run-dir {run_dir} is a file: give a folder (new or from an earlier run)")
    saved_path = run_dir / "config.json"
    if not saved_path.exists():
        return
    try:
        saved = json.loads(saved_path.read_text())
        saved_recipe, saved_config = saved["recipe"], saved["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{saved_path} is not a zoo run config: choose another --run-dir") from None
    if saved_recipe != recipe.name:
        raise UserError(f"--run-dir {run_dir} holds a {saved_recipe!r} run, not {recipe.name!r}: "
                        "choose another --run-dir")
    changed = [f"{flag(k)} {saved_config.get(k)!r} -> {v!r}" for k, v in config.to_dict().items()
               if k != "epochs" and saved_config.get(k) != v]
    if changed:
        raise UserError(f"--run-dir {run_dir} was started with other settings ({'; '.join(changed)}): "
                        "resume with the same flags (only --epochs may change) or choose another --run-dir")


def write_atomic(path: Path, text: str) -> None:
    """Write a text file under a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def build(recipe: Recipe, config: TrainConfig) -> Built:
    """`recipe.build(config)` with the model's optimizers built (call inside the strategy scope)."""
    built = recipe.build(config)
    if hasattr(built.model, "build_optimizers"):
        built.model.build_optimizers()
    return built


def make_step_function(strategy: tf.distribute.Strategy, model: keras.Model):
    """`step(iterator) -> {name: float tensor}`: one `model.train_step` on every replica,
    its per-replica losses (already divided by the global batch) summed over replicas."""

    @tf.function
    def step(iterator):
        outputs = strategy.run(model.train_step, args=(next(iterator),))
        return {name: strategy.reduce("SUM", value, axis=None) for name, value in outputs.items()}

    return step


def distribute(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """Split each global batch over the replicas; workers shard by element (the data
    pipelines are seeded random streams, not files)."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def train(recipe: Recipe, config: TrainConfig, run_dir: str | Path, strategy: str = "auto",
          verbose: bool = True) -> keras.Model:
    """Train `recipe` with `config` into `run_dir` (resuming if it holds a checkpoint).

    The chief writes `run_dir/config.json`, `logs/`, `checkpoints/` and, at the end,
    `model.keras`; other workers write to a temporary folder. Returns the trained model.
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, recipe, config)
    distribution = make_strategy(strategy)  # before any other TF op (PITFALLS.md)
    precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(config.seed)
    chief = is_chief(distribution)
    if verbose and chief:
        print(f"{recipe.name}: {distribution.num_replicas_in_sync} replica(s) "
              f"({type(distribution).__name__}), precision {precision}, run dir {run_dir}")
    work_dir = run_dir if chief else Path(tempfile.mkdtemp(prefix="zoo-worker-"))
    try:
        return _Loop(recipe, config, distribution, run_dir, work_dir, chief, verbose).run()
    finally:
        if not chief:
            shutil.rmtree(work_dir, ignore_errors=True)


class _Loop:
    """One training run; split into small methods so each part reads on its own."""

    def __init__(self, recipe, config, distribution, run_dir, work_dir, chief, verbose):
        self.recipe, self.config, self.strategy = recipe, config, distribution
        self.run_dir, self.work_dir, self.chief, self.verbose = run_dir, work_dir, chief, verbose and chief
        with distribution.scope():
            self.built = build(recipe, config)  # data errors surface here, before anything is written
            self.model = self.built.model
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        work_dir.mkdir(parents=True, exist_ok=True)
        if chief:
            write_atomic(run_dir / "config.json", json.dumps(
                {"recipe": recipe.name, "config": config.to_dict()}, indent=2) + "\n")
        # Every model variable by position (trainable or not, e.g. batch-norm statistics),
        # each optimizer with its slots, and the global step.
        self.checkpoint = tf.train.Checkpoint(model_variables=list(self.model.variables), step=self.step,
                                              **optimizers(self.model))
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(work_dir / "checkpoints"), max_to_keep=2)
        self.writer = (tf.summary.create_file_writer(str(run_dir / "logs")) if chief
                       else tf.summary.create_noop_writer())
        self.callbacks = self.built.callbacks
        for callback in self.callbacks:
            callback.set_model(self.model)
        self.step_functions = {}

    def restore(self) -> int:
        """Restore the chief's latest checkpoint, if any; return the step to start from."""
        latest = tf.train.latest_checkpoint(str(self.run_dir / "checkpoints"))
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            if self.verbose:
                print(f"Resuming from {latest} at step {int(self.step.numpy())}")
        return int(self.step.numpy())

    def step_function(self, step: int):
        """The traced step for this step's phase (see `begin_step` in the module docstring)."""
        key = self.model.begin_step(step) if hasattr(self.model, "begin_step") else None
        if key not in self.step_functions:
            self.step_functions[key] = make_step_function(self.strategy, self.model)
        return self.step_functions[key]

    def notify(self, hook: str, *args) -> None:
        """Call a Keras callback hook on every callback (in order; they share `logs`)."""
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def write_scalars(self, prefix: str, logs: dict, step: int) -> None:
        with self.writer.as_default(step=step):
            for name, value in logs.items():
                tf.summary.scalar(f"{prefix}/{name}", value)
            if prefix == "train":
                for name, optimizer in optimizers(self.model).items():
                    tf.summary.scalar(f"learning_rate/{name}", _number(optimizer.learning_rate))

    def write_histograms(self, step: int) -> None:
        """Every trainable weight's distribution, once per epoch, named `weights/<layer>/<path>`."""
        with self.writer.as_default(step=step):
            for layer in self.model.layers or [self.model]:
                for weight in layer.trainable_weights:
                    path = weight.path if weight.path.startswith(layer.name + "/") else f"{layer.name}/{weight.path}"
                    tf.summary.histogram(f"weights/{path}", weight.value)

    def write_hparams(self) -> None:
        values = {**self.config.to_dict(), "recipe": self.recipe.name,
                  "replicas": self.strategy.num_replicas_in_sync}
        with self.writer.as_default(step=0):
            hparams_api.hparams(values, trial_id=self.run_dir.name)

    def save_checkpoint(self) -> None:
        self.manager.save(checkpoint_number=int(self.step.numpy()))

    def run(self) -> keras.Model:
        start = self.restore()
        if start == 0:
            self.write_hparams()
        iterator = iter(distribute(self.strategy, self.built.train_data))
        interval = 0.05 if sys.stdout.isatty() else 5.0  # keep logs small when piped to a file
        progress = keras.utils.Progbar(self.config.total_steps, interval=interval) if self.verbose else None
        if progress and start:
            progress.update(start)
        self.notify("on_train_begin")
        try:
            for epoch in range(start // self.config.steps_per_epoch, self.config.epochs):
                self.run_epoch(epoch, iterator, progress)
        except KeyboardInterrupt:
            if isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
                raise  # saving needs every worker; the last periodic checkpoint stands
            self.save_checkpoint()
            print(f"\ninterrupted at step {int(self.step.numpy())}: checkpoint saved", file=sys.stderr)
            raise
        self.finalize_weights()
        self.notify("on_train_end")
        self.save_model()
        return self.model

    def run_epoch(self, epoch: int, iterator, progress) -> None:
        """Steps to the end of `epoch`; then callbacks, epoch-mean scalars and a checkpoint."""
        config, sums, counts = self.config, {}, {}
        self.notify("on_epoch_begin", epoch)
        step = int(self.step.numpy())
        while step < (epoch + 1) * config.steps_per_epoch:
            logs = {k: float(v) for k, v in self.step_function(step)(iterator).items()}
            self.step.assign_add(1)
            step += 1
            for name, value in logs.items():
                sums[name], counts[name] = sums.get(name, 0.0) + value, counts.get(name, 0) + 1
            if step % config.log_every == 0:
                self.write_scalars("train", logs, step)
            if step % config.checkpoint_every == 0:
                self.save_checkpoint()
            if progress:
                progress.update(step, list(logs.items()))
        logs = {name: sums[name] / counts[name] for name in sums}  # epoch means
        with self.writer.as_default(step=step):
            self.notify("on_epoch_end", epoch, logs)  # callbacks may add to logs
        self.write_scalars("epoch", logs, step)
        self.write_histograms(step)
        if self.verbose and any(name.startswith("val_") for name in logs):
            print(f"\nepoch {epoch + 1}/{config.epochs}: " + ", ".join(
                f"{name} {value:.4g}" for name, value in logs.items() if name.startswith("val_")))
        self.writer.flush()
        self.save_checkpoint()

    def finalize_weights(self) -> None:
        """Swap in moving-average weights where an optimizer keeps them (`use_ema=True`), as
        `fit` does; a model with several optimizers says how in `finalize_variable_values()`."""
        if hasattr(self.model, "finalize_variable_values"):
            self.model.finalize_variable_values()
        elif self.model.optimizer is not None:
            self.model.optimizer.finalize_variable_values(self.model.trainable_variables)

    def save_model(self) -> None:
        """Write `model.keras` atomically (chief only)."""
        if self.chief:
            path = self.run_dir / "model.keras"
            tmp = path.with_name(".model.tmp.keras")
            self.model.save(tmp)
            os.replace(tmp, path)
            self.writer.flush()
