"""python -m train NAME [--preset P] [--FIELD VALUE ...] [--strategy S] [--run-dir DIR]

Every field of the recipe's config is a typed flag (`batch_size` -> `--batch-size 16`).
Re-running with an existing --run-dir resumes it, exactly where it stopped, with the preset and
settings in its config.json: `--run-dir DIR` alone is enough; a flag may repeat a saved value,
and only --epochs may change it (to train longer). Exit codes:
0 done, 2 bad input (one line on stderr, no traceback), 3 training diverged (a NaN or infinite
loss; the last good checkpoint is kept), 130 Ctrl-C (SIGINT) and 143 SIGTERM: a checkpoint was
saved, resume with the same command.
"""

from __future__ import annotations

# TensorFlow's C++ log stays off stderr unless --verbose or TF_CPP_MIN_LOG_LEVEL asks for it:
# zoo/quiet.py imports TensorFlow (in main, once the flags are read).

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import inspect  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import typing  # noqa: E402
from pathlib import Path  # noqa: E402

# Only TensorFlow-free modules here: --help, --list and flag errors answer without it.
from train.config import (STRATEGIES, ArgumentParser, ConfigError, TrainConfig, changed_fields,  # noqa: E402
                          describe_type, flag, parse_field, read_run, saved_config)

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


def _recipe_parser(recipe, preset: str = "default") -> ArgumentParser:
    """The recipe's flags; `--help` shows the defaults of `preset`. A flag not given parses to
    None, so that a resumed run can tell the flags given from its saved settings."""
    parser = ArgumentParser(prog=f"python -m train {recipe.name}", description=recipe.description,
                            epilog=f"The defaults shown are those of --preset {preset}. An existing --run-dir "
                                   "resumes with its own preset and settings (config.json); only --epochs "
                                   "may differ.")
    parser.add_argument("--preset", choices=sorted(recipe.presets),
                        help="named settings (default: default; tiny: seconds, for tests; full: the "
                             "published scale; a resumed --run-dir: its own)")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES,
                        help="tf.distribute strategy (multi_worker reads TF_CONFIG)")
    parser.add_argument("--run-dir", type=Path, help="run folder (default runs/NAME/<time>); an existing one "
                                                     "resumes with its config.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true",  # acted on by zoo/quiet.py, at import
                        help="also print TensorFlow's own C++ log on stderr (quiet by default; "
                             "TF_CPP_MIN_LOG_LEVEL in the environment is used as given)")
    comments, hints = _field_comments(recipe.config_class), typing.get_type_hints(recipe.config_class)
    defaults = recipe.presets.get(preset) or recipe.config_class()
    for field in dataclasses.fields(recipe.config_class):
        kind = hints[field.name]
        tuple_field = typing.get_origin(kind) is tuple
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None,
                            type=_field_type(kind), nargs="+" if tuple_field else None,
                            metavar=describe_type(kind) if not tuple_field else "V",
                            help=f"{comments.get(field.name, '').replace('%', '%%')} ({describe_type(kind)}, "
                                 f"default: {_shown(getattr(defaults, field.name))})")
    return parser


def _asked_preset(recipe, argv: list[str]) -> str:
    """The `--preset` in `argv` (for `--help`), or "default"; the full parser reports bad ones."""
    parser = ArgumentParser(add_help=False)
    parser.add_argument("--preset")
    try:
        preset = parser.parse_known_args(argv)[0].preset
    except ConfigError:
        return "default"
    return preset if preset in recipe.presets else "default"


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


def _config(recipe, args, run_dir: Path) -> tuple[TrainConfig, str | None]:
    """(the config to train, its preset's name): a new run's preset with the flags given; a
    resumed run's config.json with the flags given, which must repeat its values (but --epochs).

    Raises:
        ConfigError: a flag or --preset disagrees with the run in `run_dir` (naming both values).
    """
    given, saved = _given_fields(recipe, args), read_run(run_dir, recipe.name)
    if saved is None:
        preset = args.preset or "default"
        return dataclasses.replace(recipe.presets[preset], **given), preset
    preset = saved.get("preset")
    if args.preset and preset and args.preset != preset:
        raise ConfigError(f"--preset {args.preset} disagrees with --run-dir {run_dir}, a --preset {preset} "
                          "run: leave --preset out to resume it, or choose another --run-dir")
    try:
        run_config = saved_config(recipe.config_class, saved["config"])
    except ConfigError as error:
        raise ConfigError(f"{run_dir / 'config.json'} holds a bad value ({error}): "
                          "choose another --run-dir") from None
    # A run saved before config.json named its preset: an explicit --preset stands for its values.
    start = recipe.presets[args.preset] if args.preset and not preset else run_config
    changed = changed_fields(dataclasses.replace(start, **given), saved["config"])
    if changed:
        raise ConfigError(f"--run-dir {run_dir} was started with other settings (the run's -> yours: "
                          f"{'; '.join(changed)}): leave those flags out to resume it as it was "
                          "(only --epochs may change), or choose another --run-dir")
    return dataclasses.replace(run_config, **given), preset or args.preset


def usage_line(usage: str, model_path: Path, example: str | None) -> str:
    """A recipe's usage hint for the saved model: `{model}` is its path, `{example}` an input
    from the run's own data (`Built.example`), quoted for the shell."""
    return usage.format(model=shlex.quote(str(model_path)), example=shlex.quote(example or "a text to classify"))


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
    args = _recipe_parser(recipe, _asked_preset(recipe, argv[1:])).parse_args(argv[1:])
    run_dir = args.run_dir or Path("runs") / recipe.name / time.strftime("%Y%m%d-%H%M%S")
    config, preset = _config(recipe, args, run_dir)
    started = time.time()
    from zoo.quiet import import_tensorflow

    import_tensorflow()  # TensorFlow from here on, without its C++ start-up noise
    from train.trainer import Diverged, train

    try:
        model = train(recipe, config, run_dir, args.strategy, verbose=not args.quiet, preset=preset)
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
            print("Use it:      " + usage_line(recipe.usage, model_path, model.usage_example))
    return 0


def _run(argv: list[str] | None = None) -> int:
    """`main()` with user errors (bad flags, configs, data, run dirs) as one `error:` line, exit 2."""
    try:
        return main(argv)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        from zoo.errors import UserError  # imported by now if one can have been raised

        if not isinstance(error, UserError):
            # Print and return rather than re-raise: the traceback's frames are freed before the
            # interpreter shuts down, so a streamed tf.data iterator they hold does not wait
            # forever for a Python decode function that shutdown has stopped (TF 2.21).
            import traceback

            traceback.print_exc()
            return 1
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_run())
