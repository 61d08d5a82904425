"""The global budget under a real race: claimers released together stop at exactly n_trials.

Two workers that happen to finish in turn prove nothing about the claim lock (without
it, the two-worker study still came out right four times in five). Here several
worker processes wait at a barrier, are released at once, and each one's claim is
slowed between counting the study's trials and asking for a new one, the window a
missing lock leaves open. The objective is trivial, so the workers do nothing but
claim. With the lock the claims queue and the study ends at exactly ``n_trials``;
without it every claimer counts the same trials and asks, and the study overshoots,
every time rather than by bad luck.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from typing import Any

import optuna
import pytest
from fault_support import by_state, load_trials
from optuna.trial import TrialState

from tuner.commands.worker import Worker
from tuner.config.spec import parse_spec
from tuner.trial.lifecycle import budget_used

CLAIMERS = 4
N_TRIALS = 6
ASK_DELAY = 0.5  # seconds between counting the trials and asking, inside the claim
SPEC = {
    "study_name": "race",
    "n_trials": N_TRIALS,
    "sampler": {"type": "random"},
    "pruner": {"type": "none"},
    "budget": {"total_timesteps": 8, "n_evaluations": 1},
    "search_space": {"gamma": {"type": "float", "low": 0.9, "high": 0.999}},
}


def trivial(trial: optuna.Trial, _spec: Any, **_: Any) -> float:
    """No training: the claims are what is raced."""
    return trial.suggest_float("gamma", 0.9, 0.999)


def claimer(url: str, index: int, barrier: Any, results: Any) -> None:
    """One worker process: set up, wait for the others, then claim and run until done."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    worker = Worker.open(
        parse_spec(SPEC, "race"), url, worker_index=index, device="cpu", objective_fn=trivial
    )
    ask = worker.study.ask

    def slow_ask(*args: Any, **kwargs: Any) -> optuna.Trial:
        time.sleep(ASK_DELAY)
        return ask(*args, **kwargs)

    worker.study.ask = slow_ask  # type: ignore[method-assign]
    barrier.wait(timeout=300)
    report = worker.run()
    results.put((index, [number for number, _, _ in report.finished]))


def race(url: str) -> list[optuna.trial.FrozenTrial]:
    """Release CLAIMERS worker processes together on ``url``; the study's trials after."""
    optuna.create_study(study_name="race", storage=url, direction="maximize")
    # fork: the children only claim (no torch), and start in a moment instead of re-importing
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(CLAIMERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=claimer, args=(url, i, barrier, results)) for i in range(CLAIMERS)]
    for p in procs:
        p.start()
    ran: dict[int, list[int]] = {}
    deadline = time.monotonic() + 300
    try:
        while len(ran) < CLAIMERS:
            assert time.monotonic() < deadline, f"claimers did not finish: {ran}"
            try:
                index, finished = results.get(timeout=1.0)
                ran[index] = finished
            except queue.Empty:
                dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
                assert not dead, f"a claimer died with exit code {dead[0]}"
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0, f"claimer exited with {p.exitcode}"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    trials = load_trials(url, "race")
    numbers = sorted(n for finished in ran.values() for n in finished)
    assert numbers == sorted(t.number for t in trials), "every trial ran once, in one claimer"
    return trials


def assert_exact_budget(trials: list[optuna.trial.FrozenTrial]) -> None:
    assert len(trials) == N_TRIALS, f"{len(trials)} trials for a budget of {N_TRIALS}"
    assert budget_used(trials) == N_TRIALS
    assert len(by_state(trials, TrialState.COMPLETE)) == N_TRIALS


@pytest.mark.postgres
def test_claimers_released_together_stop_at_n_trials_on_postgres(pg_url):
    assert_exact_budget(race(pg_url))


def test_claimers_released_together_stop_at_n_trials_on_sqlite(tmp_path):
    assert_exact_budget(race(f"sqlite:///{tmp_path / 'race.db'}"))
