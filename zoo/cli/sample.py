"""`python -m zoo sample MODEL -n N -o grid.png [--seed S] [--label L] [--interpolate]`.

Draws N images from a generative model (`sample(n, seed=, label=)` returning uint8
`(N, H, W, C)`) and writes them as one near-square grid; with --interpolate, N steps of
`interpolate(steps, seed=)` between two random points as one strip. The same --seed gives the
same file byte for byte.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from zoo.cli.common import USES, check_writable, has_methods, load_for, say
from zoo.data import write_image
from zoo.errors import UserError
from zoo.visualize import image_grid


def _check_request(model: Any, args: argparse.Namespace) -> None:
    """Refuse, before sampling, what this model cannot do: labels or interpolation."""
    name = f"model {args.model} ({type(model).__name__})"
    if args.interpolate and not has_methods(model, "interpolate"):
        raise UserError(f"{name} cannot interpolate: it has no `interpolate(steps, seed=)` method; "
                        "drop --interpolate")
    if args.label is None:
        return
    if args.interpolate:
        raise UserError("--label and --interpolate do not go together: drop one of them")
    classes = getattr(model, "num_classes", None)
    if classes is None or getattr(model, "conditional", True) is False:
        raise UserError(f"{name} cannot sample by label: it is not class-conditional; drop --label")
    if not 0 <= args.label < classes:
        raise UserError(f"--label {args.label} is out of range: {name} has labels 0 to {classes - 1}")


def _draw(model: Any, args: argparse.Namespace) -> np.ndarray:
    """`(N, H, W, C)` images from the model, checked for shape."""
    if args.interpolate:
        images = model.interpolate(args.n, seed=args.seed)
    elif args.label is None:
        images = model.sample(args.n, seed=args.seed)
    else:
        images = model.sample(args.n, seed=args.seed, label=args.label)
    images = np.asarray(images)
    if images.ndim != 4 or len(images) != args.n or images.shape[-1] not in (1, 3, 4):
        raise RuntimeError(f"{type(model).__name__}.{'interpolate' if args.interpolate else 'sample'}"
                           f"({args.n}) returned shape {images.shape}, not ({args.n}, H, W, 1|3|4)")
    return images


def run(args: argparse.Namespace) -> int:
    """Write the grid (or strip) of samples and print where it went."""
    if args.n < 1:
        raise UserError(f"-n must be at least 1, got -n {args.n}")
    output = Path(args.output)
    check_writable(output, "RGB")
    model = load_for(args.model, USES["sample"])
    _check_request(model, args)
    images = _draw(model, args)
    picture = image_grid(images, cols=len(images) if args.interpolate else None)
    if picture.shape[-1] == 4:
        check_writable(output, "RGBA")
    write_image(output, picture)
    what = f"{args.n}-step interpolation" if args.interpolate else f"{args.n} sample(s)"
    say(f"{what} of {args.model} -> {output} ({picture.shape[1]}x{picture.shape[0]})")
    return 0
