"""Property test: the batched engine and the single-game API agree, move by move.

Thousands of random games are stepped together through ``apply_moves`` /
``legal_masks`` on an ``(n, 14)`` batch, and each game is replayed one move at a
time through ``apply_move`` / ``legal_pits``. Every board, next player and end
flag must agree, and no stone may appear or vanish.

The two APIs share one compiled kernel, so each move is also checked against
:func:`reference_move`, a plain transcription of the rules in DESIGN.md written
here, apart from the engine.
"""

import numpy as np
import pytest

from env.rules import (
    BOARD_DTYPE,
    apply_move,
    apply_moves,
    initial_board,
    is_over,
    legal_masks,
    legal_pits,
    random_playouts,
)

N_GAMES = 3000
MAX_PLIES = 400


def reference_move(board, player, pit, empty_capture):
    """The rules as DESIGN.md states them, move by move, in plain Python."""
    b = list(board)
    own_store, opp_store = (6, 13) if player == 0 else (13, 6)
    own_pits = range(7 * player, 7 * player + 6)
    pos = 7 * player + pit
    hand, b[pos] = b[pos], 0
    while hand:  # 1. sow counter-clockwise, skipping the opponent's store
        pos = (pos + 1) % 14
        if pos != opp_store:
            b[pos] += 1
            hand -= 1
    if pos == own_store:  # 2. extra turn
        next_player = player
    else:
        next_player = 1 - player
        # 3. capture: last stone in an own pit that was empty
        if pos in own_pits and b[pos] == 1 and (b[12 - pos] > 0 or empty_capture):
            b[own_store] += b[pos] + b[12 - pos]
            b[pos] = b[12 - pos] = 0
    over = not any(b[0:6]) or not any(b[7:13])
    if over:  # 4. the sweep: stones go to the store of their own side
        b[6] += sum(b[0:6])
        b[13] += sum(b[7:13])
        b[0:6] = b[7:13] = [0] * 6
    return b, next_player, over


@pytest.mark.slow
@pytest.mark.parametrize("empty_capture", [False, True], ids=["standard", "empty_capture"])
def test_batched_engine_agrees_with_single_game_api(empty_capture):
    """Batch and scalar API: same legal pits, boards, next players and game-over flags."""
    rng = np.random.default_rng(20240 + int(empty_capture))
    stones = rng.integers(3, 7, size=N_GAMES)  # 3..6 stones per pit, mixed in one batch
    boards = np.array([initial_board(int(s)) for s in stones], dtype=BOARD_DTYPE)
    totals = boards.sum(axis=1)
    players = np.zeros(N_GAMES, dtype=np.int64)
    live = np.ones(N_GAMES, dtype=bool)

    # The single-game replay, one Python list per game.
    singles = [list(map(int, b)) for b in boards]
    single_players = [0] * N_GAMES

    moves = extra_turns = game_ends = 0
    for _ in range(MAX_PLIES):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        masks = legal_masks(boards[idx], players[idx])
        assert masks.any(axis=1).all(), "a live game always has a legal move"
        # A uniformly random legal pit per game.
        pits = (rng.random(masks.shape) * masks).argmax(axis=1).astype(np.int64)

        sub = boards[idx]
        movers = players[idx].copy()
        nxt, over = apply_moves(sub, movers, pits, empty_capture)
        boards[idx] = sub
        players[idx] = nxt
        live[idx[over]] = False

        for j, g in enumerate(idx):
            legal = legal_pits(singles[g], single_players[g])
            assert legal == list(np.flatnonzero(masks[j])), f"game {g}: legal pits differ"
            board, player, done = apply_move(
                singles[g], single_players[g], int(pits[j]), empty_capture=empty_capture
            )
            assert board == boards[g].tolist(), f"game {g}: boards differ"
            reference = reference_move(singles[g], single_players[g], int(pits[j]), empty_capture)
            assert (board, player, done) == reference, f"game {g}: engine and reference differ"
            assert player == int(nxt[j]), f"game {g}: next player differs"
            assert done is bool(over[j]), f"game {g}: game_over differs"
            assert is_over(board) is done, f"game {g}: game_over disagrees with is_over"
            singles[g], single_players[g] = board, player
            extra_turns += int(player == movers[j] and not done)
        moves += idx.size
        game_ends += int(over.sum())

        np.testing.assert_array_equal(boards.sum(axis=1), totals, "stones are conserved")
        assert (boards >= 0).all()

    assert not live.any(), f"every game ends within {MAX_PLIES} plies"
    assert game_ends == N_GAMES
    # A finished game has every stone in a store (the sweep).
    np.testing.assert_array_equal(boards[:, :6], 0)
    np.testing.assert_array_equal(boards[:, 7:13], 0)
    np.testing.assert_array_equal(boards[:, 6] + boards[:, 13], totals)
    # The random games did exercise the rules that matter.
    assert moves > 20 * N_GAMES
    assert extra_turns > N_GAMES


def test_random_playouts_finish_games_and_conserve_stones():
    """random_playouts (the benchmark kernel) plays legal games to a swept end."""
    rng = np.random.default_rng(7)
    n = 500
    boards = np.tile(np.asarray(initial_board(), dtype=BOARD_DTYPE), (n, 1))
    players = np.zeros(n, dtype=np.int64)
    moves = random_playouts(boards, players, rng.random((n, MAX_PLIES)))
    assert moves > 20 * n
    np.testing.assert_array_equal(boards[:, 6] + boards[:, 13], 48)
    np.testing.assert_array_equal(boards[:, :6], 0)
    np.testing.assert_array_equal(boards[:, 7:13], 0)


def test_random_playouts_match_the_single_game_api():
    """random_playouts' k-th-legal-pit choice replays exactly through apply_move."""
    rng = np.random.default_rng(11)
    n = 50
    choices = rng.random((n, MAX_PLIES))
    boards = np.tile(np.asarray(initial_board(), dtype=BOARD_DTYPE), (n, 1))
    random_playouts(boards, np.zeros(n, dtype=np.int64), choices)
    for g in range(n):
        board, player, done, t = initial_board(), 0, False, 0
        while not done:
            legal = legal_pits(board, player)
            pit = legal[int(choices[g, t] * len(legal))]
            board, player, done = apply_move(board, player, pit)
            t += 1
        assert board == boards[g].tolist()
