"""`make bench-perfect-signal` runs end to end on a tiny budget and prints its table, the
correlations and the noise (figures are not checked: 4 checkpoints prove nothing)."""

from __future__ import annotations

import re

import pytest
from support import run_module


@pytest.mark.slow
def test_perfect_signal_benchmark_prints_rows_correlations_and_noise(tmp_path):
    done = run_module(
        "benchmarks.perfect_signal", "--configs", "A", "--seeds", "1,2", "--steps", "16384",
        "--every", "8192", "--games", "20", "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(
        r"^  A s([12]) +(\d+)  rating .* optimal [\d.]+  regret [\d.]+", done.stdout, re.M
    )
    assert rows == [("1", "8192"), ("1", "16384"), ("2", "8192"), ("2", "16384")], done.stdout
    for key in ("optimal", "regret", "blunders"):
        assert re.search(rf"^  {key} +all [+-]\d\.\d{{3}}", done.stdout, re.M), done.stdout
    for key in ("rating", "optimal", "regret"):
        assert re.search(rf"^  {key} +seed SD +[\d.]+", done.stdout, re.M), done.stdout
    again = run_module("benchmarks.perfect_signal", "--configs", "A", "--seeds", "1,2",
                       "--steps", "16384", "--every", "8192", "--games", "20",
                       "--out", str(tmp_path))  # fmt: skip
    assert "trained" not in again.stdout, "a second run reuses the checkpoints and results"
