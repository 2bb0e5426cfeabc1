"""`python -m train`: a tiny end-to-end run, TensorBoard contents, signals. (SIGKILL and resume: test_recipe_guarantees.py, for every recipe.)"""

import dataclasses
import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import assert_user_error, run_cli, run_python
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import zoo  # noqa: F401
from train.config import ConfigError

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1", "PYTHONPATH": str(ROOT)}


def train_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "train", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = train_cli("gan_superres", "--preset", "tiny", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


def test_tiny_run_writes_model_config_and_logs(tiny_run):
    run_dir, result = tiny_run
    assert (run_dir / "model.keras").is_file()
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["recipe"] == "gan_superres" and saved["config"]["filters"] == 8
    assert f"Saved model: {run_dir / 'model.keras'}" in result.stdout
    assert "tensorboard --logdir" in result.stdout and "python -m zoo upscale" in result.stdout
    assert "content loss in the GAN phase: discriminator_feature_matching" in result.stdout
    assert not list(run_dir.glob(".*tmp*"))


def test_tiny_run_tensorboard_has_scalars_images_hparams(tiny_run):
    run_dir, _ = tiny_run
    events = EventAccumulator(str(run_dir / "logs"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    for tag in ("train/pixel_loss", "train/g_loss", "train/d_loss", "learning_rate/g_optimizer",
                "learning_rate/d_optimizer", "epoch/val_psnr_y", "epoch/val_ssim_y",
                "epoch/val_bicubic_psnr_y", "epoch/val_bicubic_ssim_y", "epoch/g_loss",
                "epoch/val_pixel_loss"):
        assert tag in tags, (tag, sorted(tags))
    psnr = [tf.make_ndarray(e.tensor_proto) for e in events.Tensors("epoch/val_bicubic_psnr_y")]
    assert len(psnr) == 2 and all(20 < float(p) < 40 for p in psnr)
    images = [t for t in tags if t.startswith("val_images/")]
    assert len(images) == 2
    image = tf.make_ndarray(events.Tensors(images[0])[-1].tensor_proto)  # [width, height, png...]
    decoded = tf.io.decode_png(image[2]).numpy()
    assert decoded.shape[1] > 2 * decoded.shape[0]  # three panels side by side
    assert "_hparams_/session_start_info" in tags
    assert "weights/generator/head/kernel" in tags and "weights/discriminator/logits/bias" in tags


def test_saved_model_loads_and_upscales(tiny_run):
    run_dir, _ = tiny_run
    model = keras.saving.load_model(run_dir / "model.keras")
    out = model.upscale(np.zeros((10, 12, 3), np.uint8))
    assert out.shape == (40, 48, 3) and out.dtype == np.uint8
    # 2 epochs x 3 steps: 6 generator updates, 3 of them adversarial (pretrain_steps=3).
    assert int(model.g_optimizer.iterations.numpy()) == 6
    assert int(model.d_optimizer.iterations.numpy()) == 3


def test_list_and_help():
    result = train_cli("--list")
    assert result.returncode == 0 and "gan_superres" in result.stdout
    result = train_cli("gan_superres", "--help")
    assert result.returncode == 0 and "--batch-size" in result.stdout and "--strategy" in result.stdout


def _wait_for_checkpoint(proc: subprocess.Popen, run_dir: Path, timeout: float = 600) -> None:
    """Wait until the run has written its first checkpoint (its training loop is running, with
    the signal handlers in place). No wall-clock guess decides when to go on: on a busy machine
    start-up can take minutes, and a signal sent before the loop would hit TensorFlow's import.
    Fails, killing the run, if it exits first or if `timeout` passes."""
    deadline = time.monotonic() + timeout
    while not (run_dir / "checkpoints" / "checkpoint").is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"no checkpoint (exit code {proc.returncode}): {(out or '')[-1000:]}"
                                 f"{(err or '')[-3000:]}")
        time.sleep(0.05)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130)])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, signum, code):
    """Ctrl-C: the signal is turned into a flag the loop checks after every call, so it is never
    lost inside TensorFlow. (SIGTERM, as a scheduler sends before preemption, takes the same
    path: test_trainer.py sends it in-process; exit code 128 + the signal's number.)"""
    run_dir = tmp_path / "run"
    args = ["gan_superres", "--preset", "tiny", "--epochs", "50", "--steps-per-epoch", "10",
            "--checkpoint-every", "1000", "--run-dir", str(run_dir), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "train", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(proc, run_dir)  # the first epoch's checkpoint: training is under way
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:  # never leave a run behind, even when communicate timed out
            proc.kill()
            proc.communicate()
    assert proc.returncode == code, stderr[-2000:]
    name = signal.Signals(signum).name
    assert f"resume with the same command and --run-dir {run_dir}" in stderr
    assert "Traceback" not in stderr
    step = int(re.search(rf"stopped by {name} at step (\d+): checkpoint saved", stderr)[1])
    assert step < 500, "the run finished: the signal was lost"
    assert (run_dir / "checkpoints" / f"ckpt-{step}.index").is_file()


def _until(condition, seconds: float = 10) -> bool:
    """Wait for `condition()` (Python runs a signal handler in the main thread between bytecodes:
    soon after the signal, not necessarily before `os.kill` returns)."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_second_signal_acts_at_once():
    """The first SIGINT / SIGTERM only raises the flag the loop reads after a step; the signal
    then goes back to its previous handler, so a second one acts at once: Ctrl-C raises
    KeyboardInterrupt wherever the program is (here: in the middle of a 5 s wait).

    Python's own SIGINT handler is put in place first (what an earlier test in this worker left
    does not matter), and the cyclic garbage collector is off meanwhile: a handler that runs
    while a collected object's finalizer runs has its KeyboardInterrupt swallowed there."""
    from train.trainer import _StopSignals

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    seen = []
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's: Ctrl-C raises KeyboardInterrupt
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))  # stands for "exit now"
    gc.collect()
    gc.disable()
    try:
        with _StopSignals() as signals:
            os.kill(os.getpid(), signal.SIGTERM)
            assert _until(lambda: signals.received == signal.SIGTERM) and seen == []  # deferred
            os.kill(os.getpid(), signal.SIGTERM)
            assert _until(lambda: seen == [signal.SIGTERM])  # the second reached the previous handler
            os.kill(os.getpid(), signal.SIGINT)
            assert _until(lambda: signals.received == signal.SIGINT)  # deferred: no KeyboardInterrupt
            assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the next one is Python's
            with pytest.raises(KeyboardInterrupt):  # a deferred one would wait the 5 s out: DID NOT RAISE
                os.kill(os.getpid(), signal.SIGINT)
                _until(lambda: False, seconds=5)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the loop leaves the handlers it found
    finally:
        gc.enable()
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


# ----------------------------------------------------------------------------- resume by --run-dir alone

def train_main(*args) -> int:
    """`python -m train ARGS...` in this process (no TensorFlow start-up per call)."""
    from train.__main__ import _run

    return _run([str(a) for a in args])


def resumed_config(*args):
    """The (config, preset) that `python -m train ARGS...` would train, without training."""
    from train.__main__ import _config, _recipe_parser
    from train.recipes import get_recipe

    recipe = get_recipe(args[0])
    parsed = _recipe_parser(recipe).parse_args([str(a) for a in args[1:]])
    return _config(recipe, parsed, parsed.run_dir)


@pytest.fixture(scope="module")
def rbf_run(tmp_path_factory):
    """A 1-epoch tiny rbf run (the fastest recipe) started with an overridden field."""
    run_dir = tmp_path_factory.mktemp("runs") / "rbf"
    assert train_main("rbf", "--preset", "tiny", "--batch-size", "8", "--epochs", "1",
                      "--run-dir", run_dir, "--quiet") == 0
    return run_dir


def test_resume_by_run_dir_alone_keeps_the_preset_and_flags(rbf_run):
    saved = json.loads((rbf_run / "config.json").read_text())
    assert saved["preset"] == "tiny" and saved["config"]["batch_size"] == 8
    config, preset = resumed_config("rbf", "--run-dir", rbf_run)
    assert preset == "tiny" and config.batch_size == 8 and config.epochs == 1
    assert config.samples == 64 and config.centres == 8  # tiny's, not the default preset's
    # Flags that repeat the run's values are fine, --preset included.
    assert resumed_config("rbf", "--preset", "tiny", "--batch-size", "8", "--run-dir", rbf_run) == (config, "tiny")


def test_resume_with_more_epochs_trains_on(rbf_run, tmp_path):
    run_dir = tmp_path / "rbf"
    shutil.copytree(rbf_run, run_dir)
    assert train_main("rbf", "--run-dir", run_dir, "--epochs", "2", "--quiet") == 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["preset"] == "tiny" and saved["config"]["batch_size"] == 8 and saved["config"]["epochs"] == 2
    model = keras.saving.load_model(run_dir / "model.keras")
    assert int(model.optimizer.iterations.numpy()) == 10  # 2 epochs x 5 steps: 5 of them resumed


@pytest.mark.parametrize("args, fragments", [
    (["--batch-size", "16"], ["--batch-size 8 -> 16", "only --epochs may change"]),
    (["--preset", "tiny", "--centres", "4", "--batch-size", "8"], ["--centres 8 -> 4"]),
    (["--preset", "full"], ["--preset full", "a --preset tiny run"]),
])
def test_resume_with_a_disagreeing_flag_names_both_values(rbf_run, args, fragments):
    before = (rbf_run / "config.json").read_text()
    assert_user_error(run_cli(["train", "rbf", "--run-dir", rbf_run, *args]), str(rbf_run), *fragments)
    assert (rbf_run / "config.json").read_text() == before


def test_resume_a_run_saved_before_presets_were_recorded(tmp_path):
    """An older config.json names no preset: --run-dir alone resumes its settings; an explicit
    --preset must agree with them."""
    from train.recipes import get_recipe

    tiny = get_recipe("rbf").presets["tiny"]
    (tmp_path / "config.json").write_text(json.dumps(
        {"recipe": "rbf", "config": {**tiny.to_dict(), "batch_size": 8}, "plan": {}}))
    config, preset = resumed_config("rbf", "--run-dir", tmp_path)
    assert preset is None and config == dataclasses.replace(tiny, batch_size=8)
    assert resumed_config("rbf", "--preset", "tiny", "--batch-size", "8", "--run-dir", tmp_path)[1] == "tiny"
    with pytest.raises(ConfigError, match="--batch-size 8 -> 16"):
        resumed_config("rbf", "--preset", "tiny", "--run-dir", tmp_path)


def _help_default(text: str, option: str) -> str:
    """The `default: X` that `--help` shows for `option`."""
    options = " ".join(text.split("options:")[1].split())
    return re.search(rf"{option} [A-Z]+ .*?default: ([^)]*)\)", options)[1]


def test_help_shows_the_chosen_presets_defaults(capsys):
    with pytest.raises(SystemExit) as stop:
        train_main("gan_superres", "--help")
    text = capsys.readouterr().out
    assert stop.value.code == 0 and "those of --preset default" in text
    assert _help_default(text, "--minutes") == "10.0" and _help_default(text, "--batch-size") == "16"
    with pytest.raises(SystemExit):
        train_main("gan_superres", "--preset", "tiny", "--help")
    text = capsys.readouterr().out
    assert _help_default(text, "--minutes") == "0.0" and _help_default(text, "--batch-size") == "4"
    assert _help_default(text, "--filters") == "8"


def test_preset_help_and_resume_errors_do_not_import_tensorflow(rbf_run):
    code = ("import sys\nfrom train.__main__ import _run\n"
            "try:\n    code = _run(sys.argv[1:])\nexcept SystemExit as stop:\n    code = stop.code\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\nsys.exit(code)")
    for argv, expected in ((["gan_superres", "--preset", "tiny", "--help"], 0),
                           (["rbf", "--run-dir", str(rbf_run), "--batch-size", "16"], 2)):
        result = run_python(["-c", code, *argv], timeout=60)
        assert result.returncode == expected, (argv, result.stderr[-2000:])
