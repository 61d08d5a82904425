"""The curriculum (env/curriculum.py): PFSP on the learner's evaluation moves the mix of
ladder members toward those it wins about half its games against."""

from __future__ import annotations

import numpy as np
import pytest

from env.curriculum import Curriculum, fit_rating, is_curriculum, parse_curriculum
from env.games import GameTable
from env.options import GameOptions

RATINGS = {"greedy": 517.0, "minimax:1": 617.0, "minimax:2": 745.0, "minimax:3": 803.0}
MEMBERS = list(RATINGS)


def test_specs_name_members_and_noise():
    assert parse_curriculum("curriculum") == (
        ["greedy", *(f"minimax:{d}" for d in range(1, 6))],
        0.1,
    )
    assert parse_curriculum("curriculum:2@0.05") == (["greedy", "minimax:1", "minimax:2"], 0.05)
    assert is_curriculum("curriculum:3") and not is_curriculum("minimax:3")
    for bad in ("curriculum:7", "curriculum:0", "curriculum:x", "curriculum@2", "curriculumx"):
        with pytest.raises(ValueError, match="a curriculum is one of"):
            parse_curriculum(bad)


def test_a_fresh_learner_starts_at_the_weakest_members():
    """Rated as random (0) before any evaluation: greedy first, minimax:3 least."""
    w = Curriculum(MEMBERS, ratings=RATINGS).weights()
    assert w[0] > w[1] > w[2] > w[3]


def test_beaten_weak_members_lose_weight_and_stronger_ones_gain():
    cur = Curriculum(MEMBERS, ratings=RATINGS)
    before = cur.shares()
    # The learner now beats greedy and minimax:1 almost always, and is even with minimax:2.
    after = cur.update({"greedy": (0.97, 200), "minimax:1": (0.9, 200), "minimax:2": (0.5, 200)})
    assert after["greedy"] < before["greedy"] and after["minimax:1"] < before["minimax:1"]
    assert after["minimax:2"] > before["minimax:2"] and after["minimax:3"] > before["minimax:3"]
    assert max(after, key=after.__getitem__) == "minimax:2", "even games come up most"
    # minimax:3 was not played: its score is the Elo expectation of the fitted rating.
    assert 745 < cur.rating < 1000 and 0.5 < cur.p[3] < 0.7
    assert [h["shares"] for h in cur.history] == [after]


def test_the_evaluations_rating_places_the_members_not_played():
    cur = Curriculum(MEMBERS, ratings=RATINGS)
    cur.update({"minimax:3": (0.5, 100)}, rating=800.0)
    assert cur.rating == 800.0
    assert cur.p[0] > cur.p[1] > cur.p[2] > 0.5, "greedy..minimax:2 from the rating"
    assert cur.p[3] == pytest.approx(51 / 102), "minimax:3 from its own games"


def test_an_evaluation_without_ladder_members_leaves_the_shares():
    cur = Curriculum(MEMBERS, ratings=RATINGS)
    before = cur.shares()
    assert cur.update({"policy:x.zip": (1.0, 100)}) == before
    assert np.isnan(fit_rating({"policy:x.zip": (1.0, 100)}, RATINGS))


def test_fit_rating_is_elo():
    assert fit_rating({"minimax:2": (0.5, 1000)}, RATINGS) == pytest.approx(745.0, abs=1.0)
    assert fit_rating({"greedy": (0.76, 10_000)}, RATINGS) == pytest.approx(717, abs=5)


def test_the_table_draws_members_by_the_curriculums_shares():
    """In a game table the curriculum is one source; its members come up as its shares say."""
    table = GameTable(400, GameOptions(opponents={"curriculum:2": 1.0}))
    (cur,) = table.sources
    assert isinstance(cur, Curriculum) and cur.members == ["greedy", "minimax:1", "minimax:2"]
    cur.p[:] = [0.99, 0.99, 0.5]  # only minimax:2 is even
    table.start(np.arange(table.n))
    names = [o.name for o in table.opponent]
    assert names.count("minimax:2@0.1") > 0.8 * len(names)
