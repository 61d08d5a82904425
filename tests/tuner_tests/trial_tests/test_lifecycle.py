"""The trial lifecycle: claiming, failing orphaned and stale trials, retries, late results.

First its reconciliation: a write that committed but whose answer was lost.

A lost answer (the server committed, then the connection dropped) makes the unit
that wrote it run again (one retry level, :mod:`tuner.storage.retry`); each step of the
lifecycle must then neither lose nor repeat what the first attempt did. On a SQLite
file: the lock and the queries are the same as on PostgreSQL, which the fault
tests (test_faults.py) cover end to end. Then the lifecycle on the real PostgreSQL, in
a worker whose objective does not train: orphaned and stale trials and their retries,
and a result that arrives after its trial was failed.
"""

from __future__ import annotations

import time
from typing import Any

import optuna
import pytest
import sqlalchemy
from fault_support import by_state
from optuna.trial import TrialState

from tuner.commands.worker import Worker
from tuner.config.loading import parse_spec
from tuner.config.spec import StudySpec
from tuner.storage.optuna_compat import backend_of, study_id, trial_id
from tuner.storage.rdb import StorageSettings
from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.trial.lifecycle import (
    ClaimKind,
    Outcome,
    TrialLifecycle,
    budget_used,
    fail_running_trial,
    open_storage,
    orphan_trial_ids,
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


# --- on the real PostgreSQL, through a worker: orphans, stale trials, late results ------------


def bookkeeping_spec(**overrides: Any) -> StudySpec:
    """A study whose trials only suggest ``gamma``: the lifecycle's bookkeeping is tested."""
    data = {
        "study_name": "store",
        "n_trials": 3,
        "sampler": {"type": "random"},
        "pruner": {"type": "none"},
        "budget": {"total_timesteps": 8, "n_evaluations": 1},
        "search_space": {"gamma": {"type": "float", "low": 0.9, "high": 0.999}},
    }
    data.update(overrides)
    return parse_spec(data, "test")


def trivial(trial, _spec, **_):
    """An objective without training: the worker's bookkeeping is what is tested."""
    x = trial.suggest_float("gamma", 0.9, 0.999)
    trial.report(x, step=1)
    return x


@pytest.mark.postgres
def test_orphaned_trial_is_failed_and_retried(runs, pg_url):
    """A worker killed between ask and its first heartbeat leaves a RUNNING trial without one."""
    spec = bookkeeping_spec()
    worker = Worker.open(spec, pg_url, worker_index=0, device="cpu", objective_fn=trivial)
    orphan = worker.study.ask()  # a claim whose worker died before its first heartbeat
    orphan.suggest_float("gamma", 0.9, 0.999)
    assert orphan_trial_ids(worker.trials.storage, study_id(worker.study)) == [trial_id(orphan)]
    report = worker.run()
    trials = worker.study.get_trials()
    failed = trials[orphan.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs[TrialAttr.FAIL_REASON].startswith("orphaned")
    (retry,) = [t for t in trials if t.user_attrs.get(TrialAttr.RETRY_OF) == orphan.number]
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params
    assert budget_used(trials) == spec.n_trials == len(report.finished)
    assert len(by_state(trials, TrialState.COMPLETE)) == spec.n_trials


@pytest.mark.postgres
def test_stale_trial_reason_and_retry_limit(runs, pg_url):
    settings = StorageSettings(heartbeat_interval=1, grace_period=1, max_retry=1)
    spec = bookkeeping_spec(n_trials=1)
    worker = Worker.open(
        spec, pg_url, worker_index=0, device="cpu", settings=settings, objective_fn=trivial
    )
    storage, study = worker.trials.storage, worker.study
    dead = study.ask()
    dead.suggest_float("gamma", 0.9, 0.999)
    storage.record_heartbeat(dead._trial_id)  # then its worker dies
    time.sleep(2.5)
    assert worker.trials.fail_stale(with_orphans=False) == [dead.number]
    again = study.ask()  # the retry, claimed by a worker that dies too
    assert again.user_attrs[TrialAttr.RETRY_OF] == dead.number
    storage.record_heartbeat(again._trial_id)
    time.sleep(2.5)
    assert worker.trials.fail_stale(with_orphans=False) == [again.number]
    trials = study.get_trials()
    assert all(t.state == TrialState.FAIL for t in trials), "max_retry=1: no second retry"
    assert trials[1].system_attrs[TrialSystemAttr.RETRY_HISTORY] == [dead.number]
    assert all(t.user_attrs[TrialAttr.FAIL_REASON].startswith("heartbeat stale") for t in trials)
    assert budget_used(trials) == 1
    assert worker.run().finished == [], "the budget is spent: one trial, retried once, failed"


@pytest.mark.postgres
def test_result_after_being_failed_as_stale_is_kept_by_its_retry(runs, pg_url):
    """The database was away longer than the grace period; another worker failed the trial."""
    spec = bookkeeping_spec(n_trials=1)

    def late(trial, _spec, **_):
        x = trial.suggest_float("gamma", 0.9, 0.999)
        trial.set_user_attr(TrialAttr.SCORES, {"random": 0.75})
        # Meanwhile, another worker saw no heartbeat: it fails the trial and queues a retry.
        backend = backend_of(trial.storage)
        assert fail_running_trial(backend, trial_id(trial), "heartbeat stale: test")
        requeue_trial(trial.study, backend.get_trial(trial_id(trial)), 2, "heartbeat stale")
        return x

    worker = Worker.open(spec, pg_url, worker_index=0, device="cpu", objective_fn=late)
    report = worker.run()
    trials = worker.study.get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    first, kept = trials
    assert kept.value == pytest.approx(first.params["gamma"])
    assert kept.params == first.params
    assert kept.user_attrs[TrialAttr.ADOPTED_RESULT_OF] == first.number
    assert kept.user_attrs[TrialAttr.RETRY_OF] == first.number
    assert kept.user_attrs[TrialAttr.SCORES] == {"random": 0.75}
    assert report.finished[0][1] == "COMPLETE"
    assert budget_used(trials) == 1
