"""Helpers the tests import (``from support import run_cli``): run the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cli_env(runs_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPTUNA_STORAGE", None)
    env.update({"KALAHA_RUNS": str(runs_path), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def run_module(
    module: str,
    *args: str,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    input: str | None = None,
):
    """Run ``python -m MODULE ARGS`` from the repo root; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli(
    *args: str, runs_path: Path, timeout: float = 300, input: str | None = None, **extra: str
):
    """Run ``python -m tuner ARGS`` from the repo root as a user would (``input``: its stdin)."""
    return run_module("tuner", *args, timeout=timeout, env=cli_env(runs_path, **extra), input=input)


def spawn_cli(*args: str, runs_path: Path, **extra: str) -> subprocess.Popen:
    """Start ``python -m tuner ARGS`` in the background (workers, dashboard)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args],
        cwd=REPO_ROOT,
        env=cli_env(runs_path, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
