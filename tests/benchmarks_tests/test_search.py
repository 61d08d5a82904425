"""`make bench-search` runs end to end and prints its table (figures are not checked)."""

from __future__ import annotations

import re

import pytest
from support import run_module


@pytest.mark.slow
def test_search_benchmark_prints_a_row_per_search():
    done = run_module(
        "benchmarks.search", "--specs", "policy,ab:2,mcts:8", "--opponents", "greedy",
        "--games", "2", "--positions", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = re.findall(r"^\| selfplay \| (\S+) \|\s+[\d.]+ \| [\d.]+ \[[\d.]+, [\d.]+\] \|$",
                      done.stdout, re.M)  # fmt: skip
    assert rows == ["policy", "ab:2", "mcts:8"], done.stdout
