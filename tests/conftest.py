"""Shared fixtures: a real PostgreSQL database per test, a private runs folder, the CLI.

Every PostgreSQL test gets its own freshly created database (dropped afterwards),
so test runs never collide, in CI or beside a developer's running study.
Set ``KALAHA_TEST_PG`` to point the tests at another server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

PG_BASE = os.environ.get("KALAHA_TEST_PG", "postgresql+psycopg2://postgres@127.0.0.1:5432")


def _admin():
    dsn = PG_BASE.replace("postgresql+psycopg2://", "postgresql://") + "/postgres"
    conn = psycopg2.connect(dsn, connect_timeout=5)
    conn.autocommit = True
    return conn


def create_database() -> tuple[str, str]:
    """A new empty database; returns (name, SQLAlchemy URL)."""
    name = f"kalaha_test_{os.getpid()}_{secrets.token_hex(4)}"
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    finally:
        conn.close()
    return name, f"{PG_BASE}/{name}"


def drop_database(name: str) -> None:
    conn = _admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    finally:
        conn.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (the real server, never a stand-in)."""
    name, url = create_database()
    try:
        yield url
    finally:
        drop_database(name)


@pytest.fixture
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private runs folder (SQLite file, artifacts, TensorBoard logs) for this test."""
    path = tmp_path / "runs"
    monkeypatch.setenv("KALAHA_RUNS", str(path))
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    return path
