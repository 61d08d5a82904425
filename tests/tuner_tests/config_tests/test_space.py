"""Spec + trial -> sampled values -> MaskablePPO keyword arguments: one pure conversion
(``to_config``) that the objective records and the export writes, and ``materialize``,
the one place names become torch classes and schedules."""

from __future__ import annotations

import optuna

from tuner.config.space import materialize, sample, to_config
from tuner.config.spec import ACTIVATIONS, parse_spec


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
    assert first.env_kwargs["store_diff_coef"] == 0.5
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
