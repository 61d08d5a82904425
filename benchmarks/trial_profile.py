"""Where a selfplay trial's time goes: one trial, end to end, split by what runs.

Runs one trial of ``studies/selfplay.yaml`` through the objective a worker runs
(sampling, training with the league, the rating evaluation, the model artifact and
the user attrs on a SQLite storage), with the parameters ``make bench`` pins
(``benchmarks.training.SELFPLAY_PARAMS``) and one torch thread, and splits its CPU
time (``benchmarks/phases.py``: on shared cores the wall clock counts other work):

- collection: the env (the agent's moves, the features), the policy's forward
  pass, the league's policy opponents, the fixed opponents, the rollout buffer,
  and SB3's loop around them;
- update: forward (``evaluate_actions``), backward, optimizer, gradient clipping,
  the rollout buffer's minibatches, and the loss arithmetic around them;
- evaluation (the rating games), storage (Optuna's storage and the artifact), the rest.

Each function below is timed by a wrapper that counts its own time, less the
time of any timed function it calls, under the innermost phase it runs in; the
shares add up to the whole. ``--cprofile FILE`` also runs it under cProfile (CPU
time too) and prints the functions that take the most time themselves.

    python -m benchmarks.trial_profile --timesteps 250000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.phases import PHASES, Split


def _targets() -> list[tuple[Any, str, str]]:
    """(owner, attribute, label) of everything the split times."""
    import torch
    from optuna.storages import RDBStorage
    from sb3_contrib import MaskablePPO
    from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    import tuner.trial.objective
    from env import networks, opponents
    from env.vec_env import KalahaVecEnv
    from tuner.trial.callbacks import EvaluationCallback

    targets = [
        (MaskablePPO, "collect_rollouts", "collect"),
        (MaskablePPO, "train", "update"),
        (EvaluationCallback, "evaluate_now", "evaluation"),
        (KalahaVecEnv, "step_wait", "env"),
        (KalahaVecEnv, "action_masks", "env"),
        (MaskableActorCriticPolicy, "forward", "policy forward"),
        (MaskableActorCriticPolicy, "evaluate_actions", "forward"),
        (networks.Lookahead, "forward", "lookahead in torch"),
        (opponents.PolicyOpponent, "act", "policy opponents"),
        (MaskableRolloutBuffer, "add", "rollout buffer"),
        (MaskableRolloutBuffer, "get", "rollout buffer"),
        (MaskableRolloutBuffer, "compute_returns_and_advantage", "rollout buffer"),
        (torch.Tensor, "backward", "backward"),
        (torch.optim.Adam, "step", "optimizer"),
        (torch.nn.utils, "clip_grad_norm_", "clip grad norm"),
        (tuner.trial.objective, "upload_artifact", "storage"),
    ]
    for cls in (opponents.GreedyOpponent, opponents.MinimaxOpponent, opponents.RandomOpponent):
        targets.append((cls, "act", "fixed opponents"))
    for name, value in vars(RDBStorage).items():
        if callable(value) and not name.startswith("_"):
            targets.append((RDBStorage, name, "storage"))
    return targets


def run_trial(timesteps: int, workdir: Path) -> tuple[float, float]:
    """One selfplay trial of ``timesteps`` steps (one evaluation, at the end): its wall
    and CPU seconds."""
    import optuna

    from benchmarks.training import SELFPLAY_PARAMS
    from tuner.config.loading import load_spec
    from tuner.trial.objective import objective

    spec = load_spec("selfplay")
    budget = spec.budget.model_copy(update={"total_timesteps": timesteps, "n_evaluations": 1})
    spec = spec.model_copy(update={"budget": budget})
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{workdir / 'profile.db'}", direction="maximize")
    study.enqueue_trial(SELFPLAY_PARAMS)
    start, cpu_start = time.perf_counter(), time.process_time()
    study.optimize(lambda t: objective(t, spec, device="cpu", runs_dir=workdir), n_trials=1)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    trial = study.trials[0]
    if trial.state != optuna.trial.TrialState.COMPLETE:
        raise SystemExit(f"expected the trial to complete, but it ended {trial.state.name}")
    return wall, cpu


def report(split: Split, wall: float, cpu: float, timesteps: int) -> None:
    """The split as a table: phase, part, CPU seconds, share of the trial's CPU time."""
    print(
        f"one selfplay trial: {timesteps} steps in {cpu:.1f} CPU s ({timesteps / cpu:,.0f} "
        f"steps/s), {wall:.1f} s of wall time ({timesteps / wall:,.0f} steps/s)"
    )
    print(f"{'phase':<11} {'part':<24} {'CPU s':>8} {'share':>6}")
    for phase in (*PHASES, "other"):
        rows = sorted(
            ((part, s) for (ph, part), s in split.seconds.items() if ph == phase),
            key=lambda row: -row[1],
        )
        total = sum(s for _, s in rows)
        print(f"{phase:<11} {'(all)':<24} {total:>8.1f} {total / cpu:>6.1%}")
        for part, s in rows:
            print(f"{'':<11} {part:<24} {s:>8.1f} {s / cpu:>6.1%}")
    outside = cpu - sum(split.seconds.values())
    print(f"{'other':<11} {'untimed (build, sampling)':<24} {outside:>8.1f} {outside / cpu:>6.1%}")


def profiled(call: Callable[[], Any], out: str, top: int) -> Any:
    """``call()`` under cProfile (CPU time); the stats go to ``out``, the top ``top`` printed."""
    profile = cProfile.Profile(time.process_time)
    result = profile.runcall(call)
    profile.dump_stats(out)
    pstats.Stats(out).sort_stats("tottime").print_stats(top)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timesteps", type=int, default=250_000, help="default 250000")
    parser.add_argument("--cprofile", metavar="FILE", help="also profile, stats into FILE")
    parser.add_argument("--top", type=int, default=30, help="cProfile rows printed (30)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    split = Split()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        for owner, name, label in _targets():
            split.wrap(owner, name, label, stack)

        def call() -> tuple[float, float]:
            return run_trial(args.timesteps, Path(tmp))

        wall, cpu = profiled(call, args.cprofile, args.top) if args.cprofile else call()
    report(split, wall, cpu, args.timesteps)


if __name__ == "__main__":
    main()
