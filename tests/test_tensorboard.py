"""TensorBoard served for real: a tiny run's scalars, images and hparams through the HTTP data API."""

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import tensorflow as tf
from helpers import run_here
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def _get(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def _poll(url: str, ready, timeout: float = 120, body: dict | None = None, log: Path | None = None):
    """GET (or POST `body`) until `ready(answer)`; the server loads event files in the background.
    On failure the message ends with the server's output (`log`)."""
    deadline, answer = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            answer = _get(url, body)
            if ready(answer):
                return answer
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never became ready; last answer: {answer}{_output(log)}")


def _output(log: Path | None) -> str:
    return f"\nTensorBoard's output:\n{log.read_text()[-3000:]}" if log else ""


def _start(runs: Path, log: Path, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """TensorBoard on a port the OS picks (`--port 0`: nothing can take it between choosing and
    binding); its output goes to `log`, where it names its address."""
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(runs),
                                    "--host", "127.0.0.1", "--port", "0", "--reload_interval", "1"],
                                   stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        address = re.search(r"TensorBoard \S+ at (http://127\.0\.0\.1:\d+)/? \(Press CTRL\+C", log.read_text())
        if address:
            return process, address[1]
        time.sleep(0.2)
    process.kill()
    process.wait()
    raise AssertionError(f"TensorBoard did not start (exit code {process.returncode}){_output(log)}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = run_here(["train", "gan_superres", "--preset", "tiny", "--run-dir", runs / "tiny", "--quiet"])
    assert result.returncode == 0, result.stderr[-3000:]
    log = tmp_path_factory.mktemp("tensorboard") / "output.txt"
    process, url = _start(runs, log)
    try:
        yield SimpleNamespace(url=url, log=log, logs=runs / "tiny" / "logs")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _logged(logs: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a scalar as the event files hold it, read without the server."""
    events = EventAccumulator(str(logs), size_guidance={"tensors": 0})
    events.Reload()
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]


def test_runs_scalars_images_and_hparams_are_served(server):
    url, log = server.url, server.log
    runs = _poll(f"{url}/data/runs", lambda r: "tiny/logs" in r, log=log)
    assert "tiny/logs" in runs
    tags = _poll(f"{url}/data/plugin/scalars/tags", lambda t: "epoch/val_psnr_y" in t.get("tiny/logs", {}), log=log)
    assert {"train/pixel_loss", "epoch/val_psnr_y", "epoch/val_bicubic_psnr_y",
            "learning_rate/g_optimizer"} <= set(tags["tiny/logs"]), _output(log)
    served = {}
    for tag in ("epoch/val_psnr_y", "epoch/val_bicubic_psnr_y"):
        points = _poll(f"{url}/data/plugin/scalars/scalars?run=tiny/logs&tag={tag}", lambda p: len(p) >= 2,
                       log=log)  # (wall time, step, dB) of both epochs
        served[tag] = [(step, value) for _, step, value in points]
        logged = _logged(server.logs, tag)
        assert [s for s, _ in served[tag]] == [s for s, _ in logged], (tag, served[tag], logged, _output(log))
        assert [v for _, v in served[tag]] == pytest.approx([v for _, v in logged], rel=1e-6), (tag, logged)
    # The values are the run's: after 6 steps the generator (bicubic plus a learned residual)
    # is within 3 dB of bicubic (measured 29.73 and 29.81 dB against 30.99); a wrong value
    # range, crop or scale would put it 10 dB or more away.
    psnr, bicubic = ([v for _, v in served[tag]] for tag in ("epoch/val_psnr_y", "epoch/val_bicubic_psnr_y"))
    assert [s for s, _ in served["epoch/val_psnr_y"]] == [3, 6] and 20 < bicubic[0] < 40, served
    assert all(abs(p - b) < 3 for p, b in zip(psnr, bicubic)), served
    images = _poll(f"{url}/data/plugin/images/tags", lambda t: t.get("tiny/logs"), log=log)
    assert any(tag.startswith("val_images/") for tag in images["tiny/logs"]), images
    experiment = _poll(f"{url}/data/plugin/hparams/experiment", lambda e: e.get("hparamInfos"),
                       body={"experimentName": ""}, log=log)
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"scale", "batch_size", "recipe", "replicas"} <= names, names
