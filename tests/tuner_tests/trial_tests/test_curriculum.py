"""The curriculum in a real training run (tuner/trial/curriculum.py): an evaluation's
results change the opponent shares of the running vec env, and the trial records them."""

from __future__ import annotations

from typing import Any

import pytest

from env.curriculum import Curriculum
from env.options import GameOptions
from tuner.base.errors import UserError
from tuner.config.loading import parse_spec
from tuner.config.spec import EvaluationSpec
from tuner.trial.callbacks import TrialCallback
from tuner.trial.training import train

TINY_PPO = {"n_steps": 16, "batch_size": 32, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}}


class ShareProbe(TrialCallback):
    """Reads the running env's curriculum shares at every step."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, dict[str, float]]] = []

    def _on_step(self) -> bool:
        sources = self.training_env.get_attr("sources")[0]
        (cur,) = [s for s in sources if isinstance(s, Curriculum)]
        self.seen.append((self.num_timesteps, cur.shares()))
        return True


def test_an_evaluation_moves_the_running_envs_opponent_shares(one_torch_thread):
    """64 steps, an evaluation at 32 against greedy and minimax:1: the shares the env draws
    from before it differ from those after it, as the evaluation's scores say."""
    probe = ShareProbe()
    run = train(
        TINY_PPO,
        GameOptions(opponents={"pool": 0.5, "curriculum:2": 0.5}),
        total_timesteps=64,
        n_envs=2,
        n_evaluations=2,
        evaluation=EvaluationSpec(opponents=["greedy", "minimax:1"], games=4, opening_plies=0),
        seed=0,
        device="cpu",
        callbacks=[probe],
    )
    before = [s for t, s in probe.seen if t <= 32]
    after = [s for t, s in probe.seen if t > 32]
    assert before and after
    assert all(s == before[0] for s in before), "the shares hold until an evaluation"
    assert after[0] != before[0], "the evaluation at 32 steps moved them"
    (record,) = run.league["curricula"]
    history = record["history"]
    assert record["name"] == "curriculum:2"
    assert [h["timestep"] for h in history] == [0, 32], "the start and the one inline evaluation"
    assert history[0]["shares"] == before[0] and history[1]["shares"] == after[0]
    assert run.league["snapshots_taken"] >= 1, "the pool beside it works as before"


def _study(tiny_spec: Any, opponents: Any) -> dict[str, Any]:
    data = tiny_spec()
    data["env"] = {"opponents": opponents}
    return data


def test_a_study_fixes_or_searches_a_curriculum(tiny_spec):
    parse_spec(_study(tiny_spec, {"pool": 0.6, "curriculum:4@0.05": 0.4}), "study.yaml")
    searched = tiny_spec()
    searched["search_space"]["opponents"] = {
        "type": "categorical",
        "choices": {"fixed": {"pool": 0.8, "self": 0.2}, "curriculum": {"curriculum": 1.0}},
    }
    parse_spec(searched, "study.yaml")
    with pytest.raises(UserError, match=r"env.opponents.*a curriculum is one of"):
        parse_spec(_study(tiny_spec, {"curriculum:9": 1.0}), "study.yaml")
