"""The worker's loop without a database: claims, outcomes, limits and signals.

:class:`~tuner.commands.worker.Worker` is built around a :class:`~tuner.commands.worker.Trials`; here
a stand-in over an in-memory Optuna study, so that nothing but the loop is tested.
The lifecycle itself (locks, stale trials, retries) is tested against real
PostgreSQL in test_storage.py and test_budget_race.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tuner.base.errors import ConfigError
from tuner.commands.worker import Worker
from tuner.config.spec import parse_spec
from tuner.trial.lifecycle import Claim, ClaimKind, Outcome
from tuner.trial.objective import TrialFailed
from tuner.trial.progress import TrialHooks

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPEC = parse_spec(
    {
        "study_name": "loop",
        "n_trials": 3,
        "sampler": {"type": "random"},
        "pruner": {"type": "none"},
        "budget": {"total_timesteps": 8, "n_evaluations": 1},
        "search_space": {"gamma": {"type": "float", "low": 0.9, "high": 0.999}},
    },
    "test",
)


class InMemoryTrials:
    """The lifecycle's interface over an in-memory study: no lock, no heartbeat."""

    def __init__(self, n_trials: int, waits: int = 0) -> None:
        self.study = optuna.create_study(study_name="loop", direction="maximize")
        self.n_trials = n_trials
        self.waits = waits
        self.outcomes: list[Outcome] = []

    def claim(self) -> Claim:
        if self.waits:
            self.waits -= 1
            return Claim(ClaimKind.WAIT)
        if len(self.study.trials) >= self.n_trials:
            return Claim(ClaimKind.DONE)
        return Claim(ClaimKind.TRIAL, self.study.ask())

    def begin(self, trial: optuna.Trial, user_attrs: dict[str, Any]) -> None:
        for key, value in user_attrs.items():
            trial.set_user_attr(key, value)

    def heartbeat(self, trial: optuna.Trial) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def record(self, trial: optuna.Trial, outcome: Outcome) -> TrialState:
        self.outcomes.append(outcome)
        value = outcome.value if outcome.state == TrialState.COMPLETE else None
        return self.study.tell(trial, value, state=outcome.state).state


class Ends(TrialHooks):
    def __init__(self) -> None:
        self.ends: list[tuple[int, str]] = []

    def on_trial_end(self, study, number, state, value, seconds) -> None:
        assert study.study_name == "loop"
        self.ends.append((number, state))


def worker(trials: InMemoryTrials, objective, **kwargs: Any) -> Worker:
    return Worker(SPEC, trials, objective_fn=objective, wait_seconds=0.01, **kwargs)


def gamma(trial, _spec, **_):
    return trial.suggest_float("gamma", 0.9, 0.999)


def test_the_loop_runs_claims_until_the_budget_is_spent_and_waits_meanwhile():
    trials = InMemoryTrials(n_trials=3, waits=2)
    ends = Ends()
    report = worker(trials, gamma, reporter=ends, seed=7).run()
    assert [state for _, state, _ in report.finished] == ["COMPLETE"] * 3
    assert ends.ends == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert trials.waits == 0, "a WAIT claim is retried after a pause"
    assert all(t.user_attrs["worker_seed"] == 7 for t in trials.study.trials)
    assert report.stopped_by is None


def test_max_trials_and_every_way_a_trial_ends():
    def varied(trial, _spec, **_):
        n = trial.number
        if n == 0:
            raise optuna.TrialPruned("pruned at 8")
        if n == 1:
            raise TrialFailed("diverged: NaN loss")
        if n == 2:
            raise ValueError("a bad combination")
        return 0.5

    trials = InMemoryTrials(n_trials=10)
    report = worker(trials, varied, max_trials=4).run()
    assert [s for _, s, _ in report.finished] == ["PRUNED", "FAIL", "FAIL", "COMPLETE"]
    pruned, diverged, bad, _ = trials.outcomes
    assert pruned.reason == "pruned at 8"
    assert diverged.reason == "diverged: NaN loss" and not diverged.requeue
    assert bad.reason == "ValueError: a bad combination"


def test_a_repeated_configuration_error_stops_the_worker():
    def misconfigured(trial, _spec, **_):
        raise ConfigError("ppo.batch_size: expected a divisor of n_steps * n_envs")

    trials = InMemoryTrials(n_trials=10)
    report = worker(trials, misconfigured).run()
    assert len(report.finished) == 2 and report.config_error is not None
    assert all(o.config_error for o in trials.outcomes)


@pytest.mark.parametrize("times", [1, 2])
def test_a_signal_stops_the_loop_and_requeues_the_stopped_trial(times):
    """One SIGTERM: the objective sees it (its should_stop) and stops at its next step;
    two: the trial is interrupted at once. Either way it is re-queued as stopped."""

    def stopped(trial, _spec, *, should_stop, **_):
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGTERM)
        if should_stop():
            raise TrialFailed(should_stop())
        return 0.5

    trials = InMemoryTrials(n_trials=3)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        report = worker(trials, stopped).run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert report.stopped_by == "SIGTERM" and len(report.finished) == 1
    (outcome,) = trials.outcomes
    assert outcome.state == TrialState.FAIL and outcome.requeue and outcome.stopped
    expected = "worker stopped: SIGTERM received twice" if times == 2 else "SIGTERM received"
    assert outcome.reason == expected
