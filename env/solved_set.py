"""The solved-position set: positions that real players reach, each with exact move values.

Why a fixed set: a policy's choices on solved positions can be scored with no
sampling noise at all, in one forward pass (regret against perfect play), where
a rating from games is noisy and costs minutes. Why positions from games between
ladder members and a trained agent rather than random ones: random play reaches
boards that no sensible player meets (half the seeds lost in the first moves),
and a yardstick should measure the choices that matter in real games.

Every phase of the game is covered: the set is drawn in strata of seeds left on
the board (:data:`PHASES`), because an agent can be near perfect in the endgame
and poor in the opening, and one average would hide it.

The set is made by::

    python -m env.solved_set --seed 0 --out env/solved/kalah64.jsonl.gz

which plays the games, draws the positions and solves them (resumably: an
interrupted run picks up where it stopped). ``kalah64.meta.json`` beside the set
records the command, the seed, the counts and the time it took.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from env.opponents import EpsilonOpponent, Opponent, PolicyOpponent, make_opponent
from env.rules import BOARD_DTYPE, N_PITS, apply_moves, initial_board, legal_masks
from env.solver import Solution, solve_groups

SOLVED_DIR = Path(__file__).parent / "solved"
SET_PATH = SOLVED_DIR / "kalah64.jsonl.gz"
# The committed trained agent whose games (and choices) feed the set.
AGENT_PATH = Path("studies/best/selfplay.zip")

# Phases by seeds left in the twelve pits (Kalah(6,4) starts with 48).
PHASES: tuple[tuple[str, int, int], ...] = (
    ("opening", 37, 48),
    ("middle", 25, 36),
    ("late", 13, 24),
    ("endgame", 1, 12),
)
# Positions drawn per phase: the opening's are the dearest to solve (tens of
# millions of nodes each), the endgame's cost almost nothing.
# Measured on this project's 2-core machine: an opening position with its six move
# values takes seconds to a minute, a middle one a fraction of a second.
DEFAULT_COUNTS = {"opening": 10, "middle": 300, "late": 2700, "endgame": 2000}
# No position with more seeds left is drawn: one with 40 or more costs minutes to
# solve here (the start position itself: see the slow test), so the set's opening
# is its last moves (37-38 seeds). A bigger machine can raise this and the counts.
DRAW_MAX_SEEDS = 38
GAMES_PER_PAIRING = 8
# The players whose games feed the set: the ladder's members with some random moves
# (so that games vary) and the committed agent.
DEFAULT_PLAYERS = (
    "greedy@0.1",
    "minimax:1@0.1",
    "minimax:2@0.1",
    "minimax:3@0.1",
    "minimax:4@0.05",
    "minimax:5@0.05",
    "agent@0.05",
)
MAX_PLIES = 400


def seeds_left(board: Sequence[int]) -> int:
    """Seeds in the twelve pits (the stores left out): what decides a position's phase."""
    return int(sum(board[:N_PITS]) + sum(board[N_PITS + 1 : 2 * N_PITS + 1]))


def phase_of(board: Sequence[int]) -> str:
    """The phase name of a board, by the seeds left in its pits."""
    left = seeds_left(board)
    for name, low, high in PHASES:
        if low <= left <= high:
            return name
    raise ValueError(f"expected a board with 1 to {PHASES[0][2]} seeds in its pits, but got {left}")


def build_player(spec: str, agent: str | Path = AGENT_PATH) -> Opponent:
    """A player of the set's games: an opponent spec, or ``agent[@eps]`` for the trained agent."""
    base, at, eps = spec.partition("@")
    if base != "agent":
        return make_opponent(spec, tie_break="random")
    player = PolicyOpponent(Path(agent), name="agent")
    return EpsilonOpponent(player, float(eps)) if at else player


@dataclass(frozen=True)
class Position:
    """A position met in a game: the board, the mover, and which game and ply it came from."""

    board: tuple[int, ...]
    to_move: int
    game: int
    ply: int


def play_games(
    first: Opponent, second: Opponent, n_games: int, rng: np.random.Generator, first_game: int = 0
) -> list[Position]:
    """Every position of ``n_games`` games (``first`` in seat 0), after 2 random opening plies."""
    boards = np.tile(np.asarray(initial_board(4), dtype=BOARD_DTYPE), (n_games, 1))
    to_move = np.zeros(n_games, dtype=np.int64)
    live = np.ones(n_games, dtype=bool)
    seen: list[Position] = []
    for ply in range(MAX_PLIES):
        idx = np.flatnonzero(live)
        if idx.size == 0:
            break
        for i in idx:
            seen.append(
                Position(
                    tuple(int(x) for x in boards[i]), int(to_move[i]), first_game + int(i), ply
                )
            )
        pits = np.empty(idx.size, dtype=np.int64)
        if ply < 2:  # random openings: without them a deterministic pairing replays one game
            masks = legal_masks(boards[idx], to_move[idx])
            pits[:] = (rng.random(masks.shape) * masks).argmax(axis=1)
        else:
            for side, seat in ((first, 0), (second, 1)):
                sel = to_move[idx] == seat
                if sel.any():
                    pits[sel] = side.act(boards[idx[sel]], to_move[idx[sel]], rng)
        sub = boards[idx]
        nxt, over = apply_moves(sub, to_move[idx], pits, False)
        boards[idx] = sub
        to_move[idx] = nxt
        live[idx[over]] = False
    return seen


def draw_positions(
    counts: dict[str, int],
    seed: int,
    players: Sequence[str] = DEFAULT_PLAYERS,
    games_per_pairing: int = GAMES_PER_PAIRING,
    agent: str | Path = AGENT_PATH,
) -> list[Position]:
    """Positions from games between every ordered pair of ``players``, ``counts[phase]`` per phase.

    Distinct positions only (the same board and mover twice is one position), drawn
    uniformly within each phase.
    """
    rng = np.random.default_rng(seed)
    built = [build_player(spec, agent) for spec in players]
    pool: dict[tuple, Position] = {}
    game = 0
    for first in built:
        for second in built:
            for pos in play_games(first, second, games_per_pairing, rng, first_game=game):
                pool.setdefault((pos.board, pos.to_move), pos)
            game += games_per_pairing
    by_phase: dict[str, list[Position]] = {name: [] for name, _, _ in PHASES}
    for pos in pool.values():
        if 0 < seeds_left(pos.board) <= DRAW_MAX_SEEDS:
            by_phase[phase_of(pos.board)].append(pos)
    drawn: list[Position] = []
    for name, _, _ in PHASES:
        found = by_phase[name]
        want = counts.get(name, 0)
        if want > len(found):
            raise ValueError(
                f"expected at least {want} distinct {name} positions, but the games gave "
                f"{len(found)}; play more games per pairing"
            )
        picks = rng.choice(len(found), size=want, replace=False)
        drawn.extend(found[i] for i in sorted(picks))
    return drawn


def _by_game(positions: Sequence[Position]) -> list[list[Position]]:
    """Positions grouped by game, fewest seeds first (their subtrees fill the table)."""
    games: dict[int, list[Position]] = {}
    for pos in positions:
        games.setdefault(pos.game, []).append(pos)
    return [sorted(group, key=lambda p: seeds_left(p.board)) for _, group in sorted(games.items())]


def record(pos: Position, solved: Solution) -> dict:
    """One line of the set: the position, its value and its move values."""
    return {
        "board": list(pos.board),
        "to_move": pos.to_move,
        "value": solved.value,
        "move_values": list(solved.move_values),
        "game": pos.game,
        "ply": pos.ply,
    }


def read_set(path: str | Path = SET_PATH) -> list[dict]:
    """The lines of a solved set (``.jsonl`` or ``.jsonl.gz``)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _solve_into(partial: Path, positions: Sequence[Position], jobs: int) -> None:
    """Append solved lines to ``partial``, skipping the positions already there."""
    done = set()
    if partial.exists():
        done = {(tuple(r["board"]), r["to_move"]) for r in read_set(partial)}
    todo = [p for p in positions if (p.board, p.to_move) not in done]
    groups = _by_game(todo)
    began, solved = time.monotonic(), 0
    print(f"{len(done)} positions solved before, {len(todo)} to solve", file=sys.stderr)
    with partial.open("a", encoding="utf-8") as out:
        plain = [[(list(p.board), p.to_move) for p in g] for g in groups]
        for group, results in zip(groups, solve_groups(plain, jobs=jobs), strict=True):
            for pos, res in zip(group, results, strict=True):
                out.write(json.dumps(record(pos, res)) + "\n")
            out.flush()
            solved += len(group)
            rate = solved / max(time.monotonic() - began, 1e-9)
            print(f"solved {solved}/{len(todo)} ({rate:.1f}/s)", file=sys.stderr, flush=True)


def make_set(out: Path, seed: int, counts: dict[str, int], jobs: int, command: str) -> None:
    """Draw, solve (resumably, through ``out``'s ``.partial`` file) and write the set."""
    began = time.monotonic()
    positions = draw_positions(counts, seed)
    partial = out.with_name(out.name.replace(".jsonl.gz", ".partial.jsonl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    _solve_into(partial, positions, jobs)
    solved = {(tuple(r["board"]), r["to_move"]): r for r in read_set(partial)}
    rows = [solved[(p.board, p.to_move)] for p in positions]
    with gzip.GzipFile(out, "wb", mtime=0) as raw:
        raw.write("".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))
    meta = {
        "command": command,
        "seed": seed,
        "rules": "Kalah(6,4), standard capture (empty_capture off)",
        "players": list(DEFAULT_PLAYERS),
        "games_per_pairing": GAMES_PER_PAIRING,
        "draw_max_seeds": DRAW_MAX_SEEDS,
        "phases": {name: [low, high] for name, low, high in PHASES},
        "counts": {name: counts.get(name, 0) for name, _, _ in PHASES},
        "positions": len(rows),
        "seconds_this_run": round(time.monotonic() - began, 1),
    }
    out.with_name(out.name.replace(".jsonl.gz", ".meta.json")).write_text(
        json.dumps(meta, indent=2) + "\n", encoding="utf-8"
    )
    partial.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m env.solved_set``: make the committed solved-position set."""
    parser = argparse.ArgumentParser(prog="python -m env.solved_set", description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=SET_PATH)
    parser.add_argument("--jobs", type=int, default=1)
    for name, _, _ in PHASES:
        parser.add_argument(f"--{name}", type=int, default=DEFAULT_COUNTS[name])
    args = parser.parse_args(argv)
    counts = {name: getattr(args, name) for name, _, _ in PHASES}
    command = "python -m env.solved_set " + " ".join(argv if argv is not None else sys.argv[1:])
    make_set(args.out, args.seed, counts, args.jobs, command.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
