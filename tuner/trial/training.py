"""Build the envs and the MaskablePPO model from a config, and train with evaluations.

Shared by the objective (one trial) and ``tuner train`` (an exported file), so a
retrained agent is built by the very code that built the trial's agent.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from env.league import SnapshotPool, attach_learner, pools
from env.options import GameOptions
from env.vec_env import KalahaVecEnv
from tuner.base.errors import ConfigError, UserError
from tuner.config.space import lookahead_plies, materialize
from tuner.config.spec import EvaluationSpec
from tuner.storage.rdb import worker_name
from tuner.strength.evaluate import make_evaluator
from tuner.strength.league import SnapshotCallback, league_summary
from tuner.trial.callbacks import (
    EvaluationCallback,
    RunState,
    TrialCallback,
    params_finite,
)
from tuner.trial.curriculum import CurriculumCallback, curricula, curriculum_summary
from tuner.trial.watchdog import STALL_SECONDS, StallWatchdog, TrainingStalled


def resolve_device(device: str, worker_index: int | None = None) -> str:
    """``auto|cpu|cuda|cuda:N`` -> the torch device this worker trains on.

    ``auto`` is a GPU where torch sees one, else ``cpu``; ``cuda`` insists on a
    GPU. Either picks among the visible GPUs (``CUDA_VISIBLE_DEVICES`` narrows
    them) so that the workers of one node spread over its GPUs: by worker index
    (``--worker-index`` / ``$WORKER_INDEX``: worker i gets GPU i mod n), else by
    a hash of the host name and process id (replicas of ``--scale`` have no
    index). ``cuda:N`` is taken as given once N is known to exist.
    """
    text = device.strip().lower()
    if text == "cpu":
        return "cpu"
    if text not in ("auto", "cuda") and not (text.startswith("cuda:") and text[5:].isdigit()):
        raise UserError(f"--device: expected auto, cpu, cuda or cuda:N, but got {device!r}")
    import torch

    n = torch.cuda.device_count()
    if n == 0:
        if text == "auto":
            return "cpu"
        raise UserError(
            f"--device {device}: torch sees no CUDA GPU (torch {torch.__version__}, "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); "
            "use --device cpu or auto, or run with a GPU (docker: the worker's GPU reservation)"
        )
    if text.startswith("cuda:"):
        index = int(text[5:])
        if index >= n:
            raise UserError(
                f"--device {device}: only {n} GPU(s) visible (cuda:0..cuda:{n - 1}); "
                "pick one of those or use --device auto"
            )
        return f"cuda:{index}"
    if worker_index is None:
        worker_index = zlib.crc32(worker_name().encode())
    return f"cuda:{worker_index % n}"


def _line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300] if text else ''}"


@dataclass
class TrainingRun:
    model: Any
    state: RunState
    timesteps: int
    train_seconds: float
    eval_seconds: float
    device: str
    league: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return self.timesteps / max(self.train_seconds, 1e-9)


def make_training_env(
    game: GameOptions, n_envs: int, seed: int, lookahead: int = 0
) -> KalahaVecEnv:
    """The training envs: ``KalahaVecEnv``, all games stepped in one batch.

    Env ``i`` is seeded ``seed + i``. A league (``self``, ``pool``) is built by the vec
    env from ``game``, and read back through its ``sources``. ``lookahead``
    (``space.lookahead_plies`` of the config) has the env compute the features the
    network reads, once per step. (``benchmarks/training.py`` puts SB3's
    ``DummyVecEnv`` in its place to measure what the batch gains.)
    """
    return KalahaVecEnv(n_envs, game, seed=seed, lookahead=lookahead)


@contextmanager
def distribution_checks_off() -> Iterator[None]:
    """Skip torch.distributions' argument checks while training, then restore them.

    MaskablePPO builds a masked Categorical for every forward pass, and validating
    its arguments each time cost up to a fifth of training at 64 envs (``make bench``
    compares). Masks keep actions legal either way; a diverged update (NaN weights)
    is still caught: by the callback's weight check and by sampling's own error.
    """
    from torch.distributions import Distribution

    before = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(before)


def _config_env(game: GameOptions, n_envs: int, seed: int, lookahead: int) -> VecEnv:
    """The training envs, or a one-line :class:`ConfigError` when the options are bad.

    A bad env option is the study file's fault, not the trial's: the worker
    records a ConfigError without spending the budget.
    """
    try:
        return make_training_env(game, n_envs, seed, lookahead)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"the env cannot be built from the env options: {_line(err)}") from None


def _finished_run(
    model: MaskablePPO | None,
    state: RunState,
    elapsed: float,
    device: str,
    league: list[SnapshotPool],
    start_step: int = 0,
) -> TrainingRun:
    """What a run measured; a model that was never built trained 0 steps on ``device``.

    Evaluation time is split off, so steps per second measure training alone; a run
    that went on from a checkpoint counts only the steps it trained (from ``start_step``).
    """
    return TrainingRun(
        model=model,
        state=state,
        timesteps=int(model.num_timesteps) - start_step if model is not None else 0,
        train_seconds=elapsed - state.eval_seconds,
        eval_seconds=state.eval_seconds,
        device=str(model.device) if model is not None else device,
        league=league_summary(league),
    )


def train(
    ppo_kwargs: dict[str, Any],
    game: GameOptions,
    *,
    total_timesteps: int,
    n_envs: int,
    n_evaluations: int,
    evaluation: EvaluationSpec,
    seed: int,
    device: str = "auto",
    tensorboard_log: Path | None = None,
    tb_log_name: str = "run",
    callbacks: list[BaseCallback] | None = None,
    restore: Callable[[Any, list[SnapshotPool]], None] | None = None,
    eval_seed: int | None = None,
    stall_seconds: float = STALL_SECONDS,
) -> TrainingRun:
    """Train MaskablePPO with ``n_evaluations`` evaluations spread evenly over the budget.

    ``callbacks`` go to ``learn()`` before the evaluation (SB3's list idiom); the
    :class:`~tuner.trial.callbacks.TrialCallback`s among them (pruning, stop on a signal,
    progress) share the run's :class:`RunState` and hear of each evaluation.
    The envs are closed before this returns, whatever happened; the caller turns a
    pruned, stopped or diverged :class:`RunState` into the trial's state.
    ``restore(model, pools)`` (``tuner.pbt``) loads a member's state into the new model
    and its pools; ``eval_seed`` (default ``seed``) seeds the evaluations' openings.
    A run with no env step for ``stall_seconds`` outside its evaluations is stopped as
    stalled (:mod:`tuner.trial.watchdog`).
    """
    envs = _config_env(game, n_envs, seed, lookahead_plies(ppo_kwargs))
    sources = envs.sources if isinstance(envs, KalahaVecEnv) else []
    league = pools(sources)
    given = list(callbacks or [])
    watchdog = StallWatchdog(stall_seconds)
    if curricula(sources):  # each evaluation moves the curriculum's shares
        given.append(CurriculumCallback(curricula(sources)))
    evaluator = EvaluationCallback(
        watchdog.pausing(
            make_evaluator(evaluation, game, seed if eval_seed is None else eval_seed)
        ),
        eval_every=max(1, total_timesteps // n_evaluations),
        max_inline=n_evaluations - 1,
        listeners=[c for c in given if isinstance(c, TrialCallback)],
    )
    state = evaluator.state
    model = None
    start, start_step = time.perf_counter(), 0
    try:
        model = _build_model(ppo_kwargs, game, envs, seed, device, tensorboard_log)
        start_step = _start(model, envs, league, restore)
        run_callbacks: list[BaseCallback] = [watchdog, *given, evaluator]
        if league:
            run_callbacks.append(SnapshotCallback(league, game.snapshot_every))
        with distribution_checks_off(), watchdog:
            model.learn(total_timesteps, run_callbacks, tb_log_name=tb_log_name,
                        reset_num_timesteps=restore is None)  # fmt: skip
        if not (state.pruned or state.diverged or state.stopped or state.stalled):
            evaluator.evaluate_now(final=True)  # once the budget is spent: never pruned
    except (ValueError, RuntimeError) as err:
        if not _diverged(err, model):
            raise
        state.diverged = f"training diverged: {str(err).splitlines()[0][:200]}"
    except TrainingStalled:
        state.stalled = watchdog.reason
    finally:
        envs.close()
    run = _finished_run(model, state, time.perf_counter() - start, device, league, start_step)
    if curricula(sources):
        run.league["curricula"] = curriculum_summary(curricula(sources))
    return run


def _start(
    model: MaskablePPO,
    envs: VecEnv,
    league: list[SnapshotPool],
    restore: Callable[[Any, list[SnapshotPool]], None] | None,
) -> int:
    """Load a member's state when there is one (``tuner.pbt``), give the league sources the
    learner (the pool starts with it unless restored); the timestep training starts at."""
    if restore is not None:
        restore(model, league)
    attach_learner(envs.get_attr("sources")[0] if envs.has_attr("sources") else [], model.policy)
    return int(model.num_timesteps)


def _diverged(err: ValueError | RuntimeError, model: MaskablePPO | None) -> bool:
    """Whether an error in ``learn()`` is a diverged update rather than a bug.

    NaN logits: torch's distributions reject them (ValueError) or, unchecked,
    sampling does (RuntimeError). Before the model exists nothing has trained, so
    nothing can have diverged: an error of the constructor (CUDA out of memory)
    is recorded as what it is.
    """
    if model is None:
        return False
    nan_message = "nan" in str(err).lower() or "constraint" in str(err)
    return nan_message or not params_finite(model)


def _build_model(
    ppo_kwargs: dict[str, Any],
    game: GameOptions,
    envs: VecEnv,
    seed: int,
    device: str,
    tensorboard_log: Path | None,
) -> MaskablePPO:
    """The model of the run.

    A keyword or value MaskablePPO refuses is a :class:`ConfigError`: nothing has
    trained yet, so the configuration is wrong, not the trial unlucky.
    """
    try:
        return MaskablePPO(
            "MlpPolicy",
            envs,
            seed=seed,
            device=device,
            tensorboard_log=str(tensorboard_log) if tensorboard_log else None,
            verbose=0,
            **materialize(ppo_kwargs, game),
        )
    except (TypeError, ValueError, KeyError, AssertionError) as err:
        raise ConfigError(f"MaskablePPO cannot be built from ppo_kwargs: {_line(err)}") from None
