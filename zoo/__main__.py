"""Inference command line: use a saved zoo model by what it can do.

    python -m zoo eval MODEL_OR_RUN_DIR [--data D] [--scale S] [--k K] [--samples N] [--limit N]
                                        [--seed S] [--json] [--tile T] [--overlap O]
                                        [--text-column C] [--label-column C] [-o OUT.png]
    python -m zoo upscale MODEL IN... -o OUT [--tile T] [--overlap O]
    python -m zoo sample MODEL -n N -o grid.png [--seed S] [--label L] [--interpolate]
    python -m zoo predict MODEL INPUT... [--file F] [--json]
    python -m zoo explain MODEL INPUT... -o OUT [--file F] [--method M[,M...]] [--seed S]
                          [--samples N] [--steps N] [--top K] [--json]
    python -m zoo explain MODEL --embed DATA -o OUT [--limit N] [--seed S] [--json]

MODEL is a `.keras` file or a run directory holding `model.keras` (loaded in Keras safe mode).
TensorFlow's C++ log (start-up lines such as `I0000 ... oneDNN custom operations are on`) is kept
off stderr; every command takes `--verbose` to show it, and a TF_CPP_MIN_LOG_LEVEL set in the
environment is used as given (zoo/quiet.py).

`eval` picks the evaluation the model supports (table in zoo/cli/eval.py). For
super-resolution: HR cropped to a multiple of the scale, LR by antialiased bicubic, PSNR/SSIM on
BT.601 studio-range Y (gray images on their own values) with `scale` pixels shaved, next to the
bicubic baseline (zoo/evaluation/sr.py); a table, or one JSON object with --json. For
classifiers (text, image, RBF --task classify): accuracy, macro-F1, per-class precision / recall /
F1 / support, the confusion matrix and, for two classes, ROC-AUC (zoo/evaluation/classifier.py,
scikit-learn's conventions); labels the model does not know are counted and left out; -o OUT.png
also draws the confusion matrix.
`upscale` super-resolves image files of any size in overlapping tiles, keeping the image mode
(RGB, RGBA, L, LA; other modes become RGB, RGBA or L); it never overwrites one of its inputs.
`sample` writes N samples of a generative model (its `sample(n, seed=, label=)` method) as one
grid image; --label asks a class-conditional model for one class; --interpolate writes an
N-step strip of its `interpolate(steps, seed=)`. The same --seed gives the same file.
`predict` classifies texts (`predict_texts`), numeric samples (`predict_samples`) or image files
(`predict_images`): one line per input (label, probability, input, top attention words or rows),
or one JSON object with --json.
`explain` writes OUT.html and OUT.png saying why a model decided: for texts the model's
attention, LIME and integrated gradients per word; for image models (the hybrid classifier, a
VAE's encoder, an SR generator) integrated gradients, occlusion and row attention; with --embed, PCA / t-SNE plots of the model's representations (zoo/cli/explain.py).

Exit codes:
    0  success.
    2  the request cannot be done as given: a bad flag, or a bad thing the user named (a missing
       or damaged model, image or folder, a model that cannot do what was asked). One line
       `error: <what is wrong and what to do>` on stderr, no traceback, and no output file is
       created or overwritten.
    1  an unexpected failure inside zoo (a bug: Python prints the traceback).
    130  interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable

from zoo.errors import ArgumentParser, UserError

USAGE_ERROR = 2
ENCODING_HELP = ("text files' encoding: a Python codec such as gbk, big5, shift_jis, cp1251 or koi8-r "
                 "(default auto: UTF-8/16/32, or the code page Excel saves in on a Chinese, Japanese, "
                 "Korean or Western European Windows, detected)")


def _model_argument(parser: argparse.ArgumentParser, metavar: str = "MODEL") -> None:
    parser.add_argument("model", metavar=metavar, help="a .keras file or a run directory")


def _add_tiling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=int, default=128,
                        help="low-resolution tile size; memory grows with its square (default 128)")
    parser.add_argument("--overlap", type=int, default=16,
                        help="context pixels around each tile, < tile / 2 (default 16)")


def _add_eval(commands) -> None:
    ev = commands.add_parser("eval", help="score a model on held-out data (SR: PSNR/SSIM vs bicubic; "
                             "classifiers: accuracy, F1, confusion matrix)",
                             description="Score a model by what it can do; super-resolution: "
                             "PSNR/SSIM of the model and bicubic (BT.601 studio-range Y, "
                             "`scale` pixels shaved); classifiers (text, image, RBF): accuracy, "
                             "macro-F1, per-class precision/recall/F1, the confusion matrix and, "
                             "for two classes, ROC-AUC, in scikit-learn's conventions.")
    _model_argument(ev, "MODEL_OR_RUN_DIR")
    ev.add_argument("--data", help="held-out data: a folder of images, a file, assets:NAME or "
                    "tfds:NAME[/CONFIG] (required for super-resolution and text classifiers: a "
                    "labelled CSV/TSV such as assets:text/ag_news/test.csv; image classifiers: "
                    "labelled images; RBF classifiers: labelled images or a numeric CSV; default for "
                    "generative models and image and RBF classifiers: assets:mnist)")
    ev.add_argument("--text-column", metavar="C", help="text classifiers: the text column, a header "
                    "name or 0-based index (default: a column named text/review/..., else all but "
                    "the label joined)")
    ev.add_argument("--label-column", metavar="C", help="classifiers on a CSV: the label column, a "
                    "header name or 0-based index (default: text tables a column named label/class/..., "
                    "else column 0; numeric tables the last column)")
    ev.add_argument("--encoding", default="auto", metavar="E", help="text classifiers: the --data " + ENCODING_HELP)
    ev.add_argument("--scale", type=int, help="evaluation scale (default and only choice: the model's)")
    ev.add_argument("--lr-data", help="SR: real low-resolution images matching --data by file name "
                    "(0001.png or DIV2K's 0001x4.png) or, for .npy/.npz, by index; default: bicubic of --data")
    ev.add_argument("--k", type=int, help="importance samples per image for a VAE's IW-NLL "
                    "(default: the model family's, printed with the result)")
    ev.add_argument("--samples", type=int, help="generated samples for the Frechet classifier "
                    "distance (default 5000)")
    ev.add_argument("--limit", type=int, help="use at most this many held-out examples (default all)")
    ev.add_argument("--seed", type=int, default=0, help="random seed of sampling (default 0)")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ev.add_argument("-o", "--output", metavar="OUT.png", help="classifiers: also draw the confusion "
                    "matrix into this image file (written whole or not at all)")
    _add_tiling(ev)


def _add_upscale(commands) -> None:
    up = commands.add_parser("upscale", help="super-resolve image files of any size",
                             description="Super-resolve images (RGB, RGBA, gray) with a saved model.")
    _model_argument(up)
    up.add_argument("inputs", metavar="IN", nargs="+", help="image file(s)")
    up.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="output file for one input; an existing folder for several "
                    "(each written as <stem>_x<scale>.png); never one of the inputs")
    _add_tiling(up)


def _add_sample(commands) -> None:
    sa = commands.add_parser("sample", help="a grid of samples from a generative model (VAE, GAN)",
                             description="Draw samples from a generative model into one grid image.")
    _model_argument(sa)
    sa.add_argument("-n", type=int, default=16, metavar="N",
                    help="samples to draw, or steps with --interpolate (default 16)")
    sa.add_argument("-o", "--output", required=True, metavar="OUT", help="the image file to write")
    sa.add_argument("--seed", type=int, help="random seed: the same seed gives the same file")
    sa.add_argument("--label", type=int, help="class to sample (class-conditional models only)")
    sa.add_argument("--interpolate", action="store_true",
                    help="write an N-step interpolation between two random points as a strip")


def _add_predict(commands) -> None:
    pr = commands.add_parser("predict", help="classify texts, samples or images: label and probabilities",
                             description="Classify each input with a saved classifier.")
    _model_argument(pr)
    pr.add_argument("texts", metavar="TEXT", nargs="*",
                    help="inputs: texts, comma-separated numbers for a sample classifier, or "
                    "image files for an image classifier (put -- before inputs that start with -)")
    pr.add_argument("--file", metavar="F", help="more inputs: one text (or image path) per line, or "
                    "a .npy / CSV of samples")
    pr.add_argument("--encoding", default="auto", metavar="E", help="--file of texts: " + ENCODING_HELP)
    pr.add_argument("--json", action="store_true", help="print one JSON object instead of lines")


def _add_explain(commands) -> None:
    ex = commands.add_parser("explain", help="why a model decided: attention, LIME, integrated "
                             "gradients, occlusion (OUT.html, OUT.png)",
                             description="Explain each input's predicted class, written to OUT.html "
                             "and OUT.png; or plot the model's representations of a data set (--embed).")
    _model_argument(ex)
    ex.add_argument("inputs", metavar="INPUT", nargs="*",
                    help="texts (text classifiers) or image files (image classifiers); put -- before "
                    "inputs that start with -")
    ex.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="path stem: writes OUT.html and OUT.png (a .html or .png suffix is dropped)")
    ex.add_argument("--file", metavar="F", help="more texts, one per line (text classifiers)")
    ex.add_argument("--encoding", default="auto", metavar="E", help="--file and --embed text files: " + ENCODING_HELP)
    ex.add_argument("--method", metavar="M[,M...]", help="explainers to run; texts: attention, lime, ig, shap; "
                    "images: ig, occlusion, attention, lime, shap (default: texts attention, lime, ig; images "
                    "ig, occlusion, attention)")
    ex.add_argument("--segmentation", choices=("auto", "quickshift", "grid"), default="auto",
                    help="images, LIME and SHAP: their players; quickshift superpixels (scikit-image, as lime), "
                    "a grid of patches, or auto: quickshift when it finds at least 8 superpixels, else the grid")
    ex.add_argument("--seed", type=int, default=0, metavar="S", help="random seed of every random choice (LIME's "
                    "perturbations, t-SNE): the same seed gives the same numbers (default 0)")
    ex.add_argument("--samples", type=int, default=5000, metavar="N", help="LIME: perturbed copies per text or "
                    "image; SHAP: coalitions (default 5000)")
    ex.add_argument("--steps", type=int, default=50, metavar="N",
                    help="integrated gradients: steps of the path from the baseline (default 50)")
    ex.add_argument("--top", type=int, default=5, metavar="K", help="words listed per method and text (default 5)")
    ex.add_argument("--embed", metavar="DATA", help="instead of INPUTs: PCA and t-SNE plots of the "
                    "model's representations of DATA (assets:NAME, a file or folder, tfds:NAME; \"\" "
                    "for the model's default data) and a TensorBoard projector log OUT_projector/")
    ex.add_argument("--limit", type=int, default=0, metavar="N",
                    help="--embed: at most this many examples (default 0: the plot's default, 2000)")
    ex.add_argument("--json", action="store_true", help="print the report as one JSON object")


def build_parser() -> argparse.ArgumentParser:
    """The `python -m zoo` parser; each subcommand's name is its module in zoo.cli."""
    parser = ArgumentParser(prog="python -m zoo", description="Use a saved zoo model.",
                            epilog="Exit codes: 0 ok, 2 bad flag, input or model (one `error:` "
                            "line), 1 internal error, 130 interrupted.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_eval, _add_upscale, _add_sample, _add_predict, _add_explain):
        add(commands)
    for each in (parser, *commands.choices.values()):  # acted on at import, by zoo/quiet.py
        each.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                          help="also print TensorFlow's own C++ log on stderr (quiet by default; "
                          "TF_CPP_MIN_LOG_LEVEL in the environment is used as given)")
    return parser


def _check_tiling(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if hasattr(args, "tile") and (args.tile < 1 or not 0 <= args.overlap < args.tile / 2):
        parser.error(f"need --tile >= 1 and 0 <= --overlap < tile / 2, got --tile {args.tile} "
                     f"--overlap {args.overlap}")


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, letting `predict` and `explain` take their inputs after flags too (`MODEL --json
    "a text"`)."""
    args, extra = parser.parse_known_args(argv)
    inputs = {"predict": "texts", "explain": "inputs"}.get(args.command)
    if extra and inputs and not any(e.startswith("-") for e in extra):
        setattr(args, inputs, [*getattr(args, inputs), *extra])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = _parse(parser, None if argv is None else list(argv))
        _check_tiling(parser, args)
        command = importlib.import_module(f"zoo.cli.{args.command}")  # only the one that runs
        return command.run(args)
    except UserError as error:
        sys.stderr.write(f"error: {error}\n")
        return USAGE_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
