"""The rating (tuner/strength/rating.py): Elo by maximum likelihood with the ladder fixed,
intervals over opening pairs; and a study whose objective is the rating, end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.storage.record import TrialAttr
from tuner.strength.ladder import LADDER
from tuner.strength.rating import PairResults, expected_score, fit_ratings, rate_against


def pairs_scoring(points: list[float]) -> PairResults:
    """Player 1 against player 0 (rated 100), one opening pair per entry of ``points``."""
    return PairResults.of_match(1, 0, np.asarray(points) / 2.0)


def elo_gap(score: float) -> float:
    """The rating difference that makes ``score`` the expected score."""
    return 400.0 * math.log10(score / (1.0 - score))


def test_the_rating_follows_the_results_not_a_prior():
    """0.75 against a player rated 100 is +191 Elo, 0.25 is -191 (up to the weak prior of
    one virtual draw): a fit that ignored the games, or returned its prior, fails."""
    wins = rate_against(pairs_scoring([2, 1] * 200), [100.0])  # 1200 of 1600 points: 0.75
    losses = rate_against(pairs_scoring([0, 1] * 200), [100.0])
    assert wins.rating == pytest.approx(100 + elo_gap(0.75), abs=3)
    assert losses.rating == pytest.approx(100 - elo_gap(0.75), abs=3)
    assert wins.low < wins.rating < wins.high and losses.low < losses.rating < losses.high
    assert losses.high < 100 < wins.low
    assert expected_score(wins.rating - 100) == pytest.approx(0.75, abs=0.005)


def test_more_games_narrow_the_interval():
    few = rate_against(pairs_scoring([2, 1] * 25), [100.0])
    many = rate_against(pairs_scoring([2, 1] * 400), [100.0])
    assert (many.high - many.low) < 0.3 * (few.high - few.low)
    assert many.low < 100 + elo_gap(0.75) < many.high


def test_winning_every_game_gives_a_finite_rating_with_a_wide_upper_interval():
    r = rate_against(pairs_scoring([2] * 50), [100.0])
    assert math.isfinite(r.rating) and r.rating > 100 + elo_gap(0.95)
    assert r.high - r.rating > r.rating - r.low > 0  # one-sided: the data bound it below only


def test_the_opening_pair_is_the_unit_of_the_interval():
    """Same games and score, but pairs that split 2-0 / 0-2 (the opening decided the pair)
    carry less information than pairs that split 1-1 around the same mean: the interval
    must widen, which it would not if games counted as independent."""
    decided = rate_against(pairs_scoring([2, 2, 2, 0] * 50), [100.0])  # score 0.75
    split = rate_against(pairs_scoring([2, 1, 1, 2] * 50), [100.0])  # score 0.75 too
    assert decided.rating == pytest.approx(split.rating, abs=1)
    assert (decided.high - decided.low) > 1.3 * (split.high - split.low)


def test_a_round_robin_fit_recovers_known_ratings():
    """Simulated Bradley-Terry games between 5 players of known strength, one anchored at
    0: the fit puts each true rating inside its interval, and the anchor stays at 0."""
    rng = np.random.default_rng(0)
    true = np.array([0.0, 250.0, 400.0, 650.0, 900.0])
    parts = []
    for i in range(5):
        for j in range(i + 1, 5):
            p = expected_score(true[j] - true[i])
            points = (rng.random((150, 2)) < p).sum(axis=1)
            parts.append(PairResults.of_match(j, i, points / 2.0))
    fit = fit_ratings(PairResults.concat(parts), 5, {0: 0.0})
    assert fit.ratings[0] == fit.low[0] == fit.high[0] == 0.0
    for k in range(1, 5):
        assert fit.low[k] < true[k] < fit.high[k], (k, fit.low[k], fit.high[k])
        assert fit.high[k] - fit.low[k] < 200


# --- objective: rating, end to end ----------------------------------------------------


@pytest.mark.slow
def test_a_rating_study_reports_ratings_everywhere(tmp_path, runs, tiny_spec):
    """A study with objective: rating trains a real (tiny) agent; each evaluation's rating
    is the intermediate value the pruner saw, and the trial's value, user attrs,
    TensorBoard, progress line, `tuner status` and the report all show it."""
    import optuna
    import yaml
    from support import run_cli
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = tiny_spec(
        study_name="rated", evaluation={"objective": "rating", "games": 40, "rounds": 2}
    )
    path = tmp_path / "rated.yaml"
    path.write_text(yaml.safe_dump(data))

    result = run_cli("tune", str(path), "--n-trials", "1", "--worker-index", "0", runs_path=runs)
    assert result.returncode == 0, result.stderr
    assert "(last rating " in result.stdout, result.stdout
    study = optuna.load_study(study_name="rated", storage=f"sqlite:///{runs / 'optuna.db'}")
    (trial,) = study.get_trials()
    assert trial.state.name == "COMPLETE"
    rating = trial.user_attrs[TrialAttr.RATING]
    assert rating["low"] <= rating["rating"] <= rating["high"]
    assert trial.value == pytest.approx(rating["rating"], abs=0.1)
    evaluations = trial.user_attrs[TrialAttr.EVALUATIONS]
    assert [e["rating"]["rating"] for e in evaluations] == pytest.approx(
        [trial.intermediate_values[e["timestep"]] for e in evaluations], abs=0.1
    )
    results = trial.user_attrs[TrialAttr.EVAL_RESULTS]
    assert set(results) <= set(LADDER) and sum(r["games"] for r in results.values()) == 40
    assert set(trial.user_attrs[TrialAttr.SCORES]) == set(results)

    (tb,) = (runs / "tensorboard" / "rated").glob("trial_0000_*")
    acc = EventAccumulator(str(tb))
    acc.Reload()
    logged = {e.step: e.value for e in acc.Scalars("eval/rating")}
    assert logged == pytest.approx(dict(trial.intermediate_values), abs=0.1)
    assert {"eval/rating_low", "eval/rating_high"} <= set(acc.Tags()["scalars"])

    status = run_cli("status", str(path), runs_path=runs)
    assert status.returncode == 0, status.stderr
    assert f"rating {rating['rating']:.0f} [95% " in status.stdout, status.stdout
    assert "score vs" not in status.stdout, "a few adaptive games each: left out"
    report = run_cli("report", str(path), "--out", str(tmp_path / "report"), runs_path=runs)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.html").read_text()
    assert "<th>rating [95% interval]</th>" in text and "score vs" not in text
    assert f"{rating['rating']:.0f} [{rating['low']:.0f}, {rating['high']:.0f}]" in text
