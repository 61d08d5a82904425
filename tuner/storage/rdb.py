"""Storage URL -> Optuna storage, with heartbeats, retries and pool settings.

The embedded default is a SQLite file under the runs folder, so a fresh checkout
tunes with nothing else running. Any SQLAlchemy URL (``--storage`` or
``$OPTUNA_STORAGE``) overrides it; PostgreSQL is the one meant for many workers.

On an RDB every running trial sends a heartbeat; a trial whose worker died (no
heartbeat for ``grace_period`` seconds) is failed by the next worker that looks,
with the reason, and re-queued (up to ``max_retry`` times) as a WAITING trial
with the same parameters that records which trial it retries.

Connections drop (a PostgreSQL restart, a network blip). Every storage call of
:class:`ResilientRDBStorage` is retried with backoff for ``retry_seconds`` while
the error is a lost or refused connection (the one policy of :mod:`tuner.storage.retry`);
``pool_pre_ping`` replaces the dead pooled connections. Errors that are not about
the connection (a finished trial, bad data) pass through at once. Re-queueing a
failed trial is the trial lifecycle's business (:mod:`tuner.trial.lifecycle`).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from sqlalchemy.engine import make_url

from tuner.base.errors import UserError
from tuner.base.settings import DEFAULT_RUNS, StorageSettings, default_storage_url
from tuner.storage.optuna_compat import RoutedRDBStorage
from tuner.storage.retry import first_line, is_transient, retry_transient

ENV_STORAGE = "OPTUNA_STORAGE"
log = logging.getLogger("tuner.storage.rdb")
T = TypeVar("T")
# Optuna's heartbeat_stale_trial_callback: (study, the trial it failed) -> None.
StaleTrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


def resolve_url(url: str | None = None, runs_dir: Path = DEFAULT_RUNS) -> str:
    """``url`` or the embedded SQLite file (``$OPTUNA_STORAGE`` is read by ``Settings``)."""
    return url or default_storage_url(runs_dir)


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


URL_EXAMPLES = "'sqlite:///runs/optuna.db' or 'postgresql+psycopg2://user:pass@host:5432/db'"


def check_url(url: str) -> sqlalchemy.engine.URL:
    """The storage URL, parsed, with a driver that is installed; a one-line error otherwise.

    SQLAlchemy's own errors for ``postgres://`` (Heroku's spelling), a misspelled
    driver or a relative ``sqlite://PATH`` are tracebacks, or a file in a surprising
    place.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise UserError(
            f"storage URL {url!r} is not a valid SQLAlchemy URL; expected e.g. {URL_EXAMPLES}"
        ) from None
    try:
        parsed.get_dialect().import_dbapi()
    except Exception as err:
        hint = " (SQLAlchemy spells it postgresql://)" if parsed.drivername == "postgres" else ""
        raise UserError(
            f"storage URL {describe(url)}: the database driver {parsed.drivername!r} is not "
            f"available{hint} ({type(err).__name__}); expected e.g. {URL_EXAMPLES}"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.host:
        raise UserError(
            f"storage URL {url!r}: a SQLite URL has no host, but this one reads "
            f"{parsed.host!r} as one; write sqlite:///relative/path.db (three slashes) "
            "or sqlite:////absolute/path.db (four)"
        )
    return parsed


def require_existing(url: str) -> None:
    """Reading commands (status, export, report, evaluate) must not create a SQLite file.

    SQLAlchemy creates a missing SQLite file on connect, and Optuna then writes its
    tables into it: a mistyped path would leave an empty database behind and report
    "no study" as if the study had vanished. Server URLs are left to the connect check.
    """
    parsed = check_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    if not os.path.exists(parsed.database):
        raise UserError(
            f"storage {url}: expected an existing SQLite file, but {parsed.database!r} does "
            "not exist. Run `tuner tune STUDY` first, or pass the --storage that it used"
        )


def engine_kwargs(url: str, settings: StorageSettings) -> dict[str, Any]:
    """Pool settings per backend: small pools with pre-ping on servers, a lock timeout on SQLite."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return {"connect_args": {"timeout": 60}}
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": settings.pool_size,
        "max_overflow": settings.pool_size,
        "pool_recycle": 600,
    }
    if backend == "postgresql":
        kwargs["connect_args"] = {
            "connect_timeout": settings.connect_timeout,
            # `SELECT application_name, count(*) FROM pg_stat_activity GROUP BY 1`
            # shows the connections of each worker.
            "application_name": application_name(),
            # A peer that vanished without closing the socket is noticed in about a minute.
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
        }
    return kwargs


def worker_name() -> str:
    """``HOST:PID``: names this process on its trials, its connections and its GPU pick."""
    return f"{socket.gethostname()}:{os.getpid()}"


def application_name() -> str:
    """``kalaha-tuner HOST:PID`` (PostgreSQL keeps 63 bytes of it)."""
    return f"kalaha-tuner {worker_name()}"[:63]


def worker_connections(url: str) -> dict[str, int]:
    """``kalaha-tuner HOST:PID`` -> open connections to the URL's PostgreSQL database.

    What sizing ``max_connections`` needs (workers x connections each), read off the
    server's ``pg_stat_activity``; this process's own connections are left out, and
    other backends have no such view, so they give ``{}``.
    """
    if make_url(url).get_backend_name() != "postgresql":
        return {}
    engine = sqlalchemy.create_engine(
        url, poolclass=sqlalchemy.pool.NullPool, connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT application_name, count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE :prefix "
                    "AND application_name <> :me GROUP BY 1"
                ),
                {"prefix": "kalaha-tuner %", "me": application_name()},
            ).all()
    finally:
        engine.dispose()
    return {app: int(n) for app, n in rows}


def check_reachable(url: str, settings: StorageSettings) -> None:
    """Connect once, retrying with backoff; a clear :class:`UserError` if it never answers."""
    parsed = check_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = os.path.dirname(os.path.abspath(parsed.database))
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as err:
                raise UserError(
                    f"storage {url}: cannot create the folder {folder!r} for the SQLite "
                    f"file ({err.strerror}); pick a writable path"
                ) from None
        return
    engine = sqlalchemy.create_engine(url, **engine_kwargs(url, settings))

    def connect() -> None:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))

    last: Exception | None = None
    try:
        # Any OperationalError, a wrong password included: the message below names it.
        retry_transient(
            connect,
            seconds=math.inf,
            attempts=settings.connect_attempts,
            what="connecting",
            when=lambda err: isinstance(err, sqlalchemy.exc.OperationalError),
        )
        return
    except sqlalchemy.exc.OperationalError as err:
        last = err
    finally:
        engine.dispose()
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    reason = str(getattr(last, "orig", last)).strip().splitlines()[0] if last else "no answer"
    raise UserError(
        f"cannot reach the {backend} storage at {where} (database {parsed.database!r}) after "
        f"{settings.connect_attempts} attempts: {reason}. Check that the server runs and "
        f"that --storage / ${ENV_STORAGE} ({describe(url)}) is right"
    )


# --- the storage -----------------------------------------------------------------------


class ResilientRDBStorage(RoutedRDBStorage):
    """``RDBStorage`` whose calls survive a dropped connection or a database restart.

    Each call is retried for ``retry_seconds`` on a lost or refused connection, at
    one level: a call made inside a unit that is retried as a whole (a claim, a
    record) runs once and the unit retries (see :mod:`tuner.storage.retry`).
    ``record_heartbeat`` is not retried: the heartbeat thread tries again at its
    next beat. A create whose answer was lost may leave a RUNNING trial without a
    heartbeat; the worker fails such orphans under its claim lock.
    """

    def __init__(self, url: str, *, retry_seconds: float = 120.0, **kwargs: Any) -> None:
        self.retry_seconds = retry_seconds
        super().__init__(url, **kwargs)

    def _call(self, name: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return retry_transient(lambda: fn(*args, **kwargs), seconds=self.retry_seconds, what=name)


def make_storage(
    url: str | None = None,
    settings: StorageSettings | None = None,
    *,
    on_stale_trial: StaleTrialCallback | None = None,
) -> ResilientRDBStorage:
    """An RDB storage with heartbeats and retries on lost connections.

    ``on_stale_trial`` is the storage's ``heartbeat_stale_trial_callback``, which
    Optuna's own ``fail_stale_trials`` (``study.optimize``) calls for each trial it
    fails; a worker passes the one that re-queues it (:mod:`tuner.trial.lifecycle`).
    """
    settings = settings or StorageSettings()
    url = resolve_url(url)
    check_reachable(url, settings)

    def build() -> ResilientRDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _rdb_storage(url, settings, on_stale_trial)

    # The server answered check_reachable but may go away before the tables are read.
    try:
        return retry_transient(
            build,
            seconds=settings.retry_seconds,
            what="opening the storage",
            when=_TableRace(),
        )
    except sqlalchemy.exc.DBAPIError as err:
        if is_transient(err):
            raise
        raise UserError(storage_error_line(url, err)) from None


def storage_error_line(url: str, err: BaseException) -> str:
    """One line for a database error that retrying cannot heal, with what to check."""
    return (
        f"storage {describe(url)} cannot be used: {first_line(err)}. Check the path or "
        "database name, its permissions and that it is an Optuna database (a file that "
        "is not one: move it away)"
    )


class _TableRace:
    """Which errors opening the storage retries: a lost connection, or a few table races.

    Workers started together on an empty database race to create Optuna's tables;
    the loser hits a unique violation (or "already exists") and finds the tables on
    a retry. Such errors are retried ``tries - 1`` times, not for the whole window,
    so that another integrity or programming error is reported within seconds.
    """

    def __init__(self, tries: int = 5) -> None:
        self.left = tries - 1

    def __call__(self, err: BaseException) -> bool:
        if is_transient(err):
            return True
        race = (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError)
        if isinstance(err, race) and self.left > 0:
            self.left -= 1
            return True
        return False


def _rdb_storage(
    url: str, settings: StorageSettings, on_stale_trial: StaleTrialCallback | None
) -> ResilientRDBStorage:
    return ResilientRDBStorage(
        url,
        retry_seconds=settings.retry_seconds,
        engine_kwargs=engine_kwargs(url, settings),
        heartbeat_interval=settings.heartbeat_interval,
        grace_period=settings.grace_period,
        heartbeat_stale_trial_callback=on_stale_trial,
    )


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]
