"""The league in a real (tiny) training run, and the study-file forms of the opponent mix."""

from __future__ import annotations

import pytest

from tuner.base.errors import UserError
from tuner.config.space import to_config
from tuner.config.spec import EvaluationSpec, parse_spec
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
        {
            "opponent": {"pool": 0.7, "self": 0.1, "greedy@0.1": 0.2},
            "snapshot_every": 512,
            "pool_size": 3,
            "pool_sampling": "pfsp",
        },
        total_timesteps=2048,
        n_envs=8,
        n_evaluations=1,
        evaluation=EvaluationSpec(opponents=["random"], games=10),
        seed=3,
        device="cpu",
    )
    assert run.timesteps == 2048
    assert run.league["snapshots_taken"] == 5
    assert list(run.league["pool"]) == ["pool@1024", "pool@1536", "pool@2048"]


def test_opponent_mix_and_league_knobs_reach_the_env_kwargs():
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
    env = config.env_kwargs
    assert env["opponent"] == {"pool": 0.5, "greedy": 0.5}
    assert (env["pool_size"], env["pool_sampling"], env["snapshot_every"]) == (5, "pfsp", 50_000)


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
    from tuner.config.spec import upgrade_stored_spec

    old = BASE | {"evaluation": {"opponents": ["random"], "games": 10, "objective": "best"}}
    spec = parse_spec(upgrade_stored_spec(old), "stored")
    assert (spec.evaluation.objective, spec.evaluation.value_from) == ("score", "best")
    with pytest.raises(UserError, match="value_from"):
        parse_spec(old, "a study file")  # a file with the old key is still the author's to fix
