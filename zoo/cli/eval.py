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

from zoo.cli.common import Use, dump_json, has_methods, is_super_resolution, load_for, progress
from zoo.data import sr_eval_images
from zoo.errors import UserError
from zoo.evaluation.sr import evaluate_sr
from zoo.evaluation.frechet import can_score


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


# ----------------------------------------------------------------------------- sample quality

FCD_NEEDS = ("a generative model with `sample` whose samples are 28x28x1 images (the Frechet "
             "classifier distance uses zoo's MNIST classifier; for other data retrain it with "
             "`python tools/train_fcd_classifier.py`)")


def _run_fcd(model: Any, args: argparse.Namespace) -> dict:
    """FCD of `--samples` samples vs the training split of `--data`, and the held-out floor."""
    from zoo.evaluation.frechet import DEFAULT_DATA, DEFAULT_SAMPLES, evaluate_generator

    n = DEFAULT_SAMPLES if args.samples is None else args.samples
    if n < 2:
        raise UserError(f"--samples must be at least 2 for the Frechet classifier distance, not {n}")
    return evaluate_generator(model, args.data or DEFAULT_DATA, n, args.seed, args.limit,
                              progress=lambda stages: progress(stages, "fcd"))


def _fcd_table(report: dict, args: argparse.Namespace) -> str:
    """The FCD of the samples next to the floor of held-out real images."""
    train = f"{report['fcd_train_images']} training images of {report['fcd_data']}"
    return (f"Frechet classifier distance (not FID: features of zoo's MNIST classifier "
            f"{report['fcd_classifier']}, 128-d penultimate layer; lower is better)\n"
            f"  {report['fcd_samples']} samples (seed {report['fcd_seed']}) vs {train}: "
            f"{report['fcd']:.3f}\n"
            f"  floor: {report['fcd_floor_samples']} held-out test images vs the same: "
            f"{report['fcd_floor']:.3f}")


# ----------------------------------------------------------------------------- VAE likelihood

VAE_NEEDS = "a VAE (with `elbo` and `importance_weighted_nll`)"


def _is_vae(model: Any) -> bool:
    return has_methods(model, "elbo", "importance_weighted_nll")


def _run_vae(model: Any, args: argparse.Namespace) -> dict:
    """Test ELBO and IW-NLL in nats per image on the test split of `--data` (default assets:mnist)."""
    from zoo.evaluation.vae import DEFAULT_K, heldout_images, likelihood_report

    k = DEFAULT_K if args.k is None else args.k
    if k < 1:
        raise UserError(f"--k must be at least 1 importance sample, not {k}")
    data = args.data or "assets:mnist"
    images, labels, binarization = heldout_images(model, data, args.seed, args.limit)
    report = likelihood_report(model, images, labels, k, args.seed,
                               progress=lambda starts: progress(starts, "vae likelihood"))
    return {f"vae_{name}": value for name, value in report.items()} | {
        "vae_data": data, "vae_binarization": binarization, "vae_seed": args.seed}


def _vae_table(report: dict, args: argparse.Namespace) -> str:
    return (f"VAE likelihood of {report['vae_images']} test image(s) of {report['vae_data']} "
            f"(nats per image; lower is better)\n"
            f"  negative ELBO (1 sample):           {report['vae_negative_elbo']:.2f}\n"
            f"  IW-NLL, k={report['vae_k']} importance samples: {report['vae_iw_nll']:.2f} "
            f"(+- {report['vae_iw_nll_std_error']:.2f} standard error over images)\n"
            f"  binarization: {report['vae_binarization']}")


# ----------------------------------------------------------------------------- dispatch

EVALUATIONS = (  # every row that applies to a model runs, in this order
    Evaluation(is_super_resolution, "a super-resolution model (with `upscale` and `scale`)",
               _run_sr, _sr_table),
    Evaluation(can_score, FCD_NEEDS, _run_fcd, _fcd_table),
    Evaluation(_is_vae, VAE_NEEDS, _run_vae, _vae_table),
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
