"""Crash campaign: kill a training run with SIGKILL at random moments, restart it each time, and
check that it still ends with the weights of an uninterrupted run.

    python tools/crash_campaign.py RECIPE [--kills 20] [--seed 0] [--mid-epoch] [--work DIR] [-- TRAIN FLAGS...]
    python tools/crash_campaign.py gan_superres --kills 20 -- --preset tiny --epochs 3 --steps-per-epoch 8

1. Runs `python -m train RECIPE FLAGS` once without interruption (the reference) and times it.
2. Starts the same command in a fresh run directory and kills it with SIGKILL: every fifth kill
   during start-up, the others within about one step after the run writes a checkpoint at or
   after a step spread evenly over the plan (so kills land mid-step, mid-checkpoint,
   mid-validation, and the run progresses between them). With `--mid-epoch`, every kill lands
   right after a checkpoint inside an epoch (`is_mid_epoch`), and must be found there. After
   each kill, checks that the latest checkpoint the run directory lists can be read, and every
   other listed one too unless the kill caught it being deleted (`Checkpoints`); restarts it.
3. Lets the last restart finish and compares every weight of its `model.keras`, and every
   variable of its last checkpoint (weights, optimizer slots, step), with the reference's, exactly.

Only real kills count: a kill is sent only to a process that is still running (checked just
before the signal) and counts only if the process then ends by it (exit status -9). A run that
ended before its kill (it finished, or failed) was not interrupted: the table says so, and
since a finished run directory has nothing left to interrupt, the campaign stops there. Kills
wait only for checkpoints written before the run's last one, so a kill cannot be planned
after the end of the run; when no such checkpoint is left, the kill lands during start-up.

Use `--minutes 0` for recipes whose default plans its steps by speed, and a fixed `--precision`
where the default is `auto` on a CPU with bfloat16 instructions: the reference and the crashed
run must plan the same steps in the same precision.

Prints one table row per kill and a summary with the number of real interruptions; exits 1
if fewer than `--kills` real kills happened (with `--mid-epoch`: real kills found mid-epoch),
a checkpoint was unreadable, the run did not finish its steps, or the weights differ. Works
for every recipe. tests/scripts/recipe_guarantees.py uses the functions here (kill timing,
real-kill checks, the comparisons) for every recipe's mid-epoch kill.
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
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}
POLL = 0.005  # seconds between looks at the run directory


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
    try:
        text = state.read_text()
    except OSError:
        return 0
    match = re.search(r'^model_checkpoint_path: ".*-(\d+)"', text, re.M)
    return int(match.group(1)) if match else 0


def planned(run_dir: Path) -> dict:
    """The config a run trains (config.json's settings with what `--minutes` planned)."""
    saved = json.loads((run_dir / "config.json").read_text())
    return {**saved["config"], **saved.get("plan", {})}


def is_mid_epoch(step: int, config: dict) -> bool:
    """Whether a run whose latest checkpoint is at `step` stopped inside an epoch's steps: the
    checkpoint is not an epoch's last, and the next one it would have written (had it run on)
    comes before or at that epoch's end."""
    per_epoch, every = config["steps_per_epoch"], config["checkpoint_every"]
    return step > 0 and step % per_epoch != 0 and step + every <= (step // per_epoch + 1) * per_epoch


def checkpoint_steps(config: dict, mid_epoch: bool = False) -> list[int]:
    """The steps a run of `config` writes a checkpoint at, before its last one (a kill planned
    after the last would find the run finished); with `mid_epoch`, only those a kill right
    after would catch inside an epoch (`is_mid_epoch`)."""
    total, per_epoch, every = (config["epochs"] * config["steps_per_epoch"], config["steps_per_epoch"],
                               config["checkpoint_every"])
    steps = set(range(every, total, every)) | set(range(per_epoch, total, per_epoch))
    return sorted(s for s in steps if not mid_epoch or is_mid_epoch(s, config))


@dataclass
class Kill:
    """What one kill attempt did."""

    killed: bool  # the planned SIGKILL reached the running process, which ended by it (exit status -9)
    code: int  # the exit status (-9 when killed; 0 when the run finished before the kill)
    latest: int  # the latest checkpoint listed after the process ended (0: none)
    seconds: float  # from the start of the wait to the end of the process
    timed_out: bool = False  # killed because it ran past the timeout, not as planned

    @property
    def outcome(self) -> str:
        if self.timed_out:
            return "timed out"
        return "killed" if self.killed else "finished first" if self.code == 0 else f"failed ({self.code})"


def kill_when(process, run_dir: Path, target: int | None, delay: float, timeout: float = 900) -> Kill:
    """SIGKILL `process` (a `subprocess.Popen`, or anything with `pid`, `poll()` and `wait()`)
    `delay` seconds after now (`target` None: a process just started) or after `run_dir`'s
    latest checkpoint reaches step `target`. The signal is sent only if `poll()` says the process
    still runs just before it, and the kill counts only if the process then ends with status -9
    (one that ended in between is a zombie until waited for, so its pid is no other's)."""
    begin = time.perf_counter()
    reached, timed_out = (begin if target is None else None), False
    while process.poll() is None:
        now = time.perf_counter()
        if reached is None and latest_step(run_dir) >= target:
            reached = now
        timed_out = now - begin > timeout
        if (reached is not None and now - reached >= delay) or timed_out:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(POLL)
    code = process.wait()
    return Kill(code == -signal.SIGKILL and not timed_out, code, latest_step(run_dir), time.perf_counter() - begin,
                timed_out)


def kill_at(cmd: list[str], run_dir: Path, target: int | None, delay: float, log: Path | None = None,
            timeout: float = 900) -> Kill:
    """Start `cmd` and `kill_when` it; its stderr goes to `log` (if given)."""
    with open(log or os.devnull, "w") as errors:
        process = subprocess.Popen(cmd, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=errors)
        return kill_when(process, run_dir, target, delay, timeout)


@dataclass
class Checkpoints:
    """The checkpoints a run directory lists, after a kill."""

    latest: int | None  # step of the latest (None: none listed)
    listed: int
    readable: int
    swept: int  # listed but being deleted when the kill came (`CheckpointManager.save` lists the
    # new checkpoint, then deletes the oldest, index file first, then lists again): not damage
    latest_readable: bool = True

    @property
    def ok(self) -> bool:
        """The latest can be read, and every other listed one too unless it was being deleted."""
        return self.latest is None or (self.latest_readable and self.readable + self.swept == self.listed)

    def __str__(self) -> str:
        return f"{self.readable}/{self.listed}" + (f" ({self.swept} swept)" if self.swept else "")


def checkpoint_report(run_dir: Path) -> Checkpoints:
    """What the checkpoints `run_dir` lists are: the latest step, and how many can be read."""
    import tensorflow as tf

    folder = run_dir / "checkpoints"
    state = tf.train.get_checkpoint_state(str(folder)) if folder.is_dir() else None
    if state is None:
        return Checkpoints(None, 0, 0, 0)
    paths, latest = list(state.all_model_checkpoint_paths), state.model_checkpoint_path
    readable, swept, latest_readable = 0, 0, False
    for path in paths:
        try:
            tf.train.load_checkpoint(path).get_variable_to_shape_map()
            readable += 1
            latest_readable |= path == latest
        except Exception:  # noqa: BLE001 - any failure to read counts as unreadable
            swept += path != latest and not Path(path + ".index").exists()
    return Checkpoints(int(latest.rsplit("-", 1)[-1]) if latest else None, len(paths), readable, swept,
                       latest_readable)


def weights(path: Path) -> list:
    import keras

    import zoo  # noqa: F401 - registers zoo's classes for loading

    return [w for w in keras.saving.load_model(path, compile=False).get_weights()]


def checkpoint_values(run_dir: Path) -> dict:
    """Every variable of the run's latest checkpoint by name (model, optimizers, step), without
    the object graph and the save counter (bookkeeping of `tf.train.Checkpoint`, not training)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "checkpoints")))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if name != "_CHECKPOINTABLE_OBJECT_GRAPH" and not name.startswith("save_counter")}


def differences(reference: Path, run: Path) -> list[str]:
    """What differs between two finished run directories: `model.keras` weights (by position)
    and the variables of their last checkpoints (by name), bit for bit; [] when nothing does."""
    import numpy as np

    found = [f"model.keras weight {i} {a.shape}" for i, (a, b) in
             enumerate(zip(weights(reference / "model.keras"), weights(run / "model.keras"), strict=True))
             if not np.array_equal(a, b)]
    expected, got = checkpoint_values(reference), checkpoint_values(run)
    if expected.keys() != got.keys():
        return found + [f"checkpoint variables {sorted(expected.keys() ^ got.keys())[:5]}"]
    return found + [f"checkpoint {name}" for name in sorted(expected)
                    if not np.array_equal(expected[name], got[name])]


def plan_kill(kill: int, kills: int, rng: random.Random, startup: float, step_seconds: float, total: int,
              targets: list[int], latest: int, mid_epoch: bool) -> tuple[int | None, float, str]:
    """(target checkpoint step or None for start-up, delay in seconds, description) of kill
    number `kill` (1-based): every fifth during start-up (not with `mid_epoch`), the others
    after the first checkpoint in `targets` at or after a step spread over the plan and after
    the run's progress so far; during start-up when no such checkpoint is left."""
    spread = round(total * kill / (kills + 1))
    ahead = [s for s in targets if s >= max(spread, latest + 1)]
    if (kill % 5 == 0 and not mid_epoch) or not ahead:
        delay = rng.uniform(0, startup)
        return None, delay, f"{delay:.2f} s after start"
    delay = 0.0 if mid_epoch else rng.uniform(0, step_seconds)  # within about one step
    return ahead[0], delay, f"{delay:.2f} s after checkpoint >= {ahead[0]}"


def interrupt(recipe: str, flags: list[str], crashed: Path, work: Path, kills: int, rng: random.Random,
              timing: tuple[float, float], config: dict, mid_epoch: bool, timeout: float) -> tuple[int, int, bool]:
    """Start and SIGKILL the run in `crashed` up to `kills` times, one table row each; stop at
    the first attempt that found no running process. Returns (real kills, mid-epoch ones, every
    checkpoint readable after every kill)."""
    startup, training = timing
    total = config["epochs"] * config["steps_per_epoch"]
    targets = checkpoint_steps(config, mid_epoch)
    print(f"{'kill':>4} {'when':>34} {'latest ckpt':>11} {'readable':>13} {'exit':>5}  outcome")
    real, mid, readable_ok = 0, 0, True
    for attempt in range(1, kills + 1):
        target, delay, when = plan_kill(attempt, kills, rng, startup, training / total, total, targets,
                                        latest_step(crashed), mid_epoch)
        log = work / f"kill-{attempt}.stderr"
        kill = kill_at(command(recipe, flags, crashed), crashed, target, delay, log, timeout)
        listed = checkpoint_report(crashed)
        readable_ok &= listed.ok
        inside = kill.killed and target is not None and is_mid_epoch(kill.latest, config)
        real, mid = real + kill.killed, mid + inside
        print(f"{attempt:>4} {when:>34} {str(listed.latest):>11} {str(listed):>13} {kill.code:>5}  "
              f"{kill.outcome}{', mid-epoch' if inside else ''}", flush=True)
        if not kill.killed:  # finished (nothing left to interrupt), failed or hung
            print(f"\nkill {attempt} found no running process to interrupt ({kill.outcome}): the campaign stops"
                  + ("; give the run more steps (--steps-per-epoch, --epochs) or ask fewer --kills"
                     if kill.code == 0 else f"; its stderr is in {log}"))
            break
    return real, mid, readable_ok


def campaign(recipe: str, flags: list[str], kills: int, seed: int, work: Path, timeout: float,
             mid_epoch: bool = False) -> bool:
    reference, crashed = work / "reference", work / "crashed"
    timing = start_and_time(command(recipe, flags, reference), reference, timeout)
    config = planned(reference)
    total = config["epochs"] * config["steps_per_epoch"]
    print(f"reference run: {timing[0]:.1f} s start-up, {timing[1]:.1f} s training, {total} steps\n")
    real, mid, readable_ok = interrupt(recipe, flags, crashed, work, kills, random.Random(seed), timing, config,
                                       mid_epoch, timeout)
    print(f"\nreal interruptions (SIGKILL of a running process): {real} of the {kills} asked"
          + (f", {mid} of them mid-epoch" if mid_epoch else ""))
    if real < kills or mid_epoch and mid < kills:
        print("FAILED: fewer real" + (" mid-epoch" if mid_epoch else "") + " interruptions than asked")
        return False
    start_and_time(command(recipe, flags, crashed), crashed, timeout)
    latest = checkpoint_report(crashed).latest
    differ = differences(reference, crashed)
    print(f"finished all {total} steps: {latest == total}; every checkpoint readable: {readable_ok}; "
          f"final weights identical to the uninterrupted run: {not differ}")
    if differ:
        print("differs: " + "; ".join(differ[:10]))
    return readable_ok and latest == total and not differ


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--kills", type=int, default=20, help="real interruptions required")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill times")
    parser.add_argument("--mid-epoch", action="store_true",
                        help="every kill right after a checkpoint inside an epoch (needs --checkpoint-every "
                             "below --steps-per-epoch)")
    parser.add_argument("--work", type=Path, help="working folder (default: a new temporary one)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per run")
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="crash-campaign-"))
    print(f"crash campaign: {args.recipe} {' '.join(flags)}, {args.kills} SIGKILLs, work dir {work}")
    ok = campaign(args.recipe, flags, args.kills, args.seed, work, args.timeout, args.mid_epoch)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
