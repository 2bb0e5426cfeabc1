"""tf.distribute: 2 replicas equal 1 replica; two real worker processes train identically."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import tensorflow as tf
from helpers import assert_same_updates

SCRIPTS = Path(__file__).parent / "scripts"
ROOT = Path(__file__).parents[1]


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1",
            "PYTHONPATH": str(ROOT), **extra}


def test_two_replicas_match_one_replica():
    result = subprocess.run([sys.executable, str(SCRIPTS / "replicas.py")], capture_output=True,
                            text=True, timeout=300, env=_env())
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == [1, 2]
    assert_same_updates(report)  # every weight trained, and alike to 1% of its update
    assert report["max_weight_diff"] < 1e-5
    for one, two in zip(report["losses_1"], report["losses_2"]):  # logged losses not divided by 2
        assert one.keys() == two.keys()
        for name in one:
            assert np.isclose(one[name], two[name], rtol=1e-5), name
    assert set(report["losses_2"][1]) >= {"g_loss", "d_loss", "pixel_loss"}


def _free_ports(count):
    """Ports free a moment ago: another process may take one before a worker binds it, so
    `_run_two_workers` starts again on new ports when a worker could not bind."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


PORT_TAKEN = "Could not start gRPC server"  # what a worker prints when its port was taken


def _start_two_workers(script, args_for, temp_for, folder, timeout):
    """One try of `_run_two_workers`: (output, returncode) pairs; a returncode is None when the
    worker was still running at `timeout` (then killed)."""
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    procs, logs = [], [folder / f"worker{i}.log" for i in range(2)]
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            temp = {"TMPDIR": str(temp_for(index))} if temp_for else {}
            with open(logs[index], "w") as log:  # a file, not a pipe: nothing blocks on a full pipe
                procs.append(subprocess.Popen(
                    [sys.executable, str(SCRIPTS / script), *args_for(index)],
                    env=_env(TF_CONFIG=tf_config, **temp), stdout=log, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() and PORT_TAKEN in log.read_text() for p, log in zip(procs, logs)):
                break  # the other worker would wait for it until the deadline
            time.sleep(0.2)
    finally:
        for proc in procs:  # one dead worker can hang the other: never leave one running
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return [(log.read_text(), None if p.returncode == -signal.SIGKILL else p.returncode)
            for p, log in zip(procs, logs)]


def _run_two_workers(script, args_for, temp_for=None, timeout=240, tries=3):
    """Start `script` as worker 0 and 1 of a localhost cluster; return (output, returncode) pairs
    (returncode None: killed at `timeout`). `temp_for(index)`: the folder a worker's temporary
    files go to (TMPDIR). A worker whose port was taken meanwhile: again on other ports."""
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(tries):
            results = _start_two_workers(script, args_for, temp_for, Path(folder), timeout)
            if not any(code and PORT_TAKEN in output for output, code in results):
                return results
    return results


def test_two_workers_train_identically_and_like_one_process(tmp_path):
    run_dir = tmp_path / "run"
    temps = [tmp_path / f"tmp{i}" for i in range(2)]
    for temp in temps:
        temp.mkdir()
    results = _run_two_workers("worker.py", lambda i: [run_dir, tmp_path / f"w{i}.npz"], temps.__getitem__)
    for output, returncode in results:
        assert returncode == 0, output[-3000:]
    assert "2 replica(s) (CollectiveAllReduceStrategy)" in results[0][0], results[0][0][-2000:]  # = MultiWorkerMirrored
    first, second = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert len(first.files) > 10
    assert all(np.array_equal(first[k], second[k]) for k in first.files)
    # Only the chief (worker 0) wrote the run directory; the other removed its temporary folder.
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoints", "config.json", "logs", "metrics.csv",
                                                            "model.keras"]
    assert list(temps[1].iterdir()) == [], list(temps[1].iterdir())
    # The chief's checkpoints (every 2 steps, the last 2 kept) hold the trained state: every
    # final weight is one of the last checkpoint's tensors (EMA weights: the optimizer's).
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.index")) == ["ckpt-4.index", "ckpt-6.index"]
    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints" / "ckpt-6"))
    saved = [reader.get_tensor(name) for name in reader.get_variable_to_shape_map()]
    missing = [k for k in first.files if not any(np.array_equal(first[k], v) for v in saved)]
    assert not missing, missing
    # One process on the same global batch ends with the same weights.
    single = subprocess.run([sys.executable, str(SCRIPTS / "worker.py"), tmp_path / "single",
                             tmp_path / "single.npz", "one_device"], capture_output=True, text=True,
                            timeout=240, env=_env())
    assert single.returncode == 0, single.stdout[-2000:] + single.stderr[-2000:]
    one = np.load(tmp_path / "single.npz")
    worst = max(float(np.max(np.abs(first[k] - one[k]))) for k in first.files)
    assert worst < 1e-4, worst


def test_canary_keras_fit_still_fails_under_multi_worker():
    """The trainer runs its own loop because Keras 3.15.1's fit fails with two real workers
    (keras#20585, tensorflow#72388). If this fails, Keras changed underneath: the loop still
    works (the test above says so), but re-check PITFALLS.md and whether fit can be used."""
    results = _run_two_workers("fit_worker.py", lambda i: [])
    assert [code for _, code in results] == [3, 3], [out[-2000:] for out, _ in results]  # keras#20585 itself


def test_auto_strategy_picks_what_the_readme_says(monkeypatch):
    """`--strategy auto`: multi_worker when TF_CONFIG names several workers, mirrored over
    several GPUs, else one device (the first GPU, else the CPU). Devices and strategies are
    stand-ins here; the strategies record what they were made with."""
    import train.strategy as strategy

    for name in ("OneDeviceStrategy", "MirroredStrategy", "MultiWorkerMirroredStrategy"):
        monkeypatch.setattr(tf.distribute, name, type(name, (), {"__init__": lambda self, *a: setattr(self, "args", a)}))
    gpus = []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: list(gpus) if kind == "GPU" else [])
    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: [
        SimpleNamespace(name=f"/device:{kind}:{i}") for i in range(len(gpus) if kind == "GPU" else 1)])

    def auto(cluster=None, n_gpus=0):
        gpus[:] = [f"GPU:{i}" for i in range(n_gpus)]
        monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}
                                                   if cluster else {}))
        made = strategy.make_strategy("auto")
        return type(made).__name__, made.args

    assert auto() == ("OneDeviceStrategy", ("/cpu:0",))
    assert auto(n_gpus=1) == ("OneDeviceStrategy", ("/gpu:0",))
    assert auto(n_gpus=2) == ("MirroredStrategy", (["/device:GPU:0", "/device:GPU:1"],))
    assert auto({"worker": ["a:1", "b:2"]}) == ("MultiWorkerMirroredStrategy", ())
    assert auto({"worker": ["a:1", "b:2"]}, n_gpus=2)[0] == "MultiWorkerMirroredStrategy"
    assert auto({"chief": ["a:1"], "worker": ["b:2"]})[0] == "MultiWorkerMirroredStrategy"
    assert auto({"worker": ["a:1"]}, n_gpus=2)[0] == "MirroredStrategy"  # one worker: not a cluster
