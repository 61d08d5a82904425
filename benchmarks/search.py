"""Search at play time: strength and milliseconds per move by depth or simulations.

For each model (``--models``) and each search (``--specs``; ``policy`` is the
network alone), one run measures:

1. Milliseconds per move on one core: CPU time (``time.process_time``, one torch
   thread) of the search over ``--positions`` positions taken from real games
   (the policy against minimax:2 from random openings), one position at a time,
   as a game would ask. CPU time, not wall time, so that a machine shared with
   other work still gives one core's cost; compare rows of one run.
2. The score against each of ``--opponents`` (the project's ``minimax:N``,
   random tie-breaks): ``--games`` games in paired openings (4 random plies, each
   opening from both seats), with the 95% Wilson interval over opening pairs. All
   games of a match are searched in lockstep (one forward pass per round for all),
   so a 400-game match costs far less than 400 single games would.

`make bench-search` prints the table README's "Search at play time" shows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from env.arena import play_match
from env.opponents import PolicyOpponent, make_opponent
from env.search import SearchAgent, load_evaluator, parse_search, to_views
from tuner.strength.evaluate import opponent_result

COMMITTED = "studies/best/selfplay.zip"


class Recorder:
    """An opponent that keeps the positions it was asked to move in (from the mover's view)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.views: list[np.ndarray] = []

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator):
        self.views.append(to_views(boards, players.astype(np.int64)))
        return self.inner.act(boards, players, rng)


def game_positions(model: str, n: int, seed: int = 0) -> np.ndarray:
    """``n`` positions with a choice to make, from the policy's games against minimax:2."""
    recorder = Recorder(PolicyOpponent(model))
    play_match(recorder, make_opponent("minimax:2", tie_break="random"), 20, rng=seed)
    views = np.concatenate(recorder.views)
    views = views[(views[:, :6] > 0).sum(axis=1) > 1]  # a forced move is not searched
    rng = np.random.default_rng(seed)
    return views[rng.choice(len(views), size=min(n, len(views)), replace=False)]


def agent_for(model: str, spec: str) -> Any:
    if spec == "policy":
        return PolicyOpponent(model)
    return SearchAgent(load_evaluator(model), parse_search(spec), name=spec)


def ms_per_move(agent: Any, views: np.ndarray) -> float:
    """CPU milliseconds per move, one position at a time."""
    players = np.zeros(1, dtype=np.int64)
    rng = np.random.default_rng(0)
    agent.act(views[:2], np.zeros(2, dtype=np.int64), rng)  # compile and warm up
    start = time.process_time()
    for view in views:
        agent.act(view[None, :], players, rng)
    return (time.process_time() - start) * 1000.0 / len(views)


def row(model: str, spec: str, views: np.ndarray, opponents: list[str], games: int) -> str:
    agent = agent_for(model, spec)
    cells = [Path(model).stem, spec, f"{ms_per_move(agent, views):8.1f}"]
    for name in opponents:
        match = play_match(agent, make_opponent(name, tie_break="random"), games, rng=0)
        r = opponent_result(name, [match])
        cells.append(f"{r.score:.3f} [{r.ci_low:.2f}, {r.ci_high:.2f}]")
    return " | ".join(cells)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=COMMITTED, help="comma-separated model files")
    parser.add_argument("--specs", default="policy,ab:3,ab:4,ab:5,mcts:50")
    parser.add_argument("--opponents", default="minimax:4,minimax:6")
    parser.add_argument("--games", type=int, default=100, help="games per cell (even)")
    parser.add_argument("--positions", type=int, default=60, help="positions timed per search")
    args = parser.parse_args()
    opponents = [o for o in args.opponents.split(",") if o]
    head = ["model", "search", "ms/move"] + [f"vs {o} ({args.games} games)" for o in opponents]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for model in [m for m in args.models.split(",") if m]:
        views = game_positions(model, args.positions)
        for spec in [s for s in args.specs.split(",") if s]:
            print(f"| {row(model, spec, views, opponents, args.games)} |", flush=True)


if __name__ == "__main__":
    main()
