"""Whole-training throughput: SB3's DummyVecEnv path against the batched KalahaVecEnv.

Both sides run ``tuner.trial.training.train``, the code a trial runs, with net_arch's
fixed PPO settings (n_steps 256, batch 512, 5 epochs, [128, 128]), the same
seed, the same opponents and the same evaluations; only the envs (and torch's
distribution checks) differ. ``train`` has no knob for either, since no trial wants
them: :func:`baseline` swaps the two seams it calls by name for the run.
Every figure is measured in this run, side by side, so the ratios hold on any
machine; nothing here fails on a slow one. The time of ``learn()`` is split into
collection (``collect_rollouts``), the PPO update (``train``) and evaluation.

    make bench                       # engine + training tables
    make bench DEVICE=cuda           # the same on a GPU
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import tuner.trial.training as training
from env.kalaha_env import KalahaEnv
from env.options import GameOptions
from tuner.config.spec import EvaluationSpec
from tuner.trial.training import resolve_device, train

PPO: dict[str, Any] = {
    "learning_rate": 3.0e-4,
    "n_steps": 256,
    "batch_size": 512,
    "n_epochs": 5,
    "gamma": 0.99,
    "ent_coef": 0.01,
    "policy_kwargs": {"net_arch": [128, 128]},
}
GAME = GameOptions(opponents=("random", "greedy"), opening_plies=2)
# The same network given each move's exact consequences (env/networks.py Lookahead):
# the last row of each table prices those features.
LOOKAHEAD_PPO = {**PPO, "policy_kwargs": {**PPO["policy_kwargs"], "lookahead": 2}}


@contextmanager
def timed_phases() -> Iterator[dict[str, float]]:
    """Seconds spent in MaskablePPO's collection and update, while the block runs."""
    spent: dict[str, float] = defaultdict(float)
    originals = {name: getattr(MaskablePPO, name) for name in ("collect_rollouts", "train")}

    def timer(name: str):
        original = originals[name]

        def wrapper(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start

        return wrapper

    for name in originals:
        setattr(MaskablePPO, name, timer(name))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(MaskablePPO, name, original)


def dummy_training_env(game: GameOptions, n_envs: int, seed: int) -> VecEnv:
    """SB3's ``DummyVecEnv`` over single-game ``KalahaEnv``s, how trials stepped before.

    The same games as ``training.make_training_env`` from the same seed (env ``i`` is
    seeded ``seed + i``); self-play opponents need the batched env.
    """
    if game.is_league:
        raise ValueError("self-play opponents need the batched KalahaVecEnv")
    return make_vec_env(
        partial(KalahaEnv.from_options, game), n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv
    )


@contextmanager
def baseline(vec_env: str, checks: bool) -> Iterator[None]:
    """While the block runs, ``train`` steps ``vec_env`` (``batched`` or ``dummy``) envs
    and validates torch's distribution arguments when ``checks``."""
    if vec_env not in ("batched", "dummy"):
        raise ValueError(f"vec_env: expected batched or dummy, but got {vec_env!r}")
    saved = training.make_training_env, training.distribution_checks_off
    # setattr: the benchmark swaps a module's functions for its own, which the types of
    # those functions (a KalahaVecEnv, a generator context) do not admit.
    if vec_env == "dummy":
        setattr(training, "make_training_env", dummy_training_env)  # noqa: B010
    if checks:
        setattr(training, "distribution_checks_off", nullcontext)  # noqa: B010
    try:
        yield
    finally:
        training.make_training_env, training.distribution_checks_off = saved


def run(
    vec_env: str,
    n_envs: int,
    timesteps: int,
    evaluation: EvaluationSpec,
    device: str,
    checks: bool = False,
    ppo: dict | None = None,
):
    with baseline(vec_env, checks), timed_phases() as spent:
        start = time.perf_counter()
        result = train(
            ppo or PPO,
            GAME,
            total_timesteps=timesteps,
            n_envs=n_envs,
            n_evaluations=evaluation_count(timesteps),
            evaluation=evaluation,
            seed=0,
            device=device,
        )
        wall = time.perf_counter() - start
    return {
        "steps_per_s": result.timesteps / wall,
        "collect": spent["collect_rollouts"] / wall,
        "update": spent["train"] / wall,
        "eval": result.eval_seconds / wall,
        "wall": wall,
        "timesteps": result.timesteps,
    }


def evaluation_count(timesteps: int) -> int:
    """As in net_arch: 5 evaluations per 200k steps, at least one."""
    return max(1, round(5 * timesteps / 200_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=65_536, help="per run (default 65536)")
    parser.add_argument("--n-envs", default="8,64", help="comma-separated (default 8,64)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto (default cpu)")
    parser.add_argument("--eval-games", type=int, default=200, help="games per opponent")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = resolve_device(args.device)
    evaluation = EvaluationSpec(
        opponents=["random", "greedy", "minimax:2"], games=args.eval_games, opening_plies=2
    )
    envs = [int(n) for n in args.n_envs.split(",")]
    run("batched", 8, 2_048, evaluation, device)  # compile and warm up outside the timing

    print(
        f"whole training, MaskablePPO, net_arch's fixed settings, {args.timesteps} steps, "
        f"device {device}, 1 torch thread"
    )
    header = f"{'n_envs':>6}  {'env':<22} {'steps/s':>9} {'ratio':>6} {'collect':>8} {'update':>7} {'eval':>6}"
    print(header)
    print("-" * len(header))
    # DummyVecEnv with torch's distribution checks is how trials trained before;
    # the second row splits the gain between the env and the checks.
    variants = [
        ("DummyVecEnv+checks", "dummy", True, PPO),
        ("KalahaVecEnv+checks", "batched", True, PPO),
        ("KalahaVecEnv", "batched", False, PPO),
        ("KalahaVecEnv+lookahead", "batched", False, LOOKAHEAD_PPO),
    ]
    for n in envs:
        base = None
        for label, vec_env, validate, ppo in variants:
            r = run(vec_env, n, args.timesteps, evaluation, device, checks=validate, ppo=ppo)
            base = base or r["steps_per_s"]
            print(
                f"{n:>6}  {label:<22} {r['steps_per_s']:>9,.0f} {r['steps_per_s'] / base:>5.2f}x "
                f"{r['collect']:>7.0%} {r['update']:>7.0%} {r['eval']:>6.0%}",
                flush=True,
            )
    print("targets: KalahaVecEnv at least 2x at 8 envs and 3x at 64 envs; collection under 40%")


if __name__ == "__main__":
    main()
