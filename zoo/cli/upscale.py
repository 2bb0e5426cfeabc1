"""`python -m zoo upscale MODEL IN... -o OUT`: super-resolve image files of any size.

Images are cut into overlapping tiles (`--tile`, `--overlap`), so memory stays bounded; the
image mode is kept (RGB, RGBA, L, LA; other modes become RGB, RGBA or L; alpha is upscaled by
bicubic). A one-channel model upscales gray images, and the Y channel of colour ones (Cb, Cr
by bicubic). Every input and output is checked before the first image is written, and an output
that is one of the inputs is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from zoo.cli.common import USES, check_writable, load_for, progress, refuse_overwriting, say
from zoo.data import bicubic_upscale, read_image, write_image
from zoo.data.images import MODES_BY_CHANNELS
from zoo.errors import UserError


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
            check_writable(target, MODES_BY_CHANNELS[read_image(path).shape[-1]])
        except UserError as error:
            bad.append(str(error))
    if bad:
        raise UserError("; ".join(bad) if len(bad) == 1 else f"{len(bad)} problems: " + "; ".join(bad))


def upscale_image(model: Any, image: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Super-resolve one `(H, W, C)` uint8 image, C in 1..4; alpha is upscaled by bicubic."""
    if image.shape[-1] == 2:  # LA: the model sees the gray channel, alpha goes bicubic
        gray = model.upscale(image[..., :1], tile=tile, overlap=overlap)
        alpha = bicubic_upscale(image[..., 1:], model.scale).numpy()
        return np.concatenate([gray, alpha], axis=-1)
    return np.asarray(model.upscale(image, tile=tile, overlap=overlap))


def run(args: argparse.Namespace) -> int:
    """Super-resolve each input and print where its result went."""
    model = load_for(args.model, USES["upscale"])
    outputs = output_paths(args.inputs, args.output, model.scale)
    refuse_overwriting(outputs, args.inputs)
    _check_inputs(args.inputs, outputs)  # nothing is written if any input is bad
    jobs = list(zip(args.inputs, outputs, strict=True))
    told = False
    for source, target in progress(jobs, "upscale", lambda job: job[0]):
        image = read_image(source)
        if getattr(model, "channels", 3) == 1 and image.shape[-1] >= 3 and not told:
            say(f"{args.model} is a one-channel model: it upscales the Y channel (BT.601) of colour "
                "images; Cb and Cr are upscaled by bicubic, as in SR papers")
            told = True
        result = upscale_image(model, image, args.tile, args.overlap)
        write_image(target, result)
        say(f"{source} ({image.shape[1]}x{image.shape[0]}) -> {target} "
            f"({result.shape[1]}x{result.shape[0]} {MODES_BY_CHANNELS[result.shape[-1]]})")
    return 0
