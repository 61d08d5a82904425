"""Helpers the tests import (``from support import run_cli``): run the CLI as a user would."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent


def cli_env(runs_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: a private runs folder, and the CPU for training.

    ``KALAHA_DEVICE=cpu`` is ``--device cpu`` for every command: on a GPU host the
    default ``auto`` would train on the GPU, and the tests where the device is not
    the point would test something else. A test about devices passes ``--device``
    (which wins) or ``KALAHA_DEVICE`` itself.
    """
    env = dict(os.environ)
    env.pop("OPTUNA_STORAGE", None)
    env.update(
        {"KALAHA_RUNS": str(runs_path), "PYTHONUNBUFFERED": "1", "KALAHA_DEVICE": "cpu"}, **extra
    )
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


def wait_for_line(proc: subprocess.Popen, pattern: str, timeout: float) -> re.Match[str]:
    """Read ``proc``'s stdout until a line matches ``pattern``; fail if it exits or is slow.

    How a test learns the port of a server started with ``--port 0`` (the server binds
    a free port itself and prints it: no port found free and then taken by another).
    """
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        if line is None:
            raise AssertionError(f"exited with {proc.wait(timeout=10)} before {pattern!r}: {seen}")
        seen.append(line.rstrip())
        if m := re.search(pattern, line):
            return m
    raise AssertionError(f"no line matching {pattern!r} within {timeout:.0f}s: {seen}")


def write_study(path: Path, data: dict[str, Any]) -> Path:
    """``data`` as a study file at ``path`` (keys in their order, as a person writes them)."""
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit code 2, no traceback, and a last stderr line that says what is wrong."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last
    return last
