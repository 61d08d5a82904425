"""Spec + trial -> sampled values -> MaskablePPO keyword arguments: one pure conversion
(``to_config``) that the objective records and the export writes, and ``materialize``,
the one place names become torch classes and schedules."""

from __future__ import annotations

import optuna

from env.policy_files import ACTIVATIONS
from tuner.config.loading import parse_spec
from tuner.config.space import materialize, sample, to_config


def test_every_accepted_activation_name_builds_a_torch_activation():
    import torch.nn as nn

    for name in ACTIVATIONS:
        built = materialize({"policy_kwargs": {"activation_fn": name}})
        activation = built["policy_kwargs"]["activation_fn"]
        assert issubclass(activation, nn.Module) and activation.__name__.lower().replace(
            "_", ""
        ) == name.replace("_", ""), (name, activation)


def test_a_fixed_policy_setting_lands_in_policy_kwargs_as_a_searched_one_does(tiny_spec):
    spec = parse_spec(
        tiny_spec(ppo={"n_steps": 16, "lookahead": 2, "net_arch": [8]}, search_space={})
    )
    config = to_config(spec, {})
    assert "lookahead" not in config.ppo_kwargs and "net_arch" not in config.ppo_kwargs
    assert config.ppo_kwargs["policy_kwargs"] == {"lookahead": 2, "net_arch": [8]}


def test_conversion_is_pure_and_resolves_named_choices(tiny_spec):
    spec = parse_spec(
        tiny_spec(
            ppo={"n_steps": 16, "policy_kwargs": {"activation_fn": "relu"}},
            search_space={
                "net_arch": {"type": "categorical", "choices": {"split": {"pi": [8], "vf": [32]}}},
                "batch_size": {"type": "categorical", "choices": [32, 512]},
                "store_diff_coef": {"type": "float", "low": 0.0, "high": 1.0},
                "target_kl": {
                    "type": "float",
                    "low": 0.01,
                    "high": 0.1,
                    "condition": {"batch_size": 512},
                },
            },
        )
    )
    values = {"net_arch": "split", "batch_size": 512, "store_diff_coef": 0.5, "target_kl": 0.02}
    first = to_config(spec, values)
    assert first == to_config(spec, dict(values)), "same input, same output"
    assert values["net_arch"] == "split", "the input is not modified"
    assert first.ppo_kwargs["policy_kwargs"] == {
        "activation_fn": "relu",
        "net_arch": {"pi": [8], "vf": [32]},
    }
    assert first.game.store_diff_coef == 0.5
    assert first.ppo_kwargs["batch_size"] == 64, "cut to n_steps * n_envs = 16 * 4"
    assert "batch_size" in first.adjustments
    assert "target_kl" in first.ppo_kwargs
    # the condition: target_kl is only sampled when batch_size is 512
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        sampled = sample(spec, trial)
        seen.add(("target_kl" in sampled) == (sampled["batch_size"] == 512))
        study.tell(trial, 0.0)
    assert seen == {True}


def test_sampling_stays_in_each_range_on_its_grid_and_names_named_choices(tiny_spec):
    ppo = {"batch_size": 8}  # without smoke's fixed n_steps: it is searched here
    spec = parse_spec(
        tiny_spec(
            ppo=ppo,
            search_space={
                "learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True},
                "gamma": {"type": "float", "low": 0.9, "high": 0.99, "step": 0.01},
                "n_steps": {"type": "int", "low": 2, "high": 20, "step": 3},
                "net_arch": {"type": "categorical", "choices": {"a": [8], "b": [16, 16]}},
            },
        )
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        values = sample(spec, trial)
        assert list(values) == list(spec.search_space), "every parameter, in file order"
        assert 1.0e-5 <= values["learning_rate"] <= 1.0e-2
        assert round((values["gamma"] - 0.9) / 0.01, 6).is_integer()
        assert values["n_steps"] in range(2, 21, 3)
        assert values["net_arch"] in ("a", "b"), "Optuna stores the name, not the value"
        assert trial.params == values
        study.tell(trial, 0.0)


def test_a_linear_schedule_decays_to_zero_and_survives_pickling():
    """SB3 calls the learning rate with the progress remaining (1 -> 0); a saved model
    pickles it, so it cannot be a closure."""
    import pickle

    built = materialize({"learning_rate": 2.0e-3, "lr_schedule": "linear"})
    assert "lr_schedule" not in built, "not a MaskablePPO argument"
    schedule = pickle.loads(pickle.dumps(built["learning_rate"]))
    assert [schedule(p) for p in (1.0, 0.5, 0.0)] == [2.0e-3, 1.0e-3, 0.0]
    constant = materialize({"learning_rate": 2.0e-3, "lr_schedule": "constant"})
    assert constant == {"learning_rate": 2.0e-3}


def test_a_shared_trunk_becomes_a_shared_features_extractor():
    from env.networks import SharedTrunk

    built = materialize({"policy_kwargs": {"shared_trunk": [32], "net_arch": [16]}})
    policy = built["policy_kwargs"]
    assert policy["features_extractor_class"] is SharedTrunk
    assert policy["features_extractor_kwargs"] == {"hidden": [32]}
    assert policy["share_features_extractor"] is True and policy["net_arch"] == [16]
    assert "shared_trunk" not in policy, "not a policy argument"


def test_what_the_trial_records_is_plain_data(tiny_spec):
    """The config goes into the database and the export as YAML: no classes, no tuples."""
    import yaml

    spec = parse_spec(
        tiny_spec(
            search_space={
                "activation_fn": {"type": "categorical", "choices": ["relu", "tanh"]},
                "lr_schedule": {"type": "categorical", "choices": ["linear"]},
            }
        )
    )
    config = to_config(spec, {"activation_fn": "relu", "lr_schedule": "linear"})
    assert config.ppo_kwargs["policy_kwargs"]["activation_fn"] == "relu"
    assert config.ppo_kwargs["lr_schedule"] == "linear"
    record = config.as_dict()
    assert set(record) == {"ppo_kwargs", "env_kwargs"}
    assert yaml.safe_load(yaml.safe_dump(record)) == record


def test_a_searched_env_value_the_game_refuses_is_a_configuration_error(tiny_spec):
    """The env section becomes the game's options in one place (to_config): a searched
    value the game cannot play (a range past the bounds is refused when the file is
    read: tests/tuner_tests/config_tests/test_bounds.py; here a value from elsewhere,
    e.g. an enqueued trial) is the configuration's fault, recorded as such."""
    import pytest

    from tuner.base.errors import ConfigError

    spec = parse_spec(tiny_spec(search_space={"stones": {"type": "int", "low": 3, "high": 6}}), "t")
    assert to_config(spec, {"stones": 12}).game.stones == 12
    with pytest.raises(ConfigError, match=r"stones: expected an integer in 1\.\.12, but got 13"):
        to_config(spec, {"stones": 13})
