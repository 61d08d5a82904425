"""The training benchmark (`make bench`, second half) runs end to end (no timing asserts)."""

import pytest
from support import run_module


@pytest.mark.slow
def test_training_benchmark_runs_and_prints_the_ratios():
    """`python -m benchmarks.training` on a tiny budget prints the envs per n_envs, and
    the lookahead features for both settings with their ratios (8 envs for speed: the
    selfplay rollout is n_steps x n_envs); its threads table (3) is left out: its
    workers take a rollout each, with two threads on shared cores."""
    done = run_module(
        "benchmarks.training",
        *("--timesteps", "1024", "--n-envs", "8", "--eval-games", "10"),
        *("--features-envs", "8", "--tables", "1,2", "--repeat", "1"),
        timeout=540,
    )
    assert done.returncode == 0, done.stderr
    tables = done.stdout.split("\n2. ")
    assert len(tables) == 2, done.stdout
    rows = [line[8:42].strip() for line in tables[0].splitlines() if line.startswith("     8 ")]
    assert rows == ["DummyVecEnv+checks", "KalahaVecEnv+checks", "KalahaVecEnv"], done.stdout
    lines = tables[1].splitlines()
    features = [line[8:42].strip() for line in lines if line.startswith("     8 ")]
    assert features == [
        f"{name} {run}"
        for name in ("[128, 128]", "selfplay")
        for run in ("plain", "lookahead 2", "lookahead 2 before")
    ], done.stdout
    assert sum("of plain steps/s (target 0.75x)" in line for line in lines) == 2
    assert any("the steps/s of before (target 2.5x)" in line for line in lines)
    assert "3. torch threads" not in done.stdout
