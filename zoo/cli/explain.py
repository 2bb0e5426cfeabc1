"""`python -m zoo explain MODEL INPUT... -o OUT [--json] [--method M[,M...]] [--seed S] ...`:
why a classifier decided, written to OUT.html and OUT.png (OUT is a path stem; a given .html or
.png suffix is dropped).

- A text classifier (`predict_texts`): INPUTs are texts (and the lines of --file); methods
  `attention` (the model's own weights), `lime` (--samples perturbed copies, seeded by --seed)
  and `ig` (integrated gradients with --steps), by default, and `shap` (Kernel SHAP, --samples
  coalitions) when asked for (zoo/explain/text.py).
- An image model that zoo.explain.image knows: INPUTs are image files
  (`zoo.explain.image.explain_images`); `lime` and `shap` on superpixels when asked for, with
  --samples copies / coalitions.
- `--embed DATA` (no INPUT): the model's representations of DATA as PCA and t-SNE scatter plots
  in OUT.png and a TensorBoard projector log in OUT_projector/ (`zoo.explain.embed.embed`).

Prints the top --top words per method for each text, or the whole report as one JSON object
with --json. Nothing is written when anything fails; a model kind that cannot be explained, an
empty text or a bad flag is one `error:` line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from zoo.cli.common import Use, dump_json, has_methods, load_for, progress, refuse_overwriting, say
from zoo.errors import UserError

EXPLAINABLE = ("a text classifier (python -m train lstm_classifier or transformer_classifier) or an image "
               "model that zoo.explain.image explains (som_rbf_attention, a VAE, a super-resolution model)")


def can_explain_images(model: Any) -> bool:
    from zoo.explain.image import can_explain

    return bool(can_explain(model))


def can_embed(model: Any) -> bool:
    from zoo.explain.embed import can_embed as embeddable

    return bool(embeddable(model))


EXPLAIN = Use("be explained", lambda m: has_methods(m, "predict_texts") or can_explain_images(m),
              EXPLAINABLE)
EMBED = Use("be embedded (--embed)", can_embed,
            "a model with a learned representation: a text classifier, som_rbf_attention or a VAE")


def _check_numbers(args: argparse.Namespace) -> None:
    for flag, value, least in (("--samples", args.samples, 10), ("--steps", args.steps, 1),
                               ("--top", args.top, 1), ("--limit", args.limit, 0)):
        if value < least:
            raise UserError(f"{flag} must be at least {least}, got {value}")


def _methods(args: argparse.Namespace) -> list[str] | None:
    if args.method is None:
        return None
    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    if not methods:
        raise UserError(f"--method {args.method!r} names no method")
    return methods


def _texts(args: argparse.Namespace) -> list[str]:
    from zoo.cli.predict import _lines  # the same --file reading as `zoo predict`

    texts = list(args.inputs) + (_lines(args.file, args.encoding) if args.file is not None else [])
    if not texts:
        raise UserError("nothing to explain: pass TEXT arguments or --file F (one text per line)")
    return texts


def _explain_texts(model: Any, args: argparse.Namespace, out: Path) -> dict:
    from zoo.explain.render import output_paths, png_bytes, text_page, text_picture, write_all
    from zoo.explain.text import explain_texts

    texts = _texts(args)
    report = explain_texts(model, texts, _methods(args), seed=args.seed, samples=args.samples,
                           steps=args.steps, top=args.top,
                           each=lambda items: progress(items, "explaining", lambda i: texts[i]))
    png = png_bytes(text_picture(report))
    title = f"Why {Path(args.model).name} ({type(model).__name__}) decided"
    html, picture = output_paths(out)
    write_all({html: text_page(report, png, title), picture: png})
    return {"model": args.model, "model_class": type(model).__name__, **report,
            "outputs": {"html": str(html), "png": str(picture)}}


def _print_text_report(report: dict) -> None:
    for entry in report["explanations"]:
        say(f"{entry['label']} {entry['probabilities'][entry['label']]:.3f}  {entry['input']}")
        for method in report["methods"]:
            details = entry[method]
            note = {"attention": "", "lime": f" (R^2 {details.get('score', 0):.2f})",
                    "ig": f" (completeness error {details.get('completeness_error', 0):.2g})",
                    "shap": f" (efficiency error {details.get('efficiency_error', 0):.2g}"
                            + (", exact)" if details.get("exact") else ")")}[method]
            words = ", ".join(f"{w} {v:+.3f}" if method != "attention" else f"{w} {v:.3f}"
                              for w, v in details["top"])
            say(f"  {method}{note}: {words}")
    say(f"wrote {report['outputs']['html']} and {report['outputs']['png']}")


def _explain_images(model: Any, args: argparse.Namespace, out: Path) -> dict:
    from zoo.explain.image import explain_images

    if not args.inputs or args.file is not None:
        raise UserError("pass image files as INPUT arguments (--file is for texts)")
    report = explain_images(model, list(args.inputs), out, seed=args.seed, steps=args.steps,
                            methods=_methods(args), samples=args.samples, segmentation=args.segmentation)
    players = {image["players"]["segmentation"] for image in report["images"] if "players" in image}
    for segmentation in sorted(players):  # LIME / SHAP: say which players they used
        print(f"note: LIME / SHAP players: {segmentation}", file=sys.stderr)
    return {**report, "model": args.model, "model_class": type(model).__name__}


def _embed(args: argparse.Namespace, out: Path) -> dict:
    if args.inputs or args.file is not None:
        raise UserError("--embed plots a data set: pass DATA to --embed and no INPUT or --file")
    model = load_for(args.model, EMBED)
    from zoo.explain.embed import embed

    report = embed(model, args.embed, out, seed=args.seed, limit=args.limit, encoding=args.encoding)
    return {**report, "model": args.model, "model_class": type(model).__name__}


def run(args: argparse.Namespace) -> int:
    """Explain, write OUT.html / OUT.png, and print a summary (or the JSON report)."""
    _check_numbers(args)
    from zoo.explain.render import output_paths, output_stem

    out = output_stem(args.output)
    if args.file is not None:  # texts are no paths (and image paths are checked by zoo.explain.image)
        refuse_overwriting(list(output_paths(out)), [args.file])
    texts = False
    if args.embed is not None:
        report = _embed(args, out)
    else:
        if not args.inputs and args.file is None:
            raise UserError("nothing to explain: pass INPUT texts or image files, --file F, or --embed DATA")
        model = load_for(args.model, EXPLAIN)
        texts = has_methods(model, "predict_texts")
        report = _explain_texts(model, args, out) if texts else _explain_images(model, args, out)
    if args.json:
        print(dump_json(report))
    elif texts:
        _print_text_report(report)
    else:
        written = [str(path) for path in report.get("outputs", {}).values()]
        say(f"wrote {', '.join(written) if written else str(out) + '.*'}")
    return 0
