"""What every `python -m zoo` subcommand shares: loading a model by what it can do, the
progress bar and result lines (`zoo.progress`), JSON output, and checks on output paths made
before any work (`zoo.data.images`)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zoo
from zoo.data.images import check_writable, refuse_overwriting  # noqa: F401  (used by the subcommands)
from zoo.errors import UserError
from zoo.progress import progress, say  # noqa: F401  (used by the subcommands)


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
    if not commands and isinstance(getattr(model, "purpose", None), str):
        return model.purpose  # e.g. a pre-trained encoder: what to do with it instead
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
