"""Install anywhere: the wheel holds the embedded default data, and a wheel install trains
from another folder with no source tree around it."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from helpers import ROOT, run_python


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                             "--no-build-isolation", "-w", str(out), "-q"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    [path] = out.glob("zoo-*.whl")
    return path


def test_wheel_holds_the_default_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, count in (("T91", 91), ("Set5", 5)):
        assert len([n for n in names if n.startswith(f"zoo/assets/sr/{folder}/") and n.endswith(".png")]) == count
    assert "train/recipes/gan_superres.py" in names and "zoo/models/srgan.py" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_wheel_install_trains_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what `pip install zoo-*.whl` puts in site-packages
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PYTHONPATH": str(site)}
    where = run_python(["-c", "import zoo, train; print(zoo.__file__); print(train.__file__)"], env=env, cwd=work)
    assert where.returncode == 0 and all(line.startswith(str(site)) for line in where.stdout.split()), where
    result = run_python(["-m", "train", "gan_superres", "--preset", "tiny", "--run-dir", "run", "--quiet"],
                        timeout=300, env=env, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (work / "run" / "model.keras").is_file()
    assert '"data": "assets:sr/T91"' in (work / "run" / "config.json").read_text()
