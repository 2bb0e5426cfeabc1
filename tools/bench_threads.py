"""TensorFlow's thread pools against the defaults: each recipe's training call under
`inter_op` / `intra_op` settings, one fresh process per measurement; prints a table.

TensorFlow fixes its pools when the first op runs, so each (recipe, setting) is timed in its own
process: it sets the pools, builds the recipe's preset (default: `default`) in float32 through
`train.sizing.step_runner` (the trainer's own traced call of K steps), runs 3 untimed calls and
times 7, median steps/s. The settings are visited in alternate order, round after round
(`--rounds`), because the same setting moves by tens of percent from one fresh process to the
next on a shared 2-core machine; the table gives each setting's median over the rounds and its
ratio to the defaults' median (0 = TensorFlow's choice: as many threads as cores).

    python tools/bench_threads.py [--recipes rbf,vae] [--rounds 3] [--settings 0:0,1:0,0:1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.bench_text import cpu_name  # noqa: E402

DEFAULT_RECIPES = ("rbf", "som_rbf_attention", "vae", "dcgan", "lstm_classifier",
                   "transformer_classifier", "gan_superres")
DEFAULT_SETTINGS = ((0, 0), (1, 0), (0, 1))  # (inter_op, intra_op); 0: TensorFlow's default


def _setting_name(inter: int, intra: int) -> str:
    if not inter and not intra:
        return "defaults"
    return ", ".join(f"{name} {value}" for name, value in (("inter_op", inter), ("intra_op", intra)) if value)


def child(recipe_name: str, preset: str, inter: int, intra: int) -> dict:
    """One measurement, in this (fresh) process."""
    import tensorflow as tf
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    from train import sizing
    from train.recipes import get_recipe

    recipe = get_recipe(recipe_name)
    config = recipe.presets[preset]
    steps = sizing.steps_per_timed_call(config)
    run = sizing.step_runner(recipe, config)("float32")
    for _ in range(3):
        run()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"recipe": recipe_name, "inter": inter, "intra": intra, "steps_per_call": steps,
            "steps_per_s": steps / statistics.median(times),
            "threads": [tf.config.threading.get_inter_op_parallelism_threads(),
                        tf.config.threading.get_intra_op_parallelism_threads()]}


def measure(recipe: str, preset: str, inter: int, intra: int) -> dict:
    """Runs `child` in a fresh Python process and returns its result."""
    command = [sys.executable, __file__, "--child", f"{recipe}:{preset}:{inter}:{intra}"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{recipe} with inter_op {inter}, intra_op {intra} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=",".join(DEFAULT_RECIPES))
    parser.add_argument("--preset", default="default")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settings", default=",".join(f"{a}:{b}" for a, b in DEFAULT_SETTINGS),
                        help="INTER:INTRA pairs; 0 is TensorFlow's default")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        recipe, preset, inter, intra = args.child.split(":")
        print(json.dumps(child(recipe, preset, int(inter), int(intra))))
        return

    settings = [tuple(int(v) for v in pair.split(":")) for pair in args.settings.split(",")]
    if (0, 0) not in settings:
        settings.insert(0, (0, 0))
    recipes = args.recipes.split(",")
    rates: dict[tuple, list[float]] = {}
    started = time.strftime("%Y-%m-%d %H:%M")
    for round_index in range(args.rounds):
        order = settings if round_index % 2 == 0 else settings[::-1]
        for recipe in recipes:
            for inter, intra in order:
                result = measure(recipe, args.preset, inter, intra)
                rates.setdefault((recipe, inter, intra), []).append(result["steps_per_s"])
                print(f"round {round_index + 1}: {recipe:24s} {_setting_name(inter, intra):22s} "
                      f"{result['steps_per_s']:9.2f} steps/s (K {result['steps_per_call']}; TensorFlow's "
                      f"inter_op / intra_op setting {result['threads'][0]} / {result['threads'][1]})", flush=True)

    print(f"\n{cpu_name()}, {os.cpu_count()} logical CPUs; {started} to {time.strftime('%H:%M')}; "
          f"preset {args.preset}, float32; {args.rounds} rounds, one fresh process per measurement\n")
    header = ["recipe"] + [f"{_setting_name(*s)} steps/s" for s in settings] + \
             [f"{_setting_name(*s)} / defaults (each round)" for s in settings if s != (0, 0)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for recipe in recipes:
        base = statistics.median(rates[(recipe, 0, 0)])
        cells = [recipe] + [f"{statistics.median(rates[(recipe, *s)]):,.1f}" for s in settings]
        for s in settings:
            if s == (0, 0):
                continue
            each = ", ".join(f"{a / b:.2f}" for a, b in zip(rates[(recipe, *s)], rates[(recipe, 0, 0)]))
            cells.append(f"{statistics.median(rates[(recipe, *s)]) / base:.2f}x ({each})")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
