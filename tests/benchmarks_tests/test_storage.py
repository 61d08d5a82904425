"""`make bench-storage` runs end to end on every backend and prints its tables.

Its figures are not checked (no timing asserts): this guards the benchmark's
plumbing (child workers, the tuner's worker loop with a benchmark's progress hooks, the
connection count read from PostgreSQL) against changes elsewhere in the tuner.
"""

from __future__ import annotations

import re

import pytest
from support import run_module


@pytest.mark.postgres
def test_storage_benchmark_prints_every_backend_and_the_connections_per_worker():
    done = run_module("benchmarks.storage", "--trials", "6", "--workers", "1,2")
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for backend in ("sqlite", "journal", "postgresql"):
        for workers in (1, 2):
            assert re.search(rf"^{backend}\s+{workers}\s+[\d.]+", out, re.M), out
    # the worker-loop table: workers, ms/trial, p95, trials/s, connections held per worker
    loop = out.split("connections/worker", 1)[1]
    rows = re.findall(r"^\s+([12])\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+(?:-\d+)?)$", loop, re.M)
    assert [w for w, _ in rows] == ["1", "2"], out
    assert all(int(c.split("-")[0]) >= 1 for _, c in rows), out
