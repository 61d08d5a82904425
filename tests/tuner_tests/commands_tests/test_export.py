"""``tuner export`` and ``tuner train``: the export document's schema (the file export
writes is the file train reads, and the shipped best configuration still reads), and
the round trip that retrains a trial's very agent."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch
import yaml
from fault_support import FAULTS
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from sb3_contrib import MaskablePPO
from support import REPO_ROOT, run_cli

from tuner.base.errors import UserError
from tuner.cli import main
from tuner.commands.export import FORMAT, ExportDocument, load_export, write_export
from tuner.commands.worker import Worker
from tuner.config.loading import load_spec, parse_spec
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


def test_an_export_from_before_the_rating_is_a_clear_error():
    """An export whose evaluation still says objective: final names the new key."""
    from tuner.commands.export import train_from_export

    doc = {
        "study": "old",
        "ppo_kwargs": {},
        "env_kwargs": {},
        "budget": {"total_timesteps": 64},
        "evaluation": {"opponents": ["random"], "objective": "final"},
        "seed": 0,
    }
    with pytest.raises(
        UserError, match=r"expected 'score', 'rating' or 'perfect'.*value_from: final"
    ):
        train_from_export(doc, device="cpu")


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
    from tuner.commands.export import export_document

    spec = load_spec("smoke")
    params = {"learning_rate": 1.0e-3, "gamma": 0.95, "net_arch": "tiny"}
    config = to_config(spec, params).as_dict()
    env = config["env_kwargs"]
    old_env = {{"stones": "seeds", "opponents": "opponent"}.get(k, k): v for k, v in env.items()}
    trial = create_trial(
        params=params,
        distributions={
            "learning_rate": FloatDistribution(1.0e-4, 3.0e-3, log=True),
            "gamma": FloatDistribution(0.9, 0.999),
            "net_arch": CategoricalDistribution(["tiny", "small"]),
        },
        value=0.5,
        user_attrs={"config": {**config, "env_kwargs": old_env}},
    )
    study = optuna.create_study(direction="maximize")
    study.add_trial(trial)
    doc = export_document(spec, study.trials[0])
    assert doc["env_kwargs"] == env and doc["env_kwargs"]["stones"] == 4


# --- the whole path: tune, export, retrain ---------------------------------------------------


ROUND_TRIP_ENV = {
    # a self-play league: past selves (a snapshot every 512 steps, 2 kept, drawn
    # uniformly) beside fixed opponents, in shares
    "opponents": {"pool": 0.5, "random": 0.25, "greedy": 0.25},
    "snapshot_every": 512,
    "pool_size": 2,
    "pool_sampling": "uniform",
    "stones": 5,
    "opening_plies": 2,
    "store_diff_coef": 0.25,
    "extra_turn_coef": 0.1,
}


def policy_weights(path: Path) -> dict:
    return MaskablePPO.load(path, device="cpu").policy.state_dict()


@pytest.mark.slow
def test_export_then_train_round_trip(runs, tmp_path, one_torch_thread, tiny_spec):
    """`tuner train` on the export builds the best trial's agent again, bit for bit.

    The best trial is trial 1 (trial 0 diverges), trained with seed 11 + 1 on env
    options that are not KalahaEnv's defaults. Same config, same env, same seed and
    one torch thread: the retrained weights equal the trial's uploaded model, which
    no retraining with other env options or another seed reproduces.
    """
    data = tiny_spec(n_trials=2, seed=11, pruner={"type": "none"}, env=ROUND_TRIP_ENV)
    data["search_space"]["learning_rate"]["high"] = 1.0e30  # room for trial 0 to diverge
    spec = parse_spec(data)
    url = f"sqlite:///{runs / 'optuna.db'}"
    worker = Worker.open(spec, url, worker_index=0, device="cpu", runs_dir=runs)
    worker.study.enqueue_trial({"learning_rate": 1.0e30, "gamma": 0.95, "net_arch": "tiny"})
    worker.study.enqueue_trial({"learning_rate": 2.0e-3, "gamma": 0.93, "net_arch": "small"})
    worker.run()
    study = optuna.load_study(study_name="smoke", storage=url)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]
    best = study.best_trial
    assert best.number == 1

    out = tmp_path / "best.yaml"
    result = run_cli("export", "smoke", "--out", str(out), runs_path=runs)
    assert result.returncode == 0, result.stderr
    doc = load_export(out)
    assert doc["trial"] == best.number and doc["value"] == pytest.approx(best.value)
    assert {"ppo_kwargs": doc["ppo_kwargs"], "env_kwargs": doc["env_kwargs"]} == best.user_attrs[
        "config"
    ]
    assert doc["params"] == best.params
    assert doc["seed"] == 12
    assert {"optuna", "stable-baselines3", "sb3-contrib", "torch"} <= set(doc["versions"])
    # Each score with its interval and game count, never bare.
    assert "scores" not in doc
    for name, result in best.user_attrs[TrialAttr.EVAL_RESULTS].items():
        shown = doc["results"][name]
        assert shown["score"] == result["score"] and shown["games"] == result["games"] > 0
        assert shown["ci_low"] <= shown["score"] <= shown["ci_high"]
    assert doc["env_kwargs"] == {**ROUND_TRIP_ENV, "empty_capture": False}
    assert best.user_attrs[TrialAttr.LEAGUE]["snapshots_taken"] >= 2, (
        "it trained against past selves"
    )

    model = tmp_path / "agent.zip"
    result = run_cli("train", str(out), "--out", str(model), "--device", "cpu", runs_path=runs)
    assert result.returncode == 0, result.stderr

    # What `tuner train` built: the model's settings and seed are the export's ...
    built = MaskablePPO.load(model, device="cpu")
    assert built.seed == doc["seed"] == spec.seed + best.number
    assert built.num_timesteps == doc["budget"]["total_timesteps"]
    assert built.gamma == pytest.approx(0.93) and built.learning_rate == pytest.approx(2.0e-3)
    for key in ("n_steps", "batch_size", "n_epochs"):
        assert getattr(built, key) == doc["ppo_kwargs"][key], key
    assert (
        built.policy_kwargs["net_arch"]
        == [32, 32]
        == doc["ppo_kwargs"]["policy_kwargs"]["net_arch"]
    )
    # ... and it trained on the same env with the same seed: the trial's very weights.
    trial_model = runs / "artifacts" / best.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]
    expected, retrained = policy_weights(trial_model), policy_weights(model)
    assert expected.keys() == retrained.keys()
    differ = [k for k in expected if not torch.equal(expected[k], retrained[k])]
    assert not differ, f"retrained weights differ from trial {best.number}'s model: {differ}"
    # Same evaluation seeds too: the same scores, printed per opponent.
    for name, rate in best.user_attrs[TrialAttr.SCORES].items():
        assert f"vs {name:<12s} score {rate:.3f}" in result.stdout, result.stdout


@pytest.mark.slow
def test_export_without_a_completed_trial_or_study_is_a_clear_error(runs, tmp_path):
    db = runs / "optuna.db"
    for command in ("export", "status", "report"):
        result = run_cli(command, "smoke", runs_path=runs)
        assert result.returncode == 2 and "expected an existing SQLite file" in result.stderr
        assert not db.exists(), f"`tuner {command}` created the storage it was to read"
    runs.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{db}"
    optuna.create_study(study_name="other", storage=url, direction="maximize")
    result = run_cli("export", "smoke", runs_path=runs)
    assert result.returncode == 2 and "no study named 'smoke'" in result.stderr
    optuna.create_study(study_name="smoke", storage=url, direction="maximize")
    result = run_cli("export", "smoke", runs_path=runs)
    assert result.returncode == 2 and "no completed trial" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("train", str(tmp_path / "missing.yaml"), runs_path=runs)
    assert result.returncode == 2 and "does not exist" in result.stderr


# --- hardening (issue 12): hand-edited export files ------------------------------------------


def valid_export(data: dict) -> dict:
    """The export of a trial of ``data`` (the tiny study), as ``tuner export`` writes it."""
    spec = parse_spec(data, "smoke")
    config = to_config(spec, {"learning_rate": 1.0e-3, "gamma": 0.95, "net_arch": "tiny"})
    return {
        "format": FORMAT,
        "study": "smoke",
        "trial": 0,
        "ppo_kwargs": config.ppo_kwargs,
        "env_kwargs": config.game.as_dict(),
        "budget": spec.budget.model_dump(),
        "evaluation": spec.evaluation.model_dump(),
        "seed": 0,
    }


def edited(doc: dict, path: str, value) -> dict:
    """``doc`` with the value at dotted ``path`` replaced (``KeyError``: removed)."""
    *parents, last = path.split(".")
    target = doc
    for p in parents:
        target = target[p]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


EXPORT_EDITS = [
    ("ppo_kwargs", [1, 2], "ppo_kwargs"),
    ("ppo_kwargs", KeyError, "ppo_kwargs"),
    ("ppo_kwargs.policy_kwargs", {"ortho_int": False}, "ortho_int"),
    ("ppo_kwargs.policy_kwargs", {"activation_fn": "sigmoid"}, "activation_fn"),
    ("ppo_kwargs.gamma", float("inf"), "finite"),
    ("ppo_kwargs.lerning_rate", 0.1, "ppo_kwargs.lerning_rate: unknown setting"),
    ("ppo_kwargs.lr_schedule", "cosine", "lr_schedule"),
    ("ppo_kwargs.n_steps", "many", "ppo_kwargs.n_steps: expected an integer in [1, 65536]"),
    # Hardening (issue 25): values that cannot train, refused before training as a study
    # file's are, by the same bounds.
    ("ppo_kwargs.batch_size", 0, "ppo_kwargs.batch_size: expected an integer >= 2"),
    ("ppo_kwargs.batch_size", 1, "ppo_kwargs.batch_size: expected an integer >= 2"),
    ("ppo_kwargs.batch_size", 255, "leaves no minibatch of one sample"),
    ("ppo_kwargs.gae_lambda", 1.5, "ppo_kwargs.gae_lambda: expected a finite number in [0, 1]"),
    ("ppo_kwargs.clip_range", 0.0, "ppo_kwargs.clip_range: expected a finite number > 0"),
    ("ppo_kwargs.policy_kwargs", {"net_arch": [8, 0]}, "ppo_kwargs.policy_kwargs.net_arch"),
    ("env_kwargs.pool_size", 500, "env_kwargs.pool_size"),
    ("env_kwargs.opponents", {"random": 1e308, "greedy": 1e308}, "and finite"),
    ("evaluation.games", 10**9, "evaluation.games"),
    ("env_kwargs.stones", 99, "env_kwargs.stones"),
    ("env_kwargs.opponents", ["minimax:0"], "an opponent is one of"),
    ("env_kwargs.colour", "red", "unknown key 'env_kwargs.colour'"),
    ("budget.n_envs", 0, "budget.n_envs"),
    ("budget", "big", "budget"),
    ("evaluation.opponents", [], "evaluation.opponents"),
    ("seed", "abc", "seed"),
    ("seed", -1, "seed"),
    ("study", "../../etc", "study"),
    ("format", "other", "expected an export with format"),
]


def test_hand_edited_export_files_are_one_line_errors(runs, tmp_path, capsys, tiny_spec):
    """Hardening (issue 12): tracebacks where one line was promised. Each edit of a valid
    export (a wrong type, a typo, a value out of range, a name that escapes its folder)
    is one line and exit code 2, and no model is written."""
    for i, (key, value, message) in enumerate(EXPORT_EDITS):
        path = tmp_path / f"edit{i}.yaml"
        path.write_text(yaml.safe_dump(edited(valid_export(tiny_spec()), key, value)))
        code = main(["train", str(path), "--timesteps", "64", "--device", "cpu"])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1 and message in err, (key, value, err)
    for content, message in [(b"- a list\n", "expected an export"), (b"\xff\xfe", "UTF-8")]:
        path = tmp_path / "raw.yaml"
        path.write_bytes(content)
        assert main(["train", str(path)]) == 2
        assert message in capsys.readouterr().err
    assert not (runs / "models").exists(), "no model is written for a bad export"


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


@pytest.mark.parametrize(
    "objective, name",
    [("score", "score"), ("rating", "rating (Elo)"), ("perfect", "minus regret (seeds per move)")],
)
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
