"""The league in a real (tiny) training run, and the study-file forms of the opponent mix."""

from __future__ import annotations

import pytest
import torch

from env.league import SnapshotPool
from env.options import GameOptions
from tuner.base.errors import UserError
from tuner.config.loading import parse_spec
from tuner.config.space import to_config
from tuner.config.spec import EvaluationSpec
from tuner.strength.league import league_summary
from tuner.trial.training import train

BASE = {
    "study_name": "league",
    "n_trials": 1,
    "ppo": {"n_steps": 64, "batch_size": 256, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}},
    "budget": {"total_timesteps": 2048, "n_evaluations": 1, "n_envs": 8},
}


def test_training_refreshes_the_pool_every_snapshot_every_steps():
    """2048 steps, a snapshot every 512: the first plus four more, the newest three kept."""
    run = train(
        BASE["ppo"],
        GameOptions(
            opponents={"pool": 0.7, "self": 0.1, "greedy@0.1": 0.2},
            snapshot_every=512,
            pool_size=3,
            pool_sampling="pfsp",
        ),
        total_timesteps=2048,
        n_envs=8,
        n_evaluations=1,
        evaluation=EvaluationSpec(opponents=["random"], games=10),
        seed=3,
        device="cpu",
    )
    assert run.timesteps == 2048
    assert run.league["snapshots_taken"] == 5
    (pool,) = run.league["pools"]
    assert list(pool["scores"]) == ["pool@1024", "pool@1536", "pool@2048"]


class _Policy(torch.nn.Module):
    """The least a snapshot needs of an SB3 policy: weights and a training mode."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)


def test_the_league_summary_keeps_every_pool():
    """Two pools, two records: the summary once kept only the last pool's."""
    first, second = SnapshotPool(size=2), SnapshotPool(size=1)
    for step in (100, 200, 300):
        first.add(_Policy(), step)
    second.add(_Policy(), 50)
    first.record(first.members[-1], 1)  # the learner beat pool@300 once

    summary = league_summary([first, second])

    assert summary["snapshots_taken"] == 4
    assert summary["pools"] == [
        {"snapshots_taken": 3, "scores": {"pool@200": 0.5, "pool@300": round(2 / 3, 3)}},
        {"snapshots_taken": 1, "scores": {"pool@50": 0.5}},
    ]
    assert league_summary([]) == {}, "no pool, nothing to record"


def test_opponent_mix_and_league_knobs_reach_the_game_options():
    spec = parse_spec(
        BASE
        | {
            "env": {"opponents": {"pool": 0.7, "minimax:2@0.1": 0.2, "random": 0.1}},
            "search_space": {
                "opponents": {
                    "type": "categorical",
                    "choices": {"selfplay": {"pool": 1.0}, "mixed": {"pool": 0.5, "greedy": 0.5}},
                },
                "pool_size": {"type": "int", "low": 2, "high": 8},
                "pool_sampling": {"type": "categorical", "choices": ["uniform", "pfsp"]},
            },
        }
    )
    config = to_config(spec, {"opponents": "mixed", "pool_size": 5, "pool_sampling": "pfsp"})
    game = config.game
    assert game.opponents == {"pool": 0.5, "greedy": 0.5}
    assert (game.pool_size, game.pool_sampling, game.snapshot_every) == (5, "pfsp", 50_000)
    assert config.as_dict()["env_kwargs"]["opponents"] == {"pool": 0.5, "greedy": 0.5}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"opponents": {"pool": -1.0}}, "finite share >= 0"),
        ({"opponents": {"pool": 0.0}}, "positive sum"),
        ({"opponents": {"greedy@2": 1.0}}, "@EPS"),
        ({"opponents": {"pool": "lots"}}, "expected a share"),
        ({"pool_sampling": "newest"}, "pool_sampling"),
        ({"pool_size": 0}, "pool_size"),
    ],
)
def test_bad_league_settings_are_one_clear_line(env, expected):
    with pytest.raises(UserError, match=expected) as err:
        parse_spec(BASE | {"env": env}, "league.yaml")
    assert "\n" not in str(err.value)


def test_a_spec_recorded_before_value_from_is_read_in_the_new_form():
    """A study created when `objective: final|best` meant value_from still exports."""
    from tuner.config.loading import upgrade_stored_spec

    old = BASE | {"evaluation": {"opponents": ["random"], "games": 10, "objective": "best"}}
    spec = parse_spec(upgrade_stored_spec(old), "stored")
    assert (spec.evaluation.objective, spec.evaluation.value_from) == ("score", "best")
    with pytest.raises(UserError, match="value_from"):
        parse_spec(old, "a study file")  # a file with the old key is still the author's to fix
