"""Print the project's dependencies, one requirement per line, from pyproject.toml alone.

The image build (``docker/pip-install.sh``) and ``make wheelhouse`` both read the list
here, so a dependency added to pyproject.toml reaches the image and the wheelhouse
without a second list to keep in step. Standard library only: it runs in the bare
base image before anything is installed.

    python docker/requirements.py [pyproject.toml]
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path) -> list[str]:
    """``[project] dependencies`` of ``pyproject`` (extras such as ``dev`` are not for the image)."""
    with pyproject.open("rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "pyproject.toml")
    print("\n".join(requirements(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
