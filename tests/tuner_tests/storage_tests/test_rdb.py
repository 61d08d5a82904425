"""Storage URL -> Optuna storage (tuner/storage/rdb.py), against the real PostgreSQL.

The multi-process faults are in test_faults.py; here are the pieces they rest on:
engine settings per backend, a pool that survives its connections being killed, a
lost write retried, and storages that cannot be reached or opened as one clear line.
The lifecycle on top (orphaned and stale trials, late results) is tested in
trial_tests/test_lifecycle.py; which errors are retried, and how, in test_retry.py.
"""

from __future__ import annotations

import optuna
import psycopg2
import pytest
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy.engine import make_url
from support import assert_one_line_error, run_cli

from tuner.base.errors import UserError
from tuner.base.settings import Settings
from tuner.storage.rdb import (
    ResilientRDBStorage,
    application_name,
    engine_kwargs,
    make_storage,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


def admin(url: str):
    u = make_url(url)
    conn = psycopg2.connect(
        host=u.host, port=u.port or 5432, user=u.username, password=u.password, dbname="postgres"
    )
    conn.autocommit = True
    return conn


def test_engine_settings_per_backend(monkeypatch):
    monkeypatch.setenv("KALAHA_POOL_SIZE", "3")
    settings = Settings.from_env().storage
    pg = engine_kwargs("postgresql+psycopg2://u@h/db", settings)
    assert pg["pool_pre_ping"] is True and pg["pool_size"] == 3 and pg["max_overflow"] == 3
    assert pg["connect_args"]["application_name"] == application_name()
    assert application_name().startswith("kalaha-tuner ") and len(application_name()) <= 63
    assert engine_kwargs("sqlite:///x.db", settings) == {"connect_args": {"timeout": 60}}


# --- a real server ---------------------------------------------------------------------


@pytest.mark.postgres
def test_storage_survives_its_connections_being_killed(pg_url):
    storage = make_storage(pg_url)
    assert isinstance(storage, ResilientRDBStorage)
    study = optuna.create_study(study_name="killed", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    dbname = make_url(pg_url).database
    conn = admin(pg_url)
    try:
        with conn.cursor() as cur:  # what a server restart or a network cut does to a pool
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name = %s",
                (dbname, application_name()),
            )
            (killed,) = cur.fetchone()
    finally:
        conn.close()
    assert killed >= 1
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(storage.get_all_trials(study._study_id)) == 4


@pytest.mark.postgres
def test_a_suggest_that_loses_its_connection_is_retried(pg_url):
    """The first parameter of a trial is written through Optuna's cached storage; a
    connection lost at that moment is retried, not turned into a failed trial."""
    storage = make_storage(pg_url)
    study = optuna.create_study(study_name="suggest", storage=storage)
    trial = study.ask()
    dropped: list[str] = []

    @sqlalchemy.event.listens_for(storage.engine, "before_cursor_execute")
    def drop_once(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO trial_params" in statement and not dropped:
            dropped.append(statement)
            raise sqlalchemy.exc.OperationalError(
                statement, parameters, Exception("server closed the connection unexpectedly")
            )

    x = trial.suggest_float("x", 0.0, 1.0)
    assert dropped, "the fault was never injected"
    study.tell(trial, x)
    (done,) = storage.get_all_trials(study._study_id)
    assert done.params == {"x": x} and done.state == TrialState.COMPLETE


@pytest.mark.postgres  # psycopg2 connects, to a port where no server listens
def test_unreachable_storage_names_host_and_port(monkeypatch):
    monkeypatch.setenv("KALAHA_CONNECT_ATTEMPTS", "2")
    with pytest.raises(UserError, match=r"127\.0\.0\.1:1 .*after 2 attempts"):
        make_storage(
            "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere", Settings.from_env().storage
        )
    with pytest.raises(UserError, match="not a valid SQLAlchemy URL"):
        make_storage("no url at all")


# --- hardening (issue 12): permanent storage errors fail at once ----------------------------


@pytest.mark.slow
def test_a_storage_that_cannot_be_opened_fails_at_once(runs, tmp_path):
    """Hardening (issue 12): permanent storage errors were retried as lost connections. A
    path SQLite cannot open was retried for 120 s, then a traceback; now one line. The retry window is left long, so a retry would time out."""
    for url, message in [
        ("sqlite:////proc/optuna.db", "unable to open database file"),
        ("sqlite:////proc/kalaha/optuna.db", "cannot create the folder '/proc/kalaha'"),
    ]:
        result = run_cli(
            "tune", "smoke", "--storage", url, runs_path=runs, timeout=100,
            KALAHA_RETRY_SECONDS="600",
        )  # fmt: skip
        assert_one_line_error(result, message)
