"""The lookahead features of a batch of boards, once per step, by the rules engine.

What they are (the network reads them beside the 14 counts; see
:class:`env.networks.PrecomputedLookahead`): for each of the mover's six pits, in the
mover's view, the board after that move (divided by the stones per pit), whether
the move is legal, earns another move, or ends the game, and with two plies the
best immediate store gain of whoever moves next and whether they can move again
(positive when that is the mover, negative when it is the opponent; zero once the
game is over). An empty pit's move leaves the board as it is, with the opponent
to move.

Why here and not in the network: the features are a pure function of the board,
and a network that computes them in its forward pass pays for them again in
every PPO epoch and minibatch (36 two-ply boards per sample, 3.1x slower
training at 64 envs). Computed here, they are paid once per environment step, by
one numba call for all the games of a batch, and every move is applied by
:func:`env.rules._apply_one`: the same rules, never a second statement of them.
The values equal, bit for bit, those that ``env.networks.Lookahead`` computes in
torch (a test compares them on reachable boards under both capture rules).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from env.rules import BOARD_SIZE, N_PITS, SIDE, _apply_one, pit_index, store_of

# Features per move: the board after it (14), legal, extra, over; two plies add the
# next mover's best store gain and whether it can move again.
PER_MOVE = {1: BOARD_SIZE + 3, 2: BOARD_SIZE + 5}


def feature_count(plies: int) -> int:
    """How many features :func:`lookahead_features` gives per board (102 or 114)."""
    if plies not in PER_MOVE:
        raise ValueError(f"lookahead: expected 1 or 2 plies, but got {plies!r}")
    return N_PITS * PER_MOVE[plies]


@njit(cache=True, nogil=True)
def _reply(board: np.ndarray, mover: int, empty_capture: bool) -> tuple:
    """``mover``'s best one-move store gain on ``board`` (0 if none), and whether a move
    of theirs earns another move without ending the game."""
    best = 0
    again = False
    store = store_of(mover)
    for k in range(N_PITS):
        if board[pit_index(mover, k)] == 0:
            continue
        child = board.copy()
        nxt, done = _apply_one(child, mover, k, empty_capture)
        best = max(best, child[store] - board[store])
        if nxt == mover and not done:
            again = True
    return best, again


@njit(cache=True, nogil=True)
def _move_features(
    board: np.ndarray,
    player: int,
    k: int,
    stones: float,
    plies: int,
    empty_capture: bool,
    out: np.ndarray,
) -> None:
    """The features of ``player``'s move ``k`` on ``board`` into ``out`` (one move's row)."""
    child = board.copy()
    legal = board[pit_index(player, k)] > 0
    nxt, done = 1 - player, False
    if legal:
        nxt, done = _apply_one(child, player, k, empty_capture)
    extra = legal and nxt == player and not done
    for j in range(BOARD_SIZE):  # the mover's view: own side first
        out[j] = child[(j + SIDE * player) % BOARD_SIZE] / stones
    out[BOARD_SIZE] = 1.0 if legal else 0.0
    out[BOARD_SIZE + 1] = 1.0 if extra else 0.0
    out[BOARD_SIZE + 2] = 1.0 if done else 0.0
    if plies == 2:
        if done:
            out[BOARD_SIZE + 3] = 0.0
            out[BOARD_SIZE + 4] = 0.0
        else:
            best, again = _reply(child, player if extra else 1 - player, empty_capture)
            sign = 1.0 if extra else -1.0
            out[BOARD_SIZE + 3] = sign * best / stones
            out[BOARD_SIZE + 4] = sign if again else 0.0


@njit(cache=True, nogil=True)
def _features(
    boards: np.ndarray, players: np.ndarray, stones: float, plies: int, empty_capture: bool
) -> np.ndarray:
    n = boards.shape[0]
    width = BOARD_SIZE + 3 if plies == 1 else BOARD_SIZE + 5
    out = np.empty((n, N_PITS, width), dtype=np.float64)
    for i in range(n):
        for k in range(N_PITS):
            _move_features(boards[i], players[i], k, stones, plies, empty_capture, out[i, k])
    return out


def lookahead_features(
    boards: np.ndarray, players: np.ndarray, stones: int, plies: int, empty_capture: bool
) -> np.ndarray:
    """``(n, 6 * PER_MOVE[plies])`` float32 features of ``(n, 14)`` boards, for ``players``.

    Computed in float64 and rounded once to float32, which gives the float32
    quotient exactly (as torch computes it): every feature is one division of
    integers by ``stones``.
    """
    feature_count(plies)
    boards = np.ascontiguousarray(boards, dtype=np.int32)
    players = np.ascontiguousarray(players, dtype=np.int64).reshape(-1)
    out = _features(boards, players, float(stones), int(plies), bool(empty_capture))
    return out.reshape(boards.shape[0], -1).astype(np.float32)
