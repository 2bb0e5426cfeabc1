"""`python -m train`: a tiny end-to-end run, TensorBoard contents, resume after SIGKILL."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import zoo  # noqa: F401

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


def test_resume_after_sigkill(tmp_path):
    run_dir = tmp_path / "run"
    args = ["gan_superres", "--preset", "tiny", "--epochs", "4", "--steps-per-epoch", "15",
            "--checkpoint-every", "4", "--run-dir", str(run_dir), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "train", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoints" / "checkpoint").is_file():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "model.keras").exists(), "the run finished before it could be killed"
    result = train_cli(*args[:-1])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout
    model = keras.saving.load_model(run_dir / "model.keras")
    assert int(model.g_optimizer.iterations.numpy()) == 60  # every planned step, none twice
    assert int(model.d_optimizer.iterations.numpy()) == 57


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, signum, code):
    """Ctrl-C, or SIGTERM as a scheduler sends before preemption: the signal is turned into a
    flag the loop checks after every step, so it is never lost inside TensorFlow."""
    run_dir = tmp_path / "run"
    args = ["gan_superres", "--preset", "tiny", "--epochs", "50", "--steps-per-epoch", "10",
            "--checkpoint-every", "1000", "--run-dir", str(run_dir), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "train", *args], env=ENV, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoints" / "checkpoint").is_file():
        time.sleep(0.05)  # the first epoch's checkpoint: training is under way
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr[-2000:]
    name = signal.Signals(signum).name
    assert f"resume with the same command and --run-dir {run_dir}" in stderr
    assert "Traceback" not in stderr
    step = int(re.search(rf"stopped by {name} at step (\d+): checkpoint saved", stderr)[1])
    assert step < 500, "the run finished: the signal was lost"
    assert (run_dir / "checkpoints" / f"ckpt-{step}.index").is_file()
