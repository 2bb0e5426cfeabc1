"""Kernel SHAP (Lundberg & Lee 2017, https://arxiv.org/abs/1705.07874): Shapley values of M
"players" (a text's distinct words, an image's superpixels or patches) for one scalar output.

A coalition is a 0/1 mask over the players: the players in it keep their value in the input,
the others take the background's (a text without those words, an image with those superpixels
black). `value(masks)` scores coalitions; the Shapley values phi satisfy efficiency,
`sum(phi) = value(all players) - value(no player)`.

The estimator is the `shap` package's `KernelExplainer` (0.51.0) on one background row, step for
step, so that the same seed gives the same numbers (tests/test_explain_shap.py):

- with `samples >= 2^M - 2` every coalition is evaluated, and the result is the exact Shapley
  values;
- otherwise coalition sizes are taken in the order 1, M-1, 2, M-2, ... and a size (with its
  complement size) is enumerated whole while the budget left, split by the Shapley kernel's
  weight of each size, covers it; the remaining budget is drawn at random: a size from the
  kernel's weights of the sizes left, then a random coalition of that size and its complement
  (paired sampling), a repeated coalition only adding weight. The random draws come from
  `numpy.random.RandomState(seed)` in shap's order (`choice` of 4 x the budget left, then one
  `permutation` per drawn coalition);
- the values solve the Shapley-kernel-weighted least squares with efficiency imposed as a
  constraint (the last player's value is the remainder), so the efficiency error is float
  rounding only. With fewer coalitions than players the system is underdetermined: the
  least-norm solution is taken (shap's `solve` may return any solution there).

`samples` counts the coalitions evaluated besides the full and the empty one (as shap's
`nsamples`); the model sees `samples + 2` inputs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SAMPLES = 5000  # coalitions per explanation unless all 2^M - 2 are fewer


@dataclass(frozen=True)
class ShapResult:
    """Kernel SHAP values of one input."""

    values: np.ndarray  # (M,) float64 Shapley value per player
    prediction: float  # value(all players): f(x)
    background: float  # value(no player): f(background)
    coalitions: int  # coalitions evaluated besides the full and the empty one
    exact: bool  # every coalition was evaluated: the values are the exact Shapley values
    seed: int

    @property
    def efficiency_error(self) -> float:
        """`|sum(values) - (f(x) - f(background))|`."""
        return abs(float(self.values.sum()) - (self.prediction - self.background))


def _coalitions(players: int, samples: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    """`(masks (S, M) float64, kernel weights (S,))` chosen as shap's KernelExplainer chooses them."""
    m = players
    paired_sizes, sizes = (m - 1) // 2, math.ceil((m - 1) / 2)
    weight = np.array([(m - 1.0) / (i * (m - i)) for i in range(1, sizes + 1)])
    weight[:paired_sizes] *= 2
    weight /= weight.sum()
    masks: list[np.ndarray] = []
    kernel: list[float] = []
    full_sizes, left, remaining = 0, samples, weight.copy()
    for size in range(1, sizes + 1):  # whole sizes while the budget covers them
        paired = size <= paired_sizes
        count = math.comb(m, size) * (2 if paired else 1)
        if left * remaining[size - 1] / count < 1.0 - 1e-8:
            break
        full_sizes += 1
        left -= count
        if remaining[size - 1] < 1.0:
            remaining /= 1 - remaining[size - 1]
        w = weight[size - 1] / math.comb(m, size) / (2 if paired else 1)
        for members in itertools.combinations(range(m), size):
            mask = np.zeros(m)
            mask[list(members)] = 1.0
            masks.append(mask)
            kernel.append(w)
            if paired:
                masks.append(1.0 - mask)
                kernel.append(w)
    fixed, left = len(masks), samples - len(masks)
    if full_sizes != sizes:  # the rest at random, each coalition with its complement
        remaining = weight.copy()
        remaining[:paired_sizes] /= 2
        remaining = remaining[full_sizes:] / remaining[full_sizes:].sum()
        drawn, seen = rng.choice(len(remaining), 4 * left, p=remaining), {}
        for index in drawn:
            if left <= 0:
                break
            size = index + full_sizes + 1
            mask = np.zeros(m)
            mask[rng.permutation(m)[:size]] = 1.0
            key = tuple(mask)
            new = key not in seen
            if new:
                seen[key] = len(masks)
                masks.append(mask)
                kernel.append(1.0)
                left -= 1
            else:
                kernel[seen[key]] += 1.0
            if left > 0 and size <= paired_sizes:
                if new:
                    masks.append(1.0 - mask)
                    kernel.append(1.0)
                    left -= 1
                else:
                    kernel[seen[key] + 1] += 1.0
        random = np.asarray(kernel[fixed:])
        if len(random):
            kernel[fixed:] = (random * weight[full_sizes:].sum() / random.sum()).tolist()
    return np.array(masks).reshape(-1, m), np.asarray(kernel)


def _solve(masks: np.ndarray, kernel: np.ndarray, y: np.ndarray, total: float) -> np.ndarray:
    """The kernel-weighted least squares of `y` on `masks` with `sum(phi) = total` (shap's `solve`)."""
    target = y - masks[:, -1] * total
    design = masks[:, :-1] - masks[:, -1:]
    weighted, root = kernel[:, None] * design, np.sqrt(kernel)
    if design.shape[0] < design.shape[1]:  # fewer coalitions than unknowns: the least-norm solution
        phi = np.linalg.lstsq(root[:, None] * design, root * target, rcond=None)[0]
    else:
        try:
            phi = np.linalg.solve(design.T @ weighted, weighted.T @ target)
        except np.linalg.LinAlgError:  # some values are not determined by these coalitions
            phi = np.linalg.lstsq(root[:, None] * design, root * target, rcond=None)[0]
    return np.append(phi, total - phi.sum())


def kernel_shap(value: Callable[[np.ndarray], np.ndarray], players: int, samples: int = SAMPLES,
                seed: int = 0) -> ShapResult:
    """Kernel SHAP values of `players` players for the scalar that `value` computes.

    Args:
        value: `masks (N, M) bool -> (N,)` the output with only each mask's players present
            (called once, on every coalition; it batches the model calls itself).
        players: M, at least 1.
        samples: coalitions to evaluate besides the full and the empty one (capped at 2^M - 2,
            which gives the exact Shapley values).
        seed: seeds `numpy.random.RandomState`, which draws the sampled coalitions.

    Example:
    >>> weights = np.array([1.0, 2.0, 3.0])
    >>> kernel_shap(lambda masks: masks @ weights, 3).values  # a linear model: its terms
    array([1., 2., 3.])
    """
    if players < 1 or samples < 1:
        raise ValueError(f"Kernel SHAP needs at least 1 player and 1 sample, got {players} players, {samples} samples")
    exact = players <= 30 and samples >= 2 ** players - 2
    budget = min(samples, 2 ** players - 2) if players <= 30 else samples
    masks, kernel = _coalitions(players, budget, np.random.RandomState(seed)) if players > 1 else \
        (np.zeros((0, 1)), np.zeros(0))
    ends = np.stack([np.ones(players), np.zeros(players)])
    scores = np.asarray(value(np.concatenate([ends, masks]).astype(bool)), np.float64).reshape(-1)
    f_x, f_background = float(scores[0]), float(scores[1])
    if players == 1:
        values = np.array([f_x - f_background])
    else:
        values = _solve(masks, kernel, scores[2:] - f_background, f_x - f_background)
    return ShapResult(values, f_x, f_background, len(masks), exact or players == 1, seed)
