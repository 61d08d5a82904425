"""The rating: Elo by maximum likelihood with the ladder fixed, intervals over opening pairs,
and the adaptive evaluator that plays the ladder members nearest the estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from env.opponents import GreedyOpponent, MinimaxOpponent
from tuner.storage.record import TrialAttr
from tuner.strength.evaluate import allocate, opponent_result, rate_policy, wilson_interval
from tuner.strength.ladder import LADDER, load_ladder
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


def test_games_go_to_the_members_near_the_estimate():
    ladder = load_ladder()
    ratings = ladder.ratings
    m4 = LADDER.index("minimax:4")
    near = allocate(ratings, ratings[m4], 30.0, 50)
    assert sum(near.values()) == 50
    assert LADDER.index("random") not in near  # the agent always beats it: no games wasted
    closest = sorted(near, key=lambda j: -near[j])[0]
    assert abs(ratings[closest] - ratings[m4]) <= 100
    # An unknown agent: the games spread over more of the ladder.
    spread = allocate(ratings, float(np.median(ratings)), 400.0, 50)
    assert len(spread) > len(near)


def test_rate_policy_ranks_real_opponents_and_plays_near_them():
    """Rated as agents against the ladder, minimax:3 comes out above greedy, each inside a
    sensible band around its ladder rating, with most games within 150 Elo of it."""
    ladder = load_ladder()
    by_name = {m.name: m for m in ladder.members}
    greedy = rate_policy(GreedyOpponent(tie_break="random"), games=120, seed=1, ladder=ladder)
    deep = rate_policy(MinimaxOpponent(3, tie_break="random"), games=120, seed=1, ladder=ladder)
    assert greedy.games == deep.games == 120
    assert greedy.rating.high < deep.rating.low or greedy.rating.rating < deep.rating.rating
    for rated, name in ((greedy, "greedy"), (deep, "minimax:3")):
        assert rated.rating.low - 150 < by_name[name].rating < rated.rating.high + 150
        played = {k: r.games for k, r in rated.results.items()}
        near = sum(
            g for k, g in played.items() if abs(by_name[k].rating - by_name[name].rating) <= 150
        )
        assert near >= 0.6 * rated.games, played  # most games near the estimate
        assert all(g % 2 == 0 for g in played.values())
    # minimax:6 is far above greedy: few games wasted there (only while the first round
    # still looks for the agent).
    assert greedy.results.get("minimax:6", None) is None or greedy.results["minimax:6"].games <= 12


def test_score_intervals_count_opening_pairs():
    """A 100-game match has 50 opening pairs: its interval is Wilson's over the pairs,
    wider than the same score over 100 independent games would be."""
    from env.arena import play_match

    m = play_match(GreedyOpponent(), MinimaxOpponent(1), 100, rng=0)
    r = opponent_result("minimax:1", [m])
    assert (r.ci_low, r.ci_high) == pytest.approx(wilson_interval(m.pair_scores().sum(), 50))
    lo, hi = wilson_interval(m.score * 100, 100)
    assert r.ci_high - r.ci_low > hi - lo
    assert r.score == pytest.approx(m.score) and r.distinct_openings == m.distinct_openings


# --- objective: rating, end to end ----------------------------------------------------


def test_a_rating_study_reports_ratings_everywhere(tmp_path, runs):
    """A study with objective: rating trains a real (tiny) agent; each evaluation's rating
    is the intermediate value the pruner saw, and the trial's value, user attrs,
    TensorBoard, progress line, `tuner status` and the report all show it."""
    import optuna
    import yaml
    from support import REPO_ROOT, run_cli
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = yaml.safe_load((REPO_ROOT / "studies" / "smoke.yaml").read_text())
    data["study_name"] = "rated"
    data["evaluation"] = {"objective": "rating", "games": 40, "rounds": 2}
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
    report = run_cli("report", str(path), "--out", str(tmp_path / "report"), runs_path=runs)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.html").read_text()
    assert "<th>rating [95% interval]</th>" in text
    assert f"{rating['rating']:.0f} [{rating['low']:.0f}, {rating['high']:.0f}]" in text


def test_evaluate_rating_of_a_saved_model_uses_its_masks(tmp_path, runs):
    """`tuner evaluate MODEL --rating` rates a saved (untrained) MaskablePPO on the ladder:
    its moves go through the action masks, so it never plays an empty pit."""
    from sb3_contrib import MaskablePPO
    from support import run_cli

    from env.kalaha_env import KalahaEnv
    from env.policy_files import save_model

    model = MaskablePPO(
        "MlpPolicy", KalahaEnv(), n_steps=64, batch_size=64, seed=0, policy_kwargs={"net_arch": [8]}
    )
    save_model(model, tmp_path / "agent.zip")
    result = run_cli(
        "evaluate", str(tmp_path / "agent.zip"), "--rating", "--games", "40", runs_path=runs
    )
    assert result.returncode == 0, result.stderr
    assert "rated on the reference ladder from 40 games" in result.stdout
    assert "rating " in result.stdout and "vs random" in result.stdout
    bad = run_cli("evaluate", str(tmp_path / "agent.zip"), "--games", "41", runs_path=runs)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "expected an even number" in bad.stderr


def test_the_rating_benchmark_runs_and_prints_the_share():
    """`python -m benchmarks.rating` with a tiny run exits 0 and prints the evaluation's
    share of a trial (figures only: no timing asserts)."""
    from support import run_module

    done = run_module(
        "benchmarks.rating",
        *("--steps", "2048", "--games", "8", "--levels", "greedy", "--budget", "100000:5"),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "evaluation share of a trial" in done.stdout, done.stdout
    assert "100,000 steps, 5 evals" in done.stdout, done.stdout


def test_an_export_from_before_the_rating_is_a_clear_error():
    """An export whose evaluation still says objective: final names the new key."""
    from tuner.base.errors import UserError
    from tuner.commands.export import train_from_export

    doc = {
        "study": "old",
        "ppo_kwargs": {},
        "env_kwargs": {},
        "budget": {"total_timesteps": 64},
        "evaluation": {"opponents": ["random"], "objective": "final"},
        "seed": 0,
    }
    with pytest.raises(UserError, match=r"expected 'score' or 'rating'.*value_from: final"):
        train_from_export(doc, device="cpu")
