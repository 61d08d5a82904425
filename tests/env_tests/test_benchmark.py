"""The engine benchmark runs end to end (its figures are not checked: no timing asserts)."""

from support import run_module


def test_engine_benchmark_runs_and_prints_the_ratio():
    """`python -m benchmarks.engine` with small game counts exits 0 and reports a ratio."""
    done = run_module("benchmarks.engine", "--games", "200", "--loop-games", "20", timeout=120)
    assert done.returncode == 0, done.stderr
    assert any("ratio" in line for line in done.stdout.splitlines()), done.stdout


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
