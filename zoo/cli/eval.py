"""`python -m zoo eval MODEL_OR_RUN_DIR [--data D] [--json] [-o OUT.png]`: score a model on held-out data.

The evaluations are chosen by what the model can do, from the table `EVALUATIONS`; a new model
kind plugs in with one more `Evaluation` row. Every row that applies runs (a VAE gets its
likelihood and its sample quality); their reports are merged into one JSON object (rows use
distinct keys) and printed as one table each, or as that JSON object with --json.

Classifiers (zoo.evaluation.classifier, scikit-learn's conventions): accuracy, macro-F1 (and
macro precision / recall, unweighted over all the model's classes, zero_division=0), per-class
precision / recall / F1 / support, the confusion matrix (rows true), ROC-AUC for two classes
(probability of the second class), and the data's labels the model does not know (counted, left
out of the scores). With `-o OUT.png` the confusion matrix is also drawn (`confusion_image`).
- text classifiers (`predict_texts`): `--data` a CSV/TSV file, `assets:NAME` or `tfds:NAME`,
  read by `zoo.data.text.load_labelled_texts` (`--text-column`, `--label-column`); required.
- image classifiers (`predict_images`, e.g. the SOM-RBF-attention hybrid): the test split of an
  image source of labelled images at the model's size (class subfolders, MNIST idx, tfds:NAME);
  default assets:mnist. Labels are matched to the model's classes by name.
- RBF networks trained with `--task classify`: a numeric CSV (the label in the last column or
  `--label-column`) or the test split of an image source as flattened pixels in [0, 1], as
  `python -m train rbf` reads them; default assets:mnist.
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.cli.common import (Use, check_writable, dump_json, has_methods, is_super_resolution, load_for,
                            progress, refuse_overwriting)
from zoo.data import sr_eval_images
from zoo.errors import UserError
from zoo.evaluation.classifier import UNKNOWN, classification_report, match_labels, report_table
from zoo.evaluation.sr import evaluate_sr
from zoo.evaluation.frechet import can_score


@dataclass(frozen=True)
class Evaluation:
    """One kind of evaluation: which models it applies to, how it runs, how it prints."""

    can: Callable[[Any], bool]  # whether it applies to a loaded model
    needs: str  # what such a model has, for the error message
    run: Callable[[Any, argparse.Namespace], dict]  # (model, args) -> the report (JSON-able)
    table: Callable[[dict, argparse.Namespace], str]  # (report, args) -> the text table
    picture: Callable[[dict, argparse.Namespace], np.ndarray] | None = None  # (report, args) -> uint8 image for -o


# ----------------------------------------------------------------------------- super-resolution

def _run_sr(model: Any, args: argparse.Namespace) -> dict:
    """PSNR/SSIM of the model and of bicubic on `--data`, in the published convention."""
    if args.data is None:
        raise UserError("evaluating a super-resolution model needs --data: a folder of HR images, "
                        "assets:NAME (e.g. assets:sr/Set5) or tfds:NAME[/CONFIG]")
    if args.scale is not None and args.scale != model.scale:
        raise UserError(f"--scale {args.scale} does not match the model, which upscales x{model.scale}: "
                        f"drop --scale or pass --scale {model.scale}")
    images = sr_eval_images(args.data, model.scale, args.lr_data)
    scores = evaluate_sr(model, images, model.scale, args.tile, args.overlap,
                         progress=lambda items: progress(items, "eval", lambda item: item[0]))
    return {**scores, "data": args.data, "lr_data": args.lr_data, "channels": getattr(model, "channels", 3)}


def _sr_table(report: dict, args: argparse.Namespace) -> str:
    """The SR report as a text table, one row per image and the mean last."""
    width = max([len("mean")] + [len(r["name"]) for r in report["images"]])
    head = (f"x{report['scale']} super-resolution of {report['n_images']} image(s) from "
            f"{report['data']} by {args.model}\n(PSNR/SSIM on BT.601 studio-range Y, gray images "
            f"on their values, {report['scale']} pixels shaved per side)\n")
    if report.get("lr_data"):
        head += f"(LR images from {report['lr_data']}; bicubic upscales them)\n"
    if report.get("channels") == 1:
        head += "(a one-channel model: it upscales the Y channel, and is scored on it)\n"
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


# ----------------------------------------------------------------------------- classifiers

TEXT_NEEDS = "a text classifier (with `predict_texts`, `predict_proba` and `class_names`)"
IMAGE_NEEDS = "an image classifier (with `predict_images`, `predict_proba`, `class_names` and `image_shape`)"
SAMPLES_NEEDS = "an RBF network trained with --task classify (with `predict_values` and `class_names`)"
TABLE_SUFFIXES = (".csv", ".tsv", ".txt")  # --data read as a numeric table by an RBF classifier
CHUNK = 1024  # examples per prediction call (one progress step)


def _is_text_classifier(model: Any) -> bool:
    return has_methods(model, "predict_texts", "predict_proba") and bool(getattr(model, "class_names", None))


def _is_image_classifier(model: Any) -> bool:
    return (has_methods(model, "predict_images", "predict_proba") and bool(getattr(model, "class_names", None))
            and getattr(model, "image_shape", None) is not None)


def _is_sample_classifier(model: Any) -> bool:
    return (has_methods(model, "predict_values") and getattr(model, "task", None) == "classification"
            and bool(getattr(model, "class_names", None)))


def _limit(args: argparse.Namespace) -> int | None:
    """`--limit`, checked: None for all examples."""
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1 example, not {args.limit}")
    return args.limit


def _predict_in_chunks(predict: Callable[[Any], np.ndarray], inputs: Sequence) -> np.ndarray:
    """`predict` on `inputs` in chunks of CHUNK, with a progress bar on a terminal: `(N, K)`."""
    starts = list(range(0, len(inputs), CHUNK))
    return np.concatenate([np.asarray(predict(inputs[s:s + CHUNK]), np.float64)
                           for s in progress(starts, "classify", lambda s: f"{s} of {len(inputs)}")])


def _classify(model: Any, inputs: Sequence, labels: Sequence[str], predict: Callable, data: str) -> dict:
    """The classification report of `predict(inputs) -> probabilities` against the label strings;
    examples whose label the model does not know are counted and left out (never predicted)."""
    if len(labels) == 0:
        raise UserError(f"--data {data} holds no labelled examples: pass a file or folder with some")
    names = list(model.class_names)
    ids, unknown = match_labels(labels, names)
    known = np.flatnonzero(ids != UNKNOWN)
    chosen = inputs[known] if isinstance(inputs, np.ndarray) else [inputs[i] for i in known]
    probabilities = _predict_in_chunks(predict, chosen)
    report = classification_report(ids[known], probabilities.argmax(axis=-1), names, probabilities)
    return {"data": data, "classifier": type(model).__name__, **report, "unknown_labels": unknown,
            "unknown_examples": int(sum(unknown.values()))}


def _label_names(ids: np.ndarray | None, names: list[str] | None, data: str) -> list[str]:
    """The label strings of image labels: the source's class names (folder names), else the ids."""
    if ids is None:
        raise UserError(f"--data {data} has no labels: pass labelled images (class subfolders, MNIST idx "
                        "files with their labels file, or tfds:NAME with a label)")
    return [names[i] if names else str(i) for i in ids.tolist()]


def _run_text(model: Any, args: argparse.Namespace) -> dict:
    """Scores of a text classifier on the labelled texts of `--data` (its test split for TFDS)."""
    from zoo.data.assets import resolve_source
    from zoo.data.text import load_labelled_texts

    if args.data is None:
        raise UserError("evaluating a text classifier needs --data: a CSV/TSV file of labelled texts "
                        "(e.g. assets:text/ag_news/test.csv, AG News; the default lstm_classifier run "
                        "trained on 80% of it) or tfds:NAME[/CONFIG]; choose columns with --text-column "
                        "and --label-column")
    if Path(resolve_source(args.data)).is_dir():
        raise UserError(f"--data {args.data} is a folder: a text classifier reads a CSV/TSV file of "
                        "labelled texts or tfds:NAME")
    texts, labels = load_labelled_texts(args.data, "test", args.text_column, args.label_column, _limit(args) or 0,
                                        args.encoding)
    return _classify(model, texts, labels, lambda chunk: model.predict_proba(chunk)[0], args.data)


def _run_images(model: Any, args: argparse.Namespace) -> dict:
    """Scores of an image classifier on the test split of `--data` (default assets:mnist)."""
    from zoo.data import load_images

    data = args.data or "assets:mnist"
    height, width, channels = model.image_shape
    images, ids, names = load_images(data, "test", channels, limit=_limit(args))
    if images.shape[1:3] != (height, width):
        raise UserError(f"--data {data}: its images are {images.shape[2]}x{images.shape[1]}, but the model "
                        f"classifies {width}x{height} images: pass images of that size")
    labels = _label_names(ids, names, data)
    return _classify(model, images, labels, lambda chunk: model.predict_proba(chunk)[0], data)


def _numeric_samples(data: str, column: str | None, limit: int | None) -> tuple[np.ndarray, list[str]]:
    """Features and label strings (`f"{value:g}"`, as `python -m train rbf` names classes) of a numeric CSV."""
    from zoo.data.text import numeric_label_column, read_numeric_table

    values, names = read_numeric_table(data)
    if len(names) < 2:
        raise UserError(f"--data {data} has one column: it needs feature columns and a label column")
    label = numeric_label_column(column, names, data)
    values = values[:limit]
    return np.delete(values, label, axis=1), [f"{v:g}" for v in values[:, label]]


def _run_samples(model: Any, args: argparse.Namespace) -> dict:
    """Scores of an RBF classifier on a numeric CSV or on flattened test images (default assets:mnist)."""
    from zoo.data import load_images

    data = args.data or "assets:mnist"
    if data.lower().endswith(TABLE_SUFFIXES):
        samples, labels = _numeric_samples(data, args.label_column, _limit(args))
        what = "feature columns"
    else:
        images, ids, names = load_images(data, "test", 1, limit=_limit(args))
        samples, labels = images.reshape(len(images), -1), _label_names(ids, names, data)
        what = f"gray pixels ({images.shape[2]}x{images.shape[1]} images)"
    if samples.shape[1] != model.input_dim:
        raise UserError(f"--data {data} gives {samples.shape[1]} {what} per sample, but the model takes "
                        f"{model.input_dim}: pass data like its training data (a numeric CSV, or images of "
                        "that size)")
    return _classify(model, samples, labels, model.predict_values, data)


def _classifier_table(report: dict, args: argparse.Namespace) -> str:
    head = (f"{report['classifier']} {args.model} on {report['examples']} example(s) of {report['data']} "
            f"({len(report['class_names'])} classes)\n")
    return head + report_table(report)


def _confusion_picture(report: dict, args: argparse.Namespace) -> np.ndarray:
    from zoo.visualize import confusion_image

    title = (f"{report['classifier']} on {report['data']}: {report['examples']} examples, "
             f"accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}")
    return confusion_image(np.asarray(report["confusion_matrix"]), report["class_names"], title)


# ----------------------------------------------------------------------------- dispatch

EVALUATIONS = (  # every row that applies to a model runs, in this order
    Evaluation(is_super_resolution, "a super-resolution model (with `upscale` and `scale`)",
               _run_sr, _sr_table),
    Evaluation(can_score, FCD_NEEDS, _run_fcd, _fcd_table),
    Evaluation(_is_vae, VAE_NEEDS, _run_vae, _vae_table),
    Evaluation(_is_text_classifier, TEXT_NEEDS, _run_text, _classifier_table, _confusion_picture),
    Evaluation(_is_image_classifier, IMAGE_NEEDS, _run_images, _classifier_table, _confusion_picture),
    Evaluation(_is_sample_classifier, SAMPLES_NEEDS, _run_samples, _classifier_table, _confusion_picture),
)


def evaluations_for(model: Any) -> list[Evaluation]:
    """The evaluations that apply to `model` (maybe none)."""
    return [e for e in EVALUATIONS if e.can(model)]


EVALUATE = Use("be evaluated", lambda model: bool(evaluations_for(model)),
               " or ".join(e.needs for e in EVALUATIONS))


def _output(args: argparse.Namespace) -> Path | None:
    """`-o`, checked before any work: an image file in an existing folder, none of the inputs."""
    if not args.output:
        return None
    path = Path(args.output)
    check_writable(path, "RGB")
    refuse_overwriting([path], [p for p in (args.model, args.data) if p])
    return path


def _image_bytes(path: Path, pictures: list[np.ndarray]) -> bytes:
    """The pictures (one under the other) encoded in the format of `path`'s suffix."""
    from PIL import Image

    from zoo.explain.render import stack

    buffer = io.BytesIO()
    picture = pictures[0] if len(pictures) == 1 else stack(pictures)
    Image.fromarray(picture).save(buffer, format=Image.registered_extensions()[path.suffix.lower()])
    return buffer.getvalue()


def run(args: argparse.Namespace) -> int:
    """Print each evaluation's table, or one JSON object with --json; with -o, write the pictures
    (a classifier's confusion matrix) atomically first."""
    from zoo.explain.render import write_files

    output = _output(args)
    model = load_for(args.model, EVALUATE)
    evaluations = evaluations_for(model)
    if output is not None and not any(e.picture for e in evaluations):
        raise UserError(f"-o {args.output}: model {args.model} ({type(model).__name__}) has no picture to "
                        "write (-o draws a classifier's confusion matrix): drop -o")
    report, tables, pictures = {}, [], []
    for evaluation in evaluations:
        part = evaluation.run(model, args)
        report.update(part)
        tables.append(evaluation.table(part, args))
        if output is not None and evaluation.picture is not None:
            pictures.append(evaluation.picture(part, args))
    if output is not None:
        write_files({output: _image_bytes(output, pictures)})
    print(dump_json(report) if args.json else "\n\n".join(tables))
    return 0
