"""Make the README picture from a trained model: bicubic | model | ground truth on Set5 crops.

    python tools/readme_figure.py MODEL_OR_RUN_DIR assets/readme/set5_x4.png
"""

import sys

import numpy as np

import zoo
from zoo.data import bicubic_downscale, bicubic_upscale, sr_eval_images, write_image

CROPS = {"butterfly.png": (60, 60), "bird.png": (80, 90), "baby.png": (200, 250)}  # (top, left)
SIZE = 128


def main(model_path: str, out: str) -> None:
    model = zoo.load(model_path, compile=False)
    rows = []
    for name, hr in sr_eval_images("assets/sr/Set5", model.scale):
        if name not in CROPS:
            continue
        lr = bicubic_downscale(hr, model.scale).numpy()
        top, left = CROPS[name]
        panels = [image[top:top + SIZE, left:left + SIZE]
                  for image in (bicubic_upscale(lr, model.scale).numpy(), model.upscale(lr), hr)]
        gutter = np.full((SIZE, 4, 3), 255, np.uint8)
        rows.append(np.concatenate([panels[0], gutter, panels[1], gutter, panels[2]], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    write_image(out, np.concatenate(rows[:-1], axis=0))


if __name__ == "__main__":
    main(*sys.argv[1:])
