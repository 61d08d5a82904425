"""A trial's life in a shared study: claim, run under a heartbeat, record, or fail and retry.

Why not ``study.optimize(n_trials=...)``: its ``n_trials`` counts this process's
trials only. Here ``n_trials`` is global. A worker claims a trial under a lock
(a PostgreSQL advisory lock, or a file lock beside a SQLite file) after counting
the study's trials, so several workers stop together at exactly ``n_trials``. A
trial re-queued after its worker died takes the dead trial's place in the count
rather than adding one.

The retry protocol, all of it here:

- A worker killed (SIGKILL, OOM, preemption) stops its trial's heartbeat. Every
  claim first fails the RUNNING trials whose heartbeat is older than the grace
  period, with the reason, and re-queues each as a WAITING trial with the same
  parameters and a ``retry_of`` attr (up to ``max_retry`` times).
- A worker that dies between ``ask`` and the trial's first heartbeat: the claim
  records that first heartbeat under the claim lock, so a RUNNING trial without
  one, seen under the lock, is an orphan; it is failed and re-queued the same way.
- A trial that finishes after another worker failed it as stale (its heartbeat
  lapsed while the database was away) adopts its own WAITING retry, so the
  result is kept rather than run again.
- A claim, a record and an adoption are each retried as a whole while the
  connection is down (:func:`tuner.storage.retry.retry_transient`, one level); each
  reconciles an earlier attempt whose commit went through but whose answer was
  lost, so that a retry neither loses nor repeats a write.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna
import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from tuner.storage.optuna_compat import RoutedRDBStorage, study_id, trial_id
from tuner.storage.rdb import ResilientRDBStorage, StorageSettings, make_storage
from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.storage.retry import retry_transient
from tuner.trial.heartbeat import Heartbeat

log = logging.getLogger("tuner.trial.lifecycle")
T = TypeVar("T")


# --- the budget, the lock and the retry protocol's records -------------------------------


def budget_used(trials: list[FrozenTrial]) -> int:
    """Trials that count towards ``n_trials``: all but those re-queued as a retry, and
    those that failed on a configuration error (the file's fault, fixed and run again)."""
    retried: set[int] = set()
    for t in trials:
        retried.update(t.system_attrs.get(TrialSystemAttr.RETRY_HISTORY, []))
    return sum(
        1
        for t in trials
        if t.number not in retried and not t.user_attrs.get(TrialAttr.CONFIG_ERROR)
    )


@contextlib.contextmanager
def claim_lock(storage: RDBStorage, study_name: str) -> Iterator[bool]:
    """Serialize claims across workers: advisory lock on PostgreSQL, flock on SQLite.

    Yields whether a lock is held (no lock for an in-memory SQLite database).
    """
    url = make_url(storage.url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        key = zlib.crc32(f"kalaha-tuner:{study_name}".encode())
        with storage.engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield True
            finally:
                with contextlib.suppress(Exception):
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
    elif backend == "sqlite" and url.database and url.database != ":memory:":
        with open(Path(url.database).with_suffix(".lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield False


def retries_of(trials: list[FrozenTrial], number: int) -> list[FrozenTrial]:
    """The trials queued as the retry of trial ``number`` (the last of their history)."""
    return [
        t for t in trials if t.system_attrs.get(TrialSystemAttr.RETRY_HISTORY, [None])[-1] == number
    ]


def requeue_trial(
    study: optuna.Study,
    failed: FrozenTrial,
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
    A retry that is already there (an earlier call whose answer was lost) is kept.
    """
    history = [*failed.system_attrs.get(TrialSystemAttr.RETRY_HISTORY, []), failed.number]
    # A trial stopped by a signal (a scale-down, Ctrl-C) did nothing wrong: such stops
    # are always re-queued and never use up the retries that faults get.
    stops = failed.system_attrs.get(TrialSystemAttr.STOPPED_BY_SIGNAL, 0) + int(stopped)
    if not stopped and max_retry is not None and len(history) - stops > max_retry:
        log.warning("trial %d is not retried: it was retried %d times", failed.number, max_retry)
        return False
    if retries_of(study.get_trials(deepcopy=False), failed.number):
        return True
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

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        requeue_trial(study, trial, self.max_retry, "heartbeat stale")


def fail_running_trial(storage: RoutedRDBStorage, trial_id: int, reason: str) -> bool:
    """RUNNING -> FAIL with a ``fail_reason`` user attr, in one transaction.

    False when the trial was no longer RUNNING (its worker finished it, or
    another worker failed it first).
    """
    return storage.fail_if_running(trial_id, {TrialAttr.FAIL_REASON: reason})


def orphan_trial_ids(storage: RoutedRDBStorage, study_id: int) -> list[int]:
    """RUNNING trials that never sent a heartbeat.

    A tuner worker records a trial's first heartbeat under the claim lock, in
    the same claim as its ``ask``; seen under that lock, a RUNNING trial
    without a heartbeat lost its worker between the two.
    """
    last = storage.running_heartbeats(study_id).last
    return [tid for tid, beat in last.items() if beat is None]


def open_storage(url: str | None, settings: StorageSettings) -> ResilientRDBStorage:
    """The storage a worker uses: Optuna's own stale-trial check re-queues as ours does."""
    return make_storage(url, settings, on_stale_trial=RequeueStaleTrial(settings.max_retry))


# --- claims and outcomes -----------------------------------------------------------------


class ClaimKind(enum.Enum):
    """What a claim found."""

    TRIAL = "trial"  # a trial to run
    WAIT = "wait"  # none now, but a running trial may still die and come back as WAITING
    DONE = "done"  # the budget is spent


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    trial: optuna.Trial | None = None


@dataclass
class Outcome:
    """How a trial ended, before it is recorded."""

    state: TrialState
    value: float | None = None
    reason: str | None = None
    requeue: bool = False
    config_error: bool = False
    # Stopped by a signal: re-queued without using up a retry (see ``requeue_trial``).
    stopped: bool = False


def is_ours(current: FrozenTrial, outcome: Outcome) -> bool:
    """Whether a finished trial was finished by our tell (whose answer was lost)."""
    if current.state != outcome.state:
        return False
    if outcome.state == TrialState.FAIL:
        return current.user_attrs.get(TrialAttr.FAIL_REASON) == outcome.reason
    return True


STALE = "heartbeat stale: no heartbeat for more than {grace}s (its worker was killed or lost the database)"
ORPHANED = "orphaned: RUNNING without a heartbeat (its worker died while claiming it)"


# --- adopting a late result ------------------------------------------------------------


def adopt_late_result(
    study: optuna.Study, storage: RoutedRDBStorage, trial: optuna.Trial, outcome: Outcome
) -> int | None:
    """Finish the retry of ``trial`` with ``outcome``; the retry's number, or None if it cannot.

    For a trial that finished after another worker had failed it as stale: its
    retry has the same parameters, so the result is kept there rather than the
    work run again. Call it under the claim lock: a retry popped here is RUNNING
    without a heartbeat for a moment, which a claim would take for an orphan.
    """
    orphans = set(orphan_trial_ids(storage, study_id(study)))
    for t in retries_of(study.get_trials(deepcopy=False), trial.number):
        tid = trial_id(t)
        if t.state.is_finished():
            # Adopted by an earlier attempt whose answer was lost: done.
            return (
                t.number if t.user_attrs.get(TrialAttr.ADOPTED_RESULT_OF) == trial.number else None
            )
        if t.state == TrialState.RUNNING and tid not in orphans:
            return None  # its retry runs, with a heartbeat
        # WAITING, or RUNNING without a heartbeat under the lock: popped by an earlier
        # attempt of ours (answer lost), or by a claim that died; ours to finish.
        if t.state == TrialState.WAITING and not storage.set_trial_state_values(
            tid, state=TrialState.RUNNING
        ):
            return None  # another worker popped it first
        _copy_result(storage, trial, t, outcome)
        log.warning(
            "trial %d had been failed as stale; its result is kept as trial %d",
            trial.number,
            t.number,
        )
        return t.number
    return None


def _copy_result(
    storage: RoutedRDBStorage, trial: optuna.Trial, retry: FrozenTrial, outcome: Outcome
) -> None:
    """Write ``trial``'s attrs, intermediate values and outcome onto its RUNNING retry.

    The attrs that describe the failure (its reason, the retry's own labels) stay
    behind; ``adopted_result_of`` marks the copy, so a repeated attempt sees it done.
    """
    tid = trial_id(retry)
    old = storage.get_trial(trial_id(trial))
    for key, value in old.user_attrs.items():
        if key not in (TrialAttr.FAIL_REASON, TrialAttr.RETRY_OF, TrialAttr.RETRY_REASON):
            storage.set_trial_user_attr(tid, key, value)
    storage.set_trial_user_attr(tid, TrialAttr.ADOPTED_RESULT_OF, trial.number)
    for step, value in old.intermediate_values.items():
        storage.set_trial_intermediate_value(tid, step, value)
    if outcome.state == TrialState.PRUNED:
        storage.set_trial_user_attr(tid, TrialAttr.PRUNE_REASON, outcome.reason or "")
        storage.set_trial_state_values(tid, state=TrialState.PRUNED)
    else:
        value = float(outcome.value or 0.0)
        storage.set_trial_state_values(tid, state=TrialState.COMPLETE, values=[value])


# --- one worker's side of it ---------------------------------------------------------------


class TrialLifecycle:
    """One worker's trials of a study, from claim to record, with the retry protocol.

    Each public step is retried as a whole while the connection is down, for
    ``settings.retry_seconds`` (the storage calls inside it run once each).
    """

    def __init__(
        self,
        study: optuna.Study,
        storage: ResilientRDBStorage,
        *,
        n_trials: int,
        settings: StorageSettings,
        queue_only: bool = False,
    ) -> None:
        self.study = study
        self.storage = storage
        self.n_trials = n_trials
        self.settings = settings
        # Run only queued (WAITING) trials, never sample new ones: a companion study of
        # verify jobs (tuner.commands.verify), whose every trial was enqueued with its config.
        self.queue_only = queue_only
        # Trials this worker failed but has not re-queued yet (a lost connection between).
        self._unqueued: dict[int, str] = {}

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        return retry_transient(fn, seconds=self.settings.retry_seconds, what=what, logger=log)

    @property
    def heartbeats(self) -> bool:
        return self.storage.get_heartbeat_interval() is not None

    # --- claiming -----------------------------------------------------------------

    def claim(self) -> Claim:
        """A trial to run, or why there is none (the budget is spent, or wait for one)."""
        return self._retry(self._claim_once, "claiming a trial")

    def _claim_once(self) -> Claim:
        with claim_lock(self.storage, self.study.study_name) as locked:
            self.fail_stale(with_orphans=locked)
            trials = self.study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if waiting or (not self.queue_only and budget_used(trials) < self.n_trials):
                trial = self.study.ask()
                # The first heartbeat, under the lock: see `orphan_trial_ids`.
                if self.heartbeats:
                    self.storage.record_heartbeat(trial_id(trial))
                return Claim(ClaimKind.TRIAL, trial)
            if any(t.state == TrialState.RUNNING for t in trials):
                return Claim(ClaimKind.WAIT)
        return Claim(ClaimKind.DONE)

    def fail_stale(self, with_orphans: bool) -> list[int]:
        """Fail trials whose worker is gone, with the reason; re-queue them. Returns their numbers.

        Meant to run under the claim lock (orphans are only orphans there).
        """
        reasons: dict[int, str] = {}
        sid = study_id(self.study)
        if self.heartbeats:
            for tid in self.storage.stale_trial_ids(sid):
                reasons[tid] = STALE.format(grace=self.settings.grace_period)
        if with_orphans:
            for tid in orphan_trial_ids(self.storage, sid):
                reasons.setdefault(tid, ORPHANED)
        for tid, reason in reasons.items():
            # False: finished meanwhile, or another worker failed it first.
            if fail_running_trial(self.storage, tid, reason):
                self._unqueued[tid] = reason
        failed = []
        for tid, reason in list(self._unqueued.items()):
            frozen = self.storage.get_trial(tid)
            log.warning("trial %d failed: %s", frozen.number, reason)
            requeue_trial(self.study, frozen, self.settings.max_retry, reason.split(":")[0])
            del self._unqueued[tid]
            failed.append(frozen.number)
        return failed

    # --- running ------------------------------------------------------------------

    def begin(self, trial: optuna.Trial, user_attrs: dict[str, Any]) -> None:
        """Label a claimed trial (``user_attrs``, and ``retry_of`` for a retry)."""
        for key, value in user_attrs.items():
            trial.set_user_attr(key, value)
        history = self.storage.get_trial_system_attrs(trial_id(trial)).get(
            TrialSystemAttr.RETRY_HISTORY
        )
        if history and TrialAttr.RETRY_OF not in trial.user_attrs:
            trial.set_user_attr(TrialAttr.RETRY_OF, history[-1])

    def heartbeat(self, trial: optuna.Trial) -> Heartbeat:
        """The heartbeat thread to run around the trial."""
        return Heartbeat(self.storage, trial_id(trial), self.settings.heartbeat_interval)

    # --- recording ----------------------------------------------------------------

    def record(self, trial: optuna.Trial, outcome: Outcome) -> TrialState:
        """Tell the outcome; returns the state the trial ended in (its own or another's)."""
        state = outcome.state
        final, ours = self._retry(
            lambda: self._tell(trial, outcome), f"recording trial {trial.number}"
        )
        if ours:
            if outcome.requeue and final == TrialState.FAIL:
                self._retry(lambda: self._requeue(trial, outcome), "re-queueing the trial")
            return final
        if state != TrialState.FAIL:
            # Finished here after another worker had failed it as stale: keep the result.
            adopted = self._retry(lambda: self.adopt_retry(trial, outcome), "keeping the result")
            if adopted is not None:
                return state
            log.warning(
                "trial %d finished %s, but another worker had failed it as stale and its retry "
                "is already running; this result is dropped",
                trial.number,
                state.name,
            )
        return final

    def _tell(self, trial: optuna.Trial, outcome: Outcome) -> tuple[TrialState, bool]:
        """(final state, whether this worker set it)."""
        state = outcome.state
        current = self.storage.get_trial(trial_id(trial))
        if current.state.is_finished():  # failed as stale, or an earlier attempt committed
            return current.state, is_ours(current, outcome)
        try:
            if outcome.reason is not None and state in (TrialState.FAIL, TrialState.PRUNED):
                key = TrialAttr.FAIL_REASON if state == TrialState.FAIL else TrialAttr.PRUNE_REASON
                trial.set_user_attr(key, outcome.reason)
            if outcome.config_error:
                trial.set_user_attr(TrialAttr.CONFIG_ERROR, True)  # not counted in n_trials
            if state == TrialState.COMPLETE:
                frozen = self.study.tell(trial, outcome.value)
            else:
                frozen = self.study.tell(trial, state=state)
        except (UpdateFinishedTrialError, ValueError):
            current = self.storage.get_trial(trial_id(trial))
            if not current.state.is_finished():
                raise
            return current.state, False  # another worker failed it in between
        return frozen.state, True

    def _requeue(self, trial: optuna.Trial, outcome: Outcome) -> None:
        frozen = self.storage.get_trial(trial_id(trial))
        reason = outcome.reason or ""
        requeue_trial(self.study, frozen, self.settings.max_retry, reason, stopped=outcome.stopped)

    def adopt_retry(self, trial: optuna.Trial, outcome: Outcome) -> int | None:
        """Record ``outcome`` on the WAITING retry of ``trial`` (same parameters); its number.

        Under the claim lock: for a moment the retry is RUNNING without a heartbeat,
        which a claim would otherwise take for an orphan.
        """
        with claim_lock(self.storage, self.study.study_name):
            return adopt_late_result(self.study, self.storage, trial, outcome)
