"""Helpers shared by the tests (DESIGN.md, "Tests"): a layer check, a CLI runner, a train-step check.

Import them as `from helpers import check_layer, run_cli` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- layers

def _expected_shape(layer: keras.layers.Layer, input_shape: tuple) -> tuple | None:
    try:
        return tuple(layer.compute_output_shape(input_shape))
    except NotImplementedError:
        return None


def check_layer(layer: keras.layers.Layer, input_shape: tuple, seed: int = 0, atol: float = 1e-6,
                input_data: np.ndarray | None = None) -> np.ndarray:
    """Run a layer through the checks every zoo layer must pass; returns its eager output.

    Checks: `build` on a fresh copy makes the same weights as a call; a symbolic call on
    `keras.Input` (fixed and unknown height/width for images) and an eager call give the shape
    `compute_output_shape` promises; `get_config` -> `from_config` -> `get_config` is the
    identity; a `.keras` round trip of the layer inside a `keras.Model` (safe mode on) loads the
    same class and gives the same outputs.

    Args:
        layer: an unbuilt layer instance.
        input_shape: full input shape including the batch size, e.g. `(2, 8, 8, 16)`.
        seed: seed of the random input.
        atol: tolerance of the `.keras` round trip comparison.
        input_data: the input to use instead of standard normal float32 noise (e.g. token ids).
    """
    cls, config = type(layer), layer.get_config()
    x = np.random.default_rng(seed).normal(size=input_shape).astype("float32")
    x = x if input_data is None else np.asarray(input_data)
    assert x.shape == tuple(input_shape), (x.shape, input_shape)

    eager = keras.ops.convert_to_numpy(layer(x))
    expected = _expected_shape(layer, input_shape)
    assert expected is None or eager.shape == expected, (eager.shape, expected)

    built = cls.from_config(config)
    built.build(input_shape)
    assert built.built
    assert [w.shape for w in built.weights] == [w.shape for w in layer.weights]

    assert cls.from_config(config).get_config() == config, "get_config/from_config round trip"

    out = cls.from_config(config)(keras.Input(input_shape[1:], dtype=x.dtype))
    assert tuple(out.shape) == (None, *eager.shape[1:]), (out.shape, eager.shape)
    if len(input_shape) == 4:  # images: height and width unknown until called
        out = cls.from_config(config)(keras.Input((None, None, input_shape[-1]), dtype=x.dtype))
        assert len(out.shape) == eager.ndim and out.shape[-1] == eager.shape[-1], out.shape

    inputs = keras.Input(input_shape[1:], dtype=x.dtype)
    model = keras.Model(inputs, layer(inputs))
    before = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(before, eager, atol=atol)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "layer.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)  # safe_mode stays on
    assert isinstance(loaded.layers[-1], cls)
    assert loaded.layers[-1].get_config() == layer.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), before, atol=atol)
    return eager


# ----------------------------------------------------------------------------- command lines

# TensorFlow 2.21 prints these start-up lines on stderr whatever TF_CPP_MIN_LOG_LEVEL says.
_TF_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                       r"|[IWE]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\]"
                       r"|To enable the following instructions:)")


def run_python(argv: list[str], timeout: float = 120, env: dict | None = None,
               cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run `python ARGV...` with this interpreter, quiet TensorFlow and no GPU; capture text."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "-1",
                **(env or {})}
    return subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd or ROOT)


def run_cli(args: list[str], timeout: float = 120, env: dict | None = None,
            cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run `python -m ARGS...` (e.g. `run_cli(["zoo", "eval", ...])`) in a subprocess.

    The environment gets TF_CPP_MIN_LOG_LEVEL=2 and CUDA_VISIBLE_DEVICES=-1 on top of
    `os.environ` and `env`; the working directory defaults to the repository root.
    """
    return run_python(["-m", *args], timeout=timeout, env=env, cwd=cwd)


def run_here(args: list, env: dict | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """`run_cli(args)` in this process, through the commands' own entry points
    (`python -m train ...`: `train.__main__._run`; `python -m zoo ...`: `zoo.__main__.main`),
    without the 5-8 s of Python and TensorFlow start-up a subprocess pays. stdout and stderr
    are Python's streams (TensorFlow's C++ lines are not in them); `env` and `cwd` hold during
    the call; the Keras session and dtype policy are reset afterwards. Keep `run_cli` where the
    process is the point: signals, start-up output, strategies over logical devices, variables
    read at import (TFDS_DATA_DIR)."""
    import contextlib
    import io

    command, *argv = [str(a) for a in args]
    if command == "train":
        from train.__main__ import _run as entry
    elif command == "zoo":
        from zoo.__main__ import main as entry
    else:
        raise ValueError(f"run_here runs `train` or `zoo`, not {command!r}")
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    os.chdir(cwd or ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = entry(argv)
            except SystemExit as exit_:  # argparse and --help
                code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        keras.backend.clear_session()
        keras.mixed_precision.set_global_policy("float32")
    return subprocess.CompletedProcess(["python", "-m", *args], code, out.getvalue(), err.getvalue())


def stderr_lines(result: subprocess.CompletedProcess | str) -> list[str]:
    """The lines of a run's stderr without TensorFlow's start-up noise."""
    text = result if isinstance(result, str) else result.stderr
    return [line for line in text.splitlines() if line.strip() and not _TF_NOISE.match(line)]


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> str:
    """Check a CLI failure: exit `code`, no traceback, one `error:` line naming `fragments`."""
    lines = stderr_lines(result)
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------- train steps

def check_train_step(model: keras.Model, batches: list, steps: int = 2) -> list[dict[str, float]]:
    """Run `steps` eager `train_step`s (calling `begin_step` first when the model has it):
    every returned loss is finite and every trainable weight changed. Returns the logs."""
    before = [np.array(w) for w in model.trainable_weights]
    logs = []
    for step in range(steps):
        if hasattr(model, "begin_step"):
            model.begin_step(step)
        logs.append({k: float(v) for k, v in model.train_step(batches[step % len(batches)]).items()})
        assert logs[-1] and all(np.isfinite(v) for v in logs[-1].values()), logs[-1]
    unchanged = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(np.array(w), b)]
    assert not unchanged, f"weights not trained: {unchanged}"
    return logs


def run_main(argv: list, capsys) -> tuple[int, str, str]:
    """Run `python -m zoo ARGV...` in this process (no TensorFlow start-up per call):
    `(exit code, stdout, stderr)` as captured by pytest's `capsys`."""
    from zoo.__main__ import main

    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_main_user_error(argv: list, capsys, *fragments: str) -> None:
    """`run_main(argv)` fails as a user error: exit 2, nothing on stdout, one `error:` line on
    stderr naming every fragment."""
    code, out, err = run_main(argv, capsys)
    assert code == 2, (code, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def assert_same_updates(report: dict, rtol: float = 1e-2, moved: float = 1e-6) -> None:
    """Two runs that must train alike (1 and 2 replicas): per weight, from a script's report
    (`weight_changes`: how far run 1 moved it from the start, `weight_diffs`: run 1 vs run 2,
    both the largest absolute element): every weight moved by more than `moved` (16 float32
    ulps at 1.0, far above rounding) and the runs differ by less than `rtol` of that move.

    So the equality means something for each weight: a bug that changes any weight's update
    by a fraction (a loss divided by the replica count, a replica's gradient dropped) fails,
    however small that weight's update is next to an absolute tolerance.
    """
    changes, diffs = np.array(report["weight_changes"]), np.array(report["weight_diffs"])
    assert len(changes) == len(diffs) > 0
    still = np.flatnonzero(changes <= moved)
    assert not still.size, f"weights {still.tolist()} barely moved: {changes[still].tolist()}"
    worst = int(np.argmax(diffs / changes))
    assert diffs[worst] < rtol * changes[worst], (
        f"weight {worst}: the runs differ by {diffs[worst]:.3g}, {diffs[worst] / changes[worst]:.2%} "
        f"of its update {changes[worst]:.3g} (at most {rtol:.0%})")
