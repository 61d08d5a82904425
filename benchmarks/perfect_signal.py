"""Is regret against perfect play a good pruning signal? Checkpoints rated and scored.

Why: a trial's value drives pruning and ranking. The ladder rating costs a minute of
games and carries sampling noise; the optimal-move share and the mean regret on the
solved set (tuner/strength/perfect.py) cost one forward pass and carry none for a
fixed agent. They are worth using only if they order agents as the rating does and if
two seeds of one configuration land as close together on them as on the rating.

What it does: trains ``--configs`` settings of the exploration study (its fixed PPO
settings, league and budget shape) with two seeds each, saving the model at every
``--every`` steps up to ``--steps``; rates every checkpoint on the reference ladder
(``--games`` games) and scores it on the solved set; prints one row per checkpoint,
then the Spearman rank correlations between the rating and each perfect-play number,
and the seed-to-seed noise of each (the spread between two seeds of one configuration
at one checkpoint, against the configurations' spread at that checkpoint), and the
rating's own sampling noise (each checkpoint rated twice). Checkpoints and results
are kept under ``--out``, so a second run only prints (``--fresh`` retrains).

Run with ``make bench-perfect-signal`` (about 10 minutes on 2 busy cores: 12 runs of
262k steps, 96 checkpoints).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from env.opponents import PolicyOpponent
from tuner.config.loading import load_spec
from tuner.config.space import to_config
from tuner.config.spec import EvaluationSpec
from tuner.strength.evaluate import rate_policy
from tuner.strength.perfect import load_solved_set, score_opponent
from tuner.trial.callbacks import CheckpointCallback
from tuner.trial.training import train

# Three corners of the exploration study's space: a lively entropy bonus and a mid
# learning rate, a decaying fast rate with a KL stop, a slow rate with almost no bonus.
# D-F fill the space between them (a high bonus with a fast rate, two middles).
CONFIGS: dict[str, dict[str, Any]] = {
    "A": {"ent_coef": 1e-2, "learning_rate": 3e-4, "lr_schedule": "constant", "target_kl": None},
    "B": {"ent_coef": 1e-4, "learning_rate": 1e-3, "lr_schedule": "linear", "target_kl": 0.02},
    "C": {"ent_coef": 1e-6, "learning_rate": 8e-5, "lr_schedule": "constant", "target_kl": 0.05},
    "D": {"ent_coef": 5e-2, "learning_rate": 2e-3, "lr_schedule": "constant", "target_kl": None},
    "E": {"ent_coef": 1e-3, "learning_rate": 5e-4, "lr_schedule": "linear", "target_kl": None},
    "F": {"ent_coef": 1e-5, "learning_rate": 1.5e-4, "lr_schedule": "linear", "target_kl": 0.01},
}


def checkpoints(out: Path, name: str, seed: int, every: int, steps: int) -> list[Path]:
    """Train one configuration with one seed; the saved model at each multiple of ``every``."""
    found = sorted(out.glob(f"{name}_s{seed}_*.zip"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    if len(found) >= steps // every:
        return found
    spec = load_spec("exploration")
    config = to_config(spec, CONFIGS[name])
    saver = CheckpointCallback(every, lambda n: out / f"{name}_s{seed}_{n}.zip")
    began = time.perf_counter()
    train(
        config.ppo_kwargs,
        config.game,
        total_timesteps=steps,
        n_envs=spec.budget.n_envs,
        n_evaluations=1,
        # The trial's own evaluation is not used here: two games against random.
        evaluation=EvaluationSpec(objective="score", opponents=["random"], games=2),
        seed=seed,
        device="cpu",
        callbacks=[saver],
    )
    print(f"  trained {name} seed {seed}: {time.perf_counter() - began:.0f} s", flush=True)
    return saver.saved


def measure(path: Path, games: int, solved: Any) -> dict[str, Any]:
    """The checkpoint's rating (``games`` games, seed 0; again with seed 1, for the rating's
    own sampling noise) and its perfect-play numbers (deterministic: measured once)."""
    cached = path.with_suffix(".json")
    if cached.exists():
        return dict(json.loads(cached.read_text()))
    policy = PolicyOpponent(path, name="agent")
    began = time.perf_counter()
    rated = rate_policy(policy, games=games, seed=0)
    rating_s = time.perf_counter() - began
    again = rate_policy(policy, games=games, seed=1)
    began = time.perf_counter()
    score = score_opponent(policy, solved)["all"]
    perfect_s = time.perf_counter() - began
    row = {
        "rating": rated.rating.rating,
        "low": rated.rating.low,
        "high": rated.rating.high,
        "rating_again": again.rating.rating,
        "optimal": score.optimal.mean,
        "regret": score.regret.mean,
        "blunders": score.blunders.mean,
        "rating_s": rating_s,
        "perfect_s": perfect_s,
    }
    cached.write_text(json.dumps(row))
    return row


def ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def seed_noise(rows: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    """One seed's spread and the configurations' spread at the same checkpoint, and the
    share of the variance at a checkpoint that is the configuration's (not the seed's).

    Per (config, steps): the seeds' variance (one seed's noise) and the mean. Per steps:
    the variance of the configs' means less the part their seeds put there. What a
    pruner compares is trials at the same step, so both are taken within a step.
    """
    cells: dict[tuple[str, int], list[float]] = {}
    for r in rows:
        cells.setdefault((r["config"], r["steps"]), []).append(r[key])
    seeds = [float(np.var(v, ddof=1)) for v in cells.values() if len(v) > 1]
    within = float(np.mean(seeds)) if seeds else float("nan")
    between: list[float] = []
    for steps in sorted({s for _, s in cells}):
        means = [float(np.mean(v)) for (_, s), v in cells.items() if s == steps]
        n = float(np.mean([len(v) for (_, s), v in cells.items() if s == steps]))
        if len(means) > 1:
            between.append(max(0.0, float(np.var(means, ddof=1)) - within / n))
    config_var = float(np.mean(between)) if between else float("nan")
    share = config_var / (config_var + within) if config_var + within > 0 else float("nan")
    return float(np.sqrt(within)), float(np.sqrt(config_var)), share


def per_step_spearman(rows: list[dict[str, Any]], key: str) -> tuple[float, float, float]:
    """Spearman between the rating and ``key`` among the agents of one step: min, mean, max
    over steps (the pruner's comparison: trials at the same step)."""
    values = []
    for steps in sorted({r["steps"] for r in rows}):
        at = [r for r in rows if r["steps"] == steps]
        if len(at) > 2:
            values.append(
                spearman(np.array([r["rating"] for r in at]), np.array([r[key] for r in at]))
            )
    if not values:  # one configuration: too few agents per step
        return float("nan"), float("nan"), float("nan")
    return min(values), float(np.mean(values)), max(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", default="A,B,C,D,E,F", help="which of A-F (default all)")
    parser.add_argument("--seeds", default="1,2", help="training seeds (default 1,2)")
    parser.add_argument("--every", type=int, default=32_768, help="steps between checkpoints")
    parser.add_argument("--steps", type=int, default=262_144, help="steps per run")
    parser.add_argument("--games", type=int, default=200, help="games of each rating")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/perfect_signal"))
    parser.add_argument("--fresh", action="store_true", help="retrain and re-measure")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for old in [*args.out.glob("*.zip"), *args.out.glob("*.json")]:
            old.unlink()
    solved = load_solved_set()
    rows: list[dict[str, Any]] = []
    for name in args.configs.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            for path in checkpoints(args.out, name, seed, args.every, args.steps):
                steps = int(path.stem.rsplit("_", 1)[1])
                rows.append({"config": name, "seed": seed, "steps": steps,
                             **measure(path, args.games, solved)})  # fmt: skip
                r = rows[-1]
                print(
                    f"  {name} s{seed} {steps:>7}  rating {r['rating']:6.0f} "
                    f"[{r['low']:.0f}, {r['high']:.0f}]  optimal {r['optimal']:.3f}  "
                    f"regret {r['regret']:.3f}  blunders {r['blunders']:.3f}  "
                    f"({r['rating_s']:.1f} s rating, {r['perfect_s']:.2f} s perfect)",
                    flush=True,
                )
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    """The correlations and the noise, printed."""
    rating = np.array([r["rating"] for r in rows])
    n_steps = len({r["steps"] for r in rows})
    print(
        f"\n{len(rows)} checkpoints; Spearman rank correlation with the rating: over all of "
        f"them, and among the agents of one step (min / mean / max over {n_steps} steps)"
    )
    for key in ("optimal", "regret", "blunders"):
        low, mean, high = per_step_spearman(rows, key)
        print(
            f"  {key:<9} all {spearman(rating, np.array([r[key] for r in rows])):+.3f}   "
            f"one step {low:+.3f} / {mean:+.3f} / {high:+.3f}"
        )
    again = np.array([r["rating_again"] for r in rows])
    retest = float(np.sqrt(np.mean((rating - again) ** 2) / 2))
    print(
        f"the rating of one agent twice (seeds 0 and 1): SD {retest:.1f} Elo, Spearman "
        f"{spearman(rating, again):+.3f}; the perfect-play numbers repeat exactly"
    )
    print("at one step: one training seed's SD, the configurations' SD, the configs' share:")
    for key in ("rating", "optimal", "regret", "blunders"):
        seed_sd, config_sd, share = seed_noise(rows, key)
        print(f"  {key:<9} seed SD {seed_sd:8.3f}  config SD {config_sd:8.3f}  share {share:.2f}")
    print(
        f"seconds per evaluation: rating median {np.median([r['rating_s'] for r in rows]):.1f}, "
        f"perfect median {np.median([r['perfect_s'] for r in rows]):.2f}"
    )


if __name__ == "__main__":
    main()
