"""The recipe registry: every trainable NAME of `python -m train NAME`."""

from __future__ import annotations

import difflib

from train.recipes import gan_superres
from train.trainer import Recipe
from zoo.errors import UserError

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (gan_superres.RECIPE,)}


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; a UserError suggesting close names otherwise."""
    if name in RECIPES:
        return RECIPES[name]
    close = difflib.get_close_matches(name, RECIPES, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise UserError(f"unknown recipe {name!r}: {hint}`python -m train --list` shows them all")
