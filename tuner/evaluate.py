"""Strength of a policy: batched games against opponents -> win rates and a score.

Every game of an evaluation is stepped together (``env.arena.play_match``), so
the policy makes one forward pass per ply, with action masks, for all live games.
Openings are randomized and both seats are played, and each win rate comes with
a Wilson 95% interval and the number of distinct games, so a score is a
statistic rather than one game replayed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from env.arena import play_match
from env.opponents import Opponent, PolicyOpponent, make_opponent


@dataclass(frozen=True)
class OpponentResult:
    opponent: str
    games: int
    wins: int
    draws: int
    losses: int
    win_rate: float
    ci_low: float
    ci_high: float
    win_rate_first: float
    win_rate_second: float
    distinct_games: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion (draws count as half a success)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluate_policy(
    policy: Any,
    opponents: list[str],
    games: int,
    *,
    seeds: int = 4,
    empty_capture: bool = False,
    opening_plies: int = 2,
    seed: int | None = None,
) -> dict[str, OpponentResult]:
    """Play ``games`` games (half from each seat) against each opponent.

    ``policy`` is a MaskablePPO model (or anything with its ``predict``) or an
    :class:`~env.opponents.Opponent`.
    """
    agent: Opponent = (
        policy if hasattr(policy, "act") else PolicyOpponent(policy, seeds=seeds, name="agent")
    )
    rng = np.random.default_rng(seed)
    results: dict[str, OpponentResult] = {}
    for name in opponents:
        # Random tie-breaks: as strong as the deterministic opponent, but more varied games.
        opponent = make_opponent(name, seeds=seeds, empty_capture=empty_capture, tie_break="random")
        m = play_match(
            agent,
            opponent,
            games,
            seeds=seeds,
            empty_capture=empty_capture,
            opening_plies=opening_plies,
            rng=rng,
        )
        lo, hi = wilson_interval(m.wins + 0.5 * m.draws, m.n_games)
        results[name] = OpponentResult(
            opponent=name,
            games=m.n_games,
            wins=m.wins,
            draws=m.draws,
            losses=m.losses,
            win_rate=m.win_rate,
            ci_low=lo,
            ci_high=hi,
            win_rate_first=m.seat_win_rate(0),
            win_rate_second=m.seat_win_rate(1),
            distinct_games=m.distinct_games,
        )
    return results


def combine_score(
    results: dict[str, OpponentResult], combine: str, weights: dict[str, float] | None = None
) -> float:
    """One number from the per-opponent win rates: their mean, minimum or weighted mean."""
    rates = {k: r.win_rate for k, r in results.items()}
    if combine == "min":
        return min(rates.values())
    if combine == "weighted":
        assert weights is not None
        total = sum(weights[k] for k in rates)
        return sum(weights[k] * v for k, v in rates.items()) / total
    return sum(rates.values()) / len(rates)
