"""The embedded default data, shipped inside the `zoo` package (so wheel installs have it too)."""

from __future__ import annotations

from pathlib import Path

from zoo.errors import UserError

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def asset_path(name: str) -> Path:
    """The path of an embedded asset, e.g. `asset_path("sr/Set5")`.

    Raises:
        UserError: no such asset (a misspelt name, or a broken install).
    """
    path = ASSETS / name
    if not path.exists():
        known = sorted({f.parent.relative_to(ASSETS).as_posix() for f in ASSETS.rglob("*")
                        if f.is_file() and f.parent != ASSETS})  # the folders that hold data
        raise UserError(f"no embedded asset {name!r} in {ASSETS}: use one of {', '.join(known)}")
    return path


ASSET_PREFIX = "assets:"


def resolve_source(source: str) -> str:
    """`assets:NAME` -> the path of that embedded asset; any other source unchanged.

    Recipes name their defaults this way (e.g. `assets:sr/T91`) so that `config.json` stays
    the same wherever zoo is installed.
    """
    if source.startswith(ASSET_PREFIX):
        return str(asset_path(source.removeprefix(ASSET_PREFIX)))
    return source
