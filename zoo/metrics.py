"""Image-quality metrics in the convention of published super-resolution tables.

Every SR paper since SRCNN scores on the Y channel of BT.601 *studio range*
(Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, R, G, B in 0..255), shaves
`scale` pixels from every border, and computes SSIM with an 11x11 Gaussian
window (sigma 1.5, K1 0.01, K2 0.03, valid region only). These functions work in
float64 NumPy so that the numbers are exact and independent of any backend.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rgb_to_y", "psnr_y", "ssim_y", "shave"]


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
