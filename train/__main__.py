"""python -m train NAME [--preset P] [--FIELD VALUE ...] [--strategy S] [--run-dir DIR]

Every field of the recipe's config is a typed flag (`batch_size` -> `--batch-size 16`).
Re-running with an existing --run-dir resumes it, exactly where it stopped. Exit codes:
0 done, 2 bad input (one line on stderr, no traceback), 3 training diverged (a NaN or infinite
loss; the last good checkpoint is kept), 130 Ctrl-C (SIGINT) and 143 SIGTERM: a checkpoint was
saved, resume with the same command.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import inspect  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import typing  # noqa: E402
from pathlib import Path  # noqa: E402

# Only TensorFlow-free modules here: --help, --list and flag errors answer without it.
from train.config import STRATEGIES, ArgumentParser, ConfigError, describe_type, flag, parse_field  # noqa: E402

DIVERGED = 3  # exit code: a loss became NaN or infinite


def _field_comments(config_class: type) -> dict[str, str]:
    """The `# comment` after each field in the config class (and its bases)."""
    comments = {}
    for cls in reversed(config_class.__mro__):
        if dataclasses.is_dataclass(cls):
            for match in re.finditer(r"^\s+(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", inspect.getsource(cls), re.M):
                comments[match[1]] = match[2]
    return comments


def _field_type(kind):
    """An argparse `type` for one word of a field (tuples collect their words first)."""
    if isinstance(kind, type) and kind is not bool:
        return kind  # int, float, str, Path: argparse says "invalid int value: 'abc'"

    def parse(word: str):
        try:
            return word if typing.get_origin(kind) is tuple else parse_field(kind, [word])
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return parse


def _recipe_parser(recipe) -> ArgumentParser:
    parser = ArgumentParser(prog=f"python -m train {recipe.name}", description=recipe.description)
    parser.add_argument("--preset", default="default", choices=sorted(recipe.presets),
                        help="named settings (tiny: seconds, for tests; full: the published scale)")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="tf.distribute strategy (multi_worker reads TF_CONFIG)")
    parser.add_argument("--run-dir", type=Path, help="run folder (default runs/NAME/<time>); an existing one resumes")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    comments, hints = _field_comments(recipe.config_class), typing.get_type_hints(recipe.config_class)
    for field in dataclasses.fields(recipe.config_class):
        kind = hints[field.name]
        tuple_field = typing.get_origin(kind) is tuple
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None,
                            type=_field_type(kind), nargs="+" if tuple_field else None,
                            metavar=describe_type(kind) if not tuple_field else "V",
                            help=f"{comments.get(field.name, '').replace('%', '%%')} ({describe_type(kind)}, "
                                 f"default: {_shown(field.default)})")
    return parser


def _shown(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _given_fields(recipe, args) -> dict:
    """The config fields given as flags, parsed to their types (tuples from their words)."""
    hints, given = typing.get_type_hints(recipe.config_class), {}
    for field in dataclasses.fields(recipe.config_class):
        value = getattr(args, field.name)
        if value is None:
            continue
        if typing.get_origin(hints[field.name]) is tuple:
            try:
                value = parse_field(hints[field.name], value)
            except ValueError as error:
                raise ConfigError(f"argument {flag(field.name)}: {error}") from None
        given[field.name] = value
    return given


def _list_recipes() -> None:
    from train.recipes import RECIPES

    width = max(map(len, RECIPES)) + 2
    for name, recipe in sorted(RECIPES.items()):
        print(f"{name:{width}s}{recipe.description}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nRecipes:")
        _list_recipes()
        return 0
    if argv[0] == "--list":
        _list_recipes()
        return 0
    from train.recipes import get_recipe

    recipe = get_recipe(argv[0])
    args = _recipe_parser(recipe).parse_args(argv[1:])
    config = dataclasses.replace(recipe.presets[args.preset], **_given_fields(recipe, args))
    run_dir = args.run_dir or Path("runs") / recipe.name / time.strftime("%Y%m%d-%H%M%S")
    started = time.time()
    from train.trainer import Diverged, train  # TensorFlow from here on

    try:
        train(recipe, config, run_dir, args.strategy, verbose=not args.quiet)
    except Diverged as error:
        print(f"\nerror: training diverged: {error}", file=sys.stderr)
        return DIVERGED
    except KeyboardInterrupt as stop:
        print(f"\n{stop or 'interrupted'}; resume with the same command and --run-dir {run_dir}",
              file=sys.stderr)
        return 128 + getattr(stop, "signum", 2)
    if not args.quiet:
        model_path = run_dir / "model.keras"
        logdir = "runs" if args.run_dir is None else run_dir
        print(f"\nDone in {time.time() - started:.0f} s.\nSaved model: {model_path}\n"
              f"TensorBoard: tensorboard --logdir {logdir}")
        if recipe.usage:
            print("Use it:      " + recipe.usage.format(model=model_path))
    return 0


def _run() -> int:
    """`main()` with user errors (bad flags, configs, data, run dirs) as one `error:` line, exit 2."""
    try:
        return main()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from zoo.errors import UserError  # imported by now if one can have been raised

        if not isinstance(error, UserError):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_run())
