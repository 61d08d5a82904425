"""One trial: sample, build, learn with evaluations, record what was found.

A trial records as user attrs the real values its model was built with, the
score per opponent (with intervals over opening pairs and distinct-opening counts),
the rating with its interval when the study's objective is the rating, the
perfect-play numbers (optimal share, regret, blunders) where recorded, timesteps,
env-steps per second, time split between training and evaluation, and the
device; its final model becomes an Optuna artifact. A trial that diverges or is
stopped raises :class:`TrialFailed` with the reason, which the worker records.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.artifacts import upload_artifact
from optuna_dashboard import save_note
from stable_baselines3.common.callbacks import BaseCallback

from env.options import GameOptions
from env.policy_files import save_model
from tuner.base.runs import artifact_store, artifacts_dir, tensorboard_dir
from tuner.base.settings import DEFAULT_RUNS
from tuner.config.space import ModelConfig, sample, to_config
from tuner.config.spec import ENV_KEYS, POLICY_KEYS, StudySpec
from tuner.storage.record import TrialAttr
from tuner.trial.callbacks import PruningCallback, StopOnSignalCallback
from tuner.trial.note import trial_note
from tuner.trial.progress import ProgressCallback, TrialHooks
from tuner.trial.training import TrainingRun, train


class TrialFailed(Exception):
    """The trial cannot give a value (diverged, stopped); the message is the reason."""


def real_values(spec: StudySpec, config_ppo: dict[str, Any], game: GameOptions) -> dict[str, Any]:
    """Each searched parameter's value as the model got it (named choices resolved)."""
    policy = config_ppo.get("policy_kwargs", {})
    config_env = game.as_dict()
    out: dict[str, Any] = {}
    for name in spec.search_space:
        source = policy if name in POLICY_KEYS else config_env if name in ENV_KEYS else config_ppo
        if name in source:
            out[name] = source[name]
    return out


# Run i of a trial with ``budget.runs`` runs is seeded with its seed + SEED_RUN_STRIDE * i:
# run 0 is the single-run trial's run (the export retrains it), the others never meet a
# study trial's seed (spec.seed + number) or a verify job's (tuner.commands.verify), and
# stay below 2**32 (numpy's limit) for the 32 runs a spec allows.
SEED_RUN_STRIDE = 100_000_000


def objective(
    trial: optuna.Trial,
    spec: StudySpec,
    *,
    device: str = "auto",
    runs_dir: Path = DEFAULT_RUNS,
    should_stop: Callable[[], str | None] | None = None,
    progress: TrialHooks | None = None,
    seed: int | None = None,
) -> float:
    """Train the trial's configuration; its value is the study's objective.

    ``seed`` defaults to ``spec.seed + trial.number``; verify jobs (``tuner.commands.verify``)
    pass the fresh seed they were queued with. With ``budget.runs: S`` the
    configuration trains S times (each run with its own seed) and the value is the
    mean; each run's value is reported with its run index as the step, which is what Optuna's
    ``WilcoxonPruner`` pairs across trials (one report per instance).
    ``should_stop`` (the worker's signal flag) and ``progress`` (its progress
    display) become SB3 callbacks of each run (:func:`run_callbacks`); TensorBoard
    logs and the model artifact go below ``runs_dir``.
    """
    config = sample_config(trial, spec)
    base_seed = spec.seed + trial.number if seed is None else seed
    n_runs = spec.budget.runs

    runs: list[TrainingRun] = []
    run_values: list[float] = []
    for index in range(n_runs):
        run = train(
            config.ppo_kwargs,
            config.game,
            total_timesteps=spec.budget.total_timesteps,
            n_envs=spec.budget.n_envs,
            n_evaluations=spec.budget.n_evaluations,
            evaluation=spec.evaluation,
            seed=base_seed + SEED_RUN_STRIDE * index,
            device=device,
            tensorboard_log=tensorboard_dir(runs_dir, spec.study_name),
            tb_log_name=f"trial_{trial.number:04d}" + (f"_run{index}" if n_runs > 1 else ""),
            # One run: the evaluations go to the pruner (step = timestep). Several: the
            # runs' values do (step = run index), in _report_run.
            callbacks=run_callbacks(
                trial if n_runs == 1 else None,
                should_stop,
                progress,
                offset=index * spec.budget.total_timesteps,
            ),
        )
        runs.append(run)
        if index == 0:
            record_run(trial, run)
            save_note(trial, trial_note(trial.number, spec, run))
        run_values.append(run_value(spec, run))
        if n_runs == 1:
            break
        _report_run(trial, runs, run_values, n_runs)

    upload_model(trial, spec, runs[0], runs_dir)
    # Rounded as each evaluation is: an Elo to 0.1, a score to 4 places.
    return round(_mean(run_values), 1 if spec.evaluation.objective == "rating" else 4)


def sample_config(trial: optuna.Trial, spec: StudySpec) -> ModelConfig:
    """Sample the trial's configuration and record it before anything trains.

    Recorded first so that a trial that fails or is stopped still shows what it
    ran with: the real values, the whole config and any adjustments made to it.
    """
    config = to_config(spec, sample(spec, trial))
    trial.set_user_attr(TrialAttr.REAL_PARAMS, real_values(spec, config.ppo_kwargs, config.game))
    trial.set_user_attr(TrialAttr.CONFIG, config.as_dict())
    if config.adjustments:
        trial.set_user_attr(TrialAttr.ADJUSTMENTS, config.adjustments)
    return config


def run_callbacks(
    trial: optuna.Trial | None,
    should_stop: Callable[[], str | None] | None,
    progress: TrialHooks | None,
    offset: int = 0,
) -> list[BaseCallback]:
    """The SB3 callbacks of one training run, in the order each step runs them.

    Progress first (the bar counts every step), then the stop flag (a stopped run
    skips the evaluation of its last step), then pruning, which acts on evaluations.
    """
    callbacks: list[BaseCallback] = []
    if progress is not None:
        callbacks.append(ProgressCallback(progress, offset))
    if should_stop is not None:
        callbacks.append(StopOnSignalCallback(should_stop))
    if trial is not None:
        callbacks.append(PruningCallback(trial))
    return callbacks


def _report_run(
    trial: optuna.Trial, runs: list[TrainingRun], run_values: list[float], n_runs: int
) -> None:
    """Report the latest run's value (step = run index); raise TrialPruned if pruned."""
    index = len(run_values) - 1
    trial.set_user_attr(TrialAttr.RUN_VALUES, run_values)
    trial.set_user_attr(TrialAttr.TIMESTEPS, sum(r.timesteps for r in runs))
    trial.report(run_values[-1], index)
    if index < n_runs - 1 and trial.should_prune():
        raise optuna.TrialPruned(
            f"pruned after run {index + 1} of {n_runs}: mean {_mean(run_values):.3f}, "
            "its runs significantly worse than the best trial's"
        )


def upload_model(trial: optuna.Trial, spec: StudySpec, run: TrainingRun, runs_dir: Path) -> None:
    """Run 0's model (the one `tuner train` retrains from an export) as an artifact."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{spec.study_name}_trial_{trial.number:04d}.zip"
        save_model(run.model, path)
        artifact_id = upload_artifact(
            artifact_store=artifact_store(artifacts_dir(runs_dir)),
            file_path=str(path),
            study_or_trial=trial,
        )
    trial.set_user_attr(TrialAttr.MODEL_ARTIFACT_ID, artifact_id)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def record_run(trial: optuna.Trial, run: TrainingRun) -> None:
    """What one training run measured, as the trial's user attrs."""
    state = run.state
    trial.set_user_attr(TrialAttr.TIMESTEPS, run.timesteps)
    trial.set_user_attr(TrialAttr.DEVICE, run.device)
    trial.set_user_attr(TrialAttr.STEPS_PER_SECOND, round(run.steps_per_second, 1))
    trial.set_user_attr(TrialAttr.TRAIN_SECONDS, round(run.train_seconds, 3))
    trial.set_user_attr(TrialAttr.EVAL_SECONDS, round(run.eval_seconds, 3))
    if run.league:
        trial.set_user_attr(TrialAttr.LEAGUE, run.league)
    trial.set_user_attr(TrialAttr.EVALUATIONS, [e.as_dict() for e in state.evaluations])
    if state.evaluations:
        last_ev = state.evaluations[-1]
        if last_ev.results:  # none under objective: perfect (no games)
            trial.set_user_attr(
                TrialAttr.SCORES, {k: round(r.score, 4) for k, r in last_ev.results.items()}
            )
            trial.set_user_attr(
                TrialAttr.EVAL_RESULTS, {k: r.as_dict() for k, r in last_ev.results.items()}
            )
        if last_ev.rating is not None:
            trial.set_user_attr(TrialAttr.RATING, last_ev.rating.as_dict())
        if last_ev.perfect is not None:
            trial.set_user_attr(TrialAttr.PERFECT, last_ev.perfect.as_dict())


def run_value(spec: StudySpec, run: TrainingRun) -> float:
    """A finished run's value by the study's rule; raise how it ended otherwise."""
    state = run.state
    if state.stopped:
        raise TrialFailed(f"worker stopped: {state.stopped}")
    if state.diverged:
        raise TrialFailed(state.diverged)
    if state.stalled:  # not re-queued: the next worker would hang on it too
        raise TrialFailed(state.stalled)
    if state.pruned:
        last_ev = state.evaluations[-1]
        raise optuna.TrialPruned(f"pruned at timestep {last_ev.timestep} with {last_ev.describe()}")
    if not state.evaluations:
        raise TrialFailed("training ended before any evaluation")
    values = [e.value for e in state.evaluations]
    if spec.evaluation.value_from == "best":
        return max(values) if spec.direction == "maximize" else min(values)
    return values[-1]
