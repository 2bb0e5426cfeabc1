"""Inference command line: use a saved zoo model.

    python -m zoo eval MODEL_OR_RUN_DIR --data DIR [--scale 4] [--json]
    python -m zoo upscale MODEL IN... -o OUT [--tile 128] [--overlap 16]

`eval` scores super-resolution on held-out images in the convention of published tables
(HR cropped to a multiple of the scale, LR by antialiased bicubic, PSNR/SSIM on BT.601
studio-range Y with `scale` pixels shaved; see zoo/metrics.py), next to the bicubic baseline.
`upscale` super-resolves image files of any size in overlapping tiles, keeping the image mode
(RGB, RGBA, L, LA; other modes become RGB, RGBA or L).

Exit codes:
    0  success.
    2  the request cannot be done as given: a bad flag, or a bad thing the user named (a missing
       or damaged model, image or folder, a model of the wrong kind). One line
       `error: <what is wrong and what to do>` on stderr, no traceback, and no output file is
       created or overwritten.
    1  an unexpected failure inside zoo (a bug: Python prints the traceback).
    130  interrupted (Ctrl-C).
"""
# ruff: noqa: E402  (the environment is set before TensorFlow can be imported)

from __future__ import annotations

import os

# Must precede TensorFlow's import to matter; note that `python -m zoo` imports the `zoo` package
# (and TensorFlow) before this module, and that TF 2.21 prints its start-up lines regardless.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import keras
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

import zoo
from zoo.data import bicubic_downscale, bicubic_upscale, sr_eval_images, write_image
from zoo.errors import ArgumentParser, UserError
from zoo.metrics import psnr_y, ssim_y

USAGE_ERROR = 2
T = TypeVar("T")
MODES_BY_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_KEPT_MODES = {"1": "L", "L": "L", "LA": "LA", "La": "LA", "RGB": "RGB", "RGBA": "RGBA",
               "RGBa": "RGBA", "PA": "RGBA"}
_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


# ----------------------------------------------------------------------------- shared helpers

def _progress(items: list[T], label: str, describe: Callable[[T], str] = str) -> Iterator[T]:
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


def _say(message: str) -> None:
    """Print a result line on stdout, first clearing a progress bar drawn on a terminal's stderr."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    print(message, flush=True)


def load_sr_model(path: str, scale: int | None = None) -> keras.Model:
    """Load a super-resolution model (anything with `upscale` and `scale`) for inference.

    Args:
        path: a `.keras` file or a run directory holding `model.keras`.
        scale: the scale the user asked for; None accepts the model's.

    Raises:
        UserError: the model cannot be loaded, cannot upscale, or has another scale.
    """
    model = zoo.load(path, compile=False)
    if not callable(getattr(model, "upscale", None)):
        raise UserError(f"model {path} ({type(model).__name__}) has no `upscale` method: "
                        "pass a super-resolution model (e.g. an SRGAN run of `python -m train`)")
    model_scale = getattr(model, "scale", None)
    if model_scale is None:
        raise UserError(f"model {path} ({type(model).__name__}) does not say its scale: "
                        "it is not a zoo super-resolution model")
    if scale is not None and scale != model_scale:
        raise UserError(f"--scale {scale} does not match the model, which upscales x{model_scale}: "
                        f"drop --scale or pass --scale {model_scale}")
    return model


def _check_tiling(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.tile < 1 or not 0 <= args.overlap < args.tile / 2:
        parser.error(f"need --tile >= 1 and 0 <= --overlap < tile / 2, got --tile {args.tile} "
                     f"--overlap {args.overlap}")


# ----------------------------------------------------------------------------- eval

def _score(sr: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
    return {"psnr_y": psnr_y(sr, hr, border=scale), "ssim_y": ssim_y(sr, hr, border=scale)}


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in ("psnr_y", "ssim_y")}


def evaluate(model: keras.Model, images: list[tuple[str, np.ndarray]], scale: int, tile: int = 128,
             overlap: int = 16) -> dict:
    """Score `model.upscale` and bicubic against each HR image (both from the same uint8 LR).

    Args:
        model: a super-resolution model with `upscale(uint8 images, tile, overlap)`.
        images: `(name, (H, W, 3) uint8)` with H and W multiples of `scale`.
        scale: the upscaling factor; also the border shaved before scoring.
        tile, overlap: tiling of `model.upscale`.

    Returns:
        `{"scale", "n_images", "model": means, "bicubic": means, "images": [per image]}`.
    """
    rows = []
    for name, hr in _progress(images, "eval", lambda item: item[0]):
        lr = bicubic_downscale(hr, scale).numpy()  # (H / s, W / s, 3) uint8
        sr = model.upscale(lr, tile=tile, overlap=overlap)  # (H, W, 3) uint8
        bicubic = bicubic_upscale(lr, scale).numpy()
        rows.append({"name": name, "model": _score(sr, hr, scale), "bicubic": _score(bicubic, hr, scale)})
    return {"scale": scale, "n_images": len(rows),
            "model": _mean([r["model"] for r in rows]), "bicubic": _mean([r["bicubic"] for r in rows]),
            "images": rows}


def _finite(value):
    """JSON has no Infinity (PSNR of identical images): non-finite numbers become null."""
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def format_table(report: dict, model_path: str) -> str:
    """The eval report as a text table, one row per image and the mean last."""
    width = max([len("mean")] + [len(r["name"]) for r in report["images"]])
    head = (f"x{report['scale']} super-resolution of {report['n_images']} image(s) from "
            f"{report['data']} by {model_path}\n(PSNR/SSIM on BT.601 studio-range Y, "
            f"{report['scale']} pixels shaved per side)\n")
    lines = [f"{'image':<{width}}  {'PSNR-Y':>7} {'SSIM-Y':>7}  {'bicubic PSNR-Y':>14} {'SSIM-Y':>7}"]
    mean = {"name": "mean", "model": report["model"], "bicubic": report["bicubic"]}
    for row in [*report["images"], mean]:
        m, b = row["model"], row["bicubic"]
        lines.append(f"{row['name']:<{width}}  {m['psnr_y']:7.2f} {m['ssim_y']:7.4f}  "
                     f"{b['psnr_y']:14.2f} {b['ssim_y']:7.4f}")
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return head + "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    """`python -m zoo eval`: print the metrics table, or one JSON object with --json."""
    model = load_sr_model(args.model, args.scale)
    images = sr_eval_images(args.data, model.scale)
    scores = evaluate(model, images, model.scale, args.tile, args.overlap)
    report = {"scale": model.scale, "n_images": len(images), "data": args.data, **scores}
    print(json.dumps(_finite(report)) if args.json else format_table(report, args.model))
    return 0


# ----------------------------------------------------------------------------- upscale

def _to_uint8_gray(image: Image.Image) -> np.ndarray:
    """16-bit / integer / float gray (modes I;16, I, F) -> `(H, W, 1)` uint8."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16") or array.max(initial=0) > 255:
        array = array / 257.0  # 0..65535 -> 0..255
    return np.clip(np.round(array), 0, 255).astype(np.uint8)[..., None]


def read_input(path: str | Path) -> np.ndarray:
    """Read an image to upscale as `(H, W, C)` uint8, C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA).

    RGB, RGBA, L and LA are kept; palette images become RGB (RGBA if they have
    transparency), 16-bit gray becomes 8-bit L, anything else (CMYK, YCbCr...) RGB.
    An EXIF orientation (phone photos) is applied, as image viewers do.

    Raises:
        UserError: the file is missing, truncated or not an image.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input image {path} does not exist")
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)  # a copy, loaded
            if image.mode.startswith("I") or image.mode == "F":
                return _to_uint8_gray(image)
            transparent = image.mode == "P" and "transparency" in image.info
            mode = _KEPT_MODES.get(image.mode, "RGBA" if transparent else "RGB")
            array = np.asarray(image.convert(mode))
    except _READ_ERRORS as error:
        raise UserError(f"cannot read image {path}: {error}") from None
    return array if array.ndim == 3 else array[..., None]


def upscale_image(model: keras.Model, image: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Super-resolve one `(H, W, C)` uint8 image, C in 1..4; alpha is upscaled by bicubic."""
    if image.shape[-1] == 2:  # LA: the model sees the gray channel, alpha goes bicubic
        gray = model.upscale(image[..., :1], tile=tile, overlap=overlap)
        alpha = bicubic_upscale(image[..., 1:], model.scale).numpy()
        return np.concatenate([gray, alpha], axis=-1)
    return np.asarray(model.upscale(image, tile=tile, overlap=overlap))


def _check_writable(path: Path, mode: str) -> None:
    """Fail before any work if `path`'s format cannot hold an image of `mode` (e.g. RGBA JPEG)."""
    image_format = Image.registered_extensions().get(path.suffix.lower())
    if image_format is None or image_format not in Image.SAVE:
        raise UserError(f"cannot write {path}: unknown image format {path.suffix!r}; "
                        "use a .png, .jpg, .bmp or .tif name")
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format=image_format)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"cannot write {path}: {error}; use a .png name") from None


def output_paths(inputs: list[str], out: str, scale: int) -> list[Path]:
    """Where each input's result goes: `out` itself for one input (unless it is a folder),
    else `<out>/<stem>_x<scale>.png` in an existing folder.

    Raises:
        UserError: the output folder does not exist, or two inputs would share an output name.
    """
    out_path = Path(out)
    if len(inputs) == 1 and not out_path.is_dir():
        if not out_path.parent.is_dir():
            raise UserError(f"output folder {out_path.parent} does not exist: create it or choose "
                            "another -o")
        return [out_path]
    if not out_path.is_dir():
        raise UserError(f"-o {out} must be an existing folder when upscaling {len(inputs)} "
                        "images: create it first")
    paths = [out_path / f"{Path(p).stem}_x{scale}.png" for p in inputs]
    clashes = sorted({p.name for p in paths if paths.count(p) > 1})
    if clashes:
        raise UserError(f"several inputs would write the same output file(s) {', '.join(clashes)} "
                        f"in {out_path}: rename the inputs or upscale them one group at a time")
    return paths


def _check_inputs(inputs: list[str], outputs: list[Path]) -> None:
    """Read every input once and check every output format, naming all bad inputs at once."""
    bad = []
    for path, target in zip(inputs, outputs, strict=True):
        try:
            _check_writable(target, MODES_BY_CHANNELS[read_input(path).shape[-1]])
        except UserError as error:
            bad.append(str(error))
    if bad:
        raise UserError("; ".join(bad) if len(bad) == 1 else f"{len(bad)} problems: " + "; ".join(bad))


def cmd_upscale(args: argparse.Namespace) -> int:
    """`python -m zoo upscale`: super-resolve each input and print where its result went."""
    model = load_sr_model(args.model)
    outputs = output_paths(args.inputs, args.output, model.scale)
    _check_inputs(args.inputs, outputs)  # nothing is written if any input is bad
    jobs = list(zip(args.inputs, outputs, strict=True))
    for source, target in _progress(jobs, "upscale", lambda job: job[0]):
        image = read_input(source)
        result = upscale_image(model, image, args.tile, args.overlap)
        write_image(target, result)
        _say(f"{source} ({image.shape[1]}x{image.shape[0]}) -> {target} "
             f"({result.shape[1]}x{result.shape[0]} {MODES_BY_CHANNELS[result.shape[-1]]})")
    return 0


# ----------------------------------------------------------------------------- entry point

def _add_tiling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=int, default=128,
                        help="low-resolution tile size; memory grows with its square (default 128)")
    parser.add_argument("--overlap", type=int, default=16,
                        help="context pixels around each tile, < tile / 2 (default 16)")


def build_parser() -> argparse.ArgumentParser:
    """The `python -m zoo` parser with its `eval` and `upscale` subcommands."""
    parser = ArgumentParser(prog="python -m zoo", description="Use a saved zoo model.",
                     epilog="Exit codes: 0 ok, 2 bad flag or input (one `error:` line), 1 internal error.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ev = commands.add_parser("eval", help="PSNR/SSIM of a super-resolution model vs bicubic",
                             description="Score a super-resolution model and bicubic on HR images "
                             "(BT.601 studio-range Y, `scale` pixels shaved).")
    ev.add_argument("model", metavar="MODEL_OR_RUN_DIR", help="a .keras file or a run directory")
    ev.add_argument("--data", required=True, help="folder of HR images, or tfds:NAME[/CONFIG]")
    ev.add_argument("--scale", type=int, help="evaluation scale (default and only choice: the model's)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    _add_tiling(ev)
    ev.set_defaults(func=cmd_eval)
    up = commands.add_parser("upscale", help="super-resolve image files of any size",
                             description="Super-resolve images (RGB, RGBA, gray) with a saved model.")
    up.add_argument("model", metavar="MODEL", help="a .keras file or a run directory")
    up.add_argument("inputs", metavar="IN", nargs="+", help="image file(s)")
    up.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="output file for one input; an existing folder for several "
                    "(each written as <stem>_x<scale>.png)")
    _add_tiling(up)
    up.set_defaults(func=cmd_upscale)
    return parser


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
        _check_tiling(parser, args)
        return args.func(args)
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
