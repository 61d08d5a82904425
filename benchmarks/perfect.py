"""The exact solver's speed by phase, and what a ``--perfect`` evaluation costs beside a rating.

Why: regret on the solved set is meant to replace (or sit beside) a rating from
games as the strength signal of a trial; that only pays if it is much cheaper.
The solver's speed by phase says what growing the set would cost. ``--ladder``
prints the README's table: each reference ladder member's (and the committed
agent's) optimal share, regret and blunder rate. Run with ``make bench``; it
prints figures and never fails on a slow machine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from env.opponents import PolicyOpponent, make_opponent
from env.solved_set import AGENT_PATH, PHASES, phase_of, read_set
from env.solver import Solver
from tuner.strength.evaluate import rate_policy
from tuner.strength.perfect import format_scores, load_solved_set, score_opponent


def ladder(deepest: int) -> tuple[str, ...]:
    """The reference ladder's members up to minimax:``deepest``."""
    return ("random", "greedy", *(f"minimax:{k}" for k in range(1, deepest + 1)))


def solver_speed(per_phase: int, seed: int) -> list[str]:
    """Positions (with all six move values) per CPU second, by phase, on the committed set."""
    rows = read_set()
    rng = np.random.default_rng(seed)
    lines = [f"{'phase':<9} {'positions':>9} {'positions/s':>12} {'nodes/s':>10}"]
    for name, _, _ in PHASES:
        found = [r for r in rows if phase_of(r["board"]) == name]
        picks = rng.choice(len(found), size=min(per_phase, len(found)), replace=False)
        solver = Solver()  # a fresh table per phase: no phase profits from another
        began = time.process_time()
        for i in picks:
            solver.solve_one(found[int(i)]["board"], found[int(i)]["to_move"])
        spent = max(time.process_time() - began, 1e-9)
        lines.append(
            f"{name:<9} {len(picks):>9} {len(picks) / spent:>12.1f} {solver.nodes / spent:>10.3g}"
        )
    return lines


def perfect_vs_rating(agent: Path, games: int) -> list[str]:
    """Wall seconds of ``--perfect`` (set loading included) and of a ``games``-game rating."""
    policy = PolicyOpponent(agent, name="agent")
    began = time.perf_counter()
    score_opponent(policy, load_solved_set())
    perfect = time.perf_counter() - began
    began = time.perf_counter()
    rate_policy(policy, games=games, seed=0)
    rating = time.perf_counter() - began
    return [
        f"--perfect on the solved set: {perfect:.2f} s",
        f"rating from {games} games:     {rating:.2f} s ({rating / perfect:.0f}x the --perfect cost)",
    ]


def ladder_table(agent: Path, deepest: int) -> list[str]:
    """Optimal share, regret and blunders of each ladder member and the committed agent."""
    solved = load_solved_set()
    lines = [f"{'player':<12} {'optimal':<14} {'regret':<14} blunders"]
    players = [(name, make_opponent(name, tie_break="random")) for name in ladder(deepest)]
    players.append((agent.name, PolicyOpponent(agent, name="agent")))
    for name, player in players:
        s = score_opponent(player, solved)["all"]
        lines.append(f"{name:<12} {s.optimal!s:<14} {s.regret!s:<14} {s.blunders}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-phase", type=int, default=20, help="positions solved per phase")
    parser.add_argument("--games", type=int, default=200, help="games of the rating compared")
    parser.add_argument("--agent", type=Path, default=AGENT_PATH)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ladder", action="store_true", help="also the ladder members' table")
    parser.add_argument(
        "--deepest", type=int, default=6, help="the ladder table's deepest minimax (default 6)"
    )
    args = parser.parse_args()
    if args.ladder:
        for line in ladder_table(args.agent, args.deepest):
            print(f"  {line}", flush=True)
    print("exact solver, Kalah(6,4), standard capture: CPU time per phase")
    for line in solver_speed(args.per_phase, args.seed):
        print(f"  {line}", flush=True)
    for line in perfect_vs_rating(args.agent, args.games):
        print(f"  {line}", flush=True)
    print(f"{args.agent} against perfect play, by phase:")
    for line in format_scores(score_opponent(PolicyOpponent(args.agent, name="agent"))):
        print(f"  {line}")


if __name__ == "__main__":
    main()
