"""A worker: load or create the study, run trials until the global budget is spent.

The trial lifecycle (claiming under the lock, failing stale and orphaned trials,
re-queueing, recording, adopting a late result) is :mod:`tuner.trial.lifecycle`; this
module is the loop around it and what a signal does to it:

- SIGTERM or SIGINT: the running trial stops at its next step, is recorded as
  FAIL with the reason and re-queued, and the process exits cleanly; a second
  signal interrupts the trial at once (it is still recorded, never left RUNNING).
- A trial's every way of ending (pruned, failed, a configuration error, a lost
  connection, failed as stale by another worker) becomes an :class:`Outcome`;
  the worker goes on to the next trial, and stops at its ``CONFIG_ERROR_LIMIT``-th
  trial failed on a configuration error, whatever the errors say.

:class:`Worker` is built around a :class:`Trials` (the lifecycle, or a stand-in)
and opens no database itself; :meth:`Worker.open` opens the storage and the study.
Its :class:`WorkerRole` says what it runs: the study's own trials (tuning), or the
jobs queued in a companion study (``tuner.commands.verify.jobs.VERIFYING``).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from tuner.base.errors import ConfigError
from tuner.base.settings import DEFAULT_RUNS, StorageSettings
from tuner.config.spec import StudySpec
from tuner.config.study import load_study, worker_seed
from tuner.storage.rdb import worker_name
from tuner.storage.record import TrialAttr
from tuner.storage.retry import first_line, is_transient, raised_at, retry_transient
from tuner.trial.lifecycle import (
    Claim,
    ClaimKind,
    Outcome,
    Planner,
    TrialLifecycle,
    open_storage,
)
from tuner.trial.objective import TrialFailed, objective
from tuner.trial.progress import TrialHooks
from tuner.trial.training import resolve_device

log = logging.getLogger("tuner.commands.worker")

ObjectiveFn = Callable[..., float]


# A worker that has seen this many trials fail on a configuration error stops (exit 2),
# whatever the errors say: the file is wrong, and such trials do not count against
# n_trials, so nothing else would stop it. (Counted, not compared: a searched value out
# of range fails each trial with another value in its message.)
CONFIG_ERROR_LIMIT = 3


@dataclass(frozen=True)
class WorkerRole:
    """What a worker runs: the study's own trials, or jobs queued for it.

    One object instead of options spread over the command line: the worker asks
    its role, never the study's name, what its trials are and what to say at the end.
    """

    # Run WAITING trials only; never sample a new one (the queue is the budget).
    queue_only: bool = False
    objective_fn: ObjectiveFn = objective
    # After the run: a summary of the study to print (``None``: nothing to add).
    conclude: Callable[[optuna.Study], str | None] | None = None
    # Queues trials under the claim lock before each claim (a population's units).
    planner: Planner | None = None

    def budget(self, spec: StudySpec) -> str:
        """The budget the worker works through, for its first line."""
        if self.planner is not None and spec.pbt is not None:
            return f"{spec.n_trials} units ({spec.pbt.population} members)"
        return "its queued jobs" if self.queue_only else f"{spec.n_trials} trials"


# Sample and train new trials until the study's n_trials are spent.
TUNING = WorkerRole()


class Trials(Protocol):
    """What the worker's loop needs of a study's trials (:class:`TrialLifecycle`)."""

    study: optuna.Study

    def claim(self) -> Claim: ...

    def begin(self, trial: optuna.Trial, user_attrs: dict[str, Any]) -> None: ...

    def heartbeat(self, trial: optuna.Trial) -> AbstractContextManager[Any]: ...

    def record(self, trial: optuna.Trial, outcome: Outcome) -> TrialState: ...


class WorkerInterrupted(BaseException):
    """A second SIGTERM/SIGINT during a trial: stop it now.

    Not a ``KeyboardInterrupt``: CPython remembers one raised inside code run by
    an extension (torch) and kills the process with SIGINT at exit even when it
    was handled. A ``BaseException``, so that no ``except Exception`` swallows it.
    """


def _already_stopping(signum: int, _frame: Any) -> None:
    log.warning("%s received: the worker is already stopping", signal.Signals(signum).name)


@dataclass
class WorkerSummary:
    """What one worker did, for its summary line and for tests."""

    finished: list[tuple[int, str, float | None]] = field(default_factory=list)
    stopped_by: str | None = None
    # Set when the worker stopped because its trials kept failing on the configuration.
    config_error: str | None = None
    config_errors: int = 0  # trials this worker saw fail on a configuration error
    # The study's n_trials are all used (by any worker): nothing was left to claim.
    budget_spent: bool = False

    def count(self, state: str) -> int:
        return sum(1 for _, s, _ in self.finished if s == state)


def outcome_of(err: BaseException, number: int, signal_name: str | None) -> Outcome:
    """The :class:`Outcome` of trial ``number`` that raised ``err`` (called while handling it).

    ``signal_name``: the signal the worker is stopping for, if any; a trial it stopped
    is re-queued without using up a retry.
    """
    if isinstance(err, optuna.TrialPruned):
        return Outcome(TrialState.PRUNED, reason=str(err))
    if isinstance(err, TrialFailed):
        stopped = signal_name is not None
        return Outcome(TrialState.FAIL, reason=str(err), requeue=stopped, stopped=stopped)
    if isinstance(err, ConfigError):
        return Outcome(TrialState.FAIL, reason=f"configuration error: {err}", config_error=True)
    if isinstance(err, WorkerInterrupted):
        reason = f"worker stopped: {signal_name or 'SIGINT'} received twice"
        return Outcome(TrialState.FAIL, reason=reason, requeue=True, stopped=True)
    if isinstance(err, UpdateFinishedTrialError):
        # Another worker failed this trial as stale (and re-queued it) while it ran.
        return Outcome(TrialState.FAIL, reason="failed by another worker while running")
    if is_transient(err):
        log.warning("trial %d lost the database in %s: %s", number, raised_at(err), first_line(err))
        reason = f"storage connection lost: {first_line(err)}"
        return Outcome(TrialState.FAIL, reason=reason, requeue=True)
    log.exception("trial %d failed", number)
    return Outcome(TrialState.FAIL, reason=f"{type(err).__name__}: {err}")


class Worker:
    """Runs trials of one study until the budget, a limit or a signal stops it."""

    def __init__(
        self,
        spec: StudySpec,
        trials: Trials,
        *,
        seed: int = 0,
        device: str = "cpu",
        max_trials: int | None = None,
        timeout: float | None = None,
        progress: TrialHooks | None = None,
        runs_dir: Path = DEFAULT_RUNS,
        role: WorkerRole = TUNING,
        objective_fn: ObjectiveFn | None = None,
        wait_seconds: float = 2.0,
    ) -> None:
        self.spec = spec
        self.trials = trials
        self.seed = seed
        self.device = device
        self.max_trials = max_trials
        self.timeout = timeout
        self.progress = progress
        self.runs_dir = runs_dir
        self.role = role
        # ``objective_fn``: a stand-in for the role's objective (tests, benchmarks).
        self.objective = objective_fn or role.objective_fn
        # How long to linger when no trial is free but a running one may come back.
        self.wait_seconds = wait_seconds
        self.summary = WorkerSummary()
        self.name = worker_name()
        self._signal: str | None = None
        self._signals = 0
        self._interruptible = False

    @classmethod
    def open(
        cls,
        spec: StudySpec,
        storage_url: str | None = None,
        *,
        max_trials: int | None = None,
        timeout: float | None = None,
        device: str = "auto",
        worker_index: int | None = None,
        settings: StorageSettings | None = None,
        progress: TrialHooks | None = None,
        runs_dir: Path = DEFAULT_RUNS,
        role: WorkerRole = TUNING,
        objective_fn: ObjectiveFn | None = None,
        accept_changes: bool = False,
    ) -> Worker:
        """A worker on the study of ``spec`` in the storage at ``storage_url``.

        Opens the storage and creates or loads the study with this worker's sampler
        seed (``worker_index`` picks the seed and the GPU).
        """
        settings = settings or StorageSettings()
        if spec.pbt is not None and role.planner is None:
            raise ValueError(
                f"study {spec.study_name!r} is population-based: open its worker in the "
                "population role (tuner.commands.tune.population_role)"
            )
        resolved = resolve_device(device, worker_index)  # a bad --device: nothing written yet
        storage = open_storage(storage_url, settings)
        seed = worker_seed(spec, worker_index)
        study = retry_transient(
            lambda: load_study(spec, storage, seed, accept_changes=accept_changes),
            seconds=settings.retry_seconds,
            what="loading the study",
            logger=log,
        )
        trials = TrialLifecycle(
            study,
            storage,
            n_trials=spec.n_trials,
            settings=settings,
            queue_only=role.queue_only,
            planner=role.planner,
        )
        return cls(
            spec,
            trials,
            seed=seed,
            device=resolved,
            max_trials=max_trials,
            timeout=timeout,
            progress=progress,
            runs_dir=runs_dir,
            role=role,
            objective_fn=objective_fn,
            wait_seconds=min(2.0, settings.heartbeat_interval),
        )

    @property
    def study(self) -> optuna.Study:
        return self.trials.study

    def conclude(self) -> str | None:
        """What the worker's role has to say about the study once the run is over."""
        return self.role.conclude(self.study) if self.role.conclude else None

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

    # --- running ------------------------------------------------------------------

    def _objective(self, trial: optuna.Trial) -> float:
        progress = self.progress
        if progress is not None:
            progress.on_trial_start(trial.number)
        return self.objective(
            trial,
            self.spec,
            device=self.device,
            runs_dir=self.runs_dir,
            should_stop=self._should_stop,
            progress=progress,
        )

    def _execute(self, trial: optuna.Trial) -> Outcome:
        """Run the objective; every way it can end becomes an :class:`Outcome`."""
        try:
            self.trials.begin(
                trial, {TrialAttr.WORKER: self.name, TrialAttr.WORKER_SEED: self.seed}
            )
            self._interruptible = True
            try:
                value = self._objective(trial)
            finally:
                self._interruptible = False
            return Outcome(TrialState.COMPLETE, value)
        except (Exception, WorkerInterrupted) as err:  # a bad combination must not stop us
            return outcome_of(err, trial.number, self._signal)

    def _run_one(self, trial: optuna.Trial) -> tuple[str, float | None, str | None]:
        """(final state, value, the configuration error that failed it or None)."""
        with self.trials.heartbeat(trial):
            outcome = self._execute(trial)
        final = self.trials.record(trial, outcome)
        value = outcome.value if final == TrialState.COMPLETE else None
        return final.name, value, outcome.reason if outcome.config_error else None

    def _config_errors_exhausted(self, errors: list[str]) -> bool:
        """Whether this worker has seen ``CONFIG_ERROR_LIMIT`` configuration failures: stop then."""
        if len(errors) < CONFIG_ERROR_LIMIT:
            return False
        self.summary.config_error, self.summary.config_errors = errors[-1], len(errors)
        log.error(
            "%d trials failed on a configuration error; the last: %s", len(errors), errors[-1]
        )
        return True

    def _limit_reached(self, start: float) -> bool:
        if self.max_trials is not None and len(self.summary.finished) >= self.max_trials:
            return True
        return self.timeout is not None and time.monotonic() - start > self.timeout

    def _trial_ended(self, trial: optuna.Trial, state: str, value: float | None, t0: float) -> None:
        """Tell the progress hooks; a progress line is not worth a worker lost to a lost connection."""
        if not self.progress:
            return
        try:
            self.progress.on_trial_end(
                self.study, trial.number, state, value, time.monotonic() - t0
            )
        except Exception as err:
            if not is_transient(err):
                raise
            log.warning("progress line skipped: %s", first_line(err))

    def run(self) -> WorkerSummary:
        handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        start = time.monotonic()
        config_errors: list[str] = []
        try:
            while not self._signal and not self._limit_reached(start):
                claim = self.trials.claim()
                if claim.kind == ClaimKind.DONE:
                    self.summary.budget_spent = True
                    break
                if claim.kind == ClaimKind.WAIT or claim.trial is None:
                    time.sleep(self.wait_seconds)
                    continue
                trial, t0 = claim.trial, time.monotonic()
                state, value, config_error = self._run_one(trial)
                self.summary.finished.append((trial.number, state, value))
                if config_error:
                    config_errors.append(config_error)
                if self._config_errors_exhausted(config_errors):
                    break
                self._trial_ended(trial, state, value, t0)
        finally:
            for s, h in handlers.items():
                # Stopped by a signal: the process is on its way out, and a repeated
                # Ctrl-C or SIGTERM must not turn a clean exit into a traceback.
                signal.signal(s, _already_stopping if self._signal else h)
        self.summary.stopped_by = self._signal
        return self.summary
