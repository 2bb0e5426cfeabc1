"""Writing explanations: word heat maps as pictures, one self-contained HTML page, PNG bytes, and
atomic writes of several files at once (all or none); `text_picture` and `text_page` draw a
report of `zoo.explain.text.explain_texts`.

`write_all({path: bytes})` writes each file under a temporary name beside it and renames them
only when every one was written, so an error leaves no half-written output. `html_page` makes a
page with inline CSS and the PNG embedded (base64), readable offline and mailable as one file.
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from zoo.errors import UserError
from zoo.fonts import draw_text, text_width

POSITIVE, NEGATIVE = (220, 30, 30), (30, 80, 220)  # supports / opposes the explained class

CSS = """body{font-family:system-ui,"Noto Sans CJK SC","Noto Sans SC","PingFang SC","Hiragino Sans GB","Microsoft YaHei","Source Han Sans SC",sans-serif;margin:2em;max-width:60em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em;border-top:1px solid #ccc;padding-top:1em}
.words{line-height:2em}.w{padding:.15em .3em;margin:0 .1em;border-radius:.2em}
.note{color:#555;font-size:.9em}table{border-collapse:collapse}td,th{padding:.1em .6em;text-align:left}
img{max-width:100%;border:1px solid #ddd}"""


def png_bytes(image: np.ndarray) -> bytes:
    """PNG encoding of a uint8 `(H, W, 3)` or `(H, W)` array."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_all(files: dict[Path, bytes]) -> None:
    """Write every file atomically: temporary names first, renamed once all were written."""
    pending: list[tuple[str, Path]] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path, data in files.items():
            handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
            pending.append((temporary, path))
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            os.chmod(temporary, 0o666 & ~umask)  # as a plain open() would (mkstemp makes 0600)
        for temporary, path in pending:
            os.replace(temporary, path)
    finally:
        for temporary, _ in pending:
            if os.path.exists(temporary):
                os.remove(temporary)


def write_files(files: dict[Path, bytes]) -> None:
    """`write_all`, with a UserError naming the files when they cannot be written."""
    try:
        write_all(files)
    except OSError as error:
        raise UserError(f"cannot write {', '.join(map(str, files))}: {error}") from None


def output_stem(output: str | Path) -> Path:
    """OUT without a .html / .png suffix, checked to name a file in an existing folder."""
    path = Path(output)
    if path.suffix.lower() in (".html", ".png"):
        path = path.with_suffix("")
    if not path.name or path.name in (".", ".."):
        raise UserError(f"-o {output} names no file: pass a path stem such as out/explanation")
    if not path.parent.is_dir():
        raise UserError(f"output folder {path.parent} does not exist: create it or choose another -o")
    return path


def output_paths(output: str | Path) -> tuple[Path, Path]:
    """`(OUT.html, OUT.png)` of a path stem (see `output_stem`)."""
    stem = output_stem(output)
    return stem.with_name(stem.name + ".html"), stem.with_name(stem.name + ".png")


def stack(images: Sequence[np.ndarray], gap: int = 6) -> np.ndarray:
    """Pictures one under the other on white, left-aligned, `gap` pixels apart; uint8 RGB."""
    width = max(image.shape[1] for image in images)
    rows = []
    for image in images:
        image = image if image.ndim == 3 else np.repeat(image[..., None], 3, -1)
        padded = np.full((image.shape[0] + gap, width, 3), 255, np.uint8)
        padded[:image.shape[0], :image.shape[1]] = image[..., :3]
        rows.append(padded)
    return np.concatenate(rows)[:-gap] if gap else np.concatenate(rows)


def text_image(lines: Sequence[str], width: int = 640, line_height: int = 14, color=(0, 0, 0)) -> np.ndarray:
    """Lines of text on white (cut to fit `width`), in any script (`zoo.fonts`); uint8 RGB."""
    image = Image.new("RGB", (width, len(lines) * line_height + 4), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        while line and text_width(line) > width - 8:
            line = line[:-4] + "..."
        draw_text(draw, (4, 2 + i * line_height), line, color)
    return np.asarray(image)


def signed_word_image(word_weights: Sequence[tuple[str, float]], title: str = "", width: int = 640,
                      line_height: int = 14) -> np.ndarray:
    """Words on backgrounds as strong as `|weight|` relative to the largest: red where the
    weight is positive (supports the class), blue where negative; uint8 `(H, width, 3)`."""
    from zoo.visualize import attention_image

    return attention_image(word_weights, title, width, line_height, POSITIVE, NEGATIVE)


def word_spans(words: Sequence[str], weights: Sequence[float], signed: bool = True) -> str:
    """HTML spans of `words`, each shaded by its weight relative to the largest `|weight|`
    (red positive, blue negative); the exact value shows on hover."""
    peak = max([abs(float(w)) for w in weights] + [1e-12])
    spans = []
    for word, weight in zip(words, weights):
        share = float(weight) / peak
        color = POSITIVE if share >= 0 or not signed else NEGATIVE
        spans.append(f'<span class="w" title="{float(weight):+.4f}" style="background:rgba'
                     f'({color[0]},{color[1]},{color[2]},{abs(share):.3f})">{html.escape(word)}</span>')
    return f'<div class="words">{" ".join(spans)}</div>'


def html_page(title: str, body: str, png: bytes | None = None) -> bytes:
    """A self-contained UTF-8 page: inline CSS, `body` (HTML), the PNG embedded at the end."""
    picture = "" if png is None else (
        '<h2>Picture</h2><img alt="the same explanations as a picture" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">')
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}{picture}</body></html>\n")
    return page.encode("utf-8")


# ----------------------------------------------------------------------------- text explanations

_NAMES = {"attention": "attention weight", "lime": "LIME surrogate weight",
          "ig": "integrated gradients (zero baseline)", "shap": "SHAP value (Kernel SHAP, words removed)"}
_NUMBERS = {"attention": "weights", "lime": "weights", "ig": "attributions", "shap": "values"}


def _scores(entry: dict, method: str) -> list[float]:
    """Per word position: the method's numbers in an explanation entry."""
    return entry[method][_NUMBERS[method]]


def _method_note(entry: dict, method: str) -> str:
    if method == "attention":
        return f"weights sum to {entry['attention']['sum']:.4f}"
    if method == "lime":
        lime = entry["lime"]
        return f"surrogate R^2 {lime['score']:.3f}, {lime['samples']} perturbed copies, seed {lime['seed']}"
    if method == "shap":
        shap = entry["shap"]
        how = "exact" if shap["exact"] else f"{shap['coalitions']} sampled coalitions, seed {shap['seed']}"
        return (f"sum {shap['sum']:+.4f}, f(x) - f(empty text) {shap['prediction'] - shap['background_prediction']:+.4f}: "
                f"efficiency error {shap['efficiency_error']:.2g} ({how})")
    ig = entry["ig"]
    return (f"sum {ig['sum']:+.4f}, f(x) - f(baseline) {ig['prediction'] - ig['baseline_prediction']:+.4f}: "
            f"completeness error {ig['completeness_error']:.2g} ({ig['steps']} steps)")


def text_picture(report: dict, width: int = 640) -> np.ndarray:
    """Every explanation of a report as one uint8 RGB picture: per text, a title line, then one
    heat map per method (attention in red by weight; LIME, IG and SHAP red for words that support
    the predicted class, blue for words that oppose it)."""
    from zoo.visualize import attention_image

    parts = []
    for i, entry in enumerate(report["explanations"], start=1):
        p = entry["probabilities"][entry["label"]]
        parts.append(text_image([f"text {i}: predicted {entry['label']} {p:.3f}: {entry['input']}"], width,
                                color=(0, 0, 160)))
        for method in report["methods"]:
            pairs = list(zip(entry["words"], _scores(entry, method)))
            title = f"{_NAMES[method]}: {_method_note(entry, method)}"
            draw = attention_image if method == "attention" else signed_word_image
            parts.append(draw(pairs, title, width))
    return stack(parts)


def text_page(report: dict, png: bytes, title: str) -> bytes:
    """A self-contained HTML page of a report: per text its prediction and the words shaded by
    each method (hover a word for its number), then `png` embedded."""
    body = ['<p class="note">Attention: red by weight. LIME, integrated gradients and SHAP: red words '
            "support the predicted class, blue words oppose it; the shade is relative to the "
            "text's largest number.</p>"]
    for i, entry in enumerate(report["explanations"], start=1):
        p = entry["probabilities"]
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{v:.4f}</td></tr>" for n, v in p.items())
        body.append(f"<h2>Text {i}: {html.escape(entry['label'])} ({p[entry['label']]:.3f})</h2>"
                    f"<p>{html.escape(entry['input'])}</p><table>{rows}</table>")
        for method in report["methods"]:
            body.append(f"<h3>{html.escape(_NAMES[method])}</h3>"
                        + word_spans(entry["words"], _scores(entry, method), signed=method != "attention")
                        + f'<p class="note">{html.escape(_method_note(entry, method))}</p>')
    return html_page(title, "".join(body), png)
