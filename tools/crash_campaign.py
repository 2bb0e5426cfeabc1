"""Crash campaign: kill a training run with SIGKILL at random moments, restart it each time, and
check that it still ends with the weights of an uninterrupted run.

    python tools/crash_campaign.py RECIPE [--kills 20] [--seed 0] [--work DIR] [-- TRAIN FLAGS...]
    python tools/crash_campaign.py gan_superres --kills 20 -- --preset tiny --epochs 3 --steps-per-epoch 8

1. Runs `python -m train RECIPE FLAGS` once without interruption (the reference) and times it.
2. Starts the same command in a fresh run directory and kills it with SIGKILL at a random
   moment: every fifth kill during start-up, the others within about one step
   after the run's latest checkpoint passes a step spread evenly over the plan (so kills land
   mid-step, mid-checkpoint, mid-validation, and the run progresses between them). Checks that
   every checkpoint the run directory lists can be read, and restarts it; `--kills` times.
   Use `--minutes 0` for recipes whose default plans its steps by speed: the reference and
   the crashed run must plan the same steps.
3. Lets the last restart finish and compares every weight of its `model.keras` with the
   reference's, exactly.

Prints one table row per kill and a summary; exits 1 if a checkpoint was unreadable, the run
did not finish its steps, or the weights differ. Works for every recipe.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}


def command(recipe: str, flags: list[str], run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "train", recipe, *flags, "--run-dir", str(run_dir), "--quiet"]


def start_and_time(cmd: list[str], run_dir: Path, timeout: float) -> tuple[float, float]:
    """Run to completion; return (seconds of start-up, seconds of training).

    Training starts when the trainer writes `config.json` (after the data and the model are
    built) and ends when `model.keras` appears.
    """
    config, model, begin = run_dir / "config.json", run_dir / "model.keras", time.perf_counter()
    process = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    started = ended = None
    while process.poll() is None:
        now = time.perf_counter() - begin
        if started is None and config.exists():
            started = now
        if ended is None and model.exists():
            ended = now
        if now > timeout:
            process.kill()
        time.sleep(0.01)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {process.returncode}:\n{process.stderr.read()[-3000:]}")
    total = time.perf_counter() - begin
    started = total if started is None else started
    return started, (total if ended is None else ended) - started


def latest_step(run_dir: Path) -> int:
    """The step of the latest checkpoint the run directory lists (0 if none), read without TF."""
    state = run_dir / "checkpoints" / "checkpoint"
    match = re.search(r'^model_checkpoint_path: ".*-(\d+)"', state.read_text(), re.M) if state.exists() else None
    return int(match.group(1)) if match else 0


def kill_at(cmd: list[str], run_dir: Path, target: int | None, delay: float) -> int:
    """Start the run and SIGKILL it: `delay` seconds after it starts (`target` None, a kill
    during start-up), or `delay` seconds after its latest checkpoint reaches step `target`.
    Returns the exit code (-9 when killed; 0 when it finished first)."""
    process = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reached = None
    while process.poll() is None:
        now = time.perf_counter()
        if reached is None and (target is None or latest_step(run_dir) >= target):
            reached = now
        if reached is not None and now - reached >= delay:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    return process.wait()


def checkpoint_report(run_dir: Path) -> tuple[int | None, int, int]:
    """(latest step, readable checkpoints, listed checkpoints) of a run directory."""
    import tensorflow as tf

    folder = run_dir / "checkpoints"
    state = tf.train.get_checkpoint_state(str(folder)) if folder.is_dir() else None
    if state is None:
        return None, 0, 0
    paths = list(state.all_model_checkpoint_paths)
    readable = 0
    for path in paths:
        try:
            tf.train.load_checkpoint(path).get_variable_to_shape_map()
            readable += 1
        except Exception:  # noqa: BLE001 - any failure to read counts as unreadable
            pass
    latest = state.model_checkpoint_path
    return int(latest.rsplit("-", 1)[-1]) if latest else None, readable, len(paths)


def weights(path: Path) -> list:
    import keras

    import zoo  # noqa: F401 - registers zoo's classes for loading

    return [w for w in keras.saving.load_model(path, compile=False).get_weights()]


def planned_steps(run_dir: Path) -> int:
    config = json.loads((run_dir / "config.json").read_text())["config"]
    return config["epochs"] * config["steps_per_epoch"]


def campaign(recipe: str, flags: list[str], kills: int, seed: int, work: Path, timeout: float) -> bool:
    import numpy as np

    rng = random.Random(seed)
    reference, crashed = work / "reference", work / "crashed"
    startup, training = start_and_time(command(recipe, flags, reference), reference, timeout)
    total = planned_steps(reference)
    print(f"reference run: {startup:.1f} s start-up, {training:.1f} s training, {total} steps\n")
    print(f"{'kill':>4} {'when':>34} {'latest ckpt':>11} {'readable':>9} {'exit':>5}")
    ok = True
    for kill in range(1, kills + 1):
        # Every fifth kill lands during start-up; the others at a random moment within about a
        # step after the run passes a step spread evenly over the plan (mid-step,
        # mid-checkpoint, mid-validation...).
        if kill % 5 == 0:
            target, delay = None, rng.uniform(0, startup)
            when = f"{delay:.2f} s after start"
        else:
            spread = round(total * kill / (kills + 1))
            target = min(total, max(spread, latest_step(crashed) + 1))  # progress since the last restart
            delay = rng.uniform(0, training / total)  # within about one step
            when = f"{delay:.2f} s after checkpoint >= {target}"
        code = kill_at(command(recipe, flags, crashed), crashed, target, delay)
        latest, readable, listed = checkpoint_report(crashed)
        ok &= readable == listed
        print(f"{kill:>4} {when:>34} {str(latest):>11} {f'{readable}/{listed}':>9} {code:>5}", flush=True)
    start_and_time(command(recipe, flags, crashed), crashed, timeout)
    latest, readable, listed = checkpoint_report(crashed)
    steps_done = latest == planned_steps(crashed)
    same = all(np.array_equal(a, b) for a, b in zip(weights(reference / "model.keras"),
                                                    weights(crashed / "model.keras"), strict=True))
    print(f"\nfinished all {planned_steps(crashed)} steps: {steps_done}; every checkpoint readable: "
          f"{ok}; final weights identical to the uninterrupted run: {same}")
    return ok and steps_done and same


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--work", type=Path, help="working folder (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per run")
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="crash-campaign-"))
    print(f"crash campaign: {args.recipe} {' '.join(flags)}, {args.kills} SIGKILLs, work dir {work}")
    return 0 if campaign(args.recipe, flags, args.kills, args.seed, work, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
