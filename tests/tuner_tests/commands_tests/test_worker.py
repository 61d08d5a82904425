"""``tuner tune``'s worker: its loop without a database (claims, outcomes, limits and
signals), then whole studies on real storage.

:class:`~tuner.commands.worker.Worker` is built around a :class:`~tuner.commands.worker.Trials`; here
a stand-in over an in-memory Optuna study, so that nothing but the loop is tested.
The lifecycle itself (locks, stale trials, retries) is tested against real
PostgreSQL in storage_tests/test_rdb.py, trial_tests/test_lifecycle.py and
test_budget_race.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from typing import Any

import optuna
import pytest
import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState
from support import assert_one_line_error, run_cli, spawn_cli, write_study

from tuner.base.errors import ConfigError
from tuner.commands.worker import CONFIG_ERROR_LIMIT, Worker, WorkerInterrupted, outcome_of
from tuner.config.loading import parse_spec
from tuner.storage.rdb import StorageSettings
from tuner.storage.record import TrialAttr, TrialSystemAttr
from tuner.trial.lifecycle import Claim, ClaimKind, Outcome, budget_used
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
    report = worker(trials, gamma, progress=ends, seed=7).run()
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
    assert len(report.finished) == CONFIG_ERROR_LIMIT and report.config_error is not None
    assert all(o.config_error for o in trials.outcomes)


def test_configuration_errors_count_against_a_limit_whatever_they_say():
    """Hardening (issue 25): a searched value out of range failed each trial with another
    value in its message, so "the same error twice in a row" never held, and such trials
    do not count against n_trials: one worker failed 1,677 trials in 90 s. Counted now,
    between good trials too."""

    def sometimes(trial, _spec, **_):
        if trial.number % 2:
            return 0.5
        raise ConfigError(
            f"the env cannot be built: pool_size: expected 1..100, got {trial.number}"
        )

    trials = InMemoryTrials(n_trials=100)
    report = worker(trials, sometimes).run()
    assert report.config_errors == CONFIG_ERROR_LIMIT and "got 4" in report.config_error
    assert [s for _, s, _ in report.finished] == ["FAIL", "COMPLETE"] * 2 + ["FAIL"]


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
    # A worker stopped by a signal leaves both handlers saying "already stopping".
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        report = worker(trials, stopped).run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert report.stopped_by == "SIGTERM" and len(report.finished) == 1
    (outcome,) = trials.outcomes
    assert outcome.state == TrialState.FAIL and outcome.requeue and outcome.stopped
    expected = "worker stopped: SIGTERM received twice" if times == 2 else "SIGTERM received"
    assert outcome.reason == expected


@pytest.mark.parametrize(
    ("error", "signal_name", "expected"),
    [
        (optuna.TrialPruned("pruned at 8"), None, ("PRUNED", "pruned at 8", False, False)),
        (TrialFailed("diverged: NaN"), None, ("FAIL", "diverged: NaN", False, False)),
        (TrialFailed("worker stopped"), "SIGTERM", ("FAIL", "worker stopped", True, True)),
        (
            WorkerInterrupted("SIGINT"),
            "SIGINT",
            ("FAIL", "worker stopped: SIGINT received twice", True, True),
        ),
        (
            UpdateFinishedTrialError("finished"),
            None,
            ("FAIL", "failed by another worker while running", False, False),
        ),
        (
            sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("server closed")),
            None,
            ("FAIL", "storage connection lost: ", True, False),
        ),
        (
            ValueError("a bad combination"),
            None,
            ("FAIL", "ValueError: a bad combination", False, False),
        ),
    ],
    ids=["pruned", "failed", "stopped", "interrupted", "failed-elsewhere", "lost-db", "bug"],
)
def test_every_way_a_trial_ends_becomes_an_outcome(error, signal_name, expected):
    """(state, reason, re-queued, stopped by a signal): a stopped trial and one whose
    database went away are run again; a trial another worker failed is left to it."""
    state, reason, requeue, stopped = expected
    try:
        raise error
    except BaseException as err:  # outcome_of is called while the error is handled
        outcome = outcome_of(err, 3, signal_name)
    assert outcome.state.name == state and outcome.reason.startswith(reason), outcome
    assert (outcome.requeue, outcome.stopped, outcome.config_error) == (requeue, stopped, False)


def test_a_configuration_error_is_an_outcome_of_its_own():
    """It fails the trial without counting against n_trials (the lifecycle reads the flag)."""
    outcome = outcome_of(ConfigError("ppo_kwargs: bad"), 0, None)
    assert outcome.state == TrialState.FAIL and outcome.config_error and not outcome.requeue
    assert outcome.reason == "configuration error: ppo_kwargs: bad"


# --- the worker on real storage, training real (tiny) models --------------------------------


RECORDED_ATTRS = {
    "real_params",
    "config",
    "scores",
    "eval_results",
    "timesteps",
    "steps_per_second",
    "train_seconds",
    "eval_seconds",
    "device",
    "evaluations",
}


def load_trials(name: str, url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials()


def assert_recorded(trial: optuna.trial.FrozenTrial) -> None:
    assert set(trial.user_attrs) >= RECORDED_ATTRS, set(trial.user_attrs)
    assert 0.0 <= trial.value <= 1.0
    assert set(trial.user_attrs[TrialAttr.SCORES]) == {"random", "greedy"}
    for result in trial.user_attrs[TrialAttr.EVAL_RESULTS].values():
        assert result["ci_low"] <= result["score"] <= result["ci_high"]
        assert result["distinct_openings"] > 1
    assert trial.user_attrs[TrialAttr.TIMESTEPS] >= 3072
    assert trial.user_attrs[TrialAttr.DEVICE] == "cpu"
    assert trial.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]
    # n_evaluations reports, the last one once the whole budget is trained
    steps = sorted(trial.intermediate_values)
    assert len(steps) == 3 and steps[-1] == trial.user_attrs[TrialAttr.TIMESTEPS]
    assert trial.value == trial.intermediate_values[steps[-1]]


@pytest.mark.slow
def test_smoke_study_on_sqlite_via_the_cli(runs):
    """`tuner tune smoke` on the embedded default fills the study with recorded trials."""
    result = run_cli("tune", "smoke", "--worker-index", "0", runs_path=runs)
    assert result.returncode == 0, result.stderr
    assert "worker done: 6 trials" in result.stdout
    trials = load_trials("smoke", f"sqlite:///{runs / 'optuna.db'}")
    assert len(trials) == 6
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    for trial in complete:
        assert_recorded(trial)
        run_dirs = list((runs / "tensorboard" / "smoke").glob(f"trial_{trial.number:04d}*"))
        assert run_dirs and any(p.name.startswith("events.") for p in run_dirs[0].iterdir())
    assert any((runs / "artifacts").iterdir())


@pytest.mark.postgres
def test_smoke_study_on_postgres(runs, pg_url, tiny_spec):
    spec = parse_spec(tiny_spec(n_trials=3))
    report = Worker.open(spec, pg_url, worker_index=0, device="cpu", runs_dir=runs).run()
    assert len(report.finished) == 3
    trials = load_trials("smoke", pg_url)
    assert [t.number for t in trials] == [0, 1, 2]
    for trial in trials:
        assert trial.state in (TrialState.COMPLETE, TrialState.PRUNED)
        if trial.state == TrialState.COMPLETE:
            assert_recorded(trial)
        else:
            assert trial.user_attrs[TrialAttr.PRUNE_REASON].startswith("pruned at timestep")


@pytest.mark.slow
def test_diverging_trial_fails_with_a_reason_and_the_worker_goes_on(runs, tiny_spec):
    spec = parse_spec(
        tiny_spec(
            n_trials=2,
            search_space={
                "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e30, "log": True}
            },
        )
    )
    url = f"sqlite:///{runs / 'diverge.db'}"
    worker = Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs)
    worker.study.enqueue_trial({"learning_rate": 1.0e30})
    worker.study.enqueue_trial({"learning_rate": 1.0e-3})
    report = worker.run()
    assert [s for _, s, _ in report.finished] == ["FAIL", "COMPLETE"]
    failed, complete = load_trials("smoke", url)
    assert (
        failed.state == TrialState.FAIL and "diverged" in failed.user_attrs[TrialAttr.FAIL_REASON]
    )
    assert complete.state == TrialState.COMPLETE and not math.isnan(complete.value)


@pytest.mark.postgres
def test_two_workers_share_one_postgres_study_exactly(runs, pg_url, tmp_path):
    """Two worker processes: n_trials in total, each trial run once, different proposals."""
    procs = [
        spawn_cli("tune", "smoke", "--storage", pg_url, "--worker-index", str(i), runs_path=runs)
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    trials = load_trials("smoke", pg_url)
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    seeds = {t.user_attrs[TrialAttr.WORKER_SEED] for t in trials}
    assert len(seeds) == 2, "each worker seeds its sampler differently"
    ran = [
        int(line.split()[1])
        for out, _ in outputs
        for line in out.splitlines()
        if line.startswith("trial ")
    ]
    assert sorted(ran) == list(range(6)), "every trial ran exactly once, in one of the workers"


# --- hardening (issue 12) ----------------------------------------------------------------


@pytest.mark.slow
def test_a_configuration_error_stops_the_worker_and_spends_no_budget(runs, tmp_path, tiny_spec):
    """Hardening (issue 12): a configuration typo burnt the budget. A setting that passes
    the schema but cannot build the model (Adam has ``eps``, not
    ``epsilon``): the worker stops after three such trials with exit 2, the trials say
    "configuration error" (not "training diverged"), and once the file is fixed the
    study still has its whole budget."""
    ppo = {"n_steps": 64, "batch_size": 128, "n_epochs": 2}
    data = tiny_spec(
        n_trials=2, ppo={**ppo, "policy_kwargs": {"optimizer_kwargs": {"epsilon": 1.0e-5}}}
    )
    path = write_study(tmp_path / "typo.yaml", data)
    result = run_cli("tune", str(path), runs_path=runs)
    assert_one_line_error(result, "configuration error", "epsilon", "fix the study file")

    url = f"sqlite:///{runs / 'optuna.db'}"
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * CONFIG_ERROR_LIMIT
    for t in trials:
        assert t.user_attrs[TrialAttr.CONFIG_ERROR] is True
        assert t.user_attrs[TrialAttr.FAIL_REASON].startswith(
            "configuration error: MaskablePPO cannot"
        )
        assert "diverged" not in t.user_attrs[TrialAttr.FAIL_REASON]
    assert budget_used(trials) == 0

    data["ppo"]["policy_kwargs"] = {"optimizer_kwargs": {"eps": 1.0e-5}}
    write_study(path, data)
    result = run_cli("tune", str(path), runs_path=runs)
    assert result.returncode == 0, result.stderr
    trials = optuna.load_study(study_name="smoke", storage=url).get_trials()
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == data["n_trials"] and budget_used(trials) == data["n_trials"]


def test_signal_stops_are_always_requeued_and_spend_no_retry(runs):
    """Hardening (issue 12): a graceful stop used up the retry budget. Three SIGTERMs on
    the same parameters (three scale-downs) used to drop them for good ("retried 2
    times") and count their FAIL in the budget."""

    spec = parse_spec({**SPEC.model_dump(), "study_name": "stops", "n_trials": 1}, "test")

    def stopped_by_sigterm(trial, _spec, *, should_stop, **_):
        trial.suggest_float("gamma", 0.9, 0.999)
        os.kill(os.getpid(), signal.SIGTERM)  # a real signal, handled by the worker
        deadline = time.monotonic() + 10
        while should_stop() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        raise TrialFailed(f"worker stopped: {should_stop()}")

    def finishes(trial, _spec, **_):
        return trial.suggest_float("gamma", 0.9, 0.999)

    url = f"sqlite:///{runs / 'stops.db'}"
    runs.mkdir(parents=True)
    settings = StorageSettings(max_retry=2)
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(3):
            worker = Worker.open(
                spec, url, device="cpu", settings=settings, objective_fn=stopped_by_sigterm
            )
            assert worker.run().stopped_by == "SIGTERM"
        report = Worker.open(
            spec, url, device="cpu", settings=settings, objective_fn=finishes
        ).run()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    trials = optuna.load_study(study_name="stops", storage=url).get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE]
    assert len({t.params["gamma"] for t in trials}) == 1, "the same parameters each time"
    assert trials[-1].system_attrs[TrialSystemAttr.STOPPED_BY_SIGNAL] == 3
    assert report.finished == [(3, "COMPLETE", trials[-1].value)]
    assert budget_used(trials) == spec.n_trials == 1
