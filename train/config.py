"""The fields every recipe's config shares; a recipe subclasses `TrainConfig`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from zoo.errors import UserError

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def flag(name: str) -> str:
    """The command-line flag of a config field: `batch_size` -> `--batch-size`."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class TrainConfig:
    """Trainer-level settings; recipes add their own fields and override defaults."""

    epochs: int = 10  # passes of steps_per_epoch steps; validation, summaries and a checkpoint after each
    steps_per_epoch: int = 100  # training steps per epoch
    batch_size: int = 16  # global batch size, split evenly over replicas
    seed: int = 0  # seeds weights, data order and augmentation
    precision: str = "auto"  # auto (bf16 on bf16 matrix units) | float32 | mixed_bfloat16 | mixed_float16
    log_every: int = 10  # steps between scalar summaries (losses, learning rates)
    checkpoint_every: int = 200  # steps between checkpoints (one is also written after every epoch)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise UserError naming the flag when a value is out of range."""
        for name in ("epochs", "steps_per_epoch", "batch_size", "log_every", "checkpoint_every"):
            self.require(name, getattr(self, name) >= 1, "at least 1")
        self.require("precision", self.precision in PRECISIONS, "one of " + ", ".join(PRECISIONS))

    def require(self, name: str, ok: bool, what: str) -> None:
        """Raise a UserError saying that field `name` must be `what` unless `ok`."""
        if not ok:
            raise UserError(f"{flag(name)} must be {what}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch
