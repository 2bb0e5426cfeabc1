"""TensorBoard served for real: a tiny run's scalars, images and hparams through the HTTP data API."""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from helpers import run_cli


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _poll(url: str, ready, timeout: float = 120, body: dict | None = None):
    """GET (or POST `body`) until `ready(answer)`; the server loads event files in the background."""
    deadline, answer = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            answer = _get(url, body)
            if ready(answer):
                return answer
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never became ready; last answer: {answer}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli(["train", "gan_superres", "--preset", "tiny", "--run-dir", runs / "tiny", "--quiet"],
                     timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(runs),
                                "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_runs_scalars_images_and_hparams_are_served(server):
    runs = _poll(f"{server}/data/runs", lambda r: "tiny/logs" in r)
    assert "tiny/logs" in runs
    tags = _poll(f"{server}/data/plugin/scalars/tags", lambda t: "epoch/val_psnr_y" in t.get("tiny/logs", {}))
    assert {"train/pixel_loss", "epoch/val_psnr_y", "learning_rate/g_optimizer"} <= set(tags["tiny/logs"])
    points = _get(f"{server}/data/plugin/scalars/scalars?run=tiny/logs&tag=epoch/val_psnr_y")
    assert [p[1] for p in points] == [3, 6] and all(p[2] > 10 for p in points)  # (wall time, step, dB)
    images = _poll(f"{server}/data/plugin/images/tags", lambda t: t.get("tiny/logs"))
    assert any(tag.startswith("val_images/") for tag in images["tiny/logs"]), images
    experiment = _poll(f"{server}/data/plugin/hparams/experiment", lambda e: e.get("hparamInfos"),
                       body={"experimentName": ""})
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"scale", "batch_size", "recipe", "replicas"} <= names, names
