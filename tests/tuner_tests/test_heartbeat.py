"""A trial's heartbeat keeps beating while the evaluation searches deep minimax trees.

The numba kernels release the GIL (``nogil=True``); before, a minimax search held
it for its whole length, the heartbeat thread could not run, and two workers with
deep minimax opponents failed each other's live trials as stale.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from optuna.trial import TrialState

from env.opponents import MinimaxOpponent
from env.rules import BOARD_DTYPE, initial_board
from tuner.commands.worker import Worker
from tuner.config.spec import parse_spec
from tuner.storage.rdb import StorageSettings


def deep_search(boards: np.ndarray) -> float:
    """One ply of a deep minimax opponent over a batch: one long call into numba."""
    start = time.monotonic()
    MinimaxOpponent(8).act(boards, np.zeros(len(boards), dtype=np.int64), np.random.default_rng(0))
    return time.monotonic() - start


@pytest.mark.postgres
def test_heartbeat_beats_during_a_deep_minimax_search(runs, pg_url):
    start = np.asarray(initial_board(4), dtype=BOARD_DTYPE)[None, :]
    deep_search(start)  # compile (or load) the kernels outside the measured window
    t0 = time.monotonic()
    deep_search(start)
    # Enough boards for one call of about 4 s on this machine, however fast it is.
    boards = np.tile(start, (max(2, math.ceil(4.0 / max(time.monotonic() - t0, 0.05))), 1))
    spec = parse_spec(
        {
            "study_name": "deep",
            "n_trials": 1,
            "sampler": {"type": "random"},
            "pruner": {"type": "none"},
            "budget": {"total_timesteps": 8, "n_evaluations": 1},
            "search_space": {"gamma": {"type": "float", "low": 0.9, "high": 0.999}},
        },
        "test",
    )
    window: dict[str, float] = {}

    def objective(trial, _spec, **_):
        trial.suggest_float("gamma", 0.9, 0.999)
        window["start"] = time.monotonic()
        deep_search(boards)
        window["end"] = time.monotonic()
        return 0.5

    settings = StorageSettings(heartbeat_interval=1, grace_period=3)
    worker = Worker.open(spec, pg_url, device="cpu", settings=settings, objective_fn=objective)
    beats: list[float] = []
    record = worker.trials.storage.record_heartbeat

    def counted(trial_id: int) -> None:
        record(trial_id)  # the real write to PostgreSQL
        beats.append(time.monotonic())

    worker.trials.storage.record_heartbeat = counted  # type: ignore[method-assign]
    report = worker.run()
    assert report.finished[0][1] == TrialState.COMPLETE.name

    searched = window["end"] - window["start"]
    assert searched > 2.5, f"the search was too short to tell ({searched:.1f}s)"
    inside = [window["start"], *[b for b in beats if window["start"] < b < window["end"]]]
    gaps = np.diff([*inside, window["end"]])
    # Held GIL: no beat inside the search, one gap as long as the search.
    assert len(inside) - 1 >= searched / 2 - 1, (searched, len(inside) - 1)
    assert gaps.max() < min(searched / 2, settings.grace_period), (searched, gaps)
