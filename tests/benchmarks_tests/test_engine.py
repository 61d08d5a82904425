"""The engine benchmark runs end to end (its figures are not checked: no timing asserts)."""

from support import run_module


def test_engine_benchmark_runs_and_prints_the_ratio():
    """`python -m benchmarks.engine` with small game counts exits 0 and reports a ratio."""
    done = run_module("benchmarks.engine", "--games", "200", "--loop-games", "20", timeout=120)
    assert done.returncode == 0, done.stderr
    assert any("ratio" in line for line in done.stdout.splitlines()), done.stdout


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
