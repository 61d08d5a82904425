"""Create and drop PostgreSQL databases on a server: a fresh database per test run.

Test-only (and `make bench-storage`): the tuner never creates or drops databases.

The test suite gives every PostgreSQL test its own database, and
``make bench-storage`` every measured run, so that runs never collide with each
other or with a study in progress on the same server. ``server`` is a
SQLAlchemy URL without a database (``postgresql+psycopg2://user@host:5432``);
the statements run on its ``postgres`` maintenance database.
"""

from __future__ import annotations

import os
import secrets

import sqlalchemy
from sqlalchemy.dialects import postgresql


def unique_name(prefix: str) -> str:
    """``PREFIX_PID_RANDOM``: unique across processes and runs."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


def database_url(server: str, name: str) -> str:
    return f"{server.rstrip('/')}/{name}"


def _execute(server: str, *statements: tuple[str, dict[str, str]]) -> None:
    engine = sqlalchemy.create_engine(
        database_url(server, "postgres"),
        isolation_level="AUTOCOMMIT",  # CREATE/DROP DATABASE cannot run in a transaction
        poolclass=sqlalchemy.pool.NullPool,
        connect_args={"connect_timeout": 5},
    )
    try:
        with engine.connect() as conn:
            for text, params in statements:
                conn.execute(sqlalchemy.text(text), params)
    finally:
        engine.dispose()


def _quoted(name: str) -> str:
    return postgresql.dialect().identifier_preparer.quote_identifier(name)


def create_database(server: str, name: str) -> str:
    """Create database ``name``; its URL."""
    _execute(server, (f"CREATE DATABASE {_quoted(name)}", {}))
    return database_url(server, name)


def drop_database(server: str, name: str) -> None:
    """End the database's sessions (workers a test left behind), then drop it."""
    _execute(
        server,
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name",
            {"name": name},
        ),
        (f"DROP DATABASE IF EXISTS {_quoted(name)}", {}),
    )
