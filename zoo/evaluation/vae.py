"""Evaluation of a VAE, shared by `python -m zoo eval` and the training callbacks.

- `likelihood_report`: test ELBO and importance-weighted NLL in nats per image.
- Pictures for TensorBoard (NumPy only): reconstructions next to inputs, prior samples, latent
  interpolations, and with a 2-D latent the decoded manifold and a scatter of the latent means
  coloured by label. `vae_evaluation` and `vae_embedding` build the functions that the generic
  callbacks of train/callbacks.py take (`EpochEvaluation`, `EmbeddingProjector`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zoo.visualize import image_grid, to_uint8_image

DEFAULT_K = 50  # importance samples of `zoo eval`: ~3 minutes for MNIST's 10k test images on 2 cores (IWAE used 5000)
BINARIZATION = ("training batches: {training}; held-out images: sampled once from Bernoulli(intensity) "
                "with seed {seed} (the IWAE convention)")


def binarize(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Held-out images binarized once: 1 where a uniform draw (NumPy, `seed`) < the intensity."""
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape, dtype=np.float32) < images).astype(np.float32)


def heldout_images(model, source: str, seed: int = 0, limit: int | None = None):
    """The test split of `source` at the model's size and channels, binarized for a Bernoulli
    model (`binarize` with `seed`): `(images, labels or None, how they were binarized)`.

    Raises:
        UserError: unreadable data, values outside [0, 1] for a Bernoulli model, or no labels
            for a class-conditional model.
    """
    from zoo.data import load_images
    from zoo.errors import UserError
    from zoo.models.vae import check_unit_range

    height, width, channels = model.image_shape
    images, labels, _ = load_images(source, "test", channels, (height, width), (0.0, 1.0), limit)
    if model.conditional and labels is None:
        raise UserError(f"the model is class-conditional but {source} has no labels: pass labelled data")
    if model.likelihood != "bernoulli":
        return images, labels if model.conditional else None, "none (Gaussian likelihood on [0, 1] values)"
    try:
        check_unit_range(images, f"data {source}")
    except ValueError as error:
        raise UserError(str(error)) from None
    return binarize(images, seed), labels if model.conditional else None, BINARIZATION.format(
        seed=seed, training="dynamic (a fresh Bernoulli(intensity) sample every step)"
        if model.dynamic_binarization else "none (trained on the data as given)")


def likelihood_report(model, images: np.ndarray, labels=None, k: int = 100, seed: int = 0,
                      batch_size: int = 100, progress: Callable = lambda items: items) -> dict:
    """Mean negative ELBO and IW-NLL (`k` importance samples) of `images` in nats per image.

    Args:
        model: a `zoo.models.VAE` (or anything with `elbo` and `importance_weighted_nll`).
        images: `(N, H, W, C)` in [0, 1], binarized already for a Bernoulli model.
        labels: `(N,)` class ids for a conditional model.
        k: importance samples per image.
        seed: seeds the ELBO and importance-sampling noise.
        progress: wraps the list of batch starts (e.g. a progress bar).
    """
    negative_elbo, nll = [], []
    for start in progress(list(range(0, len(images), batch_size))):
        batch = images[start:start + batch_size]
        part = None if labels is None else labels[start:start + batch_size]
        negative_elbo.append(-model.elbo(batch, part, seed=seed + start))
        nll.append(model.importance_weighted_nll(batch, k, part, seed=seed + start))
    negative_elbo, nll = np.concatenate(negative_elbo), np.concatenate(nll)
    return {"negative_elbo": float(negative_elbo.mean()), "iw_nll": float(nll.mean()), "k": int(k),
            "images": int(len(images)), "iw_nll_std_error": float(nll.std() / np.sqrt(len(nll)))}


# Ten distinct colours (Tableau 10), one per label; more labels cycle.
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
                    [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]],
                   np.uint8)


def reconstructions(model, images: np.ndarray, labels=None) -> np.ndarray:
    """Pairs input | reconstruction (decoded posterior mean), 8 pairs per row: uint8 `(h, w, C)`."""
    mean, _ = model.encode(images, labels)
    decoded = model.decode(mean, labels)
    pairs = np.stack([images, decoded], axis=1).reshape(-1, *images.shape[1:])  # (2N, H, W, C)
    return image_grid(pairs, cols=16)


def interpolations(model, rows: int = 6, steps: int = 10, seed: int = 0) -> np.ndarray:
    """`rows` strips of `steps` decoded points between two prior draws each."""
    strips = [model.interpolate(steps, seed=seed + row) for row in range(rows)]
    return image_grid(np.concatenate(strips), cols=steps)


def manifold(model, points: int = 15, label=None) -> np.ndarray:
    """A 2-D latent's decoded grid over [-2.5, 2.5]^2 (a `points` x `points` image grid)."""
    axis = np.linspace(-2.5, 2.5, points, dtype=np.float32)
    z = np.stack(np.meshgrid(axis, axis[::-1]), axis=-1).reshape(-1, 2)  # row-major, y upwards
    labels = None if not model.conditional else np.full(len(z), 0 if label is None else label)
    return image_grid(model.decode(z, labels), cols=points, gutter=0)


def latent_scatter(points: np.ndarray, labels=None, size: int = 256, extent: float = 4.0) -> np.ndarray:
    """2-D points as coloured 3x3 dots on a white `(size, size, 3)` uint8 canvas spanning
    [-extent, extent]^2 (y upwards), with grey axes through 0; colour = label (PALETTE)."""
    canvas = np.full((size, size, 3), 255, np.uint8)
    middle = size // 2
    canvas[middle, :] = canvas[:, middle] = 200
    pixels = np.round((np.asarray(points, np.float64) / extent + 1) * (size - 1) / 2).astype(int)
    cols, rows = pixels[:, 0], size - 1 - pixels[:, 1]
    keep = (cols >= 1) & (cols < size - 1) & (rows >= 1) & (rows < size - 1)
    colours = PALETTE[np.zeros(len(points), int) if labels is None else np.asarray(labels) % len(PALETTE)]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            canvas[rows[keep] + dy, cols[keep] + dx] = colours[keep]
    return canvas


def vae_evaluation(images: np.ndarray, labels=None, seed: int = 0) -> Callable:
    """`model -> ({}, pictures)` for `EpochEvaluation`: reconstructions of the first 32 `images`,
    64 prior samples and interpolations (fixed seeds, so epochs compare), and with a 2-D
    latent the decoded manifold and the scatter of all `images`' latent means."""
    shown = images[:32]
    shown_labels = None if labels is None else labels[:32]

    def evaluate(model):
        use = labels if model.conditional else None
        pictures = {"reconstructions": reconstructions(model, shown, shown_labels if model.conditional else None),
                    "samples": image_grid(model.sample(64, seed=seed)),
                    "interpolations": interpolations(model, seed=seed)}
        if model.latent_size == 2:
            mean, _ = model.encode(images, use)
            pictures["manifold"] = manifold(model)
            pictures["latent_scatter"] = latent_scatter(mean, labels)
        return {}, pictures

    return evaluate


def vae_embedding(images: np.ndarray, labels=None) -> Callable:
    """`model -> (latent means, labels, uint8 images)` for `EmbeddingProjector`."""

    def embed(model):
        mean, _ = model.encode(images, labels if model.conditional else None)
        return mean, labels, np.stack([to_uint8_image(image) for image in images])

    return embed
