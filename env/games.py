"""A table of Kalaha games seen from the agent's seat: the one episode logic of both envs.

``KalahaEnv`` (the gymnasium env, one game) and ``KalahaVecEnv`` (SB3's ``VecEnv``
for training, ``n_envs`` games) both step a :class:`GameTable`: the single-game
env is the table of one. So how an episode starts (seat, opponent, random
opening), how the opponents answer and how the reward is shaped is written once,
and the two envs play the same games from the same RNG seeds by construction (a
test checks it step by step).

Why a table: every move of every game is applied by one call of the numba core,
and each opponent acts once per ply for all the games that face it, so a policy
opponent makes one forward pass for all of them.

Randomness: each game has its own ``numpy`` Generator, and the opponents draw
from it row by row (:class:`RowRandom`), so game ``i`` of a table seeded ``s``
plays exactly the game that a single env seeded ``s + i`` plays.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from env.league import build_sources
from env.observation import Observation
from env.opponents import Opponent
from env.options import DEFAULTS, GameOptions
from env.rules import BOARD_DTYPE, N_PITS, apply_moves, initial_board, legal_masks, store_of


class GameStreams:
    """One uniform random stream per game, drawn from in blocks.

    Each game owns a numpy Generator; its numbers are taken ``BLOCK`` at a time
    into a buffer, so a draw for many games is one fancy index, not a Python
    call per game. What game ``i`` draws depends only on game ``i``'s own
    history, never on which other games share a batch.
    """

    BLOCK = 64

    def __init__(self, n: int) -> None:
        self.generators = [np.random.default_rng() for _ in range(n)]
        self.buffer = np.zeros((n, self.BLOCK))
        self.pos = np.full(n, self.BLOCK, dtype=np.int64)

    def reseed(self, game: int, generator: np.random.Generator) -> None:
        """Game ``game`` draws from ``generator`` from now on."""
        self.generators[game] = generator
        self.pos[game] = self.BLOCK

    def draw(self, idx: np.ndarray, m: int) -> np.ndarray:
        """``(len(idx), m)`` uniforms in [0, 1): the next ``m`` of each game's stream."""
        if m > self.BLOCK:
            raise ValueError(f"expected at most {self.BLOCK} draws per game, but got {m}")
        for game in idx[self.pos[idx] + m > self.BLOCK]:
            self.buffer[game] = self.generators[game].random(self.BLOCK)
            self.pos[game] = 0
        cols = self.pos[idx][:, None] + np.arange(m)
        self.pos[idx] += m
        return self.buffer[idx[:, None], cols]


class RowRandom:
    """The ``rng`` that opponents get: row ``r`` of every draw comes from game ``r``'s stream."""

    def __init__(self, streams: GameStreams, games: np.ndarray) -> None:
        self.streams = streams
        self.games = games

    def random(self, size: int | tuple[int, ...]) -> np.ndarray:
        shape = (size,) if isinstance(size, int | np.integer) else tuple(size)
        if shape[0] != len(self.games):
            raise ValueError(f"expected {len(self.games)} rows, but got shape {shape}")
        m = int(np.prod(shape[1:], dtype=np.int64))
        return self.streams.draw(self.games, m).reshape(shape)


class OpponentSource(Protocol):
    """A training opponent kind: a fixed opponent, or a league entry (pool, self).

    ``pick(u)`` turns one uniform draw into the opponent a new episode faces; a
    fixed opponent returns itself. ``record(opponent, outcome)`` hears each
    finished episode's result from the agent's side (+1, 0, -1).
    """

    name: str

    def pick(self, u: float) -> Opponent: ...

    def record(self, opponent: Opponent, outcome: int) -> None: ...


class Fixed:
    """A fixed opponent as an :class:`OpponentSource`: always itself."""

    def __init__(self, opponent: Opponent) -> None:
        self.opponent = opponent
        self.name = opponent.name

    def pick(self, u: float) -> Opponent:
        return self.opponent

    def record(self, opponent: Opponent, outcome: int) -> None:
        pass


def as_source(opponent: Opponent | OpponentSource) -> OpponentSource:
    return opponent if hasattr(opponent, "pick") else Fixed(opponent)  # type: ignore[return-value]


class GameTable:
    """``n`` games, each against an opponent drawn per episode, seen from the agent's seat.

    Args:
        n: number of games.
        options: the game (stones, rules variant, opening, shaping) and the opponent
            mix with its shares; league names (``self``, ``pool``) become league
            sources (``env.league``) with the options' pool settings.
        seat: 0, 1, or ``None`` to draw the agent's seat per episode.
        lookahead: 0, or 1 or 2 plies of lookahead features after the counts in each
            observation (:class:`env.observation.Observation`): computed here, once
            per step for all games, so that the policy only reads them.
    """

    def __init__(
        self,
        n: int,
        options: GameOptions = DEFAULTS,
        *,
        seat: int | None = None,
        lookahead: int = 0,
    ) -> None:
        if not isinstance(options, GameOptions):
            raise TypeError(f"expected GameOptions, but got {type(options).__name__}")
        if seat not in (None, 0, 1):
            raise ValueError(f"seat must be 0, 1 or None (drawn per episode), but got {seat!r}")
        self.options = options
        sources, weights = build_sources(options)
        self.sources = [as_source(s) for s in sources]
        w = np.asarray(weights, dtype=float)
        self._cum = np.cumsum(w / w.sum())
        self.n = int(n)
        self.fixed_seat = seat
        self.total_stones = 2 * N_PITS * options.stones
        self._start = np.asarray(initial_board(options.stones), dtype=BOARD_DTYPE)
        self.observation = Observation(options.stones, lookahead, options.empty_capture)
        self.boards = np.tile(self._start, (self.n, 1))
        self.to_move = np.zeros(self.n, dtype=np.int64)
        self.seat = np.zeros(self.n, dtype=np.int64)
        self.source = np.zeros(self.n, dtype=np.int64)
        self.opponent: list[Opponent | None] = [None] * self.n
        # Which opponent object each game faces, as an index into _actors (for grouping).
        self.actor = np.zeros(self.n, dtype=np.int64)
        self._actors: list[Opponent] = []
        self._actor_index: dict[int, int] = {}
        self.streams = GameStreams(self.n)

    # --- what the agent sees ----------------------------------------------------------

    def observations(self, idx: np.ndarray | None = None) -> np.ndarray:
        """What the agent sees in every game, or in the games ``idx``."""
        if idx is None:
            return self.observation(self.boards, self.seat)
        return self.observation(self.boards[idx], self.seat[idx])

    def masks(self) -> np.ndarray:
        return legal_masks(self.boards, self.seat)

    def stores(self) -> tuple[np.ndarray, np.ndarray]:
        """(own store, opponent store) of each game, from the agent's seat."""
        rows = np.arange(self.n)
        return self.boards[rows, store_of(self.seat)], self.boards[rows, store_of(1 - self.seat)]

    # --- episodes ---------------------------------------------------------------------

    def _actor_of(self, opponent: Opponent) -> int:
        """A small integer per distinct opponent object (pool snapshots come and go)."""
        key = id(opponent)
        if key not in self._actor_index:
            if len(self._actors) >= 256:  # forget snapshots no game faces any more
                live = {id(o): o for o in self.opponent if o is not None}
                self._actors = list(live.values())
                self._actor_index = {k: i for i, k in enumerate(live)}
                self.actor = np.array([self._actor_index.get(id(o), 0) for o in self.opponent])
            self._actor_index[key] = len(self._actors)
            self._actors.append(opponent)
        return self._actor_index[key]

    def start(self, idx: np.ndarray) -> None:
        """Start a new episode in each game of ``idx``: seat, opponent, opening, replies.

        A game that the opening or the opponent ends before the agent's first move
        is started again (same seat and opponent): no episode starts finished.
        """
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return
        u = self.streams.draw(idx, 3)  # seat, opponent kind, which one of that kind
        if self.fixed_seat is None:
            self.seat[idx] = (u[:, 0] * 2).astype(np.int64)
        else:
            self.seat[idx] = self.fixed_seat
        kinds = np.minimum(np.searchsorted(self._cum, u[:, 1], side="right"), len(self._cum) - 1)
        self.source[idx] = kinds
        for i, k, pick in zip(idx, kinds, u[:, 2], strict=True):
            opponent = self.sources[k].pick(float(pick))
            self.opponent[i] = opponent
            self.actor[i] = self._actor_of(opponent)
        todo = idx
        while todo.size:
            self.boards[todo] = self._start
            self.to_move[todo] = 0
            live = np.ones(todo.size, dtype=bool)
            for _ in range(self.options.opening_plies):
                sub = todo[live]
                if sub.size == 0:
                    break
                masks = legal_masks(self.boards[sub], self.to_move[sub])
                # The k-th legal pit, k uniform among the legal ones.
                k = (self.streams.draw(sub, 1)[:, 0] * masks.sum(axis=1)).astype(np.int64)
                pits = (np.cumsum(masks, axis=1) > k[:, None]).argmax(axis=1)
                over = self._play(sub, self.to_move[sub], pits)
                live[np.flatnonzero(live)[over]] = False
            over = ~live
            if live.any():
                over[live] = self._opponent_turns(todo[live])
            todo = todo[over]

    def _play(self, idx: np.ndarray, players: np.ndarray, pits: np.ndarray) -> np.ndarray:
        boards = self.boards[idx]
        nxt, over = apply_moves(boards, players, pits, self.options.empty_capture)
        self.boards[idx] = boards
        self.to_move[idx] = nxt
        return over

    def _opponent_turns(self, idx: np.ndarray) -> np.ndarray:
        """Let the opponents move until it is the agent's turn; return which games ended."""
        over = np.zeros(idx.size, dtype=bool)
        waiting = self.to_move[idx] != self.seat[idx]
        while waiting.any():
            pos = np.flatnonzero(waiting)
            sub = idx[pos]
            ended = self._play(sub, self.to_move[sub], self._replies(sub))
            over[pos[ended]] = True
            waiting[pos] = ~ended & (self.to_move[sub] != self.seat[sub])
        return over

    def _replies(self, games: np.ndarray) -> np.ndarray:
        """The opponents' pits in ``games`` (each with an opponent to move).

        Each opponent acts once for all its games; members of a team (a snapshot
        pool's, ``env.league``) act together, through the team, in one call.
        """
        pits = np.empty(games.size, dtype=np.int64)
        actors, inverse = np.unique(self.actor[games], return_inverse=True)
        keys: dict[int, int] = {}  # an opponent, or its team -> the number of its group
        group_of = np.empty(actors.size, dtype=np.int64)
        for j, a in enumerate(actors):
            team = getattr(self._actors[a], "team", None)
            group_of[j] = keys.setdefault(id(team) if team is not None else -1 - int(a), len(keys))
        group = group_of[inverse.reshape(-1)]
        for g in range(len(keys)):
            rows = np.flatnonzero(group == g)
            sub = games[rows]
            rng = RowRandom(self.streams, sub)
            first = self._actors[self.actor[sub[0]]]
            team = getattr(first, "team", None)
            if team is None:
                pits[rows] = first.act(self.boards[sub], self.to_move[sub], rng)
            else:
                faced = [self.opponent[i] for i in sub]
                pits[rows] = team.act_together(faced, self.boards[sub], self.to_move[sub], rng)
        return pits

    def step(self, pits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The agent plays ``pits`` (legal) in every game; the opponents answer.

        Returns ``(rewards, done, outcome)``: ``outcome`` is +1/0/-1 for games that
        ended (0 elsewhere), from the agent's side. Finished games are not restarted.
        """
        idx = np.arange(self.n)
        own0, opp0 = self.stores()
        over = self._play(idx, self.seat, np.asarray(pits, dtype=np.int64))
        extra = ~over & (self.to_move == self.seat)
        live = np.flatnonzero(~over)
        if live.size:
            over[live] = self._opponent_turns(live)
        own, opp = self.stores()
        rewards = np.zeros(self.n, dtype=np.float64)
        shaping = self.options
        if shaping.store_diff_coef:
            rewards += shaping.store_diff_coef * ((own - opp) - (own0 - opp0)) / self.total_stones
        if shaping.extra_turn_coef:
            rewards += shaping.extra_turn_coef * extra
        outcome = np.where(over, np.sign(own - opp), 0).astype(np.int64)
        rewards += outcome
        for i in np.flatnonzero(over):
            self.sources[self.source[i]].record(self.opponent[i], int(outcome[i]))
        return rewards, over, outcome
