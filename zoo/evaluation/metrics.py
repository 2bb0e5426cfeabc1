"""Image-quality metrics in the convention of published super-resolution tables.

Every SR paper since SRCNN scores on the Y channel of BT.601 *studio range*
(Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, R, G, B in 0..255), shaves
`scale` pixels from every border, and computes SSIM with an 11x11 Gaussian
window (sigma 1.5, K1 0.01, K2 0.03, valid region only). These functions work in
float64 NumPy so that the numbers are exact and independent of any backend.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rgb_to_y", "psnr_y", "ssim_y", "shave", "frechet_distance"]


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 studio-range luma of an RGB image with values in 0..255.

    Args:
        image: `(H, W, 3)` RGB (any dtype, values 0..255) or `(H, W)` / `(H, W, 1)` gray,
            which is taken as Y already.

    Returns:
        `(H, W)` float64 Y in 16..235.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 1:
        return image[..., 0]
    if image.ndim == 2:
        return image
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def shave(image: np.ndarray, border: int) -> np.ndarray:
    """Drop `border` pixels from each side of the two leading axes."""
    if border <= 0:
        return image
    return image[border:-border, border:-border]


def _prepare(sr: np.ndarray, hr: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    if sr.shape != hr.shape:
        raise ValueError(f"images differ in shape: {sr.shape} vs {hr.shape}")
    return shave(rgb_to_y(sr), border), shave(rgb_to_y(hr), border)


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    """PSNR in dB on studio-range Y after shaving `border` pixels (usually the scale).

    Args:
        sr: restored image, `(H, W, 3)` with values in 0..255 (round to uint8 first to
            match the tables, which score saved images).
        hr: ground truth, same shape.
        border: pixels shaved from every side before scoring.
    """
    y_sr, y_hr = _prepare(sr, hr, border)
    mse = np.mean((y_sr - y_hr) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D image with a 1-D window on both axes."""
    rows = np.lib.stride_tricks.sliding_window_view(image, window.size, axis=0) @ window
    return np.lib.stride_tricks.sliding_window_view(rows, window.size, axis=1) @ window


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int = 0) -> float:
    """Mean SSIM on studio-range Y after shaving `border` pixels (Wang et al. 2004).

    11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, dynamic range 255,
    averaged over the valid region, as in the MATLAB code used by SR papers.
    """
    y_sr, y_hr = _prepare(sr, hr, border)
    if min(y_sr.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after shaving, got {y_sr.shape}")
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    w = _gaussian_window()
    mu_x, mu_y = _filter_valid(y_sr, w), _filter_valid(y_hr, w)
    var_x = _filter_valid(y_sr * y_sr, w) - mu_x**2
    var_y = _filter_valid(y_hr * y_hr, w) - mu_y**2
    cov = _filter_valid(y_sr * y_hr, w) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Frechet (2-Wasserstein) distance between two Gaussians N(mu1, sigma1), N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1^1/2 sigma2 sigma1^1/2)^1/2),
    the formula of FID (Heusel et al. 2017, https://arxiv.org/abs/1706.08500). The trace term
    equals tr(sqrtm(sigma1 sigma2)); it is computed from two symmetric eigen-decompositions
    (no SciPy), with tiny negative eigenvalues of these positive semi-definite matrices
    (round-off, or rank-deficient covariances) clipped to 0, so it is stable and real.

    Args:
        mu1, mu2: `(D,)` means.
        sigma1, sigma2: `(D, D)` covariances (symmetric positive semi-definite).

    Returns:
        The squared distance (>= 0) as a Python float.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"need means (D,) and covariances (D, D) of one D, got {mu1.shape}, "
                         f"{sigma1.shape}, {mu2.shape}, {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ ((sigma2 + sigma2.T) / 2) @ root1  # symmetric PSD, same spectrum as sigma1 sigma2
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)).sum()
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues -> 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T
