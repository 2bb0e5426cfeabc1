"""`python -m zoo eval MODEL_OR_RUN_DIR [--data D] [--json]`: score a model on held-out data.

The evaluations are chosen by what the model can do, from the table `EVALUATIONS`; a new model
kind plugs in with one more `Evaluation` row. Every row that applies runs (a VAE gets its
likelihood and its sample quality); their reports are merged into one JSON object (rows use
distinct keys) and printed as one table each, or as that JSON object with --json.
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
    if args.data is None:
        raise UserError("evaluating a super-resolution model needs --data: a folder of HR images, "
                        "assets:NAME (e.g. assets:sr/Set5) or tfds:NAME[/CONFIG]")
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

EVALUATIONS = (  # every row that applies to a model runs, in this order
    Evaluation(is_super_resolution, "a super-resolution model (with `upscale` and `scale`)",
               _run_sr, _sr_table),
)


def evaluations_for(model: Any) -> list[Evaluation]:
    """The evaluations that apply to `model` (maybe none)."""
    return [e for e in EVALUATIONS if e.can(model)]


EVALUATE = Use("be evaluated", lambda model: bool(evaluations_for(model)),
               " or ".join(e.needs for e in EVALUATIONS))


def run(args: argparse.Namespace) -> int:
    """Print each evaluation's table, or one JSON object with --json."""
    model = load_for(args.model, EVALUATE)
    report, tables = {}, []
    for evaluation in evaluations_for(model):
        part = evaluation.run(model, args)
        report.update(part)
        tables.append(evaluation.table(part, args))
    print(dump_json(report) if args.json else "\n\n".join(tables))
    return 0
