"""Batched matches between two opponents: many games stepped together.

Why batched: each ply asks each side once for all games where it is to move, so
a neural policy makes one forward pass per ply whatever the number of games.

Why paired random openings: a deterministic policy against a deterministic
opponent replays the same game again and again, and the first mover's edge
makes a single game from one seat a biased sample. So the first
``opening_plies`` plies of each opening are played uniformly at random (by
whoever is to move), and every opening is played twice, once from each seat.
The two games of a pair share their opening, so they are not independent: the
opening pair, not the game, is the statistical unit (``pair_scores``), and the
number of distinct openings is counted so that the caller can check that the
openings vary.

A score is (wins + draws / 2) / games, from the first opponent's point of view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from env.opponents import Opponent
from env.options import DEFAULT_OPENING_PLIES, DEFAULT_STONES
from env.rules import BOARD_DTYPE, apply_moves, initial_board, legal_masks, store_of

MAX_PLIES = 400


@dataclass(frozen=True)
class MatchResult:
    """Outcomes from the first opponent's point of view, one entry per game.

    Games ``2k`` and ``2k + 1`` are opening pair ``k``: the same opening, the
    first opponent in seat 0 and then in seat 1.
    """

    outcomes: np.ndarray  # +1 win, 0 draw, -1 loss
    seats: np.ndarray  # the first opponent's seat, 0 or 1
    margins: np.ndarray  # own store minus the other's at the end
    pairs: np.ndarray  # the opening pair of each game
    openings: np.ndarray  # (pairs, opening plies): the random pits of each opening
    distinct_games: int

    @property
    def distinct_openings(self) -> int:
        return len({row.tobytes() for row in self.openings})

    @property
    def n_games(self) -> int:
        return int(self.outcomes.size)

    @property
    def n_pairs(self) -> int:
        return self.n_games // 2

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
    def game_scores(self) -> np.ndarray:
        """1 for a win, 0.5 for a draw, 0 for a loss, per game."""
        return (self.outcomes + 1) / 2.0

    @property
    def score(self) -> float:
        """(wins + draws / 2) / games: a score, not a win rate."""
        return float(self.game_scores.mean()) if self.n_games else 0.0

    def seat_score(self, seat: int) -> float:
        """The score of the games where the first opponent sat in ``seat``."""
        sel = self.seats == seat
        return float(self.game_scores[sel].mean()) if sel.any() else 0.0

    def pair_scores(self) -> np.ndarray:
        """The mean score of each opening pair: the independent units of the match."""
        return self.game_scores.reshape(-1, 2).mean(axis=1)


def _random_pits(boards: np.ndarray, players: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    masks = legal_masks(boards, players)
    return (rng.random(masks.shape) * masks).argmax(axis=1)


def play_match(
    first: Opponent,
    second: Opponent,
    n_games: int,
    *,
    stones: int = DEFAULT_STONES,
    empty_capture: bool = False,
    opening_plies: int = DEFAULT_OPENING_PLIES,
    rng: np.random.Generator | int | None = None,
) -> MatchResult:
    """Play ``n_games`` (an even number) between ``first`` and ``second`` in opening pairs.

    ``n_games // 2`` random openings are drawn; each is played from both seats:
    game ``2k`` has ``first`` in seat 0 (seat 0 moves first), game ``2k + 1`` in seat 1.
    """
    if n_games < 2 or n_games % 2:
        raise ValueError(
            f"n_games must be an even number of at least 2 (each opening is played from "
            f"both seats), but got {n_games}"
        )
    rng = np.random.default_rng(rng)
    history = np.full((n_games, MAX_PLIES), -1, dtype=np.int8)
    opening, opening_to_move, opening_live = _random_openings(
        n_games // 2, stones, empty_capture, opening_plies, history, rng
    )
    boards = np.repeat(opening, 2, axis=0)
    to_move = np.repeat(opening_to_move, 2)
    live = np.repeat(opening_live, 2)
    first_seat = np.arange(n_games, dtype=np.int64) % 2
    openings = history[::2, :opening_plies].copy()
    _play_out(
        (first, second),
        boards,
        to_move,
        live,
        first_seat,
        history,
        opening_plies,
        empty_capture,
        rng,
    )
    return _match_result(boards, first_seat, history, openings)


def _random_openings(
    n_pairs: int,
    stones: int,
    empty_capture: bool,
    opening_plies: int,
    history: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The openings: random plies on one board per pair (boards, player to move, live).

    Each ply is written into ``history`` for both games of its pair.
    """
    opening = np.tile(np.asarray(initial_board(stones), dtype=BOARD_DTYPE), (n_pairs, 1))
    opening_to_move = np.zeros(n_pairs, dtype=np.int64)
    opening_live = np.ones(n_pairs, dtype=bool)
    for ply in range(opening_plies):
        idx = np.flatnonzero(opening_live)
        if idx.size == 0:
            break
        pits = _random_pits(opening[idx], opening_to_move[idx], rng)
        sub = opening[idx]
        nxt, over = apply_moves(sub, opening_to_move[idx], pits, empty_capture)
        opening[idx] = sub
        opening_to_move[idx] = nxt
        opening_live[idx[over]] = False
        history[2 * idx, ply] = pits
        history[2 * idx + 1, ply] = pits
    return opening, opening_to_move, opening_live


def _play_out(
    sides: tuple[Opponent, Opponent],
    boards: np.ndarray,
    to_move: np.ndarray,
    live: np.ndarray,
    first_seat: np.ndarray,
    history: np.ndarray,
    start_ply: int,
    empty_capture: bool,
    rng: np.random.Generator,
) -> None:
    """Play every live game to its end from ply ``start_ply``, in place.

    Per ply, each side acts once for all the games where it is to move (``first``
    sits in ``first_seat``); a move on an empty pit is the opponent's bug.
    """
    first, second = sides
    for ply in range(start_ply, MAX_PLIES):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        pits = np.empty(idx.size, dtype=np.int64)
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


def _match_result(
    boards: np.ndarray, first_seat: np.ndarray, history: np.ndarray, openings: np.ndarray
) -> MatchResult:
    """The finished games seen from ``first``: outcomes and store margins, pairs, openings."""
    n_games = boards.shape[0]
    rows = np.arange(n_games)
    own = boards[rows, store_of(first_seat)]
    other = boards[rows, store_of(1 - first_seat)]
    margins = (own - other).astype(np.int64)
    distinct = len({row.tobytes() for row in history})
    return MatchResult(
        outcomes=np.sign(margins),
        seats=first_seat,
        margins=margins,
        pairs=np.arange(n_games, dtype=np.int64) // 2,
        openings=openings,
        distinct_games=distinct,
    )
