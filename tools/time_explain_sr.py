"""Time `zoo explain` on a super-resolution model: the generator on the cropped input (as
shipped) against the generator on the whole image; prints a table and the largest difference
between the two reports.

A gan_superres-sized generator (64 filters, 8 residual blocks, x4; seeded and untrained: the time
does not depend on the weights) explains one image (default: Set5 head.png, 280x280) with both
methods and the deletion test, in-process (TensorFlow start-up excluded):

    flock /tmp/zoo_heavy.lock python tools/time_explain_sr.py [--image PATH] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _numbers(report, prefix=""):
    """Every float of a report, by its path (lists flattened)."""
    for key, value in report.items():
        if isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            yield from ((f"{prefix}{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, float))
        elif isinstance(value, float):
            yield f"{prefix}{key}", value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=str(ROOT / "zoo" / "assets" / "sr" / "Set5" / "head.png"))
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()

    import keras

    from zoo.explain import image
    from zoo.models import SRGAN, build_sr_discriminator, build_sr_generator

    keras.utils.set_random_seed(0)
    model = SRGAN(build_sr_generator(4, 64, 8), build_sr_discriminator(), scale=4)
    shipped = image._sr_target
    rows, reports = [], {}
    with tempfile.TemporaryDirectory() as folder:
        for mode, crop in (("cropped input (shipped)", True), ("whole image", False)):
            image._sr_target = lambda m, crop=crop: shipped(m, crop=crop)
            start = time.perf_counter()
            report = image.explain_images(model, [args.image], Path(folder) / f"why_{crop}", seed=0, steps=args.steps)
            rows.append((mode, time.perf_counter() - start))
            reports[mode] = dict(_numbers(report["images"][0]))
    image._sr_target = shipped
    a, b = reports.values()
    print(f"{'generator reads':<26} {'seconds':>8}")
    for mode, seconds in rows:
        print(f"{mode:<26} {seconds:>8.1f}")
    print(f"reach {image.receptive_reach(model.generator)} pixels; speed-up {rows[1][1] / rows[0][1]:.2f}x; "
          f"largest difference between the reports {max(abs(a[k] - b[k]) for k in a):.1e}")
    print(json.dumps({"f": a["f"], "completeness_error": a["ig.completeness_error"]}))


if __name__ == "__main__":
    main()
