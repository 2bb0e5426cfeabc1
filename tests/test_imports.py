"""The dependency rules of DESIGN.md: nothing in zoo/ imports train/; inside zoo/, only zoo/cli/
imports zoo.cli; a recipe never imports another recipe (what recipes share lives in
train/recipes/_*.py or in zoo/). Every import is checked, those inside functions too."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from helpers import ROOT


def module_name(path: Path, root: Path) -> str:
    """`zoo/explain/embed.py` -> `zoo.explain.embed`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> Iterator[tuple[int, list[str]]]:
    """`(line, absolute names)` of every import statement, relative ones resolved; `from X
    import a` gives `X` and `X.a` (a may be a module)."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            yield node.lineno, [base] + [f"{base}.{alias.name}" for alias in node.names]


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def recipe_of(name: str, root: Path) -> str | None:
    """The recipe module `name` is or lies in (`train.recipes.NAME`, a file not starting with
    `_`), else None: the package itself, its helpers and its attributes (`Recipe`) are not."""
    first = name.removeprefix("train.recipes.").split(".")[0] if under(name, "train.recipes") else ""
    if not first or first.startswith("_") or not (root / "train" / "recipes" / f"{first}.py").is_file():
        return None
    return f"train.recipes.{first}"


def problem(module: str, name: str, root: Path) -> str | None:
    """Why `module` may not import `name`; None when it may."""
    if under(module, "zoo") and under(name, "train"):
        return "the library never imports the trainer"
    if under(module, "zoo") and not under(module, "zoo.cli") and under(name, "zoo.cli"):
        return "only zoo/cli/ imports zoo.cli"
    recipe = recipe_of(module, root)
    if recipe and recipe_of(name, root) not in (None, recipe):
        return "a recipe never imports another recipe: share code through train/recipes/_*.py or zoo/"
    return None


def broken_rules(path: Path, root: Path = ROOT) -> list[str]:
    """`FILE:LINE imports NAME (why)`, once per import statement that breaks a rule."""
    module, found = module_name(path, root), []
    for line, names in imports(path, root):
        bad = [(name, why) for name in names if (why := problem(module, name, root))]
        if bad:
            found.append(f"{path.relative_to(root)}:{line} imports {bad[0][0]} ({bad[0][1]})")
    return sorted(found, key=lambda text: int(text.split(" ")[0].rpartition(":")[2]))


def checked_files(root: Path = ROOT) -> list[Path]:
    return sorted([*(root / "zoo").rglob("*.py"), *(root / "train" / "recipes").glob("*.py")])


def test_dependencies_point_one_way():
    files = checked_files()
    assert len(files) > 20 and ROOT / "train" / "recipes" / "lstm_classifier.py" in files
    problems = [found for path in files for found in broken_rules(path)]
    assert not problems, "\n".join(problems)


def test_the_checker_finds_every_form_of_a_bad_import(tmp_path):
    """Each forbidden import is named with its file and line; the allowed ones are not."""
    for name in ("zoo/explain/bad.py", "zoo/cli/fine.py", "train/recipes/one.py", "train/recipes/two.py",
                 "train/recipes/_text.py", "train/recipes/__init__.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    library = tmp_path / "zoo" / "explain" / "bad.py"
    library.write_text("import train.callbacks\nfrom train import trainer\nfrom zoo.cli.common import say\n"
                       "def f():\n    from ..cli import common\n    import zoo.cli\nfrom zoo import cli\n"
                       "from zoo.data import text\nfrom . import render\nimport zoo\n")
    assert [found.split(" ")[0] for found in broken_rules(library, tmp_path)] == [
        f"zoo/explain/bad.py:{line}" for line in (1, 2, 3, 5, 6, 7)]
    cli = tmp_path / "zoo" / "cli" / "fine.py"
    cli.write_text("from zoo.cli.common import say\nfrom . import common\nimport zoo.cli\n")
    assert broken_rules(cli, tmp_path) == []
    recipe = tmp_path / "train" / "recipes" / "one.py"
    recipe.write_text("from train.recipes import Recipe\nfrom train.recipes._text import TextConfig\n"
                      "from . import _text\nfrom train.recipes.one import x\ndef build():\n"
                      "    from train.recipes.two import Config\n    from . import two\n"
                      "    import train.recipes.two\n    from train.recipes import one, two\n")
    found = broken_rules(recipe, tmp_path)
    assert [f.split(" ")[0] for f in found] == [f"train/recipes/one.py:{line}" for line in (6, 7, 8, 9)]
    assert "imports train.recipes.two (a recipe never imports another recipe" in found[0]
    assert broken_rules(tmp_path / "train" / "recipes" / "_text.py", tmp_path) == []
