"""`python -m train.bench` runs end to end and prints its table (numbers are not asserted),
every keras.io-style peer (tools/peers/keras_io_RECIPE.py) builds and trains, and the SOM
benchmark's timed run still fits the trainer it wraps."""

import dataclasses
import json

import keras
import pytest
from helpers import run_cli, run_python

# gan_superres's peer runs in the CLI test above; dcgan's is the vae's pattern with two optimizers.
PEERS = ["vae", "lstm_classifier", "transformer_classifier", "som_rbf_attention", "rbf"]


def test_bench_prints_a_table_with_the_keras_io_peer_on_the_tiny_preset():
    result = run_cli(["train.bench", "gan_superres", "--preset", "tiny", "--steps", "2",
                      "--precisions", "float32,mixed_bfloat16", "--keras-peer"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Peak GFLOP/s here: float32 matmul" in result.stdout
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| precision | steps/s | images/s | input wait | GFLOP/s")
    assert "keras.io-style peer steps/s | ratio |" in rows[0]
    # each precision as configured, then the zoo with the peer's settings (ZOO_AS_PEER: EMA off)
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| float32", "| float32, zoo with ema=0.0", "| mixed_bfloat16", "| mixed_bfloat16, zoo with ema=0.0"]
    assert all(row.rstrip().endswith("x |") for row in rows[1:]), result.stdout
    assert "GFLOP per step" in result.stdout


@pytest.mark.parametrize("recipe", PEERS)
def test_every_keras_io_peer_trains_two_steps_on_the_tiny_preset(recipe):
    from train.bench import keras_peer
    from train.recipes import get_recipe

    peer = keras_peer(recipe)
    config = get_recipe(recipe).presets["tiny"]
    model, data = peer.make_peer(config)
    history = model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    assert all(len(values) == 1 for values in history.history.values()), history.history
    for name, value in getattr(peer, "ZOO_AS_PEER", {}).items():  # real config fields, a real change
        assert getattr(get_recipe(recipe).presets["default"], name) != value, name  # the timed preset
        dataclasses.replace(config, **{name: value}).validate()
    keras.backend.clear_session()


def test_bench_threads_sets_the_pools_in_each_fresh_process_and_prints_a_table():
    result = run_python(["tools/bench_threads.py", "--recipes", "rbf", "--preset", "tiny", "--rounds", "1",
                         "--settings", "0:0,1:1"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| recipe | defaults steps/s | inter_op 1, intra_op 1 steps/s |"), result.stdout
    assert rows[1].startswith("| rbf | ") and rows[1].rstrip().endswith(") |"), result.stdout
    # what TensorFlow itself reports in each child process
    assert "inter_op / intra_op setting 0 / 0)" in result.stdout and "setting 1 / 1)" in result.stdout, result.stdout


def test_bench_som_times_every_phase_of_a_run():
    """tools/bench_som.py's in-process run (what `--end-to-end` repeats in fresh processes; MiniSom
    is not needed for it) wraps the trainer's functions: when those change, it must still run."""
    result = run_python(["tools/bench_som.py", "--one-end-to-end-run"], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    phases = json.loads(result.stdout.strip().splitlines()[-1])
    assert phases["total"] > 0 and phases["first_step"] > 0 and phases["steps"] > 0
    assert abs(sum(v for k, v in phases.items() if k not in ("imports", "total")) - phases["total"]) < 1e-6
