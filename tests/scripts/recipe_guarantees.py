"""Run by tests/test_recipe_guarantees.py in a fresh process: the runs behind two guarantees of
every recipe named on the command line, each through the recipe's own build() and optimizers
(tiny preset with `FLAGS` below):

- exact resume: `python -m train RECIPE ...` (its `_run`) SIGKILLed mid-epoch right after a
  checkpoint by `tools/crash_campaign.kill_when` (only a real kill of a running process counts),
  then resumed by the same command line (`killed`, `resumed`, in `crashed/`); the test compares
  it with the uninterrupted run `reference` (`one` where the recipe has no `REPLICA_FLAGS`).
- 2 replicas = 1: `train(recipe, config, dir, strategy=...)` on one device (`one`), on 2 logical
  CPU devices (`two`, MirroredStrategy), and the control: one device on other batches (the
  stream from batch `OTHER_DATA` on) from the same initial weights (`other`). Each saves the
  model's initial and final weights and its number of replicas (`RUN.npz`).
- `dropout`: do the stateless dropout masks of 2 replicas equal those of 1 on the same batch?

    python tests/scripts/recipe_guarantees.py WORK [RECIPE...]

Every run is a child process forked from this one after TensorFlow, Keras and zoo are imported
but before TensorFlow has run anything (its runtime starts in each child; measured bit-exact
against `python -m train`): a fresh process per run, with its own MirroredStrategy (a second
one in a process fails, PITFALLS.md), without paying the ~5 s import every time. Two run at
once (two cores), runs on 2 replicas alone. Writes WORK/report.json: per recipe and run its
exit code, seconds and CPU seconds, and the kill.
"""

import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# Before TensorFlow runs anything, inherited by every child.
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402, F401
from crash_campaign import checkpoint_steps, kill_when, plan_kill  # noqa: E402

import train.__main__ as cli  # noqa: E402
import zoo  # noqa: E402, F401
from train.recipes import RECIPES  # noqa: E402
from train.trainer import distribute, train  # noqa: E402

# Two epochs, so that a kill in the second finds per-epoch state to restore (the text recipes'
# best-epoch selection); a checkpoint every 2 steps, so that the kill right after the first
# checkpoint of epoch 2 (step 6) has steps 7-10 of that epoch, a margin of several steps, to
# land before the epoch ends. float32: `auto` measures the speed of bfloat16 on CPUs that have
# it and may choose either. Every tiny batch splits over 2 replicas.
FLAGS = {"epochs": 2, "steps_per_epoch": 5, "checkpoint_every": 2, "precision": "float32", "minutes": 0.0}
# gan_superres streams its T91 folder from disk, the path where a resume must jump ahead
# without decoding the batches it skips (the in-memory one is the same for every recipe).
# rbf resumes with its step compiled by XLA (--xla on), against a `reference` run with XLA too.
EXTRA = {"gan_superres": {"cache": "off"}, "rbf": {"xla": "on"}}
# Settings that only the runs on 1 and 2 replicas (and the control) change, per recipe. XLA is
# off on 2 replicas, and draws other dropout masks than TensorFlow's kernels: the 1-replica runs
# go without it. (Until dropout masks were drawn for the global batch, `dropout_masks`, the text
# and hybrid recipes ran these with dropout off.)
REPLICA_FLAGS: dict[str, dict] = {"rbf": {"xla": "off"}}
OTHER_DATA = 1000  # the control trains on the batches from this one on
# The control runs for the recipes whose control lands nearest the test's threshold (dcgan
# 0.013, rbf 0.20 of the distance trained; gan_superres 0.44; the others measured 0.92-1.4,
# tests/test_recipe_guarantees.py): a run each, about 10 CPU seconds, saved for the others.
CONTROLLED = ("dcgan", "gan_superres", "rbf")
ALONE = ("two", "masks")  # runs on 2 replicas: no other run beside them


def settings(recipe: str, run: str) -> dict:
    replicas = REPLICA_FLAGS.get(recipe, {}) if run in ("one", "two", "other") else {}
    return {**FLAGS, **EXTRA.get(recipe, {}), **replicas}


class Child:
    """A forked child, with the part of `subprocess.Popen` that `kill_when` uses."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def fork(log: Path, work) -> int:
    """Fork a child that runs `work()` with its output in `log` and exits with its return value."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        code = work() or 0
    except BaseException:  # noqa: BLE001 - reported in the log, as exit status 1
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def cli_run(recipe: str, run_dir: Path, *extra: str) -> int:
    """`python -m train RECIPE --preset tiny FLAGS --run-dir DIR [extra]`, as its main does it."""
    flags = [word for name, value in settings(recipe, "killed").items() for word in (cli.flag(name), str(value))]
    return cli._run([recipe, "--preset", "tiny", *flags, "--run-dir", str(run_dir), *extra])


def trained(recipe: str, run: str, run_dir: Path, strategy: str, shift: int = 0) -> int:
    """`train()` the recipe (batches from `shift` on); save its initial and final weights."""
    base, initial, replicas = RECIPES[recipe], [], []

    def build(config):  # called in the strategy's scope
        built = base.build(config)
        initial.extend(np.array(w) for w in built.model.get_weights())
        replicas.append(tf.distribute.get_strategy().num_replicas_in_sync)
        if shift:
            data = built.train_data
            shifted = (lambda start: data(start + shift)) if callable(data) else data.skip(shift)
            built = dataclasses.replace(built, train_data=shifted)
        return built

    config = dataclasses.replace(base.presets["tiny"], **settings(recipe, run))
    model = train(dataclasses.replace(base, build=build), config, run_dir, strategy, verbose=False, preset="tiny")
    np.savez(run_dir.with_suffix(".npz"), names=np.array([w.path for w in model.weights]), replicas=replicas[0],
             **{f"initial_{i}": w for i, w in enumerate(initial)},
             **{f"final_{i}": np.array(w) for i, w in enumerate(model.get_weights())})
    return 0


def dropout_masks(path: Path) -> int:
    """`stateless_dropout` of a batch of ones at one step, on 1 device and split over 2 replicas."""
    from train.strategy import make_strategy
    from zoo.layers.dropout import stateless_dropout, step_seed

    batch = tf.data.Dataset.from_tensors(tf.ones((4, 6))).repeat()
    masks, replicas = [], []
    for name in ("one_device", "mirrored"):
        strategy = make_strategy(name)
        run = tf.function(lambda x: stateless_dropout(x, 0.5, step_seed(tf.constant(7))))
        out = strategy.run(run, args=(next(iter(distribute(strategy, batch))),))
        parts = strategy.experimental_local_results(out)
        masks.append(np.concatenate([t.numpy() for t in parts]))
        replicas.append(len(parts))
    path.write_text(json.dumps({"equal": bool(np.array_equal(*masks)), "replicas": replicas,
                                "one": masks[0].tolist(), "two": masks[1].tolist()}))
    return 0


def work_of(recipe: str, run: str, work: Path):
    """What the child of job (recipe, run) does."""
    folder = work / recipe
    return {"killed": lambda: cli_run(recipe, folder / "crashed", "--quiet"),
            "resumed": lambda: cli_run(recipe, folder / "crashed"),  # prints where it resumes
            "reference": lambda: cli_run(recipe, folder / "reference", "--quiet"),
            "one": lambda: trained(recipe, run, folder / "one", "one_device"),
            "two": lambda: trained(recipe, run, folder / "two", "mirrored"),
            "other": lambda: trained(recipe, run, folder / "other", "one_device", OTHER_DATA),
            "masks": lambda: dropout_masks(work / "dropout.json")}[run]


def kill_mid_epoch(recipe: str, work: Path) -> int:
    """Fork the `killed` run and SIGKILL it right after its first checkpoint of epoch 2 (the
    campaign's plan for one mid-epoch kill); write what happened to `killed.json`."""
    folder = work / recipe
    config = dataclasses.replace(RECIPES[recipe].presets["tiny"], **settings(recipe, "killed")).to_dict()
    total = config["epochs"] * config["steps_per_epoch"]
    target, delay, _ = plan_kill(1, 1, random.Random(0), 0.0, 0.0, total, checkpoint_steps(config, mid_epoch=True),
                                 0, True)
    child = Child(fork(folder / "killed.log", work_of(recipe, "killed", work)))
    kill = kill_when(child, folder / "crashed", target, delay, timeout=600)
    (folder / "killed.json").write_text(json.dumps({**dataclasses.asdict(kill), "target": target}))
    return 0 if kill.killed else 1


def start(recipe: str, run: str, work: Path) -> int:
    if run == "killed":  # a supervisor that forks the run and kills it (no TensorFlow of its own)
        return fork(work / recipe / "killer.log", lambda: kill_mid_epoch(recipe, work))
    return fork(work / recipe / f"{run}.log", work_of(recipe, run, work))


def jobs(recipes: list[str]) -> list[tuple[str, str]]:
    """(recipe, run) in the order they start; a `resumed` run is added when its kill is done."""
    first = [(r, "killed") for r in recipes] + [(r, "reference") for r in recipes if r in REPLICA_FLAGS]
    return [("dropout", "masks"), *first, *[(r, run) for run in ("one", "other", "two") for r in recipes
                                             if run != "other" or r in CONTROLLED]]


def schedule(recipes: list[str], work: Path, lanes: int = 2) -> dict:
    """Run the jobs up to `lanes` at a time, but a run on 2 replicas alone (its replicas wait
    for each other at every all-reduce: beside another process on the two cores it took 4x as
    long, measured); return {recipe: {run: {code, seconds, cpu_seconds}, "kill": ...}}."""
    waiting, running, report = jobs(recipes), {}, {}
    while waiting or running:
        while waiting and len(running) < lanes and not any(run in ALONE for _, run, _ in running.values()):
            ready = next((job for job in waiting if job[1] not in ALONE or not running), None)
            if ready is None:
                break
            waiting.remove(ready)
            running[start(*ready, work)] = (*ready, time.perf_counter())
        pid, status, usage = os.wait4(-1, 0)
        recipe, run, began = running.pop(pid)
        report.setdefault(recipe, {})[run] = {"code": os.waitstatus_to_exitcode(status),
                                              "seconds": round(time.perf_counter() - began, 2),
                                              "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2)}
        if run == "killed":
            kill = work / recipe / "killed.json"
            report[recipe]["kill"] = json.loads(kill.read_text()) if kill.exists() else None
            waiting.insert(0, (recipe, "resumed"))
    return report


def main() -> int:
    work, recipes = Path(sys.argv[1]), sys.argv[2:]
    for folder in ("dropout", *recipes):
        (work / folder).mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    report = {"flags": FLAGS, "controlled": list(CONTROLLED), "runs": schedule(recipes, work),
              "seconds": round(time.perf_counter() - began, 2)}
    (work / "report.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
