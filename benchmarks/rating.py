"""What the rating evaluation costs beside training: its share of a trial's wall time.

One run measures, on one core and one torch thread:

1. Training: a real trial's ``train`` with net_arch's fixed PPO settings
   ([128, 128], n_steps 256, batch 512, 5 epochs, 8 envs, random + greedy) for
   ``--steps`` timesteps, with the rating evaluation twice: env steps per second,
   and what one evaluation of that (weak) agent took, policy forward passes included.
2. Rating agents of every strength: each ladder member of ``--levels`` stands in for
   an agent of its level and is rated with ``--games`` games; the seconds the
   ladder's side spent on its moves are what an agent of that level would cost (its
   own moves are a policy's batched forward passes, measured in 1), and the games
   show where the evaluator sent them.

It then prints the evaluation's share of a trial, evaluations / (training +
evaluations), at each ``--budget`` (timesteps:evaluations). Figures, not asserts:
`make bench-rating` prints them; compare rows of one run, not machines.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from tuner.strength.evaluate import rate_policy
from tuner.strength.ladder import ladder_opponent, load_ladder


class Timed:
    """An opponent that counts the seconds it spends choosing moves."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = 0.0

    def act(self, boards: np.ndarray, players: np.ndarray, rng: np.random.Generator):
        start = time.perf_counter()
        try:
            return self.inner.act(boards, players, rng)
        finally:
            self.seconds += time.perf_counter() - start


def training(steps: int, games: int) -> tuple[float, float]:
    """(env steps per second of training, seconds per rating evaluation of its agent)."""
    import torch

    from tuner.config.spec import EvaluationSpec
    from tuner.trial.training import train

    torch.set_num_threads(1)
    run = train(
        {
            "learning_rate": 3.0e-4,
            "n_steps": 256,
            "batch_size": 512,
            "n_epochs": 5,
            "gamma": 0.99,
            "ent_coef": 0.01,
            "policy_kwargs": {"net_arch": [128, 128]},
        },
        {"opponent": ["random", "greedy"], "opening_plies": 2},
        total_timesteps=steps,
        n_envs=8,
        n_evaluations=2,
        evaluation=EvaluationSpec(objective="rating", games=games),
        seed=0,
        device="cpu",
    )
    n = max(len(run.progress.evaluations), 1)
    return run.steps_per_second, run.eval_seconds / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000, help="timesteps of the training run")
    parser.add_argument("--games", type=int, default=200, help="games per rating evaluation")
    parser.add_argument(
        "--levels",
        default="greedy,minimax:2,minimax:4,minimax:5,minimax:6",
        help="ladder members that stand in for agents of their strength",
    )
    parser.add_argument(
        "--budget",
        action="append",
        default=None,
        help="TIMESTEPS:EVALUATIONS of a trial (repeatable; default 200000:5 and 2000000:10)",
    )
    args = parser.parse_args()
    budgets = [
        tuple(int(x) for x in b.split(":")) for b in args.budget or ["200000:5", "2000000:10"]
    ]
    ladder = load_ladder()

    speed, weak_eval = training(args.steps, args.games)
    print(f"training, net_arch settings, 8 envs, 1 thread: {speed:,.0f} env steps/s")
    print(f"rating evaluation of that agent ({args.games} games): {weak_eval:.2f}s")
    print()
    header = f"{'agent at':<10s} {'ladder s':>9s} {'eval s':>7s}  games per member"
    print(f"rating evaluation, {args.games} games in 4 rounds, by the agent's strength")
    print(header)
    rows = []
    for level in [x.strip() for x in args.levels.split(",") if x.strip()]:
        members = [Timed(ladder_opponent(n)) for n in ladder.names]
        rated = rate_policy(
            ladder_opponent(level), games=args.games, seed=0, ladder=ladder, members=members
        )
        ladder_s = sum(m.seconds for m in members)
        # A policy agent's own moves: what the weak agent's evaluation cost, at most.
        eval_s = ladder_s + weak_eval
        rows.append((level, eval_s))
        played = ", ".join(f"{k} {r.games}" for k, r in rated.results.items())
        print(f"{level:<10s} {ladder_s:9.2f} {eval_s:7.2f}  {played}  -> rating {rated.rating}")
    print()
    print("evaluation share of a trial: evaluations / (training + evaluations)")
    print(f"{'budget':<26s} {'train s':>8s} " + " ".join(f"{lv:>10s}" for lv, _ in rows))
    for steps, n_evals in budgets:
        train_s = steps / speed
        shares = [n_evals * e / (train_s + n_evals * e) for _, e in rows]
        label = f"{steps:,} steps, {n_evals} evals"
        print(f"{label:<26s} {train_s:8.0f} " + " ".join(f"{s:10.1%}" for s in shares))


if __name__ == "__main__":
    main()
