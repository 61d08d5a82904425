"""Replaying a schedule (tuner.pbt.replay): the settings change at the recorded steps.

A hand-made schedule is trained segment by segment; a callback watches the optimizer's
learning rate, and Adam's step count shows that its state went on across the change.
The replay of a real population's export is in test_units.py.
"""

from __future__ import annotations

import pytest
from stable_baselines3.common.callbacks import BaseCallback

from env.options import GameOptions
from tuner.config.spec import BudgetSpec, EvaluationSpec
from tuner.pbt.replay import PbtExport, replay
from tuner.trial import training

INTERVAL = 512
BUDGET = BudgetSpec(total_timesteps=2 * INTERVAL, n_envs=4)  # rollouts of 64 x 4 = 256 steps


class LearningRates(BaseCallback):
    """(timestep, the optimizer's learning rate) at each rollout start and at the end:
    the rate the update that ended at that timestep used."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, float]] = []

    def _record(self) -> None:
        self.seen.append((self.num_timesteps, self.model.policy.optimizer.param_groups[0]["lr"]))

    def _on_rollout_start(self) -> None:
        self._record()

    def _on_training_end(self) -> None:
        self._record()

    def _on_step(self) -> bool:
        return True


def test_a_replayed_schedule_changes_the_learning_rate_at_the_recorded_steps(
    runs, one_torch_thread
):
    pbt = PbtExport(
        population=2,
        interval=INTERVAL,
        schedule=[
            {"timestep": 0, "seed": 1, "values": {"learning_rate": 1.0e-3}},
            {"timestep": INTERVAL, "seed": 2, "values": {"learning_rate": 1.0e-5}},
        ],
    )
    watch = LearningRates()
    run = replay(
        pbt,
        {"n_steps": 64, "batch_size": 128, "n_epochs": 2, "policy_kwargs": {"net_arch": [16]}},
        GameOptions(opponents=("random",)),
        budget=BUDGET,
        evaluation=EvaluationSpec(opponents=["random"], games=4, opening_plies=2),
        study="replay",
        device="cpu",
        runs_dir=runs,
        callbacks=[watch],
    )
    updates = [(t, lr) for t, lr in watch.seen if t > 0]
    assert {t for t, _ in updates} == {256, 512, 768, 1024}, watch.seen
    for t, lr in updates:
        assert lr == pytest.approx(1.0e-3 if t <= INTERVAL else 1.0e-5), (t, lr)
    # Adam's state went on across the change: 4 updates x 2 epochs x 2 minibatches
    optimizer = run.model.policy.optimizer
    assert int(next(iter(optimizer.state.values()))["step"]) == 16
    assert run.timesteps == 2 * INTERVAL and len(run.state.evaluations) == 2


def test_replay_with_a_fresh_seed_gives_each_segment_its_own(runs, one_torch_thread, monkeypatch):
    seeds: list[int] = []
    real_train = training.train

    def spy(*args, **kwargs):
        seeds.append(kwargs["seed"])
        return real_train(*args, **kwargs)

    import tuner.pbt.replay as replay_module

    monkeypatch.setattr(replay_module, "train", spy)
    pbt = PbtExport(
        population=2,
        interval=256,
        schedule=[
            {"timestep": 0, "seed": 5, "values": {}},
            {"timestep": 256, "seed": 9, "values": {}},
        ],
    )
    kwargs = dict(
        budget=BUDGET.model_copy(update={"total_timesteps": 512}),
        evaluation=EvaluationSpec(opponents=["random"], games=2, opening_plies=2),
        study="replay",
        device="cpu",
        runs_dir=runs,
    )
    ppo = {"n_steps": 64, "batch_size": 128, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}
    replay(pbt, ppo, GameOptions(opponents=("random",)), **kwargs)
    replay(pbt, ppo, GameOptions(opponents=("random",)), seed=100, **kwargs)
    assert seeds == [5, 9, 100, 1100]
