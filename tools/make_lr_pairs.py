"""Make a folder of low-resolution images for `--lr-data`, named as DIV2K names them.

    python tools/make_lr_pairs.py HR_FOLDER OUT_FOLDER [--scale 4] [--jpeg 75]

Each `NAME.png` of HR_FOLDER becomes `OUT_FOLDER/NAMEx4.png` (or `.jpg` with `--jpeg Q`): the HR
image cropped to multiples of the scale, PIL's bicubic shrink by the scale, then, with `--jpeg`, JPEG
compression at quality Q, a degradation bicubic LR made on the fly does not have. The README's
`--lr-data` run uses it on T91 (training) and Set5 (validation and `zoo eval --lr-data`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from zoo.data import list_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("hr", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--jpeg", type=int, help="JPEG quality (1..95); default: lossless PNG")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in list_images(args.hr):
        image = Image.open(path).convert("RGB")
        width, height = image.width // args.scale, image.height // args.scale
        image = image.crop((0, 0, width * args.scale, height * args.scale))  # LR pixels cover whole HR blocks
        small = image.resize((width, height), Image.Resampling.BICUBIC)
        target = args.out / f"{path.stem}x{args.scale}.{'jpg' if args.jpeg else 'png'}"
        tmp = target.with_name(f".{target.name}.tmp{target.suffix}")
        small.save(tmp, quality=args.jpeg) if args.jpeg else small.save(tmp)
        tmp.replace(target)
    print(f"{len(list_images(args.out))} LR images in {args.out}")


if __name__ == "__main__":
    main()
