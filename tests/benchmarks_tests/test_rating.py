"""The rating benchmark (``make bench-rating``) runs end to end; its figures are not checked."""

from __future__ import annotations

import pytest
from support import run_module


@pytest.mark.slow
def test_the_rating_benchmark_runs_and_prints_the_share():
    """`python -m benchmarks.rating` with a tiny run exits 0 and prints the evaluation's
    share of a trial (figures only: no timing asserts)."""
    done = run_module(
        "benchmarks.rating",
        *("--steps", "2048", "--games", "8", "--levels", "greedy", "--budget", "100000:5"),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "evaluation share of a trial" in done.stdout, done.stdout
    assert "100,000 steps, 5 evals" in done.stdout, done.stdout
