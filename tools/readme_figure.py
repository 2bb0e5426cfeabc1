"""Make the README picture from a trained model: bicubic | model | ground truth on Set5 crops.

    python tools/readme_figure.py MODEL_OR_RUN_DIR assets/readme/set5_x4.png

Prints the PSNR/SSIM of the shown images (from the same upscaling as the picture).
"""

import sys

import zoo
from zoo.data import sr_eval_images, write_image
from zoo.evaluation.sr import sr_report, sr_triplets
from zoo.visualize import image_grid, side_by_side

CROPS = {"butterfly.png": (60, 60), "bird.png": (80, 90), "baby.png": (200, 250)}  # (top, left)
SIZE = 128


def main(model_path: str, out: str) -> None:
    model = zoo.load(model_path, compile=False)
    images = [(name, hr) for name, hr in sr_eval_images("assets:sr/Set5", model.scale)
              if name in CROPS]
    triplets = list(sr_triplets(model, images, model.scale))  # Set5: small enough to keep
    rows = []
    for name, *panels in triplets:  # bicubic, model, ground truth
        top, left = CROPS[name]
        rows.append(side_by_side([p[top:top + SIZE, left:left + SIZE] for p in panels], gutter=4))
    write_image(out, image_grid(rows, cols=1, gutter=4))
    report = sr_report(triplets, model.scale)
    for kind in ("model", "bicubic"):
        print(f"{kind}: PSNR-Y {report[kind]['psnr_y']:.2f} dB, SSIM-Y {report[kind]['ssim_y']:.4f} "
              f"on {', '.join(CROPS)} (whole images)")


if __name__ == "__main__":
    main(*sys.argv[1:])
