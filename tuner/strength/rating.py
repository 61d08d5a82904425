"""Elo ratings by maximum likelihood: a Bradley-Terry fit with some ratings held fixed.

Why a fit and not a win rate: a score against one opponent saturates (every
agent beats random, none beats minimax:6), while a rating places an agent on
one scale however strong it is, from games against whichever ladder members
tell most about it. The model is Elo's: player A scores against B with
probability ``1 / (1 + 10 ** ((R_B - R_A) / 400))``, a draw counting half.

The same fit serves the reference ladder (all members free but the anchor,
``random`` at 0) and an agent (the agent free, the ladder members fixed).

Honest statistics:

- The unit is an opening pair (the same random opening played from both seats),
  not a game: the two games of a pair share their opening and are not
  independent. Results are given per pair (``PairResults``), and the interval
  is widened by the over-dispersion that pairs show beyond the binomial model
  (a cluster-robust "sandwich" variance over the model's variance, never below 1).
- The interval is a profile-likelihood interval, not estimate +- 1.96 SE: it
  stays sensible, one-sided and wide, when a player won (or lost) every game.
- A weak prior of ``prior_draws`` virtual draws per pairing that was played keeps
  the estimate finite when a player won every game; it moves a rating from a few
  hundred games by a few Elo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, minimize
from scipy.special import expit
from scipy.stats import chi2

ELO_SCALE = 400.0
_K = math.log(10.0) / ELO_SCALE  # Elo points -> logits
CONFIDENCE = 0.95
PRIOR_DRAWS = 1.0
_MAX_SPAN = 4000.0  # Elo: an interval end is searched this far from the estimate at most


def expected_score(diff: float | np.ndarray) -> float | np.ndarray:
    """The expected score of a player rated ``diff`` Elo above the other."""
    return expit(_K * np.asarray(diff, dtype=float))


@dataclass(frozen=True)
class PairResults:
    """Results as opening pairs: pair ``i`` is two games of ``a[i]`` against ``b[i]``.

    ``points[i]`` is ``a[i]``'s points in the pair (0, 0.5, ..., 2), ``games[i]``
    the games in it (2). Player indices refer to the caller's list of names.
    """

    a: np.ndarray
    b: np.ndarray
    points: np.ndarray
    games: np.ndarray

    @staticmethod
    def concat(parts: Sequence[PairResults]) -> PairResults:
        if not parts:
            empty = np.zeros(0)
            return PairResults(empty.astype(int), empty.astype(int), empty, empty)
        return PairResults(
            np.concatenate([p.a for p in parts]).astype(int),
            np.concatenate([p.b for p in parts]).astype(int),
            np.concatenate([p.points for p in parts]).astype(float),
            np.concatenate([p.games for p in parts]).astype(float),
        )

    @staticmethod
    def of_match(a: int, b: int, pair_scores: np.ndarray) -> PairResults:
        """Player ``a``'s mean score per opening pair against ``b`` (from ``MatchResult``)."""
        n = len(pair_scores)
        return PairResults(
            np.full(n, a, dtype=int),
            np.full(n, b, dtype=int),
            2.0 * np.asarray(pair_scores, dtype=float),
            np.full(n, 2.0),
        )


@dataclass(frozen=True)
class Fit:
    """Ratings of every player, with an interval for each free one (fixed: low == high)."""

    ratings: np.ndarray
    low: np.ndarray
    high: np.ndarray
    free: tuple[int, ...]


class _Problem:
    """Negative log-likelihood of ratings, with pairings aggregated (it depends on sums only)."""

    def __init__(self, results: PairResults, n_players: int, prior_draws: float) -> None:
        self.results = results
        self.n_players = n_players
        keys = results.a * n_players + results.b
        uniq, inverse = np.unique(keys, return_inverse=True)
        self.pa, self.pb = uniq // n_players, uniq % n_players
        games = np.bincount(inverse, weights=results.games, minlength=uniq.size)
        points = np.bincount(inverse, weights=results.points, minlength=uniq.size)
        # Virtual draws: half a point per virtual game, in every pairing that was played.
        self.games = games + prior_draws
        self.points = points + 0.5 * prior_draws

    def nll_grad(self, ratings: np.ndarray) -> tuple[float, np.ndarray]:
        z = _K * (ratings[self.pa] - ratings[self.pb])
        # log p = -log(1 + e^-z), log(1 - p) = -log(1 + e^z)
        nll = float(
            (
                self.points * np.logaddexp(0, -z) + (self.games - self.points) * np.logaddexp(0, z)
            ).sum()
        )
        resid = _K * (self.points - self.games * expit(z))  # d loglik / d r_a per pairing
        grad = -np.bincount(self.pa, weights=resid, minlength=self.n_players)
        grad += np.bincount(self.pb, weights=resid, minlength=self.n_players)
        return nll, grad

    def hessian(self, ratings: np.ndarray) -> np.ndarray:
        p = expit(_K * (ratings[self.pa] - ratings[self.pb]))
        w = _K * _K * self.games * p * (1 - p)
        h = np.zeros((self.n_players, self.n_players))
        np.add.at(h, (self.pa, self.pa), w)
        np.add.at(h, (self.pb, self.pb), w)
        np.add.at(h, (self.pa, self.pb), -w)
        np.add.at(h, (self.pb, self.pa), -w)
        return h

    def pair_gradients(self, ratings: np.ndarray) -> np.ndarray:
        """Each opening pair's contribution to the log-likelihood's gradient (real pairs only)."""
        r = self.results
        g = _K * (r.points - r.games * expit(_K * (ratings[r.a] - ratings[r.b])))
        out = np.zeros((g.size, self.n_players))
        out[np.arange(g.size), r.a] = g
        out[np.arange(g.size), r.b] = -g
        return out

    def solve(self, fixed: Mapping[int, float], start: np.ndarray) -> tuple[np.ndarray, float]:
        """The maximum-likelihood ratings with ``fixed`` held; returns (ratings, nll)."""
        free = [i for i in range(self.n_players) if i not in fixed]
        ratings = start.astype(float).copy()
        for i, v in fixed.items():
            ratings[i] = v
        if not free:
            return ratings, self.nll_grad(ratings)[0]

        def f(x: np.ndarray) -> tuple[float, np.ndarray]:
            ratings[free] = x
            nll, grad = self.nll_grad(ratings)
            return nll, grad[free]

        def hess(x: np.ndarray) -> np.ndarray:
            ratings[free] = x
            return self.hessian(ratings)[np.ix_(free, free)]

        # Convex in the ratings: Newton steps in a trust region converge in a few iterations.
        res = minimize(f, ratings[free], jac=True, hess=hess, method="trust-exact")
        ratings[free] = res.x
        return ratings, float(res.fun)


def fit_ratings(
    results: PairResults,
    n_players: int,
    fixed: Mapping[int, float],
    *,
    prior_draws: float = PRIOR_DRAWS,
    confidence: float = CONFIDENCE,
    start: np.ndarray | None = None,
) -> Fit:
    """Maximum-likelihood Elo ratings of the players not in ``fixed``, with intervals.

    ``fixed`` maps player index -> its rating (at least one player must be fixed:
    Elo ratings have no origin otherwise). A free player that played no game
    keeps its start value and gets an unbounded interval.
    """
    if not fixed:
        raise ValueError("fit_ratings needs at least one fixed rating (the anchor)")
    problem = _Problem(results, n_players, prior_draws)
    anchor = float(np.mean(list(fixed.values())))
    x0 = np.full(n_players, anchor) if start is None else np.asarray(start, dtype=float)
    ratings, nll_min = problem.solve(fixed, x0)
    free = tuple(i for i in range(n_players) if i not in fixed)
    low, high = ratings.copy(), ratings.copy()
    played = set(problem.pa.tolist()) | set(problem.pb.tolist())
    dispersion = _dispersion(problem, ratings, free)
    crit = float(chi2.ppf(confidence, df=1))
    for j, phi in zip(free, dispersion, strict=True):
        if j not in played:
            low[j], high[j] = -math.inf, math.inf
            continue

        def excess(x: float, j: int = j, phi: float = phi) -> float:
            _, nll = problem.solve({**fixed, j: x}, ratings)
            return 2.0 * (nll - nll_min) / phi - crit

        for sign, out in ((-1.0, low), (1.0, high)):
            step = 50.0
            while step < _MAX_SPAN and excess(ratings[j] + sign * step) < 0:
                step *= 2
            edge = ratings[j] + sign * min(step, _MAX_SPAN)
            if excess(edge) < 0:
                out[j] = sign * math.inf
                continue
            out[j] = brentq(excess, ratings[j], edge, xtol=0.5)
    return Fit(ratings, low, high, free)


def _dispersion(problem: _Problem, ratings: np.ndarray, free: tuple[int, ...]) -> list[float]:
    """Per free player: robust (pair-clustered) variance over model variance, at least 1."""
    idx = list(free)
    h = problem.hessian(ratings)[np.ix_(idx, idx)]
    try:
        h_inv = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        return [1.0] * len(idx)
    g = problem.pair_gradients(ratings)[:, idx]
    robust = h_inv @ (g.T @ g) @ h_inv
    model = np.diag(h_inv)
    return [
        max(1.0, float(robust[k, k] / model[k])) if model[k] > 0 else 1.0 for k in range(len(idx))
    ]


@dataclass(frozen=True)
class Rating:
    """One player's Elo rating and its interval."""

    rating: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {
            "rating": round(self.rating, 1),
            "low": round(self.low, 1),
            "high": round(self.high, 1),
        }

    def __str__(self) -> str:
        return f"{self.rating:.0f} [{self.low:.0f}, {self.high:.0f}]"


def rate_against(
    results: PairResults, fixed_ratings: Sequence[float], *, prior_draws: float = PRIOR_DRAWS
) -> Rating:
    """The rating of one player (index ``len(fixed_ratings)``) against players of known rating.

    ``results`` name the player as ``a`` and the rated opponents by their index in
    ``fixed_ratings``.
    """
    n = len(fixed_ratings)
    fit = fit_ratings(
        results, n + 1, dict(enumerate(float(r) for r in fixed_ratings)), prior_draws=prior_draws
    )
    return Rating(float(fit.ratings[n]), float(fit.low[n]), float(fit.high[n]))
