"""Whole-training throughput: the batched env, the lookahead features, and torch threads.

Every row runs ``tuner.trial.training.train``, the code a trial runs, from the same seed;
every figure is measured in this run, side by side, so the ratios hold on any
machine; nothing here fails on a slow one. Steps/s and the shares of collection
(``collect_rollouts``), the PPO update (``train``) and evaluation are per CPU
second of this process (``benchmarks/phases.py``: what a free core gives, even on
shared cores); ``wall s/s`` is per second of wall time.

1. The batched env: SB3's ``DummyVecEnv`` against ``KalahaVecEnv``, with net_arch's
   former fixed settings (n_steps 256, batch 512, 5 epochs, [128, 128], random and
   greedy opponents), at each ``--n-envs``.
2. The lookahead features at 64 envs: plain, ``lookahead: 2`` (the env computes the
   features once per step, the network reads them) and ``lookahead: 2`` the way it
   ran before (``env.networks.Lookahead`` recomputing them in every forward pass,
   policy opponents acting through ``predict``, one pass per pool member: kept for
   this row), with net_arch's settings and with the selfplay study's trial settings
   (its file, the search space pinned to ``SELFPLAY_PARAMS``: [256, 256, 256], 7
   epochs, the league with its pool full from the start, as in most of a trial,
   the rating evaluation).
3. Torch threads: two workers with one thread each against one worker with two,
   steps/s of the whole (the selfplay trial settings, in subprocesses).

    make bench                       # engine + these tables
    make bench DEVICE=cuda           # the same on a GPU
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from typing import Any

import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import tuner.trial.training as training
from benchmarks.phases import training_phases
from env.kalaha_env import KalahaEnv
from env.options import GameOptions
from tuner.config.spec import EvaluationSpec
from tuner.trial.training import resolve_device, train

PPO = {
    "learning_rate": 3.0e-4,
    "n_steps": 256,
    "batch_size": 512,
    "n_epochs": 5,
    "gamma": 0.99,
    "ent_coef": 0.01,
    "policy_kwargs": {"net_arch": [128, 128]},
}
GAME = GameOptions(opponents=("random", "greedy"), opening_plies=2)
# The selfplay study's search space, pinned: the committed agent's network and epochs,
# the study's default league mix (benchmarks/trial_profile.py profiles the same trial).
SELFPLAY_PARAMS = {
    "learning_rate": 2.5e-4,
    "n_epochs": 7,
    "ent_coef": 1.5e-3,
    "net_arch": "deep",
    "opponents": "league",
    "snapshot_every": 50_000,
    "pool_size": 9,
    "pool_sampling": "pfsp",
}
TARGET_FEATURES = 0.75  # lookahead 2 / plain steps/s
TARGET_SELFPLAY = 2.5  # the selfplay trial settings, now / before


def with_lookahead(ppo: dict[str, Any], plies: int = 2) -> dict[str, Any]:
    """``ppo`` with ``lookahead: plies`` (0: none): the env computes the features, the
    network reads them."""
    policy = {k: v for k, v in ppo["policy_kwargs"].items() if k != "lookahead"}
    return {**ppo, "policy_kwargs": policy | ({"lookahead": plies} if plies else {})}


def as_before(ppo: dict[str, Any], game: GameOptions) -> dict[str, Any]:
    """``ppo``'s lookahead the way it trained before: the 14 counts in the env, and the
    network recomputing the features in every forward pass (what ``materialize`` built)."""
    from env.networks import Lookahead

    policy = dict(ppo["policy_kwargs"])
    plies = policy.pop("lookahead")
    policy["features_extractor_class"] = Lookahead
    policy["features_extractor_kwargs"] = {
        "plies": plies,
        "stones": game.stones,
        "empty_capture": game.empty_capture,
    }
    return {**ppo, "policy_kwargs": policy}


@contextmanager
def former_policy_opponents() -> Iterator[None]:
    """Policy opponents act as they did before: each through ``predict`` (what
    ``env.networks.PolicyActor`` now does faster, with the same actions), a pool's
    members each with its own forward pass (not stacked)."""
    import numpy as np

    from env.league import SnapshotPool
    from env.opponents import PolicyOpponent
    from env.rules import legal_masks

    def act(self, boards, players, rng):
        players = players.astype(np.int64)
        obs = self.observation(boards, players)
        masks = legal_masks(boards, players)
        actions, _ = self.model.predict(obs, action_masks=masks, deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(-1)

    original, stack = PolicyOpponent.act, SnapshotPool._stack
    # setattr: the benchmark swaps methods for the former ones, which mypy does not admit.
    setattr(PolicyOpponent, "act", act)  # noqa: B010
    setattr(SnapshotPool, "_stack", lambda self: None)  # noqa: B010
    try:
        yield
    finally:
        setattr(PolicyOpponent, "act", original)  # noqa: B010
        setattr(SnapshotPool, "_stack", stack)  # noqa: B010


@contextmanager
def full_pools() -> Iterator[None]:
    """Snapshot pools start full: ``pool_size`` snapshots of the new learner.

    Why: a trial's pool fills after ``pool_size x snapshot_every`` steps (450k with
    the pinned settings) and stays full for the rest of a 1M-step trial, and every
    member answers its games with its own forward pass per ply; a 65k-step run
    with a pool of one or two would price a league far cheaper than a trial's.
    """
    from env.league import SnapshotPool

    original = training.attach_learner

    def attach(sources: Any, policy: Any, timestep: int = 0) -> None:
        original(sources, policy, timestep)
        for pool in (s for s in sources if isinstance(s, SnapshotPool)):
            while len(pool.members) < pool.size:
                pool.add(policy, timestep)

    training.attach_learner = attach
    try:
        yield
    finally:
        training.attach_learner = original


def selfplay_settings(
    eval_games: int | None = None,
) -> tuple[dict[str, Any], GameOptions, EvaluationSpec, int]:
    """The selfplay study's trial: ppo kwargs, game options, its evaluation, its n_envs."""
    from tuner.config.loading import load_spec
    from tuner.config.space import to_config

    spec = load_spec("selfplay")
    config = to_config(spec, SELFPLAY_PARAMS)
    evaluation = spec.evaluation
    if eval_games is not None:
        evaluation = evaluation.model_copy(update={"games": eval_games})
    return config.ppo_kwargs, config.game, evaluation, spec.budget.n_envs


def dummy_training_env(game: GameOptions, n_envs: int, seed: int, lookahead: int = 0) -> VecEnv:
    """SB3's ``DummyVecEnv`` over single-game ``KalahaEnv``s, how trials stepped before.

    The same games as ``training.make_training_env`` from the same seed (env ``i`` is
    seeded ``seed + i``); self-play opponents need the batched env.
    """
    if game.is_league:
        raise ValueError("self-play opponents need the batched KalahaVecEnv")
    make = partial(KalahaEnv.from_options, game, lookahead=lookahead)
    return make_vec_env(make, n_envs=n_envs, seed=seed, vec_env_cls=DummyVecEnv)


@contextmanager
def baseline(vec_env: str, checks: bool) -> Iterator[None]:
    """While the block runs, ``train`` steps ``vec_env`` (``batched`` or ``dummy``) envs
    and validates torch's distribution arguments when ``checks``.

    ``train`` has no knob for either, since no trial wants them: this swaps the two
    seams it calls by name for the run.
    """
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
    ppo: dict[str, Any],
    game: GameOptions,
    n_envs: int,
    timesteps: int,
    evaluation: EvaluationSpec,
    device: str,
    *,
    evaluations_per_200k: float = 5.0,
    vec_env: str = "batched",
    checks: bool = False,
    before: bool = False,
) -> dict[str, float]:
    """One training run: steps per CPU second (``benchmarks.phases``: what a free core
    gives; on shared cores the wall clock counts other processes) and per wall
    second, and the CPU shares of collection, update and evaluation.

    ``before``: policy opponents act as before this change (``former_policy_opponents``);
    any league's pool starts full (``full_pools``).
    """
    former = former_policy_opponents() if before else nullcontext()
    with training_phases() as split, former, full_pools(), baseline(vec_env, checks):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = train(
            ppo,
            game,
            total_timesteps=timesteps,
            n_envs=n_envs,
            n_evaluations=max(1, round(evaluations_per_200k * timesteps / 200_000)),
            evaluation=evaluation,
            seed=0,
            device=device,
        )
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
    return {
        "steps_per_s": result.timesteps / cpu,
        "wall_steps_per_s": result.timesteps / wall,
        "collect": split.total("collect") / cpu,
        "update": split.total("update") / cpu,
        "eval": split.total("evaluation") / cpu,
    }


def row(n_envs: int, label: str, r: dict[str, float], base: float) -> None:
    print(
        f"{n_envs:>6}  {label:<34} {r['steps_per_s']:>9,.0f} {r['steps_per_s'] / base:>5.2f}x "
        f"{r['collect']:>7.0%} {r['update']:>7.0%} {r['eval']:>6.0%} "
        f"{r['wall_steps_per_s']:>9,.0f}",
        flush=True,
    )


def header() -> None:
    text = (
        f"{'n_envs':>6}  {'run':<34} {'steps/s':>9} {'ratio':>6} {'collect':>8} {'update':>7} "
        f"{'eval':>6} {'wall s/s':>9}"
    )
    print(text)
    print("-" * len(text))


def env_table(envs: list[int], timesteps: int, evaluation: EvaluationSpec, device: str) -> None:
    """Table 1: DummyVecEnv against KalahaVecEnv, net_arch's former settings."""
    print("\n1. the batched env: net_arch's former settings ([128, 128], 5 epochs)")
    header()
    variants = [
        ("DummyVecEnv+checks", "dummy", True),
        ("KalahaVecEnv+checks", "batched", True),
        ("KalahaVecEnv", "batched", False),
    ]
    for n in envs:
        base = None
        for label, vec_env, checks in variants:
            r = run(PPO, GAME, n, timesteps, evaluation, device, vec_env=vec_env, checks=checks)
            base = base or r["steps_per_s"]
            row(n, label, r, base)


def features_table(
    timesteps: int, evaluation: EvaluationSpec, device: str, n_envs: int, repeat: int
) -> dict[str, float]:
    """Table 2: plain, lookahead 2, and lookahead 2 as before, for both settings.

    The three runs of a setting take turns ``repeat`` times and each row keeps its
    fastest: a burst of other work on a shared machine then slows one try of a row,
    not the row.
    """
    print(
        f"\n2. the lookahead features at {n_envs} envs (ratio: to plain with the same "
        "settings; before: the network recomputes them in every forward pass, as before; "
        f"the best of {repeat})"
    )
    header()
    sp_ppo, sp_game, sp_eval, _ = selfplay_settings(evaluation.games)
    settings = [
        ("[128, 128]", PPO, GAME, evaluation, 5.0),
        ("selfplay", with_lookahead(sp_ppo, 0), sp_game, sp_eval, 0.8),
    ]
    speeds: dict[str, float] = {}
    for name, ppo, game, ev, per_200k in settings:
        runs = {
            "plain": (ppo, False),
            "lookahead 2": (with_lookahead(ppo), False),
            "lookahead 2 before": (as_before(with_lookahead(ppo), game), True),
        }
        best: dict[str, dict[str, float]] = {}
        for _ in range(repeat):
            for label, (kwargs, before) in runs.items():
                r = run(
                    kwargs, game, n_envs, timesteps, ev, device,
                    evaluations_per_200k=per_200k, before=before,
                )  # fmt: skip
                if label not in best or r["steps_per_s"] > best[label]["steps_per_s"]:
                    best[label] = r
        for label, r in best.items():
            speeds[f"{name} {label}"] = r["steps_per_s"]
            row(n_envs, f"{name} {label}", r, best["plain"]["steps_per_s"])
    return speeds


def summary(speeds: dict[str, float]) -> None:
    for name in ("[128, 128]", "selfplay"):
        ratio = speeds[f"{name} lookahead 2"] / speeds[f"{name} plain"]
        print(f"{name}: lookahead 2 at {ratio:.2f}x of plain steps/s (target {TARGET_FEATURES}x)")
    now = speeds["selfplay lookahead 2"] / speeds["selfplay lookahead 2 before"]
    print(f"selfplay trial settings: {now:.2f}x the steps/s of before (target {TARGET_SELFPLAY}x)")


def one_run(timesteps: int, device: str, threads: int, eval_games: int) -> None:
    """A worker of table 3: the selfplay trial settings; prints its steps/s as JSON."""
    torch.set_num_threads(threads)
    ppo, game, evaluation, n_envs = selfplay_settings(eval_games)
    start = time.perf_counter()
    r = run(ppo, game, n_envs, timesteps, evaluation, device, evaluations_per_200k=0.8)
    print(json.dumps({"steps": timesteps, "wall": time.perf_counter() - start, **r}))


def workers(count: int, threads: int, timesteps: int, device: str, eval_games: int) -> float:
    """``count`` worker processes at once, ``threads`` torch threads each: steps/s in all,
    from their start (imports included) to the last one's end."""
    command = [sys.executable, "-m", "benchmarks.training", "--one-run", str(threads)]
    command += ["--timesteps", str(timesteps), "--device", device, "--eval-games", str(eval_games)]
    start = time.perf_counter()
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - start
    if any(p.returncode for p in procs):
        raise SystemExit(f"expected the workers to exit 0, but got {[p.returncode for p in procs]}")
    steps = sum(json.loads(out.strip().splitlines()[-1])["steps"] for out in outs)
    return steps / wall


def threads_table(timesteps: int, device: str, eval_games: int) -> None:
    """Table 3: two workers with one torch thread each against one worker with two."""
    print(f"\n3. torch threads: the selfplay trial settings, {timesteps} steps per worker")
    two = workers(2, 1, timesteps, device, eval_games)
    one = workers(1, 2, timesteps, device, eval_games)
    print(f"2 workers x 1 thread: {two:>9,.0f} steps/s in all")
    print(f"1 worker x 2 threads: {one:>9,.0f} steps/s in all")
    better = "2 workers x 1 thread" if two >= one else "1 worker x 2 threads"
    print(f"better: {better} ({max(two, one) / min(two, one):.2f}x); shipped: 1 thread per worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=65_536, help="per run (default 65536)")
    parser.add_argument("--n-envs", default="8,64", help="table 1, comma-separated (8,64)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto (default cpu)")
    parser.add_argument("--eval-games", type=int, default=200, help="games per opponent")
    parser.add_argument("--features-envs", type=int, default=64, help="table 2's n_envs (64)")
    parser.add_argument(
        "--threads-timesteps", type=int, default=32_768, help="table 3, per worker (32768)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="table 2: tries per row (2)")
    parser.add_argument("--tables", default="1,2,3", help="which tables (default 1,2,3)")
    parser.add_argument("--one-run", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    device = resolve_device(args.device)
    if args.one_run:
        return one_run(args.timesteps, device, args.one_run, args.eval_games)
    torch.set_num_threads(1)
    evaluation = EvaluationSpec(
        opponents=["random", "greedy", "minimax:2"], games=args.eval_games, opening_plies=2
    )
    # Compile (numba: the rules, the opponents, the features) and warm up outside the timing.
    run(with_lookahead(PPO), GAME, 8, 2_048, evaluation, device)
    print(f"whole training, MaskablePPO, {args.timesteps} steps per run, device {device}, 1 thread")
    tables = args.tables.split(",")
    if "1" in tables:
        env_table([int(n) for n in args.n_envs.split(",")], args.timesteps, evaluation, device)
    if "2" in tables:
        summary(features_table(args.timesteps, evaluation, device, args.features_envs, args.repeat))
    if "3" in tables:
        threads_table(args.threads_timesteps, device, args.eval_games)


if __name__ == "__main__":
    main()
