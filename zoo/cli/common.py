"""What every `python -m zoo` subcommand shares: loading a model by what it can do, the
progress bar, result lines, JSON output, and checks on output paths made before any work."""

from __future__ import annotations

import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

import zoo
from zoo.errors import UserError

T = TypeVar("T")


def has_methods(model: Any, *names: str) -> bool:
    """Whether `model` has every one of these methods."""
    return all(callable(getattr(model, name, None)) for name in names)


def is_super_resolution(model: Any) -> bool:
    """A super-resolution model: `upscale(uint8 images, tile=, overlap=)` and a `scale`."""
    return has_methods(model, "upscale") and getattr(model, "scale", None) is not None


@dataclass(frozen=True)
class Use:
    """One thing a saved model can be used for, as a subcommand does it."""

    verb: str  # completes "model X cannot ...": "upscale", "sample", "be evaluated"
    can: Callable[[Any], bool]  # whether a loaded model supports it
    needs: str  # what to pass instead, for the error message


USES = {  # subcommand: use; `eval` has its own table of evaluations in zoo/cli/eval.py
    "upscale": Use("upscale", is_super_resolution,
                   "a super-resolution model (with `upscale` and `scale`, e.g. an SRGAN run of "
                   "`python -m train`)"),
    "sample": Use("sample", lambda model: has_methods(model, "sample"),
                  "a generative model with a `sample` method (a VAE or GAN)"),
    "predict": Use("predict", lambda model: has_methods(model, "predict_texts")
                   or has_methods(model, "predict_samples") or has_methods(model, "predict_images"),
                   "a classifier with `predict_texts`, `predict_samples` or `predict_images`"),
}


def purpose(model: Any) -> str:
    """What `model` is for, in words: the subcommands that can use it."""
    commands = [f"`python -m zoo {name}`" for name, use in USES.items() if use.can(model)]
    if not commands:
        return ("it has none of the methods zoo uses (upscale and scale, sample, predict_texts, "
                "predict_samples)")
    return "it is made for " + " and ".join(commands)


def load_for(path: str, use: Use) -> Any:
    """Load a model (`.keras` file or run directory) for inference and check it can do `use`.

    Raises:
        UserError: the model cannot be loaded, or cannot do `use`:
            `model PATH (Class) cannot VERB: <what it is for>; pass <what it needs>`.
    """
    model = zoo.load(path, compile=False)
    if not use.can(model):
        raise UserError(f"model {path} ({type(model).__name__}) cannot {use.verb}: {purpose(model)}; "
                        f"pass {use.needs}")
    return model


# ----------------------------------------------------------------------------- terminal output

def progress(items: Sequence[T], label: str, describe: Callable[[T], str] = str) -> Iterator[T]:
    """Yield `items`, drawing a one-line progress bar on stderr when stderr is a terminal."""
    show = sys.stderr.isatty() and len(items) > 0
    for i, item in enumerate(items):
        if show:
            bar = "#" * (20 * i // len(items))
            sys.stderr.write(f"\r{label} [{bar:<20}] {i}/{len(items)} {describe(item)[:40]:<40}")
            sys.stderr.flush()
        yield item
    if show:
        sys.stderr.write(f"\r{label} [{'#' * 20}] {len(items)}/{len(items)}{' ' * 41}\n")


def say(message: str) -> None:
    """Print a result line on stdout, first clearing a progress bar drawn on a terminal's stderr."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    print(message, flush=True)


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays become Python numbers and lists; JSON has no Infinity or NaN
    (e.g. the PSNR of identical images), so non-finite numbers become null."""
    if isinstance(value, dict):
        return {str(key): _jsonable(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalar or array
        return _jsonable(value.tolist())
    return None if isinstance(value, float) and not math.isfinite(value) else value


def dump_json(report: Any) -> str:
    """One line of strict JSON."""
    return json.dumps(_jsonable(report), allow_nan=False)


# ----------------------------------------------------------------------------- output paths

def check_writable(path: Path, mode: str) -> None:
    """Fail before any work if `path`'s folder is missing or its format cannot hold an image of
    `mode` (e.g. RGBA as JPEG)."""
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist: create it or choose another -o")
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise UserError(f"cannot write {path}: unknown image format {path.suffix!r}; "
                        "use a .png, .jpg, .bmp or .tif name")
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format=image_format)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot write {path}: {error}; use a .png name") from None


def refuse_overwriting(outputs: Iterable[Path], inputs: Iterable[str | Path]) -> None:
    """Fail if an output file is one of the inputs, whatever the spelling (`./a.png`, a
    relative or absolute path, a symbolic or hard link).

    Raises:
        UserError: naming the output and the input it would overwrite.
    """
    existing = [Path(p) for p in inputs if Path(p).exists()]
    for output in outputs:
        if not output.exists():
            continue  # an input exists, so a missing output is none of them
        for source in existing:
            if os.path.samefile(output, source):
                raise UserError(f"output {output} is the input {source}: zoo does not overwrite its "
                                "inputs; choose another -o")
