"""The export document's schema: the file ``tuner export`` writes is the file ``tuner train``
reads, and the shipped best configuration still reads."""

from __future__ import annotations

import pytest
import yaml
from fault_support import FAULTS
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import create_trial
from support import REPO_ROOT

from tuner.base.errors import UserError
from tuner.cli import main
from tuner.commands.export import ExportDocument, load_export, write_export
from tuner.config.loading import load_spec
from tuner.config.space import to_config
from tuner.config.study import create_study
from tuner.storage.rdb import make_storage
from tuner.storage.record import TrialAttr

SHIPPED = REPO_ROOT / "studies" / "best" / "selfplay.yaml"


def test_the_shipped_selfplay_export_loads_through_the_schema():
    doc = load_export(SHIPPED)
    export = ExportDocument.model_validate(doc)
    assert export.study == "selfplay" and export.trial == 1
    assert export.ppo_kwargs["n_steps"] == 128
    assert export.ppo_kwargs["policy_kwargs"] == {"net_arch": [256, 256, 256], "lookahead": 2}
    assert export.env_kwargs.opponents == {"pool": 0.3, "greedy@0.1": 0.35, "minimax:2@0.1": 0.35}
    assert export.env_kwargs.stones == 4 and export.budget.runs == 1
    assert export.budget.total_timesteps == 1_000_000 and export.budget.n_envs == 64
    assert export.evaluation.opponents == ["greedy", "minimax:2", "minimax:4"]
    assert export.selection.startswith("single seed"), "notes beyond the schema are kept"


def test_an_export_train_would_refuse_is_never_written(tmp_path):
    doc = yaml.safe_load(SHIPPED.read_text())
    doc["ppo_kwargs"]["lerning_rate"] = 1.0e-3
    path = tmp_path / "best.yaml"
    with pytest.raises(UserError, match=r"ppo_kwargs\.lerning_rate: unknown setting"):
        write_export(doc, path)
    assert not path.exists()


def test_an_export_for_another_algorithm_is_a_one_line_error(tmp_path, capsys):
    from tuner.cli import main

    doc = yaml.safe_load(SHIPPED.read_text())
    doc["algorithm"] = "PPO"
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["train", str(path), "--timesteps", "64", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "key 'algorithm'" in err and "'PPO'" in err, err


def test_an_export_written_before_the_renames_still_loads(tmp_path):
    """Exports once held KalahaEnv's keywords (``opponent``, ``seeds``) and ``budget.seeds``;
    they read in today's keys, and train the same game."""
    doc = yaml.safe_load(SHIPPED.read_text())
    env = doc["env_kwargs"]
    doc["env_kwargs"] = {
        {"stones": "seeds", "opponents": "opponent"}.get(k, k): v for k, v in env.items()
    }
    doc["budget"] = {("seeds" if k == "runs" else k): v for k, v in doc["budget"].items()}
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    old = ExportDocument.model_validate(load_export(path))
    new = ExportDocument.model_validate(load_export(SHIPPED))
    assert old.env_kwargs == new.env_kwargs and old.budget == new.budget
    assert list(old.env_kwargs.opponents) == ["pool", "greedy@0.1", "minimax:2@0.1"]


def test_a_trial_recorded_before_the_renames_still_exports():
    """The config a trial recorded in the old keys is the config to_config gives now."""
    import optuna

    from tuner.commands.export import export_document
    from tuner.config.loading import load_spec
    from tuner.config.space import to_config

    spec = load_spec("smoke")
    params = {"learning_rate": 1.0e-3, "gamma": 0.95, "net_arch": "tiny"}
    config = to_config(spec, params).as_dict()
    env = config["env_kwargs"]
    old_env = {{"stones": "seeds", "opponents": "opponent"}.get(k, k): v for k, v in env.items()}
    trial = optuna.trial.create_trial(
        params=params,
        distributions={
            "learning_rate": optuna.distributions.FloatDistribution(1.0e-4, 3.0e-3, log=True),
            "gamma": optuna.distributions.FloatDistribution(0.9, 0.999),
            "net_arch": optuna.distributions.CategoricalDistribution(["tiny", "small"]),
        },
        value=0.5,
        user_attrs={"config": {**config, "env_kwargs": old_env}},
    )
    study = optuna.create_study(direction="maximize")
    study.add_trial(trial)
    doc = export_document(spec, study.trials[0])
    assert doc["env_kwargs"] == env and doc["env_kwargs"]["stones"] == 4


def add_trial(study, spec, value: float, learning_rate: float, attrs: dict | None = None) -> None:
    """A completed trial as a worker records it (its params and its config)."""
    params = {"learning_rate": learning_rate, "gamma": 0.95, "net_arch": "tiny"}
    config = yaml.safe_load(yaml.safe_dump(to_config(spec, params).as_dict()))
    distributions = {
        "learning_rate": FloatDistribution(1e-4, 3e-3, log=True),
        "gamma": FloatDistribution(0.9, 0.999),
        "net_arch": CategoricalDistribution(["tiny", "small"]),
    }
    study.add_trial(
        create_trial(
            value=value,
            params=params,
            distributions=distributions,
            user_attrs={TrialAttr.CONFIG: config, **(attrs or {})},
        )
    )


def test_export_never_replaces_another_trials_file_without_force(tmp_path, capsys):
    """A shipped export (README's reference) is not overwritten by a new study's best."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spec = load_spec(FAULTS)
    study = create_study(spec, make_storage(url))
    add_trial(study, spec, 0.5, 1e-4)
    out = tmp_path / "best" / "faults.yaml"
    export = ["export", "faults", "--storage", url, "--out", str(out)]
    assert main(export) == 0
    assert "replaced" not in capsys.readouterr().out
    assert main(export) == 0, "the same trial again: nothing is lost"
    assert "replaced" not in capsys.readouterr().out

    add_trial(study, spec, 0.9, 2e-4)  # a new best: trial 1
    shipped = out.read_bytes()
    assert main(export) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert f"{out} exists and holds trial 0 of study 'faults', value 0.5000, exported " in line
    assert "nothing was written" in line and "--force" in line, line
    assert out.read_bytes() == shipped and captured.out == ""
    assert not list(out.parent.glob("*.tmp")), "no half-written file either"

    assert main([*export, "--force"]) == 0
    text = capsys.readouterr().out
    assert f"trial 1 (value 0.9000) exported to {out}" in text
    assert "replaced: trial 0 of study 'faults', value 0.5000, exported " in text
    assert load_export(out)["trial"] == 1

    out.write_text("notes: not an export\n")
    assert main(export) == 2
    assert "holds a file that is not an export" in capsys.readouterr().err


RESULT = {"score": 0.5, "ci_low": 0.43, "ci_high": 0.57, "games": 200, "wins": 90}
RESULT |= {"draws": 20, "losses": 90, "score_first": 0.5, "score_second": 0.5}
FEW = {"score": 0.5, "ci_low": 0.1, "ci_high": 0.9, "games": 2, "wins": 1}
FEW |= {"draws": 0, "losses": 1, "score_first": 1.0, "score_second": 0.0}


@pytest.mark.parametrize("rated", [False, True])
def test_scores_are_shown_with_their_games_or_not_at_all(tmp_path, capsys, rated):
    """A score trial: each score with its interval and game count, in status and the
    export. A rated trial: its per-opponent scores come from 2-4 adaptive games each, so
    they are left out; the rating and its interval stand for them."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    spec = load_spec(FAULTS)
    study = create_study(spec, make_storage(url))
    attrs = {
        TrialAttr.SCORES: {"random": 0.5},
        TrialAttr.EVAL_RESULTS: {"minimax:6": FEW} if rated else {"random": RESULT},
    }
    if rated:
        attrs[TrialAttr.RATING] = {"rating": 774.0, "low": 724.7, "high": 823.4}
    add_trial(study, spec, 0.5, 1e-4, attrs)

    assert main(["status", "faults", "--storage", url]) == 0
    status = capsys.readouterr().out
    out = tmp_path / "best.yaml"
    assert main(["export", "faults", "--storage", url, "--out", str(out)]) == 0
    doc = load_export(out)
    assert "scores" not in doc
    if rated:
        assert "score vs" not in status and "2 games" not in status
        assert "rating 774 [95% 725, 823]" in status
        assert doc["results"] == {} and doc["rating"]["low"] == 724.7
    else:
        assert "score vs random: 0.500 [95% 0.430, 0.570] over 200 games" in status
        assert doc["results"] == {
            "random": {k: RESULT[k] for k in ("score", "ci_low", "ci_high", "games")}
            | {"wins": 90, "draws": 20, "losses": 90}
        }


def test_an_older_export_with_bare_scores_still_trains():
    doc = yaml.safe_load(SHIPPED.read_text())
    doc["scores"] = {"greedy": 0.75}
    assert ExportDocument.model_validate(doc).scores == {"greedy": 0.75}


@pytest.mark.parametrize("objective, name", [("score", "score"), ("rating", "rating (Elo)")])
def test_a_study_names_its_metric_for_the_dashboard(tmp_path, objective, name):
    """Named at creation, and on the next load of a study created before it was."""
    import optuna

    spec = load_spec(FAULTS)
    evaluation = spec.evaluation.model_copy(update={"objective": objective})
    spec = spec.model_copy(update={"evaluation": evaluation})
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert create_study(spec, make_storage(url)).metric_names == [name]
    old = optuna.create_study(study_name="old", storage=url, direction="maximize")
    assert old.metric_names is None
    spec = spec.model_copy(update={"study_name": "old"})
    assert create_study(spec, make_storage(url)).metric_names == [name]
