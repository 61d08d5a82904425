"""Random-playout throughput: the batched numba engine vs a plain per-game Python loop.

Both sides run the very same rules code: the baseline calls the kernel's
un-compiled Python source (numba's ``py_func``) one game at a time, as a plain
Python implementation would, so the ratio measures the engine and nothing else.
Run it with ``make bench``; it prints figures, it never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

from env.rules import BOARD_DTYPE, _apply_one, initial_board, random_playouts

MAX_PLIES = 300


def batched(n_games: int, seed: int) -> tuple[int, float]:
    rng = np.random.default_rng(seed)
    boards = np.tile(np.asarray(initial_board(), dtype=BOARD_DTYPE), (n_games, 1))
    players = np.zeros(n_games, dtype=np.int64)
    choices = rng.random((n_games, MAX_PLIES))
    start = time.perf_counter()
    moves = random_playouts(boards, players, choices)
    return moves, time.perf_counter() - start


def python_loop(n_games: int, seed: int) -> tuple[int, float]:
    apply_one = _apply_one.py_func
    rnd = random.Random(seed)
    moves = 0
    start = time.perf_counter()
    for _ in range(n_games):
        board = np.asarray(initial_board(), dtype=BOARD_DTYPE)
        player, done = 0, False
        while not done:
            base = 7 * player
            legal = [k for k in range(6) if board[base + k] > 0]
            player, done = apply_one(board, player, rnd.choice(legal), False)
            moves += 1
    return moves, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=20_000, help="games for the batched engine")
    parser.add_argument("--loop-games", type=int, default=500, help="games for the Python loop")
    args = parser.parse_args()

    batched(16, seed=0)  # compile (or load the cache) outside the timing
    b_moves, b_time = batched(args.games, seed=1)
    p_moves, p_time = python_loop(args.loop_games, seed=1)
    b_rate, p_rate = b_moves / b_time, p_moves / p_time
    print("random Kalah(6,4) playouts, one core")
    print(f"  batched numba engine : {b_rate:>12,.0f} moves/s  ({args.games} games)")
    print(f"  per-game Python loop : {p_rate:>12,.0f} moves/s  ({args.loop_games} games)")
    print(f"  ratio                : {b_rate / p_rate:>12.1f}x  (target: at least 30x)")


if __name__ == "__main__":
    main()
