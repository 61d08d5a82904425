"""Which database errors are worth retrying, and the one retry policy that retries them.

Connections drop (a PostgreSQL restart, a network blip). A call that failed on a
lost or refused connection is run again with jittered exponential backoff
(:data:`BACKOFF`) until ``seconds`` have passed; any other error passes through
at once.

Retries happen at one level only. The outermost :func:`retry_transient` on a
thread owns the retrying; a retried call inside it (a storage call inside a
retried claim) runs once and lets its error reach the outer one. A unit of
work therefore retries for ``seconds`` at most, never ``seconds`` per nesting
level, and a unit that must be redone as a whole (a claim under a lock whose
connection died) is redone as a whole.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy
import tenacity

log = logging.getLogger("tuner.storage.retry")
T = TypeVar("T")

# The one backoff: 0.25 s, doubling, at most 5 s, each wait up to 0.25 s longer at
# random so that workers cut off together do not come back in lockstep.
BACKOFF = tenacity.wait_exponential_jitter(initial=0.25, max=5.0, exp_base=2, jitter=0.25)

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
_scope = threading.local()


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
    seconds: float,
    what: str = "storage call",
    logger: logging.Logger | None = None,
    when: Callable[[BaseException], bool] = is_transient,
    attempts: int | None = None,
) -> T:
    """Run ``fn``; while it fails with an error ``when`` accepts, retry with :data:`BACKOFF`.

    Gives up (re-raising the last error) when the next attempt would start more than
    ``seconds`` after the first, or after ``attempts`` attempts. Inside another
    ``retry_transient`` on the same thread ``fn`` runs once: the outer call retries.
    """
    if getattr(_scope, "active", False):
        return fn()
    stop: tenacity.stop.stop_base = tenacity.stop_before_delay(seconds)
    if attempts is not None:
        stop = stop | tenacity.stop_after_attempt(attempts)
    retrying = tenacity.Retrying(
        stop=stop,
        wait=BACKOFF,
        retry=tenacity.retry_if_exception(when),
        before_sleep=_warn(what, logger or log),
        reraise=True,
    )
    _scope.active = True
    try:
        return retrying(fn)
    finally:
        _scope.active = False


def _warn(what: str, logger: logging.Logger) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s: database connection lost (%s); retrying in %.1fs",
            what,
            first_line(err) if err else "?",
            delay,
        )

    return before_sleep


def first_line(err: BaseException) -> str:
    """``Type: first line`` of the error's database cause, for one-line log messages."""
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
