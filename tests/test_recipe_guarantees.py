"""The guarantees the README claims for every recipe, each checked through the recipe's own
build() and optimizers (tiny preset): a run SIGKILLed mid-epoch resumes to the uninterrupted
run's weights bit for bit, and 2 replicas train the weights of 1. Every registered recipe is
covered. The runs (five or six per recipe) come from tests/scripts/recipe_guarantees.py, once for the
recipes selected; the kill timing and the comparisons are tools/crash_campaign.py's.

Also: the crash campaign counts only real kills (a SIGKILL that ended a running process)."""

import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

from train.recipes import RECIPES

sys.path.insert(0, str(ROOT / "tools"))
import crash_campaign  # noqa: E402

NAMES = sorted(RECIPES)  # a recipe is covered as soon as it is registered
SCRIPT = ROOT / "tests" / "scripts" / "recipe_guarantees.py"

# 2 replicas = 1, measured as the distance between the final weights of the 1- and 2-replica
# runs relative to the distance training moved them (Adam turns float rounding in near-zero
# gradients into whole steps, e.g. a Transformer's key bias, whose gradient is 0 in exact
# arithmetic, so no per-weight tolerance fits). Measured here (the tiny presets, 10 steps):
#   1 vs 2 replicas: rbf 2.6e-7, som 3.2e-7, vae 6.5e-7, dcgan 7.1e-7, gan_superres 1.6e-6,
#     lstm_classifier 3.5e-6, transformer_classifier 4.1e-6, som_rbf_attention 1.0e-5 (these three
#     with dropout off: see test_dropout_masks_of_two_replicas_are_those_of_one);
#   control, 1 replica on other batches from the same start: dcgan 0.013 (its first Adam steps
#     hardly depend on the batch), rbf 0.20, gan_superres 0.44, som 0.92, the others 1.0-1.4
#     (the script reruns the control for the first three only: CONTROLLED);
#   moved, relative to the initial weights: 0.0057 (transformer_classifier) to 0.27 (som).
# The tolerance sits 100x above the noise and more than 10x below the smallest control.
TOLERANCE = 1e-3
CONTROL = 5e-3  # the control must land at least this far: the measure tells runs apart
MOVED = 2e-3  # training moved the weights by at least this share of their norm


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """(work folder, report) of the script's runs for the recipes this session tests."""
    wanted = _selected(request)
    work = tmp_path_factory.mktemp("guarantees")
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(work), *wanted], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=ROOT, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        output = process.communicate(timeout=1200)[0]
    finally:  # the runs are forked children in the script's session: end them all
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, output[-3000:]
    return work, json.loads((work / "report.json").read_text())


def _selected(request) -> list[str]:
    """The recipes of the parametrized tests of this module that the session runs."""
    return sorted({item.callspec.params["recipe"] for item in request.session.items
                   if item.module is request.module and hasattr(item, "callspec")
                   and "recipe" in item.callspec.params})


def _log(work, recipe: str, run: str) -> str:
    path = work / recipe / f"{run}.log"
    return path.read_text()[-3000:] if path.exists() else f"(no {path.name})"


@pytest.mark.parametrize("recipe", NAMES)
def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(runs, recipe):
    work, report = runs
    result, folder = report["runs"][recipe], work / recipe
    kill = result["kill"]
    assert kill and kill["killed"] and kill["code"] == -signal.SIGKILL, (kill, _log(work, recipe, "killer"))
    assert crash_campaign.is_mid_epoch(kill["latest"], report["flags"]), kill  # after a checkpoint, before the end
    assert kill["latest"] > report["flags"]["steps_per_epoch"], kill  # in epoch 2: epoch 1's state is restored too
    reference = "reference" if "reference" in result else "one"  # the recipe's tiny preset as it is
    for run in ("resumed", reference):
        assert result[run]["code"] == 0, _log(work, recipe, run)
    assert f"Resuming from {folder / 'crashed' / 'checkpoints'}/ckpt-{kill['latest']} at step {kill['latest']}" \
        in _log(work, recipe, "resumed")  # not a fresh start
    flags = report["flags"]
    assert crash_campaign.checkpoint_report(folder / "crashed").latest == flags["epochs"] * flags["steps_per_epoch"]
    assert crash_campaign.differences(folder / reference, folder / "crashed") == []  # model.keras and checkpoint


def _weights(path, replicas: int):
    """(weight names, initial weights, final weights) of a run on `replicas` replicas."""
    with np.load(path) as saved:
        assert int(saved["replicas"]) == replicas, path
        names = [str(name) for name in saved["names"]]
        return (names, [saved[f"initial_{i}"] for i in range(len(names))],
                [saved[f"final_{i}"] for i in range(len(names))])


def _norm(arrays) -> float:
    return float(np.sqrt(sum(np.sum(np.square(a, dtype=np.float64)) for a in arrays)))


@pytest.mark.parametrize("recipe", NAMES)
def test_two_replicas_train_like_one(runs, recipe):
    """`train(strategy="mirrored")` over 2 logical CPUs vs `"one_device"`, same global batches."""
    work, report = runs
    controlled = recipe in report["controlled"]  # the recipes nearest the threshold
    for run in ("one", "two", "other") if controlled else ("one", "two"):
        assert report["runs"][recipe][run]["code"] == 0, _log(work, recipe, run)
    names, initial, one = _weights(work / recipe / "one.npz", 1)
    runs_ = {run: _weights(work / recipe / f"{run}.npz", replicas)
             for run, replicas in (("two", 2), ("other", 1)) if controlled or run == "two"}
    for run, (other_names, start, _) in runs_.items():  # the same start: differences come from training
        assert other_names == names and all(np.array_equal(a, b) for a, b in zip(initial, start)), run
    # Trained values; SOM label counts (tallies of the map's winners, set after each epoch) and
    # integer step counters must be equal outright.
    trained = [i for i, (name, w) in enumerate(zip(names, one)) if w.dtype.kind == "f"
               and not name.endswith("label_counts")]
    two = runs_["two"][2]
    for i in set(range(len(names))) - set(trained):
        assert np.array_equal(one[i], two[i]), names[i]
    moved = _norm([one[i] - initial[i] for i in trained])
    assert moved > MOVED * _norm([initial[i] for i in trained]), moved
    replicas = _norm([one[i] - two[i] for i in trained]) / moved
    assert replicas < TOLERANCE, replicas
    if controlled:  # the measure tells runs on other batches apart
        control = _norm([one[i] - runs_["other"][2][i] for i in trained]) / moved
        assert control > CONTROL, control


def test_dropout_masks_of_two_replicas_are_those_of_one(runs):
    """`zoo.layers.dropout.stateless_dropout` draws the mask of the global batch from the step and
    each replica keeps its rows, so 2 replicas drop the units 1 replica drops. (When each replica
    drew its own mask from (step, replica id), lstm_classifier, transformer_classifier and
    som_rbf_attention on 2 replicas landed as far from 1 replica as a run on other batches:
    0.83, 1.24 and 1.04 of the distance trained, controls 1.4, 1.1 and 1.2.)"""
    work, report = runs
    assert report["runs"]["dropout"]["masks"]["code"] == 0, _log(work, "dropout", "masks")
    masks = json.loads((work / "dropout.json").read_text())
    assert masks["replicas"] == [1, 2], masks
    assert masks["equal"], masks
    assert 0 < np.mean(masks["one"]) < 2, masks  # some units dropped (0), the others scaled by 2


# ----------------------------------------------------------------------------- real kills only

def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code])


def test_only_a_sigkill_that_ends_a_running_process_counts(tmp_path):
    finished = crash_campaign.kill_when(_python("pass"), tmp_path, None, delay=30)
    assert not finished.killed and finished.code == 0 and finished.outcome == "finished first"
    failed = crash_campaign.kill_when(_python("raise SystemExit(3)"), tmp_path, 5, delay=0)
    assert not failed.killed and failed.outcome == "failed (3)"
    started = crash_campaign.kill_when(_python("import time; time.sleep(60)"), tmp_path, None, delay=0.05)
    assert started.killed and started.code == -signal.SIGKILL and started.latest == 0
    state = tmp_path / "checkpoints" / "checkpoint"  # a run that writes checkpoint 6, then goes on
    writes = f"import pathlib, time; pathlib.Path({str(state)!r}).write_text('model_checkpoint_path: \"ckpt-6\"\\n')"
    state.parent.mkdir()
    after = crash_campaign.kill_when(_python(writes + "; time.sleep(60)"), tmp_path, 6, delay=0)
    assert after.killed and after.latest == 6 and after.outcome == "killed"
    hung = crash_campaign.kill_when(_python("import time; time.sleep(60)"), tmp_path, 99, delay=0, timeout=0.2)
    assert not hung.killed and hung.outcome == "timed out"


def test_kill_targets_lie_before_the_end_and_mid_epoch_ones_inside_an_epoch():
    config = {"epochs": 2, "steps_per_epoch": 5, "checkpoint_every": 2}
    assert crash_campaign.checkpoint_steps(config) == [2, 4, 5, 6, 8]  # not 10: the run's last
    # 4 is not: the next checkpoint would be epoch 1's end, after its validation
    assert crash_campaign.checkpoint_steps(config, mid_epoch=True) == [2, 6, 8]
    rng = random.Random(0)
    assert crash_campaign.plan_kill(1, 1, rng, 3.0, 0.1, 10, [2, 6, 8], 0, True)[:2] == (6, 0.0)
    target, delay, when = crash_campaign.plan_kill(2, 2, rng, 3.0, 0.1, 10, [2, 6, 8], 8, True)
    assert target is None and 0 <= delay <= 3.0 and "after start" in when  # none left: start-up
