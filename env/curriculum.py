"""A curriculum of fixed opponents: ladder members drawn by how strong the learner now is.

Why: a fixed mix is wrong at both ends of a run. At the start minimax:4 wins every
game, so the learner sees only losses and learns nothing from them; late in a run
greedy is beaten every time and its share of the episodes is spent. A curriculum
names a range of the reference ladder's members (``greedy``, ``minimax:1`` ...
``minimax:N``, each with ``EPS`` random moves and random tie-breaks, so that games
vary) and draws each episode's member by prioritized fictitious self-play (PFSP, as
in AlphaStar) on the learner's latest evaluation: a member the learner scores
``p`` against gets weight ``p * (1 - p)``. Members it always beats (p near 1) and
those it never beats (p near 0) both fade; those where it wins about half its
games come up most, so minimax:3, 4 and 5 join the mix as the weaker ones are
beaten. (AlphaStar's other weighting, ``(1 - p) ** 2``, would put every unbeaten
member in at once, the strongest first: against a fresh learner, all losses again.)

Where ``p`` comes from, per member, after each evaluation (:meth:`Curriculum.update`):

1. the evaluation's own result against that member's ladder name, where it played one
   (``minimax:3`` scores ``minimax:3@0.1``: the noise only makes it weaker), with one
   win and one loss added so that a few games never give 0 or 1;
2. otherwise the Elo expectation from the learner's rating (the evaluation's own
   rating, or one fitted here to its scores against ladder members) and the member's
   rating on the ladder (``env/ladder.yaml``).

Before the first evaluation the learner is rated as ``random`` (0): the curriculum
starts at its weakest members. An evaluation that plays no ladder member (only
``policy:`` opponents) leaves the shares as they were.

In an opponent mix the curriculum is one entry, ``curriculum`` (members up to
``minimax:5``, 10% random moves), ``curriculum:N`` or ``curriculum:N@EPS``, whose share
is split among its members; it is a source of :class:`env.games.GameTable` like the
snapshot pool (``env.league``). The training side (``tuner.trial.curriculum``) feeds it
each evaluation. This module imports nothing of the tuner.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from env.opponents import Opponent, make_opponent
from env.options import DEFAULT_STONES

NAME = "curriculum"
DEFAULT_TOP = 5  # minimax:6 costs about 40 ms a move: a training step's time several times over
MAX_TOP = 6  # the ladder's strongest minimax member: beyond it no rating is known
DEFAULT_EPSILON = 0.1
# The weight of a member the learner always beats or never beats, against 0.25 at p = 1/2:
# it still comes up now and then, so that a beaten member is not forgotten unmeasured.
FLOOR = 0.01
ELO_SCALE = 400.0
LADDER_FILE = Path(__file__).with_name("ladder.yaml")
SPEC_HELP = (
    "'curriculum' (greedy and minimax:1..5 with 10% random moves), 'curriculum:N' "
    f"(up to minimax:N, N in 1..{MAX_TOP}) or 'curriculum:N@EPS' (EPS in [0, 1])"
)


def is_curriculum(name: Any) -> bool:
    """Whether an opponent-mix entry names a curriculum (then :func:`parse_curriculum` it)."""
    return isinstance(name, str) and (name == NAME or name.startswith((f"{NAME}:", f"{NAME}@")))


def parse_curriculum(spec: str) -> tuple[list[str], float]:
    """``curriculum[:N][@EPS]`` -> the members' ladder names (weakest first) and epsilon."""
    head, at, eps = spec.partition("@")
    kind, colon, top = head.partition(":")
    try:
        epsilon = float(eps) if at else DEFAULT_EPSILON
        depth = int(top) if colon else DEFAULT_TOP
    except ValueError:
        depth, epsilon = -1, -1.0
    if kind != NAME or not 1 <= depth <= MAX_TOP or not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"a curriculum is one of {SPEC_HELP}, but got {spec!r}")
    return ["greedy", *(f"minimax:{d}" for d in range(1, depth + 1))], epsilon


def ladder_ratings(path: Path = LADDER_FILE) -> dict[str, float]:
    """The Elo rating of each member of the reference ladder (``tuner ladder`` writes it)."""
    doc = yaml.safe_load(path.read_text())
    return {str(m["name"]): float(m["rating"]) for m in doc["members"]}


def expected_score(diff: float) -> float:
    """Elo: the expected score of a player rated ``diff`` above its opponent."""
    return 1.0 / (1.0 + 10.0 ** (-diff / ELO_SCALE))


def fit_rating(results: Mapping[str, tuple[float, int]], ratings: Mapping[str, float]) -> float:
    """The learner's Elo rating from its scores against rated opponents (name -> (score,
    games)), by maximum likelihood with one virtual draw per opponent; ``nan`` without any."""
    rated = [(s, g, ratings[n]) for n, (s, g) in results.items() if n in ratings and g > 0]
    if not rated:
        return math.nan

    def excess(r: float) -> float:  # d log-likelihood / d r, up to a positive factor
        return sum((s * g + 0.5) - (g + 1) * expected_score(r - rr) for s, g, rr in rated)

    lo, hi = -2000.0, 4000.0  # excess falls with r: bisection on a bracket wide enough for Elo
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return (lo + hi) / 2


class Curriculum:
    """Ladder members as one source of training opponents, weighted by PFSP on evaluations.

    Args:
        members: the members' ladder names, weakest first (``minimax:3``).
        epsilon: each member's share of random moves (random tie-breaks as well).
        ratings: the members' Elo ratings (default: the reference ladder's).
        name: the mix entry it came from (``curriculum:4``).
    """

    def __init__(
        self,
        members: list[str],
        epsilon: float = DEFAULT_EPSILON,
        *,
        ratings: Mapping[str, float] | None = None,
        stones: int = DEFAULT_STONES,
        empty_capture: bool = False,
        name: str = NAME,
    ) -> None:
        self.name = name
        self.ratings = dict(ladder_ratings() if ratings is None else ratings)
        unknown = [m for m in members if m not in self.ratings]
        if unknown or not members:
            raise ValueError(f"{name}: expected ladder members, but got {members}")
        self.members = list(members)
        self.opponents: list[Opponent] = [
            make_opponent(f"{m}@{epsilon:g}", stones=stones, empty_capture=empty_capture)
            for m in members
        ]
        self.rating = 0.0  # the learner's estimate: a fresh learner plays like random
        self.p = np.array([expected_score(-self.ratings[m]) for m in members])
        self.history: list[dict[str, Any]] = []

    @classmethod
    def from_spec(
        cls, spec: str, *, stones: int = DEFAULT_STONES, empty_capture: bool = False
    ) -> Curriculum:
        members, epsilon = parse_curriculum(spec)
        return cls(members, epsilon, stones=stones, empty_capture=empty_capture, name=spec)

    def weights(self) -> np.ndarray:
        """The probability of each member (weakest first) for the next episode."""
        w = np.maximum(self.p * (1.0 - self.p), FLOOR)
        return w / w.sum()

    def shares(self) -> dict[str, float]:
        """Each member's share of this curriculum's episodes, by ladder name."""
        return {m: round(float(w), 4) for m, w in zip(self.members, self.weights(), strict=True)}

    def update(
        self,
        results: Mapping[str, tuple[float, int]],
        rating: float | None = None,
        timestep: int = 0,
    ) -> dict[str, float]:
        """Take an evaluation: scores per opponent (name -> (score, games)) and the rating it
        measured, if any. Returns the new shares (and keeps them in :attr:`history`)."""
        if rating is None or not math.isfinite(rating):
            rating = fit_rating(results, self.ratings)
        if math.isfinite(rating):
            self.rating = rating
        measured = math.isfinite(rating)
        for i, member in enumerate(self.members):
            score, games = results.get(member, (0.0, 0))
            if games > 0:
                self.p[i] = (score * games + 1.0) / (games + 2.0)
            elif measured:
                self.p[i] = expected_score(self.rating - self.ratings[member])
        shares = self.shares()
        self.history.append(
            {"timestep": int(timestep), "rating": round(self.rating, 1), "shares": shares}
        )
        return shares

    def pick(self, u: float) -> Opponent:
        k = int(np.searchsorted(np.cumsum(self.weights()), u, side="right"))
        return self.opponents[min(k, len(self.opponents) - 1)]

    def record(self, opponent: Opponent, outcome: int) -> None:
        pass  # the shares move on evaluations, not on training games
