"""Import TensorFlow without its C++ start-up noise on stderr, unless the user asks for it.

PITFALL (TensorFlow 2.21, measured on CPU): `import tensorflow` prints C++ log lines on stderr
before TensorFlow reads TF_CPP_MIN_LOG_LEVEL, whatever that variable says:
    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 ... port.cc:153] oneDNN custom operations are on. ...
    I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
(each twice). Lines logged later do obey the variable; a tiny gan_superres run prints three, all
ERROR level and harmless: `E0000 ... failed call to cuInit` when the devices start (no GPU),
`E0000 ... oneDNN supports DT_UINT8 only on platforms with AVX-512` (an Eigen fallback) and
`E0000 ... meta_optimizer.cc] remapper failed: ... LeakyReluGrad` while grappler optimizes the
first traced GAN step (it skips that fusion pass; results are unchanged). So TensorFlow is
imported here with file descriptor 2 pointed at a temporary file; afterwards every captured
line is passed on except TensorFlow's log lines below the level, and a failed import passes
on everything (the real error, the log lines that may explain it). Python warnings, our
`WARNING:` lines and tracebacks written later go to stderr as before.
No op runs here: starting the devices at import would break
`tf.config.set_logical_device_configuration` and MultiWorkerMirroredStrategy, which must come
before the first op; level 3 keeps the cuInit line quiet instead.

The level (TF_CPP_MIN_LOG_LEVEL: 0 everything, 1 no INFO, 2 no WARNING, 3 no ERROR either) is
0 for `python -m zoo ...` or `python -m train ...` with `--verbose`; else the user's when set in
the environment; else 3 for those two commands and 2 for a library `import zoo`.
`python -m zoo` imports this package, and so TensorFlow, before its argument parser runs:
that is why `--verbose` is read from the command line here.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
COMMANDS = ("zoo", "zoo.__main__", "train", "train.__main__")  # python -m COMMAND: quiet unless --verbose
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# `E0000 00:00:1796302209.523291   32135 cuda_platform.cc:52] ...` and absl's pre-init warning.
_LOG_LINE = re.compile(r"^(?:([IWEF])\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "
                       r"|WARNING: All log messages before absl::InitializeLog\(\))")


def import_tensorflow():
    """Import TensorFlow once, holding back the C++ log lines below TF_CPP_MIN_LOG_LEVEL that it
    prints before reading that variable (see the module docstring).

    Returns:
        The `tensorflow` module.
    """
    if "tensorflow" in sys.modules:  # imported already: its start-up lines are out
        return sys.modules["tensorflow"]
    level = log_level()
    with contextlib.nullcontext() if level == 0 else _held_stderr(level):
        import tensorflow
    return tensorflow


def log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow will read it: 0 for a command line's --verbose, else the
    user's, else the default (3 for `python -m zoo|train`, 2 for a library import), which is set."""
    command, args = _python_m()
    if command in COMMANDS and _verbose(args):
        os.environ[LEVEL_VARIABLE] = "0"
    value = os.environ.setdefault(LEVEL_VARIABLE, "3" if command in COMMANDS else "2")
    try:
        return int(value)
    except ValueError:
        return 0  # TensorFlow reads a bad value as 0: show everything


def _verbose(args: list[str]) -> bool:
    """Whether the flags (before a `--`) hold --verbose, or an abbreviation argparse accepts."""
    args = args[:args.index("--")] if "--" in args else args
    return any(len(arg) >= 6 and "--verbose".startswith(arg) for arg in args)


def _python_m() -> tuple[str, list[str]]:
    """(MODULE, its arguments) when this process is `python [options] -m MODULE ...`; else ("", [])."""
    argv = list(getattr(sys, "orig_argv", []))[1:]
    while argv and argv[0].startswith("-") and not argv[0].startswith(("-m", "-c")) and argv[0] != "-":
        option = argv.pop(0)
        if option in ("-X", "-W", "--check-hash-based-pycs") and argv:
            argv.pop(0)  # the option's value
    if argv and argv[0] == "-m" and len(argv) > 1:
        return argv[1], argv[2:]
    if argv and argv[0].startswith("-m") and argv[0] != "-m":
        return argv[0][2:], argv[1:]
    return "", []


@contextlib.contextmanager
def _held_stderr(level: int) -> Iterator[None]:
    """Point fd 2 at a temporary file; then pass on what it caught: all of it if the block
    raised, else all but TensorFlow's log lines below `level`."""
    _flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            caught = held.read().decode(errors="replace")
            kept = caught if failed else _without_log_lines(caught, level)
            if kept and sys.stderr is not None:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _without_log_lines(text: str, level: int) -> str:
    """`text` without TensorFlow's (absl's) log lines of a severity below `level`."""
    def quiet(line: str) -> bool:
        match = _LOG_LINE.match(line)
        return bool(match) and _SEVERITY[match[1] or "W"] < level
    return "".join(line for line in text.splitlines(keepends=True) if not quiet(line))


def _flush() -> None:
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
