"""Batched matches in paired openings (env/arena.py): game ``2k`` and ``2k + 1`` share a
random opening, the first opponent in seat 0 and then in seat 1; the counts, margins and
scores agree; a fixed rng replays the match; an illegal move is caught, not played."""

import numpy as np
import pytest

from env.arena import play_match
from env.opponents import GreedyOpponent, MinimaxOpponent, RandomOpponent


def test_arena_alternates_seats_and_counts_distinct_games():
    """play_match: game i has the first opponent in seat i % 2; random openings make
    distinct games; the outcome counts, margins and scores agree with one another."""
    result = play_match(MinimaxOpponent(2), GreedyOpponent(), 100, opening_plies=4, rng=1)
    np.testing.assert_array_equal(result.seats, np.arange(100) % 2)
    np.testing.assert_array_equal(result.pairs, np.arange(100) // 2)
    assert result.distinct_games > 1
    assert result.wins + result.draws + result.losses == result.n_games == 100
    np.testing.assert_array_equal(result.outcomes, np.sign(result.margins))
    assert result.score == pytest.approx((result.wins + 0.5 * result.draws) / 100)
    for seat in (0, 1):
        out = result.outcomes[result.seats == seat]
        expected = ((out == 1).sum() + 0.5 * (out == 0).sum()) / out.size
        assert result.seat_score(seat) == pytest.approx(expected)
    assert result.pair_scores().mean() == pytest.approx(result.score)


def test_each_opening_is_played_from_both_seats():
    """Paired openings: the same deterministic player on both sides replays one game per
    opening pair from each seat, so each pair scores exactly one win for each seat (or two
    draws), and every margin is the negative of its partner's. Unpaired random openings
    would give two unrelated games."""
    same = MinimaxOpponent(2)  # tie_break="first": deterministic
    result = play_match(same, same, 200, opening_plies=4, rng=5)
    np.testing.assert_array_equal(result.margins[0::2], -result.margins[1::2])
    np.testing.assert_array_equal(result.pair_scores(), np.full(100, 0.5))
    assert result.openings.shape == (100, 4)
    # Four random plies give distinct openings (measured: about 95 in 100).
    assert result.distinct_openings >= 85, result.distinct_openings


def test_two_opening_plies_repeat_openings():
    """Two random plies give only a few dozen distinct openings in 100 pairs: the reason
    the default is four."""
    from env.arena import DEFAULT_OPENING_PLIES

    two = play_match(RandomOpponent(), RandomOpponent(), 200, opening_plies=2, rng=0)
    four = play_match(RandomOpponent(), RandomOpponent(), 200, rng=0)
    assert DEFAULT_OPENING_PLIES == 4
    assert two.distinct_openings <= 40 < 85 <= four.distinct_openings, (
        two.distinct_openings,
        four.distinct_openings,
    )


def test_arena_without_openings_replays_deterministic_opponents():
    """Two deterministic opponents without random openings play just one game per seat."""
    result = play_match(GreedyOpponent(), MinimaxOpponent(2), 10, opening_plies=0, rng=0)
    assert result.distinct_games == 2


def test_arena_is_reproducible_with_a_fixed_rng():
    """The same rng seed gives the same match."""
    a = play_match(GreedyOpponent(), RandomOpponent(), 50, rng=3)
    b = play_match(GreedyOpponent(), RandomOpponent(), 50, rng=3)
    np.testing.assert_array_equal(a.margins, b.margins)
    assert a.distinct_games == b.distinct_games


def test_arena_rejects_an_opponent_that_plays_an_empty_pit():
    """An opponent returning an empty pit is caught, not played."""

    class Cheater:
        name = "cheater"

        def act(self, boards, players, rng):
            return np.full(boards.shape[0], 2)  # pit 2, empty or not

    with pytest.raises(RuntimeError, match="empty pit"):
        play_match(Cheater(), GreedyOpponent(), 4, opening_plies=0, rng=0)


@pytest.mark.parametrize("n_games", [0, 1, 7])
def test_a_match_is_an_even_number_of_games(n_games):
    """Each opening is played from both seats."""
    with pytest.raises(ValueError, match="even number of at least 2"):
        play_match(GreedyOpponent(), RandomOpponent(), n_games)
