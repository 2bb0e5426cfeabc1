"""Both command lines start without TensorFlow's C++ log on stderr (zoo/quiet.py), unless asked.

Subprocess runs with the user's environment minus TF_CPP_MIN_LOG_LEVEL (importing zoo in this
process sets it), so each run decides its level as a user's would. About 40 s on two cores.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOISE = re.compile(r"^([IWE]0000 |WARNING: All log messages before absl::InitializeLog)", re.M)
FAKE_TF_LOG = "I0000 00:00:1796302198.926634   31966 port.cc:153] oneDNN custom operations are on.\n"


def run(args: list[str], env: dict | None = None, pythonpath: list[Path] = (),
        timeout: float = 180) -> subprocess.CompletedProcess:
    """`python ARGS...` in the repository, with no TF_CPP_MIN_LOG_LEVEL unless `env` gives one."""
    full_env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    full_env.update(CUDA_VISIBLE_DEVICES="-1", PYTHONPATH=os.pathsep.join(map(str, [*pythonpath, ROOT])),
                    **(env or {}))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=ROOT)


def test_zoo_help_prints_no_tensorflow_noise():
    result = run(["-m", "zoo", "upscale", "--help"])
    assert result.returncode == 0, result.stderr
    assert "usage: python -m zoo upscale" in result.stdout
    assert not NOISE.search(result.stderr), result.stderr


def test_tiny_training_run_prints_no_tensorflow_noise(tmp_path):
    """Also no later C++ lines: cuInit at device start, grappler's `remapper failed`, oneDNN."""
    result = run(["-m", "train", "gan_superres", "--preset", "tiny", "--run-dir", tmp_path / "run",
                  "--quiet"])
    assert result.returncode == 0, result.stderr
    assert not NOISE.search(result.stderr), result.stderr
    assert "remapper failed" not in result.stderr and "cuInit" not in result.stderr
    assert (tmp_path / "run" / "model.keras").is_file()


@pytest.mark.parametrize("flag, env", [("--verbose", {}), (None, {"TF_CPP_MIN_LOG_LEVEL": "0"})],
                         ids=["verbose", "user-level-0"])
def test_the_noise_is_shown_when_asked_for(flag, env):
    result = run(["-m", "zoo", "upscale", "--help", *([flag] if flag else [])], env=env)
    assert result.returncode == 0, result.stderr
    # TensorFlow 2.21 on CPU prints these at import (measured): they come through untouched.
    assert "absl::InitializeLog" in result.stderr, result.stderr
    assert re.search(r"^I0000 ", result.stderr, re.M), result.stderr


def test_python_warnings_after_start_up_reach_stderr():
    code = "import warnings, zoo; warnings.warn('after start-up'); raise SystemExit('a real failure')"
    result = run(["-c", code], env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 1
    assert "UserWarning: after start-up" in result.stderr and "a real failure" in result.stderr
    assert not NOISE.search(result.stderr), result.stderr


def _fake_tensorflow(tmp_path: Path, tail: str) -> Path:
    """A `tensorflow` package that writes a C++-style log line and a plain line to fd 2, then `tail`."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(textwrap.dedent(f"""\
        import os, warnings
        os.write(2, {FAKE_TF_LOG.encode()!r})
        os.write(2, b"libfake.so: cannot open shared object file\\n")
        warnings.warn("a warning while importing")
        {tail}
        """))
    return tmp_path


def test_a_failed_import_shows_everything_it_printed(tmp_path):
    fake = _fake_tensorflow(tmp_path, "raise ImportError('fake tensorflow is broken')")
    result = run(["-m", "zoo", "upscale", "--help"], pythonpath=[fake])
    assert result.returncode == 1
    for shown in (FAKE_TF_LOG, "libfake.so: cannot open", "a warning while importing", "Traceback",
                  "ImportError: fake tensorflow is broken"):
        assert shown in result.stderr, (shown, result.stderr)


def test_only_log_lines_below_the_level_are_held_back(tmp_path):
    """zoo/quiet.py on its own (no zoo package, no real TensorFlow) over a fake that imports."""
    fake = _fake_tensorflow(tmp_path, "print('imported', flush=True)")
    code = ("import importlib.util as u; spec = u.spec_from_file_location('quiet', 'zoo/quiet.py'); "
            "quiet = u.module_from_spec(spec); spec.loader.exec_module(quiet); quiet.import_tensorflow()")
    for level, log_shown in (("1", False), ("0", True)):
        result = run(["-c", code], env={"TF_CPP_MIN_LOG_LEVEL": level}, pythonpath=[fake])
        assert result.returncode == 0 and result.stdout == "imported\n", result.stderr
        assert "libfake.so: cannot open" in result.stderr and "a warning while importing" in result.stderr
        assert (FAKE_TF_LOG in result.stderr) == log_shown, (level, result.stderr)
