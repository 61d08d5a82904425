"""`make bench-pbt`'s bookkeeping: the CPU-hours a study spent and its best value so far,
from its trials' own times; a study given by `--tpe-storage` must have been verified."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from benchmarks.pbt_vs_tpe import recorded, summary

T0 = dt.datetime(2026, 12, 7, 10, 0, 0)


def _trial(start_min: float, minutes: float, state: TrialState, value: float | None):
    trial = create_trial(
        state=state, value=value, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}
    )
    trial.datetime_start = T0 + dt.timedelta(minutes=start_min)
    trial.datetime_complete = trial.datetime_start + dt.timedelta(minutes=minutes)
    return trial


def test_summary_counts_each_trials_time_and_the_best_so_far_in_finishing_order():
    study = optuna.create_study(direction="maximize")
    study.add_trial(_trial(0, 30, TrialState.COMPLETE, 700.0))
    study.add_trial(_trial(0, 15, TrialState.PRUNED, None))  # finishes first, no value
    study.add_trial(_trial(30, 30, TrialState.COMPLETE, 650.0))
    study.add_trial(_trial(60, 6, TrialState.COMPLETE, 760.0))
    row = summary(study, [1, 2], [740.0, 720.0])
    # the pruned trial's 15 minutes count, but no best exists before the first value
    assert [(round(h, 3), v) for h, v in row["curve"]] == [
        (0.75, 700.0), (1.25, 700.0), (1.35, 760.0),
    ]  # fmt: skip
    assert row["cpu_hours"] == pytest.approx(1.35) and row["best_value"] == 760.0
    assert row["trials"] == 4 and row["mean"] == 730.0
    assert row["std"] == pytest.approx(14.142, abs=1e-3)


def test_a_recorded_study_without_a_verification_is_refused_with_the_command_to_run(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    optuna.create_study(study_name="exploration", storage=storage, direction="maximize")
    with pytest.raises(SystemExit, match=r"has no verification; run `tuner verify exploration`"):
        recorded(Path("studies/exploration.yaml"), storage)
