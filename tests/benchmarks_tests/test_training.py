"""The training benchmark (`make bench`, second half) runs end to end (no timing asserts)."""

import pytest
from support import run_module


@pytest.mark.slow
def test_training_benchmark_runs_and_prints_the_ratios():
    """`python -m benchmarks.training` on a tiny budget prints one row per env and n_envs."""
    done = run_module(
        "benchmarks.training",
        "--timesteps",
        "2048",
        "--n-envs",
        "8",
        "--eval-games",
        "10",
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip().startswith("8 ")]
    assert [r.split()[1] for r in rows] == [
        "DummyVecEnv+checks",
        "KalahaVecEnv+checks",
        "KalahaVecEnv",
        "KalahaVecEnv+lookahead",
    ], done.stdout
    assert all("x" in r for r in rows)
