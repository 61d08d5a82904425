"""Measuring an agent (tuner/strength/evaluate.py): score intervals over opening pairs, and
the adaptive rating evaluator that plays the ladder members nearest its estimate."""

from __future__ import annotations

import numpy as np
import pytest

from env.opponents import GreedyOpponent, MinimaxOpponent
from env.options import GameOptions
from tuner.config.spec import EvaluationSpec
from tuner.strength.evaluate import (
    allocate,
    combine_score,
    evaluate_policy,
    make_evaluator,
    opponent_result,
    rate_policy,
    round_sizes,
    wilson_interval,
)
from tuner.strength.ladder import LADDER, load_ladder


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


@pytest.mark.slow
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


# --- scores against the study's opponents ---------------------------------------------------


def test_each_opponent_is_played_from_both_seats_with_an_interval():
    """An opponent object stands in for a model (``as_agent`` takes either): greedy against
    random and against itself, 20 games each, 10 openings from both seats."""
    results = evaluate_policy(GreedyOpponent(), ["random", "greedy"], 20, seed=0)
    assert list(results) == ["random", "greedy"]
    for r in results.values():
        assert r.games == r.wins + r.draws + r.losses == 20
        assert r.ci_low <= r.score <= r.ci_high
        assert r.score == pytest.approx((r.score_first + r.score_second) / 2)
        assert 1 <= r.distinct_openings <= 10
    assert results["random"].score > 0.5, "greedy beats random"


def test_the_score_combines_by_the_studys_rule():
    results = evaluate_policy(GreedyOpponent(), ["random", "greedy"], 20, seed=1)
    random, greedy = results["random"].score, results["greedy"].score
    assert combine_score(results, "mean") == pytest.approx((random + greedy) / 2)
    assert combine_score(results, "min") == min(random, greedy)
    weighted = combine_score(results, "weighted", {"random": 1.0, "greedy": 3.0})
    assert weighted == pytest.approx((random + 3 * greedy) / 4)


def test_an_evaluator_is_reproducible_from_its_seed():
    """Two trials with one seed see the same openings; the value is the combined score."""
    evaluation = EvaluationSpec(opponents=["random", "greedy"], games=10, combine="min")
    first = make_evaluator(evaluation, GameOptions(), seed=5)(GreedyOpponent())
    again = make_evaluator(evaluation, GameOptions(), seed=5)(GreedyOpponent())
    assert first == again
    assert first.value == min(r.score for r in first.results.values())
    assert first.rating is None
    assert first.describe().startswith(f"score {first.value:.3f} over 20 games, optimal "), (
        "2 opponents x 10, then the perfect-play numbers (Kalah(6,4), no search)"
    )


def test_an_evaluator_scores_the_solved_set_where_the_game_allows():
    """By default beside the score on Kalah(6,4); never on another game, with a search or
    when told not to; as the value (minus the mean regret) with objective: perfect."""
    from tuner.strength.perfect import perfect_scorer

    exact = perfect_scorer()(GreedyOpponent())
    scored = EvaluationSpec(opponents=["random"], games=2)
    assert make_evaluator(scored, GameOptions(), seed=0)(GreedyOpponent()).perfect == exact
    for evaluation, game in [
        (scored, GameOptions(stones=5)),
        (scored, GameOptions(empty_capture=True)),
        (scored.model_copy(update={"perfect": False}), GameOptions()),
        (scored.model_copy(update={"search": "ab:1"}), GameOptions()),
    ]:
        assert make_evaluator(evaluation, game, seed=0)(GreedyOpponent()).perfect is None
    alone = make_evaluator(EvaluationSpec(objective="perfect"), GameOptions(), seed=0)
    strength = alone(GreedyOpponent())
    assert strength.value == round(-exact.regret.mean, 4) and strength.results == {}
    assert strength.describe() == f"optimal {exact.optimal.mean:.3f} regret {exact.regret.mean:.2f}"


@pytest.mark.parametrize(("pairs", "rounds"), [(100, 4), (10, 4), (3, 4), (1, 1)])
def test_rating_rounds_grow_and_spend_every_pair(pairs, rounds):
    """A small first round finds the agent; the larger later ones play where it stands."""
    sizes = round_sizes(pairs, rounds)
    assert sum(sizes) == pairs and all(s > 0 for s in sizes)
    assert len(sizes) <= min(pairs, rounds)
    assert sizes == sorted(sizes)
