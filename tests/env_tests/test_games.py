"""The episode logic every env shares (env/games.py): ``GameTable`` draws each episode's seat
and opponent, starts it at the agent's turn, and steps all games in one call; its random
streams belong to single games, whatever batch they are drawn in."""

import numpy as np
import pytest

from env.games import GameStreams, GameTable
from env.opponents import GreedyOpponent, RandomOpponent
from env.options import GameOptions, opponent_mix


def seeded(table: GameTable, seed: int) -> GameTable:
    """Game ``i`` draws from a generator seeded ``seed + i``, as a seeded VecEnv does."""
    for game in range(table.n):
        table.streams.reseed(game, np.random.default_rng(seed + game))
    return table


def test_opponents_are_drawn_per_episode_by_their_weights():
    mix = opponent_mix([RandomOpponent(), GreedyOpponent()], [0.8, 0.2])
    table = seeded(GameTable(2000, GameOptions(opponents=mix)), 0)
    table.start(np.arange(table.n))
    share = np.bincount(table.source, minlength=2) / table.n
    assert share == pytest.approx([0.8, 0.2], abs=0.03)
    assert {o.name for o in table.opponent} == {"random", "greedy"}
    assert set(np.unique(table.seat)) == {0, 1}, "the seat is drawn too, unless fixed"


def test_every_episode_starts_at_the_agents_turn_with_a_legal_move():
    """The opponent's replies are played inside the table: the agent always has a move."""
    table = seeded(GameTable(200, GameOptions(opponents=("greedy",), opening_plies=3)), 1)
    table.start(np.arange(table.n))
    assert (table.to_move == table.seat).all()
    assert table.masks().any(axis=1).all()
    assert table.boards.sum(axis=1).tolist() == [48] * table.n, "stones are conserved"


def test_a_fixed_seat_is_kept_and_steps_reach_the_end():
    table = seeded(GameTable(16, GameOptions(), seat=1), 2)
    table.start(np.arange(table.n))
    assert (table.seat == 1).all()
    done = np.zeros(table.n, dtype=bool)
    outcomes = np.zeros(table.n, dtype=np.int64)
    rng = np.random.default_rng(0)
    for _ in range(200):
        if done.all():
            break
        masks = table.masks()
        masks[done] = True  # finished games are not restarted: any pit will do
        pits = (rng.random(masks.shape) * masks).argmax(axis=1)
        live = ~done
        rewards, over, outcome = table.step(np.where(live, pits, 0))
        ended = live & over
        outcomes[ended] = outcome[ended]
        assert (rewards[ended] == outcome[ended]).all(), "no shaping: the reward is the result"
        done |= over
    assert done.all() and set(np.unique(outcomes)) <= {-1, 0, 1}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0], "one non-negative weight per opponent"),
        ([1.0, -0.5], "finite shares >= 0"),
        ([0.0, 0.0], "positive sum"),
    ],
)
def test_bad_weights_are_refused(weights, message):
    """The shares are checked once, where the options are built: no table gets bad ones."""
    with pytest.raises(ValueError, match=message):
        GameOptions(opponents=opponent_mix(["random", "greedy"], weights))


def test_a_seat_other_than_0_1_or_none_is_refused():
    with pytest.raises(ValueError, match="seat must be 0, 1 or None"):
        GameTable(2, GameOptions(), seat=2)


def test_a_games_stream_does_not_depend_on_its_batch():
    """What game 1 draws is the same whether it is drawn alone or beside game 0."""
    alone, together = GameStreams(2), GameStreams(2)
    for streams in (alone, together):
        for game in range(2):
            streams.reseed(game, np.random.default_rng(10 + game))
    one = np.concatenate([alone.draw(np.array([1]), 3)[0] for _ in range(30)])
    both = np.concatenate([together.draw(np.array([0, 1]), 3)[1] for _ in range(30)])
    assert np.array_equal(one, both)
