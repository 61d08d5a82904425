"""The trial lifecycle's reconciliation: a write that committed but whose answer was lost.

A lost answer (the server committed, then the connection dropped) makes the unit
that wrote it run again (one retry level, :mod:`tuner.storage.retry`); each step of the
lifecycle must then neither lose nor repeat what the first attempt did. On a SQLite
file: the lock and the queries are the same as on PostgreSQL, which the fault
tests (test_faults.py, test_storage.py) cover end to end.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

from tuner.storage.optuna_compat import trial_id
from tuner.storage.rdb import StorageSettings
from tuner.trial.lifecycle import (
    ClaimKind,
    Outcome,
    TrialLifecycle,
    budget_used,
    open_storage,
    requeue_trial,
    retries_of,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
SETTINGS = StorageSettings(
    heartbeat_interval=60, grace_period=120, max_retry=2, connect_attempts=1, retry_seconds=20
)


@pytest.fixture
def lifecycle(tmp_path) -> TrialLifecycle:
    storage = open_storage(f"sqlite:///{tmp_path / 'life.db'}", SETTINGS)
    study = optuna.create_study(study_name="life", storage=storage, direction="maximize")
    return TrialLifecycle(study, storage, n_trials=2, settings=SETTINGS)


def lose_answer_once(storage: Any, name: str) -> list[str]:
    """The storage's ``name`` commits, then its answer is lost, once."""
    real = getattr(storage, name)
    lost: list[str] = []

    def lossy(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        if not lost:
            lost.append(name)
            raise sqlalchemy.exc.OperationalError(
                name, {}, Exception("server closed the connection unexpectedly")
            )
        return result

    setattr(storage, name, lossy)
    return lost


def test_requeue_is_idempotent(lifecycle):
    study = lifecycle.study
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    study.tell(trial, state=TrialState.FAIL)
    (failed,) = study.get_trials()
    assert requeue_trial(study, failed, 2, "test") and requeue_trial(study, failed, 2, "test")
    assert len(retries_of(study.get_trials(), failed.number)) == 1


def test_a_lost_answer_to_tell_is_still_ours_and_requeued(lifecycle):
    """The tell committed; its retry finds the trial finished by our own outcome."""
    claim = lifecycle.claim()
    assert claim.kind == ClaimKind.TRIAL and claim.trial is not None
    claim.trial.suggest_float("x", 0.0, 1.0)
    lost = lose_answer_once(lifecycle.storage, "set_trial_state_values")
    outcome = Outcome(TrialState.FAIL, reason="storage connection lost: test", requeue=True)
    assert lifecycle.record(claim.trial, outcome) == TrialState.FAIL
    assert lost, "the fault was never injected"
    failed, retry = lifecycle.study.get_trials()
    assert failed.user_attrs["fail_reason"] == "storage connection lost: test"
    assert retry.state == TrialState.WAITING and retry.user_attrs["retry_of"] == failed.number


def test_a_lost_answer_while_requeueing_an_orphan_queues_one_retry(lifecycle):
    """The claim failed an orphan and queued its retry, but the answer was lost: the
    claim is retried as a whole and finds the orphan failed and its retry queued."""
    orphan = lifecycle.study.ask()  # RUNNING without a heartbeat: its claimer died
    orphan.suggest_float("x", 0.0, 1.0)
    lost = lose_answer_once(lifecycle.storage, "_create_new_trial")
    claim = lifecycle.claim()
    assert lost, "the fault was never injected"
    assert claim.kind == ClaimKind.TRIAL and claim.trial is not None
    first, retry = lifecycle.study.get_trials()
    assert first.state == TrialState.FAIL and first.user_attrs["fail_reason"].startswith("orph")
    assert trial_id(claim.trial) == trial_id(retry), "the claim runs the one retry"
    assert retry.params == first.params and budget_used(lifecycle.study.get_trials()) == 1


def test_a_result_adopted_by_an_attempt_whose_answer_was_lost_is_kept(lifecycle):
    """Failed as stale while it ran; the adoption onto its retry committed, its answer lost."""
    study, storage = lifecycle.study, lifecycle.storage
    claim = lifecycle.claim()
    trial = claim.trial
    assert trial is not None
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("scores", {"random": 0.75})
    # Meanwhile another worker fails it as stale and queues its retry.
    assert storage.fail_if_running(trial_id(trial), {"fail_reason": "heartbeat stale: test"})
    requeue_trial(study, storage.get_trial(trial_id(trial)), 2, "heartbeat stale")
    lost = lose_answer_once(storage, "set_trial_state_values")
    assert lifecycle.record(trial, Outcome(TrialState.COMPLETE, 0.5)) == TrialState.COMPLETE
    assert lost
    first, kept = study.get_trials()
    assert first.state == TrialState.FAIL
    # The pop to RUNNING lost its answer: the retry adopted the RUNNING orphan and finished it.
    assert kept.state == TrialState.COMPLETE and kept.value == 0.5
    assert kept.user_attrs["adopted_result_of"] == first.number
    assert kept.user_attrs["scores"] == {"random": 0.75}
