"""The reference ladder: fixed opponents whose Elo ratings were measured once.

Why a ladder: an agent's rating is only as meaningful as the scale it is placed
on. The ladder is the project's own opponents from weakest to strongest, each
with random tie-breaks (as strong as with fixed ones, but more varied games);
``tuner ladder --games N --force`` plays every pairing of them (a round robin, in
opening pairs, each pairing in one batch), fits their Elo ratings by maximum
likelihood with ``random`` anchored at 0, and writes ``env/ladder.yaml``, which
is committed: every evaluation of every trial rates agents against those
numbers, so ratings from different trials, studies and machines compare.

The file also records what each member costs per move (measured on the machine
that wrote it), which sizes what a rating evaluation costs.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import env
from env.arena import play_match
from env.opponents import Opponent, make_opponent
from env.options import (
    DEFAULT_OPENING_PLIES,
    DEFAULT_STONES,
    MAX_OPENING_PLIES,
    MAX_STONES,
    MIN_STONES,
)
from env.rules import random_positions
from tuner.base.errors import UserError
from tuner.base.files import write_atomic
from tuner.strength.rating import CONFIDENCE, Fit, PairResults, fit_ratings

# The members, weakest first. A test checks that env/ladder.yaml rates exactly these.
LADDER = ("random", "greedy", *(f"minimax:{d}" for d in range(1, 7)))
ANCHOR = "random"
LADDER_FILE = Path(env.__file__).with_name("ladder.yaml")
TIE_BREAK = "random"


def ladder_opponent(
    name: str, *, stones: int = DEFAULT_STONES, empty_capture: bool = False
) -> Opponent:
    """A ladder member as it plays on the ladder: random tie-breaks."""
    return make_opponent(name, stones=stones, empty_capture=empty_capture, tie_break=TIE_BREAK)


@dataclass(frozen=True)
class Member:
    name: str
    rating: float
    low: float
    high: float
    ms_per_move: float


@dataclass(frozen=True)
class Ladder:
    """The committed ladder: its members (weakest first) and how it was measured."""

    members: tuple[Member, ...]
    opening_plies: int
    stones: int

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def ratings(self) -> np.ndarray:
        return np.array([m.rating for m in self.members])


def load_ladder(path: Path = LADDER_FILE) -> Ladder:
    """Read the ladder file; a missing, stale or damaged file is a :class:`UserError` saying
    how to fix it. Every agent is rated against these numbers, so none is trusted blindly:
    see :func:`check_ladder`."""
    fix = "run `tuner ladder --force` (make ladder) to measure it again"
    if not path.exists():
        raise UserError(f"ladder file {str(path)!r} does not exist; {fix}")
    try:
        doc = yaml.safe_load(path.read_text())
        members = tuple(
            Member(
                str(m["name"]),
                float(m["rating"]),
                float(m["low"]),
                float(m["high"]),
                float(m["ms_per_move"]),
            )
            for m in doc["members"]
        )
        # `seeds`: the name of stones per pit in files written before the rename
        stones = doc["stones"] if "stones" in doc else doc["seeds"]
        ladder = Ladder(members, _whole(doc["opening_plies"]), _whole(stones))
    except OSError as err:  # a directory where the file should be, an unreadable file
        raise UserError(
            f"{path}: expected a readable ladder file, but got {err.strerror or err}; {fix}"
        ) from None
    except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise UserError(f"{path}: not a ladder file ({err}); {fix}") from None
    problem = check_ladder(ladder)
    if problem:
        raise UserError(f"{path}: {problem}; {fix}")
    return ladder


def _whole(value: Any) -> int:
    """An integer field of the file (``4``, not ``4.5`` nor ``true``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, but got {value!r}")
    return value


def check_ladder(ladder: Ladder) -> str | None:
    """Why ``ladder`` cannot rate agents, in one phrase; None when it can.

    The members the code defines, weakest first; finite ratings in that order, the
    anchor at 0, each inside its finite interval; positive, finite costs per move (a
    NaN or negative cost would send every game to one member, or none); the game's
    stones per pit and opening plies in the ranges the game allows.
    """
    if tuple(ladder.names) != LADDER:
        return f"expected the members {list(LADDER)}, but got {ladder.names}"
    for m in ladder.members:
        values = (m.rating, m.low, m.high)
        if not all(math.isfinite(v) for v in values) or not m.low <= m.rating <= m.high:
            return (
                f"expected {m.name}'s rating inside its interval, all finite, but got "
                f"rating {m.rating}, low {m.low}, high {m.high}"
            )
        if not (math.isfinite(m.ms_per_move) and m.ms_per_move > 0):
            return f"expected {m.name}'s ms_per_move > 0, but got {m.ms_per_move}"
    anchor = ladder.members[LADDER.index(ANCHOR)]
    if anchor.rating != 0.0:
        return f"expected the anchor {ANCHOR} rated 0, but got {anchor.rating}"
    ratings = [m.rating for m in ladder.members]
    if any(b < a for a, b in pairwise(ratings)):
        return f"expected ratings in the members' order, weakest first, but got {ratings}"
    if not MIN_STONES <= ladder.stones <= MAX_STONES:
        return f"expected stones {MIN_STONES}..{MAX_STONES}, but got {ladder.stones}"
    if not 0 <= ladder.opening_plies <= MAX_OPENING_PLIES:
        return f"expected opening_plies 0..{MAX_OPENING_PLIES}, but got {ladder.opening_plies}"
    return None


def _positions(n: int, stones: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mid-game positions (4 to 20 random plies in) to time the members on."""
    return random_positions(n, rng, (4, 21), stones)


def time_per_move(
    opponent: Opponent, stones: int = DEFAULT_STONES, n: int = 200, seed: int = 0
) -> float:
    """Milliseconds one move of ``opponent`` costs, measured on a batch of mid-game positions."""
    rng = np.random.default_rng(seed)
    boards, players = _positions(n, stones, rng)
    opponent.act(boards[:2], players[:2], rng)  # compile
    start = time.perf_counter()
    opponent.act(boards, players, rng)
    return 1000.0 * (time.perf_counter() - start) / len(boards)


def _play_pairings(
    members: dict[str, Opponent],
    games: int,
    *,
    stones: int,
    opening_plies: int,
    rng: np.random.Generator,
    log: Callable[[str], None],
) -> tuple[list[PairResults], list[dict[str, Any]]]:
    """Every pairing, stronger member first: the results for the fit, and the file's rows.

    Each pairing is logged as it ends: a full round robin takes a while.
    """
    index = {name: i for i, name in enumerate(LADDER)}
    parts: list[PairResults] = []
    table: list[dict[str, Any]] = []
    for weaker, stronger in combinations(LADDER, 2):
        t0 = time.perf_counter()
        m = play_match(
            members[stronger],
            members[weaker],
            games,
            stones=stones,
            opening_plies=opening_plies,
            rng=rng,
        )
        parts.append(PairResults.of_match(index[stronger], index[weaker], m.pair_scores()))
        table.append(
            {
                "first": stronger,
                "second": weaker,
                "games": m.n_games,
                "score": round(m.score, 4),
                "distinct_openings": m.distinct_openings,
            }
        )
        log(
            f"{stronger:>10s} vs {weaker:<10s} score {m.score:.3f}  "
            f"({m.n_games} games, {m.distinct_openings} distinct openings, "
            f"{time.perf_counter() - t0:.1f}s)"
        )
    return parts, table


def _member_rows(
    fit: Fit, members: dict[str, Opponent], table: list[dict[str, Any]], stones: int
) -> list[dict[str, Any]]:
    """Each member's fitted rating and interval, the games it played, and its cost per move."""
    played = {name: 0 for name in LADDER}
    for row in table:
        played[row["first"]] += row["games"]
        played[row["second"]] += row["games"]
    return [
        {
            "name": name,
            "rating": round(float(fit.ratings[i]), 1),
            "low": round(float(fit.low[i]), 1),
            "high": round(float(fit.high[i]), 1),
            "games": played[name],
            "ms_per_move": round(time_per_move(members[name], stones), 4),
        }
        for i, name in enumerate(LADDER)
    ]


def round_robin(
    games: int,
    *,
    seed: int = 0,
    opening_plies: int = DEFAULT_OPENING_PLIES,
    stones: int = DEFAULT_STONES,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Play every pairing of the ladder ``games`` times (in opening pairs); fit; the file's data."""
    rng = np.random.default_rng(seed)
    members = {name: ladder_opponent(name, stones=stones) for name in LADDER}
    start = time.perf_counter()
    parts, table = _play_pairings(
        members, games, stones=stones, opening_plies=opening_plies, rng=rng, log=log
    )
    seconds = time.perf_counter() - start
    fit = fit_ratings(PairResults.concat(parts), len(LADDER), {LADDER.index(ANCHOR): 0.0})
    return {
        "command": f"tuner ladder --games {games} --seed {seed} --opening-plies {opening_plies}",
        "measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "anchor": ANCHOR,
        "tie_break": TIE_BREAK,
        "games_per_pairing": games,
        "opening_plies": opening_plies,
        "stones": stones,
        "seconds": round(seconds, 1),
        "interval": f"{CONFIDENCE:.0%} profile likelihood, opening pairs as the unit",
        "members": _member_rows(fit, members, table, stones),
        "pairings": table,
    }


def write_ladder(doc: dict[str, Any], path: Path = LADDER_FILE) -> Path:
    """Write a round robin's document, only if it is a ladder :func:`load_ladder` accepts,
    atomically (never half a file, never a stray ``.tmp``)."""
    problem = check_ladder(_as_ladder(doc))
    if problem:
        raise UserError(
            f"the round robin gives no usable ladder ({problem}); nothing was written. "
            "Play more games per pairing (--games)"
        )
    header = (
        "# The reference ladder: Elo ratings of the project's own opponents (random\n"
        "# tie-breaks), from a round robin in paired openings; random is anchored at 0.\n"
        "# Agents are rated against these numbers. Written by: " + doc["command"] + "\n"
        "# ms_per_move is what a move costs on the machine that measured it (what an\n"
        "# evaluation against it costs: make bench-rating); pairings give each pairing's\n"
        "# score of `first`. Intervals are relative to the anchor.\n"
    )
    return write_atomic(path, header + yaml.safe_dump(doc, sort_keys=False))


def _as_ladder(doc: dict[str, Any]) -> Ladder:
    members = tuple(
        Member(m["name"], m["rating"], m["low"], m["high"], m["ms_per_move"])
        for m in doc["members"]
    )
    return Ladder(members, doc["opening_plies"], doc["stones"])
