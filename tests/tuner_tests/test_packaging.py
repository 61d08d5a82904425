"""The distribution: what an install puts where, and that it does so quietly.

Both builds run setuptools' own PEP 517 hooks (what pip calls) on a copy of the project's
packaging inputs, so nothing is written into the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import REPO_ROOT

BUILD = (
    "import sys, warnings; warnings.simplefilter('always')\n"
    "from setuptools import build_meta\n"
    "print(getattr(build_meta, sys.argv[1])(sys.argv[2]))\n"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, root / name)
    for package in ("env", "tuner"):
        shutil.copytree(
            REPO_ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    (root / "tests").mkdir()  # a folder that is not a package of the distribution
    (root / "tests" / "stray.py").write_text("")
    return root


def build(project: Path, hook: str, out: Path) -> tuple[zipfile.ZipFile, str]:
    out.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", BUILD, hook, str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    wheel = out / run.stdout.strip().splitlines()[-1]
    return zipfile.ZipFile(wheel), run.stdout + run.stderr


def test_an_editable_install_prints_no_setuptools_warning(project, tmp_path):
    """setuptools' "Editable installation ... be careful with folders" block is gone."""
    wheel, output = build(project, "build_editable", tmp_path / "editable")
    assert "Editable installation" not in output and "Warning" not in output, output
    (pth,) = [n for n in wheel.namelist() if n.endswith(".pth")]
    assert wheel.read(pth).decode().strip() == str(project)


def test_the_wheel_holds_the_two_packages_and_the_ladder(project, tmp_path):
    wheel, _ = build(project, "build_wheel", tmp_path / "wheel")
    tops = {n.split("/")[0] for n in wheel.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"env", "tuner"}
    assert "env/ladder.yaml" in wheel.namelist()
    assert "tuner/cli.py" in wheel.namelist()
