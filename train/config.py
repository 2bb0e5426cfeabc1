"""Config fields every recipe shares, and typed command-line flags for any config.

A recipe's config is a frozen dataclass that subclasses `TrainConfig`. A field may be an
`int`, `float`, `str`, `bool`, `Path`, a `Literal["a", "b"]` choice or a tuple such as
`tuple[int, int]` (`--grid 20 20` or `--grid 20x20`). This module imports no TensorFlow,
so `python -m train --help` and flag errors answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

MAX_SEED = 2**31 - 1  # tf.random seeds are int32 on some paths
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")  # see train.strategy.make_strategy


class ConfigError(ValueError):
    """A config value or flag that cannot be used; the message names the flag and what to do."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose bad flags raise a one-line ConfigError instead of printing usage."""

    def error(self, message):
        raise ConfigError(f"{message} (see `{self.prog} --help`)")


def flag(name: str) -> str:
    """The command-line flag of a config field: `batch_size` -> `--batch-size`."""
    return "--" + name.replace("_", "-")


# ----------------------------------------------------------------------------- field types

def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _scalar_parser(kind) -> typing.Callable[[str], object]:
    if kind is bool:
        return _bool
    if typing.get_origin(kind) is Literal:
        choices = typing.get_args(kind)

        def choice(text: str):
            for value in choices:
                if str(value) == text:
                    return value
            raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {text!r}")
        return choice
    return kind  # int, float, str, Path


def _tuple_items(kind) -> tuple[type, int | None]:
    """`tuple[int, int]` -> (int, 2); `tuple[float, ...]` -> (float, None)."""
    args = typing.get_args(kind)
    if len(args) == 2 and args[1] is Ellipsis:
        return args[0], None
    return args[0], len(args)


def parse_field(kind, words: list[str]):
    """The value of a field of type `kind` from its command-line words.

    Raises:
        ValueError: a word is not of the type, or a tuple has the wrong length.
    """
    if typing.get_origin(kind) is not tuple:
        return _scalar_parser(kind)(words[0])
    item, length = _tuple_items(kind)
    if len(words) == 1:  # "20x20" or "20,20"
        words = words[0].replace(",", "x").split("x")
    if length is not None and len(words) != length:
        raise ValueError(f"expected {length} values, got {len(words)}")
    return tuple(_scalar_parser(item)(word) for word in words)


def describe_type(kind) -> str:
    """How a field's type reads in `--help`: INT, FLOAT, PATH, {a,b}, INT INT."""
    if typing.get_origin(kind) is Literal:
        return "{" + ",".join(map(str, typing.get_args(kind))) + "}"
    if typing.get_origin(kind) is tuple:
        item, length = _tuple_items(kind)
        return " ".join([item.__name__.upper()] * (length or 1)) + ("" if length else " ...")
    return kind.__name__.upper()


def to_json_value(value):
    """A config value as JSON stores it: tuples become lists, paths strings."""
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------- the base config

@dataclass(frozen=True)
class TrainConfig:
    """Trainer-level settings; recipes add their own fields and override defaults."""

    epochs: int = 10  # passes of steps_per_epoch steps; validation, summaries and a checkpoint after each
    steps_per_epoch: int = 100  # training steps per epoch
    batch_size: int = 16  # global batch size, split evenly over replicas
    seed: int = 0  # seeds weights, data order and augmentation
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "auto"  # auto: bf16 on bf16 matrix units
    xla: Literal["auto", "on", "off"] = "off"  # compile each replica's training step with XLA (one replica only); auto: measured at the start of a long run
    log_every: int = 10  # steps between scalar summaries (losses, learning rates)
    checkpoint_every: int = 200  # steps between checkpoints (one is also written after every epoch)
    steps_per_call: int = 50  # most training steps per traced call: fewer Python round trips; a call ends at every log step, checkpoint and epoch end; signals act between calls
    minutes: float = 0.0  # > 0: scale the planned steps so training takes about this long here (speed measured at start, saved in config.json)

    def __post_init__(self) -> None:
        self.check_types()
        self.validate()

    def check_types(self) -> None:
        """Raise ConfigError when a value does not have its field's type (e.g. from a script)."""
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value, kind = getattr(self, field.name), hints[field.name]
            if typing.get_origin(kind) is Literal:
                ok = value in typing.get_args(kind)
            elif typing.get_origin(kind) is tuple:
                item, length = _tuple_items(kind)
                ok = isinstance(value, tuple) and (length is None or len(value) == length) and all(
                    isinstance(v, item) and not isinstance(v, bool) for v in value)
            elif kind is float:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            else:
                ok = isinstance(value, kind)
            if not ok:
                raise ConfigError(f"{flag(field.name)} must be {describe_type(kind)}, got {value!r}")

    def validate(self) -> None:
        """Raise ConfigError naming the flag when a value is out of range (every float must be
        finite: an infinite or NaN learning rate or weight only shows up later as NaN losses)."""
        for name in ("epochs", "steps_per_epoch", "batch_size", "log_every", "checkpoint_every", "steps_per_call"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        self.require("seed", 0 <= self.seed <= MAX_SEED, f"in 0..{MAX_SEED} (TensorFlow seeds are 32-bit)")
        self.require("minutes", self.minutes >= 0, "0 (off) or more")
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            values = getattr(self, field.name)
            values = values if isinstance(values, tuple) else (values,)
            if hints[field.name] is float or typing.get_origin(hints[field.name]) is tuple:
                self.require(field.name, all(math.isfinite(v) for v in values if isinstance(v, float)),
                             "a finite number")

    def require(self, name: str, ok: bool, what: str) -> None:
        """Raise a ConfigError saying that field `name` must be `what` unless `ok`."""
        if not ok:
            raise ConfigError(f"{flag(name)} must be {what}, got {to_json_value(getattr(self, name))!r}")

    def to_dict(self) -> dict:
        """The config as JSON-ready values (what `config.json` and TensorBoard hold)."""
        return {f.name: to_json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def from_json_value(kind, value):
    """A field's value of type `kind` from its `config.json` form: lists become tuples, strings paths."""
    if typing.get_origin(kind) is tuple and isinstance(value, list):
        item, _ = _tuple_items(kind)
        return tuple(from_json_value(item, v) for v in value)
    return Path(value) if kind is Path and isinstance(value, str) else value


def saved_config(config_class: type, values: dict) -> TrainConfig:
    """The config a run saved in `config.json` (a field the run predates takes its default;
    one since removed is ignored).

    Raises:
        ConfigError: a saved value does not fit its field.
    """
    hints = typing.get_type_hints(config_class)
    return config_class(**{f.name: from_json_value(hints[f.name], values[f.name])
                           for f in dataclasses.fields(config_class) if f.name in values})


def read_run(run_dir: Path, recipe_name: str) -> dict | None:
    """The `config.json` of the run in `run_dir` ({"recipe", "preset", "config", "plan"}), or
    None for a new run. Imports no TensorFlow, so a resume's flag errors answer at once.

    Raises:
        ConfigError: `run_dir` is a file, or holds no zoo run config, or another recipe's run.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir {run_dir} is a file: give a folder (new or from an earlier run)")
    path = run_dir / "config.json"
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
        saved["config"] = dict(saved["config"])
        recipe = saved["recipe"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise ConfigError(f"{path} is not a zoo run config: choose another --run-dir") from None
    if recipe != recipe_name:
        raise ConfigError(f"--run-dir {run_dir} holds a {recipe!r} run, not {recipe_name!r}: "
                          "choose another --run-dir")
    return saved


def changed_fields(config: TrainConfig, saved: dict, ignore: tuple[str, ...] = ("epochs", "steps_per_call")) -> list[str]:
    """`--flag OLD -> NEW` for each field whose value differs from a saved `config.json` dict."""
    now = json.loads(json.dumps(config.to_dict()))
    # A field the saved run predates ran with its default.
    defaults = json.loads(json.dumps({f.name: to_json_value(f.default) for f in dataclasses.fields(config)}))
    return [f"{flag(k)} {saved.get(k, defaults[k])!r} -> {v!r}" for k, v in now.items()
            if k not in ignore and saved.get(k, defaults[k]) != v]
