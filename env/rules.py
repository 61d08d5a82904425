"""The rules of Kalah(6, n): one batched implementation, and the single-game API on top.

The board is 14 integers, ``[p0 pits 0..5, p0 store, p1 pits 0..5, p1 store]``.
Absolute pit ``i`` lies opposite pit ``12 - i``. Each player numbers their own
pits 0..5 in sowing order, so player ``p``'s pit ``k`` is absolute index
``7 * p + k`` and their store is ``7 * p + 6``. That arithmetic lives here once,
in :func:`pit_index`, :func:`store_of`, :func:`opposite`, :func:`owner`,
:func:`side_of` and :func:`pits_of`; every kernel, env and tool uses them.

Why one batched core: training, evaluation and the benchmark all step many games
at once; the scalar functions below call the same compiled kernel with a batch
of one, so there is exactly one place where a rule can be wrong.

The rules are those of OpenSpiel's ``mancala``:

1. Sow counter-clockwise from the chosen pit, one stone per hole, skipping the
   opponent's store (13 or more stones lap round and drop one in the origin pit).
2. Last stone in the mover's own store: the mover moves again.
3. Last stone in an own pit that was empty, opposite pit non-empty: that stone and
   the opposite stones go to the mover's store. With ``empty_capture`` the lone
   stone is captured even when the opposite pit is empty.
4. As soon as either side's pits are all empty, every stone left goes to the
   store of the side it lies on, and the game is over.
5. The larger store wins; equal stores draw.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numba.extending import register_jitable

from env.options import DEFAULT_STONES, MAX_STONES, MIN_STONES

N_PITS = 6  # pits per side
SIDE = N_PITS + 1  # holes per side: the six pits, then the store
BOARD_SIZE = 2 * SIDE
BOARD_DTYPE = np.int32

# --- the board layout --------------------------------------------------------------
# Plain functions that numba compiles into the kernels that call them
# (``register_jitable``): the kernels pay nothing for the names, and Python callers
# (the envs, the arena, the tools) call them as ordinary functions, on ints or on
# numpy arrays of players alike.


@register_jitable
def pit_index(player, k):
    """The absolute index of ``player``'s own pit ``k`` (0..5 in their sowing order)."""
    return SIDE * player + k


@register_jitable
def store_of(player):
    """The absolute index of ``player``'s store: 6 for player 0, 13 for player 1."""
    return SIDE * player + N_PITS


@register_jitable
def opposite(pit):
    """The pit across the board from absolute pit ``pit`` (what a capture takes)."""
    return 2 * N_PITS - pit


@register_jitable
def owner(index):
    """The player on whose side absolute index ``index`` lies (their store included)."""
    return index // SIDE


def side_of(player: int) -> slice:
    """``player``'s six pits and their store, as a slice of a board (or of its last axis)."""
    return slice(SIDE * player, SIDE * (player + 1))


def pits_of(player: int) -> slice:
    """``player``'s six pits, without the store, as a slice of a board."""
    return slice(SIDE * player, SIDE * player + N_PITS)


# --- the batched kernels -----------------------------------------------------------


@njit(cache=True, nogil=True)
def _side_empty(board: np.ndarray, player: int) -> bool:
    for k in range(N_PITS):  # noqa: SIM110  (numba compiles loops, not all())
        if board[pit_index(player, k)] != 0:
            return False
    return True


@njit(cache=True, nogil=True)
def _sweep(board: np.ndarray) -> None:
    """Move every stone left in a side's pits into that side's store."""
    for player in range(2):
        total = 0
        for k in range(N_PITS):
            total += board[pit_index(player, k)]
            board[pit_index(player, k)] = 0
        board[store_of(player)] += total


@njit(cache=True, nogil=True)
def _apply_one(board: np.ndarray, player: int, pit: int, empty_capture: bool) -> tuple:
    """Apply one legal move in place; return ``(next_player, game_over)``.

    The caller guarantees that ``pit`` is a non-empty pit of ``player``.
    """
    origin = pit_index(player, pit)
    own_store = store_of(player)
    opp_store = store_of(1 - player)
    stones = board[origin]
    board[origin] = 0
    pos = origin
    while stones > 0:
        pos = (pos + 1) % BOARD_SIZE
        if pos == opp_store:
            continue
        board[pos] += 1
        stones -= 1

    next_player = 1 - player
    if pos == own_store:
        next_player = player
    elif owner(pos) == player and board[pos] == 1:
        across = opposite(pos)
        if board[across] > 0 or empty_capture:
            board[own_store] += board[across] + 1
            board[across] = 0
            board[pos] = 0

    if _side_empty(board, 0) or _side_empty(board, 1):
        _sweep(board)
        return next_player, True
    return next_player, False


@njit(cache=True, nogil=True)
def apply_moves(
    boards: np.ndarray, players: np.ndarray, pits: np.ndarray, empty_capture: bool = False
) -> tuple:
    """Apply one move to each game of a batch, in place.

    ``boards`` is ``(n, 14)``, ``players`` and ``pits`` are ``(n,)``; every move must
    be legal (use :func:`legal_masks`). Returns ``(next_players, game_over)``.
    """
    n = boards.shape[0]
    next_players = np.empty(n, dtype=np.int64)
    over = np.empty(n, dtype=np.bool_)
    for i in range(n):
        nxt, done = _apply_one(boards[i], players[i], pits[i], empty_capture)
        next_players[i] = nxt
        over[i] = done
    return next_players, over


@njit(cache=True, nogil=True)
def legal_masks(boards: np.ndarray, players: np.ndarray) -> np.ndarray:
    """``(n, 6)`` booleans: which of the mover's own pits 0..5 are non-empty."""
    n = boards.shape[0]
    masks = np.zeros((n, N_PITS), dtype=np.bool_)
    for i in range(n):
        player = players[i]  # read once: the stores into masks may alias it, for all LLVM knows
        for k in range(N_PITS):
            masks[i, k] = boards[i, pit_index(player, k)] > 0
    return masks


@njit(cache=True, nogil=True)
def random_playouts(boards: np.ndarray, players: np.ndarray, choices: np.ndarray) -> int:
    """Play every game of a batch to the end, picking pits from ``choices``.

    ``choices`` is a ``(n, max_plies)`` array of uniform floats in [0, 1): ply ``t`` of
    game ``i`` takes the ``floor(u * n_legal)``-th legal pit. The rules core holds no
    RNG; the caller draws the numbers. Returns the number of moves played.
    """
    n = boards.shape[0]
    moves = 0
    for i in range(n):
        player = players[i]
        for t in range(choices.shape[1]):
            n_legal = 0
            for k in range(N_PITS):
                if boards[i, pit_index(player, k)] > 0:
                    n_legal += 1
            pick = int(choices[i, t] * n_legal)
            pit = -1
            for k in range(N_PITS):
                if boards[i, pit_index(player, k)] > 0:
                    if pick == 0:
                        pit = k
                        break
                    pick -= 1
            player, done = _apply_one(boards[i], player, pit, False)
            moves += 1
            if done:
                break
    return moves


# --- the single-game API: a batch of one ------------------------------------------


def random_positions(
    n: int,
    rng: np.random.Generator,
    plies: tuple[int, int],
    stones: int = DEFAULT_STONES,
    empty_capture: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Boards and movers of ``n`` games of uniformly random legal moves, each stopped
    after a random number of plies in ``[plies[0], plies[1])``; the games that ended
    first are left out, so fewer than ``n`` may come back.

    One batch for all games (the ladder's timing positions, the tests' reachable boards):
    the stopping points are drawn first, then one uniform per pit and game each ply.
    """
    boards = np.tile(np.asarray(initial_board(stones), dtype=BOARD_DTYPE), (n, 1))
    players = np.zeros(n, dtype=np.int64)
    stop = rng.integers(plies[0], plies[1], size=n)
    live = np.ones(n, dtype=bool)
    for ply in range(plies[1] - 1):
        idx = np.flatnonzero(live & (stop > ply))
        if idx.size == 0:
            break
        masks = legal_masks(boards[idx], players[idx])
        pits = (rng.random(masks.shape) * masks).argmax(axis=1)
        sub = boards[idx]
        nxt, over = apply_moves(sub, players[idx], pits, empty_capture)
        boards[idx], players[idx] = sub, nxt
        live[idx[over]] = False
    return boards[live], players[live]


def initial_board(stones: int = DEFAULT_STONES) -> list[int]:
    """The starting board with ``stones`` stones in every pit and empty stores."""
    if (
        isinstance(stones, bool)
        or not isinstance(stones, int | np.integer)
        or not MIN_STONES <= stones <= MAX_STONES
    ):
        raise ValueError(
            f"stones must be an integer between {MIN_STONES} and {MAX_STONES}, but got {stones!r}"
        )
    return [stones] * N_PITS + [0] + [stones] * N_PITS + [0]


def _as_board(board) -> np.ndarray:
    arr = np.asarray(board, dtype=BOARD_DTYPE)
    if arr.shape != (BOARD_SIZE,):
        raise ValueError(f"a board is {BOARD_SIZE} integers, but got shape {arr.shape}")
    if (arr < 0).any():
        raise ValueError(f"a board holds no negative counts, but got {list(arr)}")
    return arr


def _check_player(player: int) -> int:
    if player not in (0, 1):
        raise ValueError(f"player must be 0 or 1, but got {player!r}")
    return int(player)


def legal_pits(board, player: int) -> list[int]:
    """The mover's non-empty pits, numbered 0..5 in their own sowing order."""
    arr = _as_board(board)[None, :]
    mask = legal_masks(arr, np.array([_check_player(player)], dtype=np.int64))[0]
    return [int(k) for k in np.flatnonzero(mask)]


def apply_move(
    board, player: int, pit: int, empty_capture: bool = False
) -> tuple[list[int], int, bool]:
    """Play ``pit`` for ``player``; return ``(board_after, next_player, game_over)``.

    The input board is not modified. A finished game's board has every remaining
    stone in its side's store. An empty or out-of-range pit raises ``ValueError``.
    """
    player = _check_player(player)
    boards = _as_board(board).copy()[None, :]
    legal = legal_pits(boards[0], player)
    if not isinstance(pit, int | np.integer) or pit not in legal:
        raise ValueError(
            f"pit {pit!r} is not a legal move for player {player}: expected one of "
            f"the non-empty pits {legal}"
        )
    nxt, over = apply_moves(
        boards,
        np.array([player], dtype=np.int64),
        np.array([pit], dtype=np.int64),
        bool(empty_capture),
    )
    return [int(x) for x in boards[0]], int(nxt[0]), bool(over[0])


def is_over(board) -> bool:
    """Whether either side's pits are all empty."""
    arr = _as_board(board)
    return bool(_side_empty(arr, 0) or _side_empty(arr, 1))


def winner(board) -> int | None:
    """0 or 1 for the player with the larger store, ``None`` for a draw."""
    arr = _as_board(board)
    first, second = arr[store_of(0)], arr[store_of(1)]
    if first == second:
        return None
    return 0 if first > second else 1
