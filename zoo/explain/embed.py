"""Embedding plots: a model's learned representation of a data set in two dimensions (PCA and
t-SNE scatters coloured by label, OUT.png and OUT.html) and in TensorBoard's projector
(OUT_projector/).

- the hybrid image classifier (has `represent`, `predict_proba`, `image_shape`):
  `represent(images)`, the attention-pooled features its classifier reads;
- a text classifier (has `represent`, `predict_texts`): `represent(texts)`, the attention-pooled
  encoder features;
- a VAE (has `encode`, `latent_size`, `image_shape`): the posterior means of q(z|x) (`encode`).

Data (`data`): "" is the model's default: the embedded MNIST test images (`assets:mnist`) for
image models, the AG News validation texts of the text recipes' default split for text
models (`zoo.data.text.train_and_validation_texts`). Otherwise an image source as `--data` elsewhere (`assets:NAME`, a folder, idx
files, `tfds:NAME`; the test split, converted to the model's channels and resized to its size),
or for text models a CSV/TSV file of labelled texts (labels 1..K are named by a `classes.txt`
beside it, as for AG News) or `tfds:NAME` (its test split). At most `limit` examples (0: 2,000)
are used, a seeded random subset when there are more.

PCA: the top two principal directions of the centred vectors (NumPy SVD). t-SNE (van der
Maaten & Hinton 2008): scikit-learn's, with `random_state=seed`, PCA initialisation and
perplexity `min(30, (N - 1) / 3)`. scikit-learn is an optional extra
(`pip install zoo[explain]`): without it the PNG holds the PCA scatter alone, a note on stderr
names the command, and the report's `tsne` is false. Points are coloured by the data's labels;
unlabelled data is coloured by a classifier's predicted class (the legend says so), or drawn
in one colour for a VAE. The projector folder holds the vectors (`embedding.ckpt` with its
`checkpoint` index, so TensorBoard finds it), `metadata.tsv` (each point's label) and, for
images, `sprite.png`: `tensorboard --logdir OUT_projector`, then the Projector tab.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from zoo.errors import UserError
from zoo.explain.image import html_page, wrap
from zoo.fonts import draw_text, text_width
from zoo.explain.render import output_paths, png_bytes, write_files

DEFAULT_LIMIT = 2000  # examples embedded when `limit` is 0 or None
# The text recipes' default data and split (train/recipes/_text.py): their validation texts.
DEFAULT_TEXTS, DEFAULT_VAL_FRACTION = "assets:text/ag_news/test.csv", 0.2
PLOT = 360  # side of each scatter plot, pixels
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]], np.uint8)


def kind_of(model: Any) -> str | None:
    """"text", "classifier", "vae", or None for a model without a representation to plot."""
    def has(*names: str) -> bool:
        return all(callable(getattr(model, name, None)) for name in names)

    if has("represent", "predict_texts"):
        return "text"
    if has("represent", "predict_proba") and getattr(model, "image_shape", None) is not None:
        return "classifier"
    if has("encode") and getattr(model, "latent_size", None) and getattr(model, "image_shape", None) is not None:
        return "vae"
    return None


def can_embed(model: Any) -> bool:
    """Whether `embed` can plot `model`'s representation (hybrid classifier, text classifier, VAE)."""
    return kind_of(model) is not None


# ----------------------------------------------------------------------------- data

def subset(count: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted indices of at most `limit` (0/None: DEFAULT_LIMIT) of `count` examples, seeded."""
    limit = limit or DEFAULT_LIMIT
    if limit < 0:
        raise UserError(f"--limit must be 0 (the default {DEFAULT_LIMIT}) or more, got {limit}")
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def image_data(model: Any, data: str) -> tuple[np.ndarray, np.ndarray | None, list[str] | None]:
    """`(float32 (N, H, W, C) images in [0, 1], int labels or None, class names or None)`."""
    from zoo.data.sources import load_images

    height, width, channels = (int(s) for s in model.image_shape)
    images, labels, names = load_images(data or "assets:mnist", "test", channels, (height, width))
    if len(images) == 0:
        raise UserError(f"--embed {data} holds no images")
    return images, labels, names


def text_data(data: str, limit: int | None, encoding: str | None = None) -> tuple[list[str], list[str]]:
    """`(texts, label names)` of the default AG News validation texts, a CSV/TSV file (in
    `encoding`; None: detected) or tfds:NAME."""
    from zoo.data.text import load_labelled_texts, train_and_validation_texts

    if not data:
        return train_and_validation_texts(DEFAULT_TEXTS, val_fraction=DEFAULT_VAL_FRACTION)[1]
    if data.startswith("tfds:"):
        return load_labelled_texts(data, "test", limit=limit or DEFAULT_LIMIT)
    from zoo.data.assets import resolve_source

    path = resolve_source(data)
    if not Path(path).is_file():
        raise UserError(f"--embed {data} is not a file: pass a CSV/TSV file of labelled texts or tfds:NAME")
    return load_labelled_texts(path, encoding=encoding)


def _ids(labels: list[str], order: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Integer ids of string labels and the names in id order (`order` first, then the rest sorted)."""
    names = [n for n in (order or []) if n in set(labels)]
    names += sorted(set(labels) - set(names))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[label] for label in labels], np.int64), names


# ----------------------------------------------------------------------------- vectors

def represent(model: Any, kind: str, data: str, limit: int | None, seed: int, encoding: str | None = None) -> dict:
    """`{"vectors", "ids", "names", "legend", "images"}` of up to `limit` examples of `data`
    (a text file in `encoding`; None: detected)."""
    if kind == "text":
        texts, labels = text_data(data, limit, encoding)
        keep = subset(len(texts), limit, seed)
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        ids, names = _ids(labels, list(getattr(model, "class_names", [])))
        return {"vectors": np.asarray(model.represent(texts), np.float32), "ids": ids, "names": names,
                "legend": "label", "images": None}
    images, labels, names = image_data(model, data)
    keep = subset(len(images), limit, seed)
    images, labels = images[keep], None if labels is None else labels[keep]
    if kind == "vae":
        conditional = getattr(model, "conditional", False)
        if conditional and labels is None:
            raise UserError(f"this VAE is class-conditional: --embed needs labelled images, "
                            f"{data or 'the default data'} has none")
        vectors = model.encode(images, labels if conditional else None)[0]
    else:
        vectors = model.represent(images)
    legend = "label"
    if labels is None and kind == "classifier":
        labels, names = np.argmax(model.predict_proba(images)[0], axis=1), list(model.class_names)
        legend = "predicted class"
    if labels is None:
        labels, names, legend = np.zeros(len(images), np.int64), ["(no labels)"], "no labels"
    names = names or [str(i) for i in range(int(np.max(labels)) + 1)]
    return {"vectors": np.asarray(vectors, np.float32), "ids": np.asarray(labels, np.int64), "names": list(names),
            "legend": legend, "images": np.round(images * 255.0).astype(np.uint8)}


def pca(vectors: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """`(N, 2)` coordinates on the top two principal directions, and their shares of the variance."""
    centred = np.asarray(vectors, np.float64) - np.mean(vectors, axis=0)
    _, singular, directions = np.linalg.svd(centred, full_matrices=False)
    points = centred @ directions[:2].T  # (N, <= 2)
    if points.shape[1] < 2:
        points = np.concatenate([points, np.zeros((len(points), 2 - points.shape[1]))], axis=1)
    variance = singular ** 2
    shares = (variance[:2] / max(variance.sum(), 1e-30)).tolist()
    return points, shares + [0.0] * (2 - len(shares))


def tsne(vectors: np.ndarray, seed: int) -> np.ndarray | None:
    """`(N, 2)` t-SNE coordinates (scikit-learn, seeded), or None when scikit-learn is missing."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        sys.stderr.write("note: t-SNE needs scikit-learn, which is not installed: drawing PCA only "
                         "(pip install zoo[explain] adds it)\n")
        return None
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    perplexity = min(30.0, max(1.0, (len(vectors) - 1) / 3))
    # One OpenMP thread: the same numbers on every run, and next to TensorFlow's threads it was
    # 14x faster than two (0.7 s against 9.3 s for 300 points on the 2-core Xeon).
    with threadpool_limits(1, user_api="openmp"):
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            np.asarray(vectors, np.float64))


# ----------------------------------------------------------------------------- pictures

def colours(count: int) -> np.ndarray:
    """`(count, 3)` uint8 colours: Tableau 10, then evenly spaced hues."""
    if count <= len(PALETTE):
        return PALETTE[:count]
    hues = Image.fromarray(np.stack([np.arange(count) * 255 // count, np.full(count, 200), np.full(count, 210)],
                                    axis=-1).astype(np.uint8)[None], "HSV")
    return np.asarray(hues.convert("RGB"))[0]


def scatter(points: np.ndarray, ids: np.ndarray, palette: np.ndarray, title: str) -> Image.Image:
    """One square scatter plot of `(N, 2)` points coloured by `ids`, with a title."""
    image = Image.new("RGB", (PLOT, PLOT + 20), "white")
    draw = ImageDraw.Draw(image)
    draw_text(draw, (4, 3), title, (20, 20, 20))
    draw.rectangle((0, 20, PLOT - 1, PLOT + 19), outline=(180, 180, 180))
    low, high = points.min(axis=0), points.max(axis=0)
    scaled = (points - low) / np.where(high > low, high - low, 1.0)  # (N, 2) in [0, 1]
    xy = 8 + scaled * (PLOT - 16)
    radius = 2 if len(points) > 500 else 3
    for i in np.random.default_rng(0).permutation(len(points)):  # no class is always drawn on top
        x, y = xy[i, 0], 20 + (PLOT - xy[i, 1])
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=tuple(int(c) for c in palette[ids[i]]))
    return image


def legend(names: list[str], palette: np.ndarray, title: str, height: int) -> Image.Image:
    """A column of coloured dots and names under a title."""
    width = 24 + max(text_width(n[:28]) for n in names + [title])
    image = Image.new("RGB", (width + 8, height), "white")
    draw = ImageDraw.Draw(image)
    draw_text(draw, (4, 24), title, (20, 20, 20))
    for i, name in enumerate(names[:(height - 44) // 14]):
        y = 42 + 14 * i
        draw.ellipse((6, y + 2, 14, y + 10), fill=tuple(int(c) for c in palette[i]))
        draw_text(draw, (20, y), name[:28], (20, 20, 20))
    return image


def figure(panels: list[tuple[str, np.ndarray]], ids: np.ndarray, names: list[str], legend_title: str,
           title: str) -> Image.Image:
    """The scatters side by side with a legend, under a wrapped title."""
    palette = colours(len(names))
    plots = [scatter(points, ids, palette, name) for name, points in panels]
    plots.append(legend(names, palette, legend_title, PLOT + 20))
    width = sum(p.width + 8 for p in plots)
    lines = wrap(title, width - 8)
    canvas = Image.new("RGB", (width, PLOT + 28 + 16 * len(lines)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw_text(draw, (4, 4 + 16 * i), line, (0, 0, 120), 12)
    left = 4
    for plot in plots:
        canvas.paste(plot, (left, 8 + 16 * len(lines)))
        left += plot.width + 8
    return canvas


# ----------------------------------------------------------------------------- projector

def write_projector(folder: Path, vectors: np.ndarray, labels: list[str], images: np.ndarray | None) -> None:
    """A TensorBoard projector log in `folder` (replaced as a whole: written beside, then renamed).

    The vectors, `metadata.tsv`, sprites and the `checkpoint` index TensorBoard's projector looks
    for are written by `zoo.visualize.write_projector_files`.
    """
    from zoo.visualize import write_projector_files

    tmp, old = folder.with_name(f".{folder.name}.tmp"), folder.with_name(f".{folder.name}.old")
    labels = [str(label).replace("\t", " ").replace("\n", " ") for label in labels]
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        write_projector_files(tmp, vectors, labels, images)
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
    except OSError as error:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write the projector folder {folder}: {error}") from None
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- entry point

def embed(model: Any, data: str, out: Path, seed: int = 0, limit: int | None = 0,
          encoding: str | None = None) -> dict:
    """Plot `model`'s representation of `data` (PCA and t-SNE) and write a projector log.

    Args:
        model: the hybrid image classifier, a text classifier or a VAE (module docstring).
        data: "" for the model's default data, else an image source or a text file / tfds:NAME.
        out: the output path stem: writes OUT.png, OUT.html and the folder OUT_projector/.
        seed: seeds the subset of examples and t-SNE.
        limit: at most this many examples (0 or None: 2,000).
        encoding: a text file's codec (`gbk`, `koi8-r`...); None: detected (`zoo.data.text.decode_text`).

    Returns:
        A JSON-able report: model, `kind` "embedding", `model_kind` (text, classifier, vae),
        data, points, dimensions, PCA variance shares, whether t-SNE ran, the label names and
        the files written.

    Raises:
        UserError: a model without a representation, unreadable or empty data, fewer than 2
            examples, a missing output folder.
    """
    kind = kind_of(model)
    if kind is None:
        raise UserError(f"{type(model).__name__} has no representation to plot: --embed takes the hybrid "
                        "image classifier, a text classifier or a VAE")
    html_path, png_path = output_paths(out)
    projector_path = png_path.with_name(png_path.name.removesuffix(".png") + "_projector")
    got = represent(model, kind, data, limit, seed, encoding)
    vectors = got["vectors"]
    if len(vectors) < 2:
        raise UserError(f"--embed needs at least 2 examples, {data or 'the default data'} gave {len(vectors)}")
    points, shares = pca(vectors)
    panels = [(f"PCA (PC1 {100 * shares[0]:.1f}%, PC2 {100 * shares[1]:.1f}% of the variance)", points)]
    embedded = tsne(vectors, seed) if len(vectors) >= 4 else None
    if embedded is not None:
        panels.append((f"t-SNE (perplexity {min(30.0, (len(vectors) - 1) / 3):.0f}, seed {seed})", embedded))
    what = {"text": "represent(texts)", "classifier": "represent(images)", "vae": "posterior means"}[kind]
    title = (f"{type(model).__name__}: {what}, {len(vectors)} examples of {data or 'the default data'}, "
             f"{vectors.shape[1]} dimensions; colour: {got['legend']}")
    png = png_bytes(np.asarray(figure(panels, got["ids"], got["names"], got["legend"], title)))
    labels = [got["names"][i] for i in got["ids"]]
    intro = (f"{title}. PCA: NumPy SVD of the centred vectors. t-SNE: scikit-learn, seed {seed}" if embedded is not None
             else f"{title}. PCA only (t-SNE needs scikit-learn: pip install zoo[explain]).")
    counts = [["class", "points"]] + [[n, str(int(np.sum(got["ids"] == i)))] for i, n in enumerate(got["names"])]
    page = html_page(f"{type(model).__name__}: embedding", png, intro, counts)
    write_projector(projector_path, vectors, labels, got["images"])
    write_files({png_path: png, html_path: page})
    return {"model": type(model).__name__, "kind": "embedding", "model_kind": kind, "data": data or "default",
            "points": len(vectors),
            "dimensions": int(vectors.shape[1]), "seed": seed, "pca_variance": shares,
            "tsne": embedded is not None, "colour": got["legend"], "classes": got["names"],
            "outputs": {"png": str(png_path), "html": str(html_path), "projector": str(projector_path)}}
