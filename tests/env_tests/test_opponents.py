"""Opponents: legal moves, the spec parser, playing strength (measured in the arena), policies."""

import numpy as np
import pytest
from sb3_contrib import MaskablePPO

from env.arena import play_match
from env.kalaha_env import KalahaEnv
from env.opponents import (
    SPEC_HELP,
    GreedyOpponent,
    MinimaxOpponent,
    PolicyOpponent,
    RandomOpponent,
    make_opponent,
)
from env.policy_files import save_model
from env.rules import BOARD_DTYPE, apply_moves, initial_board, legal_masks


def random_positions(n_games=60, stones=4, rng=0):
    """Every position (board, player to move) met in ``n_games`` random games."""
    rng = np.random.default_rng(rng)
    boards = np.tile(np.asarray(initial_board(stones), dtype=BOARD_DTYPE), (n_games, 1))
    players = np.zeros(n_games, dtype=np.int64)
    live = np.ones(n_games, dtype=bool)
    seen_boards, seen_players = [], []
    while live.any():
        idx = np.flatnonzero(live)
        seen_boards.append(boards[idx].copy())
        seen_players.append(players[idx].copy())
        masks = legal_masks(boards[idx], players[idx])
        pits = (rng.random(masks.shape) * masks).argmax(axis=1).astype(np.int64)
        sub = boards[idx]
        nxt, over = apply_moves(sub, players[idx], pits, False)
        boards[idx] = sub
        players[idx] = nxt
        live[idx[over]] = False
    return np.concatenate(seen_boards), np.concatenate(seen_players)


def mirror(board):
    """The same position with the players' sides swapped."""
    board = list(board)
    return board[7:] + board[:7]


def pick(opponent, board, player, rng=0):
    """One opponent decision on one board."""
    boards = np.asarray([board], dtype=BOARD_DTYPE)
    return int(opponent.act(boards, np.array([player]), np.random.default_rng(rng))[0])


def tiny_model(**kwargs):
    """A freshly built (untrained) MaskablePPO with a tiny net, on CPU."""
    return MaskablePPO(
        "MlpPolicy",
        KalahaEnv(**kwargs),
        n_steps=64,
        batch_size=64,
        policy_kwargs={"net_arch": [16, 16]},
        device="cpu",
        seed=0,
    )


def assert_legal(opponent, boards, players, rng=0):
    pits = np.asarray(opponent.act(boards, players, np.random.default_rng(rng)))
    assert pits.shape == (boards.shape[0],)
    assert np.issubdtype(pits.dtype, np.integer)
    masks = legal_masks(boards, players.astype(np.int64))
    assert masks[np.arange(boards.shape[0]), pits].all(), f"{opponent.name} chose an empty pit"
    return pits


# --- legal moves -------------------------------------------------------------------


@pytest.mark.parametrize(
    "opponent",
    [
        RandomOpponent(),
        GreedyOpponent(),
        GreedyOpponent(tie_break="random"),
        GreedyOpponent(empty_capture=True),
        MinimaxOpponent(1),
        MinimaxOpponent(2, tie_break="random"),
        MinimaxOpponent(3, empty_capture=True),
    ],
    ids=lambda o: f"{o.name}-{getattr(o, 'tie_break', '')}-{getattr(o, 'empty_capture', '')}",
)
def test_opponent_returns_legal_pits_for_a_batch_of_positions(opponent):
    """act() returns one legal pit per game, for both players to move, in one batch."""
    boards, players = random_positions()
    assert set(players.tolist()) == {0, 1}
    assert len(boards) > 1000
    assert_legal(opponent, boards, players)
    # Positions with one legal pit only: that pit.
    one = legal_masks(boards, players).sum(axis=1) == 1
    assert one.any()
    pits = assert_legal(opponent, boards[one], players[one])
    np.testing.assert_array_equal(pits, legal_masks(boards[one], players[one]).argmax(axis=1))


@pytest.mark.parametrize("stones", [3, 6])
def test_opponents_are_legal_with_other_stone_counts(stones):
    """Legal pits also when the game starts with 3 or 6 stones per pit."""
    boards, players = random_positions(n_games=20, stones=stones, rng=stones)
    for opponent in (RandomOpponent(), GreedyOpponent(), MinimaxOpponent(2)):
        assert_legal(opponent, boards, players)


def test_random_opponent_plays_every_legal_pit():
    """The random opponent is uniform over legal pits: from the start, all six occur."""
    boards = np.tile(np.asarray(initial_board(), dtype=BOARD_DTYPE), (600, 1))
    pits = RandomOpponent().act(boards, np.zeros(600, dtype=np.int64), np.random.default_rng(0))
    counts = np.bincount(pits, minlength=6)
    assert (counts > 60).all(), counts


# --- the spec parser ---------------------------------------------------------------


def test_make_opponent_parses_the_specs():
    """'random', 'greedy' and 'minimax:K' build the matching opponents."""
    assert isinstance(make_opponent("random"), RandomOpponent)
    greedy = make_opponent("greedy", empty_capture=True)
    assert isinstance(greedy, GreedyOpponent) and greedy.empty_capture
    minimax = make_opponent("minimax:3")
    assert isinstance(minimax, MinimaxOpponent)
    assert minimax.depth == 3 and minimax.name == "minimax:3"
    assert make_opponent("minimax:12").depth == 12
    assert make_opponent("greedy", tie_break="random").tie_break == "random"


@pytest.mark.parametrize(
    "spec",
    ["", "Random", "randm", "greedy:2", "minimax", "minimax:", "minimax:0", "minimax:-1",
     "minimax:x", "minimax:2.5", "policy", "policy:", "alphazero", 3, None],
)  # fmt: skip
def test_make_opponent_rejects_bad_specs_listing_the_valid_forms(spec):
    """A bad spec is a ValueError that repeats the spec and lists the valid forms."""
    with pytest.raises(ValueError) as excinfo:
        make_opponent(spec)
    message = str(excinfo.value)
    assert repr(spec) in message
    assert SPEC_HELP in message
    for form in ("random", "greedy", "minimax:K", "policy:PATH"):
        assert form in message


def test_make_opponent_rejects_a_missing_policy_file(tmp_path):
    """'policy:PATH' for a file that is not there is a ValueError naming the path."""
    missing = tmp_path / "nope.zip"
    with pytest.raises(ValueError, match="nope"):
        make_opponent(f"policy:{missing}")


def test_minimax_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        MinimaxOpponent(0)


# --- hand-built positions ----------------------------------------------------------

#       p1:  [ 2][ 6][ 2][ 2][ 2][ 2]
#     [ 0]                              [ 0]
#       p0:  [ 1][ 0][ 0][ 0][ 0][ 1]
# p0 pit 5: one seed into the store, an extra turn (+1).
# p0 pit 0: one seed into empty pit 1, capturing the 6 opposite (+7), no extra turn.
EXTRA_TURN_OR_CAPTURE = [1, 0, 0, 0, 0, 1, 0, 2, 2, 2, 2, 6, 2, 0]

#       p1:  [ 2][ 6][ 2][ 2][ 2][ 2]
#     [ 0]                              [ 0]
#       p0:  [ 1][ 0][ 0][ 0][ 3][ 0]
# p0 pit 4: pit 5, store, p1 pit 0 (+1).  p0 pit 0: capture (+7).  No extra turn.
CAPTURE_OR_SOW = [1, 0, 0, 0, 3, 0, 0, 2, 2, 2, 2, 6, 2, 0]


@pytest.mark.parametrize("player", [0, 1])
def test_greedy_prefers_an_extra_turn_to_a_bigger_gain(player):
    """Greedy takes the extra-turn move (+1) over a capture (+7), from either seat."""
    board = EXTRA_TURN_OR_CAPTURE if player == 0 else mirror(EXTRA_TURN_OR_CAPTURE)
    assert pick(GreedyOpponent(), board, player) == 5


@pytest.mark.parametrize("player", [0, 1])
def test_greedy_takes_the_largest_store_gain(player):
    """Without an extra turn on offer, greedy takes the capture (+7) over a sow (+1)."""
    board = CAPTURE_OR_SOW if player == 0 else mirror(CAPTURE_OR_SOW)
    assert pick(GreedyOpponent(), board, player) == 0


def test_greedy_ties_go_to_the_lowest_pit_or_a_random_best_one():
    """From the start, the only extra-turn move is pit 2; from a position with equal
    gains, tie_break="first" takes the lowest pit and "random" varies among the best."""
    assert pick(GreedyOpponent(), initial_board(), 0) == 2
    # p0 [4 4 0 5 5 5], store 1: pits 3, 4, 5 each gain 1 (no extra turn, no capture).
    board = [4, 4, 0, 5, 5, 5, 1, 4, 4, 4, 4, 4, 4, 0]
    assert pick(GreedyOpponent(), board, 0) == 3
    boards = np.tile(np.asarray(board, dtype=BOARD_DTYPE), (200, 1))
    pits = GreedyOpponent(tie_break="random").act(
        boards, np.zeros(200, dtype=np.int64), np.random.default_rng(0)
    )
    assert set(pits.tolist()) == {3, 4, 5}


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("player", [0, 1])
def test_minimax_finds_an_obvious_capture(depth, player):
    """Minimax of any depth takes the 7-seed capture, from either seat."""
    board = CAPTURE_OR_SOW if player == 0 else mirror(CAPTURE_OR_SOW)
    assert pick(MinimaxOpponent(depth), board, player) == 0


def test_minimax_takes_a_game_winning_capture():
    """A capture that empties the opponent's side and wins the game outright."""
    #       p1:  [ 0][ 5][ 0][ 0][ 0][ 0]
    #     [19]                              [18]
    #       p0:  [ 1][ 0][ 1][ 1][ 1][ 2]
    # Only p0 pit 0 -> empty pit 1 captures: the 5 seeds opposite leave p1 with none,
    # so the game ends 18 + 6 + 5 swept = 29 against 19, every seed p0 can still get.
    board = [1, 0, 1, 1, 1, 2, 18, 0, 0, 0, 0, 5, 0, 19]
    for depth in (1, 3, 5):
        assert pick(MinimaxOpponent(depth), board, 0) == 0


@pytest.mark.parametrize("player", [0, 1])
def test_minimax_searches_extra_turn_chains_to_their_end(player):
    """Depth counts changes of turn: an extra turn continues the same ply, so even depth 1
    sees that pit 5 (store), pit 4 (store), pit 5 (store), pit 3 (capture 9) wins most."""
    #       p1:  [ 1][ 0][ 0][ 0][ 9][ 0]
    #     [10]                              [10]
    #       p0:  [ 0][ 0][ 0][ 1][ 2][ 1]
    # Pit 4 first (store, then pit 3 captures) scores 11; the longer chain from pit 5
    # ends the game at +12. A search that spent depth on extra turns would stop short.
    board = [0, 0, 0, 1, 2, 1, 10, 0, 9, 0, 0, 0, 1, 10]
    board = board if player == 0 else mirror(board)
    assert pick(MinimaxOpponent(1), board, player) == 5


# --- playing strength, in the arena -----------------------------------------------------


def test_greedy_beats_random():
    """Greedy scores at least 0.90 in 400 games against random, from both seats."""
    result = play_match(GreedyOpponent(), RandomOpponent(), 400, rng=0)
    assert result.n_games == 400 and result.n_pairs == 200
    assert result.score >= 0.90, result.score
    assert result.seat_score(0) >= 0.85 and result.seat_score(1) >= 0.85


def test_minimax_beats_greedy():
    """MinimaxOpponent(4) scores at least 0.85 in 400 games against greedy (4 random
    opening plies; about 0.90 with rng=0)."""
    result = play_match(MinimaxOpponent(4), GreedyOpponent(), 400, opening_plies=4, rng=0)
    assert result.score >= 0.85, result.score
    assert result.seat_score(0) >= 0.80 and result.seat_score(1) >= 0.80


def test_arena_rejects_no_games():
    with pytest.raises(ValueError, match="n_games"):
        play_match(RandomOpponent(), RandomOpponent(), 0)
    with pytest.raises(ValueError, match="even number"):
        play_match(RandomOpponent(), RandomOpponent(), 7)


# --- policies ----------------------------------------------------------------------


def test_policy_opponent_wraps_an_untrained_model(one_torch_thread):
    """PolicyOpponent around a fresh MaskablePPO returns legal pits for both players."""
    opponent = PolicyOpponent(tiny_model())
    assert opponent.name == "policy"
    boards, players = random_positions(n_games=30)
    assert_legal(opponent, boards, players)
    # It can sit in the arena and in the env like any other opponent.
    result = play_match(opponent, RandomOpponent(), 20, rng=0)
    assert result.n_games == 20
    kalaha = KalahaEnv(opponent=opponent, seat=1)
    obs, info = kalaha.reset(seed=0)
    assert info["opponent"] == "policy"


def test_policy_opponent_loads_a_saved_zip(tmp_path, one_torch_thread):
    """A model saved to .zip loads as a PolicyOpponent (path with or without the suffix,
    or through the 'policy:PATH' spec) and plays as the model in memory does."""
    model = tiny_model()
    path = tmp_path / "tiny.zip"
    save_model(model, path)
    boards, players = random_positions(n_games=20, rng=1)
    expected = PolicyOpponent(model).act(boards, players, np.random.default_rng(0))
    for opponent in (
        PolicyOpponent(str(path)),
        PolicyOpponent(tmp_path / "tiny"),
        make_opponent(f"policy:{path}"),
    ):
        assert opponent.name.startswith("policy:")
        pits = assert_legal(opponent, boards, players)
        np.testing.assert_array_equal(pits, expected)
    kalaha = KalahaEnv(opponent=f"policy:{path}", seat=1)
    kalaha.reset(seed=0)
    assert kalaha.step(int(np.flatnonzero(kalaha.action_masks())[0]))[0].shape == (14,)


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("lookahead", [0, 2])
def test_policy_opponents_pick_what_predict_picks_from_the_same_random_numbers(
    one_torch_thread, deterministic, lookahead
):
    """PolicyOpponent's fast path (env.networks.PolicyActor) gives MaskablePPO.predict's
    actions, sampled ones included: the same draws from torch's generator, which both
    leave in the same state; like predict, it puts a policy in training mode into eval."""
    import torch

    from env.networks import PrecomputedLookahead

    policy_kwargs = {"net_arch": [16, 16]}
    if lookahead:
        policy_kwargs |= {
            "features_extractor_class": PrecomputedLookahead,
            "features_extractor_kwargs": {"plies": lookahead},
            "share_features_extractor": False,
        }
    model = MaskablePPO(
        "MlpPolicy", KalahaEnv(lookahead=lookahead), policy_kwargs=policy_kwargs, seed=0
    )
    opponent = PolicyOpponent(model, deterministic=deterministic)
    boards, players = random_positions(n_games=40, rng=2)
    obs, masks = opponent.observation(boards, players), legal_masks(boards, players)
    for rows in (slice(0, 3), slice(0, None)):
        model.policy.set_training_mode(True)
        torch.manual_seed(5)
        fast = opponent.act(boards[rows], players[rows], np.random.default_rng(0))
        after_fast = torch.rand(3)
        assert not model.policy.training
        torch.manual_seed(5)
        expected, _ = model.predict(
            obs[rows], action_masks=masks[rows], deterministic=deterministic
        )
        np.testing.assert_array_equal(fast, expected)
        assert torch.equal(torch.rand(3), after_fast)
