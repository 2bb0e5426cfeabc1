"""Terminal output of long commands: a one-line progress bar on stderr and result lines on stdout.

Used by the `python -m zoo` subcommands and by library functions that loop over user files
(e.g. `zoo.explain.image.explain_images`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def progress(items: Sequence[T], label: str, describe: Callable[[T], str] = str) -> Iterator[T]:
    """Yield `items`, drawing a one-line progress bar on stderr when stderr is a terminal.

    Args:
        items: what to loop over.
        label: shown before the bar.
        describe: names the current item after the bar (cut to 40 characters).

    Returns:
        An iterator over `items`.
    """
    show = sys.stderr.isatty() and len(items) > 0
    for i, item in enumerate(items):
        if show:
            bar = "#" * (20 * i // len(items))
            sys.stderr.write(f"\r{label} [{bar:<20}] {i}/{len(items)} {describe(item)[:40]:<40}")
            sys.stderr.flush()
        yield item
    if show:
        sys.stderr.write(f"\r{label} [{'#' * 20}] {len(items)}/{len(items)}{' ' * 41}\n")


def say(message: str) -> None:
    """Print a result line on stdout, first clearing a progress bar drawn on a terminal's stderr.

    Args:
        message: the line.
    """
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()
    print(message, flush=True)
