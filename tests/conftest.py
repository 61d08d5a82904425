"""Shared fixtures: a real PostgreSQL database per test, a private runs folder, the CLI.

Every PostgreSQL test gets its own freshly created database (dropped afterwards),
so test runs never collide, in CI or beside a developer's running study.
Set ``KALAHA_TEST_PG`` to point the tests at another server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgadmin import create_database, drop_database, unique_name

PG_BASE = os.environ.get("KALAHA_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
# The fixtures that give a test a PostgreSQL server: its test must carry the marker.
PG_FIXTURES = {"pg_url", "private_pg"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to run a PostgreSQL test without the ``postgres`` marker.

    ``-m "not postgres"`` must leave out every test that needs the server; a test
    that takes a PostgreSQL fixture but forgot the marker would silently defeat it.
    """
    unmarked = [
        item.nodeid
        for item in items
        if PG_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("postgres") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests use PostgreSQL without @pytest.mark.postgres: " + ", ".join(unmarked)
        )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (the real server, never a stand-in)."""
    name = unique_name("kalaha_test")
    url = create_database(PG_BASE, name)
    try:
        yield url
    finally:
        drop_database(PG_BASE, name)


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private runs folder (SQLite file, artifacts, TensorBoard logs) for this test."""
    path = tmp_path / "runs"
    monkeypatch.setenv("KALAHA_RUNS", str(path))
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    return path


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Train on one CPU thread, as a worker does (one per core), restored afterwards.

    Also what makes two trainings of one configuration bit-identical: the same
    reductions in the same order.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
