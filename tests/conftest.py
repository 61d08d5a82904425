"""Shared fixtures: a real PostgreSQL database per test, a private runs folder, the CLI.

Every PostgreSQL test gets its own freshly created database (dropped afterwards),
so test runs never collide, in CI or beside a developer's running study.
Set ``KALAHA_TEST_PG`` to point the tests at another server.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from pgadmin import create_database, drop_database, unique_name

PG_BASE = os.environ.get("KALAHA_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")
# The compose stack tests (marker ``docker``) build a 1.9 GB image and download a wheelhouse:
# they run only when asked for, by ``make compose-test`` (which sets this to ``require``).
DOCKER_OPT_IN = "KALAHA_DOCKER_TESTS"
# The fixtures that give a test a PostgreSQL server: its test must carry the marker.
PG_FIXTURES = {"pg_url", "private_pg"}
# Fixtures that tune a whole study through the CLI (minutes): their tests must be marked slow.
SLOW_FIXTURES = {"smoke"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the Docker tests unless asked for; refuse an unmarked PostgreSQL test.

    ``make test`` must never touch Docker, even on a host where a daemon answers: the
    ``docker`` tests are deselected unless ``$KALAHA_DOCKER_TESTS`` is set. And
    ``-m "not postgres"`` must leave out every test that needs the server; a test
    that takes a PostgreSQL fixture but forgot the marker would silently defeat it.
    Likewise ``make test-unit`` (``-m "not slow"``) must stay quick: a test that takes
    a fixture tuning a whole study must carry the ``slow`` marker.
    """
    if not os.environ.get(DOCKER_OPT_IN):
        docker = [item for item in items if item.get_closest_marker("docker") is not None]
        if docker:
            config.hook.pytest_deselected(items=docker)
            items[:] = [item for item in items if item.get_closest_marker("docker") is None]
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
    unmarked = [
        item.nodeid
        for item in items
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests use a fixture that tunes a whole study without @pytest.mark.slow: "
            + ", ".join(unmarked)
        )


@pytest.fixture(autouse=True)
def signal_handlers_restored() -> Iterator[None]:
    """Put SIGINT and SIGTERM back as they were after each test.

    A worker stopped by a signal installs "already stopping" handlers on its way out (a
    process that exits then); in the test process they would outlive the test and turn
    a later test's Ctrl-C into a log line, depending on the order the tests run in.
    """
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


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
