"""The engine benchmark (`make bench`, first half) runs end to end (no timing asserts)."""

from support import run_module


def test_engine_benchmark_runs_and_prints_the_ratio():
    """`python -m benchmarks.engine` with small game counts exits 0 and reports a ratio."""
    done = run_module("benchmarks.engine", "--games", "200", "--loop-games", "20", timeout=120)
    assert done.returncode == 0, done.stderr
    assert any("ratio" in line for line in done.stdout.splitlines()), done.stdout
