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
the error is a lost or refused connection; ``pool_pre_ping`` replaces the dead
pooled connections. Errors that are not about the connection (a finished trial,
bad data) pass through at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import random
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.storages import RDBStorage
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from tuner.errors import UserError
from tuner.record import TrialAttr, TrialSystemAttr
from tuner.settings import DEFAULT_RUNS, StorageSettings, default_storage_url

ENV_STORAGE = "OPTUNA_STORAGE"
log = logging.getLogger("tuner.storage")
T = TypeVar("T")


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


# --- transient errors and retries ---------------------------------------------------

_TRANSIENT = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
# Errors of the transient classes that no retry heals: a file that cannot be opened
# or written, a wrong password, a database that does not exist. They fail at once.
_PERMANENT = (
    "unable to open database file",
    "readonly database",
    "read-only file system",
    "permission denied",
    "file is not a database",
    "database disk image is malformed",
    "authentication failed",
    "no password supplied",
    "does not exist",
)


def is_permanent(err: BaseException) -> bool:
    """A database error whose message says retrying cannot help (see ``_PERMANENT``)."""
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(getattr(e, "orig", None) or e).lower()
        if isinstance(e, sqlalchemy.exc.DBAPIError) and any(p in text for p in _PERMANENT):
            return True
        e = e.__cause__ or e.__context__
    return False


def is_transient(err: BaseException) -> bool:
    """A lost or refused database connection: worth retrying once the server is back.

    Optuna wraps SQLAlchemy errors in ``StorageInternalError``; the cause tells. Bad
    data, integrity errors and ``UpdateFinishedTrialError`` are not transient. A
    ``PendingRollbackError`` is when it follows a lost connection: Optuna's trial
    query catches the ``OperationalError`` (it takes it for too many variables)
    and queries again on the dead transaction.
    """
    if is_permanent(err):
        return False
    seen: set[int] = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, _TRANSIENT):
            return True
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sqlalchemy.exc.PendingRollbackError):
            context = e.__context__
            if "reconnect" in str(e) or (context is not None and is_transient(context)):
                return True
        e = e.__cause__
    return False


def retry_transient(
    fn: Callable[[], T],
    *,
    seconds: float = 120.0,
    what: str = "storage call",
    logger: logging.Logger | None = None,
) -> T:
    """Run ``fn``; while it fails with a transient error, retry with backoff for ``seconds``."""
    deadline = time.monotonic() + seconds
    delay = 0.25
    while True:
        try:
            return fn()
        except Exception as err:
            if not is_transient(err) or time.monotonic() + delay > deadline:
                raise
            (logger or log).warning(
                "%s: database connection lost (%s); retrying in %.1fs",
                what,
                first_line(err),
                delay,
            )
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def first_line(err: BaseException) -> str:
    cause = getattr(err, "orig", None) or err.__cause__ or err
    text = str(getattr(cause, "orig", None) or cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0] if text else ''}"[:200]


def raised_at(err: BaseException) -> str:
    """``module:function`` of the last Optuna or tuner frame that ``err`` passed through.

    A worker log names the storage call that gave up, without printing a traceback
    (a worker that carries on after a lost connection is not a crash).
    """
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if "/optuna/" in f.filename or "/tuner/" in f.filename]
    frame = (ours or frames or [None])[-1]
    if frame is None:
        return "?"
    module = Path(frame.filename).stem
    return f"{module}.{frame.name}:{frame.lineno}"


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
    last: Exception | None = None
    try:
        for attempt in range(settings.connect_attempts):
            try:
                with engine.connect() as conn:
                    conn.execute(sqlalchemy.text("SELECT 1"))
                return
            except sqlalchemy.exc.OperationalError as err:
                last = err
                if attempt < settings.connect_attempts - 1:
                    time.sleep(min(0.5 * 2**attempt, 4.0))
    finally:
        engine.dispose()
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    reason = str(getattr(last, "orig", last)).strip().splitlines()[0] if last else "no answer"
    raise UserError(
        f"cannot reach the {backend} storage at {where} (database {parsed.database!r}) after "
        f"{settings.connect_attempts} attempts: {reason}. Check that the server runs and "
        f"that --storage / ${ENV_STORAGE} ({describe(url)}) is right"
    )


# --- re-queueing failed trials ------------------------------------------------------


def requeue_trial(
    study: optuna.Study,
    failed: optuna.trial.FrozenTrial,
    max_retry: int | None,
    reason: str = "",
    *,
    stopped: bool = False,
) -> bool:
    """Add a WAITING copy of ``failed`` (same parameters) unless it was retried ``max_retry`` times.

    The system attrs are those of Optuna's ``RetryHeartbeatStaleTrialCallback``
    (``failed_trial``: the first trial of the chain; ``retry_history``: every
    trial of it), so Optuna's tools read them; ``stopped_by_signal`` counts the stops
    of the chain that were a signal's, which ``max_retry`` does not count (``stopped``
    marks this one). The retry's user attrs record
    which trial it retries (``retry_of``) and why (``retry_reason``); the failed
    trial's own user attrs (its fail reason, its partial results) are not copied.
    """
    history = [*failed.system_attrs.get(TrialSystemAttr.RETRY_HISTORY, []), failed.number]
    # A trial stopped by a signal (a scale-down, Ctrl-C) did nothing wrong: such stops
    # are always re-queued and never use up the retries that faults get.
    stops = failed.system_attrs.get(TrialSystemAttr.STOPPED_BY_SIGNAL, 0) + int(stopped)
    if not stopped and max_retry is not None and len(history) - stops > max_retry:
        log.warning("trial %d is not retried: it was retried %d times", failed.number, max_retry)
        return False
    study.add_trial(
        optuna.create_trial(
            state=TrialState.WAITING,
            params=failed.params,
            distributions=failed.distributions,
            user_attrs={TrialAttr.RETRY_OF: failed.number, TrialAttr.RETRY_REASON: reason},
            system_attrs={
                **failed.system_attrs,
                TrialSystemAttr.FAILED_TRIAL: failed.system_attrs.get(
                    TrialSystemAttr.FAILED_TRIAL, failed.number
                ),
                TrialSystemAttr.RETRY_HISTORY: history,
                TrialSystemAttr.STOPPED_BY_SIGNAL: stops,
            },
        )
    )
    return True


class RequeueStaleTrial:
    """The storage's ``heartbeat_stale_trial_callback``: re-queue a stale trial.

    Used by Optuna's own ``fail_stale_trials`` (``study.optimize`` on the same
    study); the tuner's worker fails stale trials itself, with a reason.
    """

    def __init__(self, max_retry: int | None) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        requeue_trial(study, trial, self.max_retry, "heartbeat stale")


# --- the storage -----------------------------------------------------------------------

_RETRIED_METHODS = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_n_trials",
    "get_best_trial",
    "_get_stale_trial_ids",
    # Optuna's _CachedStorage, which wraps every RDBStorage a Study uses, calls these
    # private methods of its backend instead of the public ones above.
    "_get_trials",
    "_create_new_trial",
    "_set_trial_param",
    "_get_best_trial_id",
)
# Backend methods that touch no database, or whose caller retries on its own.
NOT_RETRIED = ("get_heartbeat_interval", "get_heartbeat_stale_trial_callback", "record_heartbeat")
_local = threading.local()


def _retrying(name: str) -> Callable[..., Any]:
    base = getattr(RDBStorage, name)

    @functools.wraps(base)
    def method(self: ResilientRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "active", False):  # a nested call: the outer one retries
            return base(self, *args, **kwargs)
        _local.active = True
        try:
            return retry_transient(
                lambda: base(self, *args, **kwargs), seconds=self.retry_seconds, what=name
            )
        finally:
            _local.active = False

    return method


class ResilientRDBStorage(RDBStorage):
    """``RDBStorage`` whose calls survive a dropped connection or a database restart.

    Each call is retried for ``retry_seconds`` on a lost or refused connection.
    ``record_heartbeat`` is not: the worker's heartbeat thread tries again at its
    next beat. A create whose answer was lost may leave a RUNNING trial without a
    heartbeat; the worker fails such orphans under its claim lock.
    """

    def __init__(self, url: str, *, retry_seconds: float = 120.0, **kwargs: Any) -> None:
        self.retry_seconds = retry_seconds
        super().__init__(url, **kwargs)

    def fail_running_trial(self, trial_id: int, reason: str) -> bool:
        """RUNNING -> FAIL with a ``fail_reason`` user attr, in one transaction.

        False when the trial was no longer RUNNING (its worker finished it, or
        another worker failed it first).
        """

        def fail() -> bool:
            with _create_scoped_session(self.scoped_session) as session:
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                if trial.state != TrialState.RUNNING:
                    return False
                self._set_trial_attr_without_commit(
                    session, models.TrialUserAttributeModel, trial_id, TrialAttr.FAIL_REASON, reason
                )
                trial.state = TrialState.FAIL
                trial.datetime_complete = dt.datetime.now()
            return True

        return retry_transient(fail, seconds=self.retry_seconds, what="failing a stale trial")

    def orphan_trial_ids(self, study_id: int) -> list[int]:
        """RUNNING trials that never sent a heartbeat.

        A tuner worker records a trial's first heartbeat under the claim lock, in
        the same claim as its ``ask``; seen under that lock, a RUNNING trial
        without a heartbeat lost its worker between the two.
        """

        def query() -> list[int]:
            with _create_scoped_session(self.scoped_session) as session:
                rows = (
                    session.query(models.TrialModel.trial_id)
                    .outerjoin(
                        models.TrialHeartbeatModel,
                        models.TrialHeartbeatModel.trial_id == models.TrialModel.trial_id,
                    )
                    .filter(models.TrialModel.study_id == study_id)
                    .filter(models.TrialModel.state == TrialState.RUNNING)
                    .filter(models.TrialHeartbeatModel.trial_heartbeat_id.is_(None))
                    .all()
                )
            return [r[0] for r in rows]

        return retry_transient(query, seconds=self.retry_seconds, what="looking for orphans")

    def heartbeat_ages(self, study_id: int) -> dict[int, float]:
        """Seconds since the last heartbeat of each RUNNING trial that sent one (server clock)."""

        def query() -> dict[int, float]:
            with _create_scoped_session(self.scoped_session) as session:
                now = session.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar()
                assert now is not None
                now = now.replace(tzinfo=None)
                rows = (
                    session.query(
                        models.TrialHeartbeatModel.trial_id, models.TrialHeartbeatModel.heartbeat
                    )
                    .join(models.TrialModel)
                    .filter(models.TrialModel.study_id == study_id)
                    .filter(models.TrialModel.state == TrialState.RUNNING)
                    .all()
                )
            return {tid: max(0.0, (now - beat).total_seconds()) for tid, beat in rows}

        return retry_transient(query, seconds=self.retry_seconds, what="reading heartbeats")


for _name in _RETRIED_METHODS:
    setattr(ResilientRDBStorage, _name, _retrying(_name))


def make_storage(
    url: str | None = None, settings: StorageSettings | None = None
) -> ResilientRDBStorage:
    """An RDB storage with heartbeats, retries on lost connections and stale-trial re-queueing."""
    settings = settings or StorageSettings()
    url = resolve_url(url)
    check_reachable(url, settings)

    def build() -> ResilientRDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Workers started together on an empty database race to create Optuna's
            # tables; the loser hits a unique violation and finds the tables on a retry.
            for attempt in range(5):
                try:
                    return _rdb_storage(url, settings)
                except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                    if attempt == 4:
                        raise
                    time.sleep(0.2 * (attempt + 1) + random.random() / 2)
        raise AssertionError("unreachable")

    # The server answered check_reachable but may go away before the tables are read.
    try:
        return retry_transient(build, seconds=settings.retry_seconds, what="opening the storage")
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


def _rdb_storage(url: str, settings: StorageSettings) -> ResilientRDBStorage:
    return ResilientRDBStorage(
        url,
        retry_seconds=settings.retry_seconds,
        engine_kwargs=engine_kwargs(url, settings),
        heartbeat_interval=settings.heartbeat_interval,
        grace_period=settings.grace_period,
        heartbeat_stale_trial_callback=RequeueStaleTrial(settings.max_retry),
    )


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]
