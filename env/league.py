"""Self-play opponents: the learner itself, and a pool of its frozen past selves.

Why: a fixed opponent is exploited rather than learned from (PPO beat the
deterministic greedy in every training game after 80k steps with a 7-move trick
that transfers to nothing), and against a strong fixed opponent the reward is
almost always -1. Playing the learner's own past versions keeps the opposition
as strong as the learner and varied, the standard cure in game RL.

Both are *sources* for :class:`env.games.GameTable`: per episode, ``pick`` names
the opponent a game faces, and ``record`` hears the result. Snapshots are copies
of the policy's weights in memory (never files); the pool is their *team*: every
game facing any of its snapshots is answered by one forward pass per ply, all
members' weights stacked (:class:`env.networks.StackedActors`).

Pool sampling (which past self a new episode faces):
- ``uniform``: all kept snapshots alike.
- ``recent``: weight proportional to recency rank (newest ``n``, oldest 1).
- ``pfsp``: prioritized fictitious self-play (AlphaStar): weight ``(1 - p)**2``
  where ``p`` is the learner's score against that snapshot (Laplace-smoothed),
  so the snapshots it still loses to come up most.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from env.curriculum import Curriculum, is_curriculum
from env.opponents import Opponent, PolicyOpponent, make_opponent
from env.options import DEFAULT_STONES, DEFAULTS, LEAGUE_NAMES, SAMPLINGS, GameOptions
from env.rules import legal_masks

if TYPE_CHECKING:  # torch is imported when a pool first acts, not with the study checks
    from env.networks import StackedActors

__all__ = ["LEAGUE_NAMES", "SAMPLINGS", "Learner", "SnapshotPool", "build_sources"]


def frozen_copy(policy: Any) -> Any:
    """A copy of an SB3 policy for acting only: eval mode, no gradients."""
    clone = copy.deepcopy(policy)
    clone.set_training_mode(False)
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


class Learner:
    """The ``self`` opponent: the learner's current weights, sampling as it does."""

    name = "self"

    def __init__(self, stones: int = DEFAULT_STONES) -> None:
        self.stones = stones
        self.opponent: PolicyOpponent | None = None

    def attach(self, policy: Any) -> None:
        self.opponent = PolicyOpponent(policy, stones=self.stones, deterministic=False, name="self")

    def pick(self, u: float) -> Opponent:
        if self.opponent is None:
            raise RuntimeError("the 'self' opponent has no learner yet: call attach(policy) first")
        return self.opponent

    def record(self, opponent: Opponent, outcome: int) -> None:
        pass


class SnapshotPool:
    """Up to ``size`` frozen snapshots of the learner; one is drawn per episode."""

    name = "pool"

    def __init__(
        self,
        size: int = DEFAULTS.pool_size,
        sampling: str = DEFAULTS.pool_sampling,
        stones: int = DEFAULT_STONES,
    ) -> None:
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"pool_size must be a positive integer, but got {size!r}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"pool_sampling must be one of {SAMPLINGS}, but got {sampling!r}")
        self.size = size
        self.sampling = sampling
        self.stones = stones
        self.members: list[PolicyOpponent] = []
        # The learner's results against each member: [score sum, games].
        self.results: dict[int, list[float]] = {}
        self.added = 0
        self._stacked: StackedActors | None = None
        self._unstackable = False  # the members' networks cannot be stacked

    def add(self, policy: Any, timestep: int = 0) -> PolicyOpponent:
        """Freeze ``policy`` into a new member; the oldest goes when the pool is full."""
        member = PolicyOpponent(
            frozen_copy(policy), stones=self.stones, deterministic=False, name=f"pool@{timestep}"
        )
        member.team = self  # GameTable asks the pool to act for its members
        self.members.append(member)
        self.results[id(member)] = [0.0, 0.0]
        self.added += 1
        while len(self.members) > self.size:
            gone = self.members.pop(0)
            self.results.pop(id(gone), None)
        self._stacked, self._unstackable = None, False
        return member

    def act_together(
        self,
        members: Sequence[PolicyOpponent],
        boards: np.ndarray,
        players: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The pits of games facing ``members[i]`` (row ``i``), in one forward pass.

        Games whose member has left the pool since their episode began, and pools
        whose networks cannot be stacked, are answered member by member.
        """
        position = {id(m): i for i, m in enumerate(self.members)}
        index = np.array([position.get(id(m), -1) for m in members], dtype=np.int64)
        stacked = self._stack()
        pits = np.empty(len(members), dtype=np.int64)
        alone = np.flatnonzero(index < 0) if stacked is not None else np.arange(len(members))
        if stacked is not None and alone.size < len(members):
            rows = np.flatnonzero(index >= 0)
            players = players.astype(np.int64)
            obs = members[int(rows[0])].observation(boards[rows], players[rows])
            masks = legal_masks(boards[rows], players[rows])
            pits[rows] = stacked(obs, masks, index[rows], deterministic=False)
        for member in {id(members[i]): members[i] for i in alone.tolist()}.values():
            rows = np.array([i for i in alone.tolist() if members[i] is member])
            pits[rows] = member.act(boards[rows], players[rows], rng)
        return pits

    def _stack(self) -> StackedActors | None:
        """The members' networks stacked, built once per change of the pool (None: they
        cannot be: another architecture, or an extractor the stack does not know)."""
        if self._stacked is None and not self._unstackable:
            from env.networks import StackedActors

            try:
                self._stacked = StackedActors([m.model for m in self.members])
            except ValueError:
                self._unstackable = True
        return self._stacked

    def weights(self) -> np.ndarray:
        """The probability of each member (oldest first) for the next episode."""
        n = len(self.members)
        if self.sampling == "recent":
            w = np.arange(1, n + 1, dtype=float)
        elif self.sampling == "pfsp":
            w = np.array([(1.0 - self.score_against(m)) ** 2 for m in self.members])
            w = np.maximum(w, 1e-3)  # a beaten snapshot still comes up now and then
        else:
            w = np.ones(n)
        return w / w.sum()

    def score_against(self, member: PolicyOpponent) -> float:
        """The learner's score against ``member``: (wins + draws/2 + 1) / (games + 2)."""
        total, games = self.results.get(id(member), (0.0, 0.0))
        return (total + 1.0) / (games + 2.0)

    def pick(self, u: float) -> Opponent:
        if not self.members:
            raise RuntimeError("the snapshot pool is empty: add the learner's policy first")
        k = int(np.searchsorted(np.cumsum(self.weights()), u, side="right"))
        return self.members[min(k, len(self.members) - 1)]

    def record(self, opponent: Opponent, outcome: int) -> None:
        stats = self.results.get(id(opponent))
        if stats is not None:  # a member dropped from the pool mid-episode is forgotten
            stats[0] += (outcome + 1) / 2
            stats[1] += 1


def build_sources(options: GameOptions) -> tuple[list[Any], list[float]]:
    """The options' opponent mix -> the sources a table draws from, and their shares.

    ``self`` and ``pool`` become league sources (the pool with the options' size and
    sampling), ``curriculum[:N][@EPS]`` a curriculum of ladder members (``env.curriculum``);
    a string is a fixed opponent spec (see :func:`env.opponents.make_opponent`); an object
    (an opponent, a league source) is taken as it is.
    """
    sources: list[Any] = []
    for name in options.names:
        if name == "self":
            sources.append(Learner(stones=options.stones))
        elif name == "pool":
            sources.append(
                SnapshotPool(options.pool_size, options.pool_sampling, stones=options.stones)
            )
        elif is_curriculum(name):
            sources.append(
                Curriculum.from_spec(
                    name, stones=options.stones, empty_capture=options.empty_capture
                )
            )
        elif isinstance(name, str):
            sources.append(
                make_opponent(name, stones=options.stones, empty_capture=options.empty_capture)
            )
        else:
            sources.append(name)
    return sources, options.weights


def attach_learner(sources: Sequence[Any], policy: Any, timestep: int = 0) -> None:
    """Give the league sources the learner: ``self`` plays it, the pool starts with it."""
    for source in sources:
        if isinstance(source, Learner):
            source.attach(policy)
        elif isinstance(source, SnapshotPool) and not source.members:
            source.add(policy, timestep)


def pools(sources: Sequence[Any]) -> list[SnapshotPool]:
    return [s for s in sources if isinstance(s, SnapshotPool)]
