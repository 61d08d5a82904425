"""A worker: load or create the study, run trials until the global budget is spent.

Why not ``study.optimize(n_trials=...)``: its ``n_trials`` counts this process's
trials only. Here ``n_trials`` from the study file is global. A worker claims
a trial under a lock (a PostgreSQL advisory lock, or a file lock beside a
SQLite file) after counting the study's trials, so several workers stop
together at exactly ``n_trials``. A trial re-queued after its worker died takes
the dead trial's place in the count rather than adding one.

Faults, and what a worker does about them:

- A worker is killed (SIGKILL, OOM, preemption): its trial's heartbeat stops.
  Every claim first fails the RUNNING trials whose heartbeat is older than the
  grace period, with the reason, and re-queues each as a WAITING trial with the
  same parameters and a ``retry_of`` attr (up to ``max_retry`` times).
- A worker dies between ``ask`` and the trial's first heartbeat: the claim
  records that first heartbeat under the claim lock, so a RUNNING trial without
  one, seen under the lock, is an orphan; it is failed and re-queued the same way.
- SIGTERM or SIGINT: the running trial stops at its next step, is recorded as
  FAIL with the reason and re-queued, and the process exits cleanly; a second
  signal interrupts the trial at once (it is still recorded, never left RUNNING).
- The connection drops or PostgreSQL restarts: every storage call is retried
  while the connection is down (:class:`tuner.storage.ResilientRDBStorage`), the
  heartbeat thread keeps trying, and the claim is retried as a whole.
- A trial that finishes after another worker failed it as stale (its heartbeat
  lapsed while the database was away) adopts its own WAITING retry, so the
  result is kept rather than run again.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import signal
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from tuner.errors import ConfigError
from tuner.objective import TrialFailed, objective
from tuner.progress import TrialHooks
from tuner.record import TrialAttr, TrialSystemAttr
from tuner.settings import DEFAULT_RUNS
from tuner.spec import StudySpec
from tuner.storage import (
    StorageSettings,
    first_line,
    is_transient,
    make_storage,
    raised_at,
    requeue_trial,
    retry_transient,
    worker_name,
)
from tuner.study import load_study, worker_seed
from tuner.training import resolve_device

log = logging.getLogger("tuner.worker")

ObjectiveFn = Callable[..., float]


# A worker whose trials fail this many times in a row with the same configuration
# error stops (exit 2): the file is wrong, and every further trial would fail too.
CONFIG_ERROR_STREAK = 2


def budget_used(trials: list[optuna.trial.FrozenTrial]) -> int:
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


class Heartbeat:
    """Optuna's heartbeat for one trial, in a thread that outlives a lost connection.

    Optuna's own thread dies at the first failed write, and its trial is then
    failed as stale while it still runs; this one logs and tries again at the
    next beat.
    """

    def __init__(self, storage: RDBStorage, trial_id: int, interval: float) -> None:
        self.storage = storage
        self.trial_id = trial_id
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self.failures = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
                if self.failures:
                    log.warning("heartbeat of trial id %d is back", self.trial_id)
                self.failures = 0
            except Exception as err:
                if self.failures == 0:
                    log.warning("heartbeat failed (%s); trying again", first_line(err))
                self.failures += 1

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class WorkerInterrupted(BaseException):
    """A second SIGTERM/SIGINT during a trial: stop it now.

    Not a ``KeyboardInterrupt``: CPython remembers one raised inside code run by
    an extension (torch) and kills the process with SIGINT at exit even when it
    was handled. A ``BaseException``, so that no ``except Exception`` swallows it.
    """


def _already_stopping(signum: int, _frame: Any) -> None:
    log.warning("%s received: the worker is already stopping", signal.Signals(signum).name)


@dataclass
class WorkerReport:
    """What one worker did, for its summary line and for tests."""

    finished: list[tuple[int, str, float | None]] = field(default_factory=list)
    stopped_by: str | None = None
    # Set when the worker stopped because its trials kept failing on the configuration.
    config_error: str | None = None

    def count(self, state: str) -> int:
        return sum(1 for _, s, _ in self.finished if s == state)


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


class Worker:
    """Runs trials of one study until the budget, a limit or a signal stops it."""

    def __init__(
        self,
        spec: StudySpec,
        storage_url: str | None = None,
        *,
        max_trials: int | None = None,
        timeout: float | None = None,
        device: str = "auto",
        worker_index: int | None = None,
        settings: StorageSettings | None = None,
        reporter: TrialHooks | None = None,
        runs_dir: Path = DEFAULT_RUNS,
        objective_fn: ObjectiveFn | None = None,
        accept_changes: bool = False,
        queue_only: bool = False,
    ) -> None:
        self.spec = spec
        self.settings = settings or StorageSettings()
        self.device = resolve_device(device, worker_index)  # a bad --device: nothing written yet
        self.storage = make_storage(storage_url, self.settings)
        self.seed = worker_seed(spec, worker_index)
        self.study = self._retry(
            lambda: load_study(spec, self.storage, self.seed, accept_changes=accept_changes),
            "loading the study",
        )
        self.max_trials = max_trials
        self.timeout = timeout
        self.reporter = reporter
        self.runs_dir = runs_dir
        self.objective = objective_fn or objective
        # Run only queued (WAITING) trials, never sample new ones: a companion study of
        # verify jobs (tuner.verify), whose every trial was enqueued with its config.
        self.queue_only = queue_only
        self.report = WorkerReport()
        self.name = worker_name()
        self._signal: str | None = None
        self._signals = 0
        self._interruptible = False

    def _retry(self, fn: Callable[[], Any], what: str) -> Any:
        return retry_transient(fn, seconds=self.settings.retry_seconds, what=what, logger=log)

    # --- signals ------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        self._signals += 1
        if self._signal is None:
            self._signal = name
            log.warning("%s received: stopping after the current step", name)
            return
        if self._interruptible:
            # A second signal: stop the trial now; it is still recorded and re-queued.
            self._interruptible = False
            raise WorkerInterrupted(name)
        log.warning("%s received again: already stopping", name)

    def _should_stop(self) -> str | None:
        return f"{self._signal} received" if self._signal else None

    # --- stale trials -------------------------------------------------------------

    def _fail_stale(self, with_orphans: bool) -> list[int]:
        """Fail trials whose worker is gone, with the reason; re-queue them. Returns their numbers."""
        storage = self.storage
        study_id = self.study._study_id
        grace = self.settings.grace_period
        reasons: dict[int, str] = {}
        if storage.get_heartbeat_interval() is not None:
            for tid in storage._get_stale_trial_ids(study_id):
                reasons[tid] = (
                    f"heartbeat stale: no heartbeat for more than {grace}s "
                    "(its worker was killed or lost the database)"
                )
        if with_orphans:
            for tid in storage.orphan_trial_ids(study_id):
                reasons.setdefault(
                    tid, "orphaned: RUNNING without a heartbeat (its worker died while claiming it)"
                )
        failed = []
        for tid, reason in reasons.items():
            if not storage.fail_running_trial(tid, reason):
                continue  # finished meanwhile, or another worker failed it first
            frozen = storage.get_trial(tid)
            log.warning("trial %d failed: %s", frozen.number, reason)
            requeue_trial(self.study, frozen, self.settings.max_retry, reason.split(":")[0])
            failed.append(frozen.number)
        return failed

    # --- claiming -----------------------------------------------------------------

    def _claim_once(self) -> optuna.Trial | str | None:
        with claim_lock(self.storage, self.spec.study_name) as locked:
            self._fail_stale(with_orphans=locked)
            trials = self.study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if waiting or (not self.queue_only and budget_used(trials) < self.spec.n_trials):
                trial = self.study.ask()
                # The first heartbeat, under the lock: see `orphan_trial_ids`.
                if self.storage.get_heartbeat_interval() is not None:
                    self.storage.record_heartbeat(trial._trial_id)
                return trial
            if any(t.state == TrialState.RUNNING for t in trials):
                return "wait"  # a running trial may still die and come back as WAITING
        return None

    def _claim(self) -> optuna.Trial | str | None:
        """A trial to run, ``None`` when the budget is spent, ``"wait"`` to linger."""
        return self._retry(self._claim_once, "claiming a trial")

    # --- running ------------------------------------------------------------------

    def _objective(self, trial: optuna.Trial) -> float:
        reporter = self.reporter
        if reporter is not None:
            reporter.on_trial_start(trial.number)
        return self.objective(
            trial,
            self.spec,
            device=self.device,
            runs_dir=self.runs_dir,
            should_stop=self._should_stop,
            reporter=reporter,
        )

    def _execute(self, trial: optuna.Trial) -> Outcome:
        """Run the objective; every way it can end becomes an :class:`Outcome`."""
        try:
            trial.set_user_attr(TrialAttr.WORKER, self.name)
            trial.set_user_attr(TrialAttr.WORKER_SEED, self.seed)
            system_attrs = self.storage.get_trial_system_attrs(trial._trial_id)
            history = system_attrs.get(TrialSystemAttr.RETRY_HISTORY)
            if history and TrialAttr.RETRY_OF not in trial.user_attrs:
                trial.set_user_attr(TrialAttr.RETRY_OF, history[-1])
            self._interruptible = True
            try:
                value = self._objective(trial)
            finally:
                self._interruptible = False
            return Outcome(TrialState.COMPLETE, value)
        except optuna.TrialPruned as err:
            return Outcome(TrialState.PRUNED, reason=str(err))
        except TrialFailed as err:
            stopped = self._signal is not None
            return Outcome(TrialState.FAIL, reason=str(err), requeue=stopped, stopped=stopped)
        except ConfigError as err:
            reason = f"configuration error: {err}"
            return Outcome(TrialState.FAIL, reason=reason, config_error=True)
        except WorkerInterrupted:
            name = self._signal or "SIGINT"
            return Outcome(
                TrialState.FAIL,
                reason=f"worker stopped: {name} received twice",
                requeue=True,
                stopped=True,
            )
        except UpdateFinishedTrialError:
            # Another worker failed this trial as stale (and re-queued it) while it ran.
            return Outcome(TrialState.FAIL, reason="failed by another worker while running")
        except Exception as err:  # a bad combination must not stop the worker
            if is_transient(err):
                log.warning(
                    "trial %d lost the database in %s: %s",
                    trial.number,
                    raised_at(err),
                    first_line(err),
                )
                reason = f"storage connection lost: {first_line(err)}"
                return Outcome(TrialState.FAIL, reason=reason, requeue=True)
            log.exception("trial %d failed", trial.number)
            return Outcome(TrialState.FAIL, reason=f"{type(err).__name__}: {err}")

    def _record(self, trial: optuna.Trial, outcome: Outcome) -> TrialState:
        """Tell the outcome; returns the state the trial ended in (its own or another's)."""
        storage = self.storage
        state = outcome.state

        def record() -> tuple[TrialState, bool]:
            """(final state, whether this worker set it)."""
            current = storage.get_trial(trial._trial_id)
            if current.state.is_finished():  # failed as stale, or an earlier attempt committed
                return current.state, self._is_ours(current, outcome)
            try:
                if outcome.reason is not None and state in (TrialState.FAIL, TrialState.PRUNED):
                    key = (
                        TrialAttr.FAIL_REASON
                        if state == TrialState.FAIL
                        else TrialAttr.PRUNE_REASON
                    )
                    trial.set_user_attr(key, outcome.reason)
                if outcome.config_error:
                    trial.set_user_attr(TrialAttr.CONFIG_ERROR, True)  # not counted in n_trials
                if state == TrialState.COMPLETE:
                    frozen = self.study.tell(trial, outcome.value)
                else:
                    frozen = self.study.tell(trial, state=state)
            except (UpdateFinishedTrialError, ValueError):
                current = storage.get_trial(trial._trial_id)
                if not current.state.is_finished():
                    raise
                return current.state, False  # another worker failed it in between
            return frozen.state, True

        final, ours = self._retry(record, f"recording trial {trial.number}")
        if ours:
            if outcome.requeue and final == TrialState.FAIL:
                frozen = storage.get_trial(trial._trial_id)
                self._retry(
                    lambda: requeue_trial(
                        self.study,
                        frozen,
                        self.settings.max_retry,
                        outcome.reason or "",
                        stopped=outcome.stopped,
                    ),
                    "re-queueing the trial",
                )
            return final
        if state != TrialState.FAIL:
            # Finished here after another worker had failed it as stale: keep the result.
            adopted = self._retry(lambda: self._adopt_retry(trial, outcome), "keeping the result")
            if adopted is not None:
                return state
            log.warning(
                "trial %d finished %s, but another worker had failed it as stale and its retry "
                "is already running; this result is dropped",
                trial.number,
                state.name,
            )
        return final

    @staticmethod
    def _is_ours(current: optuna.trial.FrozenTrial, outcome: Outcome) -> bool:
        """Whether a finished trial was finished by our tell (whose answer was lost)."""
        if current.state != outcome.state:
            return False
        if outcome.state == TrialState.FAIL:
            return current.user_attrs.get(TrialAttr.FAIL_REASON) == outcome.reason
        return True

    def _adopt_retry(self, trial: optuna.Trial, outcome: Outcome) -> int | None:
        """Record ``outcome`` on the WAITING retry of ``trial`` (same parameters); its number.

        Under the claim lock: for a moment the retry is RUNNING without a heartbeat,
        which a claim would otherwise take for an orphan.
        """
        with claim_lock(self.storage, self.spec.study_name):
            return self._adopt_retry_locked(trial, outcome)

    def _adopt_retry_locked(self, trial: optuna.Trial, outcome: Outcome) -> int | None:
        storage = self.storage
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            if t.system_attrs.get(TrialSystemAttr.RETRY_HISTORY, [None])[-1] != trial.number:
                continue
            if not storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return None  # another worker popped it first
            old = storage.get_trial(trial._trial_id)
            for key, value in old.user_attrs.items():
                if key not in (TrialAttr.FAIL_REASON, TrialAttr.RETRY_OF, TrialAttr.RETRY_REASON):
                    storage.set_trial_user_attr(t._trial_id, key, value)
            storage.set_trial_user_attr(t._trial_id, TrialAttr.ADOPTED_RESULT_OF, trial.number)
            for step, value in old.intermediate_values.items():
                storage.set_trial_intermediate_value(t._trial_id, step, value)
            if outcome.state == TrialState.PRUNED:
                storage.set_trial_user_attr(
                    t._trial_id, TrialAttr.PRUNE_REASON, outcome.reason or ""
                )
                storage.set_trial_state_values(t._trial_id, state=TrialState.PRUNED)
            else:
                storage.set_trial_state_values(
                    t._trial_id, state=TrialState.COMPLETE, values=[float(outcome.value or 0.0)]
                )
            log.warning(
                "trial %d had been failed as stale; its result is kept as trial %d",
                trial.number,
                t.number,
            )
            return t.number
        return None

    def _run_one(self, trial: optuna.Trial) -> tuple[str, float | None, str | None]:
        """(final state, value, the configuration error that failed it or None)."""
        interval = self.settings.heartbeat_interval
        with Heartbeat(self.storage, trial._trial_id, interval):
            outcome = self._execute(trial)
        final = self._record(trial, outcome)
        value = outcome.value if final == TrialState.COMPLETE else None
        return final.name, value, outcome.reason if outcome.config_error else None

    def _config_error_streak(self, errors: list[str]) -> bool:
        """Whether the last trials all failed with one configuration error: stop then."""
        last = errors[-CONFIG_ERROR_STREAK:]
        if len(last) < CONFIG_ERROR_STREAK or len(set(last)) != 1:
            return False
        self.report.config_error = last[0]
        log.error("%d trials in a row failed with: %s", CONFIG_ERROR_STREAK, last[0])
        return True

    def run(self) -> WorkerReport:
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        start = time.monotonic()
        config_errors: list[str] = []
        try:
            while not self._signal:
                if self.max_trials is not None and len(self.report.finished) >= self.max_trials:
                    break
                if self.timeout is not None and time.monotonic() - start > self.timeout:
                    break
                claimed = self._claim()
                if claimed is None:
                    break
                if claimed == "wait":
                    time.sleep(min(2.0, self.settings.heartbeat_interval))
                    continue
                trial = claimed
                t0 = time.monotonic()
                state, value, config_error = self._run_one(trial)
                self.report.finished.append((trial.number, state, value))
                config_errors = [*config_errors, config_error] if config_error else []
                if self._config_error_streak(config_errors):
                    break
                if self.reporter:
                    try:
                        self.reporter.on_trial_end(
                            self.study, trial.number, state, value, time.monotonic() - t0
                        )
                    except Exception as err:
                        if not is_transient(err):
                            raise
                        log.warning("progress line skipped: %s", first_line(err))
        finally:
            for s, h in handlers.items():
                # Stopped by a signal: the process is on its way out, and a repeated
                # Ctrl-C or SIGTERM must not turn a clean exit into a traceback.
                signal.signal(s, _already_stopping if self._signal else h)
        self.report.stopped_by = self._signal
        return self.report
