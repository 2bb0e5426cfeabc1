"""The recipe registry: every trainable NAME of `python -m train NAME`.

A recipe file holds a config dataclass, its presets and a `build(config)` function. Config
and presets import no TensorFlow (so `--help` is quick); `build` imports what it needs. What
two recipes share lives in a helper module `_NAME.py` (not a recipe); a recipe never imports
another recipe.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from train.config import ConfigError, TrainConfig


@dataclass(frozen=True)
class Recipe:
    """A named model + data + presets."""

    name: str
    description: str  # one line, shown by `python -m train --list`
    config_class: type[TrainConfig]  # a frozen TrainConfig subclass
    presets: dict[str, TrainConfig]  # preset name -> config; "default" is used when no --preset is given
    build: Callable  # build(config) -> train.trainer.Built, called inside the strategy scope
    usage: str = ""  # how to use the saved model; "{model}" is replaced by its path
    resize: Callable | None = None  # resize(config, factor) -> factor x the steps, same epochs; None: scale steps_per_epoch

    def resized(self, config: TrainConfig, factor: float) -> TrainConfig:
        """`config` with about `factor` times its planned steps, its schedules scaled alike
        (`--minutes`); at least one step per epoch."""
        if self.resize is not None:
            return self.resize(config, factor)
        return dataclasses.replace(config, steps_per_epoch=max(1, round(config.steps_per_epoch * factor)))


def _registry() -> dict[str, Recipe]:
    """Every module in this package is one recipe, exposing `RECIPE` (a file = a NAME), except
    the helpers that recipes share (`_*.py`)."""
    recipes = [importlib.import_module(f"{__name__}.{module.name}").RECIPE
               for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
               if not module.name.startswith("_")]
    return {recipe.name: recipe for recipe in recipes}


RECIPES: dict[str, Recipe] = _registry()


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; a ConfigError suggesting close names otherwise."""
    if name in RECIPES:
        return RECIPES[name]
    close = difflib.get_close_matches(name, RECIPES, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ConfigError(f"unknown recipe {name!r}: {hint}`python -m train --list` shows them all")
