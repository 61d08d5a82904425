"""What each finished trial of the smoke study leaves behind, and ``tuner evaluate --study --trial``.

A completed trial: its final model as an Optuna artifact (in the artifact store
the dashboard serves), the real hyperparameter values and the evaluation per
opponent as user attrs. Every trial: TensorBoard logs under the study's folder
with the evaluation scores beside SB3's own training curves.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.artifacts import get_all_artifact_meta
from optuna.trial import TrialState
from support import run_cli
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tuner.cli import main
from tuner.storage.record import StudyAttr, TrialAttr


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


def test_completed_trials_upload_their_final_model(smoke) -> None:
    runs, study = smoke
    for trial in _complete(study):
        artifact_id = trial.user_attrs[TrialAttr.MODEL_ARTIFACT_ID]
        metas = get_all_artifact_meta(trial, storage=study._storage)
        assert [m.artifact_id for m in metas] == [artifact_id]
        assert metas[0].filename == f"smoke_trial_{trial.number:04d}.zip"
        stored = runs / "artifacts" / artifact_id
        assert stored.read_bytes()[:2] == b"PK", "an SB3 model is a zip file"


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
        assert {"eval/score/random", "eval/score/greedy"} <= tags, tags
        logged = {e.step: e.value for e in acc.Scalars("eval/score")}
        assert set(logged) == set(trial.intermediate_values)
        for step, value in trial.intermediate_values.items():
            assert logged[step] == pytest.approx(value, abs=1e-6)


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
