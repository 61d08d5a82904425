"""Shared fixtures: a real PostgreSQL database per test, a private runs folder, the CLI.

Every PostgreSQL test gets its own freshly created database (dropped afterwards),
so test runs never collide, in CI or beside a developer's running study.
Set ``KALAHA_TEST_PG`` to point the tests at another server.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from psycopg2 import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def cli_env(runs_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPTUNA_STORAGE", None)
    env.update({"KALAHA_RUNS": str(runs_path), "PYTHONUNBUFFERED": "1"}, **extra)
    return env


def run_cli(*args: str, runs_path: Path, timeout: float = 300, **extra: str):
    """Run ``python -m tuner ARGS`` from the repo root as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args],
        cwd=REPO_ROOT,
        env=cli_env(runs_path, **extra),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn_cli(*args: str, runs_path: Path, **extra: str) -> subprocess.Popen:
    """Start ``python -m tuner ARGS`` in the background (workers, dashboard)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tuner", *args],
        cwd=REPO_ROOT,
        env=cli_env(runs_path, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
