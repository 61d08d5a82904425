"""Build the envs and the MaskablePPO model from a config, and train with evaluations.

Shared by the objective (one trial) and ``tuner train`` (an exported file), so a
retrained agent is built by the very code that built the trial's agent.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from env.kalaha_env import KalahaEnv
from env.league import LEAGUE_NAMES, SnapshotPool, attach_learner, build_sources, pools
from env.vec_env import KalahaVecEnv
from tuner.base.errors import ConfigError, UserError
from tuner.config.space import lookahead_plies, materialize
from tuner.config.spec import EvaluationSpec
from tuner.storage.rdb import worker_name
from tuner.strength.evaluate import make_evaluator
from tuner.strength.league import SnapshotCallback, league_summary
from tuner.trial.callbacks import (
    Evaluation,
    EvaluationCallback,
    TrialCallback,
    TrialProgress,
    params_finite,
)


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
    progress: TrialProgress
    timesteps: int
    train_seconds: float
    eval_seconds: float
    device: str
    league: dict[str, Any] = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        return self.timesteps / max(self.train_seconds, 1e-9)


VEC_ENVS = ("batched", "dummy")
# env options that configure the league rather than the env itself
LEAGUE_KEYS = ("snapshot_every", "pool_size", "pool_sampling")


def make_training_env(
    env_kwargs: dict[str, Any],
    n_envs: int,
    seed: int,
    vec_env: str = "batched",
    lookahead: int = 0,
) -> VecEnv:
    """The training envs: ``KalahaVecEnv`` (all games in one batch), or, for the
    benchmark's baseline, SB3's ``DummyVecEnv`` over single-game ``KalahaEnv``s.

    Both play the same games from the same seed (env ``i`` is seeded ``seed + i``).
    ``lookahead`` (``space.lookahead_plies`` of the config) has the env compute the
    features the network reads, once per step.
    """
    options = {k: v for k, v in env_kwargs.items() if k not in LEAGUE_KEYS}
    if lookahead:
        options["lookahead"] = lookahead
    seeds, empty_capture = options.get("seeds", 4), options.get("empty_capture", False)
    sources, weights = build_sources(
        options.pop("opponent", ["random"]),
        seeds=seeds,
        empty_capture=empty_capture,
        pool_size=env_kwargs.get("pool_size", 10),
        pool_sampling=env_kwargs.get("pool_sampling", "pfsp"),
    )
    if vec_env == "batched":
        return KalahaVecEnv(n_envs, sources, opponent_weights=weights, seed=seed, **options)
    if vec_env == "dummy":
        if any(getattr(s, "name", None) in LEAGUE_NAMES for s in sources):
            raise ValueError("self-play opponents need vec_env='batched'")
        options |= {"opponent": sources, "opponent_weights": weights}
        return make_vec_env(
            KalahaEnv, n_envs=n_envs, seed=seed, env_kwargs=options, vec_env_cls=DummyVecEnv
        )
    raise ValueError(f"vec_env: expected one of {VEC_ENVS}, but got {vec_env!r}")


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


def _config_env(
    env_kwargs: dict[str, Any], n_envs: int, seed: int, vec_env: str, lookahead: int
) -> VecEnv:
    """The training envs, or a one-line :class:`ConfigError` when the options are bad.

    A bad env option is the study file's fault, not the trial's: the worker
    records a ConfigError without spending the budget.
    """
    try:
        return make_training_env(env_kwargs, n_envs, seed, vec_env, lookahead)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"the env cannot be built from env_kwargs: {_line(err)}") from None


def _finished_run(
    model: MaskablePPO | None,
    progress: TrialProgress,
    elapsed: float,
    device: str,
    league: list[SnapshotPool],
) -> TrainingRun:
    """What a run measured; a model that was never built trained 0 steps on ``device``.

    Evaluation time is split off, so steps per second measure training alone.
    """
    return TrainingRun(
        model=model,
        progress=progress,
        timesteps=int(model.num_timesteps) if model is not None else 0,
        train_seconds=elapsed - progress.eval_seconds,
        eval_seconds=progress.eval_seconds,
        device=str(model.device) if model is not None else device,
        league=league_summary(league),
    )


def train(
    ppo_kwargs: dict[str, Any],
    env_kwargs: dict[str, Any],
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
    vec_env: str = "batched",
    distribution_checks: bool = False,
) -> TrainingRun:
    """Train MaskablePPO with ``n_evaluations`` evaluations spread evenly over the budget.

    ``callbacks`` go to ``learn()`` before the evaluation (SB3's list idiom); the
    :class:`~tuner.trial.callbacks.TrialCallback`s among them (pruning, stop on a signal,
    progress) share the run's :class:`TrialProgress` and hear of each evaluation.
    The envs are closed before this returns, whatever happened; the caller turns a
    pruned, stopped or diverged :class:`TrialProgress` into the trial's state.
    """
    envs = _config_env(env_kwargs, n_envs, seed, vec_env, lookahead_plies(ppo_kwargs))
    sources = envs.sources if isinstance(envs, KalahaVecEnv) else []
    league = pools(sources)
    given = list(callbacks or [])
    evaluator = EvaluationCallback(
        make_evaluator(evaluation, env_kwargs, seed),
        eval_every=max(1, total_timesteps // n_evaluations),
        max_inline=n_evaluations - 1,
        listeners=[c for c in given if isinstance(c, TrialCallback)],
    )
    progress = evaluator.progress
    model = None
    start = time.perf_counter()
    try:
        model = _build_model(ppo_kwargs, env_kwargs, envs, seed, device, tensorboard_log)
        attach_learner(
            envs.get_attr("sources")[0] if envs.has_attr("sources") else [], model.policy
        )
        run_callbacks: list[BaseCallback] = [*given, evaluator]
        if league:
            run_callbacks.append(SnapshotCallback(league, env_kwargs.get("snapshot_every", 50_000)))
        with nullcontext() if distribution_checks else distribution_checks_off():
            model.learn(total_timesteps, callback=run_callbacks, tb_log_name=tb_log_name)
        if not (progress.pruned or progress.diverged or progress.stopped):
            evaluator.evaluate_now(final=True)  # once the budget is spent: never pruned
    except (ValueError, RuntimeError) as err:
        if not _diverged(err, model):
            raise
        progress.diverged = f"training diverged: {str(err).splitlines()[0][:200]}"
    finally:
        envs.close()
    return _finished_run(model, progress, time.perf_counter() - start, device, league)


def _diverged(err: ValueError | RuntimeError, model: MaskablePPO | None) -> bool:
    """Whether an error in ``learn()`` is a diverged update rather than a bug.

    NaN logits: torch's distributions reject them (ValueError) or, unchecked,
    sampling does (RuntimeError).
    """
    nan_message = "nan" in str(err).lower() or "constraint" in str(err)
    return model is None or nan_message or not params_finite(model)


def _build_model(
    ppo_kwargs: dict[str, Any],
    env_kwargs: dict[str, Any],
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
            **materialize(ppo_kwargs, env_kwargs),
        )
    except (TypeError, ValueError, KeyError, AssertionError) as err:
        raise ConfigError(f"MaskablePPO cannot be built from ppo_kwargs: {_line(err)}") from None


__all__ = ["Evaluation", "TrainingRun", "make_evaluator", "resolve_device", "train"]
