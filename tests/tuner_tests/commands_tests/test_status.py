"""``tuner status`` (tuner/commands/status.py): counts per state, the best trial, running
trials with their heartbeats, waiting retries, and the top trials by the study's direction.

On a study built by hand in a SQLite file, where each line's right content is known;
no training and no subprocess.
"""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from tuner.base.settings import StorageSettings
from tuner.commands.status import format_status, state_counts, top_trials
from tuner.storage.optuna_compat import trial_id
from tuner.storage.rdb import ResilientRDBStorage, make_storage
from tuner.storage.record import StudyAttr, TrialAttr

GAMMA = {"gamma": FloatDistribution(0.9, 0.999)}


@pytest.fixture
def storage(tmp_path: Path) -> ResilientRDBStorage:
    """The tuner's own storage on a SQLite file, with heartbeats (as a worker opens it)."""
    return make_storage(f"sqlite:///{tmp_path / 'status.db'}", StorageSettings(grace_period=60))


@pytest.fixture
def study(storage: ResilientRDBStorage) -> optuna.Study:
    """Two completed trials (0.4, then the best 0.7 with its scores), one pruned, one
    failed, and a waiting retry of the failed one; a budget of 10."""
    study = optuna.create_study(study_name="handmade", storage=storage, direction="maximize")
    study.set_user_attr(StudyAttr.N_TRIALS, 10)
    study.add_trial(create_trial(value=0.4, params={"gamma": 0.95}, distributions=GAMMA))
    best_attrs = {
        TrialAttr.EVAL_RESULTS: {
            "random": {"score": 0.9, "ci_low": 0.8, "ci_high": 0.95, "games": 200},
            "greedy": {"score": 0.5, "ci_low": 0.41, "ci_high": 0.59, "games": 200},
        }
    }
    study.add_trial(
        create_trial(value=0.7, params={"gamma": 0.99}, distributions=GAMMA, user_attrs=best_attrs)
    )
    study.add_trial(create_trial(state=TrialState.PRUNED, intermediate_values={100: 0.1}))
    study.add_trial(
        create_trial(state=TrialState.FAIL, user_attrs={TrialAttr.FAIL_REASON: "diverged"})
    )
    study.add_trial(
        create_trial(
            state=TrialState.WAITING,
            user_attrs={TrialAttr.RETRY_OF: 3, TrialAttr.RETRY_REASON: "heartbeat stale"},
        )
    )
    return study


def test_state_counts_name_only_the_states_that_occur_in_optunas_order(study) -> None:
    counts = state_counts(study.get_trials())
    assert counts == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1, "WAITING": 1}
    assert list(counts) == [s.name for s in TrialState if s.name in counts]


def test_status_shows_counts_budget_best_trial_and_waiting_retries(study, storage) -> None:
    text = format_status(study, storage)
    lines = text.splitlines()
    assert lines[0] == "study 'handmade': 5 trials (budget 10)"
    assert "  COMPLETE      2" in lines and "  WAITING       1" in lines
    assert "best: trial 1, value 0.7000" in lines
    assert "  gamma = 0.99" in lines
    assert "  score vs random: 0.900 [95% 0.800, 0.950] over 200 games" in lines
    assert "  score vs greedy: 0.500 [95% 0.410, 0.590] over 200 games" in lines
    assert not any(line.startswith("  rating ") for line in lines), "a score study"
    assert "waiting:" in lines
    assert "  trial    4  retry of trial 3 (heartbeat stale)" in lines
    assert "running:" not in text and "connections:" not in text


def test_a_rated_best_trial_shows_its_rating_not_the_few_games_behind_it(storage) -> None:
    """An adaptive rating plays 2-4 games per ladder member: those scores would read as
    claims of strength, so the rating and its interval stand for them."""
    study = optuna.create_study(study_name="rated", storage=storage, direction="maximize")
    attrs = {
        TrialAttr.RATING: {"rating": 612.4, "low": 580.0, "high": 650.0},
        TrialAttr.EVAL_RESULTS: {
            "minimax:3": {"score": 0.5, "ci_low": 0.1, "ci_high": 0.9, "games": 4}
        },
    }
    study.add_trial(create_trial(value=612.4, user_attrs=attrs))
    lines = format_status(study, storage).splitlines()
    assert "  rating 612 [95% 580, 650] (Elo on the reference ladder)" in lines
    assert not any("score vs" in line for line in lines), lines


PERFECT = {
    "positions": 5010,
    "optimal": 0.8042,
    "optimal_half_width": 0.011,
    "regret": 1.0691,
    "regret_half_width": 0.081,
    "blunders": 0.0451,
    "blunders_half_width": 0.0057,
}


def test_the_best_trial_shows_its_perfect_play_numbers_with_their_intervals(storage) -> None:
    study = optuna.create_study(study_name="perfect", storage=storage, direction="maximize")
    study.add_trial(create_trial(value=0.5))
    study.add_trial(create_trial(value=0.8042, user_attrs={TrialAttr.PERFECT: PERFECT}))
    lines = format_status(study, storage).splitlines()
    assert (
        "  perfect play: optimal 0.804 ±0.011, regret 1.07 ±0.08, blunders 0.045 ±0.006 "
        "on 5010 solved positions"
    ) in lines, lines


def test_a_study_without_results_says_so(storage) -> None:
    study = optuna.create_study(study_name="empty", storage=storage)
    assert format_status(study, storage).splitlines() == [
        "study 'empty': 0 trials (budget ?)",
        "best: none yet (no completed trial)",
    ]


def test_running_trials_show_their_worker_and_heartbeat_or_its_absence(study, storage) -> None:
    """A trial that never beat says so; one that did gives the seconds since its beat."""
    silent = study.ask()
    silent.set_user_attr(TrialAttr.WORKER, "host-a:101")
    beating = study.ask()
    storage.record_heartbeat(trial_id(beating))
    lines = format_status(study, storage).splitlines()
    running = lines[lines.index("running:") + 1 :]
    assert running[0].startswith(f"  trial {silent.number:4d}  running for ")
    assert "on host-a:101  no heartbeat yet" in running[0]
    assert running[1].startswith(f"  trial {beating.number:4d}")
    # A beat a moment ago: 0s, or 1s on a loaded machine; far from stale either way.
    assert re.search(r"last heartbeat [01]s ago", running[1]) and "STALE" not in running[1]


def test_connections_are_summed_per_tuner_process(study, storage) -> None:
    text = format_status(study, storage, {"kalaha-tuner a:1": 2, "kalaha-tuner b:2": 3})
    tail = text.splitlines()[-3:]
    assert tail == [
        "connections: 5 from 2 tuner processes",
        "  kalaha-tuner a:1  2",
        "  kalaha-tuner b:2  3",
    ]


def test_top_trials_follow_the_direction(study) -> None:
    """Completed trials only, best first: the larger value when maximizing, the smaller
    when minimizing; ties go to the earlier trial."""
    assert [t.number for t in top_trials(study, 2)] == [1, 0]
    low = optuna.create_study(direction="minimize")
    for v in (0.3, 0.1, 0.2, 0.1):
        low.add_trial(create_trial(value=v))
    low.add_trial(create_trial(state=TrialState.FAIL))
    assert [(t.number, t.value) for t in top_trials(low, 10)] == [
        (1, 0.1),
        (3, 0.1),
        (2, 0.2),
        (0, 0.3),
    ]
