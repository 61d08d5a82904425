"""Progress, stop-on-signal and pruning are SB3 callbacks in the list ``train`` passes
to ``learn()``; the objective builds the list (``run_callbacks``)."""

from __future__ import annotations

from tuner.config.spec import EvaluationSpec
from tuner.trial.callbacks import Evaluation, PruningCallback, StopOnSignalCallback
from tuner.trial.objective import run_callbacks
from tuner.trial.progress import ProgressCallback, TrialHooks
from tuner.trial.training import train

PPO = {"n_steps": 32, "batch_size": 256, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}


class Recorder(TrialHooks):
    def __init__(self) -> None:
        self.steps: list[int] = []
        self.evaluations: list[Evaluation] = []

    def on_step(self, timesteps: int) -> None:
        self.steps.append(timesteps)

    def on_evaluation(self, ev: Evaluation) -> None:
        self.evaluations.append(ev)


def tiny_train(callbacks, total_timesteps=512, n_evaluations=2):
    return train(
        PPO,
        {"opponent": ["random"]},
        total_timesteps=total_timesteps,
        n_envs=8,
        n_evaluations=n_evaluations,
        evaluation=EvaluationSpec(opponents=["random"], games=4),
        seed=0,
        device="cpu",
        callbacks=callbacks,
    )


def test_the_list_runs_progress_then_the_stop_flag_then_pruning():
    stop = lambda: None  # noqa: E731
    kinds = [type(c) for c in run_callbacks(object(), stop, TrialHooks(), offset=5)]
    assert kinds == [ProgressCallback, StopOnSignalCallback, PruningCallback]
    assert run_callbacks(None, None, None) == []


def test_progress_sees_every_step_with_its_offset_and_every_evaluation(one_torch_thread):
    hooks = Recorder()
    run = tiny_train([ProgressCallback(hooks, offset=1000)])
    assert hooks.steps[0] == 1008 and hooks.steps[-1] == 1000 + run.timesteps
    assert hooks.evaluations == run.progress.evaluations, "the final evaluation included"
    assert len(hooks.evaluations) == 2


def test_a_stop_ends_training_at_that_step_without_an_evaluation(one_torch_thread):
    hooks = Recorder()
    asked = iter([None, None, "SIGTERM received"])
    run = tiny_train(
        [ProgressCallback(hooks), StopOnSignalCallback(lambda: next(asked, "SIGTERM received"))],
        total_timesteps=4096,
        n_evaluations=1,
    )
    assert run.progress.stopped == "SIGTERM received"
    assert run.progress.evaluations == [], "no final evaluation of a stopped run"
    assert hooks.steps[-1] == 24 and run.timesteps == 24, "the third step was the last"


class FakeTrial:
    """An Optuna trial's report/should_prune, pruning at the first report."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return True


def test_pruning_reports_at_the_timestep_and_stops_learn(one_torch_thread):
    trial = FakeTrial()
    run = tiny_train([PruningCallback(trial)], total_timesteps=1024, n_evaluations=4)
    assert run.progress.pruned
    (ev,) = run.progress.evaluations
    assert trial.reports == [(ev.value, ev.timestep)] and ev.timestep == 256
    assert run.timesteps == 256, "learn() stopped at the pruned evaluation"
