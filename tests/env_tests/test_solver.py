"""The exact solver against a plain brute force, the rules engine and known values.

Why these tests: a solver that is wrong by one seed in some corner (an extra
turn's sign, a capture on an empty pit, the end-of-game sweep) would make every
regret figure measured on the solved set wrong, and nothing else would notice.
The brute force here shares nothing with the solver but the rules' public API
(:func:`env.rules.apply_move`): no pruning, no table, no ordering, no bounds.
"""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from env.rules import apply_move, initial_board, is_over, legal_pits, store_of
from env.solver import Solution, Solver, check_position


def brute_value(board: tuple[int, ...], player: int, empty_capture: bool) -> int:
    """The final store difference from ``player``'s view by full minimax (memoized).

    Stores only add up, so the value is today's difference plus what a board with
    the same pits and empty stores is worth: the memo is keyed on the pits alone.
    """
    diff = board[store_of(player)] - board[store_of(1 - player)]
    pits = tuple(0 if i in (store_of(0), store_of(1)) else x for i, x in enumerate(board))
    return diff + _brute(pits, player, empty_capture)


@functools.cache
def _brute(board: tuple[int, ...], player: int, empty_capture: bool) -> int:
    best = None
    for pit in legal_pits(list(board), player):
        child, nxt, over = apply_move(list(board), player, pit, empty_capture)
        if over:
            v = child[store_of(player)] - child[store_of(1 - player)]
        elif nxt == player:
            v = brute_value(tuple(child), player, empty_capture)
        else:
            v = -brute_value(tuple(child), nxt, empty_capture)
        best = v if best is None else max(best, v)
    assert best is not None, "a position that is not over has a legal move"
    return best


def random_position(rng: np.random.Generator, seeds: int, plies: int, empty_capture: bool):
    """A position after up to ``plies`` random moves from the start with ``seeds`` per pit."""
    board, player = initial_board(seeds), 0
    for _ in range(plies):
        pits = legal_pits(board, player)
        child, nxt, over = apply_move(board, player, int(rng.choice(pits)), empty_capture)
        if over:
            break
        board, player = child, nxt
    return board, player


def sparse_position(rng: np.random.Generator, seeds: int) -> tuple[list[int], int]:
    """``seeds`` seeds scattered over the twelve pits (both sides non-empty), random stores."""
    while True:
        board = [0] * 14
        for pit in rng.choice([i for i in range(13) if i != 6], size=seeds):
            board[int(pit)] += 1
        board[6], board[13] = (int(x) for x in rng.integers(0, 10, size=2))
        if not is_over(board):
            return board, int(rng.integers(0, 2))


@pytest.mark.parametrize("empty_capture", [False, True])
def test_sparse_positions_match_the_brute_force(empty_capture: bool) -> None:
    rng = np.random.default_rng(7)
    # A small table on purpose: entries get overwritten, and the values must not change.
    solver = Solver(empty_capture=empty_capture, table_bits=10)
    for _ in range(100):
        board, player = sparse_position(rng, int(rng.integers(2, 9)))
        assert solver.value(board, player) == brute_value(tuple(board), player, empty_capture), (
            board,
            player,
        )


@pytest.mark.parametrize("empty_capture", [False, True])
def test_kalah_6_2_endgames_match_the_brute_force(empty_capture: bool) -> None:
    rng = np.random.default_rng(3)
    solver = Solver(empty_capture=empty_capture, table_bits=14)
    checked = 0
    while checked < 12:  # games of Kalah(6,2) once 5 to 8 seeds are left in the pits
        board, player = random_position(rng, 2, int(rng.integers(8, 30)), empty_capture)
        if is_over(board) or not 5 <= sum(board) - board[6] - board[13] <= 8:
            continue
        checked += 1
        assert solver.value(board, player) == brute_value(tuple(board), player, empty_capture)


def _midgame_positions(n: int, seed: int, empty_capture: bool = False) -> list:
    """Kalah(6,4) positions after 14-30 random plies, with 14-26 seeds left in the pits."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        board, player = random_position(rng, 4, int(rng.integers(14, 31)), empty_capture)
        if not is_over(board) and 14 <= sum(board) - board[6] - board[13] <= 26:
            out.append((board, player))
    return out


@pytest.mark.parametrize("empty_capture", [False, True])
def test_move_values_agree_with_the_rules_engine(empty_capture: bool) -> None:
    """Each move value is the value of the board the rules engine makes of that move."""
    shared = Solver(empty_capture=empty_capture)
    for board, player in _midgame_positions(8, seed=11, empty_capture=empty_capture):
        solved = shared.solve_one(board, player)
        assert solved.value == max(v for v in solved.move_values if v is not None)
        assert [v is not None for v in solved.move_values] == [
            k in legal_pits(board, player) for k in range(6)
        ]
        fresh = Solver(empty_capture=empty_capture, table_bits=16)
        for pit in legal_pits(board, player):
            child, nxt, over = apply_move(board, player, pit, empty_capture)
            if over:
                expected = child[store_of(player)] - child[store_of(1 - player)]
            else:
                sign = 1 if nxt == player else -1
                expected = sign * fresh.value(child, nxt)
            assert solved.move_values[pit] == expected


def test_a_perfect_line_played_by_the_rules_engine_ends_at_the_value() -> None:
    """Playing the solver's best moves through apply_move realizes exactly its value."""
    solver = Solver()
    for board, player in _midgame_positions(4, seed=5):
        start_player, promised = player, solver.value(board, player)
        over = False
        while not over:
            pit = solver.solve_one(board, player).best_moves[0]
            board, player, over = apply_move(board, player, pit)
        final = board[store_of(start_player)] - board[store_of(1 - start_player)]
        assert final == promised


def test_a_finished_game_is_worth_its_sweep_and_has_no_moves() -> None:
    board = [0, 0, 0, 0, 0, 0, 20, 1, 2, 0, 0, 0, 3, 22]
    assert Solver(table_bits=10).solve_one(board, 0) == Solution(-8, (None,) * 6)
    assert Solver(table_bits=10).solve_one(board, 1).value == 8


@pytest.mark.parametrize(
    ("board", "player", "message"),
    [
        ([4] * 13, 0, "board must be a list of 14 integers"),
        ([4] * 13 + [1.5], 0, "board must hold integers only"),
        ([4] * 13 + [-1], 0, "between 0 and 127"),
        ([4] * 14, 2, "to_move must be 0 or 1, but got 2"),
        ([4] * 14, True, "to_move must be 0 or 1"),
    ],
)
def test_bad_positions_are_refused_with_what_was_expected(board, player, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_position(board, player)


@pytest.mark.minutes  # run with: pytest -m minutes tests/env_tests/test_solver.py -s
@pytest.mark.parametrize(("empty_capture", "expected"), [(False, 8), (True, 10)])
def test_the_start_position_is_the_published_result(empty_capture: bool, expected: int) -> None:
    """Kalah(6,4): +8 for the first player (Rawlings 2015), +10 with empty capture (Irving et al. 2000)."""
    solver = Solver(empty_capture=empty_capture, table_bits=26)  # 2 GiB
    began = time.process_time()
    value = solver.value(initial_board(4), 0)
    print(
        f"start position, empty_capture={empty_capture}: {value:+d}, "
        f"{solver.nodes:,} nodes, {time.process_time() - began:.0f} CPU s"
    )
    assert value == expected
