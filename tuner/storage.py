"""Storage URL -> Optuna storage, with heartbeats, retries and pool settings.

The embedded default is a SQLite file under the runs folder, so a fresh checkout
tunes with nothing else running. Any SQLAlchemy URL (``--storage`` or
``$OPTUNA_STORAGE``) overrides it; PostgreSQL is the one meant for many workers.

On an RDB every running trial sends a heartbeat; a trial whose worker died (no
heartbeat for ``grace_period`` seconds) is failed by the next worker that looks
and re-queued once by Optuna's ``RetryHeartbeatStaleTrialCallback``, which
records which trial the retry stands for.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import make_url

from tuner.errors import UserError
from tuner.training import runs_dir

ENV_STORAGE = "OPTUNA_STORAGE"


@dataclass(frozen=True)
class StorageSettings:
    """Heartbeat and connection settings; the environment can override each."""

    heartbeat_interval: int = field(
        default_factory=lambda: _env_int("KALAHA_HEARTBEAT_INTERVAL", 10)
    )
    grace_period: int = field(default_factory=lambda: _env_int("KALAHA_GRACE_PERIOD", 60))
    max_retry: int = field(default_factory=lambda: _env_int("KALAHA_MAX_RETRY", 2))
    pool_size: int = field(default_factory=lambda: _env_int("KALAHA_POOL_SIZE", 2))
    connect_attempts: int = field(default_factory=lambda: _env_int("KALAHA_CONNECT_ATTEMPTS", 5))
    connect_timeout: int = 5


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise UserError(f"${name}: expected an integer, but got {raw!r}") from None


def default_url() -> str:
    return f"sqlite:///{runs_dir() / 'optuna.db'}"


def resolve_url(url: str | None = None) -> str:
    """``--storage`` first, then ``$OPTUNA_STORAGE``, then the embedded SQLite file."""
    return url or os.environ.get(ENV_STORAGE) or default_url()


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


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
        kwargs["connect_args"] = {"connect_timeout": settings.connect_timeout}
    return kwargs


def check_reachable(url: str, settings: StorageSettings) -> None:
    """Connect once, retrying with backoff; a clear :class:`UserError` if it never answers."""
    try:
        parsed = make_url(url)
    except Exception:
        raise UserError(
            f"storage URL {url!r} is not a valid SQLAlchemy URL; expected e.g. "
            "'sqlite:///runs/optuna.db' or 'postgresql+psycopg2://user:pass@host:5432/db'"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
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


def make_storage(url: str | None = None, settings: StorageSettings | None = None) -> RDBStorage:
    """An ``RDBStorage`` with heartbeats and the retry callback for stale trials."""
    settings = settings or StorageSettings()
    url = resolve_url(url)
    check_reachable(url, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _rdb_storage(url, settings)


def _rdb_storage(url: str, settings: StorageSettings) -> RDBStorage:
    return RDBStorage(
        url,
        engine_kwargs=engine_kwargs(url, settings),
        heartbeat_interval=settings.heartbeat_interval,
        grace_period=settings.grace_period,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
            max_retry=settings.max_retry
        ),
    )


def study_names(storage: optuna.storages.BaseStorage) -> list[str]:
    return [s.study_name for s in storage.get_all_studies()]
