"""What a training run reports as it goes: a progress line you can trust, and `metrics.csv`.

- `RecentMeans`: the values the progress line shows, means over the steps since the previous
  log step (or the start of the epoch), true on any number of replicas. A step's outputs
  reach the loop summed over replicas: exact for the metric contract's second kind (shares of
  a global-batch mean, see `train.trainer`), N times too large on N replicas for a tracker's
  result. So trackers are read from the model at log steps, as the trainer does: a Mean-style
  tracker (`keras.metrics.Mean`, accuracy and other `MeanMetricWrapper`s) by the change of its
  `total` and `count` since the previous log step (both summed over replicas on read), any
  other tracker as its result (its value over the epoch so far).
- `ProgressLine`: on a terminal, one bar redrawn in place (a line per epoch); anywhere else
  (a file, a pipe, a job log) one plain line per log step, with no carriage return, backspace
  or colour code: `step 120/1000  epoch 2/10  d_loss 0.693  g_loss 1.21  2.3 steps/s  eta 6m32s`.
- `MetricsFile`: `RUN/metrics.csv`, every scalar the trainer writes to TensorBoard, by the same
  name, in long form (`step,epoch,name,value`). One row per value rather than one column per
  name: validation values, callbacks' values and a GAN's adversarial losses appear after the
  first rows, and a wide CSV would need its header rewritten each time; a long CSV only grows,
  and `pandas.read_csv(path).pivot_table(index="step", columns="name", values="value")` makes
  the wide table. A resumed run first drops the rows after the step it resumes from (written
  after the last checkpoint of an attempt that stopped), so no step appears twice.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
import time
from pathlib import Path

import keras

from train.config import ConfigError

HEADER = ("step", "epoch", "name", "value")


def _float(value) -> float:
    """A Python float from a tensor, a (mirrored) variable, a NumPy or a Python number."""
    return float(value.numpy() if hasattr(value, "numpy") else value)


def mean_trackers(model: keras.Model) -> dict[str, keras.metrics.Mean]:
    """The model's Mean-style trackers by name, also those inside compiled metrics."""
    found = {}
    for metric in model.metrics:
        for inner in (metric, *getattr(metric, "metrics", ())):  # CompileMetrics holds a list
            if isinstance(inner, keras.metrics.Mean):
                found.setdefault(inner.name, inner)
    return found


class RecentMeans:
    """Means of a step's logged values over the steps since the previous `read`; make one at
    the start of each epoch, right after the trainer resets the model's trackers. Under
    multi_worker, reading a tracker is a collective op: every worker calls `read` at the same
    steps, not only the one that shows the values."""

    def __init__(self, model: keras.Model):
        self.model, self.sums, self.examples, self.tracked = model, {}, 0.0, {}

    def add(self, logs: dict[str, float], examples) -> None:
        """One step: `logs` summed over replicas (trackers' values are not used), `examples` in it."""
        examples = _float(examples)
        self.add_sums({name: value * examples for name, value in logs.items()}, examples)

    def add_sums(self, sums: dict, examples) -> None:
        """Several steps: each value's sum over them weighted by batch size, and their examples."""
        for name, total in sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + _float(total)
        self.examples += _float(examples)

    def read(self, logged: dict[str, float]) -> dict[str, float]:
        """The window's means of the names in `logged` (the trainer's true values at this log
        step: tracker results read across replicas); then start the next window."""
        means, trackers = mean_trackers(self.model), self.model.get_metrics_result()
        values = {}
        for name, value in logged.items():
            tracker = means.get(name)
            total, count = (_float(tracker.total), _float(tracker.count)) if tracker is not None else (0.0, 0.0)
            seen_total, seen_count = self.tracked.get(name, (0.0, 0.0))
            if count > seen_count:  # a Mean-style tracker updated in this window
                values[name] = (total - seen_total) / (count - seen_count)
                self.tracked[name] = (total, count)
            elif count > 0 or (name in trackers and tracker is None):  # a tracker not updated in
                values[name] = value  # this window, or another kind: its value over the epoch so far
            else:  # the metric contract's second kind: the mean weighted by batch size
                values[name] = self.sums.get(name, 0.0) / max(self.examples, 1.0)
        self.sums, self.examples = {}, 0.0
        return values


def epoch_of(step: int, steps_per_epoch: int) -> int:
    """The epoch (from 1) of a global step (from 1; the last step of epoch e is e * steps_per_epoch)."""
    return max(1, -(-step // steps_per_epoch))


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressLine:
    """The training progress on `stream` (default stdout): see the module docstring.

    Args:
        total_steps, steps_per_epoch, epochs: the plan.
        start: the step the run starts (or resumes) from.
        stream: where to write; a terminal gets the bar, anything else plain lines.
    """

    REDRAW_SECONDS = 0.1

    def __init__(self, total_steps: int, steps_per_epoch: int, epochs: int, start: int = 0, stream=None):
        self.total, self.per_epoch, self.epochs = total_steps, steps_per_epoch, epochs
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.values, self.rate, self.drawn = {}, None, 0.0
        self.mark = (start, time.monotonic())  # (step, time) of the previous log step

    def describe(self, step: int, speed_first: bool = False) -> str:
        """`step 120/1000  epoch 2/10  d_loss 0.693  2.3 steps/s  eta 6m32s` (the speed before
        the values with `speed_first`, so that a bar cut to a terminal's width keeps it)."""
        rate = self.live_rate(step)
        speed = [f"{rate:.3g} steps/s", f"eta {_duration((self.total - step) / rate)}"] if rate else []
        values = [f"{name} {value:.4g}" for name, value in self.values.items()]
        parts = [f"step {step}/{self.total}", f"epoch {epoch_of(step, self.per_epoch)}/{self.epochs}"]
        return "  ".join(parts + (speed + values if speed_first else values + speed))

    def live_rate(self, step: int) -> float | None:
        """Steps per second since the previous log step (the last known rate right at one)."""
        last_step, last_time = self.mark
        elapsed = time.monotonic() - last_time
        return (step - last_step) / elapsed if step > last_step and elapsed > 0 else self.rate

    def update(self, step: int, values: dict[str, float] | None = None) -> None:
        """After every step; `values` (the recent means) at log steps."""
        if values is not None:
            self.rate, self.mark, self.values = self.live_rate(step), (step, time.monotonic()), values
            if not self.tty:
                self.write(self.describe(step) + "\n")
        if self.tty and (values is not None or time.monotonic() - self.drawn >= self.REDRAW_SECONDS):
            self.draw(step)

    def draw(self, step: int) -> None:
        """Redraw the bar in place (terminal only), cut to the terminal's width."""
        width = shutil.get_terminal_size((100, 24)).columns - 1
        filled = 20 * step // max(self.total, 1)
        line = f"[{'=' * filled}{'.' * (20 - filled)}] " + self.describe(step, speed_first=True)
        self.write("\r" + line[:width] + "\x1b[K")
        self.drawn = time.monotonic()

    def epoch_end(self, step: int, epoch: int, logs: dict[str, float]) -> None:
        """End of epoch `epoch` (0-based): close the bar's line; print the validation values."""
        if self.tty:
            self.draw(step)
            self.write("\n")
        shown = {name: value for name, value in logs.items() if name.startswith("val_")}
        if shown:
            self.write(f"epoch {epoch + 1}/{self.epochs}  " + "  ".join(
                f"{name} {value:.4g}" for name, value in shown.items()) + "\n")

    def write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


class MetricsFile:
    """`metrics.csv` of a run (see the module docstring); opened at `start`, the step the run
    starts or resumes from."""

    def __init__(self, path: Path, start: int):
        self.path = Path(path)
        kept, changed = self.rows_until(start)
        if changed or not self.path.exists():
            self.rewrite(kept)

    def rows_until(self, start: int) -> tuple[list[list[str]], bool]:
        """(the rows with step <= start, whether the file held anything else: later rows, a
        line cut short, no header)."""
        if not self.path.exists():
            return [], False
        *lines, cut = self.path.read_text().split("\n")  # cut: "" unless the last line was cut short
        headed = lines[:1] == [",".join(HEADER)]
        body = lines[1:] if headed else lines
        kept = [row for row in csv.reader(body)
                if len(row) == len(HEADER) and row[0].isdigit() and int(row[0]) <= start]
        return kept, not headed or len(kept) != len(body) or cut != ""

    def rewrite(self, rows: list[list[str]]) -> None:
        """The header and `rows`, under a temporary name, then renamed into place."""
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows([HEADER, *rows])
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text(text.getvalue())
            os.replace(tmp, self.path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise self.error(error) from None

    def write(self, step: int, epoch: int, values: dict[str, float]) -> None:
        """Append one row per value (at once: a killed run keeps every row it logged)."""
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(
            [step, epoch, name, repr(_float(value))] for name, value in values.items())
        try:
            with self.path.open("a") as file:
                file.write(text.getvalue())
        except OSError as error:
            raise self.error(error) from None

    def error(self, error: OSError) -> ConfigError:
        return ConfigError(f"cannot write {self.path} ({error.strerror or error}): free some space or "
                           "choose a writable --run-dir; the last checkpoint is kept")
