"""Generic callbacks. They log with `tf.summary.*`; the trainer makes its writer the default."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.data.images import bicubic_downscale, bicubic_upscale
from zoo.metrics import psnr_y, ssim_y


class SuperResolutionValidation(keras.callbacks.Callback):
    """After each epoch: PSNR-Y / SSIM-Y of the model and of bicubic on held-out images
    (paper convention, `scale`-pixel shave), and image grids bicubic | model | ground truth.

    Adds `val_psnr_y`, `val_ssim_y`, `val_bicubic_psnr_y`, `val_bicubic_ssim_y` (means over
    the images) to the epoch logs, which the trainer writes as `epoch/...` scalars, and
    writes the pictures `val_images/<name>`.

    Args:
        images: `(name, (H, W, 3) uint8)` pairs with H, W multiples of `scale`.
        scale: the model's upsampling factor; the model needs `upscale(uint8 images)`.
        grids: how many images get a picture in TensorBoard.
        grid_crop: side of the centre crop shown (keeps event files small).
    """

    def __init__(self, images: list[tuple[str, np.ndarray]], scale: int, grids: int = 3,
                 grid_crop: int = 192):
        super().__init__()
        self.scale, self.grids, self.grid_crop = scale, grids, grid_crop
        self.images = [(name, hr, bicubic_downscale(hr, scale).numpy()) for name, hr in images]
        self.bicubic = [bicubic_upscale(lr, scale).numpy() for _, _, lr in self.images]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        scores = {"psnr_y": [], "ssim_y": [], "bicubic_psnr_y": [], "bicubic_ssim_y": []}
        for i, ((name, hr, lr), bicubic) in enumerate(zip(self.images, self.bicubic)):
            sr = self.model.upscale(lr)
            for prefix, image in (("", sr), ("bicubic_", bicubic)):
                scores[prefix + "psnr_y"].append(psnr_y(image, hr, self.scale))
                scores[prefix + "ssim_y"].append(ssim_y(image, hr, self.scale))
            if i < self.grids:
                tf.summary.image(f"val_images/{name}", self._grid(bicubic, sr, hr)[None],
                                 description="bicubic | model | ground truth")
        logs.update({f"val_{name}": float(np.mean(values)) for name, values in scores.items()})

    def _grid(self, *images: np.ndarray) -> np.ndarray:
        """Centre crops side by side with a 4-pixel white gutter: `(h, 3 * w + 8, 3)` uint8."""
        height, width = images[0].shape[:2]
        size = min(self.grid_crop, height, width)
        top, left = (height - size) // 2, (width - size) // 2
        crops = [image[top:top + size, left:left + size] for image in images]
        gutter = np.full((size, 4, 3), 255, np.uint8)
        return np.concatenate([crops[0], gutter, crops[1], gutter, crops[2]], axis=1)
