"""The ``pbt:`` block of a study file: what PBT can change is checked before anything trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support import REPO_ROOT, run_cli

from tuner.base.errors import UserError
from tuner.config.loading import load_spec, parse_spec

PBT_STUDY = REPO_ROOT / "tests" / "tuner_tests" / "studies" / "pbt.yaml"


def data() -> dict:
    return yaml.safe_load(PBT_STUDY.read_text())


def with_changes(**changes) -> dict:
    d = data()
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = d
        for p in parents:
            node = node[p]
        node[last] = value
    return d


def test_the_test_study_is_a_valid_pbt_study_that_prunes_nothing():
    spec = parse_spec(data(), "pbt")
    assert spec.pbt is not None and spec.pbt.population == 3
    assert spec.pruner.type == "none" and spec.budget.n_evaluations == 3
    again = parse_spec(spec.model_dump(mode="json"), "stored")  # the spec a study records
    assert again == spec


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"search_space__normalize_advantage": {"type": "categorical", "choices": [True]}},
            r"search_space\.normalize_advantage: expected settings that can change during "
            r"training with pbt \(learning_rate, ent_coef, .*\), but got normalize_advantage, "
            r"which is fixed once the model is built; move it to ppo: \(or env:\) or drop pbt",
        ),
        (
            {"search_space__activation_fn": {"type": "categorical", "choices": ["tanh", "relu"]}},
            r"search_space\.activation_fn: expected settings that can change",
        ),
        ({"n_trials": 10}, r"n_trials: expected population \* intervals = 3 \* 3 = 9 .* got 10"),
        ({"pbt__interval": 1000}, r"pbt\.interval: expected a multiple of one rollout .*= 256\)"),
        ({"budget__total_timesteps": 1280}, r"budget\.total_timesteps: expected a multiple of"),
        ({"pruner": {"type": "median"}}, r"pruner\.type: expected none with pbt"),
        ({"budget__n_evaluations": 5}, r"budget\.n_evaluations: expected 3 or none with pbt"),
        (
            {"pbt__quantile": 0.6},
            r"key 'pbt.quantile': expected less than or equal to 0.5, but got 0.6",
        ),
        ({"pbt__perturb": [1.2, -0.8]}, r"key 'pbt.perturb': expected positive factors"),
        ({"pbt__population": 1}, r"key 'pbt.population': expected greater than or equal to 2"),
        (
            {
                "search_space__gamma": {
                    "type": "float",
                    "low": 0.9,
                    "high": 0.99,
                    "condition": {"clip_range": 0.1},
                }
            },
            r"search_space\.gamma\.condition: expected no conditions with pbt",
        ),
    ],
)
def test_a_bad_pbt_file_is_one_clear_error(changes, expected):
    d = with_changes(**changes)
    with pytest.raises(UserError, match=expected) as err:
        parse_spec(d, "pbt.yaml")
    assert "\n" not in str(err.value)


def test_the_cli_refuses_a_network_setting_searched_with_pbt_in_one_line_and_exit_2(tmp_path):
    bad = with_changes(search_space__activation_fn={"type": "categorical", "choices": ["relu"]})
    path = tmp_path / "bad_pbt.yaml"
    path.write_text(yaml.safe_dump(bad))
    done = run_cli("tune", str(path), runs_path=tmp_path / "runs")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "search_space.activation_fn: expected settings" in lines[0], lines
    assert not (tmp_path / "runs" / "optuna.db").exists(), "nothing written to storage"


def test_shipped_pbt_study_validates_and_pairs_the_exploration_space():
    pbt = load_spec(Path(REPO_ROOT / "studies" / "exploration_pbt.yaml"))
    tpe = load_spec(Path(REPO_ROOT / "studies" / "exploration.yaml"))
    assert pbt.pbt is not None and pbt.pruner.type == "none"
    assert set(pbt.search_space) == set(tpe.search_space) - {"lr_schedule"}
    assert pbt.env == tpe.env and pbt.evaluation == tpe.evaluation
