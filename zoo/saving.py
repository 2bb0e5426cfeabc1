"""Loading saved zoo models with clear errors (safe mode stays on).

`keras.saving.load_model` reports user mistakes in many shapes: a missing or truncated file
reads "File not found", a zip without `config.json` raises `KeyError`, a class it does not know
raises `TypeError`, a damaged weights file raises `OSError` from h5py (Keras 3.15.1). `load`
turns all of them into one `UserError` that names the file and says what to do.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import keras

from zoo.errors import UserError  # importing zoo.* runs zoo/__init__, which registers every class

MODEL_FILE = "model.keras"  # the final model inside a run directory (see DESIGN.md)

# What load_model raises for damaged or foreign files (measured on Keras 3.15.1).
_LOAD_ERRORS = (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile, json.JSONDecodeError)


def resolve_model_path(path: str | Path) -> Path:
    """The `.keras` file that `path` names: the file itself, or `model.keras` in a run directory.

    Raises:
        UserError: the path is missing, a directory without `model.keras`, not a `.keras`
            file, or not a zip archive (a truncated download or another kind of file).
    """
    path = Path(path)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise UserError(f"run directory {path} has no {MODEL_FILE} (did training finish?): "
                            f"pass a finished run directory or a .keras file")
        path = path / MODEL_FILE
    elif not path.exists():
        raise UserError(f"model {path} does not exist: pass a .keras file or a run directory")
    if path.suffix != ".keras":
        raise UserError(f"model {path} is not a .keras file: pass a model saved by `python -m train` "
                        "or `model.save('name.keras')` (legacy .h5 and SavedModel are not loaded)")
    if not zipfile.is_zipfile(path):
        raise UserError(f"model {path} is not a Keras model archive (truncated or another kind "
                        "of file): save or copy it again")
    return path


def load(path: str | Path, compile: bool = True) -> keras.Model:
    """Load a saved model from a `.keras` file or a run directory, in Keras safe mode.

    Args:
        path: a `.keras` file, or a run directory holding `model.keras`.
        compile: restore the optimizers too (for resuming training); False for inference.

    Returns:
        The model, with every zoo class resolved.

    Raises:
        UserError: the path is missing or the file is damaged, foreign, or needs unsafe
            deserialization (e.g. a Python lambda).

    Example:
    >>> model = zoo.load("runs/srgan/20260101-120000")  # doctest: +SKIP
    >>> model.upscale(image).shape  # doctest: +SKIP
    """
    path = resolve_model_path(path)
    try:
        return keras.saving.load_model(path, compile=compile)
    except _LOAD_ERRORS as error:
        raise UserError(f"cannot load model {path}: {_summary(error)}; pass a model saved by "
                        "`python -m train` or `model.save(...)` with this version of zoo") from None


def _summary(error: BaseException, limit: int = 240) -> str:
    """The first line of an exception message, shortened (Keras appends whole configs)."""
    text = str(error).strip().strip('"').splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, TypeError) and "Could not locate" in text:
        text = text.split(". ")[0] + " (saved by another version of zoo, or by other code?)"
    return text if len(text) <= limit else text[:limit - 3] + "..."
