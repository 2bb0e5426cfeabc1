"""Memory and speed of training on folders of full-size photos (streamed) and on T91 (in memory).

    python tools/bench_data.py [--sizes 40,160,800] [--steps 30] [--format jpg] [--work DIR]
                               [--recipes gan_superres,vae] [--baseline REPO]

Makes synthetic folders of 2040x1356 photos (DIV2K's size: BSD200 photos blown up, shifted,
flipped and given fresh noise, so every file differs and compresses like a photo), then for each
folder and recipe runs one fresh process that builds the recipe (default preset, float32,
`--data FOLDER`; vae with `--cache off`, since photos shrunk to 28x28 fit in memory) and times
its real train step on its real input pipeline. Prints, per row:
the peak resident memory of that process (from the kernel, `wait4`), the time from process start
to the end of the first step, steps/s, and the share of step time spent waiting for input. The
T91 rows are the in-memory path; `--baseline REPO` adds T91 rows run with another checkout's
code (e.g. the commit before streaming) in the same session. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BSD200 = ROOT.parent / "shared" / "data" / "sr" / "BSD200"
SIZE = (2040, 1356)  # (width, height), as DIV2K's photos


def make_photos(folder: Path, count: int, suffix: str) -> None:
    """`count` distinct 2040x1356 photos in `folder` (kept between runs)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted(BSD200.glob("*.png")) or [None]
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"{i:04d}.{suffix}"
        if path.exists():
            continue
        source = sources[i % len(sources)]
        base = (Image.open(source).convert("RGB") if source else
                Image.fromarray(rng.integers(0, 256, (34, 51, 3), np.uint8)))
        base = base.resize((SIZE[0] + 64, SIZE[1] + 64), Image.Resampling.BICUBIC)
        x, y = rng.integers(0, 64, 2)
        pixels = np.asarray(base.crop((x, y, x + SIZE[0], y + SIZE[1]))).astype(np.int16)
        pixels = pixels + rng.integers(-4, 5, pixels.shape, np.int16)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else image
        tmp = path.with_name(f".{path.name}.tmp.{suffix}")
        image.save(tmp, quality=92) if suffix == "jpg" else image.save(tmp)
        tmp.replace(path)


def child(recipe_name: str, data: str, steps: int, cache: str) -> None:
    """In a fresh process: build, take `steps` timed steps, print one JSON line."""
    started = time.perf_counter()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import dataclasses

    import tensorflow as tf

    from train.recipes import get_recipe
    from train.trainer import build, distribute, make_step_function

    recipe = get_recipe(recipe_name)
    config = dataclasses.replace(recipe.presets["default"], data=data, minutes=0.0, precision="float32")
    if cache:
        config = dataclasses.replace(config, cache=cache)
    built = build(recipe, config)
    model = built.model
    if hasattr(model, "begin_step"):
        model.begin_step(0)
    step = make_step_function(tf.distribute.get_strategy(), model.train_step)
    batches = built.batches_from(0) if hasattr(built, "batches_from") else built.train_data
    iterator = iter(distribute(tf.distribute.get_strategy(), batches))
    tf.nest.map_structure(lambda t: t.numpy(), step(next(iterator)))
    first = time.perf_counter() - started
    for _ in range(2):  # warm up
        tf.nest.map_structure(lambda t: t.numpy(), step(next(iterator)))
    waiting = computing = 0.0
    for _ in range(steps):
        begin = time.perf_counter()
        batch = next(iterator)
        fetched = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), step(batch))
        waiting, computing = waiting + fetched - begin, computing + time.perf_counter() - fetched
    print(json.dumps({"first_step_s": first, "steps_s": steps / (waiting + computing),
                      "wait": waiting / (waiting + computing)}))


def run_child(recipe: str, data: str, steps: int, code: Path, cache: str = "") -> dict:
    """One fresh process; its own peak RSS from the kernel (`wait4`)."""
    import tempfile

    env = {**os.environ, "PYTHONPATH": str(code), "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, __file__, "--child", recipe, data, str(steps), cache], cwd=code,
                                   env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        out, err = out.read(), err.read()
    if process.returncode:
        raise SystemExit(f"error: {recipe} on {data} failed:\n{err[-2000:]}")
    row = json.loads(out.strip().splitlines()[-1])
    row["rss_mb"] = usage.ru_maxrss / 1024  # KiB on Linux
    row["how"] = next((line.split(": ", 2)[2] for line in out.splitlines() if line.startswith("data: ")), "")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="40,160,800")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--format", default="jpg", choices=["jpg", "png"])
    parser.add_argument("--recipes", default="gan_superres")
    parser.add_argument("--work", type=Path, default=Path("/tmp/zoo-bench-data"))
    parser.add_argument("--baseline", type=Path, help="another checkout: its T91 rows too")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]), args.child[3])
    sizes = [int(s) for s in args.sizes.split(",")]
    folder = args.work / f"photos_{args.format}"
    print(f"making {max(sizes)} photos of {SIZE[0]}x{SIZE[1]} in {folder} ...", flush=True)
    make_photos(folder, max(sizes), args.format)
    print(f"CPU: {_cpu()}, {os.cpu_count()} cores; {args.steps} timed steps, default preset, float32\n")
    print("| recipe | data | peak RSS | first step after | steps/s | input wait | data path |")
    print("|---|---|---|---|---|---|---|")
    for recipe in args.recipes.split(","):
        runs = [("T91" if recipe == "gan_superres" else "MNIST", "", ROOT, "")]
        if args.baseline:
            runs.append((f"{runs[0][0]} (baseline code)", "", args.baseline, ""))
        # Photos shrunk to a small model's input fit in memory (--cache auto keeps them): force
        # streaming there to time it; super-resolution streams them by itself.
        cache = "" if recipe == "gan_superres" else "off"
        for size in sizes:
            subset = args.work / f"{args.format}_{size}"
            subset.mkdir(exist_ok=True)
            for i in range(size):  # links: one set of files, folders of every size
                link = subset / f"{i:04d}.{args.format}"
                if not link.exists():
                    link.symlink_to(folder / link.name)
            runs.append((f"{size} photos ({args.format}){', --cache off' if cache else ''}", str(subset), ROOT, cache))
        for name, data, code, forced in runs:
            row = run_child(recipe, data or _default_data(recipe), args.steps, code, forced)
            print(f"| {recipe} | {name} | {row['rss_mb']:,.0f} MB | {row['first_step_s']:.1f} s | "
                  f"{row['steps_s']:.2f} | {100 * row['wait']:.1f}% | {row['how'] or 'in memory'} |", flush=True)


def _default_data(recipe: str) -> str:
    return "assets:sr/T91" if recipe == "gan_superres" else "assets:mnist"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
