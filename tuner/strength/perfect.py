"""Regret against perfect play: an agent's choices scored on the committed solved set.

Why: a rating from games is noisy (400 paired games give a score to about
+-0.05) and costs minutes; the choices of a deterministic policy on fixed solved
positions carry no sampling noise and cost one forward pass. Three numbers:

- **optimal**: the share of positions where the move played is one of the best
  (its exact value equals the position's value);
- **regret**: the mean number of seeds the move played gives away against the
  best move (the final store difference, with perfect play afterwards);
- **blunders**: the share of moves that change the game-theoretic result: a
  won position played into a draw or a loss, or a drawn one into a loss.

Each is given overall and by phase (seeds left in the pits), with a 95% interval
over positions (the positions are the sample; the agent's play is fixed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from env.opponents import Opponent, choice_probabilities
from env.rules import BOARD_DTYPE, N_PITS, pits_of
from env.solved_set import PHASES, SET_PATH, read_set

_Z95 = 1.96
# The solved set's game: Kalah(6, 4), standard capture.
SOLVED_STONES = 4


@dataclass(frozen=True)
class SolvedSet:
    """The solved set as arrays: boards, movers, values, move values (NaN: empty pit), phases."""

    boards: np.ndarray
    players: np.ndarray
    values: np.ndarray
    move_values: np.ndarray
    phases: np.ndarray
    path: Path

    @property
    def size(self) -> int:
        return int(self.values.size)


def load_solved_set(path: str | Path = SET_PATH) -> SolvedSet:
    """Read a solved set (the committed one by default) into arrays."""
    rows = read_set(path)
    move_values = np.array(
        [[np.nan if v is None else v for v in r["move_values"]] for r in rows], dtype=float
    )
    boards = np.array([r["board"] for r in rows], dtype=BOARD_DTYPE)
    left = boards[:, pits_of(0)].sum(axis=1) + boards[:, pits_of(1)].sum(axis=1)
    names = np.full(len(rows), "", dtype=object)
    for name, low, high in PHASES:
        names[(left >= low) & (left <= high)] = name
    return SolvedSet(
        boards=boards,
        players=np.array([r["to_move"] for r in rows], dtype=np.int64),
        values=np.array([r["value"] for r in rows], dtype=float),
        move_values=move_values,
        phases=names,
        path=Path(path),
    )


@dataclass(frozen=True)
class Measure:
    """A mean over positions and its 95% interval half-width."""

    mean: float
    half_width: float

    def __str__(self) -> str:
        return f"{self.mean:.3f} ±{self.half_width:.3f}"


@dataclass(frozen=True)
class PerfectScore:
    """Optimal share, mean regret and blunder rate over some positions."""

    positions: int
    optimal: Measure
    regret: Measure
    blunders: Measure

    def describe(self) -> str:
        """``optimal 0.553 regret 3.09``: for progress lines."""
        return f"optimal {self.optimal.mean:.3f} regret {self.regret.mean:.2f}"

    def as_dict(self) -> dict[str, float | int]:
        """A trial's record of it: each mean with its 95% half-width, rounded to 4 places."""
        out: dict[str, float | int] = {"positions": self.positions}
        for name in ("optimal", "regret", "blunders"):
            m: Measure = getattr(self, name)
            out[name] = round(m.mean, 4)
            out[f"{name}_half_width"] = round(m.half_width, 4)
        return out


def _measure(per_position: np.ndarray) -> Measure:
    n = per_position.size
    if n == 0:
        return Measure(float("nan"), float("nan"))
    spread = per_position.std(ddof=1) if n > 1 else 0.0
    return Measure(float(per_position.mean()), float(_Z95 * spread / np.sqrt(n)))


def per_position(solved: SolvedSet, probs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each position's expected (optimal, regret, blunder) under the move chances ``probs``."""
    legal = ~np.isnan(solved.move_values)
    if (probs[~legal] > 1e-9).any():
        raise ValueError("expected chances on legal pits only, but an empty pit got some")
    mv = np.where(legal, solved.move_values, 0.0)
    value = solved.values[:, None]
    optimal = (probs * (legal & (mv == value))).sum(axis=1)
    regret = (probs * np.where(legal, value - mv, 0.0)).sum(axis=1)
    worse = legal & (np.sign(mv) < np.sign(value))
    blunder = (probs * worse).sum(axis=1)
    return optimal, regret, blunder


def score_choices(solved: SolvedSet, probs: np.ndarray) -> dict[str, PerfectScore]:
    """``{"all": ..., phase: ...}`` from the chances of each move at each position."""
    optimal, regret, blunder = per_position(solved, probs)
    out = {}
    for name in ["all"] + [p for p, _, _ in PHASES]:
        sel = np.ones(solved.size, bool) if name == "all" else solved.phases == name
        if sel.any():
            out[name] = PerfectScore(
                int(sel.sum()),
                _measure(optimal[sel]),
                _measure(regret[sel]),
                _measure(blunder[sel]),
            )
    return out


def score_opponent(
    opponent: Opponent, solved: SolvedSet | None = None, seed: int = 0
) -> dict[str, PerfectScore]:
    """Score a player (a policy, or a ladder member by its exact tie-break chances)."""
    solved = solved or load_solved_set()
    rng = np.random.default_rng(seed)
    probs = choice_probabilities(opponent, solved.boards.copy(), solved.players, rng)
    return score_choices(solved, np.asarray(probs, dtype=float).reshape(-1, N_PITS))


def perfect_scorer(solved: SolvedSet | None = None) -> Callable[[Opponent], PerfectScore]:
    """player -> its :class:`PerfectScore` over the whole set: the set read once, for the
    evaluations of a training run (one forward pass each)."""
    loaded = solved or load_solved_set()

    def score(player: Opponent) -> PerfectScore:
        return score_opponent(player, loaded)["all"]

    return score


def perfect_value(score: PerfectScore) -> float:
    """A trial's value under ``objective: perfect``: minus the mean regret, so that higher
    is better as with every other objective. The regret, not the optimal share: between
    two seeds of one configuration it moved much less against the spread between
    configurations (``make bench-perfect-signal``; README, "Perfect play as the yardstick")."""
    return -score.regret.mean


def format_scores(scores: dict[str, PerfectScore]) -> list[str]:
    """A table: one row per phase, the three numbers with their 95% intervals."""
    bounds = {name: f"{low}-{high}" for name, low, high in PHASES}
    lines = [f"{'phase':<9} {'seeds':>5} {'positions':>9}  {'optimal':<14} {'regret':<14} blunders"]
    for name, s in scores.items():
        seeds = bounds.get(name, f"{PHASES[-1][1]}-{PHASES[0][2]}")
        lines.append(
            f"{name:<9} {seeds:>5} {s.positions:>9}  {s.optimal!s:<14} {s.regret!s:<14} {s.blunders}"
        )
    return lines
