"""Scoring of super-resolution models in the convention of published tables.

One implementation used by `python -m zoo eval`, tools/readme_figure.py and the training
callback: the HR image (height and width multiples of `scale`) is downscaled by antialiased
bicubic to uint8 LR (or real LR images are given); the model and plain bicubic upscale that
same LR; PSNR/SSIM are computed on BT.601 studio-range Y of colour images, and on the gray
values themselves of one-channel images (as the tables do for gray test sets), with `scale`
pixels shaved per side (see zoo/evaluation/metrics.py).

Example:
>>> report = evaluate_sr(model, sr_eval_images("path/to/Set5", 4), 4)  # doctest: +SKIP
>>> report["model"]["psnr_y"], report["bicubic"]["psnr_y"]  # doctest: +SKIP

Callers that also want pictures iterate the triplets once and score them as they go:
>>> pictures = []  # doctest: +SKIP
>>> def keep(triplets):  # doctest: +SKIP
...     for t in triplets:
...         if len(pictures) < 3:
...             pictures.append(side_by_side([t.bicubic, t.sr, t.hr], crop=192))
...         yield t
>>> report = sr_report(keep(sr_triplets(model, images, 4)), 4)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from zoo.data import bicubic_downscale, bicubic_upscale
from zoo.data.images import luma
from zoo.evaluation.metrics import psnr_y, ssim_y

__all__ = ["METRICS", "SRTriplet", "evaluate_sr", "score_sr", "sr_report", "sr_triplets"]

METRICS = ("psnr_y", "ssim_y")  # the keys of every score dict
Progress = Callable[[list], Iterable]  # e.g. a progress bar: yields the items it is given


class SRTriplet(NamedTuple):
    """One evaluation image: the bicubic baseline, the model's result and the ground truth,
    all `(H, W, C)` uint8 of the same shape."""

    name: str
    bicubic: np.ndarray
    sr: np.ndarray
    hr: np.ndarray


def sr_triplets(model: Any, images: Sequence[tuple], scale: int, tile: int = 128,
                overlap: int = 16, progress: Progress | None = None) -> Iterator[SRTriplet]:
    """Upscale each image's LR by the model and by bicubic, one image at a time.

    LR is the given one, or antialiased bicubic of HR rounded to uint8. A one-channel model
    (`model.channels == 1`) is scored on what it sees: the studio-range Y of colour images
    (`zoo.data.images.luma`, Y of HR and of the given LR), as SR papers score Y-channel models.

    Args:
        model: anything with `upscale(uint8 (h, w, C), tile=, overlap=)` returning
            `(h * scale, w * scale, C)` uint8 (a zoo super-resolution model), and optionally
            `channels` (3 when absent).
        images: `(name, (H, W, C) uint8 HR)` or `(name, HR, LR)`, C = 1 (gray) or 3 (RGB), H and W
            multiples of `scale` (as `zoo.data.sr_eval_images` returns them).
        scale: the upscaling factor.
        tile, overlap: tiling of `model.upscale`.
        progress: wraps the list of images while iterating (e.g. a progress bar); None: plain.

    Yields:
        `SRTriplet(name, bicubic, sr, hr)`, lazily, so a long list is never all in memory.
    """
    one_channel = getattr(model, "channels", 3) == 1
    for name, hr, *given in (progress(list(images)) if progress else images):
        hr = np.asarray(hr)
        if hr.ndim != 3 or hr.shape[-1] not in (1, 3) or hr.shape[0] % scale or hr.shape[1] % scale:
            raise ValueError(f"image {name}: expected (H, W, 1 or 3) with H, W multiples of {scale}, "
                             f"got {hr.shape}")
        lr = np.asarray(given[0]) if given else bicubic_downscale(hr, scale).numpy()  # (H / s, W / s, C) uint8
        if one_channel:
            hr, lr = luma(hr), luma(lr)
        sr = np.asarray(model.upscale(lr, tile=tile, overlap=overlap))  # (H, W, C) uint8
        yield SRTriplet(name, bicubic_upscale(lr, scale).numpy(), sr, hr)


def score_sr(image: np.ndarray, hr: np.ndarray, scale: int) -> dict[str, float]:
    """`{"psnr_y", "ssim_y"}` of one uint8 image against its ground truth, `scale` pixels
    shaved (studio-range Y for RGB; the values themselves for one channel)."""
    return {"psnr_y": psnr_y(image, hr, border=scale), "ssim_y": ssim_y(image, hr, border=scale)}


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in METRICS}


def sr_report(triplets: Iterable[SRTriplet], scale: int) -> dict:
    """Score triplets (model and bicubic against HR) and average them.

    Returns:
        `{"scale", "n_images", "model": means, "bicubic": means, "images": [per image]}` where
        each per-image row is `{"name", "model": scores, "bicubic": scores}` and scores and
        means are `{"psnr_y", "ssim_y"}` floats (PSNR is inf for identical images).
    """
    rows = [{"name": t.name, "model": score_sr(t.sr, t.hr, scale),
             "bicubic": score_sr(t.bicubic, t.hr, scale)} for t in triplets]
    if not rows:
        raise ValueError("no image to evaluate")
    return {"scale": scale, "n_images": len(rows), "model": _mean([r["model"] for r in rows]),
            "bicubic": _mean([r["bicubic"] for r in rows]), "images": rows}


def evaluate_sr(model: Any, images: Sequence[tuple[str, np.ndarray]], scale: int, tile: int = 128,
                overlap: int = 16, progress: Progress | None = None) -> dict:
    """Score `model.upscale` and bicubic against each HR image (both from the same uint8 LR).

    Args:
        model: a super-resolution model with `upscale(uint8 images, tile=, overlap=)`.
        images: `(name, (H, W, C) uint8)`, C = 1 or 3, H and W multiples of `scale`.
        scale: the upscaling factor; also the border shaved before scoring.
        tile, overlap: tiling of `model.upscale`.
        progress: wraps the list of images while iterating (e.g. a progress bar).

    Returns:
        The report of `sr_report`: scale, n_images, model and bicubic means, per-image rows.
    """
    return sr_report(sr_triplets(model, images, scale, tile, overlap, progress), scale)
