"""Measuring an agent (tuner/strength/evaluate.py): score intervals over opening pairs, and
the adaptive rating evaluator that plays the ladder members nearest its estimate."""

from __future__ import annotations

import numpy as np
import pytest

from env.opponents import GreedyOpponent, MinimaxOpponent
from tuner.strength.evaluate import allocate, opponent_result, rate_policy, wilson_interval
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
