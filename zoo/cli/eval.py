"""`python -m zoo eval MODEL_OR_RUN_DIR --data DIR [--json]`: score a model on held-out data.

The evaluation is chosen by what the model can do, from the table `EVALUATIONS`; a new model
kind plugs in with one more `Evaluation` row (e.g. a VAE with `evaluate_data`), and its report
is printed as a table or, with --json, as one JSON object.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoo.cli.common import Use, dump_json, is_super_resolution, load_for, progress
from zoo.data import sr_eval_images
from zoo.errors import UserError
from zoo.evaluation import evaluate_sr


@dataclass(frozen=True)
class Evaluation:
    """One kind of evaluation: which models it applies to, how it runs, how it prints."""

    can: Callable[[Any], bool]  # whether it applies to a loaded model
    needs: str  # what such a model has, for the error message
    run: Callable[[Any, argparse.Namespace], dict]  # (model, args) -> the report (JSON-able)
    table: Callable[[dict, argparse.Namespace], str]  # (report, args) -> the text table


# ----------------------------------------------------------------------------- super-resolution

def _run_sr(model: Any, args: argparse.Namespace) -> dict:
    """PSNR/SSIM of the model and of bicubic on `--data`, in the published convention."""
    if args.scale is not None and args.scale != model.scale:
        raise UserError(f"--scale {args.scale} does not match the model, which upscales x{model.scale}: "
                        f"drop --scale or pass --scale {model.scale}")
    images = sr_eval_images(args.data, model.scale)
    scores = evaluate_sr(model, images, model.scale, args.tile, args.overlap,
                         progress=lambda items: progress(items, "eval", lambda item: item[0]))
    return {**scores, "data": args.data}


def _sr_table(report: dict, args: argparse.Namespace) -> str:
    """The SR report as a text table, one row per image and the mean last."""
    width = max([len("mean")] + [len(r["name"]) for r in report["images"]])
    head = (f"x{report['scale']} super-resolution of {report['n_images']} image(s) from "
            f"{report['data']} by {args.model}\n(PSNR/SSIM on BT.601 studio-range Y, gray images "
            f"on their values, {report['scale']} pixels shaved per side)\n")
    lines = [f"{'image':<{width}}  {'PSNR-Y':>7} {'SSIM-Y':>7}  {'bicubic PSNR-Y':>14} {'SSIM-Y':>7}"]
    mean = {"name": "mean", "model": report["model"], "bicubic": report["bicubic"]}
    for row in [*report["images"], mean]:
        m, b = row["model"], row["bicubic"]
        lines.append(f"{row['name']:<{width}}  {m['psnr_y']:7.2f} {m['ssim_y']:7.4f}  "
                     f"{b['psnr_y']:14.2f} {b['ssim_y']:7.4f}")
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return head + "\n".join(lines)


# ----------------------------------------------------------------------------- dispatch

EVALUATIONS = (  # the first row that applies to a model is used
    Evaluation(is_super_resolution, "a super-resolution model (with `upscale` and `scale`)",
               _run_sr, _sr_table),
)


def evaluation_for(model: Any) -> Evaluation | None:
    """The evaluation that applies to `model`, or None."""
    return next((e for e in EVALUATIONS if e.can(model)), None)


EVALUATE = Use("be evaluated", lambda model: evaluation_for(model) is not None,
               " or ".join(e.needs for e in EVALUATIONS))


def run(args: argparse.Namespace) -> int:
    """Print the evaluation's table, or one JSON object with --json."""
    model = load_for(args.model, EVALUATE)
    evaluation = evaluation_for(model)
    report = evaluation.run(model, args)
    print(dump_json(report) if args.json else evaluation.table(report, args))
    return 0
