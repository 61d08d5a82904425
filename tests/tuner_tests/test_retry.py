"""The one retry policy: which errors are retried, for how long, and at one level only."""

from __future__ import annotations

import time

import optuna
import pytest
import sqlalchemy

from tuner.storage.retry import is_transient, retry_transient

LOST = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def test_only_connection_errors_are_transient():
    lost = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, Exception("server closed the connection")
    )
    assert is_transient(lost)
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = lost
    assert is_transient(wrapped), "Optuna wraps it; the cause decides"
    bad_data = optuna.exceptions.StorageInternalError("too long")
    bad_data.__cause__ = sqlalchemy.exc.DataError("INSERT", {}, Exception("value too long"))
    assert not is_transient(bad_data)
    assert not is_transient(optuna.exceptions.UpdateFinishedTrialError("finished"))
    # Optuna's trial query catches the OperationalError of a dropped connection and
    # queries again on the dead transaction: a PendingRollbackError, then wrapped.
    try:
        try:
            raise lost
        except sqlalchemy.exc.OperationalError:
            raise sqlalchemy.exc.PendingRollbackError(
                "Can't reconnect until invalid transaction is rolled back"
            ) from None
    except sqlalchemy.exc.PendingRollbackError as pending:
        after_drop = optuna.exceptions.StorageInternalError("commit failed")
        after_drop.__cause__ = pending
    assert is_transient(after_drop)
    flush = sqlalchemy.exc.PendingRollbackError(
        "rolled back due to a previous exception during flush"
    )
    assert not is_transient(flush)
    assert not is_transient(ValueError("nan"))


def test_retry_transient_retries_then_gives_up():
    calls = []
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("refused"))

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise lost
        return "ok"

    assert retry_transient(flaky, seconds=10) == "ok" and len(calls) == 3

    def down():
        raise lost

    start = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        retry_transient(down, seconds=0.5)
    assert time.monotonic() - start < 5, "bounded"
    with pytest.raises(ValueError):
        retry_transient(lambda: (_ for _ in ()).throw(ValueError("bad")), seconds=10)


def test_a_retry_inside_a_retry_runs_once_and_the_outer_one_retries():
    """One level: a storage call inside a retried claim does not retry on its own, so a
    unit of work gives up after its window, not after a window per nesting level."""
    inner_calls = []

    def storage_call():
        inner_calls.append(1)
        raise LOST

    def claim():
        return retry_transient(storage_call, seconds=60, what="inner")

    start = time.monotonic()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        retry_transient(claim, seconds=1.0, what="outer")
    elapsed = time.monotonic() - start
    assert elapsed < 5, f"the inner 60 s window was used ({elapsed:.1f}s)"
    assert 2 <= len(inner_calls) <= 6, "each outer attempt ran the inner call once"
    # Outside any retry the inner call retries on its own again.
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 2:
            raise LOST
        return "ok"

    assert retry_transient(flaky, seconds=10) == "ok" and len(calls) == 2


def test_attempts_bound_a_retry_and_when_picks_the_errors():
    calls = []

    def down():
        calls.append(1)
        raise LOST

    with pytest.raises(sqlalchemy.exc.OperationalError):
        retry_transient(down, seconds=60, attempts=2)
    assert len(calls) == 2
    calls.clear()
    with pytest.raises(KeyError):
        retry_transient(lambda: calls.append(1) or {}["x"], seconds=60, when=lambda e: False)
    assert len(calls) == 1
