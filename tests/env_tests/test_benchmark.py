"""The engine benchmark runs end to end (its figures are not checked: no timing asserts)."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_engine_benchmark_runs_and_prints_the_ratio():
    """`python -m benchmarks.engine` with small game counts exits 0 and reports a ratio."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.engine", "--games", "200", "--loop-games", "20"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert any("ratio" in line for line in done.stdout.splitlines()), done.stdout
