"""A worker: load or create the study, run trials until the global budget is spent.

Why not ``study.optimize(n_trials=...)``: its ``n_trials`` counts this process's
trials only. Here ``n_trials`` from the study file is global. A worker claims
a trial under a lock (a PostgreSQL advisory lock, or a file lock beside a
SQLite file) after counting the study's trials, so several workers stop
together at exactly ``n_trials``. A trial re-queued after its worker died takes
the dead trial's place in the count rather than adding one.

The worker keeps Optuna's own semantics around each trial: a heartbeat thread
while it runs, stale trials failed (and re-queued) before each claim, and
``tell`` with COMPLETE, PRUNED or FAIL. SIGTERM or SIGINT stops the running
trial at its next step: it is recorded as FAIL with the reason, re-queued for
another worker, and the process exits cleanly.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import signal
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import get_heartbeat_thread
from optuna.trial import TrialState
from sqlalchemy.engine import make_url

from tuner.objective import TrialFailed, objective
from tuner.spec import StudySpec
from tuner.storage import StorageSettings, make_storage
from tuner.study import load_study, worker_seed
from tuner.training import resolve_device

log = logging.getLogger("tuner.worker")
# We run the heartbeat around ask/tell ourselves, as Study.optimize does.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")

RETRYABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    optuna.exceptions.StorageInternalError,
)


def retry_storage(fn: Callable[[], Any], attempts: int = 8, what: str = "storage call") -> Any:
    """Run ``fn``, retrying with backoff while the database connection is down.

    This is what keeps a finished trial when PostgreSQL restarts under a worker:
    ``pool_pre_ping`` replaces dead connections, and the write is tried again.
    """
    for attempt in range(attempts):
        try:
            return fn()
        except RETRYABLE as err:
            if attempt == attempts - 1:
                raise
            delay = min(0.5 * 2**attempt, 8.0)
            log.warning("%s failed (%s); retrying in %.1fs", what, type(err).__name__, delay)
            time.sleep(delay)
    return None


def budget_used(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Trials that count towards ``n_trials``: all but those re-queued as a retry."""
    retried: set[int] = set()
    for t in trials:
        retried.update(t.system_attrs.get("retry_history", []))
    return sum(1 for t in trials if t.number not in retried)


@contextlib.contextmanager
def claim_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    """Serialize claims across workers: advisory lock on PostgreSQL, flock on SQLite."""
    url = make_url(storage.url)
    backend = url.get_backend_name()
    if backend == "postgresql":
        key = zlib.crc32(f"kalaha-tuner:{study_name}".encode())
        with storage.engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    elif backend == "sqlite" and url.database and url.database != ":memory:":
        with open(Path(url.database).with_suffix(".lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
    else:
        yield


@dataclass
class WorkerReport:
    """What one worker did, for its summary line and for tests."""

    finished: list[tuple[int, str, float | None]] = field(default_factory=list)
    stopped_by: str | None = None

    def count(self, state: str) -> int:
        return sum(1 for _, s, _ in self.finished if s == state)


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
        reporter: Any = None,
    ) -> None:
        self.spec = spec
        self.settings = settings or StorageSettings()
        self.storage = make_storage(storage_url, self.settings)
        self.seed = worker_seed(spec, worker_index)
        self.study = retry_storage(lambda: load_study(spec, self.storage, self.seed))
        self.max_trials = max_trials
        self.timeout = timeout
        self.device = resolve_device(device, worker_index)
        self.reporter = reporter
        self.report = WorkerReport()
        self._signal: str | None = None

    # --- signals ------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        name = signal.Signals(signum).name
        if self._signal is not None:
            raise KeyboardInterrupt(name)  # a second signal: stop now
        self._signal = name
        log.warning("%s received: stopping after the current step", name)

    def _should_stop(self) -> str | None:
        return f"{self._signal} received" if self._signal else None

    # --- trials -------------------------------------------------------------------

    def _fail_stale(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)
            optuna.storages.fail_stale_trials(self.study)

    def _claim(self) -> optuna.Trial | str | None:
        """A trial to run, ``None`` when the budget is spent, ``"wait"`` to linger."""
        retry_storage(self._fail_stale, what="failing stale trials")
        with claim_lock(self.storage, self.spec.study_name):
            trials = self.study.get_trials(deepcopy=False)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if waiting or budget_used(trials) < self.spec.n_trials:
                return self.study.ask()
            if any(t.state == TrialState.RUNNING for t in trials):
                return "wait"  # a running trial may still die and come back as WAITING
        return None

    def _requeue(self, trial: optuna.Trial) -> None:
        frozen = self.storage.get_trial(trial._trial_id)
        RetryHeartbeatStaleTrialCallback(max_retry=self.settings.max_retry)(self.study, frozen)

    def _run_one(self, trial: optuna.Trial) -> tuple[str, float | None]:
        trial.set_user_attr("worker_seed", self.seed)
        failed_trial = self.storage.get_trial_system_attrs(trial._trial_id).get("failed_trial")
        if failed_trial is not None:
            trial.set_user_attr("retry_of", failed_trial)
        reporter = self.reporter
        with get_heartbeat_thread(trial._trial_id, self.storage):
            state, value, reason = TrialState.COMPLETE, None, None
            try:
                value = objective(
                    trial,
                    self.spec,
                    device=self.device,
                    should_stop=self._should_stop,
                    on_evaluation=reporter.on_evaluation if reporter else None,
                    on_step=reporter.on_step if reporter else None,
                )
            except optuna.TrialPruned as err:
                state, reason = TrialState.PRUNED, str(err)
            except TrialFailed as err:
                state, reason = TrialState.FAIL, str(err)
            except Exception as err:  # a bad combination must not stop the worker
                log.exception("trial %d failed", trial.number)
                state, reason = TrialState.FAIL, f"{type(err).__name__}: {err}"

        def record() -> None:
            if reason is not None:
                trial.set_user_attr(
                    "fail_reason" if state == TrialState.FAIL else "prune_reason", reason
                )
            if state == TrialState.COMPLETE:
                self.study.tell(trial, value)
            else:
                self.study.tell(trial, state=state)

        retry_storage(record, what=f"recording trial {trial.number}")
        if state == TrialState.FAIL and self._signal:
            retry_storage(lambda: self._requeue(trial), what="re-queueing the stopped trial")
        return state.name, value

    def run(self) -> WorkerReport:
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        start = time.monotonic()
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
                state, value = self._run_one(trial)
                self.report.finished.append((trial.number, state, value))
                if self.reporter:
                    self.reporter.on_trial_end(
                        self.study, trial.number, state, value, time.monotonic() - t0
                    )
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
        self.report.stopped_by = self._signal
        return self.report
