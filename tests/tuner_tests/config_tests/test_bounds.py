"""The bounds of every setting (tuner/config/bounds.py): one table, applied alike to a fixed
value, to both ends of a searched range and to each searched choice, and the batch
checked against every rollout a search can draw.

Hardening (issue 25): each study below passed ``create`` and then hung a worker
(``batch_size: 0``), failed every trial it ran (``batch_size: 1``, a searched
``pool_size`` of 500), or trained a whole trial before failing (10**9 evaluation games).
"""

from __future__ import annotations

import random

import pytest
from support import write_study

from tuner.cli import main
from tuner.config.bounds import check_batch_fits, check_value
from tuner.config.loading import load_spec

# (what the study file says, the key the line names, what it says was expected)
OUT_OF_BOUNDS = [
    # fixed PPO settings
    ({"ppo": {"n_steps": 64, "batch_size": 0}}, "ppo.batch_size", "an integer >= 2"),
    ({"ppo": {"n_steps": 64, "batch_size": 1}}, "ppo.batch_size", "an integer >= 2"),
    ({"ppo": {"n_steps": 64, "batch_size": 257}}, "ppo.batch_size", "at most n_steps"),
    ({"ppo": {"n_steps": 33, "batch_size": 131}}, "ppo.batch_size", "no minibatch of one"),
    ({"ppo": {"n_steps": 64, "n_epochs": 0}}, "ppo.n_epochs", "an integer in [1, 1000]"),
    ({"ppo": {"n_steps": 0}}, "ppo.n_steps", "an integer in [1, 65536]"),
    ({"ppo": {"n_steps": 64, "clip_range": -0.2}}, "ppo.clip_range", "> 0"),
    ({"ppo": {"n_steps": 64, "gae_lambda": 1.2}}, "ppo.gae_lambda", "in [0, 1]"),
    ({"ppo": {"n_steps": 64, "max_grad_norm": 0.0}}, "ppo.max_grad_norm", "> 0"),
    ({"ppo": {"n_steps": 64, "vf_coef": "lots"}}, "ppo.vf_coef", "a finite number >= 0"),
    ({"ppo": {"n_steps": 64, "target_kl": 0.0}}, "ppo.target_kl", "> 0 or null"),
    ({"ppo": {"n_steps": 64, "ortho_init": "yes"}}, "ppo.ortho_init", "true or false"),
    (
        {"ppo": {"n_steps": 64, "policy_kwargs": {"lookahead": 3}}},
        "ppo.policy_kwargs.lookahead",
        "an integer in [0, 2]",
    ),
    # searched PPO settings: both ends, every choice, the right type
    (
        {"search_space": {"learning_rate": {"type": "float", "low": -1.0, "high": 0.1}}},
        "search_space.learning_rate",
        "> 0",
    ),
    (
        {"search_space": {"gamma": {"type": "float", "low": 0.9, "high": 1.01}}},
        "search_space.gamma",
        "in [0, 1]",
    ),
    (
        {"search_space": {"n_epochs": {"type": "categorical", "choices": [4, 0]}}},
        "search_space.n_epochs",
        "but got 0",
    ),
    (
        {"search_space": {"n_epochs": {"type": "float", "low": 1.0, "high": 9.0}}},
        "search_space.n_epochs",
        "an int or categorical parameter",
    ),
    (
        {"search_space": {"net_arch": {"type": "categorical", "choices": {"a": [8], "b": [0]}}}},
        "search_space.net_arch",
        "a list of at most 32 integers",
    ),
    (
        {
            "search_space": {
                "net_arch": {"type": "categorical", "choices": {"a": {"pi": [8], "q": [8]}}}
            }
        },
        "search_space.net_arch",
        "{pi: [...], vf: [...]}",
    ),
    (
        {"search_space": {"batch_size": {"type": "int", "low": 2, "high": 256}}},
        "search_space.batch_size",
        "no minibatch of one sample",
    ),
    # searched env options: outside the bounds the fixed value has
    (
        {"search_space": {"pool_size": {"type": "int", "low": 2, "high": 500}}},
        "search_space.pool_size",
        "an integer in [1, 100], but got 500",
    ),
    (
        {"search_space": {"opening_plies": {"type": "int", "low": 0, "high": 50}}},
        "search_space.opening_plies",
        "an integer in [0, 20]",
    ),
    (
        {"search_space": {"stones": {"type": "categorical", "choices": [4, 13]}}},
        "search_space.stones",
        "but got 13",
    ),
    (
        {"search_space": {"snapshot_every": {"type": "int", "low": -4, "high": 4096}}},
        "search_space.snapshot_every",
        "an integer >= 1, but got -4",
    ),
    # evaluation sizes and shares
    ({"evaluation": {"games": 10**9}}, "evaluation.games", "less than or equal to 1000000"),
    (
        {"env": {"opponents": {"random": 1e308, "greedy": 1e308}}},
        "env.opponents",
        "a positive sum, and finite",
    ),
]


def _study(tiny_spec, patch: dict) -> dict:
    data = tiny_spec()
    for key, value in patch.items():
        if key == "search_space":
            data["search_space"] = {**data["search_space"], **value}
            data["ppo"] = {k: v for k, v in data["ppo"].items() if k not in value}
        elif key == "ppo":
            data["ppo"] = value
        else:
            data[key] = {**data[key], **value}
    return data


@pytest.mark.parametrize(("patch", "key", "expected"), OUT_OF_BOUNDS, ids=lambda x: str(x)[:40])
def test_a_value_that_cannot_train_is_refused_before_any_trial(
    tmp_path, runs, capsys, tiny_spec, patch, key, expected
):
    """One line naming the file, the key and the bound; exit 2; nothing written."""
    path = write_study(tmp_path / "bounds.yaml", _study(tiny_spec, patch))
    db = tmp_path / "nothing.db"
    code = main(["create", str(path), "--storage", f"sqlite:///{db}"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and key in err and expected in err, err
    assert not db.exists(), "a refused file writes nothing"


def test_values_within_the_bounds_pass(tmp_path, tiny_spec):
    """The edges themselves are values a trial can train with."""
    patch = {
        "ppo": {"n_steps": 64, "batch_size": 2, "gae_lambda": 1.0, "vf_coef": 0.0, "n_epochs": 1},
        "search_space": {
            "pool_size": {"type": "int", "low": 1, "high": 100},
            "opening_plies": {"type": "int", "low": 0, "high": 20},
            "snapshot_every": {"type": "int", "low": 1, "high": 10, "log": True},
        },
        "env": {"opponents": {"random": 1e300, "greedy": 1e300}},
    }
    load_spec(write_study(tmp_path / "edges.yaml", _study(tiny_spec, patch)))


def test_the_batch_check_finds_every_rollout_that_leaves_one_sample():
    """Searched integer ranges are checked by arithmetic: the same answer as trying every
    combination, for ranges too wide to try."""
    rng = random.Random(25)
    for _ in range(2000):
        envs, low, step = rng.randint(1, 9), rng.randint(1, 40), rng.randint(1, 5)
        n_steps = range(low, low + rng.randint(0, 60) + 1, step)
        batch = rng.randint(2, 80)
        one_left = any(n * envs >= batch and n * envs % batch == 1 for n in n_steps)
        try:
            check_batch_fits(n_steps, [batch], envs, "x")
            refused = False
        except ValueError:
            refused = True
        assert refused == (one_left or min(n_steps) * envs < 2), (batch, n_steps, envs)
    check_batch_fits(range(16, 65537), range(2, 4097, 2), 64, "wide, even: fits")


def test_one_rule_for_fixed_and_searched_values():
    with pytest.raises(ValueError, match=r"^where: expected an integer in \[1, 100\]"):
        check_value("pool_size", 0, "where")
    check_value("lr_schedule", "anything", "names are checked elsewhere")
