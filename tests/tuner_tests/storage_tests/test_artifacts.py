"""A trial's model in the artifact store (tuner/storage/artifacts.py): found by the trial's
number, copied out below the runs folder, and a clear error for a trial without one.

The artifact here is a few bytes uploaded the way the objective uploads a model;
what a real trial leaves behind is tested in trial_tests/test_objective.py.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.artifacts import upload_artifact
from optuna.trial import TrialState

from tuner.base.errors import UserError
from tuner.base.runs import artifact_store, artifacts_dir
from tuner.storage.artifacts import download_trial_model
from tuner.storage.record import TrialAttr


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    """Trial 0 uploaded a "model"; trial 1 failed before it had one."""
    runs = tmp_path / "runs"
    study = optuna.create_study(study_name="store", storage=f"sqlite:///{tmp_path / 'a.db'}")
    trial = study.ask()
    model = tmp_path / "model.zip"
    model.write_bytes(b"weights of trial 0")
    artifact_id = upload_artifact(
        artifact_store=artifact_store(artifacts_dir(runs)),
        file_path=str(model),
        study_or_trial=trial,
    )
    trial.set_user_attr(TrialAttr.MODEL_ARTIFACT_ID, artifact_id)
    study.tell(trial, 0.5)
    study.tell(study.ask(), state=TrialState.FAIL)
    return study


def test_a_trials_model_is_copied_below_the_runs_folder(study, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    path = download_trial_model(study, 0, runs)
    assert path == runs / "downloads" / "store_trial_0000.zip"
    assert path.read_bytes() == b"weights of trial 0"
    path.write_bytes(b"stale")  # a second download replaces an old copy
    assert download_trial_model(study, 0, runs).read_bytes() == b"weights of trial 0"


def test_a_trial_that_does_not_exist_or_kept_no_model_is_one_clear_error(
    study, tmp_path: Path
) -> None:
    with pytest.raises(UserError, match=r"study 'store' has no trial 7; expected 0\.\.1"):
        download_trial_model(study, 7, tmp_path / "runs")
    with pytest.raises(UserError, match=r"trial 1 of 'store' has no model artifact \(state FAIL\)"):
        download_trial_model(study, 1, tmp_path / "runs")
    assert not (tmp_path / "runs" / "downloads").exists(), "nothing is written for an error"
