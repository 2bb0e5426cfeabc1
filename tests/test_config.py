"""Typed config fields as flags (tuples, choices, paths), resume comparison, quick start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
from helpers import ROOT

from train.__main__ import _given_fields, _recipe_parser
from train.config import ConfigError, TrainConfig, changed_fields
from train.recipes import Recipe


@dataclass(frozen=True)
class GridConfig(TrainConfig):
    grid: tuple[int, int] = (20, 20)  # map rows x cols
    widths: tuple[float, ...] = (0.5,)  # any number of floats
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"  # decoder likelihood
    table: Path = Path("data.csv")  # a file
    conditional: bool = False  # class-conditional

    def validate(self) -> None:
        super().validate()
        self.require("grid", min(self.grid) >= 1, "at least 1x1")


RECIPE = Recipe("grid", "a config with every kind of field", GridConfig, {"default": GridConfig()}, None)


def parse(*argv: str) -> GridConfig:
    args = _recipe_parser(RECIPE).parse_args(list(argv))
    return GridConfig(**{**GridConfig().__dict__, **_given_fields(RECIPE, args)})


@pytest.mark.parametrize("argv, field, value", [
    (["--grid", "8", "12"], "grid", (8, 12)),
    (["--grid", "8x12"], "grid", (8, 12)),
    (["--grid", "8,12"], "grid", (8, 12)),
    (["--widths", "1", "2.5", "3"], "widths", (1.0, 2.5, 3.0)),
    (["--likelihood", "gaussian"], "likelihood", "gaussian"),
    (["--table", "x/y.tsv"], "table", Path("x/y.tsv")),
    (["--conditional", "yes"], "conditional", True),
])
def test_flags_of_every_type(argv, field, value):
    assert getattr(parse(*argv), field) == value


@pytest.mark.parametrize("argv, fragments", [
    (["--grid", "8"], ["--grid", "expected 2 values"]),
    (["--grid", "8x1x2"], ["--grid", "expected 2 values"]),
    (["--grid", "8", "a"], ["--grid", "invalid literal"]),
    (["--grid", "0x5"], ["--grid must be at least 1x1", "[0, 5]"]),
    (["--likelihood", "poisson"], ["--likelihood", "expected one of bernoulli, gaussian"]),
    (["--conditional", "maybe"], ["--conditional", "expected true or false"]),
    (["--precision", "float8"], ["--precision", "expected one of auto, float32"]),
])
def test_bad_flags_name_the_flag(argv, fragments):
    with pytest.raises(ConfigError) as error:
        parse(*argv)
    for fragment in fragments:
        assert fragment in str(error.value), (fragment, str(error.value))


def test_help_lists_choices_and_tuple_defaults():
    text = _recipe_parser(RECIPE).format_help()
    assert "{bernoulli,gaussian}" in text and "default: 20x20" in text and "map rows x cols" in text


def test_config_checks_types_from_code_too():
    with pytest.raises(ConfigError, match="--grid must be INT INT"):
        GridConfig(grid=(1.5, 2))
    with pytest.raises(ConfigError, match="--likelihood must be"):
        GridConfig(likelihood="poisson")


def test_resume_compares_tuples_and_paths_as_saved_in_json():
    config = GridConfig(grid=(8, 12), table=Path("a.csv"))
    saved = json.loads(json.dumps(config.to_dict()))
    assert saved["grid"] == [8, 12] and saved["table"] == "a.csv"
    assert changed_fields(config, saved) == []
    assert changed_fields(GridConfig(grid=(8, 13), table=Path("a.csv")), saved) == ["--grid [8, 12] -> [8, 13]"]
    assert changed_fields(GridConfig(epochs=99, grid=(8, 12), table=Path("a.csv")), saved) == []
    older = {k: v for k, v in saved.items() if k != "minutes"}  # a run saved before the field existed
    assert changed_fields(config, older) == []
    assert changed_fields(GridConfig(grid=(8, 12), table=Path("a.csv"), minutes=5.0), older) == ["--minutes 0.0 -> 5.0"]


def test_help_and_flag_errors_do_not_import_tensorflow():
    """`--help`, `--list` and flag errors answer without TensorFlow (3-9 s to import here)."""
    code = ("import sys\nfrom train.__main__ import _run\nsys.argv = ['train'] + sys.argv[1:]\n"
            "try:\n    code = _run()\nexcept SystemExit as stop:\n    code = stop.code\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
            "assert 'keras' not in sys.modules, 'keras imported'\nsys.exit(code)")
    for argv, expected in ((["--help"], 0), (["--list"], 0), (["gan_superres", "--help"], 0),
                           (["gan_superres", "--epochs", "-1"], 2), (["gan_superres", "--bogus"], 2),
                           (["gan_superes"], 2)):
        result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                                timeout=60, cwd=ROOT)
        assert result.returncode == expected, (argv, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, (argv, result.stderr[-2000:])


def test_every_recipe_help_renders():
    """argparse formats help strings: a `%` in a field comment must not break `--help`."""
    from train.recipes import RECIPES

    for recipe in RECIPES.values():
        assert "--batch-size" in _recipe_parser(recipe).format_help(), recipe.name
    percent = Recipe("percent", "a comment with a percent sign", PercentConfig, {"default": PercentConfig()}, None)
    assert "10% of the data" in _recipe_parser(percent).format_help()


@dataclass(frozen=True)
class PercentConfig(TrainConfig):
    share: float = 0.1  # 10% of the data
