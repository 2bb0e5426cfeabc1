"""python -m train NAME [--preset P] [--FIELD VALUE ...] [--strategy S] [--run-dir DIR]

Every field of the recipe's config is a typed flag (`batch_size` -> `--batch-size 16`).
Re-running with an existing --run-dir resumes it. Exit codes: 0 done, 2 bad input
(one line on stderr, no traceback), 130 interrupted (resume with the same command).
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

from zoo.errors import ArgumentParser, UserError  # noqa: E402


def _field_comments(config_class: type) -> dict[str, str]:
    """The `# comment` after each field in the config class (and its bases)."""
    comments = {}
    for cls in reversed(config_class.__mro__):
        if dataclasses.is_dataclass(cls):
            for match in re.finditer(r"^\s+(\w+): [^=\n]+=[^#\n]*#\s*(.+)$", inspect.getsource(cls), re.M):
                comments[match[1]] = match[2]
    return comments


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _recipe_parser(recipe) -> ArgumentParser:
    from train.strategy import STRATEGIES

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
        parser.add_argument("--" + field.name.replace("_", "-"), dest=field.name, default=None,
                            type=_bool if kind is bool else kind, metavar=kind.__name__.upper(),
                            help=f"{comments.get(field.name, '')} (default: {field.default})")
    return parser


def _list_recipes() -> None:
    from train.recipes import RECIPES

    for name, recipe in sorted(RECIPES.items()):
        print(f"{name:16s} {recipe.description}")


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
    from train.trainer import train

    recipe = get_recipe(argv[0])
    args = _recipe_parser(recipe).parse_args(argv[1:])
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(recipe.config_class)
             if getattr(args, f.name) is not None}
    config = dataclasses.replace(recipe.presets[args.preset], **given)
    run_dir = args.run_dir or Path("runs") / recipe.name / time.strftime("%Y%m%d-%H%M%S")
    started = time.time()
    try:
        train(recipe, config, run_dir, args.strategy, verbose=not args.quiet)
    except KeyboardInterrupt:
        print(f"\ninterrupted: resume with the same command and --run-dir {run_dir}", file=sys.stderr)
        return 130
    if not args.quiet:
        model_path = run_dir / "model.keras"
        logdir = "runs" if args.run_dir is None else run_dir
        print(f"\nDone in {time.time() - started:.0f} s.\nSaved model: {model_path}\n"
              f"TensorBoard: tensorboard --logdir {logdir}")
        if recipe.usage:
            print("Use it:      " + recipe.usage.format(model=model_path))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
