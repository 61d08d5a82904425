"""Batched matches between two opponents: many games stepped together.

Why batched: each ply asks each side once for all games where it is to move, so
a neural policy makes one forward pass per ply whatever the number of games.

Why random openings: a deterministic policy against a deterministic opponent
replays the same game again and again. The first ``opening_plies`` plies of each
game are played uniformly at random (by whoever is to move), and half the games
are played from each seat, so a match is a statistic rather than a replay. The
number of distinct games is counted so that the caller can check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from env.opponents import Opponent
from env.rules import BOARD_DTYPE, apply_moves, initial_board, legal_masks

MAX_PLIES = 400


@dataclass(frozen=True)
class MatchResult:
    """Outcomes from the first opponent's point of view, one entry per game."""

    outcomes: np.ndarray  # +1 win, 0 draw, -1 loss
    seats: np.ndarray  # the first opponent's seat, 0 or 1
    margins: np.ndarray  # own store minus the other's at the end
    distinct_games: int

    @property
    def n_games(self) -> int:
        return int(self.outcomes.size)

    @property
    def wins(self) -> int:
        return int((self.outcomes == 1).sum())

    @property
    def draws(self) -> int:
        return int((self.outcomes == 0).sum())

    @property
    def losses(self) -> int:
        return int((self.outcomes == -1).sum())

    @property
    def win_rate(self) -> float:
        """Wins plus half the draws, over the games played."""
        return (self.wins + 0.5 * self.draws) / max(self.n_games, 1)

    def seat_win_rate(self, seat: int) -> float:
        sel = self.seats == seat
        out = self.outcomes[sel]
        return float(((out == 1).sum() + 0.5 * (out == 0).sum()) / max(sel.sum(), 1))


def play_match(
    first: Opponent,
    second: Opponent,
    n_games: int,
    *,
    seeds: int = 4,
    empty_capture: bool = False,
    opening_plies: int = 2,
    rng: np.random.Generator | int | None = None,
) -> MatchResult:
    """Play ``n_games`` between ``first`` and ``second``, each seat half the time.

    Game ``i`` has ``first`` in seat ``i % 2``; seat 0 moves first.
    """
    if n_games < 1:
        raise ValueError(f"n_games must be at least 1, but got {n_games}")
    rng = np.random.default_rng(rng)
    boards = np.tile(np.asarray(initial_board(seeds), dtype=BOARD_DTYPE), (n_games, 1))
    to_move = np.zeros(n_games, dtype=np.int64)
    first_seat = np.arange(n_games, dtype=np.int64) % 2
    live = np.ones(n_games, dtype=bool)
    history = np.full((n_games, MAX_PLIES), -1, dtype=np.int8)

    for ply in range(MAX_PLIES):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        pits = np.empty(idx.size, dtype=np.int64)
        if ply < opening_plies:
            masks = legal_masks(boards[idx], to_move[idx])
            pits[:] = (rng.random(masks.shape) * masks).argmax(axis=1)
        else:
            firsts = to_move[idx] == first_seat[idx]
            for side, sel in ((first, firsts), (second, ~firsts)):
                if sel.any():
                    sub = idx[sel]
                    pits[sel] = side.act(boards[sub], to_move[sub], rng)
        masks = legal_masks(boards[idx], to_move[idx])
        if not masks[np.arange(idx.size), pits].all():
            raise RuntimeError("an opponent chose an empty pit; opponents must act on legal pits")
        history[idx, ply] = pits
        sub_boards = boards[idx]
        nxt, over = apply_moves(sub_boards, to_move[idx], pits, empty_capture)
        boards[idx] = sub_boards
        to_move[idx] = nxt
        live[idx[over]] = False

    own = np.where(first_seat == 0, boards[:, 6], boards[:, 13])
    other = np.where(first_seat == 0, boards[:, 13], boards[:, 6])
    margins = (own - other).astype(np.int64)
    distinct = len({row.tobytes() for row in history})
    return MatchResult(np.sign(margins), first_seat, margins, distinct)
