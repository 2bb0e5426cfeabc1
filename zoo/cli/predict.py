"""`python -m zoo predict MODEL INPUT... [--file F] [--json]`: classify texts, samples or images.

A text classifier has `predict_texts(list of str) -> list of dict`; a classifier of numeric
samples has `predict_samples((N, D) float array) -> list of dict`; an image classifier has
`predict_images(uint8 (N, H, W, C)) -> list of dict` and `image_shape` (each input is an image
file, converted to the model's channels; --file lists image paths, one per line). Each dict
holds `label` (the class name), `probabilities` (`{class name: probability}`) and optionally
`attention` (the top words, as words or `(word, weight)` pairs). Inputs are the INPUT arguments,
then the lines of --file (for samples: each INPUT is one comma-separated row; --file is a .npy
array or a CSV).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from zoo.cli.common import USES, dump_json, has_methods, load_for, say
from zoo.errors import UserError


def _lines(path: str, encoding: str = "auto") -> list[str]:
    """The non-blank lines of a text file in `encoding` ("auto": UTF-8, GBK or another encoding
    `decode_text` recognises)."""
    from zoo.data.text import REPLACED, decode_file

    try:
        text, used = decode_file(path, encoding)
    except FileNotFoundError:
        raise UserError(f"--file {path} does not exist") from None
    except OSError as error:
        raise UserError(f"cannot read --file {path}: {error.strerror or error}") from None
    if used == REPLACED:
        raise UserError(f"cannot read --file {path} as text: its encoding was not recognised (not UTF-8, "
                        "UTF-16/32 with a byte-order mark, GBK, Big5, Shift_JIS, EUC-KR or Windows-1252): "
                        "pass --encoding (e.g. cp1251), or save it as UTF-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def _rows(path: str) -> np.ndarray:
    """`(N, D)` float samples from a .npy file or a CSV (commas or spaces) file."""
    if not Path(path).is_file():
        raise UserError(f"--file {path} does not exist")
    try:
        if path.endswith(".npy"):
            return np.atleast_2d(np.load(path, allow_pickle=False).astype(np.float32))
        delimiter = "," if "," in Path(path).read_text(encoding="utf-8") else None
        return np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=np.float32)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read samples from --file {path}: {error}") from None


def _samples(texts: list[str], file: str | None) -> tuple[np.ndarray, list[str]]:
    """Samples from TEXT rows and --file, and how each is shown."""
    rows = []
    for text in texts:
        try:
            rows.append([float(value) for value in text.replace(",", " ").split()])
        except ValueError:
            raise UserError(f"{text!r} is not a comma-separated row of numbers; this model "
                            "classifies numeric samples") from None
    shown = list(texts)
    if file is not None:
        from_file = _rows(file)
        rows += from_file.tolist()
        shown += [f"{file}[{i}]" for i in range(len(from_file))]
    if len({len(row) for row in rows}) > 1:
        raise UserError(f"samples differ in length: {sorted({len(row) for row in rows})} values")
    return np.asarray(rows, np.float32), shown


def _images(model: Any, paths: list[str]) -> np.ndarray:
    """uint8 `(N, H, W, C)` images from image files, converted to the model's channels as
    `zoo.data.read_image` does (colour to gray: ITU-R 601 luma); another size is an error."""
    from zoo.data import read_image

    if not paths:
        raise UserError("nothing to predict: pass image files (or --file F, one image path per line)")
    height, width, channels = model.image_shape
    images = []
    for path in paths:
        image = read_image(path, channels)
        if image.shape[:2] != (height, width):
            raise UserError(f"image {path} is {image.shape[1]}x{image.shape[0]} pixels; this model classifies "
                            f"{width}x{height} images: resize it to {width}x{height} first")
        images.append(image)
    return np.stack(images)


def _predict(model: Any, args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """Run the model's predict method on every input; results and how each input is shown."""
    if has_methods(model, "predict_images"):  # image classifiers: TEXT arguments are image files
        paths = list(args.texts) + (_lines(args.file, args.encoding) if args.file is not None else [])
        return list(model.predict_images(_images(model, paths))), paths
    if has_methods(model, "predict_texts"):
        texts = list(args.texts) + (_lines(args.file, args.encoding) if args.file is not None else [])
        if not texts:
            raise UserError("nothing to predict: pass TEXT arguments or --file F (one text per line)")
        return list(model.predict_texts(texts)), texts
    samples, shown = _samples(list(args.texts), args.file)
    if not shown:
        raise UserError("nothing to predict: pass samples as comma-separated TEXT rows or --file F "
                        "(.npy or CSV)")
    return list(model.predict_samples(samples)), shown


def _attention(result: dict) -> str:
    words = result.get("attention") or []
    shown = [w if isinstance(w, str) else f"{w[0]} {float(w[1]):.2f}" for w in words]
    return f"  (attention: {', '.join(shown)})" if shown else ""


def _position(result: dict) -> str:
    """A map's answer (e.g. a SOM): `  (grid position (row, col), unit I, distance D)`."""
    if "position" not in result:
        return ""
    row, col = result["position"]
    distance = float(result.get("distance", "nan"))
    return f"  (grid position ({row}, {col}), unit {result.get('unit')}, distance {distance:.3f})"


def format_line(shown: str, result: dict) -> str:
    """`label [probability]  input  (grid position ...)  (attention: ...)` for one prediction;
    the probability is left out when the result has none for its label."""
    probability = result.get("probabilities", {}).get(result["label"])
    shown_probability = "" if probability is None else f" {float(probability):.3f}"
    return f"{result['label']}{shown_probability}  {shown}{_position(result)}{_attention(result)}"


def run(args: argparse.Namespace) -> int:
    """Print one line per input, or one JSON object `{"model", "predictions": [...]}`."""
    if not args.texts and args.file is None:
        raise UserError("nothing to predict: pass TEXT arguments or --file F")
    model = load_for(args.model, USES["predict"])
    results, shown = _predict(model, args)
    if len(results) != len(shown):
        raise RuntimeError(f"{type(model).__name__} returned {len(results)} predictions for "
                           f"{len(shown)} inputs")
    if args.json:
        predictions = [{"input": s, **result} for s, result in zip(shown, results)]
        print(dump_json({"model": args.model, "predictions": predictions}))
    else:
        for s, result in zip(shown, results):
            say(format_line(s, result))
    return 0
