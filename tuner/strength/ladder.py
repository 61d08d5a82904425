"""The reference ladder: fixed opponents whose Elo ratings were measured once.

Why a ladder: an agent's rating is only as meaningful as the scale it is placed
on. The ladder is the project's own opponents from weakest to strongest, each
with random tie-breaks (as strong as with fixed ones, but more varied games);
``tuner ladder --games N`` plays every pairing of them (a round robin, in
opening pairs, each pairing in one batch), fits their Elo ratings by maximum
likelihood with ``random`` anchored at 0, and writes ``env/ladder.yaml``, which
is committed: every evaluation of every trial rates agents against those
numbers, so ratings from different trials, studies and machines compare.

The file also records what each member costs per move (measured on the machine
that wrote it), which sizes what a rating evaluation costs.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import env
from env.arena import DEFAULT_OPENING_PLIES, play_match
from env.opponents import Opponent, make_opponent
from env.rules import BOARD_DTYPE, apply_moves, initial_board, legal_masks
from tuner.base.errors import UserError
from tuner.strength.rating import CONFIDENCE, Fit, PairResults, fit_ratings

# The members, weakest first. A test checks that env/ladder.yaml rates exactly these.
LADDER = ("random", "greedy", *(f"minimax:{d}" for d in range(1, 7)))
ANCHOR = "random"
LADDER_FILE = Path(env.__file__).with_name("ladder.yaml")
TIE_BREAK = "random"


def ladder_opponent(name: str, *, seeds: int = 4, empty_capture: bool = False) -> Opponent:
    """A ladder member as it plays on the ladder: random tie-breaks."""
    return make_opponent(name, seeds=seeds, empty_capture=empty_capture, tie_break=TIE_BREAK)


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
    seeds: int

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.members]

    @property
    def ratings(self) -> np.ndarray:
        return np.array([m.rating for m in self.members])


def load_ladder(path: Path = LADDER_FILE) -> Ladder:
    """Read the ladder file; a missing or stale file is a :class:`UserError` saying how to fix it."""
    fix = "run `tuner ladder` (make ladder) to measure it again"
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
        ladder = Ladder(members, int(doc["opening_plies"]), int(doc["seeds"]))
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path}: not a ladder file ({err}); {fix}") from None
    if tuple(ladder.names) != LADDER:
        raise UserError(
            f"{path}: expected the members {list(LADDER)}, but got {ladder.names}; {fix}"
        )
    return ladder


def _positions(n: int, seeds: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mid-game positions (4 to 20 random plies in) to time the members on."""
    boards = np.tile(np.asarray(initial_board(seeds), dtype=BOARD_DTYPE), (n, 1))
    players = np.zeros(n, dtype=np.int64)
    stop = rng.integers(4, 21, size=n)
    live = np.ones(n, dtype=bool)
    for ply in range(20):
        idx = np.flatnonzero(live & (stop > ply))
        if idx.size == 0:
            break
        masks = legal_masks(boards[idx], players[idx])
        pits = (rng.random(masks.shape) * masks).argmax(axis=1)
        sub = boards[idx]
        nxt, over = apply_moves(sub, players[idx], pits, False)
        boards[idx], players[idx] = sub, nxt
        live[idx[over]] = False
    return boards[live], players[live]


def time_per_move(opponent: Opponent, seeds: int = 4, n: int = 200, seed: int = 0) -> float:
    """Milliseconds one move of ``opponent`` costs, measured on a batch of mid-game positions."""
    rng = np.random.default_rng(seed)
    boards, players = _positions(n, seeds, rng)
    opponent.act(boards[:2], players[:2], rng)  # compile
    start = time.perf_counter()
    opponent.act(boards, players, rng)
    return 1000.0 * (time.perf_counter() - start) / len(boards)


def _play_pairings(
    members: dict[str, Opponent],
    games: int,
    *,
    seeds: int,
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
            seeds=seeds,
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
    fit: Fit, members: dict[str, Opponent], table: list[dict[str, Any]], seeds: int
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
            "ms_per_move": round(time_per_move(members[name], seeds), 4),
        }
        for i, name in enumerate(LADDER)
    ]


def round_robin(
    games: int,
    *,
    seed: int = 0,
    opening_plies: int = DEFAULT_OPENING_PLIES,
    seeds: int = 4,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Play every pairing of the ladder ``games`` times (in opening pairs); fit; the file's data."""
    rng = np.random.default_rng(seed)
    members = {name: ladder_opponent(name, seeds=seeds) for name in LADDER}
    start = time.perf_counter()
    parts, table = _play_pairings(
        members, games, seeds=seeds, opening_plies=opening_plies, rng=rng, log=log
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
        "seeds": seeds,
        "seconds": round(seconds, 1),
        "interval": f"{CONFIDENCE:.0%} profile likelihood, opening pairs as the unit",
        "members": _member_rows(fit, members, table, seeds),
        "pairings": table,
    }


def write_ladder(doc: dict[str, Any], path: Path = LADDER_FILE) -> Path:
    header = (
        "# The reference ladder: Elo ratings of the project's own opponents (random\n"
        "# tie-breaks), from a round robin in paired openings; random is anchored at 0.\n"
        "# Agents are rated against these numbers. Written by: " + doc["command"] + "\n"
        "# ms_per_move is what a move costs on the machine that measured it (what an\n"
        "# evaluation against it costs: make bench-rating); pairings give each pairing's\n"
        "# score of `first`. Intervals are relative to the anchor.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    tmp.replace(path)
    return path
