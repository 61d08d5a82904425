"""One trial (tuner/trial/objective.py): what it records, how its value is taken, and what
each finished trial of the smoke study leaves behind (with ``tuner evaluate --study --trial``).

First the objective's own rules, without training a whole study: the real values a
model was built with, the value of a finished run by the study's rule, and a
configuration recorded before anything trains. Then (slow) the smoke study, tuned
once: a completed trial keeps its final model as an Optuna artifact (in the artifact
store the dashboard serves), the real hyperparameter values and the evaluation per
opponent as user attrs; every trial, TensorBoard logs under the study's folder with
the evaluation scores beside SB3's own training curves.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from support import run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tuner.base.errors import ConfigError
from tuner.cli import main
from tuner.config.loading import parse_spec
from tuner.config.space import to_config
from tuner.storage.record import StudyAttr, TrialAttr
from tuner.trial.callbacks import Evaluation, RunState
from tuner.trial.objective import TrialFailed, objective, real_values, run_value
from tuner.trial.training import TrainingRun


def test_real_values_are_the_values_the_model_was_built_with(tiny_spec) -> None:
    """A named choice is recorded as what it stood for, wherever the setting went (the
    policy, the env or MaskablePPO itself)."""
    data = tiny_spec()
    data["search_space"]["store_diff_coef"] = {"type": "float", "low": 0.0, "high": 1.0}
    spec = parse_spec(data)
    values = {"learning_rate": 1.0e-3, "gamma": 0.95, "net_arch": "small", "store_diff_coef": 0.5}
    config = to_config(spec, values)
    assert real_values(spec, config.ppo_kwargs, config.game) == {
        "learning_rate": 1.0e-3,
        "gamma": 0.95,
        "net_arch": [32, 32],
        "store_diff_coef": 0.5,
    }


def finished(*values: float, **progress) -> TrainingRun:
    """A run whose evaluations gave ``values`` (at 100, 200, ... steps)."""
    evaluations = [Evaluation(100 * (i + 1), v, {}, 0.1) for i, v in enumerate(values)]
    return TrainingRun(
        model=None,
        state=RunState(evaluations=evaluations, **progress),
        timesteps=100 * len(values),
        train_seconds=1.0,
        eval_seconds=0.1,
        device="cpu",
    )


def test_a_runs_value_is_its_final_or_its_best_evaluation(tiny_spec) -> None:
    run = finished(0.3, 0.6, 0.5)
    final = parse_spec(tiny_spec())
    assert run_value(final, run) == 0.5
    best = tiny_spec()
    best["evaluation"]["value_from"] = "best"
    assert run_value(parse_spec(best), run) == 0.6
    assert run_value(parse_spec({**best, "direction": "minimize"}), run) == 0.3


def test_a_run_that_did_not_finish_raises_how_it_ended(tiny_spec) -> None:
    spec = parse_spec(tiny_spec())
    with pytest.raises(TrialFailed, match=r"^worker stopped: SIGTERM received$"):
        run_value(spec, finished(0.5, stopped="SIGTERM received"))
    with pytest.raises(TrialFailed, match=r"^training diverged: nan$"):
        run_value(spec, finished(0.5, diverged="training diverged: nan"))
    with pytest.raises(optuna.TrialPruned, match=r"^pruned at timestep 200 with score 0\.100$"):
        run_value(spec, finished(0.4, 0.1, pruned=True))
    with pytest.raises(TrialFailed, match="ended before any evaluation"):
        run_value(spec, finished())


def test_a_trial_records_its_configuration_before_anything_trains(tiny_spec, tmp_path) -> None:
    """A model that cannot be built (Adam has ``eps``, not ``epsilon``) fails the trial with
    a configuration error, and the trial still shows what it was to run with."""
    data = tiny_spec()
    data["ppo"] = {**data["ppo"], "policy_kwargs": {"optimizer_kwargs": {"epsilon": 1.0e-5}}}
    spec = parse_spec(data)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    with pytest.raises(ConfigError, match="MaskablePPO cannot be built from ppo_kwargs"):
        objective(trial, spec, device="cpu", runs_dir=tmp_path)
    recorded = trial.user_attrs
    assert set(recorded[TrialAttr.REAL_PARAMS]) == {"learning_rate", "gamma", "net_arch"}
    assert recorded[TrialAttr.CONFIG]["ppo_kwargs"]["policy_kwargs"]["optimizer_kwargs"] == {
        "epsilon": 1.0e-5
    }
    assert not (tmp_path / "artifacts").exists(), "no model, no artifact"


# --- the perfect-play numbers (issue 20) ---------------------------------------------------

PERFECT_KEYS = ("optimal", "regret", "blunders")


def _one_trial(spec_data: dict, tmp_path: Path) -> tuple[float, optuna.Trial]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    value = objective(trial, parse_spec(spec_data), device="cpu", runs_dir=tmp_path)
    return value, trial


def test_a_short_trial_records_the_perfect_play_numbers_beside_its_score(
    tiny_spec, tmp_path
) -> None:
    """Kalah(6,4), no search: every evaluation scores the network on the solved set too,
    the trial keeps the last one with its intervals, and the score stays the value."""
    from optuna_dashboard import get_note

    value, trial = _one_trial(tiny_spec(), tmp_path)
    attrs = trial.user_attrs
    perfect = attrs[TrialAttr.PERFECT]
    assert perfect["positions"] == 5010
    assert 0.0 <= perfect["optimal"] <= 1.0 and perfect["regret"] >= 0.0
    assert 0.0 <= perfect["blunders"] <= 1.0 - perfect["optimal"] + 1e-9
    assert all(perfect[f"{k}_half_width"] > 0 for k in PERFECT_KEYS)
    evaluations = attrs[TrialAttr.EVALUATIONS]
    assert len(evaluations) == 3
    assert all(set(e["perfect"]) == set(PERFECT_KEYS) for e in evaluations)
    assert evaluations[-1]["perfect"] == {k: perfect[k] for k in PERFECT_KEYS}
    assert value == evaluations[-1]["value"]
    assert set(attrs[TrialAttr.SCORES]) == {"random", "greedy"}
    note = get_note(trial)
    assert f"Against perfect play: optimal {perfect['optimal']:.3f}" in note, note
    assert "| step | score | optimal | regret | blunders |" in note, note


def test_objective_perfect_makes_minus_the_regret_the_value(tiny_spec, tmp_path) -> None:
    """No games: the value is minus the mean regret, nothing per opponent is recorded."""
    from optuna_dashboard import get_note

    value, trial = _one_trial(tiny_spec(evaluation={"objective": "perfect"}), tmp_path)
    attrs = trial.user_attrs
    assert value == -attrs[TrialAttr.PERFECT]["regret"] < 0
    assert [e["value"] for e in attrs[TrialAttr.EVALUATIONS]] == [
        -e["perfect"]["regret"] for e in attrs[TrialAttr.EVALUATIONS]
    ]
    assert "**Regret " in get_note(trial)
    assert TrialAttr.SCORES not in attrs and TrialAttr.EVAL_RESULTS not in attrs


def test_no_perfect_play_numbers_where_the_solved_set_does_not_apply(tiny_spec, tmp_path) -> None:
    """Off when told (perfect: false), and by default on another game (5 stones per pit)."""
    off = tiny_spec()
    off["evaluation"]["perfect"] = False
    five = tiny_spec()
    five["env"]["stones"] = 5
    for data in (off, five):
        _, trial = _one_trial(data, tmp_path)
        assert TrialAttr.PERFECT not in trial.user_attrs
        assert all("perfect" not in e for e in trial.user_attrs[TrialAttr.EVALUATIONS])


# --- the smoke study, tuned once through the CLI (slow) -------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, optuna.Study]:
    """The smoke study, tuned once for this module by the CLI, with its runs folder."""
    runs = tmp_path_factory.mktemp("artifacts") / "runs"
    created = run_cli("create", "smoke", runs_path=runs)
    assert created.returncode == 0, created.stderr
    storage = f"sqlite:///{runs / 'optuna.db'}"
    # Trial 0 diverges (FAIL, no model), so that a trial without a model is there for sure.
    optuna.load_study(study_name="smoke", storage=storage).enqueue_trial({"learning_rate": 1.0e30})
    result = run_cli("tune", "smoke", "--worker-index", "0", "--device", "cpu", runs_path=runs)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="smoke", storage=storage)
    assert study.trials[0].state == TrialState.FAIL, study.trials[0]
    return runs, study


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert trials, "the smoke study completed no trial"
    return trials


@pytest.mark.slow
def test_completed_trials_upload_their_final_model(smoke) -> None:
    runs, study = smoke
    for trial in _complete(study):
        artifact_id = trial.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]
        metas = get_all_artifact_meta(trial, storage=study._storage)
        assert [m.artifact_id for m in metas] == [artifact_id]
        assert metas[0].filename == f"smoke_trial_{trial.number:04d}.zip"
        stored = runs / "artifacts" / artifact_id
        assert stored.read_bytes()[:2] == b"PK", "an SB3 model is a zip file"


@pytest.mark.slow
def test_trials_record_real_params_and_scores_per_opponent(smoke) -> None:
    _, study = smoke
    spec = study.user_attrs[StudyAttr.SPEC]
    opponents = set(spec["evaluation"]["opponents"])
    for trial in _complete(study):
        real = trial.user_attrs[TrialAttr.REAL_PARAMS]
        assert set(real) == set(spec["search_space"])
        # the named choice resolved to the architecture the model was built with
        assert (
            real["net_arch"]
            == spec["search_space"]["net_arch"]["choices"][trial.params["net_arch"]]
        )
        assert real["learning_rate"] == trial.params["learning_rate"]
        rates = trial.user_attrs[TrialAttr.SCORES]
        assert set(rates) == opponents
        assert all(0.0 <= r <= 1.0 for r in rates.values())
        results = trial.user_attrs[TrialAttr.EVAL_RESULTS]
        for name in opponents:
            r = results[name]
            assert r["games"] == spec["evaluation"]["games"]
            assert r["wins"] + r["draws"] + r["losses"] == r["games"]
            assert r["score"] == pytest.approx(rates[name], abs=1e-4)


@pytest.mark.slow
def test_tensorboard_logs_hold_eval_scores_beside_training_curves(smoke) -> None:
    runs, study = smoke
    root = runs / "tensorboard" / "smoke"
    for trial in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        dirs = sorted(root.glob(f"trial_{trial.number:04d}_*"))
        assert len(dirs) == 1, f"trial {trial.number}: {dirs}"
        acc = EventAccumulator(str(dirs[0]))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        assert {"train/loss", "train/entropy_loss", "rollout/ep_rew_mean"} <= tags, tags
        assert {"eval_opponents/random/score", "eval_opponents/greedy/games"} <= tags, tags
        assert {"eval_perfect/optimal", "eval_perfect/regret", "eval_perfect/blunders"} <= tags
        # The value the pruner sees opens the eval group (TensorBoard sorts by name).
        assert sorted(t for t in tags if t.startswith("eval/"))[0] == "eval/score", tags
        logged = {e.step: e.value for e in acc.Scalars("eval/score")}
        assert set(logged) == set(trial.intermediate_values)
        for step, value in trial.intermediate_values.items():
            assert logged[step] == pytest.approx(value, abs=1e-6)


@pytest.mark.slow
def test_evaluate_loads_a_trial_model_by_study_and_number(smoke) -> None:
    runs, study = smoke
    best = study.best_trial
    result = run_cli(
        "evaluate",
        "--study",
        "smoke",
        "--trial",
        str(best.number),
        "--opponents",
        "random,greedy",
        "--games",
        "20",
        runs_path=runs,
    )
    assert result.returncode == 0, result.stderr
    downloaded = runs / "downloads" / f"smoke_trial_{best.number:04d}.zip"
    assert f"{downloaded}: 20 games per opponent" in result.stdout
    assert "vs random" in result.stdout and "vs greedy" in result.stdout
    artifact = runs / "artifacts" / best.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]
    assert downloaded.read_bytes() == artifact.read_bytes()


@pytest.mark.slow
def test_evaluate_names_what_is_wrong_with_a_trial(smoke, monkeypatch, capsys) -> None:
    runs, study = smoke
    monkeypatch.setenv("KALAHA_RUNS", str(runs))
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)

    def evaluate(*args: str) -> str:
        assert main(["evaluate", *args]) == 2
        return capsys.readouterr().err

    n = len(study.get_trials())
    assert f"has no trial {n + 5}" in evaluate("--study", "smoke", "--trial", str(n + 5))
    assert "no study named 'nosuch'" in evaluate("--study", "nosuch", "--trial", "0")
    assert "expected a MODEL path, or --study and --trial" in evaluate("--study", "smoke")
    without_model = [t for t in study.get_trials() if t.state != TrialState.COMPLETE]
    assert without_model, "the fixture's trial 0 diverges: a trial without a model"
    for t in without_model:
        err = evaluate("--study", "smoke", "--trial", str(t.number))
        assert "has no model artifact" in err and t.state.name in err


@pytest.mark.slow
def test_the_dashboard_names_the_metric_and_reads_a_note_per_trial(smoke) -> None:
    """optuna-dashboard's axis and best-trial card say "score", not "Objective 0"; values
    are rounded; each trial's page has a note with its scores, intervals and games."""
    from optuna_dashboard import get_note

    _, study = smoke
    assert study.metric_names == ["score"]
    for trial in _complete(study):
        assert trial.value == round(trial.value, 4)
        assert all(v == round(v, 4) for v in trial.intermediate_values.values())
        note = get_note(optuna.Trial(study, trial._trial_id))  # get_note takes a live Trial
        results = trial.user_attrs[TrialAttr.EVAL_RESULTS]
        assert note.startswith(f"## Trial {trial.number}\n"), note
        assert f"**Score {trial.value:.3f}**" in note
        for name, r in results.items():
            row = f"| {name} | {r['score']:.3f} | {r['ci_low']:.3f} - {r['ci_high']:.3f} | {r['games']} |"
            assert row in note, note
        assert "steps/s" in note and "| step | score |" in note
